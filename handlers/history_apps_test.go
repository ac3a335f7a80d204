package handlers_test

import (
	"context"
	"html"
	"strings"
	"testing"
	"time"

	"doorman/db"
	"doorman/paths"
)

// The history and the confirmations tell what happened in the apps: the
// sign-ins to them (from which device), disconnects, and each logout
// delivery's state as the real relying party answers or not.

// activity returns the browser's history page, unescaped.
func (c *client) activity() string {
	c.t.Helper()
	res := c.get(paths.Activity)
	expectStatus(c.t, res, 200)
	return html.UnescapeString(res.body)
}

// entry returns the history entry (its <li>) holding text, or "".
func entry(page, text string) string {
	i := strings.Index(page, text)
	if i < 0 {
		return ""
	}
	start := strings.LastIndex(page[:i], "<li")
	end := strings.Index(page[i:], "</li>")
	if start < 0 || end < 0 {
		return ""
	}
	return page[start : i+end]
}

func (a *testApp) deviceOf(sid string) string {
	a.t.Helper()
	s, _, err := a.store.SessionWithUser(context.Background(), sid)
	if err != nil {
		a.t.Fatal(err)
	}
	return s.DeviceLabel
}

// TestHistoryOfAppSignInsAndLogouts: the laptop signs in to the app; the
// phone's history says so, with the laptop's device. The app is down when
// the phone ends the laptop's session: the confirmation and the history
// say it did not answer yet and is retried; once it is back, the history
// says the laptop's session was signed out of it. A disconnect is in the
// history too.
func TestHistoryOfAppSignInsAndLogouts(t *testing.T) {
	a := newOIDCApp(t)
	laptop := a.client(uaWindowsChrome, ipBerlin)
	laptop.signup("alice@example.com", "correct horse")
	phone := a.client(uaIPhone, ipLondon)
	phone.login("alice@example.com", "correct horse")
	app := a.newRealRP("wiki")
	sid := app.signIn(laptop)
	laptopDevice := a.deviceOf(sid)

	page := phone.activity()
	signIn := entry(page, "Signed in to “App wiki” with Doorman")
	if !strings.Contains(signIn, "from "+laptopDevice) || !strings.Contains(signIn, `data-event="app_sign_in"`) ||
		!strings.Contains(signIn, paths.Session(sid)) {
		t.Fatalf("the app sign-in's entry: %q", signIn)
	}

	app.mode.Store(modeDown)
	expectRedirect(t, phone.post("/settings/security/sessions/"+sid+"/revoke", nil), paths.Security)
	res := phone.get(paths.Security)
	expectBody(t, res, "Signed out "+laptopDevice+". App wiki did not answer yet — retrying.")

	page = phone.activity()
	retrying := entry(page, "App wiki did not answer yet — retrying")
	if !strings.Contains(retrying, "the session from "+laptopDevice) || !strings.Contains(retrying, "1 try; last: the app answered 503") {
		t.Fatalf("the retried delivery's entry: %q", retrying)
	}
	if strings.Contains(page, "Signed out of App wiki") {
		t.Fatal("the history says the app signed the laptop out while it was down")
	}

	app.mode.Store(modeUp)
	a.advance(time.Minute)
	a.waitDelivery("alice@example.com", "wiki", sid, func(d db.LogoutDelivery) bool { return d.State == db.LogoutDelivered })
	page = phone.activity()
	done := entry(page, "Signed out of App wiki")
	if !strings.Contains(done, "the session from "+laptopDevice) || !strings.Contains(done, `data-event="logout_delivered"`) {
		t.Fatalf("the delivered logout's entry: %q", done)
	}
	if strings.Contains(page, "did not answer yet") {
		t.Fatal("the history still says the app did not answer")
	}
	// Newest first: the delivery is above the session's ending, which is
	// above the sign-in to the app.
	if i, j, k := strings.Index(page, "Signed out of App wiki"), strings.Index(page, laptopDevice+" signed out"),
		strings.Index(page, "Signed in to “App wiki”"); i < 0 || j < 0 || k < 0 || i > j || j > k {
		t.Errorf("entries out of order: delivery %d, ending %d, sign-in %d", i, j, k)
	}
	// The ended session's details name the app too.
	expectBody(t, phone.get(paths.Session(sid)), "Signed out of App wiki.")

	// A disconnect (the store's, as the Security page's button calls it).
	app.signIn(phone)
	u, err := a.store.UserByEmail(context.Background(), "alice@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.store.DisconnectApp(context.Background(), u.ID, "wiki", a.clock()); err != nil {
		t.Fatal(err)
	}
	a.waitDelivery("alice@example.com", "wiki", "", func(d db.LogoutDelivery) bool { return d.State == db.LogoutDelivered })
	page = phone.activity()
	if e := entry(page, "“App wiki” disconnected"); !strings.Contains(e, `data-event="app_disconnected"`) {
		t.Fatalf("the disconnect's entry: %q", e)
	}
	if e := entry(page, "every session of yours there"); !strings.Contains(e, "Signed out of App wiki") {
		t.Fatalf("the disconnect's delivery: %q", e)
	}
}

// TestConfirmationNamesTheApps: after "Sign out everywhere", the
// confirmation names the apps that signed the person out.
func TestConfirmationNamesTheApps(t *testing.T) {
	a := newOIDCApp(t)
	laptop := a.client(uaWindowsChrome, ipBerlin)
	laptop.signup("alice@example.com", "correct horse")
	phone := a.client(uaIPhone, ipLondon)
	phone.login("alice@example.com", "correct horse")
	wiki, grafana := a.newRealRP("wiki"), a.newRealRP("grafana")
	wiki.signIn(laptop)
	grafana.signIn(phone)

	expectRedirect(t, phone.post("/settings/security/sessions/revoke-all", nil), paths.Login)
	res := phone.get(paths.Login)
	expectBody(t, res, "You signed out everywhere: 2 sessions ended. Signed out of App grafana and App wiki.")
}
