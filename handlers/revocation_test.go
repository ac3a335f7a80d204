package handlers_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// The revocation rule (SECURITY.md, "One rule"), through the real server:
// after the owner resets the password or logs out everywhere, nothing the
// intruder started may still act for the account. One test per finding of
// the second outside review that broke it.

// TestPendingEmailChangeDiesWithReset (finding 1): an intruder with a phished
// password asks to move the account to their address; the owner is told at
// once (with a cancel link) and sees the change pending; after the owner's
// reset the intruder's confirm link is worth nothing.
func TestPendingEmailChangeDiesWithReset(t *testing.T) {
	app := newTestApp(t)
	owner := app.client(uaWindowsChrome, ipBerlin)
	owner.signup("alice@example.com", pw)
	intruder := app.client(uaMacFirefox, ipTokyo)
	intruder.login("alice@example.com", pw)
	expectRedirect(t, intruder.post("/settings/account/email", url.Values{"email": {"x@evil.test"}, "password": {pw}}), "/settings")
	confirm := app.link(app.mail("x@evil.test", "Confirm your new email"), "/email/confirm")

	// The current address is told the change was asked for, with where
	// from and a cancel link; the Security page shows it pending.
	asked := app.mail("alice@example.com", "Someone asked to change your Doorman email address")
	if !strings.Contains(asked.Text, "x@evil.test") || !strings.Contains(asked.Text, "Tokyo") || app.link(asked, "/email/cancel") == "" {
		t.Fatalf("the current address was not told of the change, with a cancel link:\n%s", asked.Text)
	}
	expectBody(t, owner.get("/settings/security"), "Change of address waiting", "x@evil.test", "Cancel the change")

	// The owner resets the password by email and logs out everywhere.
	expectRedirect(t, owner.post("/password/forgot", url.Values{"email": {"alice@example.com"}}), "/password/forgot")
	reset := app.link(app.mail("alice@example.com", "Reset your"), "/password/reset")
	expectRedirect(t, owner.post("/password/reset", url.Values{"token": {linkToken(t, reset)}, "new_password": {"owner's new password"}}), "/settings/security")
	expectNoBody(t, owner.get("/settings/security"), "Change of address waiting")

	// From a fresh browser the intruder opens the confirm link: refused,
	// nothing changes, and the address stays the owner's.
	fresh := app.client(uaMacFirefox, ipTokyo)
	res := fresh.follow(confirm)
	expectStatus(t, res, http.StatusGone)
	expectBody(t, res, "no longer works")
	before := app.dump()
	expectStatus(t, fresh.post("/email/confirm", url.Values{"token": {linkToken(t, confirm)}}), http.StatusGone)
	if app.dump() != before {
		t.Fatal("a void confirm link changed the store")
	}
	if u, err := app.store.UserByEmail(context.Background(), "alice@example.com"); err != nil || u.EmailVerified() && u.Email != "alice@example.com" {
		t.Fatalf("the owner's address: %+v, %v", u, err)
	}
	expectStatus(t, app.client(uaMacFirefox, ipTokyo).post("/login", url.Values{"email": {"x@evil.test"}, "password": {"owner's new password"}}), http.StatusUnauthorized)
}

// TestEmailChangeOneAtATime (finding 1): of two change links queued, only
// the newest works, so an undone change can't be redone by the other; and
// the owner cancels a pending change by the mailed link or from the page.
func TestEmailChangeOneAtATime(t *testing.T) {
	app := newTestApp(t)
	owner := app.client(uaWindowsChrome, ipBerlin)
	owner.signup("alice@example.com", pw)
	intruder := app.client(uaMacFirefox, ipTokyo)
	intruder.login("alice@example.com", pw)
	app.outsideSudo()
	expectRedirect(t, intruder.post("/settings/account/email", url.Values{"email": {"one@evil.test"}, "password": {pw}}), "/settings")
	first := app.link(app.mail("one@evil.test", "Confirm your new email"), "/email/confirm")
	expectRedirect(t, intruder.post("/settings/account/email", url.Values{"email": {"two@evil.test"}, "password": {pw}}), "/settings")
	second := app.link(app.mail("two@evil.test", "Confirm your new email"), "/email/confirm")
	expectStatus(t, intruder.post("/email/confirm", url.Values{"token": {linkToken(t, first)}}), http.StatusGone)

	// The owner cancels by the link in the mail to the current address:
	// opening it changes nothing, the button does.
	cancel := app.link(app.mail("alice@example.com", "Someone asked to change your Doorman email address"), "/email/cancel")
	reader := app.client(uaIPhone, ipLondon)
	before := app.dump()
	expectBody(t, reader.follow(cancel), "Cancel the change of address?", "Cancel the change")
	if app.dump() != before {
		t.Fatal("opening the cancel link changed the store")
	}
	expectBody(t, reader.post("/email/cancel", url.Values{"token": {linkToken(t, cancel)}}), "The change was cancelled", "alice@example.com")
	expectStatus(t, intruder.post("/email/confirm", url.Values{"token": {linkToken(t, second)}}), http.StatusGone)
	expectStatus(t, reader.post("/email/cancel", url.Values{"token": {linkToken(t, cancel)}}), http.StatusGone)

	// From the Security page, without a password.
	expectRedirect(t, intruder.post("/settings/account/email", url.Values{"email": {"three@evil.test"}, "password": {pw}}), "/settings")
	third := app.link(app.mail("three@evil.test", "Confirm your new email"), "/email/confirm")
	expectRedirect(t, owner.post("/settings/account/email/cancel", nil), "/settings/security")
	expectBody(t, owner.get("/settings/security"), "The change of address was cancelled.")
	expectStatus(t, intruder.post("/email/confirm", url.Values{"token": {linkToken(t, third)}}), http.StatusGone)
	if u, err := app.store.UserByEmail(context.Background(), "alice@example.com"); err != nil {
		t.Fatalf("the owner's address moved: %v", err)
	} else if u.Email != "alice@example.com" {
		t.Fatalf("the owner's address is %s", u.Email)
	}
}

// TestUndoIgnoresALaterSecondFactor (finding 1): the intruder moves the
// account and turns two-factor on; the owner's undo link asks for no code,
// works, and turns that second factor off.
func TestUndoIgnoresALaterSecondFactor(t *testing.T) {
	app := newTestApp(t)
	owner := app.client(uaWindowsChrome, ipBerlin)
	owner.signup("alice@example.com", pw)
	intruder := app.client(uaMacFirefox, ipTokyo)
	intruder.login("alice@example.com", pw)
	expectRedirect(t, intruder.post("/settings/account/email", url.Values{"email": {"x@evil.test"}, "password": {pw}}), "/settings")
	confirm := app.link(app.mail("x@evil.test", "Confirm your new email"), "/email/confirm")
	expectRedirect(t, intruder.post("/email/confirm", url.Values{"token": {linkToken(t, confirm)}}), "/settings")
	undo := app.link(app.mail("alice@example.com", "email address was changed"), "/email/undo")
	app.advance(time.Minute)
	turnOnTwoFactor(t, intruder, false)

	phone := app.client(uaIPhone, ipLondon)
	page := phone.follow(undo)
	expectStatus(t, page, http.StatusOK)
	expectNoBody(t, page, `name="code"`)
	expectRedirect(t, phone.post("/email/undo", url.Values{"token": {linkToken(t, undo)}, "new_password": {"owner's new password"}}), "/settings/security")
	expectRedirect(t, intruder.get("/settings"), "/login?next=%2Fsettings")
	// The owner signs in with the new password alone: the intruder's
	// second factor is gone.
	again := app.client(uaWindowsChrome, ipBerlin)
	expectRedirect(t, again.post("/login", url.Values{"email": {"alice@example.com"}, "password": {"owner's new password"}}), "/settings/security")
	expectBody(t, again.get("/settings/security/activity"), "Two-factor authentication turned off")
}

// TestApprovedDeviceCodeDiesWithReset (finding 2): a device code approved
// but not yet redeemed, then any reset: the tool's next poll gets
// access_denied and no token. A waiting approval is listed and withdrawn.
func TestApprovedDeviceCodeDiesWithReset(t *testing.T) {
	app := newTestApp(t)
	clientID := registerApp(t, app, "Doorman CLI")
	alice := app.client(uaWindowsChrome, ipBerlin)
	alice.signup("alice@example.com", pw)
	start := func() (string, string) {
		t.Helper()
		status, out := oauthPost(t, app, "/oauth/device_authorization", url.Values{"client_id": {clientID}})
		if status != http.StatusOK {
			t.Fatalf("device authorization: %d %v", status, out)
		}
		return out["device_code"].(string), out["user_code"].(string)
	}
	redeem := func(deviceCode string) (int, map[string]any) {
		t.Helper()
		app.advance(6 * time.Second)
		return oauthPost(t, app, "/oauth/token", url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:device_code"}, "device_code": {deviceCode}, "client_id": {clientID}})
	}
	approve := func(c *client, password string) string {
		t.Helper()
		code, user := start()
		expectRedirect(t, c.post("/device/approve", url.Values{"code": {user}, "password": {password}}), "/settings/security")
		return code
	}
	resets := []struct {
		name  string
		reset func() (*client, string) // returns a signed-in client and its password, for the next round
	}{
		{"sign out everywhere", func() (*client, string) {
			expectRedirect(t, alice.post("/settings/security/sessions/revoke-all", url.Values{"password": {pw}}), "/login")
			alice = app.client(uaWindowsChrome, ipBerlin)
			alice.login("alice@example.com", pw)
			return alice, pw
		}},
		{"a password change ending everything", func() (*client, string) {
			expectRedirect(t, alice.post("/settings/security/password", url.Values{"current_password": {pw}, "new_password": {"second password"},
				"sign_out_others": {"on"}, "disconnect_tokens": {"on"}}), "/settings/security")
			return alice, "second password"
		}},
		{"an emailed reset", func() (*client, string) {
			expectRedirect(t, alice.post("/password/forgot", url.Values{"email": {"alice@example.com"}}), "/password/forgot")
			link := app.link(app.mail("alice@example.com", "Reset your"), "/password/reset")
			expectRedirect(t, alice.post("/password/reset", url.Values{"token": {linkToken(t, link)}, "new_password": {"third password"}}), "/settings/security")
			return alice, "third password"
		}},
		{"the operator disabling and enabling", func() (*client, string) {
			u, err := app.store.UserByEmail(context.Background(), "alice@example.com")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := app.store.SetUserDisabled(context.Background(), u.ID, true, app.clock()); err != nil {
				t.Fatal(err)
			}
			if _, err := app.store.SetUserDisabled(context.Background(), u.ID, false, app.clock()); err != nil {
				t.Fatal(err)
			}
			alice = app.client(uaWindowsChrome, ipBerlin)
			alice.login("alice@example.com", "third password")
			return alice, "third password"
		}},
	}
	password := pw
	for _, r := range resets {
		code := approve(alice, password)
		expectBody(t, alice.get("/settings/security"), "waiting for the app to connect",
			"Approved. Go back to your device: it finishes connecting by itself, then appears under Connected apps.")
		var c *client
		c, password = r.reset()
		status, out := redeem(code)
		if status != http.StatusBadRequest || out["error"] != "access_denied" || out["access_token"] != nil {
			t.Fatalf("%s: redeeming an approval from before it: %d %v", r.name, status, out)
		}
		expectNoBody(t, c.get("/settings/security"), "waiting for the app to connect", "Doorman CLI")
	}

	// Withdrawn from the Security page: the tool gets nothing; another
	// user can't withdraw it.
	code := approve(alice, password)
	var user string
	page := alice.get("/settings/security")
	expectBody(t, page, "Withdraw the approval of Doorman CLI")
	for _, m := range strings.Split(page.body, `action="/settings/security/approvals/`)[1:] {
		user = m[:strings.Index(m, "/")]
	}
	mallory := app.client(uaMacFirefox, ipTokyo)
	mallory.signup("mallory@example.com", pw)
	before := app.dump()
	expectStatus(t, mallory.post("/settings/security/approvals/"+user+"/cancel", nil), http.StatusNotFound)
	if app.dump() != before {
		t.Fatal("another user's withdrawal changed the store")
	}
	expectRedirect(t, alice.post("/settings/security/approvals/"+user+"/cancel", nil), "/settings/security")
	if status, out := redeem(code); status != http.StatusBadRequest || out["error"] != "access_denied" {
		t.Fatalf("redeeming a withdrawn approval: %d %v", status, out)
	}
}

// TestAppAndTokenMails (finding 6): the owner is mailed when a token is
// created and when an app is approved.
func TestAppAndTokenMails(t *testing.T) {
	app := newTestApp(t)
	clientID := registerApp(t, app, "Doorman CLI")
	alice := app.client(uaWindowsChrome, ipBerlin)
	alice.signup("alice@example.com", pw)
	alice.createToken("laptop script", "7", "sessions:read")
	m := app.mail("alice@example.com", "An access token was created")
	if !strings.Contains(m.Text, "laptop script") || !strings.Contains(m.Text, "Berlin") {
		t.Fatalf("the token mail:\n%s", m.Text)
	}
	status, out := oauthPost(t, app, "/oauth/device_authorization", url.Values{"client_id": {clientID}})
	if status != http.StatusOK {
		t.Fatalf("device authorization: %d %v", status, out)
	}
	expectRedirect(t, alice.post("/device/approve", url.Values{"code": {out["user_code"].(string)}, "password": {pw}}), "/settings/security")
	m = app.mail("alice@example.com", "An app was connected")
	if !strings.Contains(m.Text, "Doorman CLI") {
		t.Fatalf("the app mail:\n%s", m.Text)
	}
}

// TestNotMeLinkDiesWithReset (finding 4): "This wasn't me" (7 days; it sets
// a password and signs in) is void once the account is reset or its address
// changes: whoever reads the old mailbox a week later takes nothing.
func TestNotMeLinkDiesWithReset(t *testing.T) {
	for _, c := range []struct {
		name  string
		after func(t *testing.T, app *testApp, owner *client)
	}{
		{"sign out everywhere", func(t *testing.T, app *testApp, owner *client) {
			expectRedirect(t, owner.post("/settings/security/sessions/revoke-all", url.Values{"password": {pw}}), "/login")
		}},
		{"an address change", func(t *testing.T, app *testApp, owner *client) {
			expectRedirect(t, owner.post("/settings/account/email", url.Values{"email": {"alice2@example.com"}, "password": {pw}}), "/settings")
			confirm := app.link(app.mail("alice2@example.com", "Confirm your new email"), "/email/confirm")
			expectRedirect(t, owner.post("/email/confirm", url.Values{"token": {linkToken(t, confirm)}}), "/settings")
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			app := newTestApp(t)
			owner := app.client(uaWindowsChrome, ipBerlin)
			owner.signup("alice@example.com", pw)
			app.client(uaMacFirefox, ipTokyo).login("alice@example.com", pw)
			notMe := app.link(app.mail("alice@example.com", "New sign-in"), "/sign-in/not-me")
			c.after(t, app, owner)
			app.advance(6 * 24 * time.Hour)
			reader := app.client(uaIPhone, ipLondon)
			res := reader.follow(notMe)
			expectStatus(t, res, http.StatusGone)
			expectBody(t, res, "no longer works")
			before := app.dump()
			expectStatus(t, reader.post("/sign-in/not-me", url.Values{"token": {linkToken(t, notMe)}, "new_password": {"reader's password"},
				"end_others": {"on"}, "end_tokens": {"on"}}), http.StatusGone)
			if app.dump() != before || reader.sessionCookie() != "" {
				t.Fatal("a void This wasn't me link acted")
			}
		})
	}
}

// TestDeviceApprovalWarnsOfAnotherPlace (info): the approval page says so
// when the tool asked from another place than the approving browser's (how
// a device code is phished), and not when both are in one place.
func TestDeviceApprovalWarnsOfAnotherPlace(t *testing.T) {
	app := newTestApp(t)
	clientID := registerApp(t, app, "Doorman CLI")
	alice := app.client(uaWindowsChrome, ipBerlin)
	alice.signup("alice@example.com", pw)
	askFrom := func(ip string) string {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, app.srv.URL+"/oauth/device_authorization", strings.NewReader(url.Values{"client_id": {clientID}}.Encode()))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("X-Forwarded-For", ip)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var out map[string]any
		if err := json.NewDecoder(res.Body).Decode(&out); err != nil || res.StatusCode != http.StatusOK {
			t.Fatalf("device authorization: %d %v %v", res.StatusCode, out, err)
		}
		return out["user_code"].(string)
	}
	page := alice.post("/device", url.Values{"code": {askFrom(ipTokyo)}})
	expectBody(t, page, "This request came from Tokyo, Japan, and you are in Berlin, Germany.")
	page = alice.post("/device", url.Values{"code": {askFrom(ipBerlin)}})
	expectStatus(t, page, http.StatusOK)
	expectNoBody(t, page, "This request came from")
}
