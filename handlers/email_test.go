package handlers_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"doorman/apptest"
	"doorman/handlers"
	"doorman/mailer"
)

// Every email flow here goes through the real server, the real outbox
// worker and a real SMTP server (package mailtest): the test reads the mail
// as the server received it and follows its link.

func TestPasswordReset(t *testing.T) {
	app := newTestApp(t)
	desktop, phone := app.client(uaWindowsChrome, ipBerlin), app.client(uaIPhone, ipLondon)
	desktop.signup("alice@example.com", pw)
	phone.login("alice@example.com", pw)
	tok := desktop.createToken("script", "7", "sessions:read")

	// Someone who forgot the password, in a browser signed in nowhere.
	laptop := app.client(uaMacFirefox, ipTokyo)
	expectBody(t, laptop.get("/login"), `href="/password/forgot"`, "Email me a sign-in link")
	expectBody(t, laptop.get("/password/forgot"), `name="email"`)
	expectStatus(t, laptop.post("/password/forgot", url.Values{"email": {"not an address"}}), http.StatusUnprocessableEntity)
	expectRedirect(t, laptop.post("/password/forgot", url.Values{"email": {"Alice@Example.com"}}), "/password/forgot")
	expectBody(t, laptop.get("/password/forgot"), "If an account uses alice@example.com, we sent it a link")

	m := app.mail("alice@example.com", "Reset your Doorman password")
	if !strings.Contains(m.Text, "Firefox on macOS") || !strings.Contains(m.Text, "Tokyo") || !strings.Contains(m.HTML, "Firefox on macOS") {
		t.Fatalf("the reset mail does not say where it was asked for:\n%s", m.Text)
	}
	link := app.link(m, "/password/reset")
	secret := linkToken(t, link)
	// Only the hash is stored, the sent mail's body is erased, and no log
	// line carries the link.
	if strings.Contains(app.dump(), strings.SplitN(secret, ".", 2)[1]) {
		t.Fatal("the database holds the link's token")
	}
	if strings.Contains(app.logs.String(), secret) || strings.Contains(app.logs.String(), strings.SplitN(secret, ".", 2)[1]) {
		t.Fatal("the log holds the link's token")
	}

	res := laptop.follow(link)
	expectStatus(t, res, http.StatusOK)
	if got := res.Header.Get("Referrer-Policy"); got != "no-referrer" {
		t.Fatalf("Referrer-Policy %q on the reset page", got)
	}
	expectBody(t, res, "Choose a new password for alice@example.com", `name="token" value="`+secret+`"`, `name="new_password"`)
	expectNoBody(t, res, `name="code"`)
	// A short password changes nothing; a token from the query string is
	// not read on POST.
	before := app.dump()
	expectStatus(t, laptop.post("/password/reset", url.Values{"token": {secret}, "new_password": {"short"}}), http.StatusUnprocessableEntity)
	expectStatus(t, laptop.post("/password/reset?token="+url.QueryEscape(secret), url.Values{"new_password": {"a new password 1"}}), http.StatusNotFound)
	// The secret with one character changed (in the middle: every bit
	// there counts).
	i := len(secret) - 20
	forged := secret[:i] + string("AB"[map[bool]int{true: 1}[secret[i] == 'A']]) + secret[i+1:]
	expectStatus(t, laptop.post("/password/reset", url.Values{"token": {forged}, "new_password": {"a new password 1"}}), http.StatusNotFound)
	if app.dump() != before {
		t.Fatal("a refused reset changed something")
	}

	expectRedirect(t, laptop.post("/password/reset", url.Values{"token": {secret}, "new_password": {"a new password 1"}}), "/settings/security")
	expectBody(t, laptop.get("/settings/security"), "Your password was changed. Every other session, app and token was signed out.")
	// Every session, app and token signed in before is over.
	for _, c := range []*client{desktop, phone} {
		expectRedirect(t, c.get("/settings"), "/login?next=%2Fsettings")
	}
	if res, _ := app.apiClient(t, tok).call(http.MethodGet, "/api/v1/me"); res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("the access token still works after the reset: %d", res.StatusCode)
	}
	changed := app.mail("alice@example.com", "Your Doorman password was changed")
	if !strings.Contains(changed.Text, "Firefox on macOS") {
		t.Fatalf("the notice does not say where:\n%s", changed.Text)
	}
	// The link worked once.
	res = app.client(uaMacFirefox, ipTokyo).follow(link)
	expectStatus(t, res, http.StatusGone)
	expectBody(t, res, "already used", `href="/password/forgot"`)
	expectStatus(t, app.client(uaIPhone, ipLondon).post("/login", url.Values{"email": {"alice@example.com"}, "password": {pw}}), http.StatusUnauthorized)
	app.client(uaIPhone, ipLondon).login("alice@example.com", "a new password 1")
	page := laptop.get("/settings/security/activity")
	expectBody(t, page, `data-event="password_changed"`, "Password reset by emailed link", "ended when the password was reset by an emailed link")
}

func TestPasswordResetLinksExpireAndReplaceEachOther(t *testing.T) {
	app := newTestApp(t)
	app.client(uaWindowsChrome, ipBerlin).signup("alice@example.com", pw)
	c := app.client(uaMacFirefox, ipTokyo)
	ask := func() string {
		expectRedirect(t, c.post("/password/forgot", url.Values{"email": {"alice@example.com"}}), "/password/forgot")
		return app.link(app.mail("alice@example.com", "Reset your"), "/password/reset")
	}
	first, second := ask(), ask()
	app.advance(31 * time.Minute)
	res := c.follow(first)
	expectStatus(t, res, http.StatusGone)
	expectBody(t, res, "expired", "Send a new link")
	third := ask()
	expectStatus(t, c.follow(third), http.StatusOK)
	expectRedirect(t, c.post("/password/reset", url.Values{"token": {linkToken(t, third)}, "new_password": {"a new password 1"}}), "/settings/security")
	// The reset moved the account's epoch: an older unexpired link is void.
	app.advance(-31 * time.Minute)
	expectStatus(t, c.follow(second), http.StatusGone)
}

// TestLinksDieWithTheAddress: a reset or sign-in link mailed to the
// account's address is void once the account moves to another address,
// even unexpired and unused: the old mailbox may be the reason for the
// move. Opening it says it expired; using it changes nothing.
func TestLinksDieWithTheAddress(t *testing.T) {
	app := newTestApp(t)
	alice := app.client(uaWindowsChrome, ipBerlin)
	alice.signup("alice@example.com", pw)
	app.mail("alice@example.com", "Confirm your email")
	// Someone with the old mailbox asks for both links first.
	stranger := app.client(uaMacFirefox, ipTokyo)
	expectRedirect(t, stranger.post("/password/forgot", url.Values{"email": {"alice@example.com"}}), "/password/forgot")
	reset := app.link(app.mail("alice@example.com", "Reset your Doorman password"), "/password/reset")
	expectRedirect(t, stranger.post("/login/link", url.Values{"email": {"alice@example.com"}}), "/login")
	signIn := app.link(app.mail("alice@example.com", "Your Doorman sign-in link"), "/login/link/open")

	app.outsideSudo()
	expectRedirect(t, alice.post("/settings/account/email", url.Values{"email": {"alice2@example.com"}, "password": {pw}}), "/settings")
	confirm := app.link(app.mail("alice2@example.com", "Confirm your new email"), "/email/confirm")
	expectRedirect(t, alice.post("/email/confirm", url.Values{"token": {linkToken(t, confirm)}}), "/settings")
	expectBody(t, alice.get("/settings"), "Your email is now alice2@example.com.")

	before := app.dump()
	res := stranger.follow(reset)
	expectStatus(t, res, http.StatusGone)
	expectBody(t, res, "no longer works")
	expectStatus(t, stranger.post("/password/reset", url.Values{"token": {linkToken(t, reset)}, "new_password": {"a new password 1"}}), http.StatusGone)
	expectStatus(t, stranger.follow(signIn), http.StatusGone)
	expectStatus(t, stranger.post("/login/link/open", url.Values{"token": {linkToken(t, signIn)}}), http.StatusGone)
	if stranger.sessionCookie() != "" {
		t.Fatal("a sign-in link to the old address signed in")
	}
	if app.dump() != before {
		t.Fatal("links to the old address changed something")
	}
	expectStatus(t, alice.get("/settings"), http.StatusOK)
	app.client(uaIPhone, ipLondon).login("alice2@example.com", pw)
	// A link to the new address works.
	expectRedirect(t, stranger.post("/password/forgot", url.Values{"email": {"alice2@example.com"}}), "/password/forgot")
	expectStatus(t, stranger.follow(app.link(app.mail("alice2@example.com", "Reset your Doorman password"), "/password/reset")), http.StatusOK)
}

// TestLinkRequestsRevealNothing: the same answer, the same status and one
// mail either way; the address that has no account is told so, by mail,
// not the asker.
func TestLinkRequestsRevealNothing(t *testing.T) {
	app := newTestApp(t)
	app.client(uaWindowsChrome, ipBerlin).signup("alice@example.com", pw)
	norm := regexp.MustCompile(`(alice|nobody)@example\.com|name="csrf" value="[^"]*"`)
	answer := func(email, path string) (int, string) {
		c := app.client(uaMacFirefox, ipTokyo)
		res := c.post(path, url.Values{"email": {email}})
		next := c.get(res.Header.Get("Location"))
		return res.StatusCode, norm.ReplaceAllString(next.body, "X")
	}
	for _, path := range []string{"/password/forgot", "/login/link"} {
		s1, b1 := answer("alice@example.com", path)
		s2, b2 := answer("nobody@example.com", path)
		if s1 != s2 || b1 != b2 {
			t.Fatalf("%s: an existing and a missing account answer differently (%d vs %d)", path, s1, s2)
		}
		m := app.mail("nobody@example.com", "No Doorman account uses this address")
		if len(m.Links()) == 0 || m.Link("/signup") == "" {
			t.Fatalf("the no-account mail offers no way to sign up:\n%s", m.Text)
		}
	}
	app.mail("alice@example.com", "Reset your")
	app.mail("alice@example.com", "sign-in link")
}

func TestLinkRequestsAreThrottled(t *testing.T) {
	app := newTestApp(t)
	app.client(uaWindowsChrome, ipBerlin).signup("alice@example.com", pw)
	c := app.client(uaMacFirefox, ipTokyo)
	for range 5 {
		expectRedirect(t, c.post("/password/forgot", url.Values{"email": {"alice@example.com"}}), "/password/forgot")
	}
	before := app.dump()
	res := c.post("/password/forgot", url.Values{"email": {"alice@example.com"}})
	expectStatus(t, res, http.StatusTooManyRequests)
	expectBody(t, res, "Too many attempts")
	if res.Header.Get("Retry-After") == "" {
		t.Fatal("no Retry-After")
	}
	if app.dump() != before {
		t.Fatal("a throttled request queued a mail")
	}
	// Another mailbox, or the other kind of link, is counted apart: the
	// owner can still ask for a sign-in link.
	expectRedirect(t, c.post("/password/forgot", url.Values{"email": {"bob@example.com"}}), "/password/forgot")
	expectRedirect(t, c.post("/login/link", url.Values{"email": {"alice@example.com"}}), "/login")
	app.advance(time.Hour)
	expectRedirect(t, c.post("/password/forgot", url.Values{"email": {"alice@example.com"}}), "/password/forgot")
}

func TestPasswordResetNeedsTheSecondFactor(t *testing.T) {
	app := newTestApp(t)
	c := app.client(uaWindowsChrome, ipBerlin)
	c.signup("alice@example.com", pw)
	secret, _ := turnOnTwoFactor(t, c, false)
	app.mail("alice@example.com", "Two-factor authentication is on")
	stranger := app.client(uaMacFirefox, ipTokyo)
	expectRedirect(t, stranger.post("/password/forgot", url.Values{"email": {"alice@example.com"}}), "/password/forgot")
	link := app.link(app.mail("alice@example.com", "Reset your"), "/password/reset")
	expectBody(t, stranger.follow(link), `name="code"`)
	token := linkToken(t, link)
	before := app.dump()
	res := stranger.post("/password/reset", url.Values{"token": {token}, "new_password": {"a new password 1"}, "code": {"000000"}})
	expectStatus(t, res, http.StatusUnprocessableEntity)
	expectBody(t, res, "That code didn")
	expectStatus(t, c.get("/settings"), http.StatusOK)
	if strings.Count(app.dump(), "two_factor_failed") != strings.Count(before, "two_factor_failed")+1 {
		t.Fatal("the wrong code was not recorded")
	}
	app.advance(30 * time.Second)
	expectRedirect(t, stranger.post("/password/reset", url.Values{"token": {token}, "new_password": {"a new password 1"}, "code": {codeAt(t, secret, app.clock())}}), "/settings/security")
	expectRedirect(t, c.get("/settings"), "/login?next=%2Fsettings")
}

func TestNewSignInAlert(t *testing.T) {
	app := newTestApp(t)
	desktop := app.client(uaWindowsChrome, ipBerlin)
	desktop.signup("alice@example.com", pw)
	app.mail("alice@example.com", "Confirm your email")
	// The same device and network again: nothing to say.
	app.client(uaWindowsChrome, "89.246.1.1").login("alice@example.com", pw)

	stranger := app.client(uaMacFirefox, ipTokyo)
	stranger.login("alice@example.com", pw)
	strangerID := stranger.currentID()
	m := app.mail("alice@example.com", "New sign-in to your Doorman account")
	for _, want := range []string{"Firefox on macOS", "Tokyo", "2400:4050::1"} {
		if !strings.Contains(m.Text, want) {
			t.Fatalf("the alert lacks %q:\n%s", want, m.Text)
		}
	}
	if n := strings.Count(app.dump(), "| new_sign_in |"); n != 1 {
		t.Fatalf("%d alerts queued, want 1 (sign-up and the known device send none)", n)
	}
	// Seen now: a second sign-in from there is not news.
	app.client(uaMacFirefox, ipTokyo).login("alice@example.com", pw)
	if n := strings.Count(app.dump(), "| new_sign_in |"); n != 1 {
		t.Fatalf("%d alerts queued after a second sign-in from the same place, want still 1", n)
	}

	// "This wasn't me", from the phone that reads the mail.
	phone := app.client(uaIPhone, ipLondon)
	notMe := app.link(m, "/sign-in/not-me")
	res := phone.follow(notMe)
	expectBody(t, res, "Firefox on macOS", "Tokyo", `name="new_password"`, `name="end_others" type="checkbox" value="on" checked`, `name="end_tokens" type="checkbox" value="on" checked`)
	expectRedirect(t, phone.post("/sign-in/not-me", url.Values{"token": {linkToken(t, notMe)}, "new_password": {"a new password 1"}, "end_others": {"on"}, "end_tokens": {"on"}}), "/settings/security")
	expectBody(t, phone.get("/settings/security"), "That session was ended and your password changed.")
	expectRedirect(t, stranger.get("/settings"), "/login?next=%2Fsettings")
	expectRedirect(t, desktop.get("/settings"), "/login?next=%2Fsettings")
	app.mail("alice@example.com", "You secured your Doorman account")
	// The place is forgotten: signing in from there alerts again.
	before := strings.Count(app.dump(), "| new_sign_in |")
	app.client(uaMacFirefox, ipTokyo).login("alice@example.com", "a new password 1")
	if strings.Count(app.dump(), "| new_sign_in |") != before+1 {
		t.Fatal("a disowned place was still known")
	}
	app.mail("alice@example.com", "New sign-in")
	// The ended session's page says it is over, and the history why.
	expectBody(t, phone.get("/settings/security/sessions/"+strangerID), "This session has ended")
	expectBody(t, phone.get("/settings/security/activity"), "Password changed to take the account back", "ended as not yours")
}

func TestSignInAlertThisWasMeAndOff(t *testing.T) {
	app := newTestApp(t)
	desktop := app.client(uaWindowsChrome, ipBerlin)
	desktop.signup("alice@example.com", pw)
	app.client(uaMacFirefox, ipTokyo).login("alice@example.com", pw)
	m := app.mail("alice@example.com", "New sign-in")
	known := app.link(m, "/sign-in/known")
	// Opening the link (a mail scanner does) only asks; the POST vouches
	// (review finding 13).
	untouched := app.dump()
	reader := app.client(uaIPhone, ipLondon)
	res := reader.follow(known)
	expectBody(t, res, "Was this sign-in you?", "Firefox on macOS", "Yes, this was me")
	if app.dump() != untouched {
		t.Fatal("opening a This was me link changed the store")
	}
	expectBody(t, reader.post("/sign-in/known", url.Values{"token": {linkToken(t, known)}}), "will remember Firefox on macOS")
	expectBody(t, app.client(uaIPhone, ipLondon).follow(known), "already told us")

	// Turning alerts off needs the password outside the sudo window.
	app.outsideSudo()
	res = desktop.post("/settings/account/alerts", url.Values{"alerts": {"off"}})
	expectStatus(t, res, http.StatusOK)
	expectBody(t, res, "Turn off new sign-in alerts?", `name="password"`)
	expectBody(t, desktop.get("/settings"), "New sign-in alerts", "Turn alerts off")
	expectRedirect(t, desktop.post("/settings/account/alerts", url.Values{"password": {pw}}), "/settings")
	expectBody(t, desktop.get("/settings"), "New sign-in alerts are off.", "Turn alerts on")
	before := strings.Count(app.dump(), "| new_sign_in |")
	app.client(uaIPhone, "2001:db8::1").login("alice@example.com", pw)
	if strings.Count(app.dump(), "| new_sign_in |") != before {
		t.Fatal("an alert was queued with alerts off")
	}
	expectRedirect(t, desktop.post("/settings/account/alerts", url.Values{"alerts": {"on"}}), "/settings")
	app.client(uaIPhone, "2001:db9::1").login("alice@example.com", pw)
	app.mail("alice@example.com", "New sign-in")
}

func TestSignInLink(t *testing.T) {
	app := newTestApp(t)
	app.client(uaWindowsChrome, ipBerlin).signup("alice@example.com", pw)
	app.mail("alice@example.com", "Confirm your email")

	// In the browser that asked: the link signs in at once.
	c := app.client(uaIPhone, ipLondon)
	expectRedirect(t, c.post("/login/link", url.Values{"email": {"alice@example.com"}}), "/login")
	expectBody(t, c.get("/login"), "we sent it a sign-in link")
	m := app.mail("alice@example.com", "Your Doorman sign-in link")
	link := app.link(m, "/login/link/open")
	expectRedirect(t, c.follow(link), "/settings/security")
	res, rows := c.securityPage()
	expectStatus(t, res, http.StatusOK)
	if len(rows) != 2 {
		t.Fatalf("%d sessions listed, want 2", len(rows))
	}
	// The list says how it signed in (a password needs no mention).
	if strings.Count(res.body, `class="session-method">Emailed sign-in link<`) != 1 || strings.Contains(res.body, `class="session-method">Email and password`) {
		t.Fatalf("the list does not show the emailed link's session as such:\n%s", snippet(res.body))
	}
	expectBody(t, c.get("/settings/security/sessions/"+c.currentID()), "Emailed sign-in link")
	expectStatus(t, app.client(uaIPhone, ipLondon).follow(link), http.StatusGone)

	// Opened anywhere else, it asks first and says where it was asked for.
	asker, other := app.client(uaMacFirefox, ipTokyo), app.client(uaWindowsChrome, ipBerlin)
	expectRedirect(t, asker.post("/login/link", url.Values{"email": {"alice@example.com"}}), "/login")
	link = app.link(app.mail("alice@example.com", "sign-in link"), "/login/link/open")
	res = other.follow(link)
	expectStatus(t, res, http.StatusOK)
	expectBody(t, res, "asked for in another browser", "Firefox on macOS", "Tokyo")
	if other.sessionCookie() != "" {
		t.Fatal("opening the link in another browser signed it in")
	}
	expectRedirect(t, other.post("/login/link/open", url.Values{"token": {linkToken(t, link)}}), "/settings/security")
	expectStatus(t, other.get("/settings"), http.StatusOK)

	// A quarter of an hour later, a link is dead.
	expectRedirect(t, asker.post("/login/link", url.Values{"email": {"alice@example.com"}}), "/login")
	link = app.link(app.mail("alice@example.com", "sign-in link"), "/login/link/open")
	app.advance(16 * time.Minute)
	expectStatus(t, asker.follow(link), http.StatusGone)
}

func TestNotYou(t *testing.T) {
	app := newTestApp(t)
	desktop, phone := app.client(uaWindowsChrome, ipBerlin), app.client(uaIPhone, ipLondon)
	desktop.signup("alice@example.com", pw)
	phone.login("alice@example.com", pw)
	tablet := app.client(uaMacFirefox, ipTokyo)
	tablet.login("alice@example.com", pw)
	bob := app.client(uaMacFirefox, ipTokyo)
	bob.signup("bob@example.com", "bob's password")
	phoneID := phone.currentID()

	expectBody(t, desktop.get("/settings/security"), `href="/settings/security/sessions/`+phoneID+`/not-you"`, "Not you?")
	res := desktop.get("/settings/security/sessions/" + phoneID + "/not-you")
	expectBody(t, res, "Safari on iPhone", "London", `name="current_password"`, `name="new_password"`, `name="end_others" type="checkbox" value="on" checked`)
	// Another user's session is not found, and nothing changes.
	before := app.dump()
	expectStatus(t, bob.post("/settings/security/sessions/"+phoneID+"/not-you", url.Values{"current_password": {"bob's password"}, "new_password": {"a new password 1"}}), http.StatusNotFound)
	if app.dump() != before {
		t.Fatal("another user's Not you? changed something")
	}
	// A wrong current password is counted and changes nothing else.
	expectStatus(t, desktop.post("/settings/security/sessions/"+phoneID+"/not-you", url.Values{"current_password": {"wrong"}, "new_password": {"a new password 1"}}), http.StatusUnprocessableEntity)
	expectStatus(t, phone.get("/settings"), http.StatusOK)
	// One submit: that session ends (and the tablet, "all others" on), the
	// password changes, this device stays.
	expectRedirect(t, desktop.post("/settings/security/sessions/"+phoneID+"/not-you", url.Values{"current_password": {pw}, "new_password": {"a new password 1"}, "end_others": {"on"}}), "/settings/security")
	expectBody(t, desktop.get("/settings/security"), "Signed out 2 sessions and changed your password.")
	expectRedirect(t, phone.get("/settings"), "/login?next=%2Fsettings")
	expectRedirect(t, tablet.get("/settings"), "/login?next=%2Fsettings")
	expectStatus(t, bob.get("/settings"), http.StatusOK)
	app.client(uaIPhone, ipLondon).login("alice@example.com", "a new password 1")
	app.mail("alice@example.com", "You secured your Doorman account")
}

func TestVerifyEmail(t *testing.T) {
	app := newTestApp(t)
	c := app.client(uaWindowsChrome, ipBerlin)
	c.signup("alice@example.com", pw)
	expectBody(t, c.get("/settings"), `data-email-status="unverified"`, "Send the link again")
	m := app.mail("alice@example.com", "Confirm your email address")
	expectRedirect(t, c.post("/settings/account/verify", nil), "/settings")
	again := app.mail("alice@example.com", "Confirm your email address")
	res := app.client(uaIPhone, ipLondon).follow(app.link(m, "/email/verify"))
	expectStatus(t, res, http.StatusOK)
	expectBody(t, res, "alice@example.com is verified")
	expectBody(t, c.get("/settings"), `data-email-status="verified"`)
	expectNoBody(t, c.get("/settings"), "Send the link again")
	expectBody(t, c.get("/settings/security/activity"), "Email address alice@example.com verified")
	expectBody(t, app.client(uaIPhone, ipLondon).follow(app.link(m, "/email/verify")), "already verified")
	// An unused older link still does its job (the address is verified).
	expectBody(t, app.client(uaIPhone, ipLondon).follow(app.link(again, "/email/verify")), "alice@example.com is verified")
}

func TestUndoEmailChange(t *testing.T) {
	app := newTestApp(t)
	owner := app.client(uaWindowsChrome, ipBerlin)
	owner.signup("alice@example.com", pw)
	thief := app.client(uaMacFirefox, ipTokyo)
	thief.login("alice@example.com", pw)
	expectRedirect(t, thief.post("/settings/account/email", url.Values{"email": {"thief@example.com"}, "password": {pw}}), "/settings")
	confirm := app.link(app.mail("thief@example.com", "Confirm your new email"), "/email/confirm")
	expectBody(t, thief.follow(confirm), "thief@example.com", "alice@example.com")
	expectRedirect(t, thief.post("/email/confirm", url.Values{"token": {linkToken(t, confirm)}}), "/settings")

	undo := app.link(app.mail("alice@example.com", "email address was changed"), "/email/undo")
	phone := app.client(uaIPhone, ipLondon)
	expectBody(t, phone.follow(undo), "alice@example.com", "thief@example.com", `name="new_password"`)
	expectRedirect(t, phone.post("/email/undo", url.Values{"token": {linkToken(t, undo)}, "new_password": {"a new password 1"}}), "/settings/security")
	expectRedirect(t, thief.get("/settings"), "/login?next=%2Fsettings")
	expectRedirect(t, owner.get("/settings"), "/login?next=%2Fsettings")
	expectBody(t, phone.get("/settings"), "alice@example.com")
	expectStatus(t, app.client(uaMacFirefox, ipTokyo).post("/login", url.Values{"email": {"thief@example.com"}, "password": {pw}}), http.StatusUnauthorized)
	app.mail("alice@example.com", "You secured your Doorman account")
}

// newDevMailApp is a server without SMTP, its mail written to a folder;
// devMail: with the development viewer (-dev-mail).
func newDevMailApp(t *testing.T, devMail bool) *testApp {
	t.Helper()
	logs := &apptest.SyncBuffer{}
	a := apptest.New(t, apptest.Options{Log: logs, DevMail: devMail})
	app := &testApp{t: t, app: a, store: a.Store, logs: logs, cfg: a.Config}
	app.serve(a.Handler)
	return app
}

// TestDevMailViewer: with no SMTP server and -dev-mail, a developer resets a
// password from the mail the development viewer shows, in a browser on the
// same machine (no proxy: no X-Forwarded-For).
func TestDevMailViewer(t *testing.T) {
	app := newDevMailApp(t, true)
	app.client(uaWindowsChrome, ipBerlin).signup("alice@example.com", pw)
	c := app.client(uaMacFirefox, "")
	expectRedirect(t, c.post("/password/forgot", url.Values{"email": {"alice@example.com"}}), "/password/forgot")
	var mail string
	for wait := time.Now().Add(waitTimeout); mail == "" && time.Now().Before(wait); {
		list := c.get("/dev/mail")
		expectStatus(t, list, http.StatusOK)
		if m := regexp.MustCompile(`href="(/dev/mail/[^"]*password_reset[^"]*)"`).FindStringSubmatch(list.body); m != nil {
			mail = m[1]
		} else {
			time.Sleep(50 * time.Millisecond)
		}
	}
	if mail == "" {
		t.Fatal("the reset mail never showed in /dev/mail")
	}
	page := c.get(mail)
	expectBody(t, page, "Reset your Doorman password")
	link := regexp.MustCompile(`href="(http://doorman\.test/password/reset\?token=[^"]+)"`).FindStringSubmatch(page.body)
	if link == nil {
		t.Fatalf("no reset link on the mail's page:\n%s", page.body)
	}
	l := strings.ReplaceAll(link[1], "&amp;", "&")
	res := c.follow(l)
	expectStatus(t, res, http.StatusOK)
	expectRedirect(t, c.post("/password/reset", url.Values{"token": {linkToken(t, l)}, "new_password": {"a new password 1"}}), "/settings/security")
	expectStatus(t, c.get("/dev/mail/../../etc/passwd"), http.StatusNotFound)
}

// TestDevMailViewerOnlyForThisMachine: the viewer shows every reset link, so
// it does not exist without -dev-mail (the mail is still written to the
// folder), and with it answers only a browser on this machine: a request
// from another peer, with another Host (what nginx on the same machine
// passes on), or through a proxy gets the 404 of an unknown route.
func TestDevMailViewerOnlyForThisMachine(t *testing.T) {
	off := newDevMailApp(t, false)
	off.client(uaWindowsChrome, "").signup("alice@example.com", pw)
	expectRedirect(t, off.client(uaMacFirefox, "").post("/password/forgot", url.Values{"email": {"alice@example.com"}}), "/password/forgot")
	unknown := off.client(uaMacFirefox, "").get("/no/such/page")
	expectStatus(t, unknown, http.StatusNotFound)
	for _, path := range []string{"/dev/mail", "/dev/mail/x.eml"} {
		res := off.client(uaMacFirefox, "").get(path)
		expectStatus(t, res, http.StatusNotFound)
		expectBody(t, res, "Page not found")
	}
	// The reset mail was written all the same.
	for wait := time.Now().Add(waitTimeout); ; {
		list, err := mailer.ListDir(off.app.MailDir)
		if err != nil {
			t.Fatal(err)
		}
		if slices.ContainsFunc(list, func(m mailer.Stored) bool { return strings.Contains(m.Subject, "Reset your Doorman password") }) {
			break
		}
		if time.Now().After(wait) {
			t.Fatalf("no reset mail in the folder: %v", list)
		}
		time.Sleep(50 * time.Millisecond)
	}

	on := newDevMailApp(t, true)
	expectStatus(t, on.client(uaMacFirefox, "").get("/dev/mail"), http.StatusOK)
	refused := func(name string, mod func(*http.Request)) {
		t.Helper()
		for _, path := range []string{"/dev/mail", "/dev/mail/x.eml"} {
			req := httptest.NewRequest(http.MethodGet, on.srv.URL+path, nil)
			req.RemoteAddr = "127.0.0.1:50000"
			mod(req)
			rec := httptest.NewRecorder()
			on.e.ServeHTTP(rec, req)
			if rec.Code != http.StatusNotFound || !strings.Contains(rec.Body.String(), "Page not found") {
				t.Errorf("%s: GET %s: %d, want the 404 of an unknown route\n%s", name, path, rec.Code, snippet(rec.Body.String()))
			}
		}
	}
	refused("another peer", func(r *http.Request) { r.RemoteAddr = "192.0.2.7:50000" })
	refused("another peer (IPv6)", func(r *http.Request) { r.RemoteAddr = "[2001:db8::7]:50000" })
	refused("the public Host from 127.0.0.1", func(r *http.Request) { r.Host = "id.example.com" })
	refused("the public Host with a port", func(r *http.Request) { r.Host = "id.example.com:8080" })
	refused("a loopback Host, forwarded by a proxy", func(r *http.Request) { r.Header.Set("X-Forwarded-For", ipTokyo) })
	refused("a loopback Host, Forwarded by a proxy", func(r *http.Request) { r.Header.Set("Forwarded", "for=192.0.2.7") })
	// This machine, by any loopback name, is let in.
	for _, host := range []string{"localhost:8080", "127.0.0.1", "[::1]:8080"} {
		req := httptest.NewRequest(http.MethodGet, on.srv.URL+"/dev/mail", nil)
		req.RemoteAddr, req.Host = "[::1]:50000", host
		rec := httptest.NewRecorder()
		on.e.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			t.Errorf("Host %s from ::1: %d, want 200", host, rec.Code)
		}
	}
}

// TestNoMailServer: a server without mail offers none of it.
func TestNoMailServer(t *testing.T) {
	app := newTestAppWith(t, apptest.Options{NoMail: true, Config: func(*handlers.Config) {}})
	c := app.client(uaWindowsChrome, ipBerlin)
	expectNoBody(t, c.get("/login"), "Forgot your password?", "Email me a sign-in link")
	expectStatus(t, c.get("/password/forgot"), http.StatusNotFound)
	expectStatus(t, app.client(uaWindowsChrome, "").get("/dev/mail"), http.StatusNotFound)
	c.signup("alice@example.com", pw)
	expectNoBody(t, c.get("/settings"), "Not verified", "New sign-in alerts")
}
