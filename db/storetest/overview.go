package storetest

import (
	"reflect"
	"testing"
	"time"

	"doorman/db"
)

// testSecurityOverview: SecurityOverview reads exactly what the four
// methods it stands for read, for the user only.
func testSecurityOverview(t *testing.T, f *fixture) {
	a, b := f.user(t, "a@example.com"), f.user(t, "b@example.com")
	now := T0.Add(time.Minute)
	check := func(what string, u db.User) {
		t.Helper()
		o, err := f.s.SecurityOverview(f.ctx, u.ID, now, T0.Add(-time.Hour), 5)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		sessions, err := f.s.ListSessionSummaries(f.ctx, u.ID, now)
		if err != nil {
			t.Fatal(err)
		}
		tf, tfErr := f.s.TwoFactor(f.ctx, u.ID)
		tokens, err := f.s.ListTokens(f.ctx, u.ID, "", now)
		if err != nil {
			t.Fatal(err)
		}
		events, err := f.s.ListSecurityEvents(f.ctx, u.ID, 0, T0.Add(-time.Hour), 5)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(o.Sessions, sessions) || !reflect.DeepEqual(o.Tokens, tokens) || !reflect.DeepEqual(o.Events, events) {
			t.Errorf("%s: overview %+v\nwant sessions %+v, tokens %+v, events %+v", what, o, sessions, tokens, events)
		}
		if o.HasTwoFactor != (tfErr == nil) || (tfErr == nil && !reflect.DeepEqual(o.TwoFactor, tf)) {
			t.Errorf("%s: two-factor %v %+v, want %+v (%v)", what, o.HasTwoFactor, o.TwoFactor, tf, tfErr)
		}
	}
	check("a user with nothing", a)
	f.session(t, Session("a1", a.ID, T0))
	f.session(t, Session("a2", a.ID, T0.Add(time.Second)))
	f.session(t, Session("b1", b.ID, T0))
	f.token(t, Token("pa", a.ID, db.TokenPersonal, T0))
	f.token(t, Token("xb", b.ID, db.TokenApp, T0))
	if err := f.s.StartTwoFactor(f.ctx, a.ID, "sealed", T0); err != nil {
		t.Fatal(err)
	}
	for i := range 7 {
		if err := f.s.RecordSecurityEvent(f.ctx, db.SecurityEvent{UserID: a.ID, Kind: db.EventSignInFailed, At: T0.Add(time.Duration(i) * time.Second)}); err != nil {
			t.Fatal(err)
		}
	}
	check("a user with sessions, a token, a pending setup and history", a)
	check("another user", b)
	o, err := f.s.SecurityOverview(f.ctx, a.ID, now, T0.Add(-time.Hour), 5)
	if err != nil {
		t.Fatal(err)
	}
	if len(o.Sessions) != 2 || len(o.Tokens) != 1 || len(o.Events) != 5 || !o.HasTwoFactor || o.TwoFactor.Enabled() {
		t.Errorf("overview of a: %d sessions, %d tokens, %d events, two-factor %v (enabled %v); want 2, 1, 5, pending", len(o.Sessions), len(o.Tokens), len(o.Events), o.HasTwoFactor, o.TwoFactor.Enabled())
	}
}
