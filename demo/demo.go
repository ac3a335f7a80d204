// Package demo seeds a clearly labelled demo account with sample sessions, so
// a newcomer running `go run . -demo` sees a full Security page at once.
package demo

import (
	"context"
	"errors"
	"fmt"
	"time"

	"doorman/db"
	"doorman/device"
	"doorman/password"
	"doorman/sessiontoken"
)

// The demo account's credentials, shown on the sign-in page in demo mode.
const (
	Email    = "demo@doorman.test"
	Password = "doorman-demo"
	// Method marks the sample sessions, so a restart replaces them.
	Method = "demo"
)

// The sample sessions use documentation-only addresses (RFC 5737 and RFC
// 3849), which belong to no one, with hand-written locations.
var samples = []struct {
	ua, ip, location, short string
	ago, age                time.Duration
}{
	{"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
		"192.0.2.44", "Berlin, Germany", "Berlin", 4 * time.Minute, 9 * 24 * time.Hour},
	{"Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
		"198.51.100.7", "Lisbon, Portugal", "Lisbon", 2 * time.Hour, 30 * 24 * time.Hour},
	{"Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
		"203.0.113.90", "Toronto, Ontario, Canada", "Toronto", 26 * time.Hour, 40 * 24 * time.Hour},
	{"Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
		"2001:db8:85a3::8a2e:370:7334", "Tokyo, Japan", "Tokyo", 6 * 24 * time.Hour, 60 * 24 * time.Hour},
	{"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
		"192.0.2.201", "Austin, Texas, United States", "Austin", 19 * 24 * time.Hour, 70 * 24 * time.Hour},
}

// Store is what Seed uses of the store (db.Store has it).
type Store interface {
	UserByEmail(ctx context.Context, email string) (db.User, error)
	CreateUser(ctx context.Context, email, passwordHash string, isDemo bool, now time.Time, mail ...db.Mail) (db.User, error)
	DeleteSessionsByMethod(ctx context.Context, userID int64, method string, now time.Time) error
	CreateSession(ctx context.Context, s db.Session, maxPerUser int, epoch int64, mail ...db.Mail) (evicted []db.Session, err error)
}

// Seed creates the demo user if needed and replaces its sample sessions.
// Sessions a person made by signing in as the demo user are left alone.
func Seed(ctx context.Context, store Store, hasher *password.Hasher, idle, absolute time.Duration, now time.Time) error {
	user, err := store.UserByEmail(ctx, Email)
	if errors.Is(err, db.ErrNotFound) {
		hash, herr := hasher.Hash(ctx, Password)
		if herr != nil {
			return fmt.Errorf("demo: %w", herr)
		}
		user, err = store.CreateUser(ctx, Email, hash, true, now)
	}
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	if err := store.DeleteSessionsByMethod(ctx, user.ID, Method, now); err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	for _, s := range samples {
		// A secret nobody keeps: these sessions can be listed and ended,
		// never used.
		tok := sessiontoken.New()
		dev := device.Parse(s.ua)
		seen, created := now.Add(-s.ago), now.Add(-s.age)
		_, err := store.CreateSession(ctx, db.Session{
			ID: tok.ID, SecretHash: tok.Hash, UserID: user.ID,
			CreatedAt: created, LastSeenAt: seen,
			IdleExpiresAt: seen.Add(idle), AbsoluteExpiresAt: created.Add(absolute),
			IP: s.ip, UserAgent: s.ua, DeviceLabel: dev.Label, DeviceKind: string(dev.Kind),
			Location: s.location, LocationShort: s.short, AuthMethod: Method,
		}, 0, user.Epoch)
		if err != nil {
			return fmt.Errorf("demo: %w", err)
		}
	}
	return nil
}
