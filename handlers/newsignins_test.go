package handlers_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// idOf is the id of the row of another session on the Security page whose
// HTML names device.
func idOf(t *testing.T, rows []listedSession, device string) string {
	t.Helper()
	for _, r := range rows {
		if !r.Current && strings.Contains(r.HTML, ">"+device+"</a>") {
			return r.ID
		}
	}
	t.Fatalf("no row for %s", device)
	return ""
}

// banner is the Security page's banner of new sign-ins ("" for none).
func banner(res *response) string {
	i := strings.Index(res.body, `<div class="signin-banner"`)
	if i < 0 {
		return ""
	}
	j := strings.Index(res.body[i:], `<div class="list-actions">`)
	return res.body[i : i+j]
}

// TestNewSignInsBannerItWasMe: one banner names the recent sign-ins on
// other devices; "It was me" takes them off it on every device of the
// account, with a history entry; a later sign-in brings it back, for that
// one only.
func TestNewSignInsBannerItWasMe(t *testing.T) {
	app := newTestApp(t)
	desktop, laptop := app.client(uaWindowsChrome, ipBerlin), app.client(uaWindowsChrome, ipBerlin)
	desktop.signup("alice@example.com", pw)
	laptop.login("alice@example.com", pw)
	// The laptop, signed in in the desktop's second, is news to both:
	// each says it was the person's.
	for _, c := range []*client{desktop, laptop} {
		_, rows := c.securityPage()
		expectRedirect(t, c.post("/settings/security/sessions/known", url.Values{"session": {idOf(t, rows, "Chrome on Windows")}}), "/settings/security")
	}
	app.advance(time.Hour)
	phone := app.client(uaIPhone, ipLondon)
	phone.login("alice@example.com", pw)
	app.advance(5 * time.Minute)

	res, rows := desktop.securityPage()
	phoneID := idOf(t, rows, "Safari on iPhone")
	b := banner(res)
	for _, want := range []string{"<strong>New sign-in:</strong>", `>Safari on iPhone</a>, London, England, United Kingdom, <time`, "5 minutes ago</time>.",
		`action="/settings/security/sessions/known"`, `name="session" value="` + phoneID + `"`, ">It was me</button>",
		`href="/settings/security/sessions/` + phoneID + `/not-you" aria-label="Not me: Safari on iPhone, London">Not me</a>`} {
		if !strings.Contains(b, want) {
			t.Fatalf("the banner lacks %q:\n%s", want, b)
		}
	}
	// One banner, and the newer session is not told about the older ones.
	if strings.Count(res.body, `class="signin-banner"`) != 1 {
		t.Fatal("more than one banner")
	}
	if res, _ := phone.securityPage(); banner(res) != "" {
		t.Fatalf("the newest session is told about older ones:\n%s", banner(res))
	}

	// A second new sign-in: one banner naming both, newest first.
	tokyo := app.client(uaMacFirefox, ipTokyo)
	tokyo.login("alice@example.com", pw)
	res, rows = desktop.securityPage()
	tokyoID := idOf(t, rows, "Firefox on macOS")
	b = banner(res)
	for _, want := range []string{"<strong>2 new sign-ins in the last day:</strong>", `>Firefox on macOS (Tokyo)</a>`, `>Safari on iPhone (London)</a>`,
		">They were all me</button>", `aria-label="Not me: Firefox on macOS, Tokyo">Not me</a>`} {
		if !strings.Contains(b, want) {
			t.Fatalf("the banner lacks %q:\n%s", want, b)
		}
	}
	if strings.Index(b, "Firefox on macOS") > strings.Index(b, "Safari on iPhone") {
		t.Fatal("the banner is not newest first")
	}

	// "It was me" from the desktop: gone there and on the laptop.
	res = desktop.post("/settings/security/sessions/known", url.Values{"session": {tokyoID, phoneID}})
	expectRedirect(t, res, "/settings/security")
	res, _ = desktop.securityPage()
	expectBody(t, res, "Thanks. Those 2 sign-ins are marked as yours.")
	if b := banner(res); b != "" {
		t.Fatalf("the banner is still there after It was me:\n%s", b)
	}
	if res, _ := laptop.securityPage(); banner(res) != "" {
		t.Fatalf("another device still shows the banner:\n%s", banner(res))
	}
	// The history says so, from the desktop.
	expectBody(t, desktop.get("/settings/security/activity"), "You said the sign-in on Safari on iPhone, London, England, United Kingdom was you",
		"You said the sign-in on Firefox on macOS, Tokyo")

	// A later sign-in brings the banner back, for that one only.
	app.advance(time.Minute)
	app.client(uaIPhone, ipBerlin).login("alice@example.com", pw)
	res, _ = laptop.securityPage()
	b = banner(res)
	if !strings.Contains(b, "<strong>New sign-in:</strong>") || !strings.Contains(b, ">Safari on iPhone</a>, Berlin") || strings.Contains(b, "Tokyo") || strings.Contains(b, "London") {
		t.Fatalf("the banner after a later sign-in:\n%s", b)
	}
	// After a day it goes by itself.
	app.advance(24 * time.Hour)
	if res, _ := laptop.securityPage(); banner(res) != "" {
		t.Fatal("a sign-in older than a day is still called out")
	}
}

// TestItWasMeRefusesWhatIsNotYours: "It was me" changes only the user's own
// other live sessions; another user's id, a malformed one, this device's,
// none at all or a post without the CSRF token change nothing.
func TestItWasMeRefusesWhatIsNotYours(t *testing.T) {
	app := newTestApp(t)
	alice, bob := app.client(uaWindowsChrome, ipBerlin), app.client(uaWindowsChrome, ipLondon)
	alice.signup("alice@example.com", pw)
	bob.signup("bob@example.com", pw)
	app.advance(time.Minute)
	bobPhone := app.client(uaIPhone, ipTokyo)
	bobPhone.login("bob@example.com", pw)
	_, rows := bob.securityPage()
	bobPhoneID := idOf(t, rows, "Safari on iPhone")
	aliceID := alice.currentID()
	before := app.dump()
	for _, c := range []struct {
		name string
		form url.Values
		code int
	}{
		{"another user's session", url.Values{"session": {bobPhoneID}}, http.StatusNotFound},
		{"a malformed id", url.Values{"session": {"../../x"}}, http.StatusNotFound},
		{"this device's own", url.Values{"session": {aliceID}}, http.StatusNotFound},
		{"no session", url.Values{}, http.StatusBadRequest},
		{"too many", url.Values{"session": {bobPhoneID, bobPhoneID, bobPhoneID, bobPhoneID, bobPhoneID, bobPhoneID}}, http.StatusBadRequest},
		{"no CSRF token", url.Values{"session": {bobPhoneID}, "csrf": {"forged"}}, http.StatusForbidden},
	} {
		res := alice.post("/settings/security/sessions/known", c.form)
		if res.StatusCode != c.code {
			t.Errorf("%s: status %d, want %d", c.name, res.StatusCode, c.code)
		}
	}
	// bob's own post through the query string is not read either.
	expectStatus(t, bob.post("/settings/security/sessions/known?session="+bobPhoneID, nil), http.StatusBadRequest)
	if after := app.dump(); after != before {
		t.Fatalf("a refused It was me changed the store:\n%s\n---\n%s", before, after)
	}
	if res, _ := bob.securityPage(); !strings.Contains(banner(res), "Safari on iPhone") {
		t.Fatal("bob's banner lost his phone")
	}
}

// TestThisWasMeMailClearsTheBanner: the alert mail's "This was me" and the
// banner keep the same record: once the mail says a sign-in was the
// person's, the banner no longer names it.
func TestThisWasMeMailClearsTheBanner(t *testing.T) {
	app := newTestApp(t)
	desktop := app.client(uaWindowsChrome, ipBerlin)
	desktop.signup("alice@example.com", pw)
	app.mail("alice@example.com", "Confirm your email")
	app.advance(time.Minute)
	app.client(uaMacFirefox, ipTokyo).login("alice@example.com", pw)
	if res, _ := desktop.securityPage(); !strings.Contains(banner(res), "Firefox on macOS") {
		t.Fatalf("no banner for the new sign-in:\n%s", res.body)
	}
	m := app.mail("alice@example.com", "New sign-in")
	known := app.link(m, "/sign-in/known")
	reader := app.client(uaIPhone, ipLondon)
	reader.follow(known)
	expectBody(t, reader.post("/sign-in/known", url.Values{"token": {linkToken(t, known)}}), "will remember Firefox on macOS")
	if res, _ := desktop.securityPage(); banner(res) != "" {
		t.Fatalf("the banner still names a sign-in the mail said was yours:\n%s", banner(res))
	}
}

// hhmm is the test clock's time as an ended tab is told it ("at 14:05 UTC").
func hhmm(app *testApp) string { return app.clock().UTC().Format("15:04 UTC") }

// TestEndedTabIsToldByWhom: the tab of an ended session is told when and
// from which of the account's devices, and never names another account's
// device, even if the ending recorded one (the store is the only way to
// write that).
func TestEndedTabIsToldByWhom(t *testing.T) {
	app := newTestApp(t)
	desktop, phone, tablet := app.client(uaWindowsChrome, ipBerlin), app.client(uaIPhone, ipLondon), app.client(uaMacFirefox, ipTokyo)
	desktop.signup("alice@example.com", pw)
	phone.login("alice@example.com", pw)
	tablet.login("alice@example.com", pw)
	bob := app.client(uaMacFirefox, ipBerlin)
	bob.signup("bob@example.com", pw)
	alice, err := app.store.UserByEmail(t.Context(), "alice@example.com")
	if err != nil {
		t.Fatal(err)
	}
	// "Not you?" on the desktop ends the phone's session.
	app.advance(time.Minute)
	phoneID := phone.currentID()
	expectRedirect(t, desktop.post("/settings/security/sessions/"+phoneID+"/not-you", url.Values{
		"current_password": {pw}, "new_password": {"a brand new password"}}), "/settings/security")
	told := "You were signed out of this device at " + hhmm(app) + " from Chrome on Windows (Berlin): it was reported as not yours."
	// The tab's script, its stream refused, re-reads its page in the
	// background: sent to sign in, it finds the notice there, and leaves
	// it for the next page.
	refresh := func(path string) *response {
		req, _ := http.NewRequest(http.MethodGet, app.srv.URL+path, nil)
		req.Header.Set("X-Doorman-Refresh", "1")
		return phone.do(req)
	}
	expectRedirect(t, refresh("/settings/security"), "/login?next=%2Fsettings%2Fsecurity")
	expectBody(t, refresh("/login?next=%2Fsettings%2Fsecurity"), told)
	expectBody(t, phone.get("/login"), told)
	expectNoBody(t, phone.get("/login"), told)

	// An ending that names bob's session as its ender: the tab hears no name.
	tabletID := tablet.currentID()
	if _, err := app.store.RevokeSession(t.Context(), alice.ID, tabletID, "revoked", bob.currentID(), app.clock()); err != nil {
		t.Fatal(err)
	}
	res := tablet.get("/login")
	expectBody(t, res, "You were signed out of this device at "+hhmm(app)+".")
	expectNoBody(t, res, "Firefox on macOS (Berlin)", "from ")
}

// TestNewSignInInTheSameSecond: a sign-in in the same second as this
// device's own (the store keeps whole seconds) is called out on both,
// rather than on neither.
func TestNewSignInInTheSameSecond(t *testing.T) {
	app := newTestApp(t)
	desktop, phone := app.client(uaWindowsChrome, ipBerlin), app.client(uaIPhone, ipLondon)
	desktop.signup("alice@example.com", pw)
	phone.login("alice@example.com", pw)
	if res, _ := desktop.securityPage(); !strings.Contains(banner(res), ">Safari on iPhone</a>") {
		t.Fatalf("the desktop is not told of a sign-in in its own second:\n%s", banner(res))
	}
	if res, _ := phone.securityPage(); !strings.Contains(banner(res), ">Chrome on Windows</a>") {
		t.Fatalf("the phone is not told of a sign-in in its own second:\n%s", banner(res))
	}
}
