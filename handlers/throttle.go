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
)

// Throttling, and why it cannot be turned against the owner.
//
// Password guesses are limited three ways, each counted apart, so that no
// one can lock the owner out by failing on purpose:
//   - per account and scope, in the database (survives restarts, holds
//     across instances). The scope says who was guessing: "anon" for any
//     browser without a device cookie for that account; "device:<nonce>" for
//     a browser that once signed in to it successfully and carries a signed
//     device cookie (OWASP's "device cookie" pattern); "session:<id>" for a
//     signed-in session re-entering its password. A flood of wrong
//     passwords from elsewhere fills only the anonymous count: the owner's
//     browsers keep their own counts and sign in as usual, and re-entering
//     the password in a live session is never blocked by anyone else.
//   - per client address, in memory (per instance): an IPv6 /64 counts as
//     one address, IPv4-mapped IPv6 as the IPv4 address.
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

// add records one failure for key.
func (l *ipLimiter) add(key string, now time.Time) {
	if l.limit <= 0 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
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

// accountWait returns how long a password attempt for account in scope must
// wait (0: go ahead). It runs before any hashing, so a flood costs one
// indexed read per attempt, not an argon2 hash.
func (a *app) accountWait(c echo.Context, account, scope string) (time.Duration, error) {
	return a.attemptWait(c, account, scope, a.cfg.AccountFailureLimit, a.cfg.FailureWindow)
}

// attemptWait is how long account must wait in scope when at most limit
// attempts are allowed per window.
func (a *app) attemptWait(c echo.Context, account, scope string, limit int, window time.Duration) (time.Duration, error) {
	if limit <= 0 || account == "" {
		return 0, nil
	}
	now := a.now()
	n, first, err := a.store.LoginFailuresSince(c.Request().Context(), account, scope, now.Add(-window))
	if err != nil {
		return 0, err
	}
	if n < limit {
		return 0, nil
	}
	// The window is half-open: an attempt exactly window ago has aged out.
	return max(first.Add(window).Sub(now), 0), nil
}

// recordAccountFailure counts one wrong password for account in scope.
func (a *app) recordAccountFailure(c echo.Context, account, scope string) {
	if account == "" {
		return
	}
	if err := a.store.RecordLoginFailure(c.Request().Context(), account, scope, a.clientKey(c), a.now()); err != nil {
		a.log.Error("record login failure", "err", err)
	}
}

// The device cookie: proof that this browser once signed in to an account
// successfully. Its value is "<nonce>.<mac>", mac = HMAC(key, email|nonce):
// it names no account (only someone who types the right address can match
// it), and a copy is useful only with that address. It lasts
// deviceCookieLifetime and is renewed at each successful sign-in.
const deviceCookieLifetime = 180 * 24 * time.Hour

func (a *app) deviceCookieName(r *http.Request) string {
	if a.isHTTPS(r) {
		return "__Host-doorman_device"
	}
	return "doorman_device"
}

func (a *app) deviceMAC(email, nonce string) string {
	m := hmac.New(sha256.New, a.keys.devices)
	m.Write([]byte(email + "|" + nonce))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// signInScope is the counter a sign-in attempt for email is held to: the
// browser's device scope if its device cookie is valid for email, else the
// anonymous one.
func (a *app) signInScope(c echo.Context, email string) string {
	ck, err := c.Request().Cookie(a.deviceCookieName(c.Request()))
	if err != nil {
		return scopeAnonymous
	}
	nonce, mac, ok := strings.Cut(ck.Value, ".")
	if !ok || len(nonce) != 22 || !hmac.Equal([]byte(mac), []byte(a.deviceMAC(email, nonce))) {
		return scopeAnonymous
	}
	return scopeDevice + nonce
}

// setDeviceCookie gives the browser a fresh device cookie for email.
func (a *app) setDeviceCookie(c echo.Context, email string) {
	b := make([]byte, 16)
	rand.Read(b)
	nonce := base64.RawURLEncoding.EncodeToString(b)
	r := c.Request()
	c.SetCookie(&http.Cookie{
		Name: a.deviceCookieName(r), Value: nonce + "." + a.deviceMAC(email, nonce), Path: "/",
		MaxAge: int(deviceCookieLifetime / time.Second), HttpOnly: true, Secure: a.isHTTPS(r), SameSite: http.SameSiteLaxMode,
	})
}
