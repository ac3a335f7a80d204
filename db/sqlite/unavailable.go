package sqlite

import (
	"context"
	"errors"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
	zsqlite "zombiezen.com/go/sqlite"
)

// IsUnavailable reports whether err means the database cannot serve right
// now (disk full, file read-only, locked past the busy timeout, an I/O
// error, a deadline) rather than a bug or bad input: the request gets a
// 503 that says so, not a 500.
func IsUnavailable(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, errReadOnlyFile) || errors.Is(err, errHotClosed) {
		return true
	}
	var code int
	var se *sqlite.Error
	switch {
	case errors.As(err, &se):
		code = se.Code()
	case zsqlite.ErrCode(err) != zsqlite.ResultError:
		// A hot read's (hot.go): SQLite's own result code.
		code = int(zsqlite.ErrCode(err))
	default:
		return false
	}
	// The primary code: a read-only (immutable) file fails a write with
	// SQLITE_IOERR_WRITE (778) on a connection opened before, and with
	// SQLITE_READONLY (8) on one opened since. SQLITE_PERM is what the
	// unix VFS makes of EPERM from the kernel (on a lock): the same family.
	switch code & 0xff {
	case sqlite3.SQLITE_FULL, sqlite3.SQLITE_READONLY, sqlite3.SQLITE_PERM, sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED,
		sqlite3.SQLITE_IOERR, sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_NOMEM, sqlite3.SQLITE_INTERRUPT:
		return true
	}
	return false
}
