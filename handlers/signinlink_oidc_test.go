package handlers_test

import (
	"net/http"
	"net/url"
	"testing"
	"time"
)

// TestSignInLinkLeadsBackToTheApp: a sign-in an app started, done with an
// emailed link, goes on to the app. The sign-in page after asking still
// says where it continues to; the link opened in the browser that asked
// signs in and goes on to the app's sign-in (a code back at the app),
// with two-factor too (the link's code page lets its form lead to the
// app); the same link opened in another browser signs that one in to
// Doorman only; and asking again without an app's sign-in forgets the
// app.
func TestSignInLinkLeadsBackToTheApp(t *testing.T) {
	a := newOIDCApp(t)
	a.client(uaWindowsChrome, ipBerlin).signup("alice@example.com", pw)
	a.mail("alice@example.com", "Confirm your email")
	rp := a.newRelyingParty("wiki", false, true)

	// askLink starts the app's sign-in in browser (signed out), asks for a
	// link on the way and returns the sign-in and the mailed link.
	askLink := func(browser *client, email string) (*signIn, string, string) {
		t.Helper()
		s, res := rp.start(browser)
		cont := res.Header.Get("Location")
		login := "/login?next=" + url.QueryEscape(cont)
		expectRedirect(t, browser.get(cont), login)
		expectRedirect(t, browser.post("/login/link", url.Values{"email": {email}, "next": {cont}}), login)
		res = browser.get(login)
		expectBody(t, res, "we sent it a sign-in link", "to continue to <strong>App wiki</strong>")
		return s, cont, a.link(a.mail(email, "Your Doorman sign-in link"), "/login/link/open")
	}

	// In the browser that asked: on to the app.
	phone := a.client(uaIPhone, ipLondon)
	s, cont, link := askLink(phone, "alice@example.com")
	expectRedirect(t, phone.follow(link), cont)
	s.back = rp.back(phone.get(cont))
	if s.back.Get("state") != s.state || s.back.Get("code") == "" {
		t.Fatalf("back at the app with %v", s.back)
	}
	tok, err := rp.exchange(s)
	if err != nil {
		t.Fatal(err)
	}
	if c, _ := rp.verify(tok, s.nonce); c.SID != phone.currentID() {
		t.Errorf("the app's sid %q is not the link's session %q", c.SID, phone.currentID())
	}

	// Opened in another browser: it asks, and signs that browser in to
	// Doorman only (it never asked for the app's sign-in).
	asker, other := a.client(uaMacFirefox, ipTokyo), a.client(uaWindowsChrome, ipBerlin)
	_, _, link = askLink(asker, "alice@example.com")
	res := other.follow(link)
	expectBody(t, res, "asked for in another browser")
	if got := formAction(t, res); got != "form-action 'self'" {
		t.Errorf("the link's page in another browser: %q, want 'self' only", got)
	}
	expectRedirect(t, other.post("/login/link/open", url.Values{"token": {linkToken(t, link)}}), "/settings/security")

	// Asked again in that browser without an app's sign-in: the link
	// leads to Doorman's own pages.
	expectRedirect(t, asker.post("/login/link", url.Values{"email": {"alice@example.com"}}), "/login")
	link = a.link(a.mail("alice@example.com", "Your Doorman sign-in link"), "/login/link/open")
	expectRedirect(t, asker.follow(link), "/settings/security")

	// Two-factor on: the link's page asks for the code, and its form
	// leads on to the app.
	bob := a.client(uaWindowsChrome, ipBerlin)
	bob.signup("bob@example.com", pw)
	secret, _ := turnOnTwoFactor(t, bob, false)
	laptop := a.client(uaMacFirefox, ipLondon)
	s, cont, link = askLink(laptop, "bob@example.com")
	res = laptop.follow(link)
	expectStatus(t, res, http.StatusOK)
	if got := formAction(t, res); got != "form-action 'self' https://app.example" {
		t.Errorf("the link's code page on the way to the app: %q", got)
	}
	a.advance(30 * time.Second) // a fresh code: the one turning it on is spent
	expectRedirect(t, laptop.post("/login/link/open", url.Values{"token": {linkToken(t, link)}, "code": {codeAt(t, secret, a.clock())}}), cont)
	s.back = rp.back(laptop.get(cont))
	if _, err := rp.exchange(s); err != nil {
		t.Fatal(err)
	}
}
