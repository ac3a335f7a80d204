package db

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"
)

func openTest(t *testing.T) *Store {
	t.Helper()
	s, err := Open(context.Background(), filepath.Join(t.TempDir(), "test.db"))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// t0 is the tests' present: the real one (whole seconds, as stored), so no
// expiry in a test can depend on the date it runs.
var t0 = time.Now().UTC().Truncate(time.Second)

func newSession(id string, userID int64, now time.Time) Session {
	return Session{
		ID: id, SecretHash: []byte("hash-" + id), UserID: userID,
		CreatedAt: now, LastSeenAt: now,
		IdleExpiresAt: now.Add(28 * 24 * time.Hour), AbsoluteExpiresAt: now.Add(90 * 24 * time.Hour),
		IP: "81.2.69.160", UserAgent: "ua", DeviceLabel: "Chrome on macOS", DeviceKind: "desktop",
		Location: "London, United Kingdom", LocationShort: "London", AuthMethod: "password",
	}
}

func TestMigrateFromEmptyAndAgain(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.db")
	for i := range 2 { // the second Open must find nothing to do
		s, err := Open(context.Background(), path)
		if err != nil {
			t.Fatalf("Open #%d: %v", i, err)
		}
		var n int
		if err := s.read.QueryRow(`SELECT COUNT(*) FROM schema_migrations`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		files, _ := migrations.ReadDir("migrations")
		if n != len(files) {
			t.Fatalf("schema_migrations has %d rows, want %d", n, len(files))
		}
		for _, table := range []string{"users", "sessions", "app_secrets", "login_failures"} {
			if _, err := s.read.Exec(`SELECT COUNT(*) FROM ` + table); err != nil {
				t.Errorf("table %s: %v", table, err)
			}
		}
		s.Close()
	}
}

func TestUsers(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	u, err := s.CreateUser(ctx, "a@example.com", "hash", false, t0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateUser(ctx, "a@example.com", "hash2", false, t0); !errors.Is(err, ErrEmailTaken) {
		t.Fatalf("duplicate email: got %v, want ErrEmailTaken", err)
	}
	got, err := s.UserByEmail(ctx, "a@example.com")
	if err != nil || got.ID != u.ID || got.PasswordHash != "hash" || !got.CreatedAt.Equal(t0) {
		t.Fatalf("UserByEmail = %+v, %v", got, err)
	}
	if _, err := s.UserByEmail(ctx, "nobody@example.com"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown email: %v", err)
	}
	if got, err := s.UserByID(ctx, u.ID); err != nil || got.Email != "a@example.com" {
		t.Fatalf("UserByID = %+v, %v", got, err)
	}
}

func TestSessionLifecycle(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	a, _ := s.CreateUser(ctx, "a@example.com", "h", false, t0)
	b, _ := s.CreateUser(ctx, "b@example.com", "h", false, t0)
	for i, id := range []string{"a1", "a2", "a3"} {
		if _, err := s.CreateSession(ctx, newSession(id, a.ID, t0.Add(time.Duration(i)*time.Minute)), 0); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.CreateSession(ctx, newSession("b1", b.ID, t0), 0); err != nil {
		t.Fatal(err)
	}
	now := t0.Add(time.Hour)

	list, err := s.ListSessions(ctx, a.ID, now)
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(list); got != "a3,a2,a1" {
		t.Fatalf("list = %s, want most recent first a3,a2,a1", got)
	}

	sess, u, err := s.SessionWithUser(ctx, "a1")
	if err != nil || u.Email != "a@example.com" || !bytes.Equal(sess.SecretHash, []byte("hash-a1")) || !sess.Alive(now) {
		t.Fatalf("SessionWithUser = %+v %+v %v", sess, u, err)
	}

	// Touch moves last activity and location, and only for a live row.
	if err := s.TouchSession(ctx, "a1", Touch{LastSeenAt: now, IdleExpiresAt: now.Add(28 * 24 * time.Hour), IP: "10.0.0.1", Location: "Local network", LocationShort: "Local network"}); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.UserSession(ctx, a.ID, "a1", now); !got.LastSeenAt.Equal(now) || got.IP != "10.0.0.1" || got.Location != "Local network" {
		t.Fatalf("after touch: %+v", got)
	}

	// Revoke one.
	gone, err := s.RevokeSession(ctx, a.ID, "a2", ReasonRevoked, "a1", now)
	if err != nil || gone.ID != "a2" {
		t.Fatalf("RevokeSession = %+v, %v", gone, err)
	}
	if _, err := s.RevokeSession(ctx, a.ID, "a2", ReasonRevoked, "a1", now); !errors.Is(err, ErrNotFound) {
		t.Fatalf("revoking twice: %v, want ErrNotFound", err)
	}
	if sess, _, _ := s.SessionWithUser(ctx, "a2"); sess.Alive(now) || sess.RevokedReason != ReasonRevoked || sess.RevokedBy != "a1" {
		t.Fatalf("revoked row = %+v", sess)
	}
	if err := s.TouchSession(ctx, "a2", Touch{LastSeenAt: now, IdleExpiresAt: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if sess, _, _ := s.SessionWithUser(ctx, "a2"); sess.Alive(now) {
		t.Fatal("a touch revived a revoked session")
	}
	if _, err := s.UserSession(ctx, a.ID, "a2", now); !errors.Is(err, ErrNotFound) {
		t.Fatalf("revoked session details: %v", err)
	}

	// Revoke others keeps the current one.
	if _, err := s.CreateSession(ctx, newSession("a4", a.ID, now), 0); err != nil {
		t.Fatal(err)
	}
	n, err := s.RevokeOtherSessions(ctx, a.ID, "a1", ReasonRevokedOthers, now)
	if err != nil || n != 2 {
		t.Fatalf("RevokeOtherSessions = %d, %v; want 2 (a3, a4)", n, err)
	}
	if list, _ := s.ListSessions(ctx, a.ID, now); ids(list) != "a1" {
		t.Fatalf("after revoke-others: %s", ids(list))
	}

	// Revoke all.
	n, err = s.RevokeAllSessions(ctx, a.ID, ReasonRevokedAll, "a1", now)
	if err != nil || n != 1 {
		t.Fatalf("RevokeAllSessions = %d, %v", n, err)
	}
	if list, _ := s.ListSessions(ctx, a.ID, now); len(list) != 0 {
		t.Fatalf("after revoke-all: %s", ids(list))
	}
	// User B was never touched.
	if list, _ := s.ListSessions(ctx, b.ID, now); ids(list) != "b1" {
		t.Fatalf("user B's sessions changed: %s", ids(list))
	}
}

func TestExpiry(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	a, _ := s.CreateUser(ctx, "a@example.com", "h", false, t0)
	idle := newSession("idle", a.ID, t0)
	idle.IdleExpiresAt = t0.Add(time.Hour)
	abs := newSession("abs", a.ID, t0)
	abs.AbsoluteExpiresAt = t0.Add(2 * time.Hour)
	for _, sess := range []Session{idle, abs} {
		if _, err := s.CreateSession(ctx, sess, 0); err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct {
		at   time.Duration
		want string
	}{
		{30 * time.Minute, "abs,idle"},
		{time.Hour, "abs"}, // idle expiry is exclusive: at the instant it is over
		{90 * time.Minute, "abs"},
		{2 * time.Hour, ""},
	}
	for _, c := range cases {
		list, err := s.ListSessions(ctx, a.ID, t0.Add(c.at))
		if err != nil {
			t.Fatal(err)
		}
		if got := ids(list); got != c.want {
			t.Errorf("at +%v: %q, want %q", c.at, got, c.want)
		}
	}
	if _, err := s.RevokeSession(ctx, a.ID, "idle", ReasonRevoked, "", t0.Add(time.Hour)); !errors.Is(err, ErrNotFound) {
		t.Errorf("revoking an expired session: %v, want ErrNotFound", err)
	}
	// Prune removes only rows that ended before the cutoff.
	n, err := s.PruneSessions(ctx, t0.Add(90*time.Minute))
	if err != nil || n != 1 {
		t.Fatalf("PruneSessions = %d, %v; want 1", n, err)
	}
	if _, _, err := s.SessionWithUser(ctx, "idle"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("pruned row still there: %v", err)
	}
}

// TestCrossUser checks that user B can never read or end user A's sessions
// through any user-scoped method.
func TestCrossUser(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	a, _ := s.CreateUser(ctx, "a@example.com", "h", false, t0)
	b, _ := s.CreateUser(ctx, "b@example.com", "h", false, t0)
	for _, id := range []string{"a1", "a2"} {
		if _, err := s.CreateSession(ctx, newSession(id, a.ID, t0), 0); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.CreateSession(ctx, newSession("b1", b.ID, t0), 0); err != nil {
		t.Fatal(err)
	}
	now := t0.Add(time.Minute)
	if _, err := s.UserSession(ctx, b.ID, "a1", now); !errors.Is(err, ErrNotFound) {
		t.Errorf("B read A's session: %v", err)
	}
	if _, err := s.RevokeSession(ctx, b.ID, "a1", ReasonRevoked, "b1", now); !errors.Is(err, ErrNotFound) {
		t.Errorf("B revoked A's session: %v", err)
	}
	if n, err := s.RevokeOtherSessions(ctx, b.ID, "a1", ReasonRevokedOthers, now); err != nil || n != 1 {
		t.Errorf("B's revoke-others = %d, %v; want 1 (only b1)", n, err)
	}
	if list, _ := s.ListSessions(ctx, a.ID, now); ids(list) != "a1,a2" && ids(list) != "a2,a1" {
		t.Errorf("A's sessions changed: %s", ids(list))
	}
	if n, _ := s.RevokeAllSessions(ctx, b.ID, ReasonRevokedAll, "", now); n != 0 {
		t.Errorf("B's revoke-all ended %d rows, want 0", n)
	}
	if list, _ := s.ListSessions(ctx, a.ID, now); len(list) != 2 {
		t.Errorf("A's sessions changed: %s", ids(list))
	}
}

func TestAppSecretIsStable(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	k1, err := s.AppSecret(ctx, "flash", 32)
	if err != nil || len(k1) != 32 {
		t.Fatalf("AppSecret = %x, %v", k1, err)
	}
	k2, _ := s.AppSecret(ctx, "flash", 32)
	if !bytes.Equal(k1, k2) {
		t.Fatal("AppSecret changed between calls")
	}
	if k3, _ := s.AppSecret(ctx, "other", 32); bytes.Equal(k1, k3) {
		t.Fatal("two secrets share a value")
	}
}

func ids(list []Session) string {
	out := ""
	for i, s := range list {
		if i > 0 {
			out += ","
		}
		out += s.ID
	}
	return fmt.Sprint(out)
}

func TestListSessionSummariesMatchesListSessions(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	a, _ := s.CreateUser(ctx, "a@example.com", "h", false, t0)
	b, _ := s.CreateUser(ctx, "b@example.com", "h", false, t0)
	for i, id := range []string{"a1", "a2", "a3"} {
		if _, err := s.CreateSession(ctx, newSession(id, a.ID, t0.Add(time.Duration(i)*time.Minute)), 0); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.CreateSession(ctx, newSession("b1", b.ID, t0), 0); err != nil {
		t.Fatal(err)
	}
	now := t0.Add(time.Hour)
	if _, err := s.RevokeSession(ctx, a.ID, "a2", ReasonRevoked, "", now); err != nil {
		t.Fatal(err)
	}
	full, err := s.ListSessions(ctx, a.ID, now)
	if err != nil {
		t.Fatal(err)
	}
	sums, err := s.ListSessionSummaries(ctx, a.ID, now)
	if err != nil {
		t.Fatal(err)
	}
	if len(sums) != 2 || len(full) != 2 {
		t.Fatalf("summaries %v, full %d: want the 2 live sessions of a", sums, len(full))
	}
	for i := range full {
		if full[i].Summary() != sums[i] {
			t.Errorf("row %d: %+v vs %+v", i, full[i].Summary(), sums[i])
		}
	}
}
