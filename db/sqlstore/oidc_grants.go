package sqlstore

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	"doorman/db"
)

// The tokens apps hold (grants), the apps a person is connected to, and
// the revocation rule's reach into both: every ending of sessions
// (revokeIn) ends their grants and owes their apps a logout, and every
// ending of all of a user's tokens ends all their grants and owes each
// app a logout of every session (endUserGrantsIn), in the transaction of
// the ending.

const grantColumns = `id, kind, secret_hash, family_id, user_id, client_id, session_id, offline, scopes, auth_time, amr,
	created_at, expires_at, used_at, revoked_at, revoked_reason`

func scanGrant(row Row, extra ...any) (db.Grant, error) {
	var g db.Grant
	var scopes, amr string
	var authTime, created, expires int64
	var used, revoked *int64
	var reason *string
	dest := []any{&g.ID, &g.Kind, &g.SecretHash, &g.FamilyID, &g.UserID, &g.ClientID, &g.SessionID, &g.Offline, &scopes,
		&authTime, &amr, &created, &expires, &used, &revoked, &reason}
	if err := row.Scan(append(dest, extra...)...); err != nil {
		return db.Grant{}, err
	}
	if len(g.SecretHash) == 0 {
		g.SecretHash = nil
	}
	g.Scopes, g.AMR = splitScopes(scopes), splitScopes(amr)
	g.AuthTime, g.CreatedAt, g.ExpiresAt = fromUnix(authTime), time.Unix(created, 0), time.Unix(expires, 0)
	g.UsedAt, g.RevokedAt = optionalTime(used), optionalTime(revoked)
	if reason != nil {
		g.RevokedReason = *reason
	}
	return g, nil
}

// insertGrant is the statement that inserts g (an error if its scopes or
// amr cannot be stored).
func insertGrant(g db.Grant) (Stmt, error) {
	lists, err := joinLists(g.Scopes, g.AMR)
	if err != nil {
		return Stmt{}, err
	}
	var secret []byte
	if len(g.SecretHash) > 0 {
		secret = g.SecretHash
	}
	var used, revoked *int64
	var reason *string
	if !g.UsedAt.IsZero() {
		at := g.UsedAt.Unix()
		used = &at
	}
	if !g.RevokedAt.IsZero() {
		at := g.RevokedAt.Unix()
		revoked, reason = &at, &g.RevokedReason
	}
	return Stmt{`INSERT INTO oidc_grants (` + grantColumns + `) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		[]any{g.ID, g.Kind, secret, g.FamilyID, g.UserID, g.ClientID, g.SessionID, g.Offline, lists[0], toUnix(g.AuthTime),
			lists[1], g.CreatedAt.Unix(), g.ExpiresAt.Unix(), used, revoked, reason}}, nil
}

// IssueGrants stores new grants (one family, user, app and session) in one
// transaction, in the store's lock order: the app's row (FOR KEY SHARE:
// db.ErrNotFound if it was removed, and a removal waits for this and then
// ends what it issued), the user's (FOR UPDATE, so every reset and every
// ending of their sessions or tokens is ordered against it: it either
// commits first and refuses this, or comes after and ends what this
// issued), the spent refresh token, the session. A spent refresh token
// presented again ends its family and records it in the history; that is
// committed, and the answer is db.ErrCodeUsed.
func (s *Store) IssueGrants(ctx context.Context, grants []db.Grant, spend string, epoch int64, now time.Time) error {
	if len(grants) == 0 {
		return errors.New("db: issue grants: none")
	}
	if epoch < 0 && spend == "" {
		return errors.New("db: issue grants: no epoch and no refresh token spent")
	}
	g0 := grants[0]
	stmts := make([]Stmt, 0, len(grants))
	checkSession := spend == ""
	for _, g := range grants {
		if g.FamilyID != g0.FamilyID || g.UserID != g0.UserID || g.ClientID != g0.ClientID || g.SessionID != g0.SessionID {
			return errors.New("db: issue grants: not one family, user, app and session")
		}
		if !g.Offline {
			checkSession = true
		}
		st, err := insertGrant(g)
		if err != nil {
			return failed("issue grants", err)
		}
		stmts = append(stmts, st)
	}
	reused := false
	err := s.d.Write(ctx, func(tx Q) error {
		if err := s.lockAppKey(ctx, tx, g0.ClientID); err != nil {
			return err
		}
		var current int64
		var disabled *int64
		if err := tx.QueryRow(ctx, `SELECT epoch, disabled_at FROM users WHERE id = ?`+s.forUpdate("UPDATE"),
			g0.UserID).Scan(&current, &disabled); err != nil {
			return notFound(err)
		}
		if disabled != nil || (epoch >= 0 && current != epoch) {
			return db.ErrSignInsReset
		}
		if spend != "" {
			spent, err := scanGrant(tx.QueryRow(ctx, `SELECT `+grantColumns+` FROM oidc_grants WHERE id = ?`+s.forUpdate("UPDATE"), spend))
			if err != nil {
				return notFound(err)
			}
			if spent.Kind != db.GrantRefresh || spent.UserID != g0.UserID || spent.ClientID != g0.ClientID {
				return db.ErrNotFound
			}
			if !spent.UsedAt.IsZero() {
				reused = true
				return s.refreshReusedIn(ctx, tx, spent, now)
			}
			if !spent.Alive(now) {
				return db.ErrNotFound
			}
			if spent.FamilyID != g0.FamilyID {
				return errors.New("the new grants are not of the spent token's family")
			}
			if _, err := tx.Exec(ctx, `UPDATE oidc_grants SET used_at = ? WHERE id = ?`, now.Unix(), spend); err != nil {
				return err
			}
		}
		// A code's grants need the session that approved it alive even
		// when offline: nothing is minted for a session already ended.
		if checkSession {
			if err := sessionAliveIn(ctx, tx, g0.UserID, g0.SessionID, now); err != nil {
				return err
			}
		}
		return s.d.ExecBatch(ctx, tx, stmts...)
	})
	if s.d.IsUniqueViolation(err) {
		return db.ErrConflict
	}
	if err != nil {
		return failed("issue grants", err)
	}
	if reused {
		return db.ErrCodeUsed
	}
	return nil
}

// refreshReusedIn ends the family of spent, a refresh token presented
// again after it was spent (someone else holds a copy), and records that
// in its user's history. The caller holds the user's row lock.
func (s *Store) refreshReusedIn(ctx context.Context, tx Q, spent db.Grant, now time.Time) error {
	var name string
	if err := tx.QueryRow(ctx, `SELECT name FROM apps WHERE client_id = ?`, spent.ClientID).Scan(&name); err != nil && !errors.Is(err, ErrNoRows) {
		return err
	}
	return s.d.ExecBatch(ctx, tx,
		Stmt{`UPDATE oidc_grants SET revoked_at = ?, revoked_reason = ? WHERE family_id = ? AND revoked_at IS NULL`,
			[]any{now.Unix(), db.ReasonRefreshReused, spent.FamilyID}},
		Stmt{insertSecurityEventSQL, securityEventArgs(db.SecurityEvent{UserID: spent.UserID, Kind: db.EventRefreshReused,
			At: now, SessionID: spent.SessionID, TokenID: spent.ID, Detail: name, Reason: db.ReasonRefreshReused})})
}

// grantWithUserSQL reads grant ?1 with its user and its session's state
// (a hot read: behind userinfo and introspection).
var grantWithUserSQL = `SELECT g.` + strings.Join(strings.Fields(strings.ReplaceAll(grantColumns, ",", " ")), ", g.") + `,
	u.email, u.password_hash, u.created_at, u.is_demo, u.disabled_at, u.epoch, u.email_verified_at, u.sign_in_alerts_off,
	s.revoked_at, s.idle_expires_at, s.absolute_expires_at
	FROM oidc_grants g JOIN users u ON u.id = g.user_id LEFT JOIN sessions s ON s.id = g.session_id
	WHERE g.id = ?`

// GrantWithUser returns a grant and its user, with whether it may act at
// now: alive itself, its user not disabled, and its session alive unless
// it is offline. db.ErrNotFound for no such grant.
func (s *Store) GrantWithUser(ctx context.Context, id string, now time.Time) (db.Grant, db.User, bool, error) {
	var u db.User
	var created int64
	var disabled, verified, sessRevoked, sessIdle, sessAbs *int64
	g, err := scanGrant(s.d.Hot().QueryRow(ctx, grantWithUserSQL, id), &u.Email, &u.PasswordHash, &created, &u.IsDemo,
		&disabled, &u.Epoch, &verified, &u.SignInAlertsOff, &sessRevoked, &sessIdle, &sessAbs)
	if err != nil {
		return db.Grant{}, db.User{}, false, failed("grant with user", notFound(err))
	}
	u.ID, u.CreatedAt = g.UserID, time.Unix(created, 0)
	u.DisabledAt, u.EmailVerifiedAt = optionalTime(disabled), optionalTime(verified)
	n := now.Unix()
	sessionAlive := sessIdle != nil && sessRevoked == nil && *sessIdle > n && *sessAbs > n
	return g, u, g.Alive(now) && !u.Disabled() && (g.Offline || sessionAlive), nil
}

// RevokeGrant ends a grant of the app's (RFC 7009): a refresh token its
// whole family, an access token itself. Already ended is no error;
// another app's or an unknown id is db.ErrNotFound. The user's row is
// locked first (KEY SHARE, see Lock order).
func (s *Store) RevokeGrant(ctx context.Context, clientID, id string, now time.Time) error {
	err := s.d.Write(ctx, func(tx Q) error {
		var userID int64
		var kind, family string
		if err := tx.QueryRow(ctx, `SELECT user_id, kind, family_id FROM oidc_grants WHERE id = ? AND client_id = ?`,
			id, clientID).Scan(&userID, &kind, &family); err != nil {
			return notFound(err)
		}
		if err := s.lockUserKey(ctx, tx, userID); err != nil {
			return err
		}
		where, arg := `id = ?3`, id
		if kind == db.GrantRefresh {
			where, arg = `family_id = ?3`, family
		}
		_, err := tx.Exec(ctx, `UPDATE oidc_grants SET revoked_at = ?1, revoked_reason = ?2 WHERE `+where+` AND revoked_at IS NULL`,
			now.Unix(), db.ReasonRevokedByApp, arg)
		return err
	})
	return failed("revoke grant", err)
}

// endSessionGrantsIn is the revocation rule for the sessions ended (by
// revokeIn, in its transaction): their grants not offline end
// (db.ReasonSessionEnded), and every app each of them signed in to that
// takes back-channel logouts is owed one naming the session (sid). Two
// statements whatever the number of sessions (PostgreSQL: one round
// trip); a user with no OIDC rows costs two index lookups. The caller
// holds the users' row locks.
func (s *Store) endSessionGrantsIn(ctx context.Context, tx Q, ended []db.Session, now time.Time) error {
	if len(ended) == 0 {
		return nil
	}
	// In chunks: an IN list has a bound (SQLite 32,766 parameters,
	// PostgreSQL 65,535), and an ending of every session of many users
	// must not fail for being large.
	var stmts []Stmt
	for start := 0; start < len(ended); start += endChunk {
		chunk := ended[start:min(start+endChunk, len(ended))]
		ids := make([]any, len(chunk))
		for i, e := range chunk {
			ids[i] = e.ID
		}
		stmts = append(stmts, endSessionGrantsStmts(ids, now)...)
	}
	return s.d.ExecBatch(ctx, tx, stmts...)
}

// endChunk is how many ended sessions one pair of endSessionGrantsIn's
// statements names.
const endChunk = 500

// endSessionGrantsStmts are endSessionGrantsIn's two statements for the
// sessions ids.
func endSessionGrantsStmts(ids []any, now time.Time) []Stmt {
	return []Stmt{
		{`UPDATE oidc_grants SET revoked_at = ?1, revoked_reason = ?2
			WHERE session_id IN (` + numbered(4, len(ids)) + `) AND offline = ?3 AND revoked_at IS NULL`,
			append([]any{now.Unix(), db.ReasonSessionEnded, false}, ids...)},
		sessionLogoutsStmt(ids, now),
	}
}

// sessionLogoutsStmt owes every app the sessions ids signed in to that
// takes back-channel logouts one naming the session (sid), made at now.
func sessionLogoutsStmt(ids []any, now time.Time) Stmt {
	return Stmt{`INSERT INTO logout_deliveries (client_id, user_id, subject, session_id, created_at, next_at, state)
			SELECT sc.client_id, sc.user_id, COALESCE(sub.subject, ''), sc.session_id, CAST(?1 AS BIGINT), CAST(?1 AS BIGINT), CAST(?2 AS TEXT)
			FROM oidc_session_clients sc JOIN apps a ON a.client_id = sc.client_id
				LEFT JOIN oidc_subjects sub ON sub.user_id = sc.user_id
			WHERE sc.session_id IN (` + numbered(3, len(ids)) + `) AND a.backchannel_logout_uri <> ''
			ORDER BY sc.session_id, sc.client_id`,
		append([]any{now.Unix(), db.LogoutPending}, ids...)}
}

// endUserGrantsIn is the revocation rule where every token of the user
// ends ("sign out everywhere", a reset that ends the tokens, disabling the
// account, the ending of every app): in tx, every grant of theirs not
// ended yet ends, offline ones too (reason), and every app the user is
// connected to (a consent, a grant or a session's sign-in) that takes
// back-channel logouts is owed one for every session of the user's (sub
// only). owner is the user_id the deliveries are kept under (0 when the
// account is being deleted). The caller holds the user's row lock.
func (s *Store) endUserGrantsIn(ctx context.Context, tx Q, userID, owner int64, reason string, now time.Time) error {
	return s.d.ExecBatch(ctx, tx,
		Stmt{`UPDATE oidc_grants SET revoked_at = ?, revoked_reason = ? WHERE user_id = ? AND revoked_at IS NULL`,
			[]any{now.Unix(), reason, userID}},
		Stmt{`INSERT INTO logout_deliveries (client_id, user_id, subject, session_id, created_at, next_at, state)
			SELECT a.client_id, CAST(?2 AS BIGINT), COALESCE((SELECT subject FROM oidc_subjects WHERE user_id = ?1), ''), '',
				CAST(?3 AS BIGINT), CAST(?3 AS BIGINT), CAST(?4 AS TEXT)
			FROM apps a
			WHERE a.backchannel_logout_uri <> '' AND a.client_id IN (
				SELECT client_id FROM oidc_consents WHERE user_id = ?1
				UNION SELECT client_id FROM oidc_grants WHERE user_id = ?1
				UNION SELECT client_id FROM oidc_session_clients WHERE user_id = ?1)
			ORDER BY a.client_id`,
			[]any{userID, owner, now.Unix(), db.LogoutPending}})
}

// ConnectedApps lists the apps the user signed in to through Doorman that
// still hold a consent, a live grant or a live session's sign-in, most
// recently used first (PostgreSQL: its three reads in one round trip).
func (s *Store) ConnectedApps(ctx context.Context, userID int64, now time.Time) ([]db.ConnectedApp, error) {
	t := newAppTally()
	if err := s.d.Batch(ctx, t.reads(userID, now)...); err != nil {
		return nil, failed("connected apps", err)
	}
	return t.list(), nil
}

// appTally gathers ConnectedApps' reads by app: apps seen in any of them,
// and keep, those still connected (a consent, a live session's sign-in, a
// live grant).
type appTally struct {
	apps map[string]*db.ConnectedApp
	keep map[string]bool
}

func newAppTally() appTally {
	return appTally{apps: map[string]*db.ConnectedApp{}, keep: map[string]bool{}}
}

// reads are ConnectedApps' reads of the user's apps at now: independent
// of one another, for one Batch (SecurityOverview's too). t.list is the
// answer once they are done.
func (t appTally) reads(userID int64, now time.Time) []Read {
	n := now.Unix()
	return []Read{t.consents(userID), t.sessionLinks(userID, n), t.grants(userID, n), t.grantScopes(userID, n)}
}

// list is the apps still connected, most recently used first.
func (t appTally) list() []db.ConnectedApp {
	var out []db.ConnectedApp
	for client, a := range t.apps {
		if t.keep[client] {
			out = append(out, *a)
		}
	}
	slices.SortFunc(out, func(a, b db.ConnectedApp) int {
		return cmp.Or(b.LastUsedAt.Compare(a.LastUsedAt), cmp.Compare(a.Name, b.Name), cmp.Compare(a.ClientID, b.ClientID))
	})
	return out
}

// get is the app's entry, made the first time (logoutURI: its
// back-channel logout URI, "" if none).
func (t appTally) get(client, name, logoutURI string) *db.ConnectedApp {
	a := t.apps[client]
	if a == nil {
		a = &db.ConnectedApp{ClientID: client, Name: name, LogsOut: logoutURI != ""}
		t.apps[client] = a
	}
	return a
}

// seen widens the app's first and last use to first and last (0: unknown).
func (t appTally) seen(a *db.ConnectedApp, first, last int64) {
	if first != 0 && (a.FirstAt.IsZero() || first < a.FirstAt.Unix()) {
		a.FirstAt = time.Unix(first, 0)
	}
	if last != 0 && last > toUnix(a.LastUsedAt) {
		a.LastUsedAt = time.Unix(last, 0)
	}
}

// consents reads the user's consents: each keeps its app.
func (t appTally) consents(userID int64) Read {
	return Read{SQL: `SELECT c.client_id, a.name, a.backchannel_logout_uri, c.scopes, c.created_at
		FROM oidc_consents c JOIN apps a ON a.client_id = c.client_id
		WHERE c.user_id = ?`, Args: []any{userID}, Scan: func(rows Rows) error {
		for rows.Next() {
			var client, name, logout, scopes string
			var created int64
			if err := rows.Scan(&client, &name, &logout, &scopes, &created); err != nil {
				return err
			}
			a := t.get(client, name, logout)
			a.Scopes, t.keep[client] = splitScopes(scopes), true
			t.seen(a, created, 0)
		}
		return rows.Err()
	}}
}

// sessionLinks reads which sessions signed in to which app: a session
// alive at n keeps its app, and is listed on it.
func (t appTally) sessionLinks(userID, n int64) Read {
	return Read{SQL: `SELECT sc.client_id, a.name, a.backchannel_logout_uri, sc.session_id, sc.first_at, sc.last_at,
			s.revoked_at, s.idle_expires_at, s.absolute_expires_at
		FROM oidc_session_clients sc JOIN apps a ON a.client_id = sc.client_id JOIN sessions s ON s.id = sc.session_id
		WHERE sc.user_id = ? ORDER BY sc.first_at, sc.session_id`, Args: []any{userID}, Scan: func(rows Rows) error {
		for rows.Next() {
			var client, name, logout, session string
			var first, last, idle, abs int64
			var revoked *int64
			if err := rows.Scan(&client, &name, &logout, &session, &first, &last, &revoked, &idle, &abs); err != nil {
				return err
			}
			a := t.get(client, name, logout)
			t.seen(a, first, last)
			if revoked == nil && idle > n && abs > n {
				a.SessionIDs, t.keep[client] = append(a.SessionIDs, session), true
			}
		}
		return rows.Err()
	}}
}

// grants reads the user's grants by app: a live one (usable at n) keeps
// its app; a live offline refresh token marks it Offline.
func (t appTally) grants(userID, n int64) Read {
	return Read{SQL: `SELECT g.client_id, a.name, a.backchannel_logout_uri, MIN(g.created_at), MAX(g.created_at),
			SUM(CASE WHEN g.revoked_at IS NULL AND g.used_at IS NULL AND g.expires_at > ?2 AND (g.offline = ?3
				OR (s.revoked_at IS NULL AND s.idle_expires_at > ?2 AND s.absolute_expires_at > ?2)) THEN 1 ELSE 0 END),
			SUM(CASE WHEN g.revoked_at IS NULL AND g.used_at IS NULL AND g.expires_at > ?2 AND g.offline = ?3
				AND g.kind = ?4 THEN 1 ELSE 0 END)
		FROM oidc_grants g JOIN apps a ON a.client_id = g.client_id LEFT JOIN sessions s ON s.id = g.session_id
		WHERE g.user_id = ?1 GROUP BY g.client_id, a.name, a.backchannel_logout_uri`, Args: []any{userID, n, true, db.GrantRefresh}, Scan: func(rows Rows) error {
		for rows.Next() {
			var client, name, logout string
			var first, last, live, offline int64
			if err := rows.Scan(&client, &name, &logout, &first, &last, &live, &offline); err != nil {
				return err
			}
			a := t.get(client, name, logout)
			t.seen(a, first, last)
			a.Offline = offline > 0
			if live > 0 {
				t.keep[client] = true
			}
		}
		return rows.Err()
	}}
}

// grantScopes reads the scopes of the user's unexpired, unended grants,
// by app: what the app holds, consented or not (a first-party app is not
// asked), so that the page never says an app gets less than it does.
func (t appTally) grantScopes(userID, n int64) Read {
	return Read{SQL: `SELECT DISTINCT g.client_id, a.name, a.backchannel_logout_uri, g.scopes FROM oidc_grants g JOIN apps a ON a.client_id = g.client_id
		WHERE g.user_id = ? AND g.revoked_at IS NULL AND g.used_at IS NULL AND g.expires_at > ?`,
		Args: []any{userID, n}, Scan: func(rows Rows) error {
			for rows.Next() {
				var client, name, logout, scopes string
				if err := rows.Scan(&client, &name, &logout, &scopes); err != nil {
					return err
				}
				a := t.get(client, name, logout)
				for _, sc := range splitScopes(scopes) {
					if !slices.Contains(a.Scopes, sc) {
						a.Scopes = append(a.Scopes, sc)
					}
				}
			}
			return rows.Err()
		}}
}

// SessionApps returns the apps session sessionID of the user's signed in
// to, first signed in to first, with the scopes the user consented to.
// Another user's session gives none.
func (s *Store) SessionApps(ctx context.Context, userID int64, sessionID string) ([]db.ConnectedApp, error) {
	rows, err := s.d.Reads().Query(ctx, `SELECT sc.client_id, a.name, COALESCE(c.scopes, ''), sc.first_at, sc.last_at
		FROM oidc_session_clients sc JOIN apps a ON a.client_id = sc.client_id
			LEFT JOIN oidc_consents c ON c.user_id = sc.user_id AND c.client_id = sc.client_id
		WHERE sc.user_id = ? AND sc.session_id = ? ORDER BY sc.first_at, a.name, sc.client_id`, userID, sessionID)
	out, err := scanAll(rows, err, func(row Row) (db.ConnectedApp, error) {
		var a db.ConnectedApp
		var scopes string
		var first, last int64
		if err := row.Scan(&a.ClientID, &a.Name, &scopes, &first, &last); err != nil {
			return a, err
		}
		a.Scopes, a.FirstAt, a.LastUsedAt, a.SessionIDs = splitScopes(scopes), time.Unix(first, 0), time.Unix(last, 0), []string{sessionID}
		return a, nil
	})
	if err != nil {
		return nil, failed("session apps", err)
	}
	return out, nil
}

// DisconnectApp ends every grant of the user's for the app
// (db.ReasonDisconnected), forgets their consent and their sessions'
// sign-ins to it, owes the app a logout of every session of the user's
// (sub only) and records the disconnect in the history, in one
// transaction under the app's and then the user's row locks; it returns
// that delivery (ID 0 if the app takes no back-channel logout). db.ErrNotFound if the app was not connected (as
// ConnectedApps says) or does not exist.
func (s *Store) DisconnectApp(ctx context.Context, userID int64, clientID string, now time.Time) (db.LogoutDelivery, error) {
	var d db.LogoutDelivery
	err := s.d.Write(ctx, func(tx Q) error {
		if err := s.lockAppKey(ctx, tx, clientID); err != nil {
			return err
		}
		if err := s.lockUserKey(ctx, tx, userID); err != nil {
			return err
		}
		var connected int
		if err := tx.QueryRow(ctx, `SELECT
			(SELECT COUNT(*) FROM oidc_consents WHERE user_id = ?1 AND client_id = ?2)
			+ (SELECT COUNT(*) FROM oidc_grants g LEFT JOIN sessions s ON s.id = g.session_id
				WHERE g.user_id = ?1 AND g.client_id = ?2 AND g.revoked_at IS NULL AND g.used_at IS NULL AND g.expires_at > ?3
				AND (g.offline = ?4 OR (s.revoked_at IS NULL AND s.idle_expires_at > ?3 AND s.absolute_expires_at > ?3)))
			+ (SELECT COUNT(*) FROM oidc_session_clients sc JOIN sessions s ON s.id = sc.session_id
				WHERE sc.user_id = ?1 AND sc.client_id = ?2 AND s.revoked_at IS NULL AND s.idle_expires_at > ?3
				AND s.absolute_expires_at > ?3)`, userID, clientID, now.Unix(), true).Scan(&connected); err != nil {
			return err
		}
		if connected == 0 {
			return db.ErrNotFound
		}
		var name, uri string
		if err := tx.QueryRow(ctx, `SELECT name, backchannel_logout_uri FROM apps WHERE client_id = ?`, clientID).Scan(&name, &uri); err != nil {
			return err
		}
		if err := s.d.ExecBatch(ctx, tx,
			eventStmt(ctx, db.SecurityEvent{UserID: userID, Kind: db.EventAppDisconnected, At: now,
				Detail: name, Reason: db.ReasonDisconnected}),
			Stmt{`UPDATE oidc_grants SET revoked_at = ?, revoked_reason = ? WHERE user_id = ? AND client_id = ? AND revoked_at IS NULL`,
				[]any{now.Unix(), db.ReasonDisconnected, userID, clientID}},
			Stmt{`DELETE FROM oidc_consents WHERE user_id = ? AND client_id = ?`, []any{userID, clientID}},
			Stmt{`DELETE FROM oidc_session_clients WHERE user_id = ? AND client_id = ?`, []any{userID, clientID}},
		); err != nil {
			return err
		}
		var err error
		d, err = scanLogoutDelivery(tx.QueryRow(ctx, `INSERT INTO logout_deliveries (client_id, user_id, subject, session_id, created_at, next_at, state)
			SELECT a.client_id, CAST(?2 AS BIGINT), COALESCE((SELECT subject FROM oidc_subjects WHERE user_id = ?2), ''), '',
				CAST(?3 AS BIGINT), CAST(?3 AS BIGINT), CAST(?4 AS TEXT)
			FROM apps a WHERE a.client_id = ?1 AND a.backchannel_logout_uri <> ''
			RETURNING `+logoutDeliveryColumns, clientID, userID, now.Unix(), db.LogoutPending))
		if errors.Is(err, ErrNoRows) {
			d = db.LogoutDelivery{}
			return nil
		}
		d.AppName, d.URI = name, uri
		return err
	})
	if err != nil {
		return db.LogoutDelivery{}, failed("disconnect app", err)
	}
	return d, nil
}

// PruneGrants deletes grants that expired before cutoff, and those ended
// before cutoff that were never spent. A spent refresh token is kept until
// it expires even when its family has ended: presented again it must be
// recognised as reuse (IssueGrants knows reuse by its used_at), recorded
// in the history, not answered as an unknown token.
func (s *Store) PruneGrants(ctx context.Context, cutoff time.Time) (int64, error) {
	n, err := s.d.Writes().Exec(ctx, `DELETE FROM oidc_grants WHERE expires_at < ?1 OR (revoked_at < ?1 AND used_at IS NULL)`,
		cutoff.Unix())
	return n, failed("prune grants", err)
}
