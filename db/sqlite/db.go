// Package sqlite is Doorman's embedded store (the default): db.Store on a
// SQLite file through the pure-Go modernc.org/sqlite driver. Every method
// takes a context, returns wrapped errors and keeps ownership checks in the
// SQL.
package sqlite

import (
	"context"
	"crypto/rand"
	"database/sql"
	"database/sql/driver"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"syscall"
	"time"

	"modernc.org/sqlite" // also registers the "sqlite" driver
	sqlite3 "modernc.org/sqlite/lib"
	zsqlite "zombiezen.com/go/sqlite"

	"doorman/db"
	"doorman/db/sqlstore"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Store is the SQLite implementation of Doorman's storage. It is safe for
// concurrent use.
//
// SQLite allows one writer at a time. Instead of letting many connections race
// for the write lock (and fail with SQLITE_BUSY), every write goes through a
// pool of exactly one connection, and reads use a separate pool that WAL mode
// lets run alongside it.
type Store struct {
	// The store's methods, written once for both databases, over this
	// package's dialect.
	*sqlstore.Store
	dialect *dialect
	write   *writer
	read    *sql.DB
	// hot holds the connections of the hot reads (hot.go).
	hot    *hotPool
	events db.EventSink
	now    func() time.Time
	// origin names this process's rows in session_events (see Watch).
	origin string
	// readOnlyCause is why a default open found the database unwritable
	// and opened it read-only (see ReadOnlyCause); nil otherwise.
	readOnlyCause error
}

var _ db.Store = (*Store)(nil)

// Open opens the database at path. By default it creates the file if
// needed (mode 0600: it holds password hashes and the application secret)
// and applies pending migrations. With opts.ReadOnly or opts.Existing it
// only opens a file that is already a Doorman database of this version,
// never creates or migrates one. Unless opts.AllowSharedFileMode, it refuses
// a database file (or its -wal/-shm) that other users may read or write.
//
// A default open of a database that cannot be written (the file, its
// -wal or -shm will not open for writing, or the directory takes no new
// files: a read-only disk or volume, an immutable file) does not fail on
// the first write: if the schema is current it opens read-only, as with
// opts.ReadOnly, and ReadOnlyCause says why; if it would need a migration
// it is refused, with the reason and what to do.
func Open(ctx context.Context, path string, opts db.Options) (*Store, error) {
	readOnlyCause, err := checkFile(path, &opts)
	if err != nil {
		return nil, err
	}
	existing := opts.ReadOnly || opts.Existing
	// _txlock=immediate takes the write lock at BEGIN, so a transaction that
	// reads then writes can never deadlock against another writer.
	//
	// secure_delete overwrites with zeros what a write frees (a deleted
	// row, the old text of an updated one, a freed page), in the pages it
	// writes, so erased data (a sent mail's bodies, a used link's or
	// ended session's hash) does not linger in free space for a copy of
	// the file to find. On the DSN so every pooled connection has it (it
	// is per connection). It cannot reach older page images still in the
	// -wal until a checkpoint recycles it, which is why what must never be
	// at rest in clear (mail bodies) is sealed before it is written.
	// Cost: CPU to zero what is freed, and a write of each page that
	// becomes free (ON, not FAST, which would leave whole freed pages as
	// they were). BenchmarkMailLifecycle (queue, claim, send, prune: what
	// frees the most) and the revoke benchmarks showed no difference
	// beyond the noise of a shared 2-core machine (±50% run to run).
	pragmas := "_pragma=busy_timeout(5000)&_pragma=foreign_keys(1)&_pragma=synchronous(NORMAL)&_pragma=secure_delete(1)"
	name := "file:" + (&url.URL{Path: path}).EscapedPath()
	roQuery := "mode=ro"
	// The hot reads' connections open the same file in the same mode
	// (hot.go); the pragmas that matter to a reader they set themselves.
	hotURI, hotFlags := name, zsqlite.OpenReadWrite
	if existing {
		// Look before touching: even setting the journal mode writes.
		var err error
		if roQuery, err = readOnlyQuery(ctx, name, path); err == nil {
			err = checkSchema(ctx, name+"?"+roQuery, path, readOnlyCause)
		}
		if err != nil {
			return nil, err
		}
	}
	switch {
	case opts.ReadOnly:
		hotURI, hotFlags = name+"?"+roQuery, zsqlite.OpenReadOnly
		name += "?" + roQuery + "&_pragma=query_only(1)&"
	case opts.Existing:
		hotURI = name + "?mode=rw"
		name += "?mode=rw&_pragma=journal_mode(WAL)&"
	default:
		name += "?_pragma=journal_mode(WAL)&"
	}
	w, r, err := openPools(name+pragmas, !opts.ReadOnly)
	if err != nil {
		return nil, fmt.Errorf("db: open %s: %w", path, err)
	}
	s := &Store{write: &writer{DB: w}, read: r, hot: newHotPool(hotURI, hotFlags, readers), events: opts.Events, now: opts.Now, origin: rand.Text(), readOnlyCause: readOnlyCause}
	if s.now == nil {
		s.now = time.Now
	}
	s.dialect = &dialect{s: s}
	s.Store = sqlstore.New(s.dialect, opts, s.origin)
	if !existing {
		err = s.migrate(ctx)
	}
	if err == nil {
		err = s.hot.fill()
	}
	if err != nil {
		s.Close()
		return nil, err
	}
	if !opts.AllowSharedFileMode {
		// SQLite gives -wal and -shm the main file's mode; check anyway.
		if err := checkPrivate(path); err != nil {
			s.Close()
			return nil, err
		}
	}
	return s, nil
}

// checkFile makes sure the database file at path is there (creating an
// empty one, readable by its owner only, for a default open) and private
// (unless opts.AllowSharedFileMode). For a default open of a file that
// cannot be written it returns why, and makes opts read-only.
func checkFile(path string, opts *db.Options) (readOnlyCause error, err error) {
	existing := opts.ReadOnly || opts.Existing
	if existing {
		if _, err := os.Stat(path); err != nil {
			return nil, fmt.Errorf("db: database %s: %w", path, err)
		}
	} else if err := createPrivate(path); err != nil {
		return nil, err
	}
	if !opts.AllowSharedFileMode {
		if err := checkPrivate(path); err != nil {
			return nil, err
		}
	}
	if !existing {
		if readOnlyCause = notWritable(path); readOnlyCause != nil {
			opts.ReadOnly = true
		}
	}
	return readOnlyCause, nil
}

// readers is how many connections may read at once, in each of the two
// reader pools (the database/sql readers and the hot reads').
var readers = max(4, runtime.NumCPU()*2)

// openPools opens the writer pool (one connection, the write lock taken
// at BEGIN, each new connection checked able to write if probe) and the
// reader pool (query_only) on the database the DSN dsn names.
func openPools(dsn string, probe bool) (w, r *sql.DB, err error) {
	wc, err := sqlite.NewConnector(dsn + "&_txlock=immediate")
	if err != nil {
		return nil, nil, err
	}
	w = sql.OpenDB(writerConnector{wc, probe})
	w.SetMaxOpenConns(1)
	w.SetConnMaxIdleTime(0)
	if r, err = sql.Open("sqlite", dsn+"&_pragma=query_only(1)"); err != nil {
		w.Close()
		return nil, nil, err
	}
	// The hot reads have connections of their own (hot.go), so these
	// serve the rest; fewer kept idle, as each holds a page cache.
	r.SetMaxOpenConns(readers)
	r.SetMaxIdleConns(2)
	return w, r, nil
}

// ReadOnlyCause is why Open found the database unwritable and opened it
// read-only (db.ReadOnlyStart), or nil.
func (s *Store) ReadOnlyCause() error { return s.readOnlyCause }

// notWritable says why SQLite could not write the database at path, or
// nil if it can: the file, or its -wal or -shm, will not open for writing
// (a read-only disk, an immutable file, or not ours), or one of those two
// is missing and the directory will not take it. Nothing is written: the
// files are opened and closed, the directory probe is an empty file
// created and removed again.
func notWritable(path string) error {
	missing := false
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		f, err := os.OpenFile(p, os.O_RDWR, 0)
		if errors.Is(err, fs.ErrNotExist) && p != path {
			missing = true
			continue
		}
		if err != nil {
			return readOnlyError(err)
		}
		f.Close()
	}
	if missing {
		f, err := os.CreateTemp(filepath.Dir(path), ".doorman-write-check-*")
		if err != nil {
			return readOnlyError(err)
		}
		f.Close()
		os.Remove(f.Name())
	}
	return nil
}

// readOnlyError is err if it means "cannot write here", else nil (any
// other failure is left for the open itself to report).
func readOnlyError(err error) error {
	if errors.Is(err, syscall.EROFS) || errors.Is(err, fs.ErrPermission) {
		return err
	}
	return nil
}

// readOnlyQuery is the DSN query that reads the database (name, as a DSN)
// without writing: mode=ro, unless SQLite cannot open it so because
// reading a WAL database needs its -shm, which a read-only directory
// cannot take. Then, if there is no -wal (the file holds every committed
// change, and nothing can add a -wal in that directory), immutable=1,
// which reads the file alone. With a -wal but no -shm it cannot be read
// safely (immutable would ignore the log, so changes committed there, a
// sign-out among them, would be lost): refused.
// Any other failure (not a database at all) is left to checkSchema.
func readOnlyQuery(ctx context.Context, name, path string) (string, error) {
	for _, q := range []string{"mode=ro", "mode=ro&immutable=1"} {
		if q != "mode=ro" {
			if _, err := os.Stat(path + "-wal"); !errors.Is(err, fs.ErrNotExist) {
				return "", fmt.Errorf("db: %s cannot be read without writing: SQLite needs to create %s-shm to read its write-ahead log %s-wal (which may hold changes not yet in the file): make the directory writable (remount the disk read-write) and start again", path, path, path)
			}
		}
		probe, err := sql.Open("sqlite", name+"?"+q+"&_pragma=query_only(1)&_pragma=busy_timeout(5000)")
		if err != nil {
			return "", fmt.Errorf("db: open %s: %w", path, err)
		}
		err = probe.PingContext(ctx)
		if err == nil {
			_, err = probe.ExecContext(ctx, `SELECT 1 FROM sqlite_master LIMIT 1`)
		}
		probe.Close()
		var se *sqlite.Error
		if err == nil || !errors.As(err, &se) || se.Code()&0xff != sqlite3.SQLITE_CANTOPEN {
			return q, nil
		}
	}
	return "", fmt.Errorf("db: %s cannot be opened for reading", path)
}

// errReadOnlyFile is why a writer connection was refused: SQLite could
// open the database file for reading only.
var errReadOnlyFile = errors.New("db: the database file opened read-only")

// writerConnector opens the writer pool's connections, refusing one that
// could not write (when probe is set: not for a ReadOnly store).
//
// Why: when the database file or its -wal cannot be opened for writing
// (made read-only or immutable, a read-only mount), SQLite does not fail
// the open but quietly opens them read-only, and that connection stays
// read-only for its life. The writer pool keeps its one connection
// forever, so one opened then (after database/sql dropped the old one, as
// it does when a request deadline interrupts a write) would refuse every
// write with SQLITE_READONLY long after the file is writable again, until
// a restart. Failing the open instead gives that request a 503
// (IsUnavailable) and the next write tries a fresh connection.
type writerConnector struct {
	driver.Connector
	probe bool
}

func (c writerConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.Connector.Connect(ctx)
	if err != nil || !c.probe {
		return conn, err
	}
	// Two checks, as neither catches both cases, and neither writes: a
	// database file opened read-only shows in sqlite3_db_readonly (BEGIN
	// IMMEDIATE succeeds on it); a WAL opened read-only does not, but
	// makes BEGIN IMMEDIATE fail. Once per connection, under the caller's
	// deadline and the DSN's busy_timeout. (IsReadOnly is modernc's
	// sqlite3_db_readonly; "main" always exists, so it cannot fail.)
	if ro, ok := conn.(interface{ IsReadOnly(string) (bool, error) }); ok {
		if yes, _ := ro.IsReadOnly("main"); yes {
			conn.Close()
			return nil, errReadOnlyFile
		}
	}
	ex := conn.(driver.ExecerContext)
	if _, err = ex.ExecContext(ctx, `BEGIN IMMEDIATE`, nil); err == nil {
		_, err = ex.ExecContext(ctx, `ROLLBACK`, nil)
	}
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("db: writer connection cannot write: %w", err)
	}
	return conn, nil
}

// createPrivate creates an empty database file readable by its owner only,
// if there is none.
func createPrivate(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("db: create %s: %w", path, err)
	}
	return f.Close()
}

// checkPrivate refuses a database whose file, -wal or -shm grants any
// permission to the group or others: they hold password hashes and the
// application secret.
func checkPrivate(path string) error {
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		fi, err := os.Stat(p)
		if errors.Is(err, fs.ErrNotExist) && p != path {
			continue
		}
		if err != nil {
			return fmt.Errorf("db: %s: %w", p, err)
		}
		if m := fi.Mode().Perm(); m&0o077 != 0 {
			return fmt.Errorf("db: %s has mode %04o, so other users can read it (it holds password hashes): run `chmod 600 %s*`, or start with -db-allow-shared-file-mode if this is deliberate", p, m, path)
		}
	}
	return nil
}

// checkSchema makes sure the file (name, as a DSN) is a Doorman database with
// every migration of this version applied, reading it through a read-only
// connection that changes nothing.
//
// cannotWrite, if not nil, is why the caller cannot write the database
// (a default open that found it read-only): then what to do is to make it
// writable, not to migrate it.
func checkSchema(ctx context.Context, name, path string, cannotWrite error) error {
	probe, err := sql.Open("sqlite", name+"&_pragma=query_only(1)&_pragma=busy_timeout(5000)")
	if err != nil {
		return fmt.Errorf("db: open %s: %w", path, err)
	}
	defer probe.Close()
	var version sql.NullInt64
	err = probe.QueryRowContext(ctx, `SELECT MAX(version) FROM schema_migrations`).Scan(&version)
	if cannotWrite != nil && (err != nil || !version.Valid) {
		return fmt.Errorf("db: %s cannot be written (%v) and is not yet a Doorman database, so this Doorman cannot create its tables: make the file and its directory writable (remount the disk read-write), or point -db at the right file", path, cannotWrite)
	}
	if err != nil || !version.Valid {
		return fmt.Errorf("db: %s is not a Doorman database", path)
	}
	want, err := latestMigration()
	if err != nil {
		return err
	}
	if cannotWrite != nil && int(version.Int64) != want {
		return fmt.Errorf("db: %s cannot be written (%v), and it is at schema version %d where this Doorman needs %d, so it cannot migrate it: make the file, its -wal and -shm and their directory writable (remount the disk read-write, or fix the permissions or the immutable attribute) and start again; or run the Doorman release of schema version %d on it read-only", path, cannotWrite, version.Int64, want, version.Int64)
	}
	if int(version.Int64) != want {
		return fmt.Errorf("db: %s is at schema version %d, this Doorman needs %d: start the server of this version on it once to migrate it", path, version.Int64, want)
	}
	return nil
}

// writer is the writer pool, counting what it is asked to do. Every
// statement sent to it is one write transaction (an autocommit statement, or
// a BEGIN), so the count is the number of SQLite write transactions: cheap
// to keep (one atomic add) and what the benchmarks need to show that page
// views do not write.
type writer struct {
	*sql.DB
	n atomic.Uint64
}

func (w *writer) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	w.n.Add(1)
	return w.DB.ExecContext(ctx, query, args...)
}

func (w *writer) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	w.n.Add(1)
	return w.DB.QueryRowContext(ctx, query, args...)
}

func (w *writer) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	w.n.Add(1)
	return w.DB.QueryContext(ctx, query, args...)
}

func (w *writer) BeginTx(ctx context.Context, opts *sql.TxOptions) (*sql.Tx, error) {
	w.n.Add(1)
	return w.DB.BeginTx(ctx, opts)
}

// WriteTransactions returns how many write transactions the store has run
// since it was opened.
func (s *Store) WriteTransactions() uint64 { return s.write.n.Load() }

// Ping checks that a read and the writer both answer.
func (s *Store) Ping(ctx context.Context) error {
	var one int
	if err := s.read.QueryRowContext(ctx, `SELECT 1`).Scan(&one); err != nil {
		return fmt.Errorf("db: ping: %w", err)
	}
	if err := s.write.PingContext(ctx); err != nil {
		return fmt.Errorf("db: ping: %w", err)
	}
	return nil
}

// Close closes both connection pools.
func (s *Store) Close() error {
	s.hot.close()
	return errors.Join(s.write.Close(), s.read.Close())
}

// migrate applies the embedded migrations not run yet (sqlstore.Migrate),
// on the writer connection.
func (s *Store) migrate(ctx context.Context) error {
	return sqlstore.Migrate(ctx, migrator{sqlQ{s.write}, s.dialect}, migrations, "migrations", s.now())
}

// migrator is sqlstore.Migrator on the writer connection.
type migrator struct {
	sqlQ
	d *dialect
}

func (m migrator) Write(ctx context.Context, fn func(tx sqlstore.Q) error) error {
	return m.d.Write(ctx, fn)
}

// migrationFiles lists the embedded migrations in order.
func migrationFiles() ([]db.Migration, error) { return db.Migrations(migrations, "migrations") }

// latestMigration is the version of the newest embedded migration.
func latestMigration() (int, error) {
	files, err := migrationFiles()
	if err != nil || len(files) == 0 {
		return 0, fmt.Errorf("db: no migrations: %v", err)
	}
	return files[len(files)-1].Version, nil
}

// BackupTo writes a consistent copy of the live database to path (which
// must not exist), readable by its owner only: SQLite's VACUUM INTO, which
// reads one snapshot while the server goes on writing.
func (s *Store) BackupTo(ctx context.Context, path string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("db: backup: %w", err)
	}
	f.Close()
	// On the writer connection: the readers are query_only, which refuses
	// VACUUM. It reads a snapshot and takes no write lock on this database.
	if _, err := s.write.DB.ExecContext(ctx, `VACUUM INTO ?`, path); err != nil {
		os.Remove(path)
		return fmt.Errorf("db: backup: %w", err)
	}
	return nil
}
