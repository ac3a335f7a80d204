package storetest

import (
	"testing"
	"time"

	"doorman/db"
)

// testAcknowledgeSignIns: "It was me" marks exactly the user's live,
// not yet acknowledged sessions named, once, with a history entry each
// from the acting browser; another user's, an ended or an unknown id
// changes nothing.
func testAcknowledgeSignIns(t *testing.T, f *fixture) {
	a, b := f.user(t, "a@example.com"), f.user(t, "b@example.com")
	h := newHistory(f)
	for _, s := range []db.Session{Session("a1", a.ID, T0), Session("a2", a.ID, T0), Session("a3", a.ID, T0), Session("b1", b.ID, T0)} {
		f.session(t, s)
	}
	if _, err := f.s.RevokeSession(f.ctx, a.ID, "a3", db.ReasonRevoked, "a1", T0); err != nil {
		t.Fatal(err)
	}
	for _, u := range []db.User{a, b} { // the setup's history is checked elsewhere
		h.seen[u.ID] = h.all(t, u.ID)[0].ID
	}
	now := T0.Add(time.Minute)
	known := func(u db.User) map[string]time.Time {
		t.Helper()
		list, err := f.s.ListSessionSummaries(f.ctx, u.ID, now)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]time.Time{}
		for _, s := range list {
			out[s.ID] = s.KnownAt
		}
		return out
	}
	if k := known(a); !k["a1"].IsZero() || !k["a2"].IsZero() {
		t.Fatalf("before: known %v, want none", k)
	}

	ctx := db.WithActor(f.ctx, db.Actor{Device: "Firefox on Windows", Location: "Berlin, Germany", IP: "198.51.100.7"})
	// b's session, a's ended one and an unknown id among a's own: only a2.
	got, err := f.s.AcknowledgeSignIns(ctx, a.ID, []string{"a2", "b1", "a3", "zz"}, now)
	if err != nil || len(got) != 1 || got[0].ID != "a2" || !got[0].KnownAt.Equal(now) || got[0].DeviceLabel != "Chrome on macOS" {
		t.Fatalf("AcknowledgeSignIns = %+v, %v; want a2 known at %v", got, err, now)
	}
	if k := known(a); !k["a2"].Equal(now) || !k["a1"].IsZero() {
		t.Errorf("after: known %v, want a2 only, at %v", k, now)
	}
	if k := known(b); !k["b1"].IsZero() {
		t.Errorf("another user's session was acknowledged: %v", k)
	}
	h.expect(t, "It was me", a.ID, db.SecurityEvent{UserID: a.ID, Kind: db.EventSignInKnown, At: now, SessionID: "a2",
		Device: "Firefox on Windows", Location: "Berlin, Germany", IP: "198.51.100.7", Detail: "Chrome on macOS, London, United Kingdom"})
	h.expect(t, "It was me (another user)", b.ID)

	// Again, later: the first acknowledgement stands, nothing is recorded.
	got, err = f.s.AcknowledgeSignIns(ctx, a.ID, []string{"a2"}, now.Add(time.Hour))
	if err != nil || len(got) != 0 {
		t.Errorf("acknowledging again = %+v, %v; want nothing", got, err)
	}
	if k := known(a); !k["a2"].Equal(now) {
		t.Errorf("acknowledging again moved the time: %v", k)
	}
	// Only another user's: nothing.
	if got, err := f.s.AcknowledgeSignIns(ctx, b.ID, []string{"a1"}, now); err != nil || len(got) != 0 {
		t.Errorf("b acknowledging a1 = %+v, %v; want nothing", got, err)
	}
	if got, err := f.s.AcknowledgeSignIns(ctx, a.ID, nil, now); err != nil || len(got) != 0 {
		t.Errorf("no ids = %+v, %v", got, err)
	}
	h.expect(t, "nothing more", a.ID)
	h.expect(t, "nothing more", b.ID)
	if k := known(a); !k["a1"].IsZero() {
		t.Errorf("a1 acknowledged by another user: %v", k)
	}
	// SecurityOverview reads it too.
	o, err := f.s.SecurityOverview(f.ctx, a.ID, now, T0, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range o.Sessions {
		if (s.ID == "a2") == s.KnownAt.IsZero() {
			t.Errorf("overview: %s known at %v", s.ID, s.KnownAt)
		}
	}
}

// testTouchNeverRevivesAnExpiredSession: a touch that comes after the
// session expired (a request that began while it was alive and ended
// after) changes nothing: the session stays over.
func testTouchNeverRevivesAnExpiredSession(t *testing.T, f *fixture) {
	a := f.user(t, "a@example.com")
	s := Session("a1", a.ID, T0)
	s.IdleExpiresAt = T0.Add(time.Hour)
	f.session(t, s)
	late := T0.Add(2 * time.Hour)
	if err := f.s.TouchSession(f.ctx, "a1", db.Touch{LastSeenAt: late, IdleExpiresAt: late.Add(time.Hour), IP: s.IP}); err != nil {
		t.Fatal(err)
	}
	got, _, err := f.s.SessionWithUser(f.ctx, "a1")
	if err != nil {
		t.Fatal(err)
	}
	if got.Alive(late) || !got.IdleExpiresAt.Equal(T0.Add(time.Hour)) || !got.LastSeenAt.Equal(T0) {
		t.Errorf("a touch after expiry revived the session: idle expiry %v, last seen %v", got.IdleExpiresAt, got.LastSeenAt)
	}
	// A touch while alive still records activity.
	if err := f.s.TouchSession(f.ctx, "a1", db.Touch{LastSeenAt: T0.Add(time.Minute), IdleExpiresAt: T0.Add(61 * time.Minute), IP: s.IP}); err != nil {
		t.Fatal(err)
	}
	if got, _, _ := f.s.SessionWithUser(f.ctx, "a1"); !got.IdleExpiresAt.Equal(T0.Add(61 * time.Minute)) {
		t.Errorf("a touch of a live session: idle expiry %v", got.IdleExpiresAt)
	}
}
