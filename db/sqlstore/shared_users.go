package sqlstore

import (
	"context"
	"strconv"
	"strings"
	"time"

	"doorman/db"
)

// Copies of the tokens domain's helpers, for SetUserDisabled, until that
// domain's own versions are here (then these go: the lead dedupes them).

const usersTokenColumns = `id, secret_hash, user_id, kind, name, client_id, scopes, created_at, expires_at,
	created_ip, created_location, last_used_at, last_used_ip, last_used_location,
	revoked_at, revoked_reason, revoked_by`

// usersTokenAlive is the one definition, in SQL, of a live token (what
// db.Token.Alive says) at the time in parameter ?n.
func usersTokenAlive(n int) string {
	return `revoked_at IS NULL AND expires_at > ?` + strconv.Itoa(n)
}

func usersScanToken(row Row) (db.Token, error) {
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

// usersRevokeTokensIn ends, in tx, the live tokens matching where (whose
// parameters are numbered from ?4: ?1 is now, ?2 the reason, ?3 who),
// records each ending in its user's history, and returns them: every token
// revocation goes through here. On PostgreSQL it locks them in id order
// first, so two statements that end several tokens never wait for each
// other in a cycle; the caller holds their users' row locks already (see
// Lock order).
func (s *Store) usersRevokeTokensIn(ctx context.Context, tx Q, where, reason, by string, now time.Time, args ...any) ([]db.Token, error) {
	all := append([]any{now.Unix(), reason, by}, args...)
	rows, err := tx.Query(ctx, `UPDATE tokens SET revoked_at = ?1, revoked_reason = ?2, revoked_by = ?3
		WHERE id IN (SELECT id FROM tokens WHERE `+where+` AND `+usersTokenAlive(1)+` ORDER BY id`+s.forUpdate("UPDATE")+`)
			AND `+usersTokenAlive(1)+`
		RETURNING `+usersTokenColumns, all...)
	ended, err := scanAll(rows, err, usersScanToken)
	if err != nil {
		return nil, err
	}
	return ended, s.recordIn(ctx, tx, tokenRevokedEvents(ended)...)
}
