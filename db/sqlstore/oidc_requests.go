package sqlstore

import (
	"context"
	"errors"
	"slices"
	"time"

	"doorman/db"
)

// OpenID Connect authorization requests, their codes, and consents. For
// the order in which their writes lock rows (PostgreSQL): the app's row
// first (FOR KEY SHARE, as a device authorization's redemption takes it:
// DeleteApp locks it FOR UPDATE before the users), then the user's, then
// the request, the session, the grants.

const authRequestColumns = `id, client_id, redirect_uri, scopes, state, nonce, response_mode, code_challenge,
	code_challenge_method, prompt, max_age, login_hint, created_at, expires_at, user_id, session_id, auth_time, amr,
	epoch, done_at, code_expires_at, code_used_at`

func scanAuthRequest(row Row) (db.AuthRequest, error) {
	var r db.AuthRequest
	var scopes, prompt, amr string
	var created, expires, authTime, codeExpires int64
	var userID, done, used *int64
	if err := row.Scan(&r.ID, &r.ClientID, &r.RedirectURI, &scopes, &r.State, &r.Nonce, &r.ResponseMode, &r.CodeChallenge,
		&r.CodeChallengeMethod, &prompt, &r.MaxAge, &r.LoginHint, &created, &expires, &userID, &r.SessionID, &authTime, &amr,
		&r.Epoch, &done, &codeExpires, &used); err != nil {
		return db.AuthRequest{}, err
	}
	r.Scopes, r.Prompt, r.AMR = splitScopes(scopes), splitScopes(prompt), splitScopes(amr)
	r.CreatedAt, r.ExpiresAt = time.Unix(created, 0), time.Unix(expires, 0)
	if userID != nil {
		r.UserID = *userID
	}
	r.AuthTime, r.DoneAt = fromUnix(authTime), optionalTime(done)
	r.CodeExpiresAt, r.CodeUsedAt = fromUnix(codeExpires), optionalTime(used)
	return r, nil
}

// joinLists joins space-separated lists for storage (joinScopes's rule:
// an empty item or one holding white space is refused).
func joinLists(lists ...[]string) ([]string, error) {
	out := make([]string, len(lists))
	for i, l := range lists {
		var err error
		if out[i], err = joinScopes(l); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// CreateAuthRequest stores a new authorization request: db.ErrNotFound if
// its app does not exist, db.ErrConflict if the id is taken. A request is
// stored before anyone signs in: what a session fills in later is not
// taken from r.
func (s *Store) CreateAuthRequest(ctx context.Context, r db.AuthRequest) error {
	lists, err := joinLists(r.Scopes, r.Prompt)
	if err != nil {
		return failed("create auth request", err)
	}
	_, err = s.d.Writes().Exec(ctx, `INSERT INTO oidc_auth_requests (id, client_id, redirect_uri, scopes, state, nonce,
		response_mode, code_challenge, code_challenge_method, prompt, max_age, login_hint, created_at, expires_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		r.ID, r.ClientID, r.RedirectURI, lists[0], r.State, r.Nonce, r.ResponseMode, r.CodeChallenge, r.CodeChallengeMethod,
		lists[1], r.MaxAge, r.LoginHint, r.CreatedAt.Unix(), r.ExpiresAt.Unix())
	switch {
	case s.d.IsUniqueViolation(err):
		return db.ErrConflict
	case s.d.IsForeignKeyViolation(err):
		return db.ErrNotFound
	}
	return failed("create auth request", err)
}

// AuthRequest returns the request with that id unexpired at now, or
// db.ErrNotFound.
func (s *Store) AuthRequest(ctx context.Context, id string, now time.Time) (db.AuthRequest, error) {
	r, err := scanAuthRequest(s.d.Reads().QueryRow(ctx, `SELECT `+authRequestColumns+` FROM oidc_auth_requests
		WHERE id = ? AND expires_at > ?`, id, now.Unix()))
	if err != nil {
		return db.AuthRequest{}, failed("auth request", notFound(err))
	}
	return r, nil
}

// lockAppKey takes the app's row FOR KEY SHARE (PostgreSQL; on SQLite it
// only reads): db.ErrNotFound if there is no such app. It comes before
// the user's row (see Lock order in tokens.go).
func (s *Store) lockAppKey(ctx context.Context, tx Q, clientID string) error {
	var one int
	return notFound(tx.QueryRow(ctx, `SELECT 1 FROM apps WHERE client_id = ?`+s.forUpdate("KEY SHARE"), clientID).Scan(&one))
}

// sessionAliveIn checks, in tx, that session id is the user's and alive
// at now (db.ErrNotFound otherwise). The caller holds the user's row lock:
// every ending of the session takes it first, so the answer holds until
// commit.
func sessionAliveIn(ctx context.Context, tx Q, userID int64, id string, now time.Time) error {
	var one int
	return notFound(tx.QueryRow(ctx, `SELECT 1 FROM sessions WHERE user_id = ?2 AND id = ?3 AND `+alive(1),
		now.Unix(), userID, id).Scan(&one))
}

// CompleteAuthRequest binds the request to a signed-in session, in one
// transaction: the app's row, then the user's (FOR UPDATE, by
// checkEpochIn: the epoch and disabled check, db.ErrSignInsReset), so a
// reset racing this sign-in either commits first and refuses it, or comes
// after and ends the session and what it signs in to. The session must be
// the user's and alive, the request pending and unexpired (else
// db.ErrNotFound). It records that the session signed in to the app (and
// in the history, db.EventAppSignIn with the session's device) and makes
// sure the user has a subject.
func (s *Store) CompleteAuthRequest(ctx context.Context, id string, userID int64, sessionID string, authTime time.Time, amr []string, epoch int64, now time.Time) error {
	amrs, err := joinScopes(amr)
	if err != nil {
		return failed("complete auth request", err)
	}
	err = s.d.Write(ctx, func(tx Q) error {
		var clientID string
		if err := tx.QueryRow(ctx, `SELECT client_id FROM oidc_auth_requests WHERE id = ?`, id).Scan(&clientID); err != nil {
			return notFound(err)
		}
		if err := s.lockAppKey(ctx, tx, clientID); err != nil {
			return err
		}
		if err := s.checkEpochIn(ctx, tx, userID, epoch); err != nil {
			return err
		}
		// The session alive and the user's (as sessionAliveIn), read with
		// what the history says of it: which device signed in to the app.
		e := db.SecurityEvent{UserID: userID, Kind: db.EventAppSignIn, At: now, SessionID: sessionID}
		if err := tx.QueryRow(ctx, `SELECT device_label, location, ip, (SELECT name FROM apps WHERE client_id = ?4)
			FROM sessions WHERE user_id = ?2 AND id = ?3 AND `+alive(1),
			now.Unix(), userID, sessionID, clientID).Scan(&e.Device, &e.Location, &e.IP, &e.Detail); err != nil {
			return notFound(err)
		}
		n, err := tx.Exec(ctx, `UPDATE oidc_auth_requests SET user_id = ?1, session_id = ?2, auth_time = ?3, amr = ?4,
			epoch = ?5, done_at = ?6 WHERE id = ?7 AND done_at IS NULL AND expires_at > ?6`,
			userID, sessionID, authTime.Unix(), amrs, epoch, now.Unix(), id)
		if err != nil {
			return err
		}
		if n == 0 {
			return db.ErrNotFound
		}
		return s.d.ExecBatch(ctx, tx,
			Stmt{`INSERT INTO oidc_session_clients (session_id, client_id, user_id, first_at, last_at) VALUES (?1, ?2, ?3, ?4, ?4)
				ON CONFLICT (session_id, client_id) DO UPDATE SET last_at = excluded.last_at
				WHERE excluded.last_at > oidc_session_clients.last_at`, []any{sessionID, clientID, userID, now.Unix()}},
			Stmt{ensureSubjectSQL, []any{userID, newSubject()}},
			Stmt{insertSecurityEventSQL, securityEventArgs(e)})
	})
	return failed("complete auth request", err)
}

// SaveAuthCode gives a completed request its code's hash, valid until
// expiresAt; db.ErrNotFound if the request is not done or has a code
// already. One conditional UPDATE: of two at once, one gives the code.
func (s *Store) SaveAuthCode(ctx context.Context, id string, codeHash []byte, expiresAt time.Time) error {
	if len(codeHash) == 0 {
		return errors.New("db: save auth code: no code hash")
	}
	n, err := s.d.Writes().Exec(ctx, `UPDATE oidc_auth_requests SET code_hash = ?, code_expires_at = ?
		WHERE id = ? AND done_at IS NOT NULL AND code_hash IS NULL`, codeHash, expiresAt.Unix(), id)
	if s.d.IsUniqueViolation(err) {
		return db.ErrConflict
	}
	if err != nil {
		return failed("save auth code", err)
	}
	if n == 0 {
		return db.ErrNotFound
	}
	return nil
}

// RedeemAuthCode spends a code, in one transaction: the user's row (KEY
// SHARE: the family's revocation below writes rows of theirs), then the
// request FOR UPDATE, so of two redemptions at once the second sees the
// first's spending. A code spent before ends every grant of its family
// (ReasonCodeReused) and the transaction commits that before the method
// answers db.ErrCodeUsed. An unknown or expired code is db.ErrNotFound.
func (s *Store) RedeemAuthCode(ctx context.Context, codeHash []byte, now time.Time) (db.AuthRequest, error) {
	var r db.AuthRequest
	reused := false
	err := s.d.Write(ctx, func(tx Q) error {
		var userID *int64
		if err := tx.QueryRow(ctx, `SELECT user_id FROM oidc_auth_requests WHERE code_hash = ?`, codeHash).Scan(&userID); err != nil {
			return notFound(err)
		}
		if userID == nil {
			return db.ErrNotFound
		}
		if err := s.lockUserKey(ctx, tx, *userID); err != nil {
			return err
		}
		var err error
		r, err = scanAuthRequest(tx.QueryRow(ctx, `SELECT `+authRequestColumns+` FROM oidc_auth_requests
			WHERE code_hash = ?`+s.forUpdate("UPDATE"), codeHash))
		if err != nil {
			return notFound(err)
		}
		if !r.CodeUsedAt.IsZero() {
			reused = true
			_, err := tx.Exec(ctx, `UPDATE oidc_grants SET revoked_at = ?, revoked_reason = ?
				WHERE family_id = ? AND revoked_at IS NULL`, now.Unix(), db.ReasonCodeReused, r.ID)
			return err
		}
		if !now.Before(r.CodeExpiresAt) {
			return db.ErrNotFound
		}
		r.CodeUsedAt = time.Unix(now.Unix(), 0)
		_, err = tx.Exec(ctx, `UPDATE oidc_auth_requests SET code_used_at = ? WHERE id = ?`, now.Unix(), r.ID)
		return err
	})
	if err != nil {
		return db.AuthRequest{}, failed("redeem auth code", err)
	}
	if reused {
		return db.AuthRequest{}, db.ErrCodeUsed
	}
	return r, nil
}

// DeleteAuthRequest removes a request whose code was never spent
// (cancelled, or its code not redeemed). A spent code's request is kept
// until it is pruned: its hash is how a second use is recognised, which
// must end what the first issued. Unknown ids are no error.
func (s *Store) DeleteAuthRequest(ctx context.Context, id string) error {
	_, err := s.d.Writes().Exec(ctx, `DELETE FROM oidc_auth_requests WHERE id = ? AND code_used_at IS NULL`, id)
	return failed("delete auth request", err)
}

// PruneAuthRequests deletes requests that expired before cutoff and whose
// code, if any, expired before cutoff too.
func (s *Store) PruneAuthRequests(ctx context.Context, cutoff time.Time) (int64, error) {
	n, err := s.d.Writes().Exec(ctx, `DELETE FROM oidc_auth_requests WHERE expires_at < ?1 AND code_expires_at < ?1`, cutoff.Unix())
	return n, failed("prune auth requests", err)
}

// Consent returns the scopes the user consented to for the app (nil: none
// yet).
func (s *Store) Consent(ctx context.Context, userID int64, clientID string) ([]string, error) {
	var scopes string
	err := s.d.Reads().QueryRow(ctx, `SELECT scopes FROM oidc_consents WHERE user_id = ? AND client_id = ?`,
		userID, clientID).Scan(&scopes)
	if errors.Is(err, ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, failed("consent", err)
	}
	out := splitScopes(scopes)
	if out == nil {
		out = []string{}
	}
	return out, nil
}

// GrantConsent adds scopes to the user's consent for the app, in one
// transaction under the app's and the user's row locks (db.ErrNotFound if
// either does not exist): the scopes held are read, merged and written
// back, so two consents at once keep both.
func (s *Store) GrantConsent(ctx context.Context, userID int64, clientID string, scopes []string, now time.Time) error {
	if _, err := joinScopes(scopes); err != nil {
		return failed("grant consent", err)
	}
	err := s.d.Write(ctx, func(tx Q) error {
		if err := s.lockAppKey(ctx, tx, clientID); err != nil {
			return err
		}
		if _, err := s.lockUser(ctx, tx, userID); err != nil {
			return err
		}
		var held string
		err := tx.QueryRow(ctx, `SELECT scopes FROM oidc_consents WHERE user_id = ? AND client_id = ?`, userID, clientID).Scan(&held)
		if err != nil && !errors.Is(err, ErrNoRows) {
			return err
		}
		merged := splitScopes(held)
		for _, sc := range scopes {
			if !slices.Contains(merged, sc) {
				merged = append(merged, sc)
			}
		}
		joined, _ := joinScopes(merged)
		_, err = tx.Exec(ctx, `INSERT INTO oidc_consents (user_id, client_id, scopes, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?4)
			ON CONFLICT (user_id, client_id) DO UPDATE SET scopes = excluded.scopes, updated_at = excluded.updated_at`,
			userID, clientID, joined, now.Unix())
		return err
	})
	return failed("grant consent", err)
}
