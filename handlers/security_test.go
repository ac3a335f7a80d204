package handlers_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"doorman/handlers"
	"doorman/operator"
)

const pw = "correct horse"

// outsideSudo moves the clock past the sudo window.
func (a *testApp) outsideSudo() { a.advance(a.cfg.SudoWindow + time.Second) }

func TestSudoModeForEndingSessions(t *testing.T) {
	app := newTestApp(t)
	desktop, phone, laptop := app.client(uaWindowsChrome, ipBerlin), app.client(uaIPhone, ipLondon), app.client(uaMacFirefox, ipTokyo)
	desktop.signup("alice@example.com", pw)
	phone.login("alice@example.com", pw)
	laptop.login("alice@example.com", pw)
	phoneID := phone.currentID()

	// Inside the window (just signed in): no password field.
	res, _ := desktop.securityPage()
	expectNoBody(t, res, `name="password"`)

	app.outsideSudo()
	res, _ = desktop.securityPage()
	expectBody(t, res, `id="revoke-others-dialog-password" name="password" type="password"`, `id="revoke-all-dialog-password"`)
	expectBody(t, desktop.get("/settings/security/sessions/revoke-others"), `name="password"`, "Your password")

	before := app.dump()
	// No password: refused, the confirm page asks for it.
	res = desktop.post("/settings/security/sessions/revoke-others", nil)
	expectStatus(t, res, http.StatusForbidden)
	expectBody(t, res, "Enter your password to continue.", `aria-invalid="true"`)
	res = desktop.post("/settings/security/sessions/"+phoneID+"/revoke", nil)
	expectStatus(t, res, http.StatusForbidden)
	expectBody(t, res, "Sign out Safari on iPhone?", "Enter your password to continue.")
	if after := app.dump(); after != before {
		t.Fatalf("a refused action changed the database:\n%s\nvs\n%s", before, after)
	}
	// Wrong password: refused, counted as a failure of this session's.
	res = desktop.post("/settings/security/sessions/revoke-all", url.Values{"password": {"wrong password"}})
	expectStatus(t, res, http.StatusUnprocessableEntity)
	expectBody(t, res, "Incorrect password.")
	if n := strings.Count(app.dump(), "session:"+desktop.currentID()); n != 1 {
		t.Fatalf("%d failures recorded for the session, want 1", n)
	}
	for _, c := range []*client{desktop, phone, laptop} {
		expectStatus(t, c.get("/settings"), http.StatusOK)
	}

	// Right password: the X works, and the session is rotated (S3): the
	// cookie from before the re-authentication is refused.
	oldCookie := desktop.sessionCookie()
	expectRedirect(t, desktop.post("/settings/security/sessions/"+phoneID+"/revoke", url.Values{"password": {pw}}), "/settings/security")
	if desktop.sessionCookie() == oldCookie || !strings.HasPrefix(desktop.sessionCookie(), strings.Split(oldCookie, ".")[0]+".") {
		t.Fatal("re-authentication did not rotate the secret (keeping the public id)")
	}
	replay := app.client(uaWindowsChrome, ipBerlin)
	replay.jar.SetCookies(mustURL(app.srv.URL), []*http.Cookie{{Name: "doorman_session", Value: oldCookie}})
	expectRedirect(t, replay.get("/settings"), "/login?next=%2Fsettings")
	expectRedirect(t, phone.get("/settings"), "/login?next=%2Fsettings")
	if !strings.Contains(app.logs.String(), "session rotated") {
		t.Error("rotation not logged")
	}

	// A new window: the next action needs no password.
	res, _ = desktop.securityPage()
	expectNoBody(t, res, `name="password"`)
	expectRedirect(t, desktop.post("/settings/security/sessions/revoke-others", nil), "/settings/security")
	expectRedirect(t, laptop.get("/settings"), "/login?next=%2Fsettings")
}

func TestWrongPasswordsAreThrottledPerAccount(t *testing.T) {
	app := newTestApp(t)
	desktop := app.client(uaWindowsChrome, ipBerlin)
	desktop.signup("alice@example.com", pw)
	app.client(uaWindowsChrome, ipBerlin).signup("bob@example.com", "bob's password")
	app.outsideSudo()

	// Failures from several addresses: the account limit is per email.
	for i := range app.cfg.AccountFailureLimit {
		c := app.client(uaWindowsChrome, "81.2.69."+strconv.Itoa(i))
		expectStatus(t, c.post("/login", url.Values{"email": {"alice@example.com"}, "password": {"nope nope"}}), http.StatusUnauthorized)
	}
	// Now even the right password waits, with a Retry-After and a message
	// that says nothing about why.
	c := app.client(uaIPhone, ipLondon)
	res := c.post("/login", url.Values{"email": {"alice@example.com"}, "password": {pw}})
	expectStatus(t, res, http.StatusTooManyRequests)
	expectBody(t, res, "Too many attempts. Please wait 15 minutes and try again.")
	if ra, _ := strconv.Atoi(res.Header.Get("Retry-After")); ra < 60 || ra > 900 {
		t.Errorf("Retry-After %q", res.Header.Get("Retry-After"))
	}
	if c.sessionCookie() != "" {
		t.Fatal("a throttled sign-in set a cookie")
	}
	// But the owner is not locked out by them (the review's "lockout as a
	// weapon"): their live session re-enters the password as usual, and
	// their browser, which carries a device cookie from its sign-up, signs
	// in. Bob is not affected either.
	expectRedirect(t, desktop.post("/settings/security/sessions/revoke-others", url.Values{"password": {pw}}), "/settings/security")
	desktop.post("/logout", nil)
	desktop.login("alice@example.com", pw)
	app.client(uaIPhone, ipLondon).login("bob@example.com", "bob's password")

	// The count lives in the database: a restarted server still refuses.
	app.start()
	expectStatus(t, app.client(uaIPhone, ipLondon).post("/login", url.Values{"email": {"alice@example.com"}, "password": {pw}}), http.StatusTooManyRequests)

	// An unknown email is limited exactly the same way (no account oracle).
	for range app.cfg.AccountFailureLimit {
		expectStatus(t, app.client(uaIPhone, "81.2.69.99").post("/login", url.Values{"email": {"ghost@example.com"}, "password": {"x"}}), http.StatusUnauthorized)
	}
	res = app.client(uaIPhone, ipTokyo).post("/login", url.Values{"email": {"ghost@example.com"}, "password": {"x"}})
	expectStatus(t, res, http.StatusTooManyRequests)

	// After the window, the right password works again.
	app.advance(app.cfg.FailureWindow)
	app.client(uaIPhone, ipLondon).login("alice@example.com", pw)
}

func TestSignInsAreThrottledPerIP(t *testing.T) {
	app := newTestApp(t, func(c *handlers.Config) { c.IPFailureLimit = 3 })
	app.client(uaWindowsChrome, ipTokyo).signup("alice@example.com", pw) // one sign-up from Tokyo
	for _, email := range []string{"a@example.com", "b@example.com", "c@example.com"} {
		expectStatus(t, app.client(uaWindowsChrome, ipBerlin).post("/login", url.Values{"email": {email}, "password": {"x"}}), http.StatusUnauthorized)
	}
	res := app.client(uaWindowsChrome, ipBerlin).post("/login", url.Values{"email": {"alice@example.com"}, "password": {pw}})
	expectStatus(t, res, http.StatusTooManyRequests)
	expectBody(t, res, "Too many attempts.")
	res = app.client(uaWindowsChrome, ipBerlin).post("/signup", url.Values{"email": {"new@example.com"}, "password": {pw}})
	expectStatus(t, res, http.StatusTooManyRequests)
	// Another address is not affected.
	app.client(uaWindowsChrome, ipLondon).login("alice@example.com", pw)
}

func TestPasswordChange(t *testing.T) {
	app := newTestApp(t)
	desktop, phone, laptop := app.client(uaWindowsChrome, ipBerlin), app.client(uaIPhone, ipLondon), app.client(uaMacFirefox, ipTokyo)
	desktop.signup("alice@example.com", pw)
	phone.login("alice@example.com", pw)

	res := desktop.get("/settings/security/password")
	expectStatus(t, res, http.StatusOK)
	expectBody(t, res, `name="current_password"`, `name="new_password"`, `name="sign_out_others" type="checkbox" value="on" aria-describedby="sign_out_others-list" checked`,
		"Sign out of all other sessions", "Safari on iPhone", "London, England, United Kingdom")

	before := app.dump()
	for _, tc := range []struct {
		form url.Values
		code int
		want string
	}{
		{url.Values{"current_password": {"wrong password"}, "new_password": {"new password!"}}, http.StatusUnprocessableEntity, "Incorrect password."},
		{url.Values{"current_password": {pw}, "new_password": {"short"}}, http.StatusUnprocessableEntity, "Use at least 8 characters."},
		{url.Values{"current_password": {pw}, "new_password": {pw}}, http.StatusUnprocessableEntity, "Choose a password different from the current one."},
		{url.Values{"new_password": {"new password!"}}, http.StatusUnprocessableEntity, "Enter your current password."},
	} {
		res := desktop.post("/settings/security/password", tc.form)
		expectStatus(t, res, tc.code)
		expectBody(t, res, tc.want)
	}
	if after := app.dump(); !sameExceptFailures(before, after) {
		t.Fatalf("a refused change changed the database:\n%s\nvs\n%s", before, after)
	}

	// Unticked: the other session stays.
	oldCookie := desktop.sessionCookie()
	expectRedirect(t, desktop.post("/settings/security/password", url.Values{"current_password": {pw}, "new_password": {"second password"}}), "/settings/security")
	expectBody(t, desktop.get("/settings/security"), "Password changed.")
	expectStatus(t, phone.get("/settings"), http.StatusOK)
	if desktop.sessionCookie() == oldCookie {
		t.Fatal("current session not rotated on password change")
	}
	// Ticked (the default in the form): every other session ends, this one stays.
	laptop.login("alice@example.com", "second password")
	expectRedirect(t, desktop.post("/settings/security/password", url.Values{"current_password": {"second password"}, "new_password": {"third password"}, "sign_out_others": {"on"}}), "/settings/security")
	expectBody(t, desktop.get("/settings/security"), "Password changed. Signed out 2 other sessions.")
	for _, c := range []*client{phone, laptop} {
		expectRedirect(t, c.get("/settings"), "/login?next=%2Fsettings")
	}
	expectStatus(t, app.client(uaIPhone, ipLondon).post("/login", url.Values{"email": {"alice@example.com"}, "password": {pw}}), http.StatusUnauthorized)
	app.client(uaIPhone, ipLondon).login("alice@example.com", "third password")
}

// sameExceptFailures compares two dumps ignoring login_failures rows (a
// wrong password is supposed to be counted).
func sameExceptFailures(a, b string) bool {
	strip := func(s string) string {
		i, j := strings.Index(s, "# login_failures"), strings.Index(s, "# app_secrets")
		if i < 0 || j < 0 {
			i, j = 0, 0
		}
		s = s[:i] + s[j:]
		// The history's record of failed attempts goes with them.
		var kept []string
		for _, line := range strings.Split(s, "\n") {
			if !strings.Contains(line, "sign_in_failed") && !strings.Contains(line, "two_factor_failed") {
				kept = append(kept, line)
			}
		}
		return strings.Join(kept, "\n")
	}
	return strip(a) == strip(b)
}

func TestEmailChange(t *testing.T) {
	app := newTestApp(t)
	c := app.client(uaWindowsChrome, ipBerlin)
	c.signup("alice@example.com", pw)
	app.client(uaWindowsChrome, ipBerlin).signup("bob@example.com", pw)
	app.outsideSudo()

	res := c.get("/settings/account/email")
	expectBody(t, res, "alice@example.com", `name="email"`, `name="password"`)
	res = c.post("/settings/account/email", url.Values{"email": {"alice2@example.com"}})
	expectStatus(t, res, http.StatusForbidden)
	expectBody(t, res, "Enter your password to continue.")
	// An address another account uses gets the same answer as any other
	// (review finding 15): the holder is told by mail instead, with no
	// link, and the change can never complete.
	expectRedirect(t, c.post("/settings/account/email", url.Values{"email": {"Bob@Example.com"}, "password": {pw}}), "/settings")
	expectBody(t, c.get("/settings"), "We sent a link to bob@example.com. Your email stays alice@example.com")
	held := app.mail("bob@example.com", "Someone tried to move a Doorman account to your address")
	if held.Link("/email/confirm") != "" {
		t.Fatalf("the holder of a taken address got a confirm link:\n%s", held.Text)
	}
	app.mail("alice@example.com", "Someone asked to change your Doorman email address")
	res = c.post("/settings/account/email", url.Values{"email": {"not an email"}, "password": {pw}})
	expectStatus(t, res, http.StatusUnprocessableEntity)
	expectRedirect(t, c.post("/settings/account/email", url.Values{"email": {"alice2@example.com"}, "password": {pw}}), "/settings")
	// The change takes effect when the link mailed to the new address is
	// followed (in any browser: the link is the proof).
	expectBody(t, c.get("/settings"), "We sent a link to alice2@example.com. Your email stays alice@example.com")
	link := app.link(app.mail("alice2@example.com", "Confirm your new email"), "/email/confirm")
	expectStatus(t, app.client(uaWindowsChrome, ipBerlin).post("/login", url.Values{"email": {"alice2@example.com"}, "password": {pw}}), http.StatusUnauthorized)
	expectBody(t, c.follow(link), "Make <strong>alice2@example.com</strong> the address")
	expectRedirect(t, c.post("/email/confirm", url.Values{"token": {linkToken(t, link)}}), "/settings")
	expectBody(t, c.get("/settings"), "Your email is now alice2@example.com.", `data-email-status="verified"`)
	told := app.mail("alice@example.com", "email address was changed")
	if told.Link("/email/undo") == "" || !strings.Contains(told.Text, "alice2@example.com") {
		t.Fatalf("the old address was not told, with an undo link:\n%s", told.Text)
	}
	expectStatus(t, c.post("/email/confirm", url.Values{"token": {linkToken(t, link)}}), http.StatusGone)
	app.client(uaIPhone, ipLondon).login("alice2@example.com", pw)
	expectStatus(t, app.client(uaIPhone, ipLondon).post("/login", url.Values{"email": {"alice@example.com"}, "password": {pw}}), http.StatusUnauthorized)
}

func TestAccountDeletion(t *testing.T) {
	app := newTestApp(t)
	desktop, phone := app.client(uaWindowsChrome, ipBerlin), app.client(uaIPhone, ipLondon)
	desktop.signup("alice@example.com", pw)
	phone.login("alice@example.com", pw)
	bob := app.client(uaMacFirefox, ipTokyo)
	bob.signup("bob@example.com", pw)
	aliceIDs := []string{desktop.currentID(), phone.currentID()}
	app.outsideSudo()

	res := desktop.get("/settings/account/delete")
	expectBody(t, res, "Delete your account?", "Safari on iPhone", `name="password"`)
	expectStatus(t, desktop.post("/settings/account/delete", url.Values{"password": {"wrong password"}}), http.StatusUnprocessableEntity)
	expectStatus(t, desktop.get("/settings"), http.StatusOK)

	expectRedirect(t, desktop.post("/settings/account/delete", url.Values{"password": {pw}}), "/login")
	expectBody(t, desktop.get("/login"), "Your account was deleted and every session signed out.")
	for _, c := range []*client{desktop, phone} {
		expectRedirect(t, c.get("/settings"), "/login?next=%2Fsettings")
	}
	if dump := app.dump(); strings.Contains(dump, "alice@example.com") || strings.Contains(dump, aliceIDs[0]) || strings.Contains(dump, aliceIDs[1]) {
		t.Fatalf("alice's rows survived:\n%s", dump)
	}
	expectStatus(t, bob.get("/settings"), http.StatusOK)
	expectStatus(t, app.client(uaIPhone, ipLondon).post("/login", url.Values{"email": {"alice@example.com"}, "password": {pw}}), http.StatusUnauthorized)
}

func TestSessionLimit(t *testing.T) {
	app := newTestApp(t, func(c *handlers.Config) { c.MaxSessionsPerUser = 3 })
	first := app.client(uaWindowsChrome, ipBerlin)
	first.signup("alice@example.com", pw)
	var others []*client
	for _, ua := range []string{uaIPhone, uaMacFirefox} {
		app.advance(2 * time.Minute)
		c := app.client(ua, ipLondon)
		c.login("alice@example.com", pw)
		others = append(others, c)
	}
	app.advance(2 * time.Minute)
	expectStatus(t, others[0].get("/settings"), http.StatusOK) // first is now the least recently active
	app.advance(2 * time.Minute)
	fourth := app.client(uaIPhone, ipTokyo)
	fourth.login("alice@example.com", pw)
	res, rows := fourth.securityPage()
	if len(rows) != 3 {
		t.Fatalf("%d sessions, want 3", len(rows))
	}
	expectBody(t, res, "You were signed in on 3 devices, the most Doorman keeps, so the one used least recently (Chrome on Windows, Berlin, Germany) was signed out.")
	expectRedirect(t, first.get("/settings"), "/login?next=%2Fsettings")
	expectBody(t, first.get("/login"), "You were signed out of this device at "+hhmm(app)+" because your account signed in on too many others.")
	for _, c := range others {
		expectStatus(t, c.get("/settings"), http.StatusOK)
	}
	if !strings.Contains(app.logs.String(), "reason=session_limit") {
		t.Error("eviction not logged")
	}
}

func TestOperatorCommandsOnARunningServer(t *testing.T) {
	app := newTestApp(t)
	desktop, phone := app.client(uaWindowsChrome, ipBerlin), app.client(uaIPhone, ipLondon)
	desktop.signup("alice@example.com", pw)
	phone.login("alice@example.com", pw)
	phoneID := phone.currentID()
	op := func(args ...string) (string, error) {
		var out bytes.Buffer
		// The operator runs on the server's clock: one clock for the whole test.
		err := operator.Run(context.Background(), args, func(string) string { return "" }, &out, slog.New(slog.NewTextHandler(io.Discard, nil)), app.clock)
		return out.String(), err
	}
	withDB := func(args ...string) []string { return append(args, "-db", app.dbPath) }

	out, err := op(withDB("sessions", "list", "--user", "alice@example.com")...)
	if err != nil || !strings.Contains(out, "2 live session(s)") || !strings.Contains(out, phoneID) || !strings.Contains(out, "Safari on iPhone") {
		t.Fatalf("list: %v\n%s", err, out)
	}
	out, err = op(withDB("sessions", "revoke", "--user", "alice@example.com", "--id", phoneID)...)
	if err != nil || !strings.Contains(out, "Ended session "+phoneID) {
		t.Fatalf("revoke --id: %v %s", err, out)
	}
	expectRedirect(t, phone.get("/settings"), "/login?next=%2Fsettings")
	expectStatus(t, desktop.get("/settings"), http.StatusOK)

	for _, bad := range [][]string{
		{"sessions", "revoke", "--user", "alice@example.com"},
		{"sessions", "revoke", "--user", "alice@example.com", "--id", phoneID, "--all"},
		{"sessions", "revoke", "--user", "alice@example.com", "--id", phoneID}, // already ended
		{"sessions", "list", "--user", "nobody@example.com"},
		{"sessions", "list"},
		{"users", "disable"},
		{"sessions"},
		{"sessions", "list", "--user", "alice@example.com", "-db", app.dbPath + ".typo"}, // never creates a database
	} {
		args := bad
		if !slices.Contains(bad, "-db") {
			args = withDB(bad...)
		}
		if _, err := op(args...); err == nil {
			t.Errorf("%v: no error", bad)
		}
	}

	// Files that are not Doorman databases are refused by every command,
	// and left exactly as they were (no migration turns them into one).
	dir := t.TempDir()
	empty, notes := filepath.Join(dir, "empty.db"), filepath.Join(dir, "notes.txt")
	os.WriteFile(empty, nil, 0o600)
	os.WriteFile(notes, []byte("shopping list\n"), 0o600)
	for _, f := range []string{empty, notes} {
		for _, cmd := range [][]string{
			{"sessions", "list", "--user", "alice@example.com"},
			{"sessions", "revoke", "--user", "alice@example.com", "--all"},
			{"users", "disable", "alice@example.com"},
		} {
			before, _ := os.ReadFile(f)
			_, err := op(append(cmd, "-db", f)...)
			if err == nil || !strings.Contains(err.Error(), "not a Doorman database") {
				t.Errorf("%v on %s: %v, want 'not a Doorman database'", cmd, filepath.Base(f), err)
			}
			if after, _ := os.ReadFile(f); string(after) != string(before) {
				t.Errorf("%v changed %s", cmd, filepath.Base(f))
			}
		}
	}

	phone.login("alice@example.com", pw)
	out, err = op(withDB("users", "disable", "alice@example.com")...)
	if err != nil || !strings.Contains(out, "ended 2 session(s)") {
		t.Fatalf("disable: %v %s", err, out)
	}
	for _, c := range []*client{desktop, phone} {
		expectRedirect(t, c.get("/settings"), "/login?next=%2Fsettings")
	}
	res := app.client(uaIPhone, ipLondon).post("/login", url.Values{"email": {"alice@example.com"}, "password": {pw}})
	expectStatus(t, res, http.StatusForbidden)
	expectBody(t, res, "This account has been disabled.")
	res = app.client(uaIPhone, ipLondon).post("/login", url.Values{"email": {"alice@example.com"}, "password": {"wrong password"}})
	expectStatus(t, res, http.StatusUnauthorized) // the disabled state is told only to the password's holder

	if _, err := os.Stat(app.dbPath + ".typo"); err == nil {
		t.Error("an operator command created a database")
	}
	if _, err := op(withDB("users", "enable", "alice@example.com")...); err != nil {
		t.Fatal(err)
	}
	desktop.login("alice@example.com", pw)
	phone.login("alice@example.com", pw)
	out, err = op(withDB("sessions", "revoke", "--user", "alice@example.com", "--all")...)
	if err != nil || !strings.Contains(out, "Ended 2 session(s)") {
		t.Fatalf("revoke --all: %v %s", err, out)
	}
	expectRedirect(t, desktop.get("/settings"), "/login?next=%2Fsettings")
}
