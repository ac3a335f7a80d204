package sqlstore

import (
	"context"
	"strings"
	"time"

	"doorman/db"
)

// Copies of helpers other domains own, for the mail domain's methods until
// those domains move theirs here (the lead keeps one of each at merge):
// users+sessions owns scanUser/userColumns/userIn, tokens owns
// scanToken(s)/tokenColumns/revokeTokensIn.

const mailUserColumns = `id, email, password_hash, created_at, is_demo, disabled_at, epoch, email_verified_at, sign_in_alerts_off`

func mailScanUser(row Row) (db.User, error) {
	var u db.User
	var created int64
	var disabled, verified *int64
	if err := row.Scan(&u.ID, &u.Email, &u.PasswordHash, &created, &u.IsDemo, &disabled, &u.Epoch, &verified,
		&u.SignInAlertsOff); err != nil {
		return db.User{}, err
	}
	u.CreatedAt = time.Unix(created, 0)
	u.DisabledAt, u.EmailVerifiedAt = optionalTime(disabled), optionalTime(verified)
	return u, nil
}

// mailUserIn reads the user inside tx (db.ErrNotFound if there is none).
func (s *Store) mailUserIn(ctx context.Context, tx Q, id int64) (db.User, error) {
	u, err := mailScanUser(tx.QueryRow(ctx, `SELECT `+mailUserColumns+` FROM users WHERE id = ?`, id))
	return u, notFound(err)
}

const mailTokenColumns = `id, secret_hash, user_id, kind, name, client_id, scopes, created_at, expires_at,
	created_ip, created_location, last_used_at, last_used_ip, last_used_location,
	revoked_at, revoked_reason, revoked_by`

// mailTokenAlive is the one definition, in SQL, of a live token (what
// db.Token.Alive says) at the time in parameter ?1.
const mailTokenAlive = `revoked_at IS NULL AND expires_at > ?1`

func mailScanToken(row Row) (db.Token, error) {
	var t db.Token
	var scopes string
	var created, expires, used int64
	var revokedAt *int64
	var reason, by *string
	if err := row.Scan(&t.ID, &t.SecretHash, &t.UserID, &t.Kind, &t.Name, &t.ClientID, &scopes, &created, &expires,
		&t.CreatedIP, &t.CreatedLocation, &used, &t.LastUsedIP, &t.LastUsedLocation, &revokedAt, &reason, &by); err != nil {
		return db.Token{}, err
	}
	t.Scopes = strings.Fields(scopes)
	t.CreatedAt, t.ExpiresAt, t.LastUsedAt = time.Unix(created, 0), time.Unix(expires, 0), fromUnix(used)
	t.RevokedAt = optionalTime(revokedAt)
	if reason != nil {
		t.RevokedReason = *reason
	}
	if by != nil {
		t.RevokedBy = *by
	}
	return t, nil
}

// mailScanTokens reads every row of a query of mailTokenColumns (rows, err
// as the query gave them), closing them.
func mailScanTokens(rows Rows, err error) ([]db.Token, error) {
	return scanAll(rows, err, mailScanToken)
}

// mailRevokeTokensIn ends, in tx, the live tokens matching where (whose
// parameters are numbered from ?4: ?1 is now, ?2 the reason, ?3 who),
// records each ending in its user's history, and returns them: every token
// revocation goes through here. On PostgreSQL it locks them in id order
// first; the caller holds their users' row locks already (see Lock order).
func (s *Store) mailRevokeTokensIn(ctx context.Context, tx Q, where, reason, by string, now time.Time, args ...any) ([]db.Token, error) {
	all := append([]any{now.Unix(), reason, by}, args...)
	ended, err := mailScanTokens(tx.Query(ctx, `UPDATE tokens SET revoked_at = ?1, revoked_reason = ?2, revoked_by = ?3
		WHERE id IN (SELECT id FROM tokens WHERE `+where+` AND `+mailTokenAlive+` ORDER BY id`+s.forUpdate("UPDATE")+`)
			AND `+mailTokenAlive+`
		RETURNING `+mailTokenColumns, all...))
	if err != nil {
		return nil, err
	}
	return ended, s.recordIn(ctx, tx, tokenRevokedEvents(ended)...)
}
