package handlers_test

import (
	"context"
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"testing"

	"doorman/handlers"
)

func TestSecurityHeaders(t *testing.T) {
	app := newTestApp(t)
	c := app.client(uaWindowsChrome, ipBerlin)
	c.signup("alice@example.com", "correct horse")
	for _, path := range []string{"/login", "/settings", "/settings/security", "/nope"} {
		res := c.get(path)
		h := res.Header
		csp := h.Get("Content-Security-Policy")
		for _, want := range []string{"script-src 'self'", "style-src 'self'", "frame-ancestors 'none'", "default-src 'none'"} {
			if !strings.Contains(csp, want) {
				t.Errorf("%s: CSP %q lacks %q", path, csp, want)
			}
		}
		if strings.Contains(csp, "unsafe-inline") {
			t.Errorf("%s: CSP allows inline code", path)
		}
		for k, v := range map[string]string{"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin", "X-Frame-Options": "DENY"} {
			if h.Get(k) != v {
				t.Errorf("%s: %s = %q, want %q", path, k, h.Get(k), v)
			}
		}
		// No inline script or style anywhere in our HTML (the CSP would block it).
		if strings.Contains(res.body, "<script>") || strings.Contains(res.body, "style=") || strings.Contains(res.body, "<style") {
			t.Errorf("%s: inline script or style in the page", path)
		}
	}
}

func cookieNamed(res *response, name string) *http.Cookie {
	for _, ck := range res.Cookies() {
		if ck.Name == name {
			return ck
		}
	}
	return nil
}

func TestSessionCookieFlags(t *testing.T) {
	app := newTestApp(t)
	c := app.client(uaWindowsChrome, ipBerlin)
	res := c.post("/signup", url.Values{"email": {"alice@example.com"}, "password": {"correct horse"}})
	ck := cookieNamed(res, "doorman_session")
	if ck == nil {
		t.Fatal("no session cookie on sign-up")
	}
	if !ck.HttpOnly || ck.SameSite != http.SameSiteLaxMode || ck.Path != "/" || ck.Domain != "" || ck.Secure {
		t.Errorf("plain-http cookie = %+v; want HttpOnly, SameSite=Lax, Path=/, no Domain, not Secure", ck)
	}
	if ck.MaxAge <= 0 || ck.MaxAge > int(app.cfg.AbsoluteLifetime.Seconds()) {
		t.Errorf("cookie Max-Age %d, want the absolute lifetime", ck.MaxAge)
	}

	// Behind a trusted proxy that says HTTPS: Secure and __Host-, for the
	// CSRF cookie too. (A cookie jar won't send Secure cookies over the test's
	// plain http, so this browser is played by hand.)
	https := app.client(uaWindowsChrome, ipBerlin)
	req := mustRequest(http.MethodGet, app.srv.URL+"/signup")
	req.Header.Set("X-Forwarded-Proto", "https")
	res = https.do(req)
	csrf := cookieNamed(res, "__Host-doorman_csrf")
	if csrf == nil || !csrf.Secure || !csrf.HttpOnly || csrf.Path != "/" {
		t.Fatalf("https CSRF cookie = %+v", csrf)
	}
	form := url.Values{"email": {"bob@example.com"}, "password": {"correct horse"}, "csrf": {csrf.Value}}
	req, _ = http.NewRequest(http.MethodPost, app.srv.URL+"/signup", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Forwarded-Proto", "https")
	req.Header.Set("Cookie", "__Host-doorman_csrf="+csrf.Value)
	res = https.do(req)
	expectStatus(t, res, http.StatusSeeOther)
	ck = cookieNamed(res, "__Host-doorman_session")
	if ck == nil || !ck.Secure || !ck.HttpOnly || ck.SameSite != http.SameSiteLaxMode || ck.Path != "/" || ck.Domain != "" {
		t.Fatalf("https cookie = %+v", ck)
	}
	if cookieNamed(res, "doorman_session") != nil {
		t.Error("an unprefixed session cookie was set over https")
	}
}

func TestForwardedHeadersOnlyFromTrustedProxies(t *testing.T) {
	app := newTestApp(t, func(c *handlers.Config) { c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")} })
	c := app.client(uaWindowsChrome, ipBerlin) // sends X-Forwarded-For from 127.0.0.1, not a trusted proxy
	res := c.post("/signup", url.Values{"email": {"alice@example.com"}, "password": {"correct horse"}}, "X-Forwarded-Proto", "https")
	if cookieNamed(res, "__Host-doorman_session") != nil || cookieNamed(res, "doorman_session") == nil {
		t.Fatal("X-Forwarded-Proto from an untrusted peer was believed")
	}
	res, rows := c.securityPage()
	if !strings.Contains(rows[0].HTML, "This computer") || strings.Contains(res.body, "Berlin") {
		t.Fatalf("X-Forwarded-For from an untrusted peer was believed:\n%s", rows[0].HTML)
	}
	res = c.get("/settings/security/sessions/" + rows[0].ID)
	expectBody(t, res, "127.0.0.1")
}

func TestErrorPagesAndLimits(t *testing.T) {
	app := newTestApp(t)
	c := app.client(uaWindowsChrome, ipBerlin)
	res := c.get("/no/such/page")
	expectStatus(t, res, http.StatusNotFound)
	expectBody(t, res, "Page not found", "<footer", `href="/login"`)

	c.signup("alice@example.com", "correct horse")
	res = c.get("/no/such/page")
	expectStatus(t, res, http.StatusNotFound)
	expectBody(t, res, "Page not found", `action="/logout"`) // inside the layout, sign-out visible

	res = c.post("/signup", url.Values{"email": {"x@example.com"}, "password": {strings.Repeat("p", 70<<10)}})
	expectStatus(t, res, http.StatusRequestEntityTooLarge)
	expectBody(t, res, "Too much data")

	res = c.send(http.MethodPut, "/login", nil)
	expectStatus(t, res, http.StatusMethodNotAllowed)
	res = c.send(http.MethodDelete, "/settings/security", url.Values{"csrf": {""}})
	expectStatus(t, res, http.StatusForbidden) // no token: refused before anything else

	// Static files are served under hashed names, cached for a year.
	assets := slices.Compact(slices.Sorted(slices.Values(regexpAll(`/static/[a-z]+\.[0-9a-f]{10}\.(css|js|svg)`, res.body))))
	if len(assets) != 4 {
		t.Fatalf("error page links %v, want the stylesheet, script, favicon and icon sprite", assets)
	}
	for _, m := range assets {
		r := c.get(m)
		expectStatus(t, r, http.StatusOK)
		if !strings.Contains(r.Header.Get("Cache-Control"), "immutable") {
			t.Errorf("%s: Cache-Control %q", m, r.Header.Get("Cache-Control"))
		}
	}
	expectStatus(t, c.get("/static/app.css"), http.StatusNotFound)
}

func TestLogsNeverContainSecrets(t *testing.T) {
	app := newTestApp(t)
	desktop, phone := app.client(uaWindowsChrome, ipBerlin), app.client(uaIPhone, ipLondon)
	var secrets []string
	saw := func(c *client) {
		v := c.sessionCookie()
		_, secret, _ := strings.Cut(v, ".")
		secrets = append(secrets, v, secret, c.csrfToken())
	}
	// A full run: sign-up, sign-in, a failed sign-in, re-authentication
	// (rotation), revocation, expiry, password change, sign-out.
	desktop.signup("alice@example.com", pw)
	saw(desktop)
	phone.login("alice@example.com", pw)
	saw(phone)
	phone.post("/login", url.Values{"email": {"alice@example.com"}, "password": {"a wrong guess"}})
	app.outsideSudo()
	desktop.post("/settings/security/sessions/revoke-others", url.Values{"password": {"another wrong guess"}})
	desktop.post("/settings/security/sessions/"+phone.currentID()+"/revoke", url.Values{"password": {pw}})
	saw(desktop)
	phone.get("/settings")
	desktop.post("/settings/security/password", url.Values{"current_password": {pw}, "new_password": {"the new password"}})
	saw(desktop)
	idle := app.client(uaMacFirefox, ipTokyo)
	idle.login("alice@example.com", "the new password")
	saw(idle)
	app.advance(app.cfg.IdleTimeout)
	idle.get("/settings")
	desktop.login("alice@example.com", "the new password")
	saw(desktop)
	desktop.post("/logout", nil)
	secrets = append(secrets, pw, "a wrong guess", "another wrong guess", "the new password")

	logs := app.logs.String()
	for _, event := range []string{"session created", "session revoked", "session rotated", "session expired", "sign-in failed", "re-authentication failed", "password changed"} {
		if !strings.Contains(logs, event) {
			t.Errorf("lifecycle event %q not logged", event)
		}
	}
	for i, s := range secrets {
		if len(s) < 8 {
			t.Fatalf("secret %d %q too short to prove anything", i, s)
		}
		if strings.Contains(logs, s) {
			t.Errorf("logs contain a secret (%d chars)", len(s))
		}
	}
}

// TestDatabaseNeverHoldsSecrets: the cookie's secret is stored only as its
// SHA-256 hash, and nothing in the database is the cookie (S4).
func TestDatabaseNeverHoldsSecrets(t *testing.T) {
	app := newTestApp(t)
	c := app.client(uaWindowsChrome, ipBerlin)
	c.signup("alice@example.com", pw)
	cookie := c.sessionCookie()
	id, secret, _ := strings.Cut(cookie, ".")
	dump := app.dump()
	if strings.Contains(dump, secret) || strings.Contains(dump, cookie) || strings.Contains(dump, strings.ToLower(secret)) {
		t.Fatal("the database holds the session secret")
	}
	raw, err := base32NoPad.DecodeString(secret)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(raw)
	if !strings.Contains(dump, id+" | "+hex.EncodeToString(sum[:])) {
		t.Fatal("the row does not hold the secret's SHA-256")
	}
	if strings.Contains(dump, pw) {
		t.Fatal("the database holds the password")
	}
	// The public id in the page is not the secret.
	res, _ := c.securityPage()
	if strings.Contains(res.body, secret) {
		t.Fatal("the page shows the secret")
	}
}

// TestSignOutOnEveryAuthenticatedPage (S14).
func TestSignOutOnEveryAuthenticatedPage(t *testing.T) {
	app := newTestApp(t)
	c := app.client(uaWindowsChrome, ipBerlin)
	c.signup("alice@example.com", pw)
	id := c.currentID()
	for _, path := range []string{"/settings", "/settings/security", "/settings/security/sessions/" + id,
		"/settings/security/sessions/revoke-others", "/settings/security/sessions/revoke-all",
		"/settings/security/password", "/settings/account/email", "/settings/account/delete", "/settings/nope"} {
		res := c.get(path)
		if !strings.Contains(res.body, `<form method="post" action="/logout">`) || !strings.Contains(res.body, ">Sign out</button>") {
			t.Errorf("%s (%d): no sign-out button", path, res.StatusCode)
		}
		if res.Header.Get("Cache-Control") != "no-store" {
			t.Errorf("%s: Cache-Control %q", path, res.Header.Get("Cache-Control"))
		}
	}
}

var base32NoPad = base32.StdEncoding.WithPadding(base32.NoPadding)

// TestClientGoneIsNotAnError: a request whose browser went away (context
// canceled) is not logged as a server error, and gets no error page.
func TestClientGoneIsNotAnError(t *testing.T) {
	app := newTestApp(t)
	c := app.client(uaWindowsChrome, ipBerlin)
	c.signup("alice@example.com", pw)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	req := httptest.NewRequest(http.MethodGet, "/settings/security", nil).WithContext(ctx)
	req.Header.Set("Cookie", "doorman_session="+c.sessionCookie())
	rec := httptest.NewRecorder()
	app.e.ServeHTTP(rec, req)
	if strings.Contains(app.logs.String(), "level=ERROR") {
		t.Fatalf("a canceled request was logged as an error:\n%s", app.logs.String())
	}
	if !strings.Contains(app.logs.String(), "status=499") || rec.Body.Len() != 0 {
		t.Fatalf("want status 499 in the access log and no body; body %d bytes", rec.Body.Len())
	}
}
