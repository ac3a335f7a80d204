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
	UserByID(ctx context.Context, id int64) (db.User, error)
	UpdatePassword(ctx context.Context, userID int64, hash string) error
	UpdateEmail(ctx context.Context, userID int64, email string) error
	DeleteUser(ctx context.Context, userID int64) error
	CreateSession(ctx context.Context, s db.Session, maxPerUser int) ([]db.Session, error)
	RotateSession(ctx context.Context, id string, secretHash []byte, now time.Time) error
	SessionWithUser(ctx context.Context, id string) (db.Session, db.User, error)
	UserSession(ctx context.Context, userID int64, id string, now time.Time) (db.Session, error)
	ListSessionSummaries(ctx context.Context, userID int64, now time.Time) ([]db.SessionSummary, error)
	TouchSession(ctx context.Context, id string, t db.Touch) error
	RevokeSession(ctx context.Context, userID int64, id, reason, by string, now time.Time) (db.Session, error)
	RevokeOtherSessions(ctx context.Context, userID int64, keepID, reason string, now time.Time) (int64, error)
	RevokeAllSessions(ctx context.Context, userID int64, reason, by string, now time.Time) (int64, error)
	RecordLoginFailure(ctx context.Context, email, ip string, at time.Time) error
	LoginFailuresSince(ctx context.Context, email string, since time.Time) (int, time.Time, error)
	ClearLoginFailures(ctx context.Context, email string) error
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
		IdleTimeout:         28 * 24 * time.Hour,
		AbsoluteLifetime:    90 * 24 * time.Hour,
		IdleExtendEvery:     time.Hour,
		ActivityWriteEvery:  time.Minute,
		SudoWindow:          10 * time.Minute,
		MaxSessionsPerUser:  100,
		AccountFailureLimit: 10,
		IPFailureLimit:      50,
		FailureWindow:       15 * time.Minute,
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
	ipLimit   *ipLimiter
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
	a.ipLimit = newIPLimiter(d.Config.IPFailureLimit, d.Config.FailureWindow)
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
	s.GET("/security/password", a.passwordForm)
	s.POST("/security/password", a.changePassword)
	s.GET("/account/email", a.emailForm)
	s.POST("/account/email", a.changeEmail)
	s.GET("/account/delete", a.confirmDeleteAccount)
	s.POST("/account/delete", a.deleteAccount)
	return e
}
