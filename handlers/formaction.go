package handlers

import (
	"net/url"
	"strings"

	"github.com/labstack/echo/v4"

	"doorman/paths"
)

// formActionFor widens the page's form-action to the app a sign-in through
// Doorman is on its way to. Browsers enforce form-action on every redirect
// a form submission follows (CSP Level 3; Chromium and Firefox do), and a
// sign-in that an app started ends in a redirect to the app's redirect URI:
// the sign-in form posts to /login, which answers 303 /oidc/continue?id=…,
// which answers 303 to the app. Under "form-action 'self'" the browser
// blocks that last step and the person is left on the form. So a page whose
// forms lead to an app's sign-in (next= names the browser's step of an
// authorization request, or the page is that step: re-authentication,
// consent) allows the request's redirect URI's origin too, and nothing
// else. That origin is a registered app's (the provider checked the
// redirect URI exactly before the request existed), so an injected form
// still cannot send anything to a site the operator did not register.
//
// A page whose handler knows where its forms lead sets that source itself
// (ctxFormAction): the end-session page, whose "Sign out" ends in a
// redirect to the app's registered post-logout redirect URI.
func (a *app) formActionFor(c echo.Context) string {
	if a.oidc == nil {
		return ""
	}
	if src, ok := c.Get(ctxFormAction).(string); ok {
		return src
	}
	r := c.Request()
	if r.URL.Path == paths.OIDCContinue {
		return a.requestFormAction(c, r.URL.Query().Get("id"))
	}
	next := r.URL.Query().Get("next")
	if next == "" && r.PostForm != nil {
		// Only a form the handler parsed already: rendering must not
		// read a request body.
		next = r.PostForm.Get("next")
	}
	return a.nextFormAction(c, next)
}

// nextFormAction is the source a page's form-action allows when its forms
// go on to next: the redirect URI's origin of the authorization request
// next names (its browser step, /oidc/continue?id=…), else "".
func (a *app) nextFormAction(c echo.Context, next string) string {
	if a.oidc == nil {
		return ""
	}
	u, err := url.Parse(safeNext(next))
	if err != nil || u.Path != paths.OIDCContinue {
		return ""
	}
	return a.requestFormAction(c, u.Query().Get("id"))
}

// requestFormAction is the origin of the redirect URI of the authorization
// request id, as a CSP source; "" for no such request in flight.
func (a *app) requestFormAction(c echo.Context, id string) string {
	if id == "" {
		return ""
	}
	req, err := a.oidc.Request(c.Request().Context(), id)
	if err != nil {
		// Unknown or expired: the page says so, and no form leads to an app.
		return ""
	}
	return sourceOf(req.RedirectURI)
}

// sourceOf is the CSP source expression that allows uri: its origin for
// http(s), its scheme for an app's own scheme (a native app's
// com.example.app:/callback), "" when uri is none of these.
func sourceOf(uri string) string {
	u, err := url.Parse(uri)
	if err != nil || u.Scheme == "" {
		return ""
	}
	switch scheme := strings.ToLower(u.Scheme); scheme {
	case "http", "https":
		if u.Host == "" || strings.ContainsAny(u.Host, " ;,'") {
			return ""
		}
		return scheme + "://" + u.Host
	default:
		for _, ch := range scheme {
			if !(ch >= 'a' && ch <= 'z' || ch >= '0' && ch <= '9' || ch == '+' || ch == '-' || ch == '.') {
				return ""
			}
		}
		return scheme + ":"
	}
}

// cspWithFormAction is the Content-Security-Policy with form-action
// allowing source besides 'self'.
func cspWithFormAction(source string) string {
	return strings.Replace(contentSecurityPolicy, "form-action 'self'", "form-action 'self' "+source, 1)
}
