package handlers_test

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"testing"
)

// TestTwoFactorNeedsAVerifiedAddress: two-factor is turned on only for a
// verified address. Someone who signs up with another person's address
// (unverified) is told to verify it first, with the link offered again,
// and the setup is refused, changing nothing; once verified it works.
func TestTwoFactorNeedsAVerifiedAddress(t *testing.T) {
	app := newTestApp(t)
	c := app.client(uaWindowsChrome, ipBerlin)
	c.signup("alice@example.com", pw)
	page := c.get("/settings/security/two-factor")
	expectBody(t, page, "data-verify-first", "alice@example.com, is verified", `action="/settings/account/verify"`, "Send the link again")
	expectNoBody(t, page, "Set up two-factor")
	before := app.dump()
	res := c.post("/settings/security/two-factor/setup", url.Values{"password": {pw}})
	expectStatus(t, res, http.StatusUnprocessableEntity)
	expectBody(t, res, "Verify your email address first")
	if app.dump() != before {
		t.Fatal("a refused setup changed the database")
	}
	expectNoBody(t, c.get("/settings/security/two-factor"), "data-otpauth")

	c.verifyEmail("alice@example.com")
	expectBody(t, c.get("/settings/security/two-factor"), "Set up two-factor")
	turnOnTwoFactor(t, c, false)
	expectBody(t, c.get("/settings/security/two-factor"), "Turn off two-factor")
}

// TestResetClearsASquattersSecondFactor: an account whose two-factor was
// turned on before its address was verified (made before the pages
// required a verified address: someone may have signed up with another
// person's address) is given back to the address's owner by a password
// reset link: the page asks for no code, the reset turns two-factor off
// (mailed, in the history), and the new password alone signs in.
func TestResetClearsASquattersSecondFactor(t *testing.T) {
	app := newTestApp(t)
	squatter := app.client(uaMacFirefox, ipTokyo)
	squatter.signup("alice@example.com", pw)
	// Two-factor turned on as the pages allowed before: the address not
	// verified (the store records that).
	user, err := app.store.UserByEmail(context.Background(), "alice@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if user.EmailVerified() {
		t.Fatal("the squatter's address is verified")
	}
	sealed := app.app.SecretBox.Seal([]byte("JBSWY3DPEHPK3PXP"), "two-factor user "+strconv.FormatInt(user.ID, 10))
	if err := app.store.StartTwoFactor(context.Background(), user.ID, sealed, app.clock()); err != nil {
		t.Fatal(err)
	}
	if err := app.store.EnableTwoFactor(context.Background(), user.ID, sealed, 1, nil, app.clock()); err != nil {
		t.Fatal(err)
	}
	expectRedirect(t, app.client(uaIPhone, ipLondon).post("/login", url.Values{"email": {"alice@example.com"}, "password": {pw}}), "/login/two-factor")

	owner := app.client(uaWindowsChrome, ipBerlin)
	expectRedirect(t, owner.post("/password/forgot", url.Values{"email": {"alice@example.com"}}), "/password/forgot")
	link := app.link(app.mail("alice@example.com", "Reset your"), "/password/reset")
	page := owner.follow(link)
	expectBody(t, page, "before its address was verified", "this reset turns it off")
	expectNoBody(t, page, `name="code"`)
	expectRedirect(t, owner.post("/password/reset", url.Values{"token": {linkToken(t, link)}, "new_password": {"the owner's password 1"}}), "/settings/security")
	expectBody(t, owner.get("/settings/security/two-factor"), "Set up two-factor")
	expectRedirect(t, squatter.get("/settings"), "/login?next=%2Fsettings")
	app.mail("alice@example.com", "Two-factor authentication is off")
	expectBody(t, owner.get("/settings/security/activity"), "Two-factor authentication turned off",
		"by a password reset from the account&#39;s address")
	app.client(uaIPhone, ipLondon).login("alice@example.com", "the owner's password 1")
}
