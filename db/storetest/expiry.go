package storetest

import (
	"sync"
	"testing"
	"time"

	"doorman/db"
)

// testExpiredSessionsRecorded: a session that expires by itself gets one
// history entry (idle or absolute, at its expiry), whoever records it and
// however often; live and revoked sessions get none.
func testExpiredSessionsRecorded(t *testing.T, f *fixture) {
	a := f.user(t, "a@example.com")
	now := T0
	idle := Session("expidle000000001", a.ID, now) // idle expiry first
	idle.IdleExpiresAt, idle.AbsoluteExpiresAt = now.Add(time.Hour), now.Add(48*time.Hour)
	abs := Session("expabs0000000001", a.ID, now) // absolute first
	abs.IdleExpiresAt, abs.AbsoluteExpiresAt = now.Add(3*time.Hour), now.Add(2*time.Hour)
	live := Session("explive000000001", a.ID, now)
	live.IdleExpiresAt, live.AbsoluteExpiresAt = now.Add(10*time.Hour), now.Add(10*time.Hour)
	gone := Session("exprevoked000001", a.ID, now)
	gone.IdleExpiresAt, gone.AbsoluteExpiresAt = now.Add(time.Hour), now.Add(time.Hour)
	for _, s := range []db.Session{idle, abs, live, gone} {
		if _, err := f.s.CreateSession(f.ctx, s, 0, a.Epoch); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := f.s.RevokeSession(f.ctx, a.ID, gone.ID, db.ReasonRevoked, live.ID, now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if n, err := f.s.RecordExpiredSessions(f.ctx, now.Add(30*time.Minute), 100); err != nil || n != 0 {
		t.Fatalf("before any expiry: %d %v", n, err)
	}
	// Eight callers at once (instances): each expiry is recorded once.
	later := now.Add(5 * time.Hour)
	var wg sync.WaitGroup
	var mu sync.Mutex
	total := 0
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n, err := f.s.RecordExpiredSessions(f.ctx, later, 100)
			if err != nil {
				t.Errorf("record: %v", err)
			}
			mu.Lock()
			total += n
			mu.Unlock()
		}()
	}
	wg.Wait()
	if total != 2 {
		t.Fatalf("%d expiries recorded, want 2", total)
	}
	events, err := f.s.ListSecurityEvents(f.ctx, a.ID, 0, time.Time{}, 100)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]db.SecurityEvent{}
	for _, e := range events {
		if e.Reason == db.ReasonIdleExpired || e.Reason == db.ReasonAbsoluteExpired {
			if _, dup := got[e.SessionID]; dup {
				t.Fatalf("expiry of %s recorded twice", e.SessionID)
			}
			got[e.SessionID] = e
		}
	}
	if e := got[idle.ID]; e.Kind != db.EventSessionEnded || e.Reason != db.ReasonIdleExpired || !e.At.Equal(idle.IdleExpiresAt) {
		t.Fatalf("idle expiry: %+v", e)
	}
	if e := got[abs.ID]; e.Reason != db.ReasonAbsoluteExpired || !e.At.Equal(abs.AbsoluteExpiresAt) {
		t.Fatalf("absolute expiry: %+v", e)
	}
	if len(got) != 2 {
		t.Fatalf("expiries %v", got)
	}
	// The limit bounds one call.
	b := f.user(t, "b@example.com")
	for _, id := range []string{"explimit00000001", "explimit00000002", "explimit00000003"} {
		s := Session(id, b.ID, now)
		s.IdleExpiresAt = now.Add(time.Hour)
		if _, err := f.s.CreateSession(f.ctx, s, 0, b.Epoch); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := f.s.RecordExpiredSessions(f.ctx, later, 2); err != nil || n != 2 {
		t.Fatalf("limited: %d %v", n, err)
	}
	if n, err := f.s.RecordExpiredSessions(f.ctx, later, 2); err != nil || n != 1 {
		t.Fatalf("the rest: %d %v", n, err)
	}
}

// testExpiryOwesLogouts: a session that times out owes every app it
// signed in to (that takes back-channel logouts) a logout naming it, once,
// written by the pass that records its expiry; a live session owes none.
func testExpiryOwesLogouts(t *testing.T, f *fixture) {
	a, b := f.user(t, "a@example.com"), f.user(t, "b@example.com")
	f.oidcApp(t, "wiki", "https://wiki.example/bcl")
	f.oidcApp(t, "grafana", "https://grafana.example/bcl")
	f.oidcApp(t, "quiet", "")
	idle := Session("a-idle", a.ID, T0)
	idle.IdleExpiresAt = T0.Add(time.Hour)
	f.session(t, idle)
	f.session(t, Session("a-live", a.ID, T0))
	f.session(t, Session("b-live", b.ID, T0))
	f.oidcSignIn(t, a, "a-idle", "wiki", "r1", false, T0)
	f.oidcSignIn(t, a, "a-idle", "grafana", "r2", true, T0)
	f.oidcSignIn(t, a, "a-idle", "quiet", "r3", false, T0)
	f.oidcSignIn(t, a, "a-live", "wiki", "r4", false, T0)
	f.oidcSignIn(t, b, "b-live", "wiki", "r5", false, T0)
	later := T0.Add(2 * time.Hour)
	if n, err := f.s.RecordExpiredSessions(f.ctx, later, 100); err != nil || n != 1 {
		t.Fatalf("RecordExpiredSessions = %d, %v; want 1", n, err)
	}
	if got := f.deliveries(t, a.ID); got != "grafana/a-idle,wiki/a-idle" {
		t.Fatalf("logouts owed for the expired session: %q", got)
	}
	if n, err := f.s.RecordExpiredSessions(f.ctx, later.Add(time.Minute), 100); err != nil || n != 0 {
		t.Fatalf("RecordExpiredSessions again = %d, %v; want 0", n, err)
	}
	if got := f.deliveries(t, a.ID); got != "grafana/a-idle,wiki/a-idle" {
		t.Fatalf("logouts owed after a second pass: %q", got)
	}
	if got := f.deliveries(t, b.ID); got != "" {
		t.Fatalf("b owes logouts: %q", got)
	}
}
