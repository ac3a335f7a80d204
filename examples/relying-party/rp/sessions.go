package rp

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"sync"
	"time"
)

// sessionLifetime bounds an RP session however it is used: the app does not
// trust a sign-in forever, and an abandoned record does not stay in memory.
const sessionLifetime = 12 * time.Hour

// endedNoticeFor is how long a session ended by the provider is remembered, so
// that the browser's next page can say why it is signed out.
const endedNoticeFor = time.Hour

// Session is one signed-in browser of the RP, as the store keeps it.
type Session struct {
	// Sub is the provider's subject: the person.
	Sub string
	// SID is the provider's session id from the ID token ("sid"): the Doorman
	// session this sign-in came from, which a logout token names.
	SID string
	// Email is the person's email address from the ID token.
	Email string
	// AMR is how the person signed in to the provider, from the ID token
	// ("amr", RFC 8176: pwd, otp, hwk, swk, mfa…).
	AMR []string
	// IDToken is the raw ID token, sent back as id_token_hint at logout.
	IDToken string
	// RefreshToken is the current refresh token (rotated on every refresh);
	// empty when the provider gave none.
	RefreshToken string
	// Started is when the RP session started.
	Started time.Time

	// ended and endedWhy are set when the provider ended the session: the
	// record stays a while as a notice, but never counts as signed in again.
	ended    time.Time
	endedWhy string
}

// live reports whether s still signs its browser in at now.
func (s *Session) live(now time.Time) bool {
	return s.ended.IsZero() && now.Before(s.Started.Add(sessionLifetime))
}

// sessionStore keeps the RP's sessions keyed by the SHA-256 of the cookie
// value: the map never holds a usable cookie.
type sessionStore struct {
	mu   sync.Mutex
	now  func() time.Time
	byID map[string]*Session
}

func newSessionStore(now func() time.Time) *sessionStore {
	return &sessionStore{now: now, byID: map[string]*Session{}}
}

// hashCookie is the store key of a cookie value.
func hashCookie(value string) string {
	sum := sha256.Sum256([]byte(value))
	return hex.EncodeToString(sum[:])
}

// randomString returns n random bytes, base64url without padding.
func randomString(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b)
}

// start stores s and returns the new cookie value naming it.
func (st *sessionStore) start(s Session) string {
	value := randomString(32)
	st.mu.Lock()
	defer st.mu.Unlock()
	st.purgeLocked()
	s.Started = st.now()
	st.byID[hashCookie(value)] = &s
	return value
}

// get returns a copy of the session the cookie value names. ok is false when
// it is not signed in; then why, if not empty, says why it was ended.
func (st *sessionStore) get(value string) (s Session, ok bool, why string) {
	st.mu.Lock()
	defer st.mu.Unlock()
	p := st.byID[hashCookie(value)]
	if p == nil {
		return Session{}, false, ""
	}
	if !p.live(st.now()) {
		return Session{}, false, p.endedWhy
	}
	return *p, true, ""
}

// end forgets the session the cookie value names (an end notice too) and
// returns it if it was live.
func (st *sessionStore) end(value string) (Session, bool) {
	st.mu.Lock()
	defer st.mu.Unlock()
	key := hashCookie(value)
	p := st.byID[key]
	delete(st.byID, key)
	if p == nil || !p.live(st.now()) {
		return Session{}, false
	}
	return *p, true
}

// update applies f to the live session the cookie value names.
func (st *sessionStore) update(value string, f func(*Session)) bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	p := st.byID[hashCookie(value)]
	if p == nil || !p.live(st.now()) {
		return false
	}
	f(p)
	return true
}

// endMatching ends every live session with this sid (when sid is not empty)
// and this sub (when sub is not empty), marking it with why, and returns how
// many it ended. At least one of sid and sub must be set.
func (st *sessionStore) endMatching(sub, sid, why string) int {
	if sub == "" && sid == "" {
		return 0
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	now := st.now()
	n := 0
	for _, p := range st.byID {
		if !p.live(now) || (sid != "" && p.SID != sid) || (sub != "" && p.Sub != sub) {
			continue
		}
		p.ended, p.endedWhy = now, why
		// The tokens are dead to this app from now on: drop them.
		p.IDToken, p.RefreshToken = "", ""
		n++
	}
	return n
}

// list returns copies of the live sessions.
func (st *sessionStore) list() []Session {
	st.mu.Lock()
	defer st.mu.Unlock()
	now := st.now()
	var out []Session
	for _, p := range st.byID {
		if p.live(now) {
			out = append(out, *p)
		}
	}
	return out
}

// purgeLocked forgets expired sessions and old end notices.
func (st *sessionStore) purgeLocked() {
	now := st.now()
	for k, p := range st.byID {
		if (!p.ended.IsZero() && now.After(p.ended.Add(endedNoticeFor))) ||
			(p.ended.IsZero() && !now.Before(p.Started.Add(sessionLifetime))) {
			delete(st.byID, k)
		}
	}
}

// jtiStore remembers the ids of accepted logout tokens until they expire, so
// a token seen again (a replay, or the provider retrying one we answered) is
// refused: Back-Channel Logout 1.0 §2.6 step 10. After exp the verifier
// refuses the token anyway, so nothing needs keeping longer.
type jtiStore struct {
	mu   sync.Mutex
	now  func() time.Time
	seen map[string]time.Time // jti → exp
}

func newJTIStore(now func() time.Time) *jtiStore {
	return &jtiStore{now: now, seen: map[string]time.Time{}}
}

// add records jti until exp; it reports false when jti was already recorded.
// Checking and recording is one step under the lock, so two concurrent
// deliveries of one token cannot both pass.
func (j *jtiStore) add(jti string, exp time.Time) bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	now := j.now()
	for k, e := range j.seen {
		if now.After(e) {
			delete(j.seen, k)
		}
	}
	if _, ok := j.seen[jti]; ok {
		return false
	}
	j.seen[jti] = exp
	return true
}
