package handlers

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"net/url"
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
// as a browser route (CSRF, the session). The end-session endpoint is the
// browser's: its GET reads the session; its POST, which an app's page
// posts cross-site, reads no cookie and only passes the request on to the
// GET (forms: the database's bounds, no CSRF check, no session).
func (a *app) oidcRoutes(programs, web, forms routeSet) {
	p := a.oidc
	h := echo.WrapHandler(p.Handler())
	programs.GET(paths.OIDCDiscovery, echo.WrapHandler(p.DiscoveryHandler()))
	authorize := a.oidcAuthorize(p.AuthorizeHandler())
	programs.GET(paths.OIDCAuthorize, authorize)
	programs.POST(paths.OIDCAuthorize, authorize)
	programs.POST(paths.OIDCToken, echo.WrapHandler(p.TokenHandler()))
	userinfo := echo.WrapHandler(p.UserinfoHandler())
	programs.GET(paths.OIDCUserinfo, userinfo)
	programs.POST(paths.OIDCUserinfo, userinfo)
	programs.GET(paths.OIDCKeys, h)
	programs.POST(paths.OIDCRevoke, h)
	programs.POST(paths.OIDCIntrospect, h)
	web.GET(paths.OIDCEndSession, a.oidcEndSession)
	forms.POST(paths.OIDCEndSession, a.oidcEndSessionForm)
	web.POST(paths.OIDCEndSessionConfirm, a.oidcEndSessionConfirm)
	web.GET(paths.OIDCContinue, a.oidcContinue)
	web.POST(paths.OIDCContinue, a.oidcReauthenticate)
	web.POST(paths.OIDCConsent, a.oidcAllow)
	web.POST(paths.OIDCConsentCancel, a.oidcCancel)
}

// oidcAuthorize serves the library's authorization endpoint, whose
// browser is a person's: a request it cannot send back to the app (an
// unknown app, a redirect URI not registered exactly: OAuth 2.0 4.1.2.1
// forbids redirecting those) gets Doorman's own error page, with the
// library's reason, instead of the library's plain text. Everything else
// (the redirect to the browser's step, an error sent back to the app)
// passes through as the library wrote it.
func (a *app) oidcAuthorize(h http.Handler) echo.HandlerFunc {
	return func(c echo.Context) error {
		w := &refusalCatcher{ResponseWriter: c.Response().Writer}
		h.ServeHTTP(w, c.Request())
		if !w.caught {
			return nil
		}
		reason := strings.TrimSpace(w.body.String())
		if len(reason) > 300 {
			reason = reason[:300] + "…"
		}
		p := views.ErrorProps{Page: a.page(c, "This sign-in can't go on", ""), Status: http.StatusBadRequest,
			Heading: "This sign-in can't go on",
			Message: "The app sent a sign-in request Doorman can't answer, so you were not sent back to it. " +
				"Tell whoever runs the app: " + reason}
		return a.render(c, http.StatusBadRequest, views.ErrorPage(p))
	}
}

// refusalCatcher keeps back a plain-text 400 (the library's refusal that
// is not sent back to the app) and passes every other answer through.
type refusalCatcher struct {
	http.ResponseWriter
	caught bool
	body   bytes.Buffer
}

func (w *refusalCatcher) WriteHeader(code int) {
	if code == http.StatusBadRequest && strings.HasPrefix(w.Header().Get("Content-Type"), "text/plain") {
		w.caught = true
		w.Header().Del("Content-Type")
		w.Header().Del("X-Content-Type-Options")
		return
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *refusalCatcher) Write(b []byte) (int, error) {
	if w.caught {
		if w.body.Len() < 4096 {
			w.body.Write(b[:min(len(b), 4096-w.body.Len())])
		}
		return len(b), nil
	}
	return w.ResponseWriter.Write(b)
}

// oidcRequest is the authorization request the browser's step is about
// (its id in the query), or a 404 page.
func (a *app) oidcRequest(c echo.Context) (oidcprovider.Request, error) {
	return a.oidcRequestByID(c, c.QueryParam("id"))
}

// oidcRequestByID is authorization request id, still to be completed, or
// a 404 page. A completed one is no step of anybody's any more: its
// browser was sent back to the app (a page kept open, a form posted
// again, find nothing to do).
func (a *app) oidcRequestByID(c echo.Context, id string) (oidcprovider.Request, error) {
	r, err := a.oidc.Request(c.Request().Context(), id)
	if errors.Is(err, oidcprovider.ErrNoRequest) {
		return r, echo.NewHTTPError(http.StatusNotFound, "This sign-in request has expired or is unknown. Go back to the app and sign in again.")
	}
	if err != nil {
		return r, fmt.Errorf("oidc request: %w", err)
	}
	if r.Done() {
		return r, errRequestUsed()
	}
	return r, nil
}

// continuesTo is the app sign-in that next continues (the sign-in page
// says "to continue to NAME" and takes the app's login_hint), or false
// when next is not an app's sign-in step in flight. next came from the
// query: only its path and id are read, and the name shown is the
// registered app's.
func (a *app) continuesTo(c echo.Context, next string) (oidcprovider.Request, bool) {
	if a.oidc == nil || next == "" {
		return oidcprovider.Request{}, false
	}
	u, err := url.Parse(next)
	if err != nil || u.Path != paths.OIDCContinue {
		return oidcprovider.Request{}, false
	}
	r, err := a.oidc.Request(c.Request().Context(), u.Query().Get("id"))
	if err != nil || r.Done() {
		return oidcprovider.Request{}, false
	}
	return r, true
}

// loginHint is the address an app's login_hint suggests for the sign-in
// form's email field (OpenID Connect Core 3.1.2.1: a hint, nothing
// more), or "" when it is not an address Doorman would accept: a phone
// number, a subject or anything malformed prefills nothing.
func loginHint(hint string) string {
	e := normaliseEmail(hint)
	if len(e) > maxEmailBytes || !validEmail(e) {
		return ""
	}
	return e
}

// errRequestUsed is the page of a request that was completed already.
func errRequestUsed() error {
	return echo.NewHTTPError(http.StatusNotFound, "This sign-in request has expired or was used already. Go back to the app and sign in again.")
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
// person consented to every scope it asks for (prompt=consent asks again
// whatever was given before). Otherwise the person is asked (prompt=none:
// the app is told consent_required).
func (a *app) oidcFinish(c echo.Context, r oidcprovider.Request, au *authInfo) error {
	missing, err := a.oidc.Unconsented(c.Request().Context(), au.User.ID, r)
	if err != nil {
		return err
	}
	if len(missing) > 0 || (r.PromptConsent() && !r.App.FirstParty) {
		if r.PromptNone() {
			return a.oidcRefuse(c, r, oidcprovider.ConsentRequired, "The app needs your consent.")
		}
		return a.oidcConsentPage(c, r, au, missing)
	}
	return a.oidcComplete(c, r, au)
}

// oidcConsentPage asks whether the app may have what it asks for. When
// the person allowed it some scopes before and it now asks for more, only
// the new ones are named; a first consent, and prompt=consent, name all.
func (a *app) oidcConsentPage(c echo.Context, r oidcprovider.Request, au *authInfo, missing []string) error {
	p := views.ConsentProps{
		AppName: r.App.Name, Email: au.User.Email,
		RequestID: r.ID, SessionID: au.Session.ID,
		ContinueURL: paths.OIDCContinueFor(r.ID),
	}
	scopes := r.Scopes
	if len(missing) > 0 && len(missing) < len(r.Scopes) {
		scopes, p.More = missing, true
	}
	for _, s := range scopes {
		p.Access = append(p.Access, scopeWords(s, r.App.Name))
	}
	p.Page = a.page(c, p.Heading(), "")
	return a.render(c, http.StatusOK, views.ConsentPage(p))
}

// scopeWords says what an app gets with scope, in plain words. The
// provider accepts only the standard scopes (oidcprovider's client):
// those it has nothing for are named as such, never left out.
func scopeWords(scope, app string) string {
	switch scope {
	case "openid":
		// The subject is one per account, the same for every app: it is
		// not said to be the app's own.
		return "Who you are on Doorman: a random id for your account, not your email address"
	case "email":
		return "Your email address and whether it is verified"
	case "offline_access":
		return "Stay signed in to " + app + " while you're away: it can use your account until you disconnect it or sign out everywhere"
	}
	return "“" + scope + "”: Doorman keeps nothing of this kind, so " + app + " gets nothing for it"
}

// oidcConsentAnswer is the request a consent form answers, checked again
// as the page was: the request is still to be completed, this browser is
// signed in, with the session that was asked (a page shown to someone
// else, before a "Not you?", counts for nobody), and no newer sign-in is
// owed. Otherwise the browser goes back to the step, where the current
// session is asked afresh, and nothing changed. A cross-site post never
// gets here (CSRF: origin and token). au is nil when the answer is
// already given (an error page, or that redirect): the caller returns err.
func (a *app) oidcConsentAnswer(c echo.Context) (oidcprovider.Request, *authInfo, error) {
	r, err := a.oidcRequestByID(c, formValue(c, "id"))
	if err != nil {
		return r, nil, err
	}
	au := authOf(c)
	if au == nil || formValue(c, "session") != au.Session.ID || a.oidcNeedsReauth(r, au) {
		return r, nil, c.Redirect(http.StatusSeeOther, paths.OIDCContinueFor(r.ID))
	}
	return r, au, nil
}

// oidcAllow takes "Allow": the consent is remembered (per person, app and
// scopes: the next sign-in with no more scopes is not asked), then the
// request is completed and the browser sent back with a code.
func (a *app) oidcAllow(c echo.Context) error {
	r, au, err := a.oidcConsentAnswer(c)
	if au == nil {
		return err
	}
	if err := a.oidc.Consent(c.Request().Context(), au.User.ID, r); err != nil {
		return err
	}
	a.recordEvent(c, db.SecurityEvent{UserID: au.User.ID, Kind: db.EventAppConsented, SessionID: au.Session.ID,
		Detail: r.App.Name, Method: strings.Join(r.Scopes, " ")})
	return a.oidcComplete(c, r, au)
}

// oidcCancel takes "Cancel": the request is forgotten (nothing completes
// it afterwards) and the app is told access_denied.
func (a *app) oidcCancel(c echo.Context) error {
	r, au, err := a.oidcConsentAnswer(c)
	if au == nil {
		return err
	}
	if err := a.oidc.Cancel(c.Request().Context(), r); err != nil {
		return err
	}
	a.log.Info("app sign-in declined", "user", au.User.ID, "session", au.Session.ID, "client", r.ClientID)
	return a.oidcRefuse(c, r, oidcprovider.AccessDenied, "The person declined.")
}

// oidcComplete completes the request with the session and sends the
// browser back to the app with a code.
func (a *app) oidcComplete(c echo.Context, r oidcprovider.Request, au *authInfo) error {
	ctx := c.Request().Context()
	methods, err := a.sessionAMR(ctx, au.User.ID, au.Session)
	if err != nil {
		return err
	}
	to, err := a.oidc.Complete(ctx, r, oidcprovider.Completion{
		UserID: au.User.ID, SessionID: au.Session.ID, AuthTime: authTime(au.Session),
		AMR: methods, Epoch: au.User.Epoch,
	})
	switch {
	case errors.Is(err, db.ErrSignInsReset):
		// The account's sign-ins were reset since this request read the
		// session: it is no sign-in any more.
		a.sessions.ClearCookie(c)
		return c.Redirect(http.StatusSeeOther, paths.LoginNext(paths.OIDCContinueFor(r.ID)))
	case errors.Is(err, db.ErrNotFound):
		return errRequestUsed()
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
