package handlers_test

import (
	"context"
	"encoding/hex"
	"html"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"doorman/softauthn"
)

// windowsHello is an AAGUID the provider table names.
const windowsHello = "08987058cadc4b81b6e130de50dcbe96"

// authenticatorFor is a software authenticator answering as a browser at
// app's origin would: user verified, synced (backed up), from Windows Hello.
func authenticatorFor(t *testing.T, app *testApp) *softauthn.Authenticator {
	t.Helper()
	a := softauthn.New()
	a.Origin = app.srv.URL
	a.BackupEligible, a.BackupState = true, true
	b, err := hex.DecodeString(windowsHello)
	if err != nil {
		t.Fatal(err)
	}
	copy(a.AAGUID[:], b)
	return a
}

// addPasskeyWith adds a passkey called name with auth: the password and
// name, the ceremony's options answered by auth, the answer posted.
func (c *client) addPasskeyWith(auth *softauthn.Authenticator, name string) *response {
	c.t.Helper()
	res := c.beginPasskey(name)
	m := creationRE.FindStringSubmatch(res.body)
	if m == nil {
		c.t.Fatalf("no passkey options on the page:\n%s", snippet(res.body))
	}
	answer, err := auth.Create([]byte(m[1]))
	if err != nil {
		c.t.Fatalf("the authenticator refused the options: %v", err)
	}
	return c.post("/settings/security/passkeys/add", url.Values{"credential": {string(answer)}})
}

// passkeyAnswer begins a sign-in in this browser and returns auth's answer.
func (c *client) passkeyAnswer(auth *softauthn.Authenticator) string {
	c.t.Helper()
	res := c.post("/login/passkey/options", nil)
	expectStatus(c.t, res, http.StatusOK)
	answer, err := auth.Get([]byte(res.body))
	if err != nil {
		c.t.Fatalf("the authenticator refused the options: %v", err)
	}
	return string(answer)
}

// signInWithPasskey signs this browser in with auth's passkey.
func (c *client) signInWithPasskey(auth *softauthn.Authenticator) *response {
	c.t.Helper()
	return c.post("/login/passkey", url.Values{"credential": {c.passkeyAnswer(auth)}})
}

func TestPasskeyAddThenSignInWithoutSecondStep(t *testing.T) {
	app := newTestApp(t).atLocalhost()
	desk := app.client(uaWindowsChrome, ipBerlin)
	desk.signup("alice@example.com", pw)
	turnOnTwoFactor(t, desk, false)
	auth := authenticatorFor(t, app)

	res := desk.addPasskeyWith(auth, "Laptop")
	expectRedirect(t, res, "/settings/security#passkeys-heading")
	page, _ := desk.securityPage()
	expectBody(t, page, "Passkey “Laptop” added.", "Windows Hello", "Synced", "Never used to sign in")
	m := app.mail("alice@example.com", "A passkey was added to your Doorman account")
	if !strings.Contains(m.Text, "A passkey called “Laptop” was added") {
		t.Errorf("the mail says:\n%s", m.Text)
	}
	expectBody(t, desk.get("/settings/security/activity"), "Passkey “Laptop” added")
	list := app.passkeys(t, "alice@example.com")
	if len(list) != 1 || !list[0].BackupEligible || !list[0].BackupState || !list[0].UserVerified || list[0].Name != "Laptop" {
		t.Fatalf("stored: %+v", list)
	}

	// Another browser signs in with it: no password, no second step,
	// though two-factor is on.
	phone := app.client(uaIPhone, ipTokyo)
	res = phone.signInWithPasskey(auth)
	expectRedirect(t, res, "/settings/security")
	page, rows := phone.securityPage()
	current := ""
	for _, r := range rows {
		if r.Current {
			current = html.UnescapeString(r.HTML)
		}
	}
	if !strings.Contains(current, "Signed in with passkey “Laptop” (Windows Hello, synced)") {
		t.Errorf("the current row does not say its passkey:\n%s", current)
	}
	expectBody(t, page, "Signed in", "Safari on iPhone, Tokyo (this device)")
	app.mail("alice@example.com", "New sign-in to your Doorman account")
	if got := app.passkeys(t, "alice@example.com")[0]; got.SignCount != 1 || got.LastUsedAt.IsZero() {
		t.Errorf("after the sign-in: counter %d, last used %v", got.SignCount, got.LastUsedAt)
	}
	// next carries on where the sign-in was going.
	tab := app.client(uaMacFirefox, ipLondon)
	answer := tab.passkeyAnswer(auth)
	expectRedirect(t, tab.post("/login/passkey", url.Values{"credential": {answer}, "next": {"/settings/security/activity"}}), "/settings/security/activity")
}

// TestPasskeySignInRefusals: every answer that must not sign in is
// refused, and changes nothing: a replayed one, one for another browser's
// ceremony, an expired ceremony, another user's credential, the wrong
// origin or RP ID, no user verification, a removed passkey.
func TestPasskeySignInRefusals(t *testing.T) {
	app := newTestApp(t).atLocalhost()
	alice, bob := app.client(uaWindowsChrome, ipBerlin), app.client(uaIPhone, ipLondon)
	alice.signup("alice@example.com", pw)
	bob.signup("bob@example.com", pw)
	authA, authB := authenticatorFor(t, app), authenticatorFor(t, app)
	expectStatus(t, alice.addPasskeyWith(authA, "Alice's key"), http.StatusSeeOther)
	expectStatus(t, bob.addPasskeyWith(authB, "Bob's key"), http.StatusSeeOther)
	notChecked := "That passkey sign-in did not check out"
	tookTooLong := "That passkey sign-in took too long, or was begun in another browser."
	unknown := "it may have been removed. Sign in with your password."

	// One good sign-in, whose answer is then replayed.
	x := app.client(uaMacFirefox, ipTokyo)
	answer := x.passkeyAnswer(authA)
	expectRedirect(t, x.post("/login/passkey", url.Values{"credential": {answer}}), "/settings/security")

	refused := func(what string, c *client, status int, text string, answer func() string) {
		t.Helper()
		a := answer()
		before := withoutCeremonies(app.dump())
		res := c.post("/login/passkey", url.Values{"credential": {a}})
		expectStatus(t, res, status)
		expectBody(t, res, text)
		if c.sessionCookie() != "" {
			t.Errorf("%s signed in", what)
		}
		if after := withoutCeremonies(app.dump()); after != before {
			t.Errorf("%s changed the database:\n%s\nvs\n%s", what, before, after)
		}
	}
	stranger := func() *client { return app.client(uaMacFirefox, ipTokyo) }
	s := stranger()
	refused("a replayed answer, without a ceremony", s, http.StatusBadRequest, tookTooLong, func() string { return answer })
	s = stranger()
	refused("a replayed answer, with a ceremony of its own", s, http.StatusUnauthorized, notChecked, func() string {
		s.post("/login/passkey/options", nil)
		return answer
	})
	// The answer to one browser's ceremony, posted by another.
	s, other := stranger(), stranger()
	refused("another browser's ceremony", s, http.StatusBadRequest, tookTooLong, func() string { return other.passkeyAnswer(authA) })
	s = stranger()
	refused("an answer to a ceremony of another browser's, with one of its own", s, http.StatusUnauthorized, notChecked, func() string {
		a := other.passkeyAnswer(authA)
		s.post("/login/passkey/options", nil)
		return a
	})
	s = stranger()
	refused("an expired ceremony", s, http.StatusBadRequest, tookTooLong, func() string {
		a := s.passkeyAnswer(authA)
		app.advance(5*time.Minute + time.Second)
		return a
	})

	// Bob's credential under Alice's user handle.
	handleA, err := app.store.PasskeyUserHandle(context.Background(), userID(t, app, "alice@example.com"), app.clock())
	if err != nil {
		t.Fatal(err)
	}
	forged := authB.Clone()
	forged.Credentials()[0].UserHandle = handleA
	s = stranger()
	refused("another user's credential", s, http.StatusUnauthorized, unknown, func() string { return s.passkeyAnswer(forged) })

	for _, tc := range []struct {
		what string
		turn func(a *softauthn.Authenticator)
	}{
		{"the wrong origin", func(a *softauthn.Authenticator) { a.Origin = "http://evil.localhost:8080" }},
		{"the wrong RP ID", func(a *softauthn.Authenticator) { a.RPID = "evil.example" }},
		{"no user verification", func(a *softauthn.Authenticator) { a.UserVerified = false }},
	} {
		bad := authA.Clone()
		tc.turn(bad)
		s := stranger()
		refused(tc.what, s, http.StatusUnauthorized, notChecked, func() string { return s.passkeyAnswer(bad) })
	}

	// A removed passkey no longer signs in.
	id := app.passkeys(t, "bob@example.com")[0].ID
	expectStatus(t, bob.post(passkeyRemovePath(id), url.Values{"password": {pw}}), http.StatusSeeOther)
	s = stranger()
	refused("a removed passkey", s, http.StatusUnauthorized, unknown, func() string { return s.passkeyAnswer(authB) })
}

// withoutCeremonies is a dump without the passkey ceremonies in flight:
// a refused answer uses its ceremony up, and must change nothing else.
func withoutCeremonies(dump string) string {
	start := strings.Index(dump, "# passkey_ceremonies")
	if start < 0 {
		return dump
	}
	end := strings.Index(dump[start+1:], "\n# ")
	if end < 0 {
		return dump[:start]
	}
	return dump[:start] + dump[start+1+end+1:]
}

func passkeyRemovePath(id int64) string {
	return "/settings/security/passkeys/" + strconv.FormatInt(id, 10) + "/remove"
}

func userID(t *testing.T, app *testApp, email string) int64 {
	t.Helper()
	u, err := app.store.UserByEmail(context.Background(), email)
	if err != nil {
		t.Fatal(err)
	}
	return u.ID
}

// TestPasskeyAddRefusalsSigned: an answer for another origin or RP ID, or
// without user verification, adds nothing.
func TestPasskeyAddRefusalsSigned(t *testing.T) {
	app := newTestApp(t).atLocalhost()
	c := app.client(uaWindowsChrome, ipBerlin)
	c.signup("alice@example.com", pw)
	for _, tc := range []struct {
		what string
		turn func(a *softauthn.Authenticator)
	}{
		{"the wrong origin", func(a *softauthn.Authenticator) { a.Origin = "http://evil.localhost:8080" }},
		{"the wrong RP ID", func(a *softauthn.Authenticator) { a.RPID = "evil.example" }},
		{"no user verification", func(a *softauthn.Authenticator) { a.UserVerified = false }},
	} {
		auth := authenticatorFor(t, app)
		tc.turn(auth)
		res := c.addPasskeyWith(auth, "Laptop")
		expectStatus(t, res, http.StatusBadRequest)
		expectBody(t, res, "Nothing was added.")
		if list := app.passkeys(t, "alice@example.com"); len(list) != 0 {
			t.Fatalf("%s added a passkey: %+v", tc.what, list)
		}
	}
}

// TestPasskeyCounterBackwards: a copy of the key (its counter behind the
// one last seen) still signs in, and the passkey carries a warning: on
// the page, in the history, on the sign-in it made.
func TestPasskeyCounterBackwards(t *testing.T) {
	app := newTestApp(t).atLocalhost()
	c := app.client(uaWindowsChrome, ipBerlin)
	c.signup("alice@example.com", pw)
	auth := authenticatorFor(t, app)
	expectStatus(t, c.addPasskeyWith(auth, "Laptop"), http.StatusSeeOther)
	copyOf := auth.Clone()
	for range 3 {
		expectRedirect(t, app.client(uaIPhone, ipTokyo).signInWithPasskey(auth), "/settings/security")
	}
	thief := app.client(uaMacFirefox, ipLondon)
	expectRedirect(t, thief.signInWithPasskey(copyOf), "/settings/security") // counter 1, after 3
	page, _ := thief.securityPage()
	expectBody(t, page, "answered with a signature counter that did not go forward: it may have been copied",
		"Possible copy: its signature counter went backwards 1 time")
	expectBody(t, c.get("/settings/security/activity"), "Passkey “Laptop” may have been copied")
	if got := app.passkeys(t, "alice@example.com")[0]; got.SignCount != 3 || got.CloneWarnings != 1 {
		t.Errorf("stored counter %d, warnings %d; want 3 and 1", got.SignCount, got.CloneWarnings)
	}
}
