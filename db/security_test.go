package db

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestSessionLimitEvictsLeastRecentlyActive(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	a, _ := s.CreateUser(ctx, "a@example.com", "h", false, t0)
	b, _ := s.CreateUser(ctx, "b@example.com", "h", false, t0)
	if _, err := s.CreateSession(ctx, newSession("b1", b.ID, t0), 3); err != nil {
		t.Fatal(err)
	}
	// a1 is the oldest by creation but the most recently active.
	for i, id := range []string{"a1", "a2", "a3"} {
		sess := newSession(id, a.ID, t0.Add(time.Duration(i)*time.Minute))
		if id == "a1" {
			sess.LastSeenAt = t0.Add(time.Hour)
		}
		evicted, err := s.CreateSession(ctx, sess, 3)
		if err != nil || len(evicted) != 0 {
			t.Fatalf("under the limit: evicted %v, %v", evicted, err)
		}
	}
	evicted, err := s.CreateSession(ctx, newSession("a4", a.ID, t0.Add(2*time.Hour)), 3)
	if err != nil || len(evicted) != 1 || evicted[0].ID != "a2" {
		t.Fatalf("at the limit: evicted %+v, %v; want a2", evicted, err)
	}
	row, _, _ := s.SessionWithUser(ctx, "a2")
	if row.RevokedReason != ReasonSessionLimit || row.RevokedBy != "a4" {
		t.Fatalf("evicted row = %+v", row)
	}
	list, _ := s.ListSessions(ctx, a.ID, t0.Add(2*time.Hour))
	if len(list) != 3 {
		t.Fatalf("%d live sessions, want 3", len(list))
	}
	if list, _ := s.ListSessions(ctx, b.ID, t0.Add(2*time.Hour)); len(list) != 1 {
		t.Fatal("another user's session was evicted")
	}
}

func TestRotateSession(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	a, _ := s.CreateUser(ctx, "a@example.com", "h", false, t0)
	if _, err := s.CreateSession(ctx, newSession("a1", a.ID, t0), 0); err != nil {
		t.Fatal(err)
	}
	now := t0.Add(time.Hour)
	if err := s.RotateSession(ctx, "a1", []byte("new-hash"), now); err != nil {
		t.Fatal(err)
	}
	row, _, _ := s.SessionWithUser(ctx, "a1")
	if !bytes.Equal(row.SecretHash, []byte("new-hash")) || !row.ReauthAt.Equal(now) || !row.Alive(now) {
		t.Fatalf("rotated row = %+v", row)
	}
	if _, err := s.RevokeSession(ctx, a.ID, "a1", ReasonRevoked, "", now); err != nil {
		t.Fatal(err)
	}
	if err := s.RotateSession(ctx, "a1", []byte("again"), now); !errors.Is(err, ErrNotFound) {
		t.Fatalf("rotating a revoked session: %v", err)
	}
}

func TestUserChanges(t *testing.T) {
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
	if err := s.UpdateEmail(ctx, a.ID, "b@example.com"); !errors.Is(err, ErrEmailTaken) {
		t.Fatalf("taking b's email: %v", err)
	}
	if err := s.UpdateEmail(ctx, a.ID, "new@example.com"); err != nil {
		t.Fatal(err)
	}
	if err := s.UpdatePassword(ctx, a.ID, "h2"); err != nil {
		t.Fatal(err)
	}
	if u, _ := s.UserByID(ctx, a.ID); u.Email != "new@example.com" || u.PasswordHash != "h2" {
		t.Fatalf("after updates: %+v", u)
	}

	now := t0.Add(time.Minute)
	n, err := s.SetUserDisabled(ctx, a.ID, true, now)
	if err != nil || n != 2 {
		t.Fatalf("disable: %d, %v", n, err)
	}
	if u, _ := s.UserByID(ctx, a.ID); !u.Disabled() {
		t.Fatal("not disabled")
	}
	if row, u, _ := s.SessionWithUser(ctx, "a1"); row.Alive(now) || row.RevokedReason != ReasonDisabled || !u.Disabled() {
		t.Fatalf("disabled user's session: %+v %+v", row, u)
	}
	if _, err := s.SetUserDisabled(ctx, a.ID, false, now); err != nil {
		t.Fatal(err)
	}
	if u, _ := s.UserByID(ctx, a.ID); u.Disabled() {
		t.Fatal("still disabled")
	}
	if _, err := s.SetUserDisabled(ctx, 999, true, now); !errors.Is(err, ErrNotFound) {
		t.Fatalf("disabling nobody: %v", err)
	}

	if err := s.DeleteUser(ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"a1", "a2"} {
		if _, _, err := s.SessionWithUser(ctx, id); !errors.Is(err, ErrNotFound) {
			t.Fatalf("session %s survived its user: %v", id, err)
		}
	}
	if _, _, err := s.SessionWithUser(ctx, "b1"); err != nil {
		t.Fatalf("b's session: %v", err)
	}
	if err := s.DeleteUser(ctx, a.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deleting twice: %v", err)
	}
}

func TestLoginFailures(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	for i := range 5 {
		if err := s.RecordLoginFailure(ctx, "a@example.com", "1.2.3.4", t0.Add(time.Duration(i)*time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.RecordLoginFailure(ctx, "b@example.com", "1.2.3.4", t0); err != nil {
		t.Fatal(err)
	}
	n, first, err := s.LoginFailuresSince(ctx, "a@example.com", t0.Add(2*time.Minute))
	if err != nil || n != 3 || !first.Equal(t0.Add(2*time.Minute)) {
		t.Fatalf("since +2m: %d %v %v", n, first, err)
	}
	if n, first, _ := s.LoginFailuresSince(ctx, "nobody@example.com", t0); n != 0 || !first.IsZero() {
		t.Fatalf("nobody: %d %v", n, first)
	}
	if err := s.ClearLoginFailures(ctx, "a@example.com"); err != nil {
		t.Fatal(err)
	}
	if n, _, _ := s.LoginFailuresSince(ctx, "a@example.com", t0); n != 0 {
		t.Fatal("not cleared")
	}
	if n, _, _ := s.LoginFailuresSince(ctx, "b@example.com", t0); n != 1 {
		t.Fatal("cleared someone else's")
	}
	if n, err := s.PruneLoginFailures(ctx, t0.Add(time.Second)); err != nil || n != 1 {
		t.Fatalf("prune: %d %v", n, err)
	}
}

func TestDump(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	a, _ := s.CreateUser(ctx, "a@example.com", "h", false, t0)
	if _, err := s.CreateSession(ctx, newSession("a1", a.ID, t0), 0); err != nil {
		t.Fatal(err)
	}
	d1, err := s.Dump(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"# users", "a@example.com", "# sessions", "a1 |", fmt.Sprintf("%x", "hash-a1"), "# login_failures"} {
		if !strings.Contains(d1, want) {
			t.Errorf("dump lacks %q:\n%s", want, d1)
		}
	}
	if err := s.TouchSession(ctx, "a1", Touch{LastSeenAt: t0.Add(time.Hour), IdleExpiresAt: t0.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if d2, _ := s.Dump(ctx); d2 == d1 {
		t.Fatal("dump did not change with the data")
	}
}
