// Package account holds the account's rules that have nothing to do with
// HTTP: ending one session, every other, or all of them; ending apps and
// tokens; changing the password; taking the account back (a reset, a
// recovery, "This wasn't me"); disabling and deleting a user. Each is
// written once, with one check of what it is given and one log line, and
// called alike by the web pages (handlers), the API and the operator
// commands: they parse, call the service and render. The store decides
// in one transaction; the service says who did it and why, and logs it.
package account

import (
	"context"
	"log/slog"
	"time"

	"doorman/db"
	"doorman/sessiontoken"
)

// Store is what the service uses of the store.
type Store interface {
	RevokeSession(ctx context.Context, userID int64, id, reason, by string, now time.Time) (db.Session, error)
	RevokeOtherSessions(ctx context.Context, userID int64, keepID, reason string, now time.Time) ([]db.Session, error)
	RevokeAllSessions(ctx context.Context, userID int64, reason, by string, now time.Time) ([]db.Session, error)
	RevokeSessionsAndTokens(ctx context.Context, userID int64, keepID, reason, by string, now time.Time) ([]db.Session, []db.Token, error)
	RevokeToken(ctx context.Context, userID int64, id, reason, by string, now time.Time) (db.Token, error)
	RevokeAppTokens(ctx context.Context, userID int64, clientID, reason, by string, now time.Time) ([]db.Token, error)
	ChangePassword(ctx context.Context, userID int64, sessionID, passwordHash string, secretHash []byte, endOthers, endTokens bool, now time.Time, mail ...db.Mail) ([]db.Session, []db.Token, error)
	RecoverAccount(ctx context.Context, r db.Recovery) (db.Recovered, error)
	SetUserDisabled(ctx context.Context, userID int64, disabled bool, now time.Time) ([]db.Session, error)
	DeleteUser(ctx context.Context, userID int64, now time.Time) ([]db.Session, error)
}

// Operator is the By of what an operator command does.
const Operator = "operator"

// Service carries out the account's rules. Its zero value is not usable:
// make one with New.
type Service struct {
	store Store
	log   *slog.Logger
	now   func() time.Time
}

// New returns the service over store, logging to log, at the time now
// gives.
func New(store Store, log *slog.Logger, now func() time.Time) *Service {
	if log == nil {
		log = slog.Default()
	}
	if now == nil {
		now = time.Now
	}
	return &Service{store: store, log: log, now: now}
}

// Now is the service's clock (what it records as the time of each ending).
func (s *Service) Now() time.Time { return s.now() }

// EndSession ends one live session of the user's, by its public id,
// recording why and by whom (a session id, a token id, Operator).
// db.ErrNotFound, with nothing changed, for an id that is not a live
// session of this user's: malformed, unknown, ended, or another user's.
func (s *Service) EndSession(ctx context.Context, userID int64, id, reason, by string) (db.Session, error) {
	if !sessiontoken.ValidID(id) {
		return db.Session{}, db.ErrNotFound
	}
	ended, err := s.store.RevokeSession(ctx, userID, id, reason, by, s.now())
	if err != nil {
		return db.Session{}, err
	}
	s.log.Info("session revoked", "session", ended.ID, "user", userID, "reason", reason, "by", by)
	return ended, nil
}

// EndOtherSessions ends every live session of the user's but keepID (by
// keepID) and resets the user's sign-ins, and returns what it ended.
func (s *Service) EndOtherSessions(ctx context.Context, userID int64, keepID, reason string) ([]db.Session, error) {
	ended, err := s.store.RevokeOtherSessions(ctx, userID, keepID, reason, s.now())
	if err != nil {
		return nil, err
	}
	s.log.Info("sessions revoked", "count", len(ended), "user", userID, "reason", reason, "by", keepID)
	return ended, nil
}

// EndAllSessions ends every live session of the user's and resets the
// user's sign-ins, and returns what it ended.
func (s *Service) EndAllSessions(ctx context.Context, userID int64, reason, by string) ([]db.Session, error) {
	ended, err := s.store.RevokeAllSessions(ctx, userID, reason, by, s.now())
	if err != nil {
		return nil, err
	}
	s.log.Info("sessions revoked", "count", len(ended), "user", userID, "reason", reason, "by", by)
	return ended, nil
}

// EndSessionsAndTokens ends every live session of the user's but keepID
// ("" for "sign out everywhere"), resets the user's sign-ins, and ends
// every app and token of theirs ("Sign out everywhere", or "Sign out all
// other sessions" with the apps), in one transaction: a failure leaves
// everything as it was. It returns what it ended.
func (s *Service) EndSessionsAndTokens(ctx context.Context, userID int64, keepID, reason, by string) ([]db.Session, []db.Token, error) {
	ended, tokens, err := s.store.RevokeSessionsAndTokens(ctx, userID, keepID, reason, by, s.now())
	if err != nil {
		return nil, nil, err
	}
	s.log.Info("sessions and tokens revoked", "sessions", len(ended), "tokens", len(tokens), "user", userID, "reason", reason,
		"by", by)
	return ended, tokens, nil
}

// EndToken ends one token of the user's: an app's token ends every token
// of that app (disconnecting it), a personal token only itself. kind and
// clientID are the token's, as the caller read it. db.ErrNotFound, with
// nothing changed, if there is no such live token of the user's.
func (s *Service) EndToken(ctx context.Context, userID int64, t db.Token, reason, by string) ([]db.Token, error) {
	var ended []db.Token
	var err error
	if t.Kind == db.TokenApp {
		ended, err = s.store.RevokeAppTokens(ctx, userID, t.ClientID, reason, by, s.now())
	} else {
		var one db.Token
		one, err = s.store.RevokeToken(ctx, userID, t.ID, reason, by, s.now())
		ended = []db.Token{one}
	}
	if err != nil {
		return nil, err
	}
	s.log.Info("tokens revoked", "count", len(ended), "user", userID, "reason", reason, "by", by, "kind", t.Kind)
	return ended, nil
}

// ChangePassword sets the user's password hash, gives session sessionID
// (the one asking) the new secret hash and a re-authentication, resets the
// user's sign-ins, if endOthers, ends every other session, and, if
// endTokens, every app and token: one transaction, with mail queued in it.
// db.ErrNotFound: that session was ended meanwhile, and nothing changed.
func (s *Service) ChangePassword(ctx context.Context, userID int64, sessionID, hash string, secretHash []byte, endOthers, endTokens bool, mail ...db.Mail) ([]db.Session, []db.Token, error) {
	ended, tokens, err := s.store.ChangePassword(ctx, userID, sessionID, hash, secretHash, endOthers, endTokens, s.now(), mail...)
	if err != nil {
		return nil, nil, err
	}
	s.log.Info("password changed", "user", userID, "by", sessionID, "sessions_ended", len(ended), "tokens_ended", len(tokens))
	return ended, tokens, nil
}

// Reset takes the account back in one write (db.Recovery says what: the
// sessions and tokens it ends, the password, the address, the second
// factor, the session it starts or keeps), resetting the user's sign-ins
// so that nothing started before it can act for the account. how names
// the way in for the log (a reset link, "This wasn't me", the operator).
func (s *Service) Reset(ctx context.Context, r db.Recovery, how string) (db.Recovered, error) {
	if r.Now.IsZero() {
		r.Now = s.now()
	}
	done, err := s.store.RecoverAccount(ctx, r)
	if err != nil {
		return db.Recovered{}, err
	}
	s.log.Info("account reset", "user", r.UserID, "how", how, "by", r.By, "sessions_ended", len(done.Ended),
		"tokens_ended", len(done.Tokens), "two_factor_off", done.TwoFactorOff)
	return done, nil
}

// ResetByOperator is the operator's reset of a user: every session and
// token ends, the sign-ins reset, and (twoFactor) the second factor goes.
func (s *Service) ResetByOperator(ctx context.Context, userID int64, twoFactor bool) (db.Recovered, error) {
	return s.Reset(ctx, db.Recovery{UserID: userID, EndOthers: true, EndTokens: true, DisableTwoFactor: twoFactor,
		RecordReset: true, Reason: db.ReasonOperator, By: Operator}, "operator")
}

// SetDisabled disables the user (ending every session of theirs and
// resetting their sign-ins) or enables them again.
func (s *Service) SetDisabled(ctx context.Context, userID int64, disabled bool, by string) ([]db.Session, error) {
	ended, err := s.store.SetUserDisabled(ctx, userID, disabled, s.now())
	if err != nil {
		return nil, err
	}
	if disabled {
		s.log.Info("user disabled", "user", userID, "sessions_ended", len(ended), "by", by)
	} else {
		s.log.Info("user enabled", "user", userID, "by", by)
	}
	return ended, nil
}

// Delete removes the user and everything of theirs, and returns the
// sessions that were alive.
func (s *Service) Delete(ctx context.Context, userID int64, by string) ([]db.Session, error) {
	ended, err := s.store.DeleteUser(ctx, userID, s.now())
	if err != nil {
		return nil, err
	}
	s.log.Info("user deleted", "user", userID, "by", by, "sessions_ended", len(ended))
	return ended, nil
}
