package handlers

import (
	"net/http"
	"slices"
	"strings"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"doorman/paths"
	"doorman/static"
)

// middleware is the chain every request passes, outermost first. The
// access log sits outside Recover so a panicking request is logged with its
// 500 too. The browser's own chain (CSRF, then the session) is carried by
// the browser's routes (browserRoutes), and by unrouted for what no route
// claims.
func (a *app) middleware(e *echo.Echo) {
	e.Use(a.requestID)
	e.Use(a.accessLog)
	e.Use(middleware.Recover())
	e.Use(a.securityHeaders)
	e.Use(middleware.BodyLimit("64K"))
	e.Use(a.shed)
	e.Use(a.deadline)
	e.Use(a.unrouted)
}

// browserRoutes registers the routes a browser visits with its cookies.
// Each carries the browser's chain: CSRF first, so a refused cross-site POST
// never reaches anything that writes, then the session. It is no Echo group
// at "/": a group's middleware also answers every unknown path under its
// prefix, and at "/" that would turn every 405 into a 404 (unrouted gives
// those the same chain instead).
type browserRoutes struct {
	e     *echo.Echo
	chain []echo.MiddlewareFunc
}

// browserRoutes registers e's browser routes with a's chain.
func (a *app) browserRoutes(e *echo.Echo) browserRoutes {
	return browserRoutes{e: e, chain: []echo.MiddlewareFunc{a.csrf, a.loadSession}}
}

// with is the browser's chain, then m.
func (b browserRoutes) with(m []echo.MiddlewareFunc) []echo.MiddlewareFunc {
	return append(slices.Clip(b.chain), m...)
}

// GET registers a browser's GET route; m run after the browser's chain.
func (b browserRoutes) GET(path string, h echo.HandlerFunc, m ...echo.MiddlewareFunc) {
	b.e.GET(path, h, b.with(m)...)
}

// POST registers a browser's POST route; m run after the browser's chain.
func (b browserRoutes) POST(path string, h echo.HandlerFunc, m ...echo.MiddlewareFunc) {
	b.e.POST(path, h, b.with(m)...)
}

// group is an Echo group under prefix: its routes, and every unknown path
// under it, run the browser's chain, then m.
func (b browserRoutes) group(prefix string, m ...echo.MiddlewareFunc) *echo.Group {
	return b.e.Group(prefix, b.with(m)...)
}

// routes lists every route, group by group, each with the authentication
// it needs: a browser's routes read its session cookie, programs' routes
// (health checks, static files, the device flow's tool side, the API) read
// none.
func (a *app) routes(e *echo.Echo, files *static.Files) {
	e.GET(paths.Healthz, healthz)
	e.GET(paths.Readyz, a.readyz)
	e.GET(static.Prefix+"*", files.Handler())

	web := a.browserRoutes(e)
	a.pageRoutes(web)
	if a.mail != nil {
		a.mailRoutes(web)
	}
	a.settingsRoutes(web)
	a.deviceFlowRoutes(e, web)
	a.apiRoutes(e)
}

// pageRoutes are the pages outside settings: home, sign-up, sign-in and
// sign-out.
func (a *app) pageRoutes(web browserRoutes) {
	web.GET(paths.Home, a.home)
	web.GET(paths.Signup, a.signupForm)
	web.POST(paths.Signup, a.signup)
	web.GET(paths.Login, a.loginForm)
	web.POST(paths.Login, a.login)
	web.POST(paths.Logout, a.logout)
	web.GET(paths.LoginTwoFactor, a.loginTwoFactorForm)
	web.POST(paths.LoginTwoFactor, a.loginTwoFactor)
}

// mailRoutes are asking for a link, and the pages the links in mails open
// (each works signed in or out: the link is the credential).
func (a *app) mailRoutes(web browserRoutes) {
	web.GET(paths.PasswordForgot, a.forgotForm)
	web.POST(paths.PasswordForgot, a.forgot)
	web.GET(paths.PasswordReset, a.resetForm)
	web.POST(paths.PasswordReset, a.reset)
	web.POST(paths.LoginLink, a.requestSignInLink)
	web.GET(paths.LoginLinkOpen, a.openSignInLink)
	web.POST(paths.LoginLinkOpen, a.useSignInLink)
	web.GET(paths.EmailVerify, a.verifyEmail)
	web.GET(paths.EmailConfirm, a.confirmEmailForm)
	web.POST(paths.EmailConfirm, a.confirmEmail)
	web.GET(paths.EmailUndo, a.undoEmailForm)
	web.POST(paths.EmailUndo, a.undoEmail)
	web.GET(paths.SignInKnown, a.signInKnownForm)
	web.POST(paths.SignInKnown, a.signInKnown)
	web.GET(paths.EmailCancel, a.cancelEmailChangeForm)
	web.POST(paths.EmailCancel, a.cancelEmailChangeByLink)
	web.GET(paths.SignInNotMe, a.notMeForm)
	web.POST(paths.SignInNotMe, a.notMe)
	// The development mail viewer: only when asked for (-dev-mail), and
	// only to a request from this machine itself.
	if a.mail.DevDir != "" {
		web.GET(paths.DevMail, a.devMailList, devMailLocal)
		web.GET(paths.DevMailPattern, a.devMailShow, devMailLocal)
	}
}

// settingsRoutes are the signed-in browser's pages under /settings, and
// its tab's event stream.
func (a *app) settingsRoutes(web browserRoutes) {
	// The tab's event stream, answered 401 rather than sent to sign in.
	web.GET(paths.Events, a.events, a.requireStreamAuth)
	// Everything else under /settings needs a signed-in browser; an unknown
	// path there sends a signed-out one to sign in too.
	g := web.group(paths.Settings, a.requireAuth)
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
}

// deviceFlowRoutes are the device flow: a signed-in browser approves a
// tool's code; the tool's requests carry no cookie.
func (a *app) deviceFlowRoutes(e *echo.Echo, web browserRoutes) {
	e.GET(paths.OAuthMetadata, a.oauthMetadata)
	e.POST(paths.OAuthDeviceAuthorization, a.deviceAuthorization)
	e.POST(paths.OAuthToken, a.oauthToken)
	dev := web.group(paths.Device, a.requireAuth)
	dev.GET("", a.devicePage)
	dev.POST("", a.deviceLookup)
	dev.POST(strings.TrimPrefix(paths.DeviceApprove, paths.Device), a.deviceDecide)
	dev.POST(strings.TrimPrefix(paths.DeviceDeny, paths.Device), a.deviceDecide)
}

// apiRoutes are the API: bearer tokens only (no cookie is read, no CSRF
// surface).
func (a *app) apiRoutes(e *echo.Echo) {
	e.GET(paths.OpenAPI, a.apiOpenAPI)
	api := e.Group(paths.APIv1, a.apiAuth)
	api.GET(strings.TrimPrefix(paths.APIMe, paths.APIv1), a.apiMe)
	api.GET(strings.TrimPrefix(paths.APIList, paths.APIv1), requireScope(ScopeSessionsRead, a.apiSessions))
	api.DELETE(strings.TrimPrefix(paths.APIOne, paths.APIv1), requireScope(ScopeSessionsWrite, a.apiRevokeSession))
}
