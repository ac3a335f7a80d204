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

// middleware is the chain every request passes alike, outermost first. The
// access log sits outside Recover so a panicking request is logged with its
// 500 too. Nothing here decides by path: what differs between requests is
// carried by their routes (routeSet), each route's chain and its kind
// (routeKind: how the access log and the error handler treat it). The
// routes that read the database carry its bounds, shed first (it refuses
// before any read), then the deadline (which covers the session's read);
// the browser's add CSRF, then the session. unrouted gives what no route
// claims (Echo's 404 and 405) the chain a route would have.
func (a *app) middleware(e *echo.Echo) {
	e.Use(a.requestID)
	e.Use(a.accessLog)
	e.Use(middleware.Recover())
	e.Use(a.securityHeaders)
	e.Use(middleware.BodyLimit("64K"))
	e.Use(a.unrouted)
}

// routeKind is what a route tells the global chain about its requests,
// which the chain cannot see for itself: how they are logged and how their
// errors are answered (kindOf). A route declares it as it is registered,
// so it holds even for a request refused before the route's own chain ran
// (a body over the limit).
type routeKind uint8

const (
	// pageRoute is a browser's: errors are pages, logged at Info.
	pageRoute routeKind = iota
	// programRoute is called by programs (the API, the OAuth endpoints):
	// errors are problem+json, never an HTML page.
	programRoute
	// quietRoute is requested all day and reads no session (static files,
	// the health checks): logged at Debug.
	quietRoute
)

// kindOf is the kind of c's request: its route's, or, for a request no
// route claims, its path's (unroutedKind).
func (a *app) kindOf(c echo.Context) routeKind {
	if routed(c) {
		return a.kinds[c.Path()]
	}
	return unroutedKind(c.Request().URL.Path)
}

// routeSet registers routes of one kind that share a chain: each route runs
// the chain, then its own middleware, and its pattern is noted with its
// kind (app.kinds, read by kindOf).
type routeSet struct {
	e      *echo.Echo
	kinds  map[string]routeKind
	kind   routeKind
	prefix string
	chain  []echo.MiddlewareFunc
}

// routeSet is a set of e's routes of kind, with chain.
func (a *app) routeSet(e *echo.Echo, kind routeKind, chain ...echo.MiddlewareFunc) routeSet {
	return routeSet{e: e, kinds: a.kinds, kind: kind, chain: chain}
}

// browserRoutes registers the routes a browser visits with its cookies.
// Each carries the database's bounds (shed, then the deadline), then the
// browser's chain: CSRF first, so a refused cross-site POST never reaches
// anything that writes, then the session. It is no group at "/": a group's
// middleware also answers every unknown path under its prefix, and at "/"
// that would turn every 405 into a 404 (unrouted gives those the same chain
// instead).
func (a *app) browserRoutes(e *echo.Echo) routeSet {
	return a.routeSet(e, pageRoute, a.shed, a.deadline, a.csrf, a.loadSession)
}

// programRoutes registers the routes programs call, with a bearer token or
// nothing (the API, the device flow's tool side): each carries the
// database's bounds (shed, then the deadline) and reads no cookie, so
// there is no CSRF surface.
func (a *app) programRoutes(e *echo.Echo) routeSet {
	return a.routeSet(e, programRoute, a.shed, a.deadline)
}

// streamRoutes registers the browser's event stream, whose bounds are its
// own: it holds no shed slot, since while open it waits on events, not on
// the database, and the deadline covers its session check only
// (streamDeadline), as it lives longer than any page.
func (a *app) streamRoutes(e *echo.Echo) routeSet {
	return a.routeSet(e, pageRoute, a.streamDeadline, a.csrf, a.loadSession)
}

// Add registers a route; m run after the set's chain.
func (s routeSet) Add(method, path string, h echo.HandlerFunc, m ...echo.MiddlewareFunc) {
	s.kinds[s.prefix+path] = s.kind
	s.e.Add(method, s.prefix+path, h, append(slices.Clip(s.chain), m...)...)
}

// GET registers a GET route; m run after the set's chain.
func (s routeSet) GET(path string, h echo.HandlerFunc, m ...echo.MiddlewareFunc) {
	s.Add(http.MethodGet, path, h, m...)
}

// POST registers a POST route; m run after the set's chain.
func (s routeSet) POST(path string, h echo.HandlerFunc, m ...echo.MiddlewareFunc) {
	s.Add(http.MethodPost, path, h, m...)
}

// DELETE registers a DELETE route; m run after the set's chain.
func (s routeSet) DELETE(path string, h echo.HandlerFunc, m ...echo.MiddlewareFunc) {
	s.Add(http.MethodDelete, path, h, m...)
}

// group is the routes under prefix, as an Echo group: they, and every
// unknown path under it (a 404, or a known path's wrong method), run the
// set's chain, then m.
func (s routeSet) group(prefix string, m ...echo.MiddlewareFunc) routeSet {
	g := s
	g.prefix += prefix
	g.chain = append(slices.Clip(s.chain), m...)
	g.Add(echo.RouteNotFound, "", echo.NotFoundHandler)
	g.Add(echo.RouteNotFound, "/*", echo.NotFoundHandler)
	return g
}

// routes lists every route, group by group, each with the authentication
// it needs: a browser's routes read its session cookie, programs' routes
// (the device flow's tool side, the API) read none, and static files and
// the health checks carry no chain at all: they read no session, and
// /readyz bounds its one ping itself.
func (a *app) routes(e *echo.Echo, files *static.Files) {
	a.kinds = map[string]routeKind{}
	quiet := a.routeSet(e, quietRoute)
	quiet.GET(paths.Healthz, healthz)
	quiet.GET(paths.Readyz, a.readyz)
	quiet.GET(static.Prefix+"*", files.Handler())

	web := a.browserRoutes(e)
	a.pageRoutes(web)
	if a.mail != nil {
		a.mailRoutes(web)
	}
	a.settingsRoutes(web)
	programs := a.programRoutes(e)
	a.deviceFlowRoutes(programs, web)
	a.apiRoutes(programs)
	if a.oidc != nil {
		a.oidcRoutes(programs, web, a.routeSet(e, pageRoute, a.shed, a.deadline))
	}
}

// pageRoutes are the pages outside settings: home, sign-up, sign-in and
// sign-out.
func (a *app) pageRoutes(web routeSet) {
	web.GET(paths.Home, a.home)
	web.GET(paths.Signup, a.signupForm)
	web.POST(paths.Signup, a.signup)
	web.GET(paths.Login, a.loginForm)
	web.POST(paths.Login, a.login)
	web.POST(paths.Logout, a.logout)
	web.GET(paths.LoginTwoFactor, a.loginTwoFactorForm)
	web.POST(paths.LoginTwoFactor, a.loginTwoFactor)
	web.POST(paths.LoginPasskeyOptions, a.passkeyLoginOptions)
	web.POST(paths.LoginPasskey, a.passkeyLogin)
}

// mailRoutes are asking for a link, and the pages the links in mails open
// (each works signed in or out: the link is the credential).
func (a *app) mailRoutes(web routeSet) {
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
func (a *app) settingsRoutes(web routeSet) {
	// The tab's event stream: a browser's route with bounds of its own
	// (streamRoutes), answered 401 rather than sent to sign in.
	a.streamRoutes(web.e).GET(paths.Events, a.events, a.requireStreamAuth)
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
	settings(http.MethodPost, paths.SignInsKnown, a.acknowledgeSignIns)
	settings(http.MethodGet, paths.SessionPattern, a.sessionDetails)
	settings(http.MethodPost, paths.SessionRevokePattern, a.revokeSession)
	settings(http.MethodGet, paths.SessionNotYouPattern, a.notYouForm)
	settings(http.MethodPost, paths.SessionNotYouPattern, a.notYou)
	settings(http.MethodPost, paths.SessionNamePattern, a.renameSession)
	settings(http.MethodGet, paths.SessionsSignOut, a.confirmSignOutGroup)
	settings(http.MethodPost, paths.SessionsSignOut, a.signOutGroup)
	settings(http.MethodGet, paths.Password, a.passwordForm)
	settings(http.MethodPost, paths.Password, a.changePassword)
	settings(http.MethodGet, paths.TwoFactor, a.twoFactorPage)
	settings(http.MethodGet, paths.TwoFactorQR, a.twoFactorQR)
	settings(http.MethodPost, paths.TwoFactorSetup, a.twoFactorSetup)
	settings(http.MethodPost, paths.TwoFactorEnable, a.twoFactorEnable)
	settings(http.MethodPost, paths.TwoFactorDisable, a.twoFactorDisable)
	settings(http.MethodPost, paths.TwoFactorRecoveryCodes, a.twoFactorRecoveryCodes)
	settings(http.MethodGet, paths.Activity, a.activityPage)
	settings(http.MethodGet, paths.ActivityCSV, a.exportActivity)
	settings(http.MethodGet, paths.ActivityJSON, a.exportActivity)
	settings(http.MethodGet, paths.PasskeyNew, a.passkeyNewForm)
	settings(http.MethodPost, paths.PasskeyNew, a.passkeyBegin)
	settings(http.MethodPost, paths.PasskeyAdd, a.passkeyAdd)
	settings(http.MethodPost, paths.PasskeyRenamePattern, a.passkeyRename)
	settings(http.MethodGet, paths.PasskeyRemovePattern, a.passkeyRemove)
	settings(http.MethodPost, paths.PasskeyRemovePattern, a.passkeyRemove)
	settings(http.MethodGet, paths.Tokens, a.tokensPage)
	settings(http.MethodPost, paths.Tokens, a.createToken)
	settings(http.MethodGet, paths.TokenRevokePattern, a.revokeToken)
	settings(http.MethodPost, paths.TokenRevokePattern, a.revokeToken)
	settings(http.MethodGet, paths.Email, a.emailForm)
	settings(http.MethodPost, paths.Email, a.changeEmail)
	settings(http.MethodPost, paths.EmailPendingCancel, a.cancelEmailChange)
	settings(http.MethodPost, paths.ApprovalCancelPattern, a.cancelApproval)
	settings(http.MethodGet, paths.AppDisconnectPattern, a.disconnectApp)
	settings(http.MethodPost, paths.AppDisconnectPattern, a.disconnectApp)
	if a.mail != nil {
		settings(http.MethodPost, paths.AccountVerify, a.resendVerification)
		settings(http.MethodPost, paths.AccountAlerts, a.setAlerts)
	}
	settings(http.MethodGet, paths.DeleteAccount, a.confirmDeleteAccount)
	settings(http.MethodPost, paths.DeleteAccount, a.deleteAccount)
}

// deviceFlowRoutes are the device flow: a signed-in browser approves a
// tool's code; the tool's requests carry no cookie.
func (a *app) deviceFlowRoutes(programs, web routeSet) {
	programs.GET(paths.OAuthMetadata, a.oauthMetadata)
	programs.POST(paths.OAuthDeviceAuthorization, a.deviceAuthorization)
	programs.POST(paths.OAuthToken, a.oauthToken)
	dev := web.group(paths.Device, a.requireAuth)
	dev.GET("", a.devicePage)
	dev.POST("", a.deviceLookup)
	dev.POST(strings.TrimPrefix(paths.DeviceApprove, paths.Device), a.deviceDecide)
	dev.POST(strings.TrimPrefix(paths.DeviceDeny, paths.Device), a.deviceDecide)
}

// apiRoutes are the API: bearer tokens only (no cookie is read, no CSRF
// surface).
func (a *app) apiRoutes(programs routeSet) {
	programs.GET(paths.OpenAPI, a.apiOpenAPI)
	api := programs.group(paths.APIv1, a.apiAuth)
	api.GET(strings.TrimPrefix(paths.APIMe, paths.APIv1), a.apiMe)
	api.GET(strings.TrimPrefix(paths.APIList, paths.APIv1), requireScope(ScopeSessionsRead, a.apiSessions))
	api.DELETE(strings.TrimPrefix(paths.APIOne, paths.APIv1), requireScope(ScopeSessionsWrite, a.apiRevokeSession))
}
