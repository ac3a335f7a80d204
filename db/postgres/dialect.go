package postgres

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"doorman/db"
	"doorman/db/sqlstore"
)

// dialect is PostgreSQL's side of sqlstore.Dialect, over the pgx pool: the
// store's statements rebound to $N, row locks where a write decides on a
// row, advisory locks, NOTIFY, and batches in one round trip.
type dialect struct{ s *Store }

var _ sqlstore.Dialect = dialect{}

func (d dialect) Reads() sqlstore.Q  { return pgQ{d.s.pool} }
func (d dialect) Hot() sqlstore.Q    { return pgQ{d.s.pool} }
func (d dialect) Writes() sqlstore.Q { return pgQ{d.s.pool} }
func (d dialect) RowLocks() bool     { return true }

func (d dialect) Write(ctx context.Context, fn func(tx sqlstore.Q) error) error {
	return pgx.BeginFunc(ctx, d.s.pool, func(tx pgx.Tx) error { return fn(pgQ{tx}) })
}

// Begin starts a transaction on a connection of the pool, held until
// Commit or Rollback. pgx prepares each statement once per connection.
func (d dialect) Begin(ctx context.Context) (sqlstore.Tx, error) {
	tx, err := d.s.pool.Begin(ctx)
	if err != nil {
		return nil, err
	}
	return pgTx{pgQ{tx}, tx}, nil
}

// pgTx is a transaction Begin started: its statements are pgQ's.
type pgTx struct {
	pgQ
	tx pgx.Tx
}

func (t pgTx) Commit(ctx context.Context) error   { return t.tx.Commit(ctx) }
func (t pgTx) Rollback(ctx context.Context) error { return t.tx.Rollback(ctx) }

// Batch sends the reads in one round trip.
func (d dialect) Batch(ctx context.Context, reads ...sqlstore.Read) error {
	b := &pgx.Batch{}
	for _, r := range reads {
		b.Queue(sqlstore.Rebind(r.SQL), r.Args...)
	}
	br := d.s.pool.SendBatch(ctx, b)
	defer br.Close()
	for _, r := range reads {
		if err := r.Take(br.Query()); err != nil {
			return err
		}
	}
	return br.Close()
}

// Columns names the columns of rows (pgx.Rows).
func (d dialect) Columns(rows sqlstore.Rows) ([]string, error) {
	var cols []string
	for _, f := range rows.(pgx.Rows).FieldDescriptions() {
		cols = append(cols, f.Name)
	}
	return cols, nil
}

// LockKey takes a transaction-level advisory lock on (class, a hash of key).
func (d dialect) LockKey(ctx context.Context, tx sqlstore.Q, class int32, key string) error {
	_, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(?, hashtext(?))`, class, key)
	return err
}

// Announce sends the events as NOTIFY on channel, delivered when (and only
// if) tx commits.
func (d dialect) Announce(ctx context.Context, tx sqlstore.Q, origin string, events []db.Event) error {
	return announce(origin, events, func(payload string) error {
		_, err := tx.Exec(ctx, `SELECT pg_notify(?, ?)`, channel, payload)
		return err
	})
}

func (d dialect) IsUniqueViolation(err error) bool { return isUniqueViolation(err) }

// isUniqueViolation reports whether err is PostgreSQL's unique_violation.
func isUniqueViolation(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505"
}

// pgQuerier is what the pool and a transaction share.
type pgQuerier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// pgQ is sqlstore.Q over pgx, rebinding each statement's placeholders.
type pgQ struct{ c pgQuerier }

func (q pgQ) Exec(ctx context.Context, query string, args ...any) (int64, error) {
	tag, err := q.c.Exec(ctx, sqlstore.Rebind(query), args...)
	return tag.RowsAffected(), err
}

func (q pgQ) Query(ctx context.Context, query string, args ...any) (sqlstore.Rows, error) {
	return q.c.Query(ctx, sqlstore.Rebind(query), args...)
}

func (q pgQ) QueryRow(ctx context.Context, query string, args ...any) sqlstore.Row {
	return pgRow{q.c.QueryRow(ctx, sqlstore.Rebind(query), args...)}
}

type pgRow struct{ r pgx.Row }

func (r pgRow) Scan(dest ...any) error {
	err := r.r.Scan(dest...)
	if errors.Is(err, pgx.ErrNoRows) {
		return sqlstore.ErrNoRows
	}
	return err
}

// ExecBatch sends the statements in one round trip, inside tx.
func (d dialect) ExecBatch(ctx context.Context, tx sqlstore.Q, stmts ...sqlstore.Stmt) error {
	if len(stmts) == 0 {
		return nil
	}
	b := &pgx.Batch{}
	for _, st := range stmts {
		b.Queue(sqlstore.Rebind(st.SQL), st.Args...)
	}
	return tx.(interface {
		sendBatch(context.Context, *pgx.Batch) error
	}).sendBatch(ctx, b)
}

// sendBatch sends b in one round trip (q is a transaction's: Write's, or
// Begin's as pgTx).
func (q pgQ) sendBatch(ctx context.Context, b *pgx.Batch) error {
	return q.c.(interface {
		SendBatch(context.Context, *pgx.Batch) pgx.BatchResults
	}).SendBatch(ctx, b).Close()
}

// IsForeignKeyViolation reports whether err is PostgreSQL's
// foreign_key_violation (a row for a user that does not exist).
func (d dialect) IsForeignKeyViolation(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23503"
}
