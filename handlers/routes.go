package handlers

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"log/slog"

	"github.com/gorilla/sessions"
	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"doorman/account"
	"doorman/mails"
	"doorman/paths"
	"doorman/static"
)

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
		account:     account.New(d.Store, d.Logger, d.Now),
		extractIP:   ipExtractor(d.Config.TrustedProxies),
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
	}{{"app.css", &a.assets.CSS}, {"app.js", &a.assets.JS}, {"favicon.svg", &a.assets.Icon}} {
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

// newLimiters makes the app's rate limits (per instance).
func (a *app) newLimiters() {
	// 10 requests a second per token, in bursts of up to 60.
	a.tokenLimit = newTokenLimiter(10, 60)
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

// middleware is the chain, outermost first. The access log sits outside
// Recover so a panicking request is logged with its 500 too. CSRF runs
// before the session is loaded so a refused cross-site POST never reaches
// anything that writes.
func (a *app) middleware(e *echo.Echo) {
	e.Use(a.requestID)
	e.Use(a.accessLog)
	e.Use(middleware.Recover())
	e.Use(a.securityHeaders)
	e.Use(middleware.BodyLimit("64K"))
	e.Use(a.shed)
	e.Use(a.deadline)
	e.Use(a.csrf)
	e.Use(a.loadSession)
}

// routes lists every route: the pages, the links in mails, the event
// stream, the device flow and the API, each group with the
// authentication it needs.
func (a *app) routes(e *echo.Echo, files *static.Files) {
	e.GET(paths.Healthz, healthz)
	e.GET(paths.Readyz, a.readyz)
	e.GET(static.Prefix+"*", files.Handler())
	e.GET(paths.Home, a.home)

	e.GET(paths.Signup, a.signupForm)
	e.POST(paths.Signup, a.signup)
	e.GET(paths.Login, a.loginForm)
	e.POST(paths.Login, a.login)
	e.POST(paths.Logout, a.logout)
	e.GET(paths.LoginTwoFactor, a.loginTwoFactorForm)
	e.POST(paths.LoginTwoFactor, a.loginTwoFactor)

	// Email: asking for a link, and the pages the links in mails open
	// (each works signed in or out: the link is the credential).
	if a.mail != nil {
		e.GET(paths.PasswordForgot, a.forgotForm)
		e.POST(paths.PasswordForgot, a.forgot)
		e.GET(paths.PasswordReset, a.resetForm)
		e.POST(paths.PasswordReset, a.reset)
		e.POST(paths.LoginLink, a.requestSignInLink)
		e.GET(paths.LoginLinkOpen, a.openSignInLink)
		e.POST(paths.LoginLinkOpen, a.useSignInLink)
		e.GET(paths.EmailVerify, a.verifyEmail)
		e.GET(paths.EmailConfirm, a.confirmEmailForm)
		e.POST(paths.EmailConfirm, a.confirmEmail)
		e.GET(paths.EmailUndo, a.undoEmailForm)
		e.POST(paths.EmailUndo, a.undoEmail)
		e.GET(paths.SignInKnown, a.signInKnownForm)
		e.POST(paths.SignInKnown, a.signInKnown)
		e.GET(paths.EmailCancel, a.cancelEmailChangeForm)
		e.POST(paths.EmailCancel, a.cancelEmailChangeByLink)
		e.GET(paths.SignInNotMe, a.notMeForm)
		e.POST(paths.SignInNotMe, a.notMe)
	}
	// The development mail viewer: only when asked for (-dev-mail), and
	// only to a request from this machine itself.
	if a.mail != nil && a.mail.DevDir != "" {
		e.GET(paths.DevMail, a.devMailList, devMailLocal)
		e.GET(paths.DevMailPattern, a.devMailShow, devMailLocal)
	}

	// The tab's event stream, answered 401 rather than sent to sign in.
	e.GET(paths.Events, a.events, a.requireStreamAuth)
	// Everything else under /settings needs a signed-in browser; an unknown
	// path there sends a signed-out one to sign in too.
	g := e.Group(paths.Settings, a.requireAuth)
	settings := func(method, path string, h echo.HandlerFunc) {
		g.Add(method, strings.TrimPrefix(path, paths.Settings), h)
	}
	settings(http.MethodGet, paths.Settings, a.settings)
	settings(http.MethodGet, paths.Security, a.security)
	settings(http.MethodGet, paths.RevokeOthers, a.confirmRevokeOthers)
	settings(http.MethodPost, paths.RevokeOthers, a.revokeOthers)
	settings(http.MethodGet, paths.RevokeAll, a.confirmRevokeAll)
	settings(http.MethodPost, paths.RevokeAll, a.revokeAll)
	settings(http.MethodGet, paths.SessionPattern, a.sessionDetails)
	settings(http.MethodPost, paths.SessionRevokePattern, a.revokeSession)
	settings(http.MethodGet, paths.SessionNotYouPattern, a.notYouForm)
	settings(http.MethodPost, paths.SessionNotYouPattern, a.notYou)
	settings(http.MethodGet, paths.Password, a.passwordForm)
	settings(http.MethodPost, paths.Password, a.changePassword)
	settings(http.MethodGet, paths.TwoFactor, a.twoFactorPage)
	settings(http.MethodGet, paths.TwoFactorQR, a.twoFactorQR)
	settings(http.MethodPost, paths.TwoFactorSetup, a.twoFactorSetup)
	settings(http.MethodPost, paths.TwoFactorEnable, a.twoFactorEnable)
	settings(http.MethodPost, paths.TwoFactorDisable, a.twoFactorDisable)
	settings(http.MethodPost, paths.TwoFactorRecoveryCodes, a.twoFactorRecoveryCodes)
	settings(http.MethodGet, paths.Activity, a.activityPage)
	settings(http.MethodGet, paths.Tokens, a.tokensPage)
	settings(http.MethodPost, paths.Tokens, a.createToken)
	settings(http.MethodGet, paths.TokenRevokePattern, a.revokeToken)
	settings(http.MethodPost, paths.TokenRevokePattern, a.revokeToken)
	settings(http.MethodGet, paths.Email, a.emailForm)
	settings(http.MethodPost, paths.Email, a.changeEmail)
	settings(http.MethodPost, paths.EmailPendingCancel, a.cancelEmailChange)
	settings(http.MethodPost, paths.ApprovalCancelPattern, a.cancelApproval)
	if a.mail != nil {
		settings(http.MethodPost, paths.AccountVerify, a.resendVerification)
		settings(http.MethodPost, paths.AccountAlerts, a.setAlerts)
	}
	settings(http.MethodGet, paths.DeleteAccount, a.confirmDeleteAccount)
	settings(http.MethodPost, paths.DeleteAccount, a.deleteAccount)

	// The device flow: a signed-in browser approves a tool's code; the
	// tool's requests carry no cookie.
	e.GET(paths.OAuthMetadata, a.oauthMetadata)
	e.POST(paths.OAuthDeviceAuthorization, a.deviceAuthorization)
	e.POST(paths.OAuthToken, a.oauthToken)
	dev := e.Group(paths.Device, a.requireAuth)
	dev.GET("", a.devicePage)
	dev.POST("", a.deviceLookup)
	dev.POST(strings.TrimPrefix(paths.DeviceApprove, paths.Device), a.deviceDecide)
	dev.POST(strings.TrimPrefix(paths.DeviceDeny, paths.Device), a.deviceDecide)

	// The API: bearer tokens only (no cookie is read, no CSRF surface).
	e.GET(paths.OpenAPI, a.apiOpenAPI)
	api := e.Group(paths.APIv1, a.apiAuth)
	api.GET(strings.TrimPrefix(paths.APIMe, paths.APIv1), a.apiMe)
	api.GET(strings.TrimPrefix(paths.APIList, paths.APIv1), requireScope(ScopeSessionsRead, a.apiSessions))
	api.DELETE(strings.TrimPrefix(paths.APIOne, paths.APIv1), requireScope(ScopeSessionsWrite, a.apiRevokeSession))
}
