package storetest

import (
	"reflect"
	"testing"
	"time"

	"doorman/db"
)

// testSecurityOverview: SecurityOverview reads exactly what the methods
// it stands for read, for the user only: one with sessions, a token, a
// pending setup, history, apps (a consent, grants live with a session, an
// offline one) and passkeys, another who sees none of the first's.
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
		apps, err := f.s.ConnectedApps(f.ctx, u.ID, now)
		if err != nil {
			t.Fatal(err)
		}
		passkeys := f.passkeys(t, u.ID)
		if !reflect.DeepEqual(o.Sessions, sessions) || !reflect.DeepEqual(o.Tokens, tokens) || !reflect.DeepEqual(o.Events, events) ||
			!reflect.DeepEqual(o.Apps, apps) || !reflect.DeepEqual(o.Passkeys, passkeys) {
			t.Errorf("%s: overview %+v\nwant sessions %+v, tokens %+v, events %+v, apps %+v, passkeys %+v", what, o, sessions, tokens, events, apps, passkeys)
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
	f.oidcApp(t, "grafana", "https://grafana.example/bcl")
	f.oidcApp(t, "wiki", "")
	if err := f.s.GrantConsent(f.ctx, a.ID, "grafana", []string{"openid", "email", "offline_access"}, T0); err != nil {
		t.Fatal(err)
	}
	f.oidcSignIn(t, a, "a1", "grafana", "g1", true, T0)
	f.oidcSignIn(t, a, "a2", "wiki", "w1", false, T0.Add(time.Second))
	f.addPasskey(t, Passkey("laptop", a.ID, T0))
	f.addPasskey(t, Passkey("phone", a.ID, T0.Add(time.Second)))
	check("a user with sessions, a token, a pending setup, history, apps and passkeys", a)
	check("another user", b)
	o, err := f.s.SecurityOverview(f.ctx, a.ID, now, T0.Add(-time.Hour), 5)
	if err != nil {
		t.Fatal(err)
	}
	if len(o.Sessions) != 2 || len(o.Tokens) != 1 || len(o.Events) != 5 || !o.HasTwoFactor || o.TwoFactor.Enabled() ||
		len(o.Apps) != 2 || len(o.Passkeys) != 2 {
		t.Errorf("overview of a: %d sessions, %d tokens, %d events, two-factor %v (enabled %v), %d apps, %d passkeys; want 2, 1, 5, pending, 2, 2",
			len(o.Sessions), len(o.Tokens), len(o.Events), o.HasTwoFactor, o.TwoFactor.Enabled(), len(o.Apps), len(o.Passkeys))
	}
	// Whether disconnecting each app may promise a sign-out comes with it.
	for _, app := range o.Apps {
		if want := app.ClientID == "grafana"; app.LogsOut != want || app.Offline != want {
			t.Errorf("app %s: logs out %v, offline %v; want %v", app.ClientID, app.LogsOut, app.Offline, want)
		}
	}
}
