package handlers

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"doorman/db"
	"doorman/password"
)

// fuzzServer is the real router over a real store, served in-process.
func fuzzServer(f *testing.F) *echo.Echo {
	store, err := db.Open(context.Background(), filepath.Join(f.TempDir(), "fuzz.db"))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { store.Close() })
	hasher := password.NewHasher(password.Params{Memory: 8, Time: 1, Threads: 1}, 4)
	hash, _ := hasher.Hash(context.Background(), "correct horse")
	if _, err := store.CreateUser(context.Background(), "alice@example.com", hash, false, timeZero()); err != nil {
		f.Fatal(err)
	}
	// The real limits, so state grows as it can in production: with them
	// off, hundreds of thousands of failures piled up for the seed's email,
	// which a throttled attempt (recording nothing) never allows.
	cfg := DefaultConfig()
	return New(Deps{Store: store, Hasher: hasher, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Config: cfg, FlashKey: bytes.Repeat([]byte{1}, 32)})
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
		if loc := rec.Header().Get("Location"); rec.Code == http.StatusSeeOther && safeNext(loc) != loc {
			t.Fatalf("%s %q: redirect off-site to %q", path, body, loc)
		}
	})
}

// FuzzSafeNext: whatever comes in, what comes out is "" or a path on this
// site.
func FuzzSafeNext(f *testing.F) {
	for _, s := range []string{"/settings", "//evil.example", "/\\evil", "https://evil.example", "/%2f%2fevil", "/\t/evil", "javascript:alert(1)"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, next string) {
		got := safeNext(next)
		if got == "" {
			return
		}
		if got != next || got[0] != '/' || (len(got) > 1 && (got[1] == '/' || got[1] == '\\')) {
			t.Fatalf("safeNext(%q) = %q", next, got)
		}
		u, err := url.Parse(got)
		if err != nil || u.Host != "" || u.Scheme != "" {
			t.Fatalf("safeNext(%q) = %q leaves the site", next, got)
		}
		for _, r := range got {
			if r < ' ' || r == 0x7f {
				t.Fatalf("safeNext(%q) kept a control character", next)
			}
		}
	})
}

// FuzzEmail: a normalised email that passes validation is plain printable
// ASCII with one @, short enough, and normalising it again changes nothing.
func FuzzEmail(f *testing.F) {
	for _, s := range []string{"alice@example.com", " Alice@Example.COM ", "аlice@example.com", "a@b", "\"a b\"@example.com", "a@b.c@d.e", "<a@b.c>"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		email := normaliseEmail(raw)
		if emailError(email) != "" {
			return
		}
		if !utf8.ValidString(email) || len(email) > maxEmailBytes || strings.Count(email, "@") < 1 || normaliseEmail(email) != email {
			t.Fatalf("accepted %q as %q", raw, email)
		}
		for i := 0; i < len(email); i++ {
			if email[i] <= ' ' || email[i] >= 0x7f {
				t.Fatalf("accepted %q with byte %#x", email, email[i])
			}
		}
	})
}

func timeZero() time.Time { return time.Unix(0, 0) }
