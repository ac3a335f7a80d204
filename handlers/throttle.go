package handlers

import (
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
)

// ipLimiter counts failed sign-ins (and sign-ups) per client IP in a sliding
// window, in memory. It is per instance and forgets on restart; the
// per-account limit, which is the one that protects a password, lives in the
// database.
type ipLimiter struct {
	limit  int
	window time.Duration
	mu     sync.Mutex
	hits   map[string][]time.Time
}

// maxTrackedIPs bounds the limiter's memory: past it, the oldest entries are
// dropped wholesale (an attacker with that many addresses is not stopped by
// a per-IP limit anyway; the per-account limit still holds).
const maxTrackedIPs = 100_000

func newIPLimiter(limit int, window time.Duration) *ipLimiter {
	return &ipLimiter{limit: limit, window: window, hits: map[string][]time.Time{}}
}

// retryAfter returns how long ip must wait, or 0 if it may try now.
func (l *ipLimiter) retryAfter(ip string, now time.Time) time.Duration {
	if l.limit <= 0 {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	hits := l.recent(ip, now)
	if len(hits) < l.limit {
		return 0
	}
	return hits[len(hits)-l.limit].Add(l.window).Sub(now)
}

// add records one failure for ip.
func (l *ipLimiter) add(ip string, now time.Time) {
	if l.limit <= 0 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.hits) >= maxTrackedIPs {
		for k, v := range l.hits {
			if len(v) == 0 || now.Sub(v[len(v)-1]) >= l.window {
				delete(l.hits, k)
			}
		}
		if len(l.hits) >= maxTrackedIPs {
			clear(l.hits)
		}
	}
	l.hits[ip] = append(l.recent(ip, now), now)
}

// recent drops ip's hits that left the window and returns the rest.
func (l *ipLimiter) recent(ip string, now time.Time) []time.Time {
	hits := l.hits[ip]
	i := 0
	for i < len(hits) && now.Sub(hits[i]) >= l.window {
		i++
	}
	if i == len(hits) {
		delete(l.hits, ip)
		return nil
	}
	hits = hits[i:]
	l.hits[ip] = hits
	return hits
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

// checkThrottle returns how long a password attempt for email from ip must
// wait (0: go ahead). It runs before any hashing, so a flood costs one
// indexed read per attempt, not an argon2 hash.
func (a *app) checkThrottle(c echo.Context, email string) (time.Duration, error) {
	now := a.now()
	wait := a.ipLimit.retryAfter(c.RealIP(), now)
	if a.cfg.AccountFailureLimit > 0 && email != "" {
		n, first, err := a.store.LoginFailuresSince(c.Request().Context(), email, now.Add(-a.cfg.FailureWindow))
		if err != nil {
			return 0, err
		}
		if n >= a.cfg.AccountFailureLimit {
			wait = max(wait, first.Add(a.cfg.FailureWindow).Sub(now))
		}
	}
	return max(wait, 0), nil
}

// recordFailure counts a wrong password for email against both limits.
func (a *app) recordFailure(c echo.Context, email string) {
	now := a.now()
	a.ipLimit.add(c.RealIP(), now)
	if email == "" {
		return
	}
	if err := a.store.RecordLoginFailure(c.Request().Context(), email, c.RealIP(), now); err != nil {
		a.log.Error("record login failure", "err", err)
	}
}
