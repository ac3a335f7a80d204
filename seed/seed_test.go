package seed_test

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"doorman/db"
	"doorman/seed"
	"doorman/sessiontoken"
	"doorman/storage"
)

// TestRun checks that seeded cookies are real, live sessions of the right
// users.
func TestRun(t *testing.T) {
	ctx := context.Background()
	store, err := storage.Open(ctx, filepath.Join(t.TempDir(), "seed.db"), db.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	now := time.Now()
	var cookies bytes.Buffer
	n, err := seed.Run(ctx, store, seed.Options{
		Users: 3, SessionsPerUser: 4, CookieUsers: 2, PasswordHash: "x",
		ActiveWithin: time.Minute, IdleTimeout: time.Hour, AbsoluteLifetime: 2 * time.Hour, Now: now,
	}, &cookies)
	if err != nil || n != 12 {
		t.Fatalf("Run = %d, %v; want 12 sessions", n, err)
	}
	lines := strings.Split(strings.TrimSpace(cookies.String()), "\n")
	if len(lines) != 8 {
		t.Fatalf("%d cookie lines, want 8 (2 users × 4)", len(lines))
	}
	for _, line := range lines {
		f := strings.Fields(line)
		id, secret, ok := sessiontoken.Parse(f[2])
		if len(f) != 3 || !ok || id != f[1] {
			t.Fatalf("bad cookie line %q", line)
		}
		sess, user, err := store.SessionWithUser(ctx, id)
		if err != nil || user.Email != f[0] || !sessiontoken.Matches(secret, sess.SecretHash) || !sess.Alive(now) {
			t.Fatalf("cookie %q: session %+v, user %+v, err %v", f[1], sess, user, err)
		}
		if list, _ := store.ListSessions(ctx, user.ID, now); len(list) != 4 {
			t.Fatalf("user %s has %d sessions, want 4", user.Email, len(list))
		}
	}
}
