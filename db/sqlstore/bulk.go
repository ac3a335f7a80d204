package sqlstore

import (
	"context"
	"errors"
	"time"

	"doorman/db"
)

// bulk is db.Bulk: many users and sessions inserted in large transactions
// (Dialect.Begin), for the seeding command and the benchmarks. It is not
// used by the server. A session goes in exactly as CreateSession puts it,
// sign-in place included (insertSession), but without its checks, its
// security history event, announcement or notification.
type bulk struct {
	s  *Store
	tx Tx // nil once ended
	// inTx counts the rows added in tx.
	inTx int
	// pending are the statements of the sessions added but not sent yet:
	// they go together (PostgreSQL: in one round trip) once there are
	// bulkSend sessions' worth, and before a commit. A user goes at once,
	// since its id is needed.
	pending []Stmt
}

const (
	// bulkBatch is how many rows go in one transaction: large enough that
	// the commit cost vanishes, small enough that SQLite's WAL file stays
	// modest.
	bulkBatch = 20_000
	// bulkSend is how many sessions go in one ExecBatch.
	bulkSend = 500
)

// errBulkEnded is what a bulk insert answers once it has committed or
// failed.
var errBulkEnded = errors.New("the bulk insert has ended")

// BeginBulk starts a bulk insert. Call Commit when done.
func (s *Store) BeginBulk(ctx context.Context) (db.Bulk, error) {
	tx, err := s.d.Begin(ctx)
	if err != nil {
		return nil, failed("bulk begin", err)
	}
	return &bulk{s: s, tx: tx}, nil
}

// send sends the pending statements.
func (b *bulk) send(ctx context.Context) error {
	err := b.s.d.ExecBatch(ctx, b.tx, b.pending...)
	b.pending = b.pending[:0]
	return err
}

// commit sends what is pending and commits the transaction.
func (b *bulk) commit(ctx context.Context) error {
	err := b.send(ctx)
	if err != nil {
		b.tx.Rollback(ctx)
	} else {
		err = b.tx.Commit(ctx)
	}
	b.tx, b.inTx = nil, 0
	return err
}

// added counts a row that went in (err nil) and commits the transaction
// when the batch is full, starting the next. A failure rolls back what the
// transaction had added and ends the bulk insert, so SQLite's writer is not
// held by a transaction no one will end.
func (b *bulk) added(ctx context.Context, what string, err error) error {
	if err != nil {
		b.tx.Rollback(ctx)
		b.tx = nil
		return failed(what, err)
	}
	if b.inTx++; b.inTx < bulkBatch {
		return nil
	}
	if err = b.commit(ctx); err == nil {
		b.tx, err = b.s.d.Begin(ctx)
	}
	return failed(what, err)
}

// AddUser inserts a user and returns its id.
func (b *bulk) AddUser(ctx context.Context, email, passwordHash string, now time.Time) (int64, error) {
	if b.tx == nil {
		return 0, failed("bulk user", errBulkEnded)
	}
	var id int64
	err := b.tx.QueryRow(ctx, `INSERT INTO users (email, password_hash, created_at, is_demo) VALUES (?, ?, ?, ?) RETURNING id`,
		email, passwordHash, now.Unix(), false).Scan(&id)
	return id, b.added(ctx, "bulk user", err)
}

// AddSession inserts a session row and its sign-in place, as CreateSession
// would. They may be sent with later ones: an error of theirs may be a
// later call's.
func (b *bulk) AddSession(ctx context.Context, sess db.Session) error {
	if b.tx == nil {
		return failed("bulk session", errBulkEnded)
	}
	insert := insertSession(sess)
	b.pending = append(b.pending, insert[:]...)
	var err error
	if len(b.pending) >= bulkSend*len(insert) {
		err = b.send(ctx)
	}
	return b.added(ctx, "bulk session", err)
}

// Commit commits what was added since the last batch and ends the bulk
// insert.
func (b *bulk) Commit(ctx context.Context) error {
	if b.tx == nil {
		return failed("bulk commit", errBulkEnded)
	}
	return failed("bulk commit", b.commit(ctx))
}
