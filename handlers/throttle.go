package handlers

import (
	"container/list"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"doorman/db"
)

// Throttling, and why it cannot be turned against the owner.
//
// Password guesses are limited three ways, each counted apart, so that no
// one can lock the owner out by failing on purpose:
//   - per account and scope, in the database (survives restarts, holds
//     across instances). The scope says who was guessing: "anon" for any
//     browser without a device cookie for that account; "device:<nonce>" for
//     a browser that signed in to it successfully since its last reset and
//     carries a signed device cookie (OWASP's "device cookie" pattern; all
//     device scopes of an account capped together, see reserveGuess);
//     "session:<id>" for a signed-in session re-entering its password. A
//     flood of wrong passwords from elsewhere fills only the anonymous
//     count: the owner's browsers keep their own counts and sign in as
//     usual, and re-entering the password in a live session is never
//     blocked by anyone else.
//   - per client address, in memory (per instance): an IPv6 /64 counts as
//     one address, IPv4-mapped IPv6 as the IPv4 address.
// Every attempt is counted before it is checked, the check and the count
// in one step (reserve, ipLimiter.take), and given back when it was right:
// a burst sent at once gets no more checks than the limit allows.
//
// The account is keyed by an HMAC of the normalised address, so what was
// typed into the email field (sometimes a password) is never stored, and
// input that is not a valid address is counted per IP only.

// Scopes of the per-account counters.
const (
	scopeAnonymous = "anon"
	scopeDevice    = "device:"
	scopeSession   = "session:"
	// scopeEmailChange counts email-change attempts (see changeEmail).
	scopeEmailChange = "email_change"
)

// ipLimiter counts failed sign-ins (and sign-ups) per client address in a
// sliding window, in memory. It is per instance and forgets on restart; the
// per-account limits, which are the ones that protect a password, live in
// the database.
type ipLimiter struct {
	limit  int
	window time.Duration
	max    int // addresses tracked at most
	mu     sync.Mutex
	hits   map[string]*list.Element // of *ipHits
	order  *list.List               // least recently hit first
}

type ipHits struct {
	key   string
	times []time.Time
}

// maxTrackedIPs bounds the limiter's memory (about 100 B an address). Past
// it, the address hit least recently is forgotten first: an attacker with
// that many addresses is not stopped by a per-address limit anyway, and the
// per-account limits still hold.
const maxTrackedIPs = 100_000

func newIPLimiter(limit int, window time.Duration) *ipLimiter {
	return &ipLimiter{limit: limit, window: window, max: maxTrackedIPs, hits: map[string]*list.Element{}, order: list.New()}
}

// ipKey is what the limiter counts for addr: IPv4 (an IPv4-mapped address
// is its IPv4 address), or the /64 an IPv6 address is in, since one host or
// network usually holds a whole /64.
func ipKey(addr netip.Addr) string {
	addr = addr.Unmap()
	if addr.Is6() {
		p, _ := addr.Prefix(64)
		return p.String()
	}
	return addr.String()
}

// retryAfter returns how long key must wait, or 0 if it may try now.
func (l *ipLimiter) retryAfter(key string, now time.Time) time.Duration {
	if l.limit <= 0 {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	hits := l.recent(key, now)
	if len(hits) < l.limit {
		return 0
	}
	return hits[len(hits)-l.limit].Add(l.window).Sub(now)
}

// take counts one attempt for key if key may try now (0), else says how
// long it must wait and counts nothing: the check and the count under one
// lock, so concurrent attempts can never all pass the check.
func (l *ipLimiter) take(key string, now time.Time) time.Duration {
	if l.limit <= 0 {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if hits := l.recent(key, now); len(hits) >= l.limit {
		return hits[len(hits)-l.limit].Add(l.window).Sub(now)
	}
	l.addLocked(key, now)
	return 0
}

// giveBack forgets one attempt key took at now (take's argument): it
// turned out right.
func (l *ipLimiter) giveBack(key string, at time.Time) {
	if l.limit <= 0 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	el, ok := l.hits[key]
	if !ok {
		return
	}
	h := el.Value.(*ipHits)
	for i := len(h.times) - 1; i >= 0; i-- {
		if h.times[i].Equal(at) {
			h.times = append(h.times[:i:i], h.times[i+1:]...)
			return
		}
	}
}

// add records one failure for key.
func (l *ipLimiter) add(key string, now time.Time) {
	if l.limit <= 0 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.addLocked(key, now)
}

// addLocked is add with l.mu held.
func (l *ipLimiter) addLocked(key string, now time.Time) {
	hits := append(l.recent(key, now), now)
	if el, ok := l.hits[key]; ok {
		el.Value.(*ipHits).times = hits
		l.order.MoveToBack(el)
		return
	}
	for len(l.hits) >= l.max {
		oldest := l.order.Front()
		l.order.Remove(oldest)
		delete(l.hits, oldest.Value.(*ipHits).key)
	}
	l.hits[key] = l.order.PushBack(&ipHits{key: key, times: hits})
}

// recent drops key's hits that left the window and returns the rest.
func (l *ipLimiter) recent(key string, now time.Time) []time.Time {
	el, ok := l.hits[key]
	if !ok {
		return nil
	}
	h := el.Value.(*ipHits)
	i := 0
	for i < len(h.times) && now.Sub(h.times[i]) >= l.window {
		i++
	}
	if i == len(h.times) {
		l.order.Remove(el)
		delete(l.hits, key)
		return nil
	}
	h.times = h.times[i:]
	return h.times
}

// tracked is how many addresses the limiter holds (for tests).
func (l *ipLimiter) tracked() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.hits)
}

// throttled is the answer to a sign-in that must wait: 429 with Retry-After
// and a message that says nothing about why (account or address).
type throttled struct{ wait time.Duration }

func (t throttled) message() string {
	mins := int((t.wait + time.Minute - 1) / time.Minute)
	return fmt.Sprintf("Too many attempts. Please wait %s and try again.", plural(max(mins, 1), "minute"))
}

func (t throttled) setHeader(c echo.Context) {
	c.Response().Header().Set("Retry-After", strconv.Itoa(int((t.wait+time.Second-1)/time.Second)))
}

// accountKey is the per-account counters' key for a normalised, valid
// email: an HMAC, so the table never holds what was typed.
func (a *app) accountKey(email string) string {
	m := hmac.New(sha256.New, a.keys.accounts)
	m.Write([]byte(email))
	return hex.EncodeToString(m.Sum(nil)[:16])
}

// clientKey is the per-address limiter's key for the request.
func (a *app) clientKey(c echo.Context) string { return ipKey(a.clientIP(c.Request())) }

// attempt is one password or code attempt, counted before it is checked
// (see reserve) and forgotten again if it was right (release).
type attempt struct {
	account, scope string
	id             int64 // 0: nothing was counted (no limit, or no account)
}

// reserve counts one attempt for account in scope before it is checked, if
// fewer than limit were made in the last window and every group limit has
// room too. The count and the record are one store transaction, serialised
// per account: attempts racing each other (150 wrong passwords sent at
// once) can never all pass a check that only looked before any of them
// was recorded. It runs before any hashing, so a flood costs one small
// transaction per attempt, not an argon2 hash. wait > 0: refused, and full
// is the index of the limit that was reached (0: the scope's own, then the
// group limits in order).
func (a *app) reserve(c echo.Context, account, scope string, limit int, window time.Duration, group ...db.AttemptLimit) (at attempt, wait time.Duration, full int, err error) {
	if limit <= 0 || account == "" {
		return attempt{}, 0, 0, nil
	}
	now := a.now()
	r, err := a.store.ReserveLoginAttempt(c.Request().Context(), db.LoginAttempt{
		Account: account, Scope: scope, IP: a.clientKey(c), At: now,
		// The window is half-open: an attempt exactly window ago has aged
		// out (times are stored in whole seconds).
		Since:  now.Add(-window + time.Second),
		Limits: append([]db.AttemptLimit{{Scope: scope, Max: limit}}, group...),
	})
	if err != nil {
		return attempt{}, 0, 0, err
	}
	if r.ID == 0 {
		return attempt{}, max(r.First.Add(window).Sub(now), time.Second), r.Full, nil
	}
	return attempt{account: account, scope: scope, id: r.ID}, 0, 0, nil
}

// deviceScopesFactor caps the device scopes of one account together: all
// of them at most this many times the per-account limit per window. A
// device cookie is given only to a browser that signed in, so an intruder
// who once knew the password could otherwise collect one per sign-in and
// guess 10 more times per cookie after the owner changed the password
// (the epoch in the cookie's MAC kills those; the cap bounds what cookies
// of the current epoch can add, whoever holds them).
const deviceScopesFactor = 3

// reserveGuess reserves a password or code guess for account by a browser
// in scope (scopeAnonymous, a device scope, a session scope), counted as
// prefix+scope (prefix "" for passwords, scopeSecondFactor for codes) under
// the per-account limit.
//
// Past the device scopes' cap a device counts as anonymous: a device
// cookie then gives no more than having none, never less, so the cap is
// no lockout of its own. To keep the owner's browsers from signing in
// through it, someone would have to fill the anonymous count AND hold
// deviceScopesFactor valid device cookies of the current epoch, that is,
// have signed in to the account that often since its last reset: someone
// who knows the password or reads the mailbox, whom only a reset (which
// voids their cookies) stops anyway.
func (a *app) reserveGuess(c echo.Context, account, prefix, scope string) (attempt, time.Duration, error) {
	return a.reserveScoped(c, account, prefix, scope, a.cfg.AccountFailureLimit, a.cfg.FailureWindow)
}

// reserveScoped is reserveGuess with another limit and window.
func (a *app) reserveScoped(c echo.Context, account, prefix, scope string, limit int, window time.Duration) (attempt, time.Duration, error) {
	if strings.HasPrefix(scope, scopeDevice) {
		at, wait, full, err := a.reserve(c, account, prefix+scope, limit, window,
			db.AttemptLimit{Scope: prefix + scopeDevice, Prefix: true, Max: deviceScopesFactor * limit})
		if err != nil || wait == 0 || full == 0 {
			return at, wait, err
		}
		a.log.Info("device scopes full: counted as anonymous", "scope", prefix+scopeDevice, "ip", c.RealIP())
		scope = scopeAnonymous
	}
	at, wait, _, err := a.reserve(c, account, prefix+scope, limit, window)
	return at, wait, err
}

// release forgets attempt at: it was right, so it is no failure. A
// release that fails leaves one attempt counted too many: logged, not an
// error (the action it was for went through).
func (a *app) release(c echo.Context, at attempt) {
	if at.id == 0 {
		return
	}
	if err := a.store.ReleaseLoginAttempt(c.Request().Context(), at.id); err != nil {
		a.log.Error("release login attempt", "err", err)
	}
}

// The device cookie: proof that this browser signed in to an account
// successfully since the account's sessions were last reset. Its value is
// "<nonce>.<mac>", mac = HMAC(key, email|user id|epoch|nonce): it names no
// account (only someone who types the right address can match it), a copy
// is useful only with that address, and it dies with every reset of the
// account's sign-ins (password change or reset, "sign out everywhere", "log
// out all other sessions", disabling, taking the account back), which move
// the user's epoch: a browser that signed in before a reset is anonymous
// after it, so cookies an intruder collected while they knew the password
// are worth nothing once the owner resets it. The browser that made the
// reset gets a fresh one. It lasts deviceCookieLifetime and is renewed at
// each successful sign-in.
const deviceCookieLifetime = 180 * 24 * time.Hour

func (a *app) deviceMAC(user db.User, nonce string) string {
	m := hmac.New(sha256.New, a.keys.devices)
	fmt.Fprintf(m, "%s|%d|%d|%s", user.Email, user.ID, user.Epoch, nonce)
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// signInScope is the counter an attempt for user's account is held to: the
// browser's device scope if its device cookie is valid for user at the
// user's current epoch, else the anonymous one (always, when no account
// uses the address: user is nil).
func (a *app) signInScope(c echo.Context, user *db.User) string {
	if user == nil {
		return scopeAnonymous
	}
	ck, err := c.Request().Cookie(a.cookieName(c.Request(), deviceCookie))
	if err != nil {
		return scopeAnonymous
	}
	nonce, mac, ok := strings.Cut(ck.Value, ".")
	if !ok || len(nonce) != 22 || !hmac.Equal([]byte(mac), []byte(a.deviceMAC(*user, nonce))) {
		return scopeAnonymous
	}
	return scopeDevice + nonce
}

// setDeviceCookie gives the browser a fresh device cookie for user, at the
// epoch user carries (which must be the current one: read after the write
// that last moved it).
func (a *app) setDeviceCookie(c echo.Context, user db.User) {
	b := make([]byte, 16)
	rand.Read(b)
	nonce := base64.RawURLEncoding.EncodeToString(b)
	r := c.Request()
	c.SetCookie(&http.Cookie{
		Name: a.cookieName(r, deviceCookie), Value: nonce + "." + a.deviceMAC(user, nonce), Path: "/",
		MaxAge: int(deviceCookieLifetime / time.Second), HttpOnly: true, Secure: a.isHTTPS(r), SameSite: http.SameSiteLaxMode,
	})
}

// renewDeviceCookie gives this browser a device cookie for the account's
// new epoch after it reset the account's sign-ins itself (which voided its
// old cookie with every other): the owner's browser that made the reset
// stays apart from strangers' guesses.
func (a *app) renewDeviceCookie(c echo.Context, userID int64) {
	user, err := a.store.UserByID(c.Request().Context(), userID)
	if err != nil {
		a.log.Error("renew device cookie", "user", userID, "err", err)
		return
	}
	a.setDeviceCookie(c, user)
}
