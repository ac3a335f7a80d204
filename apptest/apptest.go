// Package apptest builds the real server for tests, one way for every kind of
// test (handler tests, fuzz targets, benchmarks, the browser suite):
// handlers.New over a real store in a temp folder, the sample GeoIP data,
// a fast password hasher and a clock the test controls.
//
// How the clocks work: a test clock starts at the real present (in whole
// seconds, as the stores keep time) and moves only when the test says so
// (Advance), or, for the browser suite, runs with the wall clock plus what
// the test advanced. The server, the store and the operator commands of one
// test all read that one clock, so no test depends on the date it runs.
package apptest

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"doorman/backchannel"
	"doorman/db"
	"doorman/db/postgres/pgtest"
	"doorman/geo"
	"doorman/geo/geotest"
	"doorman/handlers"
	"doorman/live"
	"doorman/mailer"
	"doorman/mailtest"
	"doorman/oidcprovider"
	"doorman/password"
	"doorman/paths"
	"doorman/secretbox"
	"doorman/storage"
)

// Clock is a test clock, safe for concurrent use.
type Clock struct {
	mu      sync.Mutex
	base    time.Time
	offset  time.Duration
	running bool
}

// NewClock returns a clock stopped at the real present.
func NewClock() *Clock { return &Clock{base: time.Now().UTC().Truncate(time.Second)} }

// NewRunningClock returns a clock that runs with the wall clock, ahead of it
// by whatever Advance added (the browser suite: pages and scripts see time
// pass).
func NewRunningClock() *Clock { return &Clock{running: true} }

// Now is the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.running {
		return time.Now().Add(c.offset)
	}
	return c.base.Add(c.offset)
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.offset += d
}

// Options say how to build the app; the zero value is a fresh SQLite store,
// the sample GeoIP data, a fast hasher, a stopped clock, no log, the default
// config with loopback trusted as a proxy (so test clients choose their
// address with X-Forwarded-For).
type Options struct {
	// Config adjusts the default config.
	Config func(*handlers.Config)
	// SecretBox is the two-factor key ring; nil: a fresh random one.
	SecretBox *secretbox.Box
	// Store is used instead of a fresh one (a seeded benchmark database);
	// the caller closes it.
	Store db.Store
	// DSN opens this database (a file or a postgres:// URL) instead of a
	// fresh one; it is migrated, and closed at the end of the test.
	DSN string
	// Events receives the store's events (fresh stores only).
	Events db.EventSink
	// Clock is the server's clock; nil: NewClock().
	Clock *Clock
	// Hasher hashes passwords; nil: a fast one (64 KiB, one pass), which
	// tests the same code paths in a fraction of the time.
	Hasher *password.Hasher
	// Log receives the server's log; nil: discarded.
	Log io.Writer
	// LogLevel is the least level logged; nil: Debug (everything).
	LogLevel slog.Leveler
	// GeoIPDir is a folder of real .mmdb files; empty: the sample data.
	GeoIPDir string
	// SMTP is the mail server the App's outbox worker delivers to (a real
	// one, in process: package mailtest); nil: mail goes to a folder
	// (App.MailDir), as with `go run .` without SMTP.
	SMTP *mailtest.Server
	// DevMail serves the development mail viewer (/dev/mail) over the
	// mail folder, as -dev-mail does (without SMTP only).
	DevMail bool
	// NoMail runs the server without email.
	NoMail bool
	// BaseURL is the public origin (-base-url): of the links mails carry
	// and the device flow's URLs; empty: mails carry DefaultBaseURL (tests
	// take the path and query of a link) and the device flow the
	// request's own origin.
	BaseURL string
}

// DefaultBaseURL is the origin of links in mails when Options.BaseURL is
// empty.
const DefaultBaseURL = "http://doorman.test"

// EnvStore chooses the store every App of the test run uses: "postgres"
// (each App on its own fresh database of the DOORMAN_TEST_POSTGRES server,
// see package pgtest) or, by default, "sqlite". `make test` runs the
// handler and browser tests once with each: a store matrix over one suite.
const EnvStore = "DOORMAN_TEST_STORE"

// UsePostgres reports whether this test run's Apps use PostgreSQL.
func UsePostgres() bool { return os.Getenv(EnvStore) == "postgres" }

// App is the real server and what it was built from.
type App struct {
	Handler *echo.Echo
	Store   db.Store
	// DBPath is the SQLite file or the PostgreSQL DSN, for operator
	// commands run beside the server.
	DBPath string
	Config handlers.Config
	Clock  *Clock
	Geo    *geo.Resolver
	// Live is the broker pushing session changes to open streams.
	Live *live.Broker
	// SecretBox seals two-factor secrets (a fresh random key per App; a
	// second instance on the same database must be given this one).
	SecretBox *secretbox.Box
	// Mailer sends the outbox (nil with NoMail); MailDir is where it
	// writes mail when there is no SMTP server.
	Mailer  *mailer.Worker
	MailDir string
	// OIDC is the OpenID Connect provider; nil while the store has no
	// OpenID Connect part.
	OIDC *oidcprovider.Provider
	// Backchannel sends the logouts owed to apps (nil while the provider
	// is off). It polls every 200 ms on the real clock (a claim is a write
	// transaction: as the mail worker, not faster) and retries on the
	// App's: a failed delivery is due again 10 s later on that clock, so
	// a test with a stopped clock advances it to see the retry.
	Backchannel *backchannel.Worker
	deps        handlers.Deps
	testingT    testing.TB
}

// New builds the app for t; everything it opens is closed by t.Cleanup.
func New(t testing.TB, o Options) *App {
	t.Helper()
	dir := t.TempDir()
	a := &App{Clock: o.Clock, testingT: t}
	if a.Clock == nil {
		a.Clock = NewClock()
	}
	a.Config = handlers.DefaultConfig()
	a.Config.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	a.Config.PublicOrigin = o.BaseURL
	if o.Config != nil {
		o.Config(&a.Config)
	}
	// The broker is the store's event sink, and needs the store to recheck
	// sessions: made first, pointed at the store once it is open. Its
	// limits are the config's, as in main.
	var store db.Store
	// The logout worker is the store's event sink too (it wakes when a
	// session ends); it is given the store and the provider once they
	// exist, and runs only if the provider is on.
	a.Backchannel = &backchannel.Worker{}
	a.Live = live.New(a.Config.StreamLimits(), func(ctx context.Context, id string) (bool, string, time.Time, error) {
		return live.StoreChecker(store, a.Clock.Now)(ctx, id)
	})
	a.Store = o.Store
	if a.Store == nil {
		a.DBPath = filepath.Join(dir, "test.db")
		switch {
		case o.DSN != "":
			a.DBPath = o.DSN
		case UsePostgres():
			a.DBPath = pgtest.NewDatabase(t)
		}
		s, err := storage.Open(context.Background(), a.DBPath, db.Options{Events: live.Fanout{a.Live, a.Backchannel, o.Events}, Now: a.Clock.Now})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		a.Store = s
	}
	store = a.Store
	if w, ok := a.Store.(db.Watcher); ok && o.Store == nil {
		ctx, cancel := context.WithCancel(context.Background())
		done, ready := make(chan struct{}), make(chan struct{})
		var once sync.Once
		go func() {
			defer close(done)
			w.Watch(ctx, a.Live.Notify, func() {
				a.Live.Recheck(ctx)
				once.Do(func() { close(ready) })
			})
		}()
		t.Cleanup(func() { cancel(); <-done })
		// The watcher is listening before the test goes on, as an instance
		// that has been up a while is: a test's events are then delivered,
		// not made good by the first resync.
		select {
		case <-ready:
		case <-done:
			t.Fatal("apptest: the store's watcher stopped before it started")
		case <-time.After(time.Minute):
			t.Fatal("apptest: the store's watcher did not start within a minute")
		}
	}
	t.Cleanup(a.Live.Close)
	geoDir := o.GeoIPDir
	if geoDir == "" {
		geotest.WriteSample(t, dir)
		geoDir = dir
	}
	resolver, err := geo.Open(geoDir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resolver.Close() })
	a.Geo = resolver
	hasher := o.Hasher
	if hasher == nil {
		hasher = FastHasher()
	}
	var logs io.Writer = io.Discard
	if o.Log != nil {
		logs = o.Log
	}
	var level slog.Leveler = slog.LevelDebug
	if o.LogLevel != nil {
		level = o.LogLevel
	}
	key, err := a.Store.AppSecret(context.Background(), "secret-key", 32, a.Clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	a.SecretBox = o.SecretBox
	if a.SecretBox == nil {
		k := make([]byte, secretbox.KeySize)
		rand.Read(k)
		if a.SecretBox, err = secretbox.New(k); err != nil {
			t.Fatal(err)
		}
	}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: level}))
	var mail *handlers.Mail
	if !o.NoMail {
		var transport mailer.Transport
		if o.SMTP != nil {
			t2, err := mailer.NewSMTPTransport(o.SMTP.Settings(t))
			if err != nil {
				t.Fatal(err)
			}
			transport = t2
		} else {
			a.MailDir = filepath.Join(dir, "mail")
			transport = mailer.DirTransport{Dir: a.MailDir}
		}
		// The worker reads the App's clock, as the server does (a mail is
		// due from when it was queued); a retry is due 50 ms later on that
		// clock, so a test with a stopped clock advances it to see one.
		a.Mailer = &mailer.Worker{Store: a.Store, Transport: transport, From: "Doorman <noreply@doorman.test>", Now: a.Clock.Now, Box: a.SecretBox,
			Logger: logger, Poll: 200 * time.Millisecond, Backoff: func(int) time.Duration { return 50 * time.Millisecond }}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); a.Mailer.Run(ctx) }()
		t.Cleanup(func() { cancel(); <-done })
		base := o.BaseURL
		if base == "" {
			base = DefaultBaseURL
		}
		mail = &handlers.Mail{BaseURL: base, Kick: a.Mailer.Kick}
		if o.DevMail {
			mail.DevDir = a.MailDir
		}
	}
	// The OpenID Connect provider, as main starts it: whenever the store
	// has its part. Its issuer is the public origin (the tests that sign in
	// through it serve on it), else DefaultBaseURL.
	var provider *oidcprovider.Provider
	if ps, ok := a.Store.(oidcprovider.Store); ok {
		issuer := o.BaseURL
		if issuer == "" {
			issuer = DefaultBaseURL
		}
		provider, err = oidcprovider.New(context.Background(), oidcprovider.Config{Issuer: issuer, AllowHTTP: true, Store: ps, Box: a.SecretBox, Now: a.Clock.Now, LoginURL: paths.OIDCContinueFor})
		if err != nil {
			t.Fatal(err)
		}
	}
	a.OIDC = provider
	if provider != nil {
		bs, ok := a.Store.(backchannel.Store)
		if !ok {
			t.Fatal("apptest: the store has the provider's part but not the logout outbox")
		}
		w := a.Backchannel
		w.Store, w.Signer, w.Now, w.Logger, w.Client = bs, provider, a.Clock.Now, logger, backchannel.NewClient(0)
		w.Poll, w.Backoff = 200*time.Millisecond, func(int) time.Duration { return 10 * time.Second }
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); w.Run(ctx) }()
		// Stopped and waited for: no send or store call outlives the test.
		t.Cleanup(func() { cancel(); <-done; w.Client.CloseIdleConnections() })
	} else {
		a.Backchannel = nil
	}
	a.deps = handlers.Deps{
		OIDC:  provider,
		Mail:  mail,
		Store: a.Store, Geo: resolver, Hasher: hasher, Live: a.Live, Unavailable: storage.IsUnavailable, SecretBox: a.SecretBox,
		Logger:    logger,
		Config:    a.Config,
		SecretKey: key,
		Now:       a.Clock.Now,
	}
	if a.Backchannel != nil {
		// Actions that owe logouts wake the worker, as main wires it.
		a.deps.KickLogouts = a.Backchannel.Kick
	}
	a.Handler = a.NewHandler()
	return a
}

// NewHandler builds another handlers.New over the same store, clock and
// settings: a restarted server, or a second instance on the same database.
func (a *App) NewHandler() *echo.Echo {
	e, err := handlers.New(a.deps)
	if err != nil {
		a.testingT.Fatal(err)
	}
	return e
}

// NewHandlerWith is NewHandler with its settings changed by mod: a
// restarted server configured differently, over the same store, clock and
// keys.
func (a *App) NewHandlerWith(mod func(*handlers.Config)) *echo.Echo {
	d := a.deps
	mod(&d.Config)
	e, err := handlers.New(d)
	if err != nil {
		a.testingT.Fatal(err)
	}
	return e
}

// FastHasher is a real argon2id hasher with tiny parameters, for tests.
func FastHasher() *password.Hasher {
	return password.NewHasher(password.Params{Memory: 64, Time: 1, Threads: 1}, 4)
}

// SyncBuffer is a log destination that tests can read while the server
// writes to it.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String is everything written so far.
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
