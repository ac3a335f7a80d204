package handlers_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"doorman/apptest"
	"doorman/handlers"
	"doorman/password"
)

// fuzzServer is the real router over a real store, served in-process, with
// the real limits, so state grows as it can in production: with them off,
// hundreds of thousands of failures piled up for the seed's email, which a
// throttled attempt (recording nothing) never allows. Nothing is trusted as
// a proxy: the fuzzer cannot choose its address.
func fuzzServer(f *testing.F) http.Handler {
	hasher := password.NewHasher(password.Params{Memory: 8, Time: 1, Threads: 1}, 4)
	app := apptest.New(f, apptest.Options{Hasher: hasher, Config: func(c *handlers.Config) { c.TrustedProxies = nil }})
	hash, _ := hasher.Hash(context.Background(), "correct horse")
	if _, err := app.Store.CreateUser(context.Background(), "alice@example.com", hash, false, app.Clock.Now()); err != nil {
		f.Fatal(err)
	}
	return app.Handler
}

// onSite reports whether a redirect target is a path on this site.
func onSite(loc string) bool {
	u, err := url.Parse(loc)
	return err == nil && strings.HasPrefix(loc, "/") && !strings.HasPrefix(loc, "//") && !strings.HasPrefix(loc, "/\\") && u.Host == "" && u.Scheme == ""
}

// FuzzSessionCookie sends arbitrary session cookies: each must be treated as
// signed out (a redirect to sign-in), never adopted, never a 5xx.
func FuzzSessionCookie(f *testing.F) {
	e := fuzzServer(f)
	for _, s := range []string{"", "x", "aaaaaaaaaaaaaaaa.", "aaaaaaaaaaaaaaaa." + strings.Repeat("A", 52), "' OR 1=1 --", "\x00\xff", strings.Repeat("a", 4000)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, value string) {
		req := httptest.NewRequest(http.MethodGet, "/settings/security", nil)
		req.Header.Set("Cookie", "doorman_session="+value)
		rec := httptest.NewRecorder()
		e.ServeHTTP(rec, req)
		if rec.Code != http.StatusSeeOther || !strings.HasPrefix(rec.Header().Get("Location"), "/login") {
			t.Fatalf("cookie %q: status %d, Location %q", value, rec.Code, rec.Header().Get("Location"))
		}
	})
}

// FuzzAuthForms posts arbitrary bodies to the sign-in and sign-up forms, with
// a valid CSRF token: any answer but a 5xx (or a panic) is fine, and a
// failure never sets a session cookie.
func FuzzAuthForms(f *testing.F) {
	e := fuzzServer(f)
	f.Add(true, "email=alice%40example.com&password=correct+horse")
	f.Add(true, "email=alice%40example.com&password=wrong")
	f.Add(false, "email=new%40example.com&password=12345678&next=%2Fsettings")
	f.Add(true, "email=%00&password=%ff%fe&next=//evil")
	f.Add(false, "email=a&email=b&password=")
	f.Add(true, "%zz=&;;&=")
	const token = "0123456789012345678901234567890123456789012"
	f.Fuzz(func(t *testing.T, login bool, body string) {
		path := "/signup"
		if login {
			path = "/login"
		}
		req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body+"&csrf="+token))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Cookie", "doorman_csrf="+token)
		rec := httptest.NewRecorder()
		e.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("%s %q: status %d", path, body, rec.Code)
		}
		if rec.Code != http.StatusSeeOther && strings.Contains(rec.Header().Get("Set-Cookie"), "doorman_session=") &&
			!strings.Contains(rec.Header().Get("Set-Cookie"), "Max-Age=0") {
			t.Fatalf("%s %q: status %d set a session cookie", path, body, rec.Code)
		}
		if loc := rec.Header().Get("Location"); rec.Code == http.StatusSeeOther && !onSite(loc) {
			t.Fatalf("%s %q: redirect off-site to %q", path, body, loc)
		}
	})
}
