package handlers_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"doorman/handlers"
)

func TestHealthz(t *testing.T) {
	app := newTestApp(t)
	res := app.client("", "").get("/healthz")
	expectStatus(t, res, http.StatusOK)
}

func TestSignupSigninSignout(t *testing.T) {
	app := newTestApp(t)
	c := app.client(uaWindowsChrome, ipBerlin)

	// Signed out: settings pages send you to sign in and remember where.
	expectRedirect(t, c.get("/settings/security"), "/login?next=%2Fsettings%2Fsecurity")
	expectRedirect(t, c.get("/settings"), "/login?next=%2Fsettings")

	res := c.get("/signup")
	expectStatus(t, res, http.StatusOK)
	expectBody(t, res, `name="email"`, `name="password"`, `name="csrf"`)

	c.signup("  Alice@Example.com ", "correct horse")
	res, rows := c.securityPage()
	expectBody(t, res, "<h2 id=\"sessions-heading\">Where you're signed in</h2>", "alice@example.com", "Welcome to Doorman")
	if len(rows) != 1 || !rows[0].Current {
		t.Fatalf("after sign-up: rows %+v, want just the current one", rows)
	}
	expectBody(t, res, "Chrome on Windows", "Berlin, Germany", "This device", "Active now", `action="/logout"`)

	// Sign out ends the session on the server: the old cookie is refused.
	cookie := c.sessionCookie()
	expectRedirect(t, c.post("/logout", nil), "/login")
	if c.sessionCookie() != "" {
		t.Fatal("session cookie not deleted on sign-out")
	}
	res = c.get("/login")
	expectBody(t, res, "You signed out.")
	replay := app.client(uaWindowsChrome, ipBerlin)
	replay.jar.SetCookies(mustURL(app.srv.URL), []*http.Cookie{{Name: "doorman_session", Value: cookie}})
	expectRedirect(t, replay.get("/settings/security"), "/login?next=%2Fsettings%2Fsecurity")

	// Sign in again, with the email typed differently; next= is honoured.
	res = c.post("/login", url.Values{"email": {"ALICE@example.com"}, "password": {"correct horse"}, "next": {"/settings"}})
	expectRedirect(t, res, "/settings")
	if c.sessionCookie() == "" || c.sessionCookie() == cookie {
		t.Fatal("sign-in did not issue a new session secret")
	}
	res = c.get("/settings")
	expectStatus(t, res, http.StatusOK)
	expectBody(t, res, "alice@example.com", "Member since", "Signed in on 1 device")
}

func TestSignupValidation(t *testing.T) {
	app := newTestApp(t)
	app.client(uaWindowsChrome, ipBerlin).signup("alice@example.com", "correct horse")
	cases := []struct {
		email, password string
		want            string
	}{
		{"", "correct horse", "Enter your email address."},
		{"not-an-email", "correct horse", "Enter an email address like name@example.com."},
		{"alice@localhost", "correct horse", "Enter an email address like name@example.com."},
		{"Alice <alice@example.com>", "correct horse", "Enter an email address like name@example.com."},
		{"аlice@example.com", "correct horse", "Enter an email address like name@example.com."}, // Cyrillic а
		{"bob@example.com", "short", "Use at least 8 characters."},
		{"bob@example.com", "", "Enter your password."},
		{"bob@example.com", strings.Repeat("x", 1025), "Use at most 1024 characters."},
		{"ALICE@example.com", "correct horse", "An account with this email already exists."},
	}
	for _, tc := range cases {
		c := app.client(uaWindowsChrome, ipBerlin)
		res := c.post("/signup", url.Values{"email": {tc.email}, "password": {tc.password}})
		expectStatus(t, res, http.StatusUnprocessableEntity)
		expectBody(t, res, tc.want, `aria-invalid="true"`)
		if c.sessionCookie() != "" {
			t.Errorf("signup %q: a failed sign-up set a session cookie", tc.email)
		}
	}
}

func TestLoginFailuresSayOnlyIncorrect(t *testing.T) {
	app := newTestApp(t)
	app.client(uaWindowsChrome, ipBerlin).signup("alice@example.com", "correct horse")
	for _, tc := range []struct{ email, password string }{
		{"alice@example.com", "wrong password"},
		{"nobody@example.com", "correct horse"},
		{"not-an-email", "correct horse"},
	} {
		c := app.client(uaWindowsChrome, ipBerlin)
		res := c.post("/login", url.Values{"email": {tc.email}, "password": {tc.password}})
		expectStatus(t, res, http.StatusUnauthorized)
		expectBody(t, res, "Incorrect email or password", `name="email"`)
		expectNoBody(t, res, "no account", "not found", "wrong password")
		if c.sessionCookie() != "" {
			t.Errorf("%s: failed sign-in set a session cookie", tc.email)
		}
	}
	// Empty fields are a form error, not a failed sign-in.
	res := app.client(uaWindowsChrome, ipBerlin).post("/login", url.Values{"email": {""}, "password": {""}})
	expectStatus(t, res, http.StatusUnprocessableEntity)
	expectBody(t, res, "Enter your email address.", "Enter your password.")
}

func TestNextNeverLeavesTheSite(t *testing.T) {
	app := newTestApp(t)
	app.client(uaWindowsChrome, ipBerlin).signup("alice@example.com", "correct horse")
	for next, want := range map[string]string{
		"/settings":                "/settings",
		"/settings?x=1":            "/settings?x=1",
		"https://evil.example/":    "/settings/security",
		"//evil.example/":          "/settings/security",
		"/\\evil.example":          "/settings/security",
		"javascript:alert(1)":      "/settings/security",
		"/\r\nLocation: http://x/": "/settings/security",
		"settings":                 "/settings/security",
	} {
		c := app.client(uaWindowsChrome, ipBerlin)
		res := c.post("/login", url.Values{"email": {"alice@example.com"}, "password": {"correct horse"}, "next": {next}})
		expectRedirect(t, res, want)
	}
}

func TestListShowsEverySessionWithLabels(t *testing.T) {
	app := newTestApp(t)
	desktop := app.client(uaWindowsChrome, ipBerlin)
	phone := app.client(uaIPhone, ipLondon)
	laptop := app.client(uaMacFirefox, ipTokyo)
	desktop.signup("alice@example.com", "correct horse")
	app.advance(5 * time.Minute)
	phoneSignedIn := app.clock()
	phone.login("alice@example.com", "correct horse")
	app.advance(2 * time.Hour)
	laptop.login("alice@example.com", "correct horse")
	app.advance(time.Minute)

	res, rows := desktop.securityPage()
	if len(rows) != 3 {
		t.Fatalf("desktop sees %d sessions, want 3", len(rows))
	}
	if !rows[0].Current {
		t.Fatal("current session is not listed first")
	}
	want := []struct{ device, place, lastActive string }{
		{"Chrome on Windows", "Berlin, Germany", "Active now"},
		{"Firefox on macOS", "Tokyo, Japan", "1 minute ago"},
		{"Safari on iPhone", "London, England, United Kingdom", "2 hours ago"},
	}
	for i, w := range want {
		for _, s := range []string{w.device, w.place, w.lastActive} {
			if !strings.Contains(rows[i].HTML, s) {
				t.Errorf("row %d lacks %q:\n%s", i, s, rows[i].HTML)
			}
		}
	}
	// Every other row has an X button named after the session; the current
	// one has none.
	if strings.Contains(rows[0].HTML, "/revoke") {
		t.Error("the current session has an X button")
	}
	expectBody(t, res, `aria-label="Sign out Safari on iPhone, London"`, `aria-label="Sign out Firefox on macOS, Tokyo"`,
		`<time datetime="`+phoneSignedIn.UTC().Format(time.RFC3339)+`"`, "Sign out all other sessions", "2 other sessions will be signed out")
	if strings.Count(res.body, `/revoke"`) != 2 {
		t.Errorf("want 2 X buttons")
	}

	// The phone sees itself as current.
	_, rows = phone.securityPage()
	if len(rows) != 3 || !rows[0].Current || !strings.Contains(rows[0].HTML, "Safari on iPhone") {
		t.Fatalf("phone's view: %+v", rows)
	}

	// Details page.
	res = desktop.get("/settings/security/sessions/" + rows[0].ID)
	expectStatus(t, res, http.StatusOK)
	expectBody(t, res, "Safari on iPhone", ipLondon, "London, England, United Kingdom", "iPhone OS 17_5",
		"Signed in", "Last active", "Signs out if unused", ", unless it is used before then",
		"Signs out at the latest", ", however often it is used", "Sign out this session")
}

func TestRevokeOne(t *testing.T) {
	app := newTestApp(t)
	desktop := app.client(uaWindowsChrome, ipBerlin)
	phone := app.client(uaIPhone, ipLondon)
	desktop.signup("alice@example.com", "correct horse")
	phone.login("alice@example.com", "correct horse")
	phoneID := phone.currentID()

	res := desktop.post("/settings/security/sessions/"+phoneID+"/revoke", nil)
	expectRedirect(t, res, "/settings/security")
	res, rows := desktop.securityPage()
	expectBody(t, res, "Signed out Safari on iPhone")
	if len(rows) != 1 || !rows[0].Current {
		t.Fatalf("after revoke: %+v", rows)
	}

	// The phone's very next request is refused, and it is told why.
	res = phone.get("/settings/security")
	expectRedirect(t, res, "/login?next=%2Fsettings%2Fsecurity")
	if phone.sessionCookie() != "" {
		t.Error("revoked cookie not cleared")
	}
	res = phone.get("/login?next=%2Fsettings%2Fsecurity")
	expectStatus(t, res, http.StatusOK)
	expectBody(t, res, "You were signed out of this device.")
	// The notice is shown once.
	expectNoBody(t, phone.get("/login"), "You were signed out of this device.")

	// Revoking it again is a 404.
	expectStatus(t, desktop.post("/settings/security/sessions/"+phoneID+"/revoke", nil), http.StatusNotFound)
	if !strings.Contains(app.logs.String(), "session revoked") || !strings.Contains(app.logs.String(), phoneID) {
		t.Error("revocation not logged with the public id")
	}
}

// TestSignInStraightAfterBeingSignedOut: a browser whose session was ended
// elsewhere posts the sign-in form without loading a page first (its old
// cookie still attached). It must get a working new session.
func TestSignInStraightAfterBeingSignedOut(t *testing.T) {
	app := newTestApp(t)
	desktop, phone := app.client(uaWindowsChrome, ipBerlin), app.client(uaIPhone, ipLondon)
	desktop.signup("alice@example.com", "correct horse")
	phone.login("alice@example.com", "correct horse")
	old := phone.sessionCookie()
	expectRedirect(t, desktop.post("/settings/security/sessions/"+phone.currentID()+"/revoke", nil), "/settings/security")

	res := phone.post("/login", url.Values{"email": {"alice@example.com"}, "password": {"correct horse"}})
	expectRedirect(t, res, "/settings/security")
	if n := strings.Count(strings.Join(res.Header.Values("Set-Cookie"), "\n"), "doorman_session="); n != 1 {
		t.Fatalf("%d session Set-Cookie headers, want exactly 1", n)
	}
	if phone.sessionCookie() == "" || phone.sessionCookie() == old {
		t.Fatal("no new session cookie")
	}
	res, rows := phone.securityPage()
	expectNoBody(t, res, "You were signed out of this device.")
	if len(rows) != 2 || !rows[0].Current || !strings.Contains(rows[0].HTML, "Safari on iPhone") {
		t.Fatalf("after signing in again: %+v", rows)
	}
}

func TestRevokeOthersKeepsCurrent(t *testing.T) {
	app := newTestApp(t)
	clients := []*client{app.client(uaWindowsChrome, ipBerlin), app.client(uaIPhone, ipLondon), app.client(uaMacFirefox, ipTokyo)}
	clients[0].signup("alice@example.com", "correct horse")
	for _, c := range clients[1:] {
		c.login("alice@example.com", "correct horse")
	}
	bob := app.client(uaWindowsChrome, ipBerlin)
	bob.signup("bob@example.com", "bob's password")

	// The no-JS confirm page lists what will end.
	res := clients[0].get("/settings/security/sessions/revoke-others")
	expectStatus(t, res, http.StatusOK)
	expectBody(t, res, "Sign out all other sessions?", "2 other sessions will be signed out", "Safari on iPhone", "Firefox on macOS")
	// The Security page's dialog names them too (newest first), and says
	// this device stays.
	expectBody(t, clients[0].get("/settings/security"),
		"2 other sessions will be signed out: Firefox on macOS in Tokyo, Japan and Safari on iPhone in London, England, United Kingdom. This device stays signed in.")

	expectRedirect(t, clients[0].post("/settings/security/sessions/revoke-others", nil), "/settings/security")
	res, rows := clients[0].securityPage()
	expectBody(t, res, "Signed out 2 other sessions.")
	expectNoBody(t, res, "Sign out all other sessions<")
	if len(rows) != 1 || !rows[0].Current {
		t.Fatalf("after revoke-others: %+v", rows)
	}
	for _, c := range clients[1:] {
		expectRedirect(t, c.get("/settings"), "/login?next=%2Fsettings")
	}
	// Bob was not touched.
	if _, rows := bob.securityPage(); len(rows) != 1 {
		t.Fatalf("bob's sessions: %+v", rows)
	}
	// Nothing left to end: the confirm page says so.
	expectBody(t, clients[0].get("/settings/security/sessions/revoke-others"), "No other sessions")
}

func TestRevokeAllEndsEverySession(t *testing.T) {
	app := newTestApp(t)
	desktop, phone := app.client(uaWindowsChrome, ipBerlin), app.client(uaIPhone, ipLondon)
	desktop.signup("alice@example.com", "correct horse")
	phone.login("alice@example.com", "correct horse")

	res := desktop.get("/settings/security/sessions/revoke-all")
	expectBody(t, res, "Sign out everywhere?", "All 2 sessions, including this device")
	expectRedirect(t, desktop.post("/settings/security/sessions/revoke-all", nil), "/login")
	if desktop.sessionCookie() != "" {
		t.Error("cookie not cleared after revoke-all")
	}
	expectBody(t, desktop.get("/login"), "You signed out everywhere: 2 sessions ended.")
	expectRedirect(t, desktop.get("/settings"), "/login?next=%2Fsettings")
	expectRedirect(t, phone.get("/settings"), "/login?next=%2Fsettings")
}

func TestAnotherUsersSessionIs404(t *testing.T) {
	app := newTestApp(t)
	alice, bob := app.client(uaWindowsChrome, ipBerlin), app.client(uaIPhone, ipLondon)
	alice.signup("alice@example.com", "correct horse")
	bob.signup("bob@example.com", "bob's password")
	aliceID := alice.currentID()
	before := app.dump()

	for _, path := range []string{"/settings/security/sessions/" + aliceID, "/settings/security/sessions/aaaaaaaaaaaaaaaa",
		"/settings/security/sessions/not-an-id", "/settings/security/sessions/%27%20OR%201=1--"} {
		res := bob.get(path)
		expectStatus(t, res, http.StatusNotFound)
		expectBody(t, res, "There is no such session", "Sign out") // inside the layout
	}
	for _, id := range []string{aliceID, "aaaaaaaaaaaaaaaa", "x"} {
		expectStatus(t, bob.post("/settings/security/sessions/"+id+"/revoke", nil), http.StatusNotFound)
	}
	if after := app.dump(); after != before {
		t.Fatalf("database changed:\n%s\nvs\n%s", before, after)
	}
	if _, rows := alice.securityPage(); len(rows) != 1 {
		t.Fatal("alice lost her session")
	}
}

func TestCrossSitePostsAreRefused(t *testing.T) {
	app := newTestApp(t)
	alice, phone := app.client(uaWindowsChrome, ipBerlin), app.client(uaIPhone, ipLondon)
	alice.signup("alice@example.com", "correct horse")
	phone.login("alice@example.com", "correct horse")
	phoneID := phone.currentID()
	alice.get("/settings/security")
	before := app.dump()

	cases := []struct {
		name    string
		form    url.Values
		headers []string
	}{
		{"Sec-Fetch-Site cross-site, valid token", nil, []string{"Sec-Fetch-Site", "cross-site"}},
		{"Sec-Fetch-Site same-site, valid token", nil, []string{"Sec-Fetch-Site", "same-site"}},
		{"foreign Origin, valid token", nil, []string{"Origin", "https://evil.example"}},
		{"null Origin, valid token", nil, []string{"Origin", "null"}},
		{"no token", url.Values{"csrf": {""}}, nil},
		{"wrong token", url.Values{"csrf": {strings.Repeat("A", 43)}}, nil},
	}
	for _, tc := range cases {
		for _, path := range []string{"/settings/security/sessions/" + phoneID + "/revoke", "/settings/security/sessions/revoke-others",
			"/settings/security/sessions/revoke-all", "/logout"} {
			form := url.Values{}
			for k, v := range tc.form {
				form[k] = v
			}
			res := alice.post(path, form, tc.headers...)
			if res.StatusCode != http.StatusForbidden {
				t.Errorf("%s: POST %s = %d, want 403", tc.name, path, res.StatusCode)
			}
		}
	}
	if after := app.dump(); after != before {
		t.Fatalf("a refused POST changed the database:\n%s\nvs\n%s", before, after)
	}
	// Same-origin with the token works.
	expectRedirect(t, alice.post("/settings/security/sessions/"+phoneID+"/revoke", nil, "Sec-Fetch-Site", "same-origin", "Origin", app.srv.URL), "/settings/security")
}

func TestForgedCookiesAreSignedOut(t *testing.T) {
	app := newTestApp(t)
	alice := app.client(uaWindowsChrome, ipBerlin)
	alice.signup("alice@example.com", "correct horse")
	id, _, _ := strings.Cut(alice.sessionCookie(), ".")
	_, realSecret, _ := strings.Cut(alice.sessionCookie(), ".")
	other := app.client(uaWindowsChrome, ipBerlin)
	other.signup("bob@example.com", "bob's password")
	_, bobSecret, _ := strings.Cut(other.sessionCookie(), ".")

	// The id of a live session with another secret is signed out too, but
	// its cookie is not deleted: that is also what a request looks like
	// that left before another tab rotated the secret, and deleting it
	// would delete that tab's new cookie (TestStaleCookieAfterRotation).
	liveID := map[string]bool{id + "." + bobSecret: true, id + "." + strings.Repeat("A", len(realSecret)): true}
	for _, v := range []string{
		"garbage", "", strings.Repeat("a", 5000), id, id + ".", id + "." + bobSecret, // right id, someone else's secret
		id + "." + strings.Repeat("A", len(realSecret)), "aaaaaaaaaaaaaaaa." + realSecret, "' OR 1=1 --", "<script>alert(1)</script>",
	} {
		c := app.client(uaWindowsChrome, ipBerlin)
		c.jar.SetCookies(mustURL(app.srv.URL), []*http.Cookie{{Name: "doorman_session", Value: v}})
		res := c.get("/settings/security")
		expectRedirect(t, res, "/login?next=%2Fsettings%2Fsecurity")
		if cleared := c.sessionCookie() == ""; cleared == liveID[v] {
			t.Errorf("cookie %q: cleared %v, want %v", v, cleared, !liveID[v])
		}
		res = c.get("/login")
		expectStatus(t, res, http.StatusOK)
		expectNoBody(t, res, "You were signed out of this device.")
	}
	if _, rows := alice.securityPage(); len(rows) != 1 {
		t.Fatal("alice's session was disturbed")
	}
}

func TestSessionTimeouts(t *testing.T) {
	app := newTestApp(t, func(c *handlers.Config) {
		c.IdleTimeout, c.AbsoluteLifetime, c.IdleExtendEvery = 2*time.Hour, 5*time.Hour, 30*time.Minute
	})
	c := app.client(uaWindowsChrome, ipBerlin)
	c.signup("alice@example.com", "correct horse")

	// Activity keeps it alive past the idle timeout (2 h)...
	for range 3 {
		app.advance(90 * time.Minute)
		expectStatus(t, c.get("/settings"), http.StatusOK)
	}
	// ...but not past the absolute lifetime: at 5.5 h it is over.
	app.advance(time.Hour)
	expectRedirect(t, c.get("/settings"), "/login?next=%2Fsettings")
	expectBody(t, c.get("/login"), "Your session expired. Please sign in again.")

	// Unused for the idle timeout: over, even well inside the lifetime.
	idle := app.client(uaIPhone, ipLondon)
	idle.login("alice@example.com", "correct horse")
	app.advance(119 * time.Minute)
	expectStatus(t, idle.get("/settings"), http.StatusOK) // this use extends it to +2 h
	app.advance(2 * time.Hour)
	expectRedirect(t, idle.get("/settings"), "/login?next=%2Fsettings")
	if !strings.Contains(app.logs.String(), "session expired") {
		t.Error("expiry not logged")
	}
}

func TestActivityIsWrittenAtMostOncePerMinute(t *testing.T) {
	app := newTestApp(t)
	c := app.client(uaWindowsChrome, ipBerlin)
	c.signup("alice@example.com", "correct horse")
	id := c.currentID()
	seen := func() time.Time {
		s, _, err := app.store.SessionWithUser(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		return s.LastSeenAt
	}
	start := seen()
	for range 5 {
		app.advance(10 * time.Second)
		c.get("/settings")
	}
	if got := seen(); !got.Equal(start) {
		t.Fatalf("last activity written within the first minute: %v -> %v", start, got)
	}
	app.advance(20 * time.Second) // 70 s after sign-in
	c.get("/settings")
	if got, want := seen(), start.Add(70*time.Second); !got.Equal(want) {
		t.Fatalf("last activity = %v, want %v", got, want)
	}
	// A move to another network is recorded with the next write.
	c.ip = ipTokyo
	app.advance(time.Minute)
	c.get("/settings")
	s, _, _ := app.store.SessionWithUser(t.Context(), id)
	if s.IP != ipTokyo || s.Location != "Tokyo, Japan" {
		t.Fatalf("after moving: ip %s, location %s", s.IP, s.Location)
	}
}

func mustURL(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return u
}

// TestNewSignInIsCalledOut: a sign-in elsewhere in the last day is announced
// on the Security page of the older sessions (S18), and not after a day.
func TestNewSignInIsCalledOut(t *testing.T) {
	app := newTestApp(t)
	desktop, phone := app.client(uaWindowsChrome, ipBerlin), app.client(uaIPhone, ipLondon)
	desktop.signup("alice@example.com", "correct horse")
	app.advance(time.Hour)
	phone.login("alice@example.com", "correct horse")
	app.advance(5 * time.Minute)
	res, _ := desktop.securityPage()
	expectBody(t, res, "New sign-in: Safari on iPhone, London, England, United Kingdom, <time", "5 minutes ago</time>. Not you?")
	// The newer session is not told about the older one.
	res, _ = phone.securityPage()
	expectNoBody(t, res, "New sign-in")
	app.advance(24 * time.Hour)
	res, _ = desktop.securityPage()
	expectNoBody(t, res, "New sign-in")
}
