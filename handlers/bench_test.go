package handlers_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"doorman/apptest"
	"doorman/db"
	"doorman/handlers"
	"doorman/password"
	"doorman/seed"
	"doorman/sessiontoken"
	"doorman/storage"
)

// The benchmarks run the real server (handlers.New over a seeded SQLite
// file) through ServeHTTP, without a network, so they measure our code. The
// clock is frozen at the seeding time, so no request writes last activity:
// what is measured is the read path every request pays. `make bench` runs
// them; `go test` does not.

// benchNow is the seeding time and the server's clock.
var benchNow = time.Now().UTC().Truncate(time.Second)

type benchDB struct {
	store   db.Store
	cookies []benchCookie
	extras  bool // withAppAndPasskeys has run
}

type benchCookie struct{ email, id, value string }

var (
	benchMu  sync.Mutex
	benchDBs = map[string]*benchDB{}
	benchDir string
)

// TestMain removes the seeded databases, which are shared by the runs of
// `-count` and can be large.
func TestMain(m *testing.M) {
	code := m.Run()
	benchMu.Lock()
	for _, d := range benchDBs {
		d.store.Close()
	}
	if benchDir != "" {
		os.RemoveAll(benchDir)
	}
	os.Exit(code)
}

// seeded returns a database of users × perUser sessions, with the cookies of
// the first cookieUsers users' sessions, made once per process.
func seeded(b *testing.B, users, perUser, cookieUsers int) *benchDB {
	b.Helper()
	benchMu.Lock()
	defer benchMu.Unlock()
	key := fmt.Sprintf("%d-%d-%d", users, perUser, cookieUsers)
	if d := benchDBs[key]; d != nil {
		return d
	}
	if benchDir == "" {
		dir, err := os.MkdirTemp("", "doorman-bench-")
		if err != nil {
			b.Fatal(err)
		}
		benchDir = dir
	}
	ctx := context.Background()
	store, err := storage.Open(ctx, filepath.Join(benchDir, key+".db"), db.Options{})
	if err != nil {
		b.Fatal(err)
	}
	var out bytes.Buffer
	def := handlers.DefaultConfig()
	if _, err := seed.Run(ctx, store, seed.Options{
		Users: users, SessionsPerUser: perUser, CookieUsers: cookieUsers, PasswordHash: "unused",
		ActiveWithin: time.Minute, IdleTimeout: def.IdleTimeout, AbsoluteLifetime: def.AbsoluteLifetime, Now: benchNow,
	}, &out); err != nil {
		b.Fatal(err)
	}
	d := &benchDB{store: store}
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		f := strings.Fields(line)
		d.cookies = append(d.cookies, benchCookie{f[0], f[1], f[2]})
	}
	benchDBs[key] = d
	return d
}

// benchServer is handlers.New as main.go builds it (real hashing
// parameters, the GeoIP data of `make setup`), logging at Info to nowhere
// (the formatting is paid, the write is not), on a clock stopped at the
// seeding time.
func benchServer(b *testing.B, store db.Store) http.Handler {
	b.Helper()
	clock := apptest.NewClock()
	clock.Advance(benchNow.Sub(clock.Now()))
	app := apptest.New(b, apptest.Options{
		Store: store, Clock: clock, GeoIPDir: os.Getenv("DOORMAN_GEOIP_DIR"),
		Hasher: password.NewHasher(password.DefaultParams(), 4),
		Log:    io.Discard, LogLevel: slog.LevelInfo,
		Config: func(c *handlers.Config) { c.TrustedProxies = nil },
	})
	return app.Handler
}

// get serves one GET with the session cookie through h.
func get(h http.Handler, path, cookie string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodGet, path, nil)
	req.RemoteAddr = "192.0.2.44:51000"
	req.Header.Set("User-Agent", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36")
	req.AddCookie(&http.Cookie{Name: "doorman_session", Value: cookie})
	// A browser has its CSRF cookie after its first page.
	req.AddCookie(&http.Cookie{Name: "doorman_csrf", Value: "bench-csrf-token-bench-csrf-token-bench-csr"})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

var sessionCounts = []struct {
	name           string
	users, perUser int
}{{"sessions=1k", 100, 10}, {"sessions=100k", 10_000, 10}, {"sessions=1M", 100_000, 10}}

// BenchmarkSessionCheck is the check every authenticated request pays:
// cookie → session row (verified secret, alive) → user. "request" is the
// whole middleware chain on GET /, which answers a signed-in browser with a
// redirect and renders nothing; "store" is the one query and the secret
// check alone. Cookies rotate over 1,000 sessions of 100 users.
func BenchmarkSessionCheck(b *testing.B) {
	for _, sc := range sessionCounts {
		b.Run(sc.name+"/request", func(b *testing.B) {
			d := seeded(b, sc.users, sc.perUser, 100)
			h := benchServer(b, d.store)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				rec := get(h, "/", d.cookies[i%len(d.cookies)].value)
				if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/settings/security" {
					b.Fatalf("GET / = %d %s", rec.Code, rec.Header().Get("Location"))
				}
				i++
			}
		})
		b.Run(sc.name+"/store", func(b *testing.B) {
			d := seeded(b, sc.users, sc.perUser, 100)
			ctx := context.Background()
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				id, secret, _ := sessiontoken.Parse(d.cookies[i%len(d.cookies)].value)
				s, _, err := d.store.SessionWithUser(ctx, id)
				if err != nil || !sessiontoken.Matches(secret, s.SecretHash) || !s.Alive(benchNow) {
					b.Fatalf("session %s: %v", id, err)
				}
				i++
			}
		})
	}
}

// BenchmarkSecurityPage is GET /settings/security, handler through render,
// for a user with 1, 10 and 100 live sessions, in a database of 10,000 of
// them, who has signed in to an app with Doorman and has two passkeys (so
// the page's connected apps and passkeys are read and shown).
func BenchmarkSecurityPage(b *testing.B) {
	for _, n := range []int{1, 10, 100} {
		b.Run(fmt.Sprintf("sessions=%d", n), func(b *testing.B) {
			d := seeded(b, 10_000/n, n, 1)
			withAppAndPasskeys(b, d)
			h := benchServer(b, d.store)
			b.ReportAllocs()
			var size int
			for b.Loop() {
				rec := get(h, "/settings/security", d.cookies[0].value)
				if rec.Code != http.StatusOK {
					b.Fatalf("GET /settings/security = %d", rec.Code)
				}
				size = rec.Body.Len()
			}
			b.ReportMetric(float64(size), "html-bytes")
		})
	}
}

// withAppAndPasskeys gives the user of d's first cookie, once, an app they
// signed in to with Doorman from that session (consented, holding a
// refresh token) and two passkeys, as a person who uses them has.
func withAppAndPasskeys(b *testing.B, d *benchDB) {
	b.Helper()
	benchMu.Lock()
	defer benchMu.Unlock()
	if d.extras {
		return
	}
	ctx, s, c, now := context.Background(), d.store, d.cookies[0], benchNow
	u, err := s.UserByEmail(ctx, c.email)
	if err != nil {
		b.Fatal(err)
	}
	if err := s.CreateApp(ctx, db.App{ClientID: "wiki", Name: "Wiki", CreatedAt: now,
		RedirectURIs: []string{"https://wiki.example/cb"}, BackchannelLogoutURI: "https://wiki.example/bcl"}); err != nil {
		b.Fatal(err)
	}
	scopes := []string{"openid", "email", "offline_access"}
	if err := s.CreateAuthRequest(ctx, db.AuthRequest{ID: "bench-req", ClientID: "wiki", RedirectURI: "https://wiki.example/cb",
		Scopes: scopes, ResponseMode: "query", MaxAge: -1, CreatedAt: now, ExpiresAt: now.Add(10 * time.Minute)}); err != nil {
		b.Fatal(err)
	}
	if err := s.CompleteAuthRequest(ctx, "bench-req", u.ID, c.id, now, []string{"pwd"}, u.Epoch, now); err != nil {
		b.Fatal(err)
	}
	if err := s.SaveAuthCode(ctx, "bench-req", []byte("bench-code"), now.Add(time.Minute)); err != nil {
		b.Fatal(err)
	}
	r, err := s.RedeemAuthCode(ctx, []byte("bench-code"), now)
	if err != nil {
		b.Fatal(err)
	}
	if err := s.GrantConsent(ctx, u.ID, "wiki", scopes, now); err != nil {
		b.Fatal(err)
	}
	grant := db.Grant{ID: "bench-rt", Kind: db.GrantRefresh, SecretHash: []byte("bench-secret"), FamilyID: "bench-req", UserID: u.ID,
		ClientID: "wiki", SessionID: c.id, Offline: true, Scopes: scopes, AuthTime: now, AMR: []string{"pwd"}, CreatedAt: now,
		ExpiresAt: now.Add(30 * 24 * time.Hour)}
	if err := s.IssueGrants(ctx, []db.Grant{grant}, "", r.Epoch, now); err != nil {
		b.Fatal(err)
	}
	for i, name := range []string{"MacBook", "iPhone"} {
		p := db.Passkey{UserID: u.ID, Name: name, CredentialID: []byte("bench-cred-" + name), PublicKey: []byte("bench-pk"),
			AAGUID: make([]byte, 16), AttestationType: "none", BackupEligible: true, BackupState: true, UserVerified: true,
			Transports: []string{"internal", "hybrid"}, CreatedAt: now.Add(time.Duration(i-2) * time.Hour)}
		if _, err := s.AddPasskey(ctx, p, 20, u.Epoch); err != nil {
			b.Fatal(err)
		}
	}
	d.extras = true
}
