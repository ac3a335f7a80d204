package sqlite

import (
	"context"
	"database/sql"
	"errors"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"doorman/db"
	"doorman/db/sqlstore"
)

// dialect is SQLite's side of sqlstore.Dialect: reads on the read pool
// (WAL lets them run beside the writer), every write on the one writer
// connection, whose transactions take the write lock at BEGIN.
type dialect struct {
	s *Store
}

var _ sqlstore.Dialect = (*dialect)(nil)

func (d *dialect) Reads() sqlstore.Q  { return sqlQ{d.s.read} }
func (d *dialect) Writes() sqlstore.Q { return sqlQ{d.s.write} }
func (d *dialect) Hot() sqlstore.Q    { return hotQ{d} }
func (d *dialect) RowLocks() bool     { return false }

// LockKey takes nothing: SQLite's writes are serial already.
func (d *dialect) LockKey(context.Context, sqlstore.Q, int32, string) error { return nil }

func (d *dialect) Write(ctx context.Context, fn func(tx sqlstore.Q) error) error {
	tx, err := d.s.write.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := fn(sqlQ{tx}); err != nil {
		return err
	}
	return tx.Commit()
}

// Begin starts a transaction on the writer connection, held (and the
// write lock with it) until Commit or Rollback. Its statements are each
// prepared once: a bulk insert runs the same few hundreds of thousands of
// times, and parsing them cost more than running them.
func (d *dialect) Begin(ctx context.Context) (sqlstore.Tx, error) {
	// A large page cache on the writer connection keeps the random-order
	// inserts into the sessions' id index from spilling pages (~200 MB
	// at most).
	if _, err := d.s.write.ExecContext(ctx, `PRAGMA cache_size = -200000`); err != nil {
		return nil, err
	}
	tx, err := d.s.write.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	return &preparedTx{tx: tx, stmts: map[string]*sql.Stmt{}}, nil
}

// preparedTx is a transaction preparing each statement once (Begin).
type preparedTx struct {
	tx    *sql.Tx
	stmts map[string]*sql.Stmt
}

// stmt is query prepared in the transaction, once.
func (t *preparedTx) stmt(ctx context.Context, query string) (*sql.Stmt, error) {
	if st, ok := t.stmts[query]; ok {
		return st, nil
	}
	st, err := t.tx.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	t.stmts[query] = st
	return st, nil
}

func (t *preparedTx) Exec(ctx context.Context, query string, args ...any) (int64, error) {
	st, err := t.stmt(ctx, query)
	if err != nil {
		return 0, err
	}
	res, err := st.ExecContext(ctx, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

func (t *preparedTx) Query(ctx context.Context, query string, args ...any) (sqlstore.Rows, error) {
	st, err := t.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	rows, err := st.QueryContext(ctx, args...)
	if err != nil {
		return nil, err
	}
	return sqlRows{rows}, nil
}

func (t *preparedTx) QueryRow(ctx context.Context, query string, args ...any) sqlstore.Row {
	st, err := t.stmt(ctx, query)
	if err != nil {
		return errRow{err}
	}
	return sqlRow{st.QueryRowContext(ctx, args...)}
}

// Commit commits the transaction (its statements close with it).
func (t *preparedTx) Commit(context.Context) error { return t.tx.Commit() }

// Rollback rolls the transaction back.
func (t *preparedTx) Rollback(context.Context) error { return t.tx.Rollback() }

// Batch runs the reads one after another as hot reads, in one read
// transaction on one connection (hotPool.batch): in-process, a round trip
// costs nothing to save, but a read lock does.
func (d *dialect) Batch(ctx context.Context, reads ...sqlstore.Read) error {
	return d.s.hot.batch(ctx, reads)
}

// Columns names the columns of rows (a hot read's, or database/sql's).
func (d *dialect) Columns(rows sqlstore.Rows) ([]string, error) {
	if r, ok := rows.(*hotRows); ok {
		return r.columns(), nil
	}
	return rows.(sqlRows).Columns()
}

// Announce writes the events to session_events, which the other processes
// on this file poll (see Watch).
func (d *dialect) Announce(ctx context.Context, tx sqlstore.Q, origin string, events []db.Event) error {
	stmts := make([]sqlstore.Stmt, len(events))
	for i, e := range events {
		kind := eventEnded
		if e.Kind == db.SessionStarted {
			kind = eventStarted
		}
		stmts[i] = sqlstore.Stmt{SQL: insertEventSQL, Args: []any{origin, kind, e.UserID, e.SessionID, e.Reason, e.By, e.At.Unix()}}
	}
	return d.ExecBatch(ctx, tx, stmts...)
}

const insertEventSQL = `INSERT INTO session_events (origin, kind, user_id, session_id, reason, ended_by, at)
	VALUES (?, ?, ?, ?, ?, ?, ?)`

// IsUniqueViolation reports whether err is SQLite's UNIQUE or PRIMARY KEY
// constraint error (a TEXT or BLOB primary key reports the latter).
func (d *dialect) IsUniqueViolation(err error) bool {
	var se *sqlite.Error
	return errors.As(err, &se) && (se.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || se.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY)
}

// execer is what database/sql's pools, connections and transactions share.
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	PrepareContext(ctx context.Context, query string) (*sql.Stmt, error)
}

// sqlQ is sqlstore.Q over database/sql.
type sqlQ struct{ c execer }

func (q sqlQ) Exec(ctx context.Context, query string, args ...any) (int64, error) {
	res, err := q.c.ExecContext(ctx, query, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

func (q sqlQ) Query(ctx context.Context, query string, args ...any) (sqlstore.Rows, error) {
	rows, err := q.c.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	return sqlRows{rows}, nil
}

func (q sqlQ) QueryRow(ctx context.Context, query string, args ...any) sqlstore.Row {
	return sqlRow{q.c.QueryRowContext(ctx, query, args...)}
}

type sqlRows struct{ *sql.Rows }

func (r sqlRows) Close() { r.Rows.Close() }

type sqlRow struct{ r *sql.Row }

func (r sqlRow) Scan(dest ...any) error {
	err := r.r.Scan(dest...)
	if errors.Is(err, sql.ErrNoRows) {
		return sqlstore.ErrNoRows
	}
	return err
}

type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }

// ExecBatch runs the statements one after another: in-process, a round
// trip costs nothing to save, but parsing does. A statement that comes
// more than once (a history row per ended session, an announcement per
// ending) is prepared once for the batch: ending 100 sessions parsed 200
// statements before (RevokeOtherSessions 13 → 39 ms).
func (d *dialect) ExecBatch(ctx context.Context, tx sqlstore.Q, stmts ...sqlstore.Stmt) error {
	q, ok := tx.(sqlQ)
	if !ok { // a Begin transaction: it prepares every statement once itself
		for _, st := range stmts {
			if _, err := tx.Exec(ctx, st.SQL, st.Args...); err != nil {
				return err
			}
		}
		return nil
	}
	seen := make(map[string]int, len(stmts))
	for _, st := range stmts {
		seen[st.SQL]++
	}
	prepared := map[string]*sql.Stmt{}
	defer func() {
		for _, p := range prepared {
			p.Close()
		}
	}()
	c := q.c
	for _, st := range stmts {
		if seen[st.SQL] == 1 {
			if _, err := c.ExecContext(ctx, st.SQL, st.Args...); err != nil {
				return err
			}
			continue
		}
		p := prepared[st.SQL]
		if p == nil {
			var err error
			if p, err = c.PrepareContext(ctx, st.SQL); err != nil {
				return err
			}
			prepared[st.SQL] = p
		}
		if _, err := p.ExecContext(ctx, st.Args...); err != nil {
			return err
		}
	}
	return nil
}

// IsForeignKeyViolation reports whether err is SQLite's FOREIGN KEY
// constraint error (a row for a user that does not exist), by its extended
// result code.
func (d *dialect) IsForeignKeyViolation(err error) bool {
	var se *sqlite.Error
	return errors.As(err, &se) && se.Code() == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY
}
