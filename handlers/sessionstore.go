package handlers

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/gorilla/sessions"

	"doorman/db"
	"doorman/device"
	"doorman/sessiontoken"
)

// The session cookie is carried by gorilla/sessions through sessionStore, a
// sessions.Store whose backing store is the sessions table. We implement the
// Store interface rather than use gorilla's cookie codec because the table,
// not the cookie, must decide whether a session is alive: a signed cookie
// stays valid until it expires, which is exactly the "revocation that never
// bites" bug we exist to avoid. The cookie holds only an opaque id and secret
// (package sessiontoken); gorilla/sessions contributes the per-request
// registry (one lookup per request, however often the session is asked for)
// and the Session/Options API the handlers use.

// Keys of sessions.Session.Values set by sessionStore.New.
const (
	valState   = "state"   // sessionState
	valSession = "session" // db.Session
	valUser    = "user"    // db.User
	// Set by handlers before Save to start a new session:
	valNewUser   = "new_user"   // db.User
	valNewMethod = "new_method" // string: how it signed in
	// Set by handlers before Save to give the live session a new secret
	// after the password was entered again:
	valRotate = "rotate" // bool
	// Set by Save: sessions ended to make room under the per-user limit.
	valEvicted = "evicted" // []db.Session
)

// sessionState is what the cookie on a request turned out to be.
type sessionState int

const (
	stateNone    sessionState = iota // no cookie
	stateAlive                       // a live session
	stateInvalid                     // malformed, unknown or forged: never ours, or pruned
	stateEnded                       // revoked elsewhere or expired
	stateSelf                        // signed out on this device
)

type sessionStore struct {
	app *app
}

var _ sessions.Store = (*sessionStore)(nil)

// cookieName is the session cookie's name for r. Over HTTPS it carries the
// __Host- prefix, which makes the browser refuse it unless it is Secure, has
// Path=/ and no Domain: no subdomain or plain-http page can plant or overwrite
// it.
func (s *sessionStore) cookieName(r *http.Request) string {
	if s.app.isHTTPS(r) {
		return "__Host-doorman_session"
	}
	return "doorman_session"
}

// Get returns the request's session, looked up once per request.
func (s *sessionStore) Get(r *http.Request, name string) (*sessions.Session, error) {
	return sessions.GetRegistry(r).Get(s, name)
}

// New reads the cookie and looks its session up in the table. It never
// returns a nil session: a request without a valid cookie gets an empty new
// one, with valState saying why.
func (s *sessionStore) New(r *http.Request, name string) (*sessions.Session, error) {
	sess := sessions.NewSession(s, name)
	sess.IsNew = true
	sess.Options = s.options(r, 0)
	sess.Values[valState] = stateNone
	c, err := r.Cookie(name)
	if err != nil {
		return sess, nil
	}
	id, secret, ok := sessiontoken.Parse(c.Value)
	if !ok {
		sess.Values[valState] = stateInvalid
		return sess, nil
	}
	row, user, err := s.app.store.SessionWithUser(r.Context(), id)
	if errors.Is(err, db.ErrNotFound) {
		sess.Values[valState] = stateInvalid
		return sess, nil
	}
	if err != nil {
		return sess, err
	}
	if !sessiontoken.Matches(secret, row.SecretHash) {
		// Right id, wrong secret: a forgery (the id is public). Treat it
		// exactly like an unknown id.
		sess.Values[valState] = stateInvalid
		return sess, nil
	}
	switch {
	case row.Alive(s.app.now()) && !user.Disabled():
		sess.Values[valState] = stateAlive
		sess.IsNew = false
	case row.RevokedReason == db.ReasonSignedOut:
		sess.Values[valState] = stateSelf
	default:
		sess.Values[valState] = stateEnded
	}
	sess.ID = row.ID
	sess.Values[valSession] = row
	sess.Values[valUser] = user
	return sess, nil
}

// Save writes the session back:
//   - Options.MaxAge < 0: the session ends (revoked as signed out, if it was
//     alive) and the cookie is deleted;
//   - valNewUser set: a new session row is created with a new id and secret,
//     and the cookie set. Whatever session the browser had before is ended
//     first, so a sign-in never adopts an earlier identifier (no fixation).
//   - otherwise nothing: activity is recorded by the session middleware.
func (s *sessionStore) Save(r *http.Request, w http.ResponseWriter, sess *sessions.Session) error {
	now := s.app.now()
	old, hadRow := sess.Values[valSession].(db.Session)
	wasAlive := hadRow && sess.Values[valState] == stateAlive
	if sess.Options.MaxAge < 0 {
		if wasAlive {
			if _, err := s.app.store.RevokeSession(r.Context(), old.UserID, old.ID, db.ReasonSignedOut, old.ID, now); err != nil && !errors.Is(err, db.ErrNotFound) {
				return err
			}
			s.app.log.Info("session revoked", "session", old.ID, "user", old.UserID, "reason", db.ReasonSignedOut, "by", old.ID)
		}
		http.SetCookie(w, s.cookie(r, sess.Name(), "", -1))
		return nil
	}
	if rotate, _ := sess.Values[valRotate].(bool); rotate && wasAlive {
		delete(sess.Values, valRotate)
		tok := sessiontoken.Rotate(old.ID)
		if err := s.app.store.RotateSession(r.Context(), old.ID, tok.Hash, now); err != nil {
			return err
		}
		old.SecretHash, old.ReauthAt = tok.Hash, now
		sess.Values[valSession] = old
		s.app.log.Info("session rotated", "session", old.ID, "user", old.UserID, "reason", "re-authenticated")
		http.SetCookie(w, s.cookie(r, sess.Name(), tok.CookieValue, int(old.AbsoluteExpiresAt.Sub(now)/time.Second)))
		return nil
	}
	user, ok := sess.Values[valNewUser].(db.User)
	if !ok {
		return nil
	}
	if wasAlive {
		if _, err := s.app.store.RevokeSession(r.Context(), old.UserID, old.ID, db.ReasonSignedOut, old.ID, now); err != nil && !errors.Is(err, db.ErrNotFound) {
			return err
		}
		s.app.log.Info("session revoked", "session", old.ID, "user", old.UserID, "reason", "replaced by a new sign-in")
	}
	method, _ := sess.Values[valNewMethod].(string)
	row, value := s.app.newSessionRow(r, user.ID, method, now)
	evicted, err := s.app.store.CreateSession(r.Context(), row, s.app.cfg.MaxSessionsPerUser)
	if err != nil {
		return err
	}
	s.app.log.Info("session created", "session", row.ID, "user", user.ID, "method", method, "device", row.DeviceLabel)
	for _, e := range evicted {
		s.app.log.Info("session revoked", "session", e.ID, "user", e.UserID, "reason", db.ReasonSessionLimit, "by", row.ID)
	}
	sess.Values[valEvicted] = evicted
	delete(sess.Values, valNewUser)
	delete(sess.Values, valNewMethod)
	sess.ID, sess.IsNew = row.ID, false
	sess.Values[valState], sess.Values[valSession], sess.Values[valUser] = stateAlive, row, user
	http.SetCookie(w, s.cookie(r, sess.Name(), value, int(row.AbsoluteExpiresAt.Sub(now)/time.Second)))
	return nil
}

func (s *sessionStore) options(r *http.Request, maxAge int) *sessions.Options {
	return &sessions.Options{Path: "/", MaxAge: maxAge, Secure: s.app.isHTTPS(r), HttpOnly: true, SameSite: http.SameSiteLaxMode}
}

// cookie builds the session cookie: HttpOnly (no script can read it),
// SameSite=Lax (not sent on cross-site POSTs), Path=/, no Domain, and Secure
// whenever the request came over HTTPS. maxAge < 0 deletes it.
func (s *sessionStore) cookie(r *http.Request, name, value string, maxAge int) *http.Cookie {
	return sessions.NewCookie(name, value, s.options(r, maxAge))
}

// newSessionRow makes a session row for a sign-in from r, and the cookie
// value that unlocks it.
func (a *app) newSessionRow(r *http.Request, userID int64, method string, now time.Time) (db.Session, string) {
	tok := sessiontoken.New()
	ua := truncate(r.UserAgent(), 512)
	dev := device.Parse(ua)
	ip := a.clientIP(r)
	loc := a.locate(ip)
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
