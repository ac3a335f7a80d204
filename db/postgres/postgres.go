// Package postgres is Doorman's store for teams that run several instances:
// db.Store on PostgreSQL through pgx (pgxpool). It keeps the same tables and
// the same meaning as the SQLite store, passes the same conformance suite
// (db/storetest), and like it is read on every request: no cache decides
// whether a session lives. Every method takes a context, returns wrapped
// errors and keeps ownership checks in the SQL.
package postgres

import (
	"context"
	"crypto/rand"
	"embed"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"doorman/db"
	"doorman/db/sqlstore"
)

//go:embed migrations/*.sql
var migrations embed.FS

// migrationLock is the advisory lock key held while migrating, so that two
// instances starting at once apply each migration exactly once.
const migrationLock = 0x646f6f726d616e // "doorman"

// Store is the PostgreSQL implementation of db.Store. It is safe for
// concurrent use.
type Store struct {
	// The store's methods, written once for both databases, over this
	// package's dialect.
	*sqlstore.Store
	pool   *pgxpool.Pool
	events db.EventSink
	now    func() time.Time
	// origin names this process in its notifications (see Watch).
	origin string
	// readOnlyCause is why a default open found the server taking no
	// writes (see ReadOnlyCause); nil otherwise.
	readOnlyCause error
}

var _ db.Store = (*Store)(nil)

// IsDSN reports whether dsn names a PostgreSQL database (a postgres:// or
// postgresql:// URL).
func IsDSN(dsn string) bool {
	return strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://")
}

// Open connects to the database dsn names and, unless opts.ReadOnly or
// opts.Existing, applies pending migrations (under an advisory lock). With
// ReadOnly every transaction is read-only; with either, the schema must
// already be this version's.
func Open(ctx context.Context, dsn string, opts db.Options) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("db: postgres: %w", err)
	}
	if opts.ReadOnly {
		cfg.ConnConfig.RuntimeParams["default_transaction_read_only"] = "on"
	}
	cfg.ConnConfig.RuntimeParams["application_name"] = "doorman"
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("db: postgres: %w", err)
	}
	s := &Store{pool: pool, events: opts.Events, now: opts.Now, origin: rand.Text()}
	if s.now == nil {
		s.now = time.Now
	}
	s.Store = sqlstore.New(dialect{s}, opts, s.origin)
	switch {
	case opts.ReadOnly || opts.Existing:
		err = s.checkSchema(ctx)
	default:
		// A server that takes no writes (a hot standby, or
		// default_transaction_read_only on) is served read-only if the
		// schema is current, as SQLite does on a read-only disk: reads go
		// on, writes fail with 25006, which IsUnavailable makes a 503.
		// Migrating there would only fail, so a schema that needs it is
		// refused with the reason.
		var readOnly string
		if err = pool.QueryRow(ctx, `SHOW transaction_read_only`).Scan(&readOnly); err != nil {
			err = fmt.Errorf("db: postgres: %w", err)
			break
		}
		if readOnly != "on" {
			err = s.migrate(ctx)
			break
		}
		s.readOnlyCause = errors.New("the PostgreSQL server takes no writes: transaction_read_only is on (a standby, or default_transaction_read_only)")
		if err = s.checkSchema(ctx); err != nil {
			err = fmt.Errorf("%w\n%v, so this Doorman cannot create or migrate the schema: start it once on the primary, or with default_transaction_read_only off", err, s.readOnlyCause)
		}
	}
	if err != nil {
		pool.Close()
		return nil, err
	}
	return s, nil
}

// ReadOnlyCause is why Open found the server taking no writes and opened
// the store read-only (db.ReadOnlyStart), or nil.
func (s *Store) ReadOnlyCause() error { return s.readOnlyCause }

// Ping checks the database answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.pool.Ping(ctx); err != nil {
		return fmt.Errorf("db: ping: %w", err)
	}
	return nil
}

// Close closes the pool.
func (s *Store) Close() error {
	s.pool.Close()
	return nil
}

// Pool is the connection pool (for LISTEN, which needs a connection of its
// own, and for tests).
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// migrationFiles lists the embedded migrations in order.
func migrationFiles() ([]db.Migration, error) { return db.Migrations(migrations, "migrations") }

// migrate applies the embedded migrations not run yet (sqlstore.Migrate),
// holding a session advisory lock on one connection so concurrent starts
// wait for each other.
func (s *Store) migrate(ctx context.Context) error {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("db: migrate: %w", err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, int64(migrationLock)); err != nil {
		return fmt.Errorf("db: migrate: lock: %w", err)
	}
	defer conn.Exec(context.Background(), `SELECT pg_advisory_unlock($1)`, int64(migrationLock))
	return sqlstore.Migrate(ctx, migrator{pgQ{conn}, conn}, migrations, "migrations", s.now())
}

// migrator is sqlstore.Migrator on one connection.
type migrator struct {
	pgQ
	conn *pgxpool.Conn
}

func (m migrator) Write(ctx context.Context, fn func(tx sqlstore.Q) error) error {
	return pgx.BeginFunc(ctx, m.conn, func(tx pgx.Tx) error { return fn(pgQ{tx}) })
}

// checkSchema makes sure the database holds Doorman's schema at this
// version, changing nothing.
func (s *Store) checkSchema(ctx context.Context) error {
	var version *int64
	err := s.pool.QueryRow(ctx, `SELECT MAX(version) FROM schema_migrations`).Scan(&version)
	if err != nil || version == nil {
		return errors.New("db: this PostgreSQL database is not a Doorman database")
	}
	files, err := migrationFiles()
	if err != nil || len(files) == 0 {
		return fmt.Errorf("db: no migrations: %v", err)
	}
	if want := files[len(files)-1].Version; int(*version) != want {
		return fmt.Errorf("db: the database is at schema version %d, this Doorman needs %d: start the server of this version on it once to migrate it", *version, want)
	}
	return nil
}
