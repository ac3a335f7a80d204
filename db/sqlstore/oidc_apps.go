package sqlstore

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"time"

	"doorman/db"
)

// Apps (OAuth clients, the device-flow tools among them), the subjects
// apps know people by, and the keys Doorman signs tokens with.

// Kinds of redirect URI (app_redirect_uris.kind).
const (
	redirectLogin      = "login"
	redirectPostLogout = "post_logout"
)

const appColumns = `client_id, name, created_at, secret_hash, first_party, backchannel_logout_uri`

// CreateApp registers an app with its redirect URIs, in one transaction;
// db.ErrConflict if the client_id is taken.
func (s *Store) CreateApp(ctx context.Context, a db.App) error {
	var secret []byte
	if len(a.SecretHash) > 0 {
		secret = a.SecretHash
	}
	stmts := []Stmt{{`INSERT INTO apps (` + appColumns + `) VALUES (?, ?, ?, ?, ?, ?)`,
		[]any{a.ClientID, a.Name, a.CreatedAt.Unix(), secret, a.FirstParty, a.BackchannelLogoutURI}}}
	for _, u := range a.RedirectURIs {
		stmts = append(stmts, Stmt{`INSERT INTO app_redirect_uris (client_id, kind, uri) VALUES (?, ?, ?)`,
			[]any{a.ClientID, redirectLogin, u}})
	}
	for _, u := range a.PostLogoutRedirectURIs {
		stmts = append(stmts, Stmt{`INSERT INTO app_redirect_uris (client_id, kind, uri) VALUES (?, ?, ?)`,
			[]any{a.ClientID, redirectPostLogout, u}})
	}
	err := s.d.Write(ctx, func(tx Q) error { return s.d.ExecBatch(ctx, tx, stmts...) })
	if s.d.IsUniqueViolation(err) {
		// A taken client_id, or a URI given twice.
		return db.ErrConflict
	}
	return failed("create app", err)
}

func scanApp(row Row) (db.App, error) {
	var a db.App
	var created int64
	if err := row.Scan(&a.ClientID, &a.Name, &created, &a.SecretHash, &a.FirstParty, &a.BackchannelLogoutURI); err != nil {
		return db.App{}, err
	}
	a.CreatedAt = time.Unix(created, 0)
	if len(a.SecretHash) == 0 {
		a.SecretHash = nil
	}
	return a, nil
}

// appURIs reads the redirect URIs of a query of (client_id, kind, uri)
// into the apps, by client_id, in the order the query gave them.
func appURIs(apps []db.App) func(Rows) error {
	return func(rows Rows) error {
		at := make(map[string]int, len(apps))
		for i, a := range apps {
			at[a.ClientID] = i
		}
		for rows.Next() {
			var client, kind, uri string
			if err := rows.Scan(&client, &kind, &uri); err != nil {
				return err
			}
			i, ok := at[client]
			if !ok {
				continue
			}
			if kind == redirectLogin {
				apps[i].RedirectURIs = append(apps[i].RedirectURIs, uri)
			} else {
				apps[i].PostLogoutRedirectURIs = append(apps[i].PostLogoutRedirectURIs, uri)
			}
		}
		return rows.Err()
	}
}

// App returns the app with that client_id, with its redirect URIs, or
// db.ErrNotFound.
func (s *Store) App(ctx context.Context, clientID string) (db.App, error) {
	a, err := scanApp(s.d.Reads().QueryRow(ctx, `SELECT `+appColumns+` FROM apps WHERE client_id = ?`, clientID))
	if err != nil {
		return db.App{}, failed("app", notFound(err))
	}
	apps := []db.App{a}
	rows, err := s.d.Reads().Query(ctx, `SELECT client_id, kind, uri FROM app_redirect_uris WHERE client_id = ? ORDER BY kind, uri`, clientID)
	if err := (Read{Scan: appURIs(apps)}).Take(rows, err); err != nil {
		return db.App{}, failed("app", err)
	}
	return apps[0], nil
}

// Apps returns every registered app, oldest first, with its redirect URIs
// (PostgreSQL: in one round trip).
func (s *Store) Apps(ctx context.Context) ([]db.App, error) {
	var out []db.App
	err := s.d.Batch(ctx,
		Read{SQL: `SELECT ` + appColumns + ` FROM apps ORDER BY created_at, client_id`, Scan: func(rows Rows) error {
			var err error
			out, err = scanAll(rows, nil, scanApp)
			return err
		}},
		Read{SQL: `SELECT client_id, kind, uri FROM app_redirect_uris ORDER BY client_id, kind, uri`, Scan: func(rows Rows) error {
			return appURIs(out)(rows)
		}})
	if err != nil {
		return nil, failed("apps", err)
	}
	return out, nil
}

// DeleteApp removes the app and, in the same transaction, ends every live
// token and grant of it (db.ReasonAppRemoved, by "operator"; the rows
// stay, as history), forgets its pending logout deliveries and, by the
// foreign keys' cascade, deletes its device authorizations, authorization
// requests, consents and sessions' sign-ins, so nothing pending can be
// approved or redeemed later. It returns the tokens ended; db.ErrNotFound
// (nothing changes) if unknown. (No logout is owed to an app that is gone.)
//
// Locks (PostgreSQL, see Lock order): the app's row FOR UPDATE first,
// which holds back every new device authorization, redemption, sign-in
// and grant of the app until this commits; then the rows of the users
// whose rows of the app's it ends or deletes, in id order, before those.
func (s *Store) DeleteApp(ctx context.Context, clientID string, now time.Time) ([]db.Token, error) {
	var ended []db.Token
	err := s.d.Write(ctx, func(tx Q) error {
		var one int
		if err := tx.QueryRow(ctx, `SELECT 1 FROM apps WHERE client_id = ?`+s.forUpdate("UPDATE"), clientID).Scan(&one); err != nil {
			return notFound(err)
		}
		if s.d.RowLocks() {
			if _, err := tx.Exec(ctx, `SELECT 1 FROM users WHERE id IN (
				SELECT user_id FROM tokens WHERE kind = ?2 AND client_id = ?3 AND `+tokenAlive+`
				UNION SELECT user_id FROM oidc_grants WHERE client_id = ?3 AND revoked_at IS NULL
				UNION SELECT user_id FROM oidc_consents WHERE client_id = ?3
				UNION SELECT user_id FROM oidc_session_clients WHERE client_id = ?3
				UNION SELECT user_id FROM oidc_auth_requests WHERE client_id = ?3 AND user_id IS NOT NULL)
				ORDER BY id FOR KEY SHARE`, now.Unix(), db.TokenApp, clientID); err != nil {
				return err
			}
		}
		var err error
		if ended, err = s.revokeTokensIn(ctx, tx, `kind = ?4 AND client_id = ?5`, db.ReasonAppRemoved, "operator", now,
			db.TokenApp, clientID); err != nil {
			return err
		}
		return s.d.ExecBatch(ctx, tx,
			Stmt{`UPDATE oidc_grants SET revoked_at = ?, revoked_reason = ? WHERE client_id = ? AND revoked_at IS NULL`,
				[]any{now.Unix(), db.ReasonAppRemoved, clientID}},
			Stmt{`DELETE FROM logout_deliveries WHERE client_id = ? AND state = ?`, []any{clientID, db.LogoutPending}},
			Stmt{`DELETE FROM apps WHERE client_id = ?`, []any{clientID}})
	})
	if err != nil {
		return nil, failed("delete app", err)
	}
	return ended, nil
}

// newSubject is a fresh subject: 128 random bits, base64url.
func newSubject() string {
	b := make([]byte, 16)
	rand.Read(b) // never fails (it crashes the program instead)
	return base64.RawURLEncoding.EncodeToString(b)
}

const subjectSQL = `SELECT subject FROM oidc_subjects WHERE user_id = ?`

// ensureSubjectSQL makes user ?1's subject ?2 unless they have one (two
// callers at once agree: the second insert does nothing).
const ensureSubjectSQL = `INSERT INTO oidc_subjects (user_id, subject) VALUES (?, ?) ON CONFLICT (user_id) DO NOTHING`

// Subject returns the user's subject, made the first time it is asked for
// (an existing one is read without writing). db.ErrNotFound for no such
// user.
func (s *Store) Subject(ctx context.Context, userID int64) (string, error) {
	var sub string
	err := s.d.Reads().QueryRow(ctx, subjectSQL, userID).Scan(&sub)
	if err == nil {
		return sub, nil
	}
	if !errors.Is(err, ErrNoRows) {
		return "", failed("subject", err)
	}
	err = s.d.Write(ctx, func(tx Q) error {
		if err := s.lockUserKey(ctx, tx, userID); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, ensureSubjectSQL, userID, newSubject()); err != nil {
			return err
		}
		return tx.QueryRow(ctx, subjectSQL, userID).Scan(&sub)
	})
	if err != nil {
		return "", failed("subject", err)
	}
	return sub, nil
}

// UserBySubject returns the user whose subject it is, or db.ErrNotFound.
func (s *Store) UserBySubject(ctx context.Context, subject string) (db.User, error) {
	u, err := scanUser(s.d.Reads().QueryRow(ctx, `SELECT `+userColumns+` FROM users
		WHERE id = (SELECT user_id FROM oidc_subjects WHERE subject = ?)`, subject))
	if err != nil {
		return db.User{}, failed("user by subject", notFound(err))
	}
	return u, nil
}

const signingKeyColumns = `kid, alg, private_sealed, public_jwk, created_at, retired_at, expires_at`

func scanSigningKey(row Row) (db.SigningKey, error) {
	var k db.SigningKey
	var created int64
	var retired, expires *int64
	if err := row.Scan(&k.ID, &k.Algorithm, &k.PrivateSealed, &k.PublicJWK, &created, &retired, &expires); err != nil {
		return db.SigningKey{}, err
	}
	k.CreatedAt, k.RetiredAt, k.ExpiresAt = time.Unix(created, 0), optionalTime(retired), optionalTime(expires)
	return k, nil
}

const insertSigningKeySQL = `INSERT INTO oidc_signing_keys (kid, alg, private_sealed, public_jwk, created_at)
	VALUES (?, ?, ?, ?, ?)`

func insertSigningKeyArgs(k db.SigningKey) []any {
	return []any{k.ID, k.Algorithm, k.PrivateSealed, k.PublicJWK, k.CreatedAt.Unix()}
}

const signingKeySQL = `SELECT ` + signingKeyColumns + ` FROM oidc_signing_keys WHERE retired_at IS NULL`

// EnsureSigningKey makes k the signing key unless there is one already,
// and returns the signing key. The unique index on the key not retired
// keeps it to one: of two instances starting at once, the second's insert
// does nothing (PostgreSQL: after waiting for the first's), and both read
// back the first's.
func (s *Store) EnsureSigningKey(ctx context.Context, k db.SigningKey) (db.SigningKey, error) {
	if cur, err := scanSigningKey(s.d.Reads().QueryRow(ctx, signingKeySQL)); err == nil {
		return cur, nil
	} else if !errors.Is(err, ErrNoRows) {
		return db.SigningKey{}, failed("ensure signing key", err)
	}
	var cur db.SigningKey
	err := s.d.Write(ctx, func(tx Q) error {
		if _, err := tx.Exec(ctx, insertSigningKeySQL+` ON CONFLICT DO NOTHING`, insertSigningKeyArgs(k)...); err != nil {
			return err
		}
		var err error
		cur, err = scanSigningKey(tx.QueryRow(ctx, signingKeySQL))
		return err
	})
	if err != nil {
		return db.SigningKey{}, failed("ensure signing key", err)
	}
	return cur, nil
}

// RotateSigningKey retires the signing key at k.CreatedAt (published until
// publishUntil) and makes k the signing key, in one transaction.
func (s *Store) RotateSigningKey(ctx context.Context, k db.SigningKey, publishUntil time.Time) error {
	err := s.d.Write(ctx, func(tx Q) error {
		return s.d.ExecBatch(ctx, tx,
			Stmt{`UPDATE oidc_signing_keys SET retired_at = ?, expires_at = ? WHERE retired_at IS NULL`,
				[]any{k.CreatedAt.Unix(), publishUntil.Unix()}},
			Stmt{insertSigningKeySQL, insertSigningKeyArgs(k)})
	})
	if s.d.IsUniqueViolation(err) {
		return db.ErrConflict
	}
	return failed("rotate signing key", err)
}

// SigningKeys returns the signing key first, then the retired keys still
// published at now, newest first.
func (s *Store) SigningKeys(ctx context.Context, now time.Time) ([]db.SigningKey, error) {
	rows, err := s.d.Reads().Query(ctx, `SELECT `+signingKeyColumns+` FROM oidc_signing_keys
		WHERE retired_at IS NULL OR expires_at > ?
		ORDER BY CASE WHEN retired_at IS NULL THEN 0 ELSE 1 END, created_at DESC, kid`, now.Unix())
	out, err := scanAll(rows, err, scanSigningKey)
	if err != nil {
		return nil, failed("signing keys", err)
	}
	return out, nil
}
