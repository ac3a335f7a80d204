// Package handlers is Doorman's HTTP layer: the Echo router with its whole
// middleware chain, and one file per resource (auth, sessions, account).
package handlers

import (
	"context"
	"log/slog"
	"net/netip"
	"time"

	"github.com/gorilla/sessions"
	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"doorman/db"
	"doorman/geo"
	"doorman/password"
	"doorman/static"
)

// Store is the storage the handlers need. db.Store implements it; a
// PostgreSQL store will too.
type Store interface {
	CreateUser(ctx context.Context, email, passwordHash string, isDemo bool, now time.Time) (db.User, error)
	UserByEmail(ctx context.Context, email string) (db.User, error)
	CreateSession(ctx context.Context, s db.Session) error
	SessionWithUser(ctx context.Context, id string) (db.Session, db.User, error)
	UserSession(ctx context.Context, userID int64, id string, now time.Time) (db.Session, error)
	ListSessions(ctx context.Context, userID int64, now time.Time) ([]db.Session, error)
	TouchSession(ctx context.Context, id string, t db.Touch) error
	RevokeSession(ctx context.Context, userID int64, id, reason, by string, now time.Time) (db.Session, error)
	RevokeOtherSessions(ctx context.Context, userID int64, keepID string, now time.Time) (int64, error)
	RevokeAllSessions(ctx context.Context, userID int64, reason, by string, now time.Time) (int64, error)
}

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
	// TrustedProxies are the peers whose X-Forwarded-For and
	// X-Forwarded-Proto headers are believed. Empty: no one's.
	TrustedProxies []netip.Prefix
	// Demo shows the demo account's credentials on the sign-in page.
	Demo bool
	// DemoEmail and DemoPassword are the demo account's credentials.
	DemoEmail, DemoPassword string
}

// DefaultConfig is the documented default policy.
func DefaultConfig() Config {
	return Config{
		IdleTimeout:        28 * 24 * time.Hour,
		AbsoluteLifetime:   90 * 24 * time.Hour,
		IdleExtendEvery:    time.Hour,
		ActivityWriteEvery: time.Minute,
	}
}

// Deps is everything New needs.
type Deps struct {
	Store  Store
	Geo    *geo.Resolver // nil: every location is "Unknown location"
	Hasher *password.Hasher
	Logger *slog.Logger
	Config Config
	// FlashKey signs the flash-message cookie (32 or 64 random bytes, the
	// same on every instance).
	FlashKey []byte
	// Now is the clock; nil means time.Now. Tests move it.
	Now func() time.Time
}

// app holds the dependencies every handler shares.
type app struct {
	store     Store
	geo       *geo.Resolver
	hasher    *password.Hasher
	log       *slog.Logger
	cfg       Config
	now       func() time.Time
	cookies   *sessionStore
	flashes   *sessions.CookieStore
	trusted   []netip.Prefix
	extractIP echo.IPExtractor
}

// New builds the Echo server: the middleware chain and every route.
func New(d Deps) *echo.Echo {
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Logger == nil {
		d.Logger = slog.Default()
	}
	a := &app{store: d.Store, geo: d.Geo, hasher: d.Hasher, log: d.Logger, cfg: d.Config, now: d.Now, trusted: d.Config.TrustedProxies}
	a.cookies = &sessionStore{app: a}
	a.flashes = sessions.NewCookieStore(d.FlashKey)

	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	a.extractIP = ipExtractor(d.Config.TrustedProxies)
	e.IPExtractor = a.extractIP
	e.HTTPErrorHandler = a.handleError

	// The chain, outermost first. The access log sits outside Recover so a
	// panicking request is logged with its 500 too. CSRF runs before the
	// session is loaded so a refused cross-site POST never reaches anything
	// that writes.
	e.Use(middleware.RequestID())
	e.Use(a.accessLog)
	e.Use(middleware.Recover())
	e.Use(securityHeaders)
	e.Use(middleware.BodyLimit("64K"))
	e.Use(a.csrf)
	e.Use(a.loadSession)

	e.GET("/healthz", healthz)
	e.GET(static.Prefix+"*", static.Handler())
	e.GET("/", a.home)

	e.GET("/signup", a.signupForm)
	e.POST("/signup", a.signup)
	e.GET("/login", a.loginForm)
	e.POST("/login", a.login)
	e.POST("/logout", a.logout)

	s := e.Group("/settings", a.requireAuth)
	s.GET("", a.settings)
	s.GET("/security", a.security)
	s.GET("/security/sessions/revoke-others", a.confirmRevokeOthers)
	s.POST("/security/sessions/revoke-others", a.revokeOthers)
	s.GET("/security/sessions/revoke-all", a.confirmRevokeAll)
	s.POST("/security/sessions/revoke-all", a.revokeAll)
	s.GET("/security/sessions/:id", a.sessionDetails)
	s.POST("/security/sessions/:id/revoke", a.revokeSession)
	return e
}
