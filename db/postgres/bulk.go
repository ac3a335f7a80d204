package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"doorman/db"
)

// Bulk inserts many users and sessions in large transactions, for seeding
// and benchmarks. It is not used by the server.
type Bulk struct {
	s    *Store
	tx   pgx.Tx
	inTx int
}

const bulkBatch = 20_000

// BeginBulk starts a bulk insert. Call Commit when done.
func (s *Store) BeginBulk(ctx context.Context) (db.Bulk, error) {
	b := &Bulk{s: s}
	return b, b.begin(ctx)
}

func (b *Bulk) begin(ctx context.Context) error {
	tx, err := b.s.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("db: bulk begin: %w", err)
	}
	b.tx, b.inTx = tx, 0
	return nil
}

func (b *Bulk) next(ctx context.Context) error {
	if b.inTx++; b.inTx < bulkBatch {
		return nil
	}
	if err := b.Commit(ctx); err != nil {
		return err
	}
	return b.begin(ctx)
}

// AddUser inserts a user and returns its id.
func (b *Bulk) AddUser(ctx context.Context, email, passwordHash string, now time.Time) (int64, error) {
	var id int64
	if err := b.tx.QueryRow(ctx, `INSERT INTO users (email, password_hash, created_at) VALUES ($1, $2, $3) RETURNING id`,
		email, passwordHash, now.Unix()).Scan(&id); err != nil {
		return 0, fmt.Errorf("db: bulk user: %w", err)
	}
	return id, b.next(ctx)
}

// AddSession inserts a session row, as CreateSession would.
func (b *Bulk) AddSession(ctx context.Context, sess db.Session) error {
	if _, err := b.tx.Exec(ctx, insertSessionSQL, sessionArgs(sess, sess.CreatedAt)...); err != nil {
		return fmt.Errorf("db: bulk session: %w", err)
	}
	return b.next(ctx)
}

// Commit commits what was added and ends the bulk insert.
func (b *Bulk) Commit(ctx context.Context) error {
	if err := b.tx.Commit(ctx); err != nil {
		return fmt.Errorf("db: bulk commit: %w", err)
	}
	return nil
}

// insertSessionSQL inserts a session row and, in the same statement,
// records its sign-in place (its device label and db.Network of its
// address, seen at its creation): every session created records it.
const insertSessionSQL = `WITH s AS (INSERT INTO sessions (id, secret_hash, user_id, created_at, last_seen_at,
	idle_expires_at, absolute_expires_at, ip, user_agent, device_label, device_kind, location, location_short, auth_method, reauth_at)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) RETURNING user_id, device_label, created_at)
	INSERT INTO sign_in_places (user_id, device, network, last_seen_at) SELECT user_id, device_label, $16, created_at FROM s
	` + placeConflictSQL

// placeConflictSQL is the ON CONFLICT of an upsert into sign_in_places: a
// place seen again moves its time forward, never back.
const placeConflictSQL = `ON CONFLICT (user_id, device, network)
	DO UPDATE SET last_seen_at = GREATEST(sign_in_places.last_seen_at, excluded.last_seen_at)`

func sessionArgs(s db.Session, reauth time.Time) []any {
	return []any{s.ID, s.SecretHash, s.UserID, s.CreatedAt.Unix(), s.LastSeenAt.Unix(),
		s.IdleExpiresAt.Unix(), s.AbsoluteExpiresAt.Unix(), s.IP, s.UserAgent,
		s.DeviceLabel, s.DeviceKind, s.Location, s.LocationShort, s.AuthMethod, reauth.Unix(), db.Network(s.IP)}
}
