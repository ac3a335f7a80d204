package handlers_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"doorman/examples/relying-party/rp"
)

// The apps a person signed in to with Doorman, on the Security page and a
// session's details, and disconnecting one: a real relying party (the
// example app) signs in through Doorman, is listed with the sessions that
// signed in to it, and once disconnected its refresh token is refused and
// it receives (and verifies) a logout token naming only the person.

// refreshOf is the refresh token the RP holds for Doorman session sid.
func (r *realRP) refreshOf(sid string) string {
	r.t.Helper()
	for _, s := range r.rp.Sessions() {
		if s.SID == sid && s.RefreshToken != "" {
			return s.RefreshToken
		}
	}
	r.t.Fatalf("the RP holds no refresh token of session %s", sid)
	return ""
}

// refresh uses refreshToken at Doorman's token endpoint as the RP would
// (its client id and secret), returning the new refresh token, or the
// OAuth error code when Doorman refused it.
func (r *realRP) refresh(refreshToken string) (next, code string) {
	r.t.Helper()
	cfg := oauth2.Config{ClientID: r.clientID, ClientSecret: rpSecret,
		Endpoint: oauth2.Endpoint{TokenURL: r.app.srv.URL + "/oidc/token", AuthStyle: oauth2.AuthStyleInHeader}}
	tok, err := cfg.TokenSource(context.Background(), &oauth2.Token{RefreshToken: refreshToken}).Token()
	if err == nil {
		return tok.RefreshToken, ""
	}
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) || re.ErrorCode == "" {
		r.t.Fatalf("refresh: no OAuth answer: %v", err)
	}
	return "", re.ErrorCode
}

// TestConnectedAppsListAndDisconnect: the app a person signed in to from
// two devices is on the Security page with both sessions (this device
// named as such, each linking to its details), and on each session's
// details; disconnecting it (the confirm page first, without script)
// ends its refresh tokens (invalid_grant), sends it a logout token naming
// only the person, which it verifies and which ends its sessions of them,
// and takes it off the page.
func TestConnectedAppsListAndDisconnect(t *testing.T) {
	a := newOIDCApp(t)
	laptop := a.client(uaWindowsChrome, ipBerlin)
	laptop.signup("alice@example.com", "correct horse")
	phone := a.client(uaIPhone, ipLondon)
	phone.login("alice@example.com", "correct horse")
	app := a.newRealRP("wiki")
	laptopSID, phoneSID := app.signIn(laptop), app.signIn(phone)
	// The app's refresh token works (rotated: the test holds the new one).
	refresh, code := app.refresh(app.refreshOf(laptopSID))
	if code != "" || refresh == "" {
		t.Fatalf("the refresh token was refused before the disconnect: %q", code)
	}

	page := laptop.get("/settings/security")
	expectStatus(t, page, http.StatusOK)
	for _, want := range []string{
		`data-app-id="wiki"`, `>App wiki</p>`, "Gets who you are", "Last used <time datetime=",
		`<a href="/settings/security/sessions/` + laptopSID + `">this device</a>`,
		`<a href="/settings/security/sessions/` + phoneSID + `">Safari on iPhone, London, England, United Kingdom</a>`,
		`</a>,</span><span><a href="/settings/security/sessions/`, // "From A, B"
		`action="/settings/security/apps/wiki/disconnect"`, `aria-label="Disconnect App wiki"`,
		"and Doorman tells it to sign you out.",
		// "Sign out everywhere" and its box for the other sessions count it.
		"All 2 sessions, including this device, will be signed out, and 1 connected app disconnected.",
		"Also disconnect 1 connected app",
		"This device stays signed in. Connected apps and access tokens keep working unless you tick the box below.",
	} {
		if !strings.Contains(page.body, want) {
			t.Errorf("the Security page lacks %q\n%s", want, snippet(page.body))
		}
	}
	if strings.Contains(page.body, "No apps are connected") {
		t.Error("the Security page says no apps are connected")
	}
	for _, sid := range []string{laptopSID, phoneSID} {
		details := laptop.get("/settings/security/sessions/" + sid)
		if !strings.Contains(details.body, "Apps this session signed in to") || !strings.Contains(details.body, ">App wiki</p>") {
			t.Errorf("session %s's details do not list the app\n%s", sid, snippet(details.body))
		}
	}

	// The no-script confirm page, then the disconnect.
	confirm := laptop.get("/settings/security/apps/wiki/disconnect")
	expectStatus(t, confirm, http.StatusOK)
	if !strings.Contains(confirm.body, "Disconnect “App wiki”?") {
		t.Errorf("confirm page:\n%s", snippet(confirm.body))
	}
	expectRedirect(t, laptop.post("/settings/security/apps/wiki/disconnect", nil), "/settings/security")
	after := laptop.get("/settings/security")
	// Signed out of it, or being told when its answer takes longer than
	// the confirmation waits (a busy machine).
	if !strings.Contains(after.body, "Disconnected App wiki. Signed out of App wiki.") &&
		!strings.Contains(after.body, "Disconnected App wiki. Telling App wiki to sign you out.") {
		t.Errorf("no confirmation after the disconnect\n%s", snippet(after.body))
	}
	if strings.Contains(after.body, `data-app-id="wiki"`) || !strings.Contains(after.body, "No apps are connected") {
		t.Errorf("the app is still listed after its disconnect\n%s", snippet(after.body))
	}
	if details := laptop.get("/settings/security/sessions/" + phoneSID); strings.Contains(details.body, "Apps this session signed in to") {
		t.Error("the phone's details still list the disconnected app")
	}

	// Its refresh token is dead at once; its sessions of the person end by
	// a logout token naming only them (no sid), which it verified.
	if _, code := app.refresh(refresh); code != "invalid_grant" {
		t.Errorf("refresh after the disconnect: %q, want invalid_grant", code)
	}
	e := app.waitLogout(subjectOf(t, a, "alice@example.com"), "")
	if e.Ended != 2 || app.signedIn(laptopSID) || app.signedIn(phoneSID) {
		t.Errorf("the logout ended %d RP sessions; left: %+v", e.Ended, app.rp.Sessions())
	}
	for _, ev := range app.rp.Events() {
		if ev.Kind == rp.EventLogoutRefused {
			t.Errorf("the app refused a logout token: %s", ev.Reason)
		}
	}
	// The Doorman sessions themselves are not ended by a disconnect.
	expectStatus(t, phone.get("/settings/security"), http.StatusOK)
	// A second disconnect finds nothing to disconnect.
	expectStatus(t, laptop.post("/settings/security/apps/wiki/disconnect", nil), http.StatusNotFound)
}

// TestDisconnectAppRefused: another user's app, an unknown client id and a
// cross-site POST are refused, and nothing changes; a user with no app
// sees the empty state.
func TestDisconnectAppRefused(t *testing.T) {
	a := newOIDCApp(t)
	alice := a.client(uaWindowsChrome, ipBerlin)
	alice.signup("alice@example.com", "correct horse")
	bob := a.client(uaIPhone, ipLondon)
	bob.signup("bob@example.com", "battery staple")
	app := a.newRealRP("wiki")
	app.signIn(alice)

	if page := bob.get("/settings/security"); strings.Contains(page.body, "data-app-id") || !strings.Contains(page.body, "No apps are connected. A website connects when you sign in to it with Doorman") {
		t.Errorf("bob's Security page:\n%s", snippet(page.body))
	}
	alice.get("/settings/security")
	before := a.dump()
	for _, path := range []string{"/settings/security/apps/wiki/disconnect", "/settings/security/apps/nope/disconnect",
		"/settings/security/apps/" + url.PathEscape("wiki/../x") + "/disconnect"} {
		expectStatus(t, bob.get(path), http.StatusNotFound)
		expectStatus(t, bob.post(path, nil), http.StatusNotFound)
	}
	for _, h := range [][]string{{"Sec-Fetch-Site", "cross-site"}, {"Origin", "https://evil.example"}} {
		if res := alice.post("/settings/security/apps/wiki/disconnect", nil, h...); res.StatusCode != http.StatusForbidden {
			t.Errorf("cross-site disconnect (%s): %d, want 403", h[0], res.StatusCode)
		}
	}
	if res := alice.post("/settings/security/apps/wiki/disconnect", url.Values{"csrf": {""}}); res.StatusCode != http.StatusForbidden {
		t.Errorf("disconnect without the CSRF token: %d, want 403", res.StatusCode)
	}
	if after := a.dump(); after != before {
		t.Fatalf("a refused disconnect changed the database:\n%s\nvs\n%s", before, after)
	}
	if page := alice.get("/settings/security"); !strings.Contains(page.body, `data-app-id="wiki"`) {
		t.Error("alice's app is gone after refused disconnects")
	}
}
