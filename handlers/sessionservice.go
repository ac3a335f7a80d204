package handlers

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/gorilla/sessions"
	"github.com/labstack/echo/v4"

	"doorman/db"
	"doorman/device"
	"doorman/sessiontoken"
)

// sessionService starts, rotates and ends browser sessions, and is the only
// code that writes the session cookie. Handlers call it directly: each
// method does one named thing to the store and the cookie, in that order, so
// the cookie never claims a session the table does not hold.
//
// The cookie holds only an opaque public id and a secret (package
// sessiontoken); the table, read on every request, decides whether it is a
// live session. gorilla/sessions builds the cookie (sessions.NewCookie) and
// carries the flash messages; a signed-cookie session store is not used for
// the session itself because a signed cookie stays valid until it expires,
// which is exactly the "revocation that never bites" bug we exist to avoid.
type sessionService struct {
	a *app
}

// sessionState is what the cookie on a request turned out to be.
type sessionState int

const (
	stateNone    sessionState = iota // no cookie
	stateAlive                       // a live session
	stateInvalid                     // malformed, unknown or forged: never ours, or pruned
	stateEnded                       // revoked elsewhere or expired
	stateSelf                        // signed out on this device
	stateStale                       // a live session's id with an older secret (lost a race with a rotation)
)

// browserSession is the request's cookie, looked up.
type browserSession struct {
	state sessionState
	row   db.Session // set unless stateNone or stateInvalid
	user  db.User
}

// Lookup reads the request's cookie and its session row: one indexed read.
func (s *sessionService) Lookup(r *http.Request) (browserSession, error) {
	c, err := r.Cookie(s.a.cookieName(r, sessionCookie))
	if err != nil {
		return browserSession{state: stateNone}, nil
	}
	id, secret, ok := sessiontoken.Parse(c.Value)
	if !ok {
		return browserSession{state: stateInvalid}, nil
	}
	row, user, err := s.a.store.SessionWithUser(r.Context(), id)
	if errors.Is(err, db.ErrNotFound) {
		return browserSession{state: stateInvalid}, nil
	}
	if err != nil {
		return browserSession{}, err
	}
	if !sessiontoken.Matches(secret, row.SecretHash) {
		// Right id, wrong secret: a forgery (the id is public), or a
		// request sent before another tab rotated the secret. Either way
		// it is signed out. If the row is alive, the cookie is not deleted
		// (stateStale): in a browser that would delete the new cookie of
		// the tab that rotated it. A forger keeps a useless cookie.
		if row.Alive(s.a.now()) {
			return browserSession{state: stateStale}, nil
		}
		return browserSession{state: stateInvalid}, nil
	}
	b := browserSession{row: row, user: user}
	switch {
	case row.Alive(s.a.now()) && !user.Disabled():
		b.state = stateAlive
	case row.RevokedReason == db.ReasonSignedOut:
		b.state = stateSelf
	default:
		b.state = stateEnded
	}
	return b, nil
}

// Start signs the browser in as user with a brand-new session row and sets
// its cookie. Whatever live session the browser had is ended first, so a
// sign-in never adopts an earlier identifier (no fixation). It returns the
// sessions ended to make room under the per-user limit.
func (s *sessionService) Start(c echo.Context, user db.User, method string) ([]db.Session, error) {
	if au := authOf(c); au != nil {
		if err := s.endOwn(c, au); err != nil {
			return nil, fmt.Errorf("start session: %w", err)
		}
	}
	return s.begin(c, user, method, func(ctx context.Context, row db.Session, mail []db.Mail) ([]db.Session, error) {
		return s.a.store.CreateSession(ctx, row, s.a.cfg.MaxSessionsPerUser, user.Epoch, mail...)
	})
}

// Complete finishes the pending sign-in pendingID of user (its second
// factor was just checked): the pending row goes and the session row comes
// in one transaction, so a pending sign-in yields one session at most.
func (s *sessionService) Complete(c echo.Context, pendingID string, user db.User, method string) ([]db.Session, error) {
	return s.begin(c, user, method, func(ctx context.Context, row db.Session, mail []db.Mail) ([]db.Session, error) {
		return s.a.store.CompletePendingSignIn(ctx, pendingID, row, s.a.cfg.MaxSessionsPerUser, mail...)
	})
}

// StartWithLink signs the browser in with the emailed sign-in link linkID
// of user: the link is used up and the session created in one transaction.
func (s *sessionService) StartWithLink(c echo.Context, linkID string, user db.User, method string) ([]db.Session, error) {
	if au := authOf(c); au != nil {
		if err := s.endOwn(c, au); err != nil {
			return nil, fmt.Errorf("start session: %w", err)
		}
	}
	return s.begin(c, user, method, func(ctx context.Context, row db.Session, mail []db.Mail) ([]db.Session, error) {
		return s.a.store.SignInWithLink(ctx, linkID, row, s.a.cfg.MaxSessionsPerUser, mail...)
	})
}

// StartWithPasskey signs the browser in as user with the passkey use
// names: the passkey's use is recorded and the session (which names the
// passkey) created in one transaction. cloned is told whether the
// passkey's counter failed to go forward (a possible copy).
func (s *sessionService) StartWithPasskey(c echo.Context, user db.User, use db.PasskeyUse, cloned func(bool)) ([]db.Session, error) {
	if au := authOf(c); au != nil {
		if err := s.endOwn(c, au); err != nil {
			return nil, fmt.Errorf("start session: %w", err)
		}
	}
	return s.beginRow(c, user, db.MethodPasskey, use.PasskeyID, func(ctx context.Context, row db.Session, mail []db.Mail) ([]db.Session, error) {
		evicted, cl, err := s.a.store.SignInWithPasskey(ctx, use, row, s.a.cfg.MaxSessionsPerUser, user.Epoch, mail...)
		cloned(cl)
		return evicted, err
	})
}

// begin makes the session row of a sign-in, and its new sign-in alert if
// one is due, and has write store both in one transaction; then it sets the
// cookie. Store errors come back unwrapped (ErrNotFound, ErrSignInsReset,
// ErrLinkUsed mean something to the caller).
func (s *sessionService) begin(c echo.Context, user db.User, method string, write func(context.Context, db.Session, []db.Mail) ([]db.Session, error)) ([]db.Session, error) {
	return s.beginRow(c, user, method, 0, write)
}

// beginRow is begin for a session opened by passkey passkeyID (0: none).
func (s *sessionService) beginRow(c echo.Context, user db.User, method string, passkeyID int64, write func(context.Context, db.Session, []db.Mail) ([]db.Session, error)) ([]db.Session, error) {
	r := c.Request()
	row, value := s.a.newSessionRow(r, user.ID, method, s.a.now())
	row.PasskeyID = passkeyID
	alert, err := s.a.signInAlert(c, user, row)
	if err != nil {
		return nil, err
	}
	evicted, err := write(r.Context(), row, alert)
	if err != nil {
		return nil, err
	}
	s.a.kickMail(alert)
	s.started(c, user, row, value, evicted)
	return evicted, nil
}

// started logs a new session, sets its cookie and makes it the request's.
func (s *sessionService) started(c echo.Context, user db.User, row db.Session, value string, evicted []db.Session) {
	now := row.CreatedAt
	s.a.log.Info("session created", "session", row.ID, "user", user.ID, "method", row.AuthMethod, "device", row.DeviceLabel)
	for _, e := range evicted {
		s.a.log.Info("session revoked", "session", e.ID, "user", e.UserID, "reason", db.ReasonSessionLimit, "by", row.ID)
	}
	s.setCookie(c, value, row.AbsoluteExpiresAt.Sub(now))
	c.Set(ctxAuth, &authInfo{User: user, Session: row})
}

// Rotate gives the browser's live session a new secret and starts a new
// sudo window (the password was just entered again): an earlier copy of the
// cookie is worth nothing from now on.
func (s *sessionService) Rotate(c echo.Context, au *authInfo) error {
	now := s.a.now()
	tok := sessiontoken.Rotate(au.Session.ID)
	if err := s.a.store.RotateSession(c.Request().Context(), au.Session.ID, tok.Hash, now); err != nil {
		return fmt.Errorf("rotate session: %w", err)
	}
	au.Session.SecretHash, au.Session.ReauthAt = tok.Hash, now
	s.a.log.Info("session rotated", "session", au.Session.ID, "user", au.User.ID, "reason", "re-authenticated")
	s.setCookie(c, tok.CookieValue, au.Session.AbsoluteExpiresAt.Sub(now))
	return nil
}

// ChangePassword sets the user's new password hash, gives this browser's
// session a new secret (and a new sudo window), if endOthers, ends every
// other session, and, if endTokens, every app and token: one transaction
// in the store, which also refuses every sign-in still in flight with the
// old password. db.ErrNotFound: this session was ended meanwhile and
// nothing changed.
func (s *sessionService) ChangePassword(c echo.Context, au *authInfo, hash string, endOthers, endTokens bool, mail ...db.Mail) ([]db.Session, []db.Token, error) {
	now := s.a.now()
	tok := sessiontoken.Rotate(au.Session.ID)
	ended, tokens, err := s.a.account.ChangePassword(c.Request().Context(), au.User.ID, au.Session.ID, hash, tok.Hash, endOthers, endTokens, mail...)
	if errors.Is(err, db.ErrNotFound) {
		return nil, nil, err
	}
	if err != nil {
		return nil, nil, fmt.Errorf("change password: %w", err)
	}
	au.Session.SecretHash, au.Session.ReauthAt = tok.Hash, now
	s.a.log.Info("session rotated", "session", au.Session.ID, "user", au.User.ID, "reason", "password changed")
	s.setCookie(c, tok.CookieValue, au.Session.AbsoluteExpiresAt.Sub(now))
	return ended, tokens, nil
}

// End signs this browser out: its session ends and its cookie is deleted.
func (s *sessionService) End(c echo.Context, au *authInfo) error {
	if err := s.endOwn(c, au); err != nil {
		return fmt.Errorf("end session: %w", err)
	}
	s.ClearCookie(c)
	return nil
}

// EndOne ends another session of the user's (by its public id).
// ErrNotFound: not a live session of theirs; nothing changed.
func (s *sessionService) EndOne(c echo.Context, au *authInfo, id string) (db.Session, error) {
	return s.a.account.EndSession(c.Request().Context(), au.User.ID, id, db.ReasonRevoked, au.Session.ID)
}

// EndOthers ends every session of the user but this browser's, and, if
// alsoTokens, every app and token of theirs in the same transaction,
// recording why, and returns them.
func (s *sessionService) EndOthers(c echo.Context, au *authInfo, reason string, alsoTokens bool) ([]db.Session, []db.Token, error) {
	var ended []db.Session
	var tokens []db.Token
	var err error
	if alsoTokens {
		ended, tokens, err = s.a.account.EndSessionsAndTokens(c.Request().Context(), au.User.ID, au.Session.ID, reason, au.Session.ID)
	} else {
		ended, err = s.a.account.EndOtherSessions(c.Request().Context(), au.User.ID, au.Session.ID, reason)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("end other sessions: %w", err)
	}
	// The reset voided every device cookie; this browser made it.
	s.a.renewDeviceCookie(c, au.User.ID)
	return ended, tokens, nil
}

// EndAll ends every session of the user, this browser's included, and
// every app and token of theirs, in one transaction, deletes this
// browser's cookie, and returns what it ended.
func (s *sessionService) EndAll(c echo.Context, au *authInfo) ([]db.Session, []db.Token, error) {
	ended, tokens, err := s.a.account.EndSessionsAndTokens(c.Request().Context(), au.User.ID, "", db.ReasonRevokedAll, au.Session.ID)
	if err != nil {
		return nil, nil, fmt.Errorf("end all sessions: %w", err)
	}
	s.ClearCookie(c)
	// The reset voided every device cookie; this browser made it, and
	// signs in again apart from strangers' guesses.
	s.a.renewDeviceCookie(c, au.User.ID)
	return ended, tokens, nil
}

// endOwn revokes the browser's own session as signed out.
func (s *sessionService) endOwn(c echo.Context, au *authInfo) error {
	_, err := s.a.account.EndSession(c.Request().Context(), au.User.ID, au.Session.ID, db.ReasonSignedOut, au.Session.ID)
	if errors.Is(err, db.ErrNotFound) {
		return nil // already ended (for example by "Sign out everywhere" elsewhere)
	}
	return err
}

// ClearCookie deletes the browser's session cookie.
func (s *sessionService) ClearCookie(c echo.Context) {
	s.writeCookie(c, "", -1)
}

func (s *sessionService) setCookie(c echo.Context, value string, lifetime time.Duration) {
	s.writeCookie(c, value, int(lifetime/time.Second))
}

// writeCookie sets the session cookie: HttpOnly (no script can read it),
// SameSite=Lax (not sent on cross-site POSTs), Path=/, no Domain, and Secure
// whenever the request came over HTTPS. maxAge < 0 deletes it. Any
// Set-Cookie for the same name already in this response is replaced (a
// sign-in over an ended session first deletes the old cookie, then sets the
// new one: the browser should see only the last word).
func (s *sessionService) writeCookie(c echo.Context, value string, maxAge int) {
	s.a.writeCookie(c, s.a.cookieName(c.Request(), sessionCookie), value, maxAge)
}

// writeCookie sets cookie name as the session cookie is set (HttpOnly,
// SameSite=Lax, Path=/, no Domain, Secure over HTTPS; maxAge < 0 deletes
// it), replacing any Set-Cookie for the same name already in the response.
func (a *app) writeCookie(c echo.Context, name, value string, maxAge int) {
	r, w := c.Request(), c.Response()
	ck := sessions.NewCookie(name, value, &sessions.Options{
		Path: "/", MaxAge: maxAge, Secure: a.isHTTPS(r), HttpOnly: true, SameSite: http.SameSiteLaxMode,
	})
	h := w.Header()
	kept := h["Set-Cookie"][:0]
	for _, v := range h["Set-Cookie"] {
		if !strings.HasPrefix(v, ck.Name+"=") {
			kept = append(kept, v)
		}
	}
	h["Set-Cookie"] = kept
	http.SetCookie(w, ck)
}

// newSessionRow makes a session row for a sign-in from r, and the cookie
// value that unlocks it.
func (a *app) newSessionRow(r *http.Request, userID int64, method string, now time.Time) (db.Session, string) {
	tok := sessiontoken.New()
	ua := truncate(r.UserAgent(), 512)
	dev := device.Parse(ua)
	ip := a.clientIP(r)
	loc := a.geo.Lookup(ip)
	row := db.Session{
		ID: tok.ID, SecretHash: tok.Hash, UserID: userID,
		CreatedAt: now, LastSeenAt: now,
		IdleExpiresAt:     now.Add(a.cfg.IdleTimeout),
		AbsoluteExpiresAt: now.Add(a.cfg.AbsoluteLifetime),
		IP:                ip.String(), UserAgent: ua,
		DeviceLabel: dev.Label, DeviceKind: string(dev.Kind),
		Location: loc.Label, LocationShort: loc.Short,
		AuthMethod: method,
	}
	return row, tok.CookieValue
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "")
}
