package handlers

import "net/http"

// cookie is the base name of one of Doorman's cookies. Every cookie Doorman
// sets is listed here, and cookieName is the one place that turns a base
// name into the name the browser sees.
type cookie string

const (
	// sessionCookie holds the browser session's id and secret
	// (sessionService).
	sessionCookie cookie = "doorman_session"
	// csrfCookie holds the double-submit token of the browser's forms (csrf).
	csrfCookie cookie = "doorman_csrf"
	// flashCookie carries flash messages to the next page, signed
	// (flashSession).
	flashCookie cookie = "doorman_flash"
	// deviceCookie tells the owner's browsers from strangers' to the sign-in
	// throttle (setDeviceCookie).
	deviceCookie cookie = "doorman_device"
	// pendingCookie names a sign-in waiting for its second factor
	// (setPendingCookie).
	pendingCookie cookie = "doorman_pending"
	// linkCookie binds an emailed sign-in link to the browser that asked for
	// it (requestSignInLink).
	linkCookie cookie = "doorman_link"
	// linkNextCookie keeps, beside linkCookie, where the sign-in that asked
	// for the link was going (an app's sign-in): the link opened in that
	// browser goes on there (requestSignInLink).
	linkNextCookie cookie = "doorman_link_next"
)

// cookieName is k's name on r. Over HTTPS it carries the __Host- prefix,
// which makes the browser refuse it unless it is Secure, has Path=/ and no
// Domain: no subdomain or plain-http page can plant or overwrite it. The
// flash cookie keeps its plain name everywhere, as it always has: it is
// signed (a planted one is dropped unread) and only ever carries a message.
func (a *app) cookieName(r *http.Request, k cookie) string {
	if k != flashCookie && a.isHTTPS(r) {
		return "__Host-" + string(k)
	}
	return string(k)
}
