// Package sqlstore is Doorman's store written once: every method of
// db.Store, with its transactions and statements, over a Dialect that
// supplies the connections and the few things SQLite and PostgreSQL do
// differently (placeholders, row locks, advisory locks, telling other
// processes what changed, recognising a duplicate or an unavailable
// database, reading several lists in one round trip, holding a transaction
// open across calls for the bulk insert). The dialects live
// with their drivers and migrations (db/sqlite, db/postgres); the same
// black-box conformance suite (db/storetest) runs against both.
//
// Statements are written once, with SQLite's placeholders: ? for each
// argument in turn, or ?N for the Nth argument when one is used twice (never
// both in one statement). The PostgreSQL dialect rewrites them to $N.
package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"doorman/db"
)

// ErrNoRows is what a Row's Scan returns when the query matched nothing,
// whichever the dialect.
var ErrNoRows = errors.New("sqlstore: no rows")

// Row is one row a query returned (or ErrNoRows from Scan).
type Row interface {
	Scan(dest ...any) error
}

// Rows are the rows a query returned. Close may be called more than once.
type Rows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
	Close()
}

// Q runs statements: a pool, or one transaction.
type Q interface {
	// Exec runs a statement and returns how many rows it changed.
	Exec(ctx context.Context, query string, args ...any) (int64, error)
	Query(ctx context.Context, query string, args ...any) (Rows, error)
	QueryRow(ctx context.Context, query string, args ...any) Row
}

// Tx is a transaction begun by Dialect.Begin. Once it has ended, it must
// not be used again.
type Tx interface {
	Q
	Commit(ctx context.Context) error
	Rollback(ctx context.Context) error
}

// Read is one query of a Batch: its statement and arguments, and what
// reads its rows.
type Read struct {
	SQL  string
	Args []any
	Scan func(Rows) error
}

// Take gives r.Scan the rows a query of r's returned (rows, err as the
// query gave them), and closes them.
func (r Read) Take(rows Rows, err error) error {
	if err != nil {
		return err
	}
	defer rows.Close()
	return r.Scan(rows)
}

// Dialect is what differs between the databases.
type Dialect interface {
	// Reads is where reads outside a transaction go.
	Reads() Q
	// Hot is Reads for the few reads behind every request (the session
	// check, the Security page's lists, the API's token check): SQLite
	// runs them on SQLite's statement API directly, each statement
	// prepared once per connection (db/sqlite/hot.go).
	Hot() Q
	// Writes runs single statements that write, each its own transaction
	// (SQLite: on its one writer connection).
	Writes() Q
	// Write runs fn in one write transaction, committed if fn returns nil.
	// The dialect orders it against every other write as its database
	// does: SQLite has one writer, PostgreSQL takes row locks (RowLocks).
	Write(ctx context.Context, fn func(tx Q) error) error
	// Begin starts a write transaction that its caller holds open across
	// many calls and ends with Commit or Rollback: the bulk insert's (see
	// BeginBulk). It is ordered against other writes as Write's are
	// (SQLite: it holds the one writer until it ends, and prepares each
	// statement once for the transaction's life).
	Begin(ctx context.Context) (Tx, error)
	// Batch runs the reads together (PostgreSQL: one round trip), each
	// Scan given its rows in order.
	Batch(ctx context.Context, reads ...Read) error
	// RowLocks reports whether a write must lock the rows it decides on
	// (SELECT … FOR UPDATE): PostgreSQL yes, SQLite no (one writer at a
	// time, the write lock taken at BEGIN).
	RowLocks() bool
	// LockKey takes, in tx, a lock on key in class held to its end, which
	// serialises the writes that take it (PostgreSQL: an advisory lock;
	// SQLite: nothing, its writes are serial already).
	LockKey(ctx context.Context, tx Q, class int32, key string) error
	// Announce tells, in tx, the other processes sharing the database
	// what the transaction started and ended, once it commits (SQLite:
	// rows in session_events; PostgreSQL: NOTIFY). origin is this process.
	Announce(ctx context.Context, tx Q, origin string, events []db.Event) error
	// ExecBatch runs the statements in tx, in order (PostgreSQL: in one
	// round trip). The first error ends it.
	ExecBatch(ctx context.Context, tx Q, stmts ...Stmt) error
	// IsUniqueViolation reports whether err is a unique (or primary key)
	// constraint's.
	IsUniqueViolation(err error) bool
	// IsForeignKeyViolation reports whether err is a foreign key's.
	IsForeignKeyViolation(err error) bool
	// Columns names the columns of rows a query returned.
	Columns(rows Rows) ([]string, error)
}

// Stmt is one statement of an ExecBatch.
type Stmt struct {
	SQL  string
	Args []any
}

// Store is db.Store over a Dialect. It is safe for concurrent use.
type Store struct {
	d      Dialect
	events db.EventSink
	now    func() time.Time
	// origin names this process in what it announces (see Announce).
	origin string
}

// New returns the store over d: events and now as in opts, origin the
// name this process announces its changes with.
func New(d Dialect, opts db.Options, origin string) *Store {
	s := &Store{d: d, events: opts.Events, now: opts.Now, origin: origin}
	if s.now == nil {
		s.now = time.Now
	}
	return s
}

// notify reports committed changes to the event sink, if there is one.
func (s *Store) notify(events []db.Event) {
	if s.events != nil && len(events) > 0 {
		s.events.Notify(events)
	}
}

// forUpdate is the row lock a write's read takes on PostgreSQL.
func (s *Store) forUpdate(mode string) string {
	if !s.d.RowLocks() {
		return ""
	}
	return " FOR " + mode
}

// fromUnix reads a time stored as Unix seconds where 0 means never.
func fromUnix(sec int64) time.Time {
	if sec == 0 {
		return time.Time{}
	}
	return time.Unix(sec, 0)
}

// optionalTime reads a nullable time column: NULL is the zero time.
func optionalTime(at *int64) time.Time {
	if at == nil {
		return time.Time{}
	}
	return time.Unix(*at, 0)
}

// failed is a method's error: the store's sentinels as they are (callers
// compare them), anything else wrapped with what the method was doing.
func failed(what string, err error) error {
	if err == nil {
		return nil
	}
	for _, sentinel := range []error{db.ErrNotFound, db.ErrConflict, db.ErrEmailTaken, db.ErrSignInsReset,
		db.ErrLinkUsed, db.ErrTwoFactorEnabled, db.ErrCodeUsed, db.ErrPasskeyLimit} {
		if errors.Is(err, sentinel) {
			return err
		}
	}
	return fmt.Errorf("db: %s: %w", what, err)
}

// notFound is err, with ErrNoRows made db.ErrNotFound.
func notFound(err error) error {
	if errors.Is(err, ErrNoRows) {
		return db.ErrNotFound
	}
	return err
}

// numbered is "?from, ?from+1, …" for n arguments (an IN list in a
// statement whose other placeholders are numbered).
func numbered(from, n int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("?" + strconv.Itoa(from+i))
	}
	return b.String()
}

// placeholders is "?, ?, …" for n arguments (an IN list).
func placeholders(n int) string {
	if n <= 0 {
		return ""
	}
	return "?" + strings.Repeat(", ?", n-1)
}

// toUnix stores a time as Unix seconds, the zero time as 0 (never).
func toUnix(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.Unix()
}

// Lock order. On PostgreSQL a transaction that locks rows belonging to a
// user takes the user's row first (FOR KEY SHARE, the lock a foreign key
// check of a token, a device authorization, a link or a history row would
// take later; FOR UPDATE where the write changes the user or must be
// ordered against every reset of their sign-ins): DeleteUser locks the
// user's row and then, by cascade, everything of theirs, so taking those
// first could deadlock with it. An app's row comes before its device
// authorizations and tokens. On SQLite the single writer orders every
// write and these locks are not taken (Dialect.RowLocks).

// lockUserKey takes the user's row lock FOR KEY SHARE (PostgreSQL; on
// SQLite it only reads): db.ErrNotFound if there is no such user, on both,
// so a write about a user who is gone answers the same on either.
func (s *Store) lockUserKey(ctx context.Context, tx Q, userID int64) error {
	var one int
	return notFound(tx.QueryRow(ctx, `SELECT 1 FROM users WHERE id = ?`+s.forUpdate("KEY SHARE"), userID).Scan(&one))
}

// lockUser takes the user's row lock FOR UPDATE (PostgreSQL; on SQLite it
// only reads) and returns the user's address: db.ErrNotFound if there is
// no such user.
func (s *Store) lockUser(ctx context.Context, tx Q, userID int64) (email string, err error) {
	err = tx.QueryRow(ctx, `SELECT email FROM users WHERE id = ?`+s.forUpdate("UPDATE"), userID).Scan(&email)
	return email, notFound(err)
}

// checkEpochIn is the check every write that mints a credential makes
// inside its transaction (a session, a token, a redeemed device approval):
// the user exists (else db.ErrNotFound), is not disabled, and its epoch is
// still epoch, the one the request read (else db.ErrSignInsReset). The
// user's row lock (PostgreSQL: FOR UPDATE; SQLite: the single writer)
// orders it against every reset, each of which moves the epoch first.
func (s *Store) checkEpochIn(ctx context.Context, tx Q, userID, epoch int64) error {
	var current int64
	var disabled *int64
	err := tx.QueryRow(ctx, `SELECT epoch, disabled_at FROM users WHERE id = ?`+s.forUpdate("UPDATE"), userID).Scan(&current, &disabled)
	if err != nil {
		return notFound(err)
	}
	if current != epoch || disabled != nil {
		return db.ErrSignInsReset
	}
	return nil
}
