// Package handlers is Doorman's HTTP layer: the Echo router with its whole
// middleware chain, and one file per resource (auth, sessions, account).
package handlers

import (
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"sync"
	"time"

	"github.com/gorilla/sessions"
	"github.com/labstack/echo/v4"

	"doorman/account"
	"doorman/geo"
	"doorman/live"
	"doorman/mails"
	"doorman/oidcprovider"
	"doorman/password"
	"doorman/secretbox"
	"doorman/static"
	"doorman/views"
)

// Config holds the tunable session policy and network settings.
type Config struct {
	// IdleTimeout ends a session that has not been used for this long.
	IdleTimeout time.Duration
	// AbsoluteLifetime ends every session this long after sign-in, used or not.
	AbsoluteLifetime time.Duration
	// IdleExtendEvery is how often activity may push the idle expiry forward.
	IdleExtendEvery time.Duration
	// ActivityWriteEvery is how often a session's last activity is written.
	ActivityWriteEvery time.Duration
	// SudoWindow is how long after entering the password a session may do
	// sensitive things (end sessions, change password or email, delete the
	// account) without entering it again.
	SudoWindow time.Duration
	// MaxSessionsPerUser caps a user's live sessions; at the cap, a new
	// sign-in ends the least recently active one (and says so).
	MaxSessionsPerUser int
	// AccountFailureLimit failed sign-ins (or re-authentications) per email
	// within FailureWindow lock that email's sign-in until the oldest ages
	// out. Counted in the database: survives restarts, holds across instances.
	AccountFailureLimit int
	// IPFailureLimit failed sign-ins plus sign-ups per client IP within
	// FailureWindow block that IP (counted in memory, per instance).
	IPFailureLimit int
	FailureWindow  time.Duration
	// DeviceCodeFailuresPerUser wrong user codes at /device within
	// FailureWindow, across all of one user's sessions (in the database),
	// and DeviceCodeFailuresPerIP from one client address (in memory, per
	// instance), make code entry wait; each session also has
	// AccountFailureLimit of its own.
	DeviceCodeFailuresPerUser int
	DeviceCodeFailuresPerIP   int
	// TrustedProxies are the peers whose X-Forwarded-For,
	// X-Forwarded-Proto and X-Request-ID headers are believed. Empty: no
	// one's.
	TrustedProxies []netip.Prefix
	// HSTSMaxAge is the Strict-Transport-Security max-age sent on HTTPS
	// responses; 0 sends none.
	HSTSMaxAge time.Duration
	// StreamHeartbeat is how often an open event stream gets a comment
	// (proxies close idle connections) and rereads its session.
	StreamHeartbeat time.Duration
	// MaxStreamsPerSession bounds the event streams one session may hold
	// open (a storm of tabs must not exhaust the server).
	MaxStreamsPerSession int
	// MaxStreamsPerUser bounds the event streams one account may hold open
	// across all its sessions, on one instance.
	MaxStreamsPerUser int
	// MaxStreams bounds the event streams one instance holds open; 0:
	// derived from the process's open-file limit
	// (live.StreamsForFileLimit). These three are the live.Limits of the
	// broker given as Deps.Live: whoever builds it reads them.
	MaxStreams int
	// RequestTimeout bounds each request, and so every database call it
	// makes: a stalled database gets a 503, not an ever-growing queue.
	// (An event stream's session check has it; its later checks carry
	// db.CallTimeout.)
	RequestTimeout time.Duration
	// MaxInFlight bounds the requests being served that may read the
	// database; past it a request is refused at once with a 503 (load
	// shedding, for a stalled database). 0: no bound.
	MaxInFlight int
	// HistoryKeep is how far back the security history goes (older
	// entries are pruned).
	HistoryKeep time.Duration
	// PublicOrigin is the configured public origin (-base-url,
	// https://id.example.com): the device flow's absolute URLs (its
	// metadata's endpoints, verification_uri) start with it, so a forged
	// Host header cannot point a client elsewhere. Empty: the origin the
	// request reached us at.
	PublicOrigin string
	// APITokenRate is how many API requests a second each token may make
	// (per instance), in bursts of apiTokenBurstSeconds' worth; 0: no limit.
	APITokenRate float64
	// Demo shows the demo account's credentials on the sign-in page.
	Demo bool
	// DemoEmail and DemoPassword are the demo account's credentials.
	DemoEmail, DemoPassword string
}

// StreamLimits are the limits of the event-stream broker (Deps.Live) that
// c asks for.
func (c Config) StreamLimits() live.Limits {
	return live.Limits{PerSession: c.MaxStreamsPerSession, PerUser: c.MaxStreamsPerUser, Total: c.MaxStreams}
}

// DefaultConfig is the documented default policy.
func DefaultConfig() Config {
	return Config{
		IdleTimeout:               28 * 24 * time.Hour,
		AbsoluteLifetime:          90 * 24 * time.Hour,
		IdleExtendEvery:           time.Hour,
		ActivityWriteEvery:        time.Minute,
		SudoWindow:                10 * time.Minute,
		MaxSessionsPerUser:        100,
		AccountFailureLimit:       10,
		IPFailureLimit:            50,
		FailureWindow:             15 * time.Minute,
		DeviceCodeFailuresPerUser: 30,
		DeviceCodeFailuresPerIP:   30,
		HSTSMaxAge:                365 * 24 * time.Hour,
		StreamHeartbeat:           20 * time.Second,
		MaxStreamsPerSession:      4,
		MaxStreamsPerUser:         20,
		RequestTimeout:            10 * time.Second,
		MaxInFlight:               256,
		HistoryKeep:               90 * 24 * time.Hour,
		APITokenRate:              10,
	}
}

// Deps is everything New needs.
type Deps struct {
	Store  Store
	Geo    *geo.Resolver // nil: every location is "Unknown location"
	Hasher *password.Hasher
	Logger *slog.Logger
	Config Config
	// SecretKey is the application's secret (at least 32 random bytes,
	// the same on every instance): the keys of the flash-message cookie,
	// the device cookie and the failed-sign-in counters are derived from it.
	SecretKey []byte
	// Now is the clock; nil means time.Now. Tests move it.
	Now func() time.Time
	// Unavailable reports whether a store error means the database cannot
	// serve right now (storage.IsUnavailable): those requests answer 503
	// with Retry-After instead of 500. nil: none does.
	Unavailable func(error) bool
	// Live pushes session changes to open tabs (the store's event sink);
	// nil: the events stream answers 404 and pages work as without
	// JavaScript.
	Live *live.Broker
	// SecretBox seals two-factor secrets and the bodies of queued mail,
	// and keys the recovery codes' hashes, with a key kept outside the
	// database; nil: two-factor cannot be turned on (the page says why)
	// and mail is queued unsealed. The outbox worker must hold the same
	// ring.
	SecretBox *secretbox.Box
	// Mail sends email (reset and sign-in links, alerts, notices); nil:
	// this server sends none, and the flows that need it are not offered.
	Mail *Mail
	// OIDC is the OpenID Connect provider (apps sign their users in
	// through Doorman); nil: its routes are not served (a store without
	// its part of the store, see oidcprovider.Store).
	OIDC *oidcprovider.Provider
	// KickLogouts wakes the back-channel logout worker (its Kick) after
	// an action that owes apps logouts (so the confirmation can say they
	// got through) and after a disconnect, which ends no session (so the
	// store's events do not wake it); nil: it finds them at its next poll.
	KickLogouts func()
}

// app holds the dependencies every handler shares.
type app struct {
	store       Store
	account     *account.Service
	geo         *geo.Resolver
	hasher      *password.Hasher
	log         *slog.Logger
	cfg         Config
	now         func() time.Time
	sessions    *sessionService
	flashes     *sessions.CookieStore
	trusted     []netip.Prefix
	ipLimit     *ipLimiter
	extractIP   echo.IPExtractor
	assets      views.Assets
	crossOrigin *http.CrossOriginProtection
	keys        appKeys
	bufs        sync.Pool // *bytes.Buffer for render
	live        *live.Broker
	unavailable func(error) bool
	slots       chan struct{} // requests in flight (shed); nil: no bound
	box         *secretbox.Box
	tokenLimit  *tokenLimiter          // API requests per token
	oauthLimit  *tokenLimiter          // device authorization requests per address
	mail        *Mail                  // nil: no email
	oidc        *oidcprovider.Provider // nil: no OpenID Connect provider
	apps        appsStore              // nil: no OpenID Connect provider
	kickLogouts func()                 // wakes the back-channel logout worker; may be nil
	mails       mails.Builder          // composes every mail
	linkLimit   *ipLimiter             // "send me a link" requests per address
	// deviceCodeLimit counts wrong user codes at /device per address.
	deviceCodeLimit *ipLimiter
	// passkeyBeginLimit counts passkey sign-in ceremonies begun per
	// address (each is a row until it is finished or pruned).
	passkeyBeginLimit *ipLimiter
	// tokenPollLimit bounds /oauth/token requests per address.
	tokenPollLimit *tokenLimiter
	// kinds are the routes' kinds by their patterns (c.Path()), as the
	// routes declared them (routeSet); pages are the zero value.
	kinds map[string]routeKind
}

// appKeys are the keys derived from Deps.SecretKey, one per purpose, so no
// key is used for two things.
type appKeys struct {
	flash    []byte // signs the flash-message cookie
	devices  []byte // signs device cookies
	accounts []byte // keys the failed-sign-in counters (HMAC of the address)
}

func deriveKeys(secret []byte) appKeys {
	derive := func(purpose string) []byte {
		m := hmac.New(sha256.New, secret)
		m.Write([]byte("doorman " + purpose))
		return m.Sum(nil)
	}
	return appKeys{flash: derive("flash cookie"), devices: derive("device cookie"), accounts: derive("login failures")}
}

// parseOrigin reads an origin like https://id.example.com (no path).
func parseOrigin(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
		return nil, fmt.Errorf("%q must be an origin like https://id.example.com", s)
	}
	return u, nil
}

// New builds the Echo server: the app (newApp), its middleware chain and
// every route (routes).
func New(d Deps) (*echo.Echo, error) {
	a, files, err := newApp(d)
	if err != nil {
		return nil, err
	}
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.IPExtractor = a.extractIP
	e.HTTPErrorHandler = a.handleError
	a.middleware(e)
	a.routes(e, files)
	return e, nil
}

// newApp checks d and builds the app every handler shares, with the
// static files it serves.
func newApp(d Deps) (*app, *static.Files, error) {
	if d.Store == nil || d.Hasher == nil {
		return nil, nil, errors.New("handlers: Deps.Store and Deps.Hasher are required")
	}
	if len(d.SecretKey) < 32 {
		return nil, nil, errors.New("handlers: Deps.SecretKey must be at least 32 bytes")
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Logger == nil {
		d.Logger = slog.Default()
	}
	files, err := static.New()
	if err != nil {
		return nil, nil, err
	}
	a := &app{store: d.Store, geo: d.Geo, hasher: d.Hasher, log: d.Logger, cfg: d.Config, now: d.Now, trusted: d.Config.TrustedProxies,
		// Rejects state-changing requests that a browser marks as coming
		// from another origin (Sec-Fetch-Site), or whose Origin is foreign.
		crossOrigin: http.NewCrossOriginProtection(),
		live:        d.Live,
		unavailable: d.Unavailable,
		box:         d.SecretBox,
		oidc:        d.OIDC,
		kickLogouts: d.KickLogouts,
		account:     account.New(d.Store, d.Logger, d.Now),
		extractIP:   ipExtractor(d.Config.TrustedProxies),
	}
	if as, ok := d.Store.(appsStore); ok && d.OIDC != nil {
		a.apps = as
	}
	if a.cfg.HistoryKeep <= 0 {
		a.cfg.HistoryKeep = 90 * 24 * time.Hour
	}
	if a.cfg.StreamHeartbeat <= 0 {
		a.cfg.StreamHeartbeat = 20 * time.Second
	}
	for _, f := range []struct {
		name string
		dst  *string
	}{{"app.css", &a.assets.CSS}, {"app.js", &a.assets.JS}, {"favicon.svg", &a.assets.Icon}, {"passkeys.js", &a.assets.Passkeys}} {
		if *f.dst, err = files.Path(f.name); err != nil {
			return nil, nil, err
		}
	}
	a.sessions = &sessionService{a: a}
	a.newLimiters()
	if err := a.setOrigins(d); err != nil {
		return nil, nil, err
	}
	a.keys = deriveKeys(d.SecretKey)
	a.flashes = sessions.NewCookieStore(a.keys.flash)
	return a, files, nil
}

// apiTokenBurstSeconds is how many seconds' worth of requests a token may
// send at once: a tool that wakes up and catches up is not refused.
const apiTokenBurstSeconds = 6

// newLimiters makes the app's rate limits (per instance).
func (a *app) newLimiters() {
	// APITokenRate requests a second per token (10 by default), in bursts
	// of up to apiTokenBurstSeconds' worth (60); 0: no limit (nil).
	if r := a.cfg.APITokenRate; r > 0 {
		a.tokenLimit = newTokenLimiter(r, max(1, r*apiTokenBurstSeconds))
	}
	// A code a minute per address, in bursts of 10.
	a.oauthLimit = newTokenLimiter(1.0/60, 10)
	a.tokenPollLimit = newTokenLimiter(tokenPollsPerSecond, tokenPollBurst)
	if a.cfg.MaxInFlight > 0 {
		a.slots = make(chan struct{}, a.cfg.MaxInFlight)
	}
	a.ipLimit = newIPLimiter(a.cfg.IPFailureLimit, a.cfg.FailureWindow)
	// Links by mail: 20 requests an hour per address (a household or an
	// office shares one), on top of linkRequestsPerHour per mailbox.
	a.linkLimit = newIPLimiter(20, time.Hour)
	a.deviceCodeLimit = newIPLimiter(a.cfg.DeviceCodeFailuresPerIP, a.cfg.FailureWindow)
	// Every load of the sign-in page begins one (for the browser's
	// autofill): 120 a minute per address leaves room for an office.
	a.passkeyBeginLimit = newIPLimiter(120, time.Minute)
}

// setOrigins reads the origins the app names itself by: the mail's links'
// (with the mail builder) and the public one.
func (a *app) setOrigins(d Deps) error {
	if d.Mail != nil {
		u, err := parseOrigin(d.Mail.BaseURL)
		if err != nil {
			return fmt.Errorf("handlers: Mail.BaseURL: %w", err)
		}
		m := *d.Mail
		m.BaseURL = u.Scheme + "://" + u.Host
		a.mail = &m
		// Every mail's bodies are sealed with the key ring before they are
		// queued (the outbox worker opens them with the same ring).
		a.mails = mails.Builder{Site: "Doorman", BaseURL: m.BaseURL, Host: u.Hostname(), Box: d.SecretBox}
	}
	if a.cfg.PublicOrigin != "" {
		u, err := parseOrigin(a.cfg.PublicOrigin)
		if err != nil {
			return fmt.Errorf("handlers: Config.PublicOrigin: %w", err)
		}
		a.cfg.PublicOrigin = u.Scheme + "://" + u.Host
	}
	return nil
}
