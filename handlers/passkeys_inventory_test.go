package handlers_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"doorman/operator"
	"doorman/softauthn"
)

// invAuthenticator is a software authenticator for the app's origin.
func (a *testApp) invAuthenticator() *softauthn.Authenticator {
	auth := softauthn.New()
	auth.Origin = a.srv.URL
	return auth
}

// invAddPasskey adds a passkey called name from this browser's session,
// through the pages, auth answering the ceremony.
func (c *client) invAddPasskey(auth *softauthn.Authenticator, name string) {
	c.t.Helper()
	res := c.beginPasskey(name)
	m := creationRE.FindStringSubmatch(res.body)
	if m == nil {
		c.t.Fatalf("no passkey options on the page:\n%s", snippet(res.body))
	}
	answer, err := auth.Create([]byte(m[1]))
	if err != nil {
		c.t.Fatal(err)
	}
	expectRedirect(c.t, c.post("/settings/security/passkeys/add", url.Values{"credential": {string(answer)}}), "/settings/security#passkeys-heading")
}

// invPasskeyLogin signs this browser in with auth's passkey; the response
// to the answer.
func (c *client) invPasskeyLogin(auth *softauthn.Authenticator) *response {
	c.t.Helper()
	res := c.post("/login/passkey/options", nil)
	expectStatus(c.t, res, http.StatusOK)
	answer, err := auth.Get([]byte(res.body))
	if err != nil {
		c.t.Fatal(err)
	}
	return c.post("/login/passkey", url.Values{"credential": {string(answer)}})
}

// TestNotYouRemovesPasskeysAddedThere: a thief with the password adds a
// passkey from their session and signs in with it elsewhere; "Not you?" on
// that session names the passkey beforehand, removes it, and ends the
// session it opened, in one step; the owner's own passkey is offered,
// unticked, and stays. A ticked id that is not the user's refuses the form,
// changing nothing.
func TestNotYouRemovesPasskeysAddedThere(t *testing.T) {
	app := newTestApp(t).atLocalhost()
	owner := app.client(uaWindowsChrome, ipBerlin)
	owner.signup("alice@example.com", pw)
	mine := app.invAuthenticator()
	owner.invAddPasskey(mine, "Work laptop")
	thief := app.client(uaMacFirefox, ipTokyo)
	thief.login("alice@example.com", pw)
	thiefKey := app.invAuthenticator()
	thief.invAddPasskey(thiefKey, "Spare")
	elsewhere := app.client(uaIPhone, ipLondon)
	expectStatus(t, elsewhere.invPasskeyLogin(thiefKey), http.StatusSeeOther)
	expectStatus(t, elsewhere.get("/settings"), http.StatusOK)
	bob := app.client(uaWindowsChrome, ipBerlin)
	bob.signup("bob@example.com", pw)
	bobKey := app.invAuthenticator()
	bob.invAddPasskey(bobKey, "Bob's")

	keys := app.passkeys(t, "alice@example.com")
	if len(keys) != 2 || keys[0].Name != "Work laptop" || keys[1].Name != "Spare" {
		t.Fatalf("alice's passkeys: %+v", keys)
	}
	mineID := strconv.FormatInt(keys[0].ID, 10)
	thiefID := thief.currentID()
	if keys[1].AddedBySession != thiefID || keys[0].AddedBySession != owner.currentID() {
		t.Fatalf("added by %q and %q; want the owner's session and %q", keys[0].AddedBySession, keys[1].AddedBySession, thiefID)
	}
	page := "/settings/security/sessions/" + thiefID + "/not-you"
	res := owner.get(page)
	expectBody(t, res, "The passkey “Spare” added from that session will be removed.",
		"A new password doesn&#39;t change your passkeys", `name="remove_passkey" type="checkbox" value="`+mineID+`"`, "Also remove “Work laptop”")
	if strings.Contains(res.body, `value="`+mineID+`" checked`) {
		t.Error("the owner's own passkey is ticked for removal")
	}

	// Bob's passkey id, ticked on alice's form: refused, nothing changes.
	bobID := strconv.FormatInt(app.passkeys(t, "bob@example.com")[0].ID, 10)
	before := app.dump()
	res = owner.post(page, url.Values{"current_password": {pw}, "new_password": {"a new password 1"}, "remove_passkey": {bobID}})
	expectStatus(t, res, http.StatusConflict)
	expectBody(t, res, "A passkey you ticked is no longer on this account")
	if app.dump() != before {
		t.Fatal("a form naming another user's passkey changed something")
	}

	expectRedirect(t, owner.post(page, url.Values{"current_password": {pw}, "new_password": {"a new password 1"}}), "/settings/security")
	expectBody(t, owner.get("/settings/security"), "Signed out 2 sessions and changed your password. Removed the passkey “Spare”.")
	if keys := app.passkeys(t, "alice@example.com"); len(keys) != 1 || keys[0].Name != "Work laptop" {
		t.Errorf("alice's passkeys after: %+v; want Work laptop only", keys)
	}
	expectRedirect(t, thief.get("/settings"), "/login?next=%2Fsettings")
	expectRedirect(t, elsewhere.get("/settings"), "/login?next=%2Fsettings")
	// The thief's passkey no longer signs in; the owner's does; Bob's is
	// untouched.
	expectStatus(t, app.client(uaIPhone, ipLondon).invPasskeyLogin(thiefKey), http.StatusUnauthorized)
	expectStatus(t, app.client(uaIPhone, ipLondon).invPasskeyLogin(mine), http.StatusSeeOther)
	if len(app.passkeys(t, "bob@example.com")) != 1 {
		t.Error("bob's passkey went")
	}
	expectBody(t, owner.get("/settings/security/activity"), "Spare")
}

// TestResetOffersPasskeyRemoval: the reset page lists the passkeys,
// unticked, saying they keep working unless removed there; a ticked one is
// removed with the reset, the other stays and still signs in.
func TestResetOffersPasskeyRemoval(t *testing.T) {
	app := newTestApp(t).atLocalhost()
	owner := app.client(uaWindowsChrome, ipBerlin)
	owner.signup("alice@example.com", pw)
	laptop, phone := app.invAuthenticator(), app.invAuthenticator()
	phone.BackupEligible, phone.BackupState = true, true
	owner.invAddPasskey(laptop, "Laptop")
	owner.invAddPasskey(phone, "Phone")
	keys := app.passkeys(t, "alice@example.com")
	phoneID := strconv.FormatInt(keys[1].ID, 10)

	c := app.client(uaMacFirefox, ipTokyo)
	expectRedirect(t, c.post("/password/forgot", url.Values{"email": {"alice@example.com"}}), "/password/forgot")
	link := app.link(app.mail("alice@example.com", "Reset your Doorman password"), "/password/reset")
	res := c.follow(link)
	expectBody(t, res, "Passkeys keep working after a password reset unless you remove them here.",
		"Also remove “Laptop”", "Also remove “Phone”", "(synced, added", "(this device only, added")
	for _, k := range keys {
		if strings.Contains(res.body, `value="`+strconv.FormatInt(k.ID, 10)+`" checked`) {
			t.Errorf("passkey %s is ticked for removal", k.Name)
		}
	}
	expectRedirect(t, c.post("/password/reset", url.Values{"token": {linkToken(t, link)}, "new_password": {"a new password 1"}, "remove_passkey": {phoneID}}), "/settings/security")
	expectBody(t, c.get("/settings/security"), "Removed the passkey “Phone”.")
	if keys := app.passkeys(t, "alice@example.com"); len(keys) != 1 || keys[0].Name != "Laptop" {
		t.Errorf("passkeys after the reset: %+v; want Laptop only", keys)
	}
	expectStatus(t, app.client(uaIPhone, ipLondon).invPasskeyLogin(phone), http.StatusUnauthorized)
	expectStatus(t, app.client(uaIPhone, ipLondon).invPasskeyLogin(laptop), http.StatusSeeOther)
}

// TestNotMeLinkRemovesPasskeysAddedThere: "This wasn't me" from the
// alert mail names and removes the passkey the disowned sign-in added.
func TestNotMeLinkRemovesPasskeysAddedThere(t *testing.T) {
	app := newTestApp(t).atLocalhost()
	owner := app.client(uaWindowsChrome, ipBerlin)
	owner.signup("alice@example.com", pw)
	thief := app.client(uaMacFirefox, ipTokyo)
	thief.login("alice@example.com", pw)
	thief.invAddPasskey(app.invAuthenticator(), "Spare")
	m := app.mail("alice@example.com", "New sign-in")
	notMe := app.link(m, "/sign-in/not-me")
	phone := app.client(uaIPhone, ipLondon)
	expectBody(t, phone.follow(notMe), "The passkey “Spare” added from that session will be removed.")
	expectRedirect(t, phone.post("/sign-in/not-me", url.Values{"token": {linkToken(t, notMe)}, "new_password": {"a new password 1"}}), "/settings/security")
	expectBody(t, phone.get("/settings/security"), "Removed the passkey “Spare”.")
	if keys := app.passkeys(t, "alice@example.com"); len(keys) != 0 {
		t.Errorf("passkeys after: %+v; want none", keys)
	}
	expectRedirect(t, thief.get("/settings"), "/login?next=%2Fsettings")
}

// TestDisabledUserPasskeyRefused: the operator's `users disable` names the
// user's passkeys and says they cannot sign in; a passkey sign-in of the
// disabled account is refused and starts no session; enabled again, the
// same passkey signs in.
func TestDisabledUserPasskeyRefused(t *testing.T) {
	app := newTestApp(t).atLocalhost()
	owner := app.client(uaWindowsChrome, ipBerlin)
	owner.signup("alice@example.com", pw)
	key := app.invAuthenticator()
	owner.invAddPasskey(key, "Laptop")
	op := func(args ...string) string {
		t.Helper()
		var out bytes.Buffer
		if err := operator.Run(context.Background(), append(args, "-db", app.dbPath), func(string) string { return "" }, &out,
			slog.New(slog.NewTextHandler(io.Discard, nil)), app.clock); err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		return out.String()
	}
	out := op("users", "disable", "alice@example.com")
	if !strings.Contains(out, "Its 1 passkey(s) stay stored but cannot sign in while the account is disabled:") || !strings.Contains(out, `"Laptop"`) {
		t.Errorf("users disable:\n%s", out)
	}
	c := app.client(uaIPhone, ipLondon)
	res := c.invPasskeyLogin(key)
	if res.StatusCode < 400 {
		t.Fatalf("a disabled user's passkey sign-in: %d, want a refusal", res.StatusCode)
	}
	expectBody(t, res, "This account has been disabled.")
	expectRedirect(t, c.get("/settings"), "/login?next=%2Fsettings")
	u, err := app.store.UserByEmail(context.Background(), "alice@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if live, err := app.store.ListSessions(context.Background(), u.ID, app.clock()); err != nil || len(live) != 0 {
		t.Errorf("after a refused passkey sign-in: %d live sessions, %v; want none", len(live), err)
	}
	op("users", "enable", "alice@example.com")
	expectStatus(t, app.client(uaIPhone, ipLondon).invPasskeyLogin(key), http.StatusSeeOther)
}
