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

// Save writes the session back, doing the one thing the handler asked for:
//   - valNewUser set: a new session row is created with a new id and secret,
//     and the cookie set. Whatever session the browser had before is ended
//     first, so a sign-in never adopts an earlier identifier (no fixation).
//   - Options.MaxAge < 0: the session ends (revoked as signed out, if it was
//     alive) and the cookie is deleted;
//   - valRotate set: the live session gets a new secret;
//   - otherwise nothing: activity is recorded by the session middleware.
func (s *sessionStore) Save(r *http.Request, w http.ResponseWriter, sess *sessions.Session) error {
	now := s.app.now()
	old, _ := sess.Values[valSession].(db.Session)
	alive := sess.Values[valState] == stateAlive
	if user, ok := sess.Values[valNewUser].(db.User); ok {
		method, _ := sess.Values[valNewMethod].(string)
		delete(sess.Values, valNewUser)
		delete(sess.Values, valNewMethod)
		return s.start(r, w, sess, user, method, old, alive, now)
	}
	if sess.Options.MaxAge < 0 {
		if alive {
			if err := s.end(r, old, "signed out", now); err != nil {
				return err
			}
			sess.Values[valState] = stateSelf
		}
		setCookie(w, s.cookie(r, sess.Name(), "", -1))
		return nil
	}
	if rotate, _ := sess.Values[valRotate].(bool); rotate && alive {
		delete(sess.Values, valRotate)
		tok := sessiontoken.Rotate(old.ID)
		if err := s.app.store.RotateSession(r.Context(), old.ID, tok.Hash, now); err != nil {
			return err
		}
		old.SecretHash, old.ReauthAt = tok.Hash, now
		sess.Values[valSession] = old
		s.app.log.Info("session rotated", "session", old.ID, "user", old.UserID, "reason", "re-authenticated")
		setCookie(w, s.cookie(r, sess.Name(), tok.CookieValue, int(old.AbsoluteExpiresAt.Sub(now)/time.Second)))
	}
	return nil
}

// start signs the browser in as user with a new session row.
func (s *sessionStore) start(r *http.Request, w http.ResponseWriter, sess *sessions.Session, user db.User, method string, old db.Session, alive bool, now time.Time) error {
	if alive {
		if err := s.end(r, old, "replaced by a new sign-in", now); err != nil {
			return err
		}
	}
	row, value := s.app.newSessionRow(r, user.ID, method, now)
	evicted, err := s.app.store.CreateSession(r.Context(), row, s.app.cfg.MaxSessionsPerUser)
	if err != nil {
		return err
	}
	s.app.log.Info("session created", "session", row.ID, "user", user.ID, "method", method, "device", row.DeviceLabel)
	for _, e := range evicted {
		s.app.log.Info("session revoked", "session", e.ID, "user", e.UserID, "reason", db.ReasonSessionLimit, "by", row.ID)
	}
	sess.ID, sess.IsNew = row.ID, false
	sess.Options = s.options(r, int(row.AbsoluteExpiresAt.Sub(now)/time.Second))
	sess.Values[valState], sess.Values[valSession], sess.Values[valUser], sess.Values[valEvicted] = stateAlive, row, user, evicted
	setCookie(w, s.cookie(r, sess.Name(), value, sess.Options.MaxAge))
	return nil
}

// end revokes the browser's own session (signing out).
func (s *sessionStore) end(r *http.Request, old db.Session, why string, now time.Time) error {
	_, err := s.app.store.RevokeSession(r.Context(), old.UserID, old.ID, db.ReasonSignedOut, old.ID, now)
	if errors.Is(err, db.ErrNotFound) {
		return nil // already ended (for example by "Log out everywhere")
	}
	if err != nil {
		return err
	}
	s.app.log.Info("session revoked", "session", old.ID, "user", old.UserID, "reason", db.ReasonSignedOut, "why", why)
	return nil
}

// setCookie sets c, replacing any Set-Cookie for the same name already in
// this response (a sign-in over an ended session first deletes the old
// cookie, then sets the new one: the browser should see only the last word).
func setCookie(w http.ResponseWriter, c *http.Cookie) {
	h := w.Header()
	kept := h["Set-Cookie"][:0]
	for _, v := range h["Set-Cookie"] {
		if !strings.HasPrefix(v, c.Name+"=") {
			kept = append(kept, v)
		}
	}
	h["Set-Cookie"] = kept
	http.SetCookie(w, c)
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
