// Package seed fills a database with many users and real sessions, for load
// tests and benchmarks (`doorman seed`). Every session is made with package
// sessiontoken exactly as a sign-in makes one; the cookie values of some of
// them are written out so a load generator can use them.
package seed

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"time"

	"doorman/db"
	"doorman/device"
	"doorman/sessiontoken"
)

// Options says what to seed.
type Options struct {
	Users           int
	SessionsPerUser int
	// CookieUsers is how many users (the first ones) have the cookies of
	// all their sessions written out.
	CookieUsers int
	// PasswordHash is every seeded user's password hash. Hashing once and
	// sharing it keeps seeding fast; argon2id still runs at every sign-in.
	PasswordHash string
	// ActiveWithin spreads last_seen_at evenly over this window before Now,
	// as it is in steady state when every session is in use (each is
	// written at most once a minute). Zero: all at Now.
	ActiveWithin time.Duration
	// IdleTimeout and AbsoluteLifetime set the expiries, as at sign-in.
	IdleTimeout, AbsoluteLifetime time.Duration
	Now                           time.Time
	// Clock measures how long seeding has taken so far (see Run); nil
	// treats seeding as instant.
	Clock func() time.Time
}

// Password is every seeded user's password.
const Password = "seed-password"

// Email is the address of the seeded user number i (from 0).
func Email(i int) string { return fmt.Sprintf("user%d@seed.test", i) }

// samples are the devices and places seeded sessions cycle through. The
// addresses are documentation-only ones (RFC 5737, RFC 3849).
var samples = []struct{ ua, ip, location, short string }{
	{"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36", "192.0.2.44", "Berlin, Germany", "Berlin"},
	{"Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1", "198.51.100.7", "Lisbon, Portugal", "Lisbon"},
	{"Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0", "203.0.113.90", "Toronto, Ontario, Canada", "Toronto"},
	{"Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1", "2001:db8:85a3::8a2e:370:7334", "Tokyo, Japan", "Tokyo"},
	{"Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15", "192.0.2.201", "Austin, Texas, United States", "Austin"},
}

// Store is what Run uses of the store (db.Store has it): a bulk insert,
// which bypasses the session limit and the events the server relies on.
type Store interface {
	BeginBulk(ctx context.Context) (db.Bulk, error)
}

// Run seeds the users and sessions in large transactions and writes one line
// per session of the first CookieUsers users to cookies:
// "<email> <session public id> <cookie value>". It returns how many sessions
// it made.
func Run(ctx context.Context, store Store, o Options, cookies io.Writer) (int, error) {
	labels := make([]device.Info, len(samples))
	for i, s := range samples {
		labels[i] = device.Parse(s.ua)
	}
	if cookies == nil {
		cookies = io.Discard
	}
	out := bufio.NewWriter(cookies)
	bulk, err := store.BeginBulk(ctx)
	if err != nil {
		return 0, err
	}
	spread := int64(o.ActiveWithin / time.Second)
	n := 0
	clock := o.Clock
	if clock == nil {
		clock = func() time.Time { return o.Now }
	}
	start := clock()
	// The cookie users go last, their activity spread before Now plus the
	// time seeding took: a load test starting right after finds their
	// sessions in steady state however long a large seed ran.
	order := func(k int) int { return (k + o.CookieUsers) % max(o.Users, 1) }
	for k := range o.Users {
		u, now := order(k), o.Now
		if u < o.CookieUsers {
			now = now.Add(clock().Sub(start))
		}
		uid, err := bulk.AddUser(ctx, Email(u), o.PasswordHash, now)
		if err != nil {
			return n, err
		}
		for j := range o.SessionsPerUser {
			tok := sessiontoken.New()
			smp, dev := samples[n%len(samples)], labels[n%len(samples)]
			seen := now
			if spread > 0 {
				// Even over the window both across users and across
				// any one session of each user.
				seen = seen.Add(-time.Duration(int64(u+7*j)%spread) * time.Second)
			}
			// Signed in up to half the absolute lifetime ago: alive.
			created := seen.Add(-time.Duration(n%30) * (o.AbsoluteLifetime / 60))
			if err := bulk.AddSession(ctx, db.Session{
				ID: tok.ID, SecretHash: tok.Hash, UserID: uid,
				CreatedAt: created, LastSeenAt: seen,
				IdleExpiresAt: seen.Add(o.IdleTimeout), AbsoluteExpiresAt: created.Add(o.AbsoluteLifetime),
				IP: smp.ip, UserAgent: smp.ua, DeviceLabel: dev.Label, DeviceKind: string(dev.Kind),
				Location: smp.location, LocationShort: smp.short, AuthMethod: "seed",
			}); err != nil {
				return n, err
			}
			n++
			if u < o.CookieUsers {
				fmt.Fprintf(out, "%s %s %s\n", Email(u), tok.ID, tok.CookieValue)
			}
		}
	}
	if err := bulk.Commit(ctx); err != nil {
		return n, err
	}
	if err := out.Flush(); err != nil {
		return n, fmt.Errorf("seed: write cookies: %w", err)
	}
	return n, nil
}
