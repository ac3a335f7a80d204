package handlers

import (
	"fmt"
	"net/http"
	"net/url"

	"github.com/labstack/echo/v4"

	"doorman/oidcprovider"
	"doorman/paths"
	"doorman/views"
)

// RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0): an app
// that signs its users out sends the browser to the end-session endpoint,
// naming the Doorman session in an ID token it got (id_token_hint), and
// where to come back (post_logout_redirect_uri, registered exactly).
//
// A request is trusted when its hint is an ID token Doorman signed for
// the app that asks and names this browser's own session (sid) and
// person (sub): only that app (or this browser, which it was sent
// through) ever held it. Then the session ends at once. Anything else (no
// hint, a hint that does not verify or names another session, an app not
// named or unknown) could be any site's link: the person is asked first.
// Signed out already, there is nothing to end. In every case the browser
// leaves Doorman only for a post-logout redirect URI registered for the
// app named (oidcprovider.EndSessionRequest), never for one the request merely
// carries: no open redirect.

// endSessionParams are the request's parameters Doorman reads; the POST
// form is carried over to the GET with these only.
var endSessionParams = []string{"id_token_hint", "client_id", "post_logout_redirect_uri", "state"}

// oidcEndSessionForm takes the end-session request an app posts as a
// form. Its Doorman session cannot be read here: the cookie is SameSite
// Lax, and a browser leaves it off a cross-site POST. So the same
// parameters go on, as a 303, to the GET, which a top-level navigation
// makes with the cookie. Nothing is decided here, and no cookie is read,
// so a cross-site POST is what this route is for (it carries no CSRF
// check; the GET ends a session only for a trusted request).
func (a *app) oidcEndSessionForm(c echo.Context) error {
	r := c.Request()
	if err := r.ParseForm(); err != nil {
		return echo.NewHTTPError(http.StatusBadRequest, "This sign-out request could not be read. Go back to the app and sign out again.")
	}
	q := url.Values{}
	for _, k := range endSessionParams {
		if v := r.PostForm.Get(k); v != "" {
			q.Set(k, v)
		}
	}
	to := paths.OIDCEndSession
	if len(q) > 0 {
		to += "?" + q.Encode()
	}
	return c.Redirect(http.StatusSeeOther, to)
}

// oidcEndSession is the end-session endpoint: a trusted request ends this
// browser's session at once; an untrusted one asks the person; a
// signed-out browser just goes on.
func (a *app) oidcEndSession(c echo.Context) error {
	e, err := a.oidc.ReadEndSession(c.Request().Context(), c.QueryParams())
	if err != nil {
		return fmt.Errorf("end session request: %w", err)
	}
	au := authOf(c)
	if au == nil {
		return a.signedOutBy(c, e)
	}
	trusted, err := a.trustedEndSession(c, e, au)
	if err != nil {
		return err
	}
	if trusted {
		return a.endSessionFor(c, e, au)
	}
	return a.endSessionPage(c, e, au)
}

// trustedEndSession reports whether e may end au's session without
// asking: its hint verified for the app that asks (ReadEndSession
// leaves SessionID empty otherwise) and names this very session and
// person. The subject is compared too, although a session id is one
// user's: a hint is trusted only for what it says in full.
func (a *app) trustedEndSession(c echo.Context, e oidcprovider.EndSessionRequest, au *authInfo) (bool, error) {
	if e.App.ClientID == "" || e.SessionID == "" || e.SessionID != au.Session.ID {
		return false, nil
	}
	sub, err := a.oidc.Subject(c.Request().Context(), au.User.ID)
	if err != nil {
		return false, fmt.Errorf("end session: subject: %w", err)
	}
	return sub == e.Subject, nil
}

// endSessionFor ends au's session as a sign-out on this device (the
// person asked for it, through the app): the store's rule sends a logout
// token to every app the session signed in to, the asking app's included
// (the spec allows either; the app has signed its session out already and
// takes the token as a no-op, and any other of its sessions of this sid,
// another tab's, ends too). Then the browser goes on.
func (a *app) endSessionFor(c echo.Context, e oidcprovider.EndSessionRequest, au *authInfo) error {
	if err := a.sessions.End(c, au); err != nil {
		return err
	}
	a.log.Info("signed out by app", "user", au.User.ID, "session", au.Session.ID, "client", e.App.ClientID)
	return a.signedOutBy(c, e)
}

// signedOutBy sends a signed-out browser on: to the app's registered
// post-logout redirect URI (with state), or to Doorman's sign-in page,
// which says so.
func (a *app) signedOutBy(c echo.Context, e oidcprovider.EndSessionRequest) error {
	if to := e.Redirect(); to != "" {
		return c.Redirect(http.StatusSeeOther, to)
	}
	a.addFlash(c, flashSuccess, "You are signed out of Doorman.")
	return c.Redirect(http.StatusSeeOther, paths.Login)
}

// endSessionPage asks whether the app may sign this browser out. Its URL
// may carry an ID token (the hint): the page sends no Referer.
func (a *app) endSessionPage(c echo.Context, e oidcprovider.EndSessionRequest, au *authInfo) error {
	noReferrer(c)
	// The form leads to the app's post-logout redirect URI (Sign out →
	// 303 there): form-action must allow it (formActionFor).
	if to := e.Redirect(); to != "" {
		c.Set(ctxFormAction, sourceOf(to))
	}
	p := views.EndSessionProps{
		AppName: e.App.Name, Email: au.User.Email,
		SessionID: au.Session.ID, ClientID: e.App.ClientID,
		PostLogoutRedirectURI: e.PostLogoutRedirectURI, State: e.State,
		StayURL: paths.Security,
	}
	p.Page = a.page(c, "Sign out of Doorman?", "")
	return a.render(c, http.StatusOK, views.EndSessionPage(p))
}

// oidcEndSessionConfirm takes "Sign out" on the page that asked. CSRF
// (origin and token) has refused a cross-site post before this runs. The
// request is read again from the form, with no hint: the app named and
// its redirect URI are checked against the registry as they are now (an
// app removed meanwhile sends nobody anywhere). The answer counts only
// from the session that was asked; another (the browser signed in again
// meanwhile) is asked afresh, and a signed-out browser just goes on.
func (a *app) oidcEndSessionConfirm(c echo.Context) error {
	q := url.Values{}
	for _, k := range []string{"client_id", "post_logout_redirect_uri", "state"} {
		if v := formValue(c, k); v != "" {
			q.Set(k, v)
		}
	}
	e, err := a.oidc.ReadEndSession(c.Request().Context(), q)
	if err != nil {
		return fmt.Errorf("end session request: %w", err)
	}
	au := authOf(c)
	if au == nil {
		return a.signedOutBy(c, e)
	}
	if formValue(c, "session") != au.Session.ID {
		return c.Redirect(http.StatusSeeOther, paths.OIDCEndSession+"?"+q.Encode())
	}
	// End finds nothing to do if the session was ended meanwhile.
	if err := a.sessions.End(c, au); err != nil {
		return err
	}
	a.log.Info("signed out by app, confirmed", "user", au.User.ID, "session", au.Session.ID, "client", e.App.ClientID)
	return a.signedOutBy(c, e)
}
