package handlers_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// TestHostileRequests throws bad input at every endpoint. Each request must
// get a clear 4xx (or a redirect to sign-in, for a browser that turns out to
// be signed out), never a 5xx, and leave the database exactly as it was.
func TestHostileRequests(t *testing.T) {
	app := newTestApp(t)
	alice := app.client(uaWindowsChrome, ipBerlin)
	alice.signup("alice@example.com", pw)
	bob := app.client(uaIPhone, ipLondon)
	bob.signup("bob@example.com", pw)
	aliceID := alice.currentID()
	bobID := bob.currentID()
	bobCookie := bob.sessionCookie()
	// A cookie that was valid once: bob signs in elsewhere and out again.
	old := app.client(uaMacFirefox, ipTokyo)
	old.login("bob@example.com", pw)
	replayed := old.sessionCookie()
	old.post("/logout", nil)
	app.advance(2 * time.Minute) // past the activity-write interval: a wrongly accepted request would write

	// A device code alice approved (waiting for its app), and one pending.
	clientID := registerApp(t, app, "Doorman CLI")
	deviceCode := func() string {
		t.Helper()
		status, out := oauthPost(t, app, "/oauth/device_authorization", url.Values{"client_id": {clientID}})
		if status != http.StatusOK {
			t.Fatalf("device authorization: %d %v", status, out)
		}
		return out["user_code"].(string)
	}
	approved, pending := deviceCode(), deviceCode()
	expectRedirect(t, alice.post("/device/approve", url.Values{"code": {approved}, "password": {pw}}), "/settings/security")
	approvedPath := "/settings/security/approvals/" + strings.ReplaceAll(approved, "-", "") + "/cancel"

	sqlish := `' OR '1'='1'; DROP TABLE sessions; --`
	htmlish := `<script>alert(1)</script><img src=x onerror=alert(1)>`
	huge := strings.Repeat("A", 70<<10)
	type req struct {
		name    string
		as      *client
		method  string
		path    string
		form    url.Values
		headers []string
		cookie  string // replaces the session cookie when set
		want    int    // exact status; 303 means "to sign-in"
	}
	cases := []req{
		{"forged cookie", nil, "GET", "/settings/security", nil, nil, "forged.cookie", 303},
		{"cookie with real id, wrong secret", nil, "GET", "/settings/security", nil, nil, bobID + "." + strings.Repeat("A", 52), 303},
		{"replayed signed-out cookie", nil, "GET", "/settings/security", nil, nil, replayed, 303},
		{"replayed cookie on a POST", nil, "POST", "/settings/security/sessions/revoke-others", nil, nil, replayed, 303},
		{"SQL in the cookie", nil, "GET", "/settings", nil, nil, sqlish, 303},
		{"HTML in the cookie", nil, "GET", "/settings", nil, nil, htmlish, 303},
		{"another user's session details", alice, "GET", "/settings/security/sessions/" + bobID, nil, nil, "", 404},
		{"another user's session revoke", alice, "POST", "/settings/security/sessions/" + bobID + "/revoke", nil, nil, "", 404},
		{"unknown id", alice, "POST", "/settings/security/sessions/aaaaaaaaaaaaaaaa/revoke", nil, nil, "", 404},
		{"id that is not an id", alice, "POST", "/settings/security/sessions/" + url.PathEscape(sqlish) + "/revoke", nil, nil, "", 404},
		{"id with HTML", alice, "GET", "/settings/security/sessions/" + url.PathEscape(htmlish), nil, nil, "", 404},
		{"upper-case id", alice, "GET", "/settings/security/sessions/" + strings.ToUpper(aliceID), nil, nil, "", 404},
		{"id with a traversal", alice, "GET", "/settings/security/sessions/..%2f..%2fsettings", nil, nil, "", 404},
		{"cross-site POST with token", alice, "POST", "/settings/security/sessions/revoke-all", nil, []string{"Sec-Fetch-Site", "cross-site"}, "", 403},
		{"same-site POST with token", alice, "POST", "/settings/security/sessions/revoke-others", nil, []string{"Sec-Fetch-Site", "same-site"}, "", 403},
		{"foreign Origin without Sec-Fetch-Site", alice, "POST", "/settings/security/sessions/revoke-all", nil, []string{"Origin", "https://evil.example"}, "", 403},
		{"foreign Origin, Sec-Fetch-Site same-origin lie", alice, "POST", "/logout", nil, []string{"Sec-Fetch-Site", "cross-site", "Origin", "https://evil.example"}, "", 403},
		{"POST without token", alice, "POST", "/settings/security/sessions/revoke-all", url.Values{"csrf": {""}}, nil, "", 403},
		{"POST with another browser's token", alice, "POST", "/settings/security/sessions/revoke-all", url.Values{"csrf": {bob.csrfToken()}}, nil, "", 403},
		{"sign-up with a giant body", app.client(uaWindowsChrome, ipBerlin), "POST", "/signup", url.Values{"email": {"x@example.com"}, "password": {huge}}, nil, "", 413},
		{"revoke with a giant body", alice, "POST", "/settings/security/sessions/revoke-all", url.Values{"pad": {huge}}, nil, "", 413},
		{"giant next= on the sign-in form", app.client(uaWindowsChrome, ipBerlin), "POST", "/login", url.Values{"email": {"nobody@example.com"}, "password": {"x"}, "next": {"/" + strings.Repeat("n", 60<<10)}}, nil, "", 401},
		{"SQL as email", app.client(uaWindowsChrome, ipBerlin), "POST", "/signup", url.Values{"email": {sqlish}, "password": {pw}}, nil, "", 422},
		{"HTML as email", app.client(uaWindowsChrome, ipBerlin), "POST", "/signup", url.Values{"email": {htmlish + "@example.com"}, "password": {pw}}, nil, "", 422},
		{"confusable email (Cyrillic а)", app.client(uaWindowsChrome, ipBerlin), "POST", "/signup", url.Values{"email": {"аlice@example.com"}, "password": {pw}}, nil, "", 422},
		{"fullwidth @ email", app.client(uaWindowsChrome, ipBerlin), "POST", "/signup", url.Values{"email": {"alice＠example.com"}, "password": {pw}}, nil, "", 422},
		{"email with a NUL", app.client(uaWindowsChrome, ipBerlin), "POST", "/signup", url.Values{"email": {"ali\x00ce@example.com"}, "password": {pw}}, nil, "", 422},
		{"duplicate email differently cased", app.client(uaWindowsChrome, ipBerlin), "POST", "/signup", url.Values{"email": {"ALICE@EXAMPLE.COM"}, "password": {pw}}, nil, "", 422},
		{"SQL as sign-in password", app.client(uaWindowsChrome, ipBerlin), "POST", "/login", url.Values{"email": {"nobody@example.com"}, "password": {sqlish}}, nil, "", 401},
		{"next= off-site on a failed sign-in", app.client(uaWindowsChrome, ipBerlin), "POST", "/login", url.Values{"email": {"bob@example.com"}, "password": {"wrong"}, "next": {"https://evil.example"}}, nil, "", 401},
		{"malformed form encoding", alice, "POST", "/settings/security/sessions/revoke-all", nil, []string{"Content-Type", "multipart/form-data; boundary=nope"}, "", 403},
		{"HTML in the user agent", app.client(htmlish, ipBerlin), "GET", "/settings", nil, nil, "", 303},
		{"SQL in X-Forwarded-For", alice, "GET", "/settings/security/sessions/aaaaaaaaaaaaaaaa", nil, []string{"X-Forwarded-For", sqlish}, "", 404},
		{"unknown method with a token", alice, "PATCH", "/settings/security", nil, nil, "", 404},
		{"unknown method without a token", alice, "DELETE", "/settings/security/sessions/" + bobID, url.Values{"csrf": {""}}, nil, "", 403},
		// From the security review: a fresh session (inside its sudo
		// window) still needs the password for these.
		{"email change without the password, inside the sudo window", alice, "POST", "/settings/account/email", url.Values{"email": {"mallory@example.com"}}, nil, "", 403},
		{"account deletion without the password, inside the sudo window", alice, "POST", "/settings/account/delete", nil, nil, "", 403},
		{"password in the query string of an email change", alice, "POST", "/settings/account/email?password=" + url.QueryEscape(pw), url.Values{"email": {"mallory@example.com"}}, nil, "", 403},
		{"credentials in the query string of a sign-in", app.client(uaWindowsChrome, ipBerlin), "POST", "/login?email=bob%40example.com&password=" + url.QueryEscape(pw), nil, nil, "", 422},
		{"CSRF token only in the query string", alice, "POST", "/settings/security/sessions/revoke-all?csrf=" + alice.csrfToken(), url.Values{"csrf": {""}}, nil, "", 403},
		// Emailed links: forged, malformed or foreign tokens are unknown
		// links, and change nothing.
		{"reset link with a forged token", nil, "GET", "/password/reset?token=" + bobID + "." + strings.Repeat("A", 52), nil, nil, "", 404},
		{"reset with SQL as the token", nil, "POST", "/password/reset", url.Values{"token": {sqlish}, "new_password": {"a new password 1"}}, nil, "", 404},
		{"reset with HTML as the token", nil, "GET", "/password/reset?token=" + url.QueryEscape(htmlish), nil, nil, "", 404},
		{"reset with the token only in the query string", nil, "POST", "/password/reset?token=" + bobID + "." + strings.Repeat("A", 52), url.Values{"new_password": {"a new password 1"}}, nil, "", 404},
		{"reset with a giant password", nil, "POST", "/password/reset", url.Values{"token": {"x"}, "new_password": {huge}}, nil, "", 413},
		{"sign-in link with a forged token", nil, "POST", "/login/link/open", url.Values{"token": {bobID + "." + strings.Repeat("B", 52)}}, nil, "", 404},
		{"This wasn't me with an empty token", nil, "POST", "/sign-in/not-me", url.Values{"new_password": {"a new password 1"}}, nil, "", 404},
		{"undo with a token of the wrong shape", nil, "GET", "/email/undo?token=..%2f..", nil, nil, "", 404},
		{"cross-site reset", nil, "POST", "/password/reset", url.Values{"token": {"x"}, "new_password": {"a new password 1"}}, []string{"Sec-Fetch-Site", "cross-site"}, "", 403},
		{"cross-site sign-in link request", nil, "POST", "/login/link", url.Values{"email": {"bob@example.com"}}, []string{"Sec-Fetch-Site", "cross-site"}, "", 403},
		{"forgot with HTML as email", nil, "POST", "/password/forgot", url.Values{"email": {htmlish}}, nil, "", 422},
		// From the second review: cancelling, vouching, approving.
		{"cancel link with a forged token", nil, "POST", "/email/cancel", url.Values{"token": {bobID + "." + strings.Repeat("C", 52)}}, nil, "", 404},
		{"This was me with a forged token", nil, "POST", "/sign-in/known", url.Values{"token": {bobID + "." + strings.Repeat("D", 52)}}, nil, "", 404},
		{"This was me with the token only in the query string", nil, "POST", "/sign-in/known?token=" + bobID + "." + strings.Repeat("D", 52), nil, nil, "", 404},
		{"cross-site cancel of a pending email change", alice, "POST", "/settings/account/email/cancel", nil, []string{"Sec-Fetch-Site", "cross-site"}, "", 403},
		{"another user's approval withdrawn", bob, "POST", approvedPath, nil, nil, "", 404},
		{"cross-site approval withdrawal", alice, "POST", approvedPath, nil, []string{"Sec-Fetch-Site", "cross-site"}, "", 403},
		{"approval code with SQL", alice, "POST", "/settings/security/approvals/" + url.PathEscape(sqlish) + "/cancel", nil, nil, "", 404},
		{"device approval without the password, inside the sudo window", alice, "POST", "/device/approve", url.Values{"code": {pending}}, nil, "", 403},
		{"cross-site device approval with the password", alice, "POST", "/device/approve", url.Values{"code": {pending}, "password": {pw}}, []string{"Sec-Fetch-Site", "cross-site"}, "", 403},
		{"another user's Not you?", alice, "POST", "/settings/security/sessions/" + bobID + "/not-you", url.Values{"current_password": {pw}, "new_password": {"a new password 1"}}, nil, "", 404},
	}
	// Failed sign-ins are recorded on purpose (that is the throttle), so they
	// are compared separately.
	before := app.dump()
	for _, tc := range cases {
		c := tc.as
		if c == nil {
			c = app.client(uaWindowsChrome, ipBerlin)
		}
		if tc.cookie != "" {
			c.jar.SetCookies(mustURL(app.srv.URL), []*http.Cookie{{Name: "doorman_session", Value: url.QueryEscape(tc.cookie)}})
		}
		var res *response
		if tc.method == "GET" {
			req := mustRequest("GET", app.srv.URL+tc.path)
			for i := 0; i+1 < len(tc.headers); i += 2 {
				req.Header.Set(tc.headers[i], tc.headers[i+1])
			}
			res = c.do(req)
		} else {
			res = c.send(tc.method, tc.path, cloneForm(tc.form), tc.headers...)
		}
		if res.StatusCode != tc.want {
			t.Errorf("%s: status %d, want %d", tc.name, res.StatusCode, tc.want)
			continue
		}
		if tc.want == http.StatusSeeOther && !strings.HasPrefix(res.Header.Get("Location"), "/login") {
			t.Errorf("%s: redirected to %q, want sign-in", tc.name, res.Header.Get("Location"))
		}
		if strings.Contains(res.body, htmlish) {
			t.Errorf("%s: unescaped HTML echoed back", tc.name)
		}
		if tc.want >= 400 && !strings.Contains(res.body, "</html>") {
			t.Errorf("%s: no error page", tc.name)
		}
	}
	if len(cases) < 40 {
		t.Fatalf("only %d hostile requests", len(cases))
	}
	if after := app.dump(); !sameExceptFailures(before, after) {
		t.Fatalf("hostile requests changed the database:\n--- before\n%s\n--- after\n%s", before, after)
	}
	// Both users are still signed in exactly as before.
	expectStatus(t, alice.get("/settings"), http.StatusOK)
	bob.jar.SetCookies(mustURL(app.srv.URL), []*http.Cookie{{Name: "doorman_session", Value: bobCookie}})
	expectStatus(t, bob.get("/settings"), http.StatusOK)
}

func cloneForm(f url.Values) url.Values {
	out := url.Values{}
	for k, v := range f {
		out[k] = v
	}
	return out
}
