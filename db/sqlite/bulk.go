package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"doorman/db"
)

// Bulk inserts many users and sessions fast, for the seeding command and the
// benchmarks: one prepared statement per table, inside large transactions on
// the writer connection. It is not used by the server.
type Bulk struct {
	s           *Store
	tx          *sql.Tx
	user, sess  *sql.Stmt
	inTx, batch int
}

// bulkBatch is how many rows go in one transaction: large enough that the
// commit cost vanishes, small enough that the WAL file stays modest.
const bulkBatch = 20_000

// BeginBulk starts a bulk insert. Call Commit when done.
func (s *Store) BeginBulk(ctx context.Context) (db.Bulk, error) {
	// A large page cache on the writer connection keeps the random-order
	// inserts into the id index from spilling pages (~200 MB at most).
	if _, err := s.write.ExecContext(ctx, `PRAGMA cache_size = -200000`); err != nil {
		return nil, fmt.Errorf("db: bulk: %w", err)
	}
	b := &Bulk{s: s, batch: bulkBatch}
	if err := b.begin(ctx); err != nil {
		return nil, err
	}
	return b, nil
}

func (b *Bulk) begin(ctx context.Context) error {
	tx, err := b.s.write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("db: bulk begin: %w", err)
	}
	b.tx, b.inTx = tx, 0
	if b.user, err = tx.PrepareContext(ctx, `INSERT INTO users (email, password_hash, created_at, is_demo) VALUES (?, ?, ?, 0)`); err != nil {
		return fmt.Errorf("db: bulk prepare: %w", err)
	}
	b.sess, err = tx.PrepareContext(ctx, `INSERT INTO sessions (id, secret_hash, user_id, created_at, last_seen_at,
		idle_expires_at, absolute_expires_at, ip, user_agent, device_label, device_kind, location, location_short, auth_method, reauth_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return fmt.Errorf("db: bulk prepare: %w", err)
	}
	return nil
}

// next counts a row and commits the transaction when the batch is full.
func (b *Bulk) next(ctx context.Context) error {
	if b.inTx++; b.inTx < b.batch {
		return nil
	}
	if err := b.Commit(ctx); err != nil {
		return err
	}
	return b.begin(ctx)
}

// AddUser inserts a user and returns its id.
func (b *Bulk) AddUser(ctx context.Context, email, passwordHash string, now time.Time) (int64, error) {
	res, err := b.user.ExecContext(ctx, email, passwordHash, now.Unix())
	if err != nil {
		return 0, fmt.Errorf("db: bulk user: %w", err)
	}
	id, err := res.LastInsertId()
	if err != nil {
		return 0, fmt.Errorf("db: bulk user: %w", err)
	}
	return id, b.next(ctx)
}

// AddSession inserts a session row, as CreateSession would.
func (b *Bulk) AddSession(ctx context.Context, sess db.Session) error {
	if _, err := b.sess.ExecContext(ctx, sess.ID, sess.SecretHash, sess.UserID, sess.CreatedAt.Unix(), sess.LastSeenAt.Unix(),
		sess.IdleExpiresAt.Unix(), sess.AbsoluteExpiresAt.Unix(), sess.IP, sess.UserAgent,
		sess.DeviceLabel, sess.DeviceKind, sess.Location, sess.LocationShort, sess.AuthMethod, sess.CreatedAt.Unix()); err != nil {
		return fmt.Errorf("db: bulk session: %w", err)
	}
	return b.next(ctx)
}

// Commit commits what was added so far and ends the bulk insert.
func (b *Bulk) Commit(context.Context) error {
	b.user.Close()
	b.sess.Close()
	if err := b.tx.Commit(); err != nil {
		return fmt.Errorf("db: bulk commit: %w", err)
	}
	return nil
}
