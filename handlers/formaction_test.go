package handlers_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

// formAction is the form-action directive of a response's CSP.
func formAction(t *testing.T, res *response) string {
	t.Helper()
	for _, d := range strings.Split(res.Header.Get("Content-Security-Policy"), ";") {
		if d = strings.TrimSpace(d); strings.HasPrefix(d, "form-action ") {
			return d
		}
	}
	t.Fatalf("no form-action in CSP %q", res.Header.Get("Content-Security-Policy"))
	return ""
}

// TestFormActionReachesTheAppBeingSignedIn: browsers apply form-action to
// the redirects a form submission follows, and a sign-in an app started
// ends in a redirect to the app. The pages whose forms lead there (the
// sign-in page and two-factor step with next= naming the request, the
// re-authentication at the browser's step) allow the app's origin, and
// only those pages, and only that origin. (The browser suite proves it in
// Chromium: e2e TestOIDCSignInWithTwoFactor.)
func TestFormActionReachesTheAppBeingSignedIn(t *testing.T) {
	a := newOIDCApp(t)
	browser := a.client(uaWindowsChrome, ipBerlin)
	rp := a.newRelyingParty("wiki", false, true)
	const self, withApp = "form-action 'self'", "form-action 'self' https://app.example"

	if got := formAction(t, browser.get("/login")); got != self {
		t.Errorf("plain sign-in page: %q, want %q", got, self)
	}
	_, res := rp.start(browser)
	cont := res.Header.Get("Location")
	res = browser.get(cont)
	login := "/login?next=" + url.QueryEscape(cont)
	expectRedirect(t, res, login)
	res = browser.get(login)
	expectStatus(t, res, http.StatusOK)
	if got := formAction(t, res); got != withApp {
		t.Errorf("sign-in page on the way to the app: %q, want %q", got, withApp)
	}
	// A refused password re-renders the form: still on the way.
	res = browser.post("/signup", url.Values{"email": {"alice@example.com"}, "password": {"short"}, "next": {cont}})
	expectStatus(t, res, http.StatusUnprocessableEntity)
	if got := formAction(t, res); got != withApp {
		t.Errorf("sign-up form re-rendered on the way to the app: %q, want %q", got, withApp)
	}
	// next= naming no request in flight, or another page: 'self' only.
	for _, path := range []string{"/login?next=" + url.QueryEscape("/oidc/continue?id=nope"), "/login?next=%2Fsettings"} {
		if got := formAction(t, browser.get(path)); got != self {
			t.Errorf("%s: %q, want %q", path, got, self)
		}
	}

	// The re-authentication page (prompt=login) is the browser's step itself.
	browser.signup("alice@example.com", "correct horse")
	a.advance(time.Hour)
	_, res = rp.start(browser, oauth2.SetAuthURLParam("prompt", "login"))
	res = browser.get(res.Header.Get("Location"))
	expectBody(t, res, "enter your password again")
	if got := formAction(t, res); got != withApp {
		t.Errorf("re-authentication for the app: %q, want %q", got, withApp)
	}
	if got := formAction(t, browser.get("/settings/security")); got != self {
		t.Errorf("Security page: %q, want %q", got, self)
	}
}
