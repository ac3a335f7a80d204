package handlers

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"doorman/db"
	"doorman/oidcprovider"
	"doorman/paths"
	"doorman/views"
)

// Signing in to an app through Doorman (OpenID Connect). The provider's
// endpoints (oidcprovider, mounted by oidcRoutes) check the app's request
// and send the browser here, to oidcContinue, with the request's id: this
// is where the person signs in (the sign-in page, with next= back here,
// so two-factor and emailed links lead back too), re-authenticates if the
// app asked (prompt=login, max_age), and, if the app may have it, is sent
// back to the app with a code.

// oidcRoutes mounts the provider: its endpoints as programs' routes (no
// cookie is read there: an app's server calls them, and the authorization
// endpoint only checks the request and redirects), and the browser's step
// as a browser route (CSRF, the session).
func (a *app) oidcRoutes(programs, web routeSet) {
	p := a.oidc
	h := echo.WrapHandler(p.Handler())
	programs.GET(paths.OIDCDiscovery, echo.WrapHandler(p.DiscoveryHandler()))
	authorize := echo.WrapHandler(p.AuthorizeHandler())
	programs.GET(paths.OIDCAuthorize, authorize)
	programs.POST(paths.OIDCAuthorize, authorize)
	programs.POST(paths.OIDCToken, echo.WrapHandler(p.TokenHandler()))
	userinfo := echo.WrapHandler(p.UserinfoHandler())
	programs.GET(paths.OIDCUserinfo, userinfo)
	programs.POST(paths.OIDCUserinfo, userinfo)
	programs.GET(paths.OIDCKeys, h)
	programs.POST(paths.OIDCRevoke, h)
	programs.POST(paths.OIDCIntrospect, h)
	programs.GET(paths.OIDCEndSession, h)
	programs.POST(paths.OIDCEndSession, h)
	web.GET(paths.OIDCContinue, a.oidcContinue)
	web.POST(paths.OIDCContinue, a.oidcReauthenticate)
}

// oidcRequest is the authorization request the browser's step is about
// (its id in the query), or a 404 page.
func (a *app) oidcRequest(c echo.Context) (oidcprovider.Request, error) {
	r, err := a.oidc.Request(c.Request().Context(), c.QueryParam("id"))
	if errors.Is(err, oidcprovider.ErrNoRequest) {
		return r, echo.NewHTTPError(http.StatusNotFound, "This sign-in request has expired or is unknown. Go back to the app and sign in again.")
	}
	if err != nil {
		return r, fmt.Errorf("oidc request: %w", err)
	}
	return r, nil
}

// authTime is when the session last proved who it is: its sign-in, or
// the password entered again since.
func authTime(s db.Session) time.Time {
	if s.ReauthAt.After(s.CreatedAt) {
		return s.ReauthAt
	}
	return s.CreatedAt
}

// amr says how the session signed in, as RFC 8176 names it: pwd for a
// password, otp for an authenticator app's code, mfa for both; an emailed
// link is "email" (RFC 8176 has no value for it).
func amr(method string) []string {
	var out []string
	first, second, _ := strings.Cut(method, "+")
	switch first {
	case methodPassword, methodSignup, db.MethodPasswordReset:
		out = append(out, "pwd")
	case "email_link":
		out = append(out, "email")
	}
	switch second {
	case "totp":
		out = append(out, "otp")
	case "recovery":
		// A recovery code is a one-time code too.
		out = append(out, "otp")
	}
	if len(out) > 1 {
		out = append(out, "mfa")
	}
	return out
}

// oidcContinue is the browser's step of an app's sign-in. Signed out, it
// goes to the sign-in page and comes back (prompt=none: the app is told
// login_required instead). Signed in, it asks for the password again when
// the app wants a sign-in newer than this session's (prompt=login, or
// max_age passed), then finishes.
func (a *app) oidcContinue(c echo.Context) error {
	r, err := a.oidcRequest(c)
	if err != nil {
		return err
	}
	au := authOf(c)
	if au == nil {
		if r.PromptNone() {
			return a.oidcRefuse(c, r, oidcprovider.LoginRequired, "Nobody is signed in to Doorman in this browser.")
		}
		return c.Redirect(http.StatusSeeOther, paths.LoginNext(paths.OIDCContinueFor(r.ID)))
	}
	if a.oidcNeedsReauth(r, au) {
		if r.PromptNone() {
			return a.oidcRefuse(c, r, oidcprovider.LoginRequired, "The app asked for a newer sign-in.")
		}
		return a.oidcReauthPage(c, r, au, nil)
	}
	return a.oidcFinish(c, r, au)
}

// oidcNeedsReauth reports whether the app asked for a sign-in newer than
// the session's: prompt=login or max_age (which prompt=login sets to 0).
// A session that signed in or re-authenticated after the request was made
// has just proved itself for it, so the person is asked once, not again
// on the way back from the sign-in page.
func (a *app) oidcNeedsReauth(r oidcprovider.Request, au *authInfo) bool {
	at := authTime(au.Session)
	if !at.Before(r.CreatedAt) {
		return false
	}
	return r.PromptLogin() || r.TooOld(at, a.now())
}

// oidcReauthPage asks for the password again before the app gets a
// sign-in. It is the sudo window's password check (confirmPassword):
// throttled per session like every re-authentication, it rotates the
// session's secret and starts a new window. Doorman's sign-in page would
// not do: a signed-in browser is sent straight on from it.
func (a *app) oidcReauthPage(c echo.Context, r oidcprovider.Request, au *authInfo, problem *passwordProblem) error {
	p := views.ConfirmProps{
		Page:         a.page(c, "Confirm it's you", ""),
		Heading:      "Confirm it's you",
		Message:      r.App.Name + " asks you to enter your password again to sign in as " + au.User.Email + ".",
		Action:       paths.OIDCContinueFor(r.ID),
		Button:       "Continue to " + r.App.Name,
		CancelURL:    paths.Security,
		NeedPassword: true,
	}
	return a.renderConfirm(c, p, au, problem)
}

// oidcReauthenticate takes the password the re-authentication page asked
// for, then finishes (the request's id comes in the form's action: it
// names the resource, it is no credential).
func (a *app) oidcReauthenticate(c echo.Context) error {
	r, err := a.oidcRequest(c)
	if err != nil {
		return err
	}
	au := authOf(c)
	if au == nil {
		return c.Redirect(http.StatusSeeOther, paths.LoginNext(paths.OIDCContinueFor(r.ID)))
	}
	if g := a.confirmPassword(c, au, "password"); !g.passed() {
		return g.refuse(func(p *passwordProblem) error { return a.oidcReauthPage(c, r, au, p) })
	}
	return a.oidcFinish(c, r, au)
}

// oidcFinish sends the browser back to the app with a code, when the app
// may have this sign-in: a first-party app always; any other once the
// person consented to what it asks. Asking for consent is not built yet
// (issue 23 phase D): until it is, such an app is told so on a page,
// never given a sign-in nobody agreed to.
func (a *app) oidcFinish(c echo.Context, r oidcprovider.Request, au *authInfo) error {
	ctx := c.Request().Context()
	ok, err := a.oidc.Consented(ctx, au.User.ID, r)
	if err != nil {
		return err
	}
	if !ok || (r.PromptConsent() && !r.App.FirstParty) {
		if r.PromptNone() {
			return a.oidcRefuse(c, r, oidcprovider.ConsentRequired, "The app needs your consent.")
		}
		return echo.NewHTTPError(http.StatusNotImplemented,
			"Signing in to "+r.App.Name+" needs your consent, and Doorman cannot ask for it yet. Only the operator's own apps can sign in through Doorman for now.")
	}
	to, err := a.oidc.Complete(ctx, r, oidcprovider.Completion{
		UserID: au.User.ID, SessionID: au.Session.ID, AuthTime: authTime(au.Session),
		AMR: amr(au.Session.AuthMethod), Epoch: au.User.Epoch,
	})
	switch {
	case errors.Is(err, db.ErrSignInsReset):
		// The account's sign-ins were reset since this request read the
		// session: it is no sign-in any more.
		a.sessions.ClearCookie(c)
		return c.Redirect(http.StatusSeeOther, paths.LoginNext(paths.OIDCContinueFor(r.ID)))
	case errors.Is(err, db.ErrNotFound):
		return echo.NewHTTPError(http.StatusNotFound, "This sign-in request has expired or was used already. Go back to the app and sign in again.")
	case err != nil:
		return err
	}
	a.log.Info("app sign-in", "user", au.User.ID, "session", au.Session.ID, "client", r.ClientID, "scopes", strings.Join(slices.Clip(r.Scopes), " "))
	return c.Redirect(http.StatusSeeOther, to)
}

// oidcRefuse sends the browser back to the app with an error (prompt=none
// could not be honoured).
func (a *app) oidcRefuse(c echo.Context, r oidcprovider.Request, code, description string) error {
	to, err := a.oidc.ErrorRedirect(r, code, description)
	if err != nil {
		return fmt.Errorf("oidc error redirect: %w", err)
	}
	return c.Redirect(http.StatusSeeOther, to)
}
