package handlers

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"doorman/db"
	"doorman/paths"
	"doorman/static"
)

// Keys of values stored on echo.Context.
const (
	ctxAuth  = "doorman.auth"  // *authInfo, only when signed in
	ctxCSRF  = "doorman.csrf"  // string
	ctxFlash = "doorman.flash" // *flashState
	// ctxFormAction is a CSP source the page's forms lead to, set by a
	// handler that knows it (formActionFor).
	ctxFormAction = "doorman.formaction"
	// ctxStream is an event stream's context without the page deadline.
	ctxStream = "doorman.stream"
)

// authInfo is the signed-in user and the session the request came with.
type authInfo struct {
	User    db.User
	Session db.Session
}

// authOf returns the request's signed-in user and session, or nil.
func authOf(c echo.Context) *authInfo {
	a, _ := c.Get(ctxAuth).(*authInfo)
	return a
}

// ipExtractor decides which address is the client's. Without trusted proxies
// it is the TCP peer; X-Forwarded-For is believed only when the peer is one
// of the configured proxies, otherwise anyone could choose the location we
// show (and any limit keyed by IP).
func ipExtractor(trusted []netip.Prefix) echo.IPExtractor {
	if len(trusted) == 0 {
		return echo.ExtractIPDirect()
	}
	opts := []echo.TrustOption{echo.TrustLoopback(false), echo.TrustLinkLocal(false), echo.TrustPrivateNet(false)}
	for _, p := range trusted {
		opts = append(opts, echo.TrustIPRange(&net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}))
	}
	return echo.ExtractIPFromXFFHeader(opts...)
}

// clientIP is the request's client address as the IP extractor sees it.
func (a *app) clientIP(r *http.Request) netip.Addr {
	ip, err := netip.ParseAddr(a.extractIP(r))
	if err != nil {
		return netip.Addr{}
	}
	return ip.Unmap()
}

// isHTTPS reports whether the browser reached us over HTTPS: directly, or
// through a trusted proxy that says so. A header from anyone else is ignored.
func (a *app) isHTTPS(r *http.Request) bool {
	if r.TLS != nil {
		return true
	}
	return r.Header.Get("X-Forwarded-Proto") == "https" && a.fromTrustedProxy(r)
}

// fromTrustedProxy reports whether the TCP peer is one of the configured
// proxies.
func (a *app) fromTrustedProxy(r *http.Request) bool {
	if len(a.trusted) == 0 {
		return false
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	peer, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	for _, p := range a.trusted {
		if p.Contains(peer.Unmap()) {
			return true
		}
	}
	return false
}

// securityHeaders sets the headers every response carries. The CSP allows
// scripts and styles from our own origin only (no inline code at all), and no
// framing. Dynamic responses are never stored by the browser or a proxy, so
// the Back button after sign-out shows nothing private; static files set their
// own long-lived caching. Over HTTPS, Strict-Transport-Security tells the
// browser never to use plain http for this host again (HSTSMaxAge; 0: off);
// over plain http the header would mean nothing and is not sent.
func (a *app) securityHeaders(next echo.HandlerFunc) echo.HandlerFunc {
	hsts := []string{fmt.Sprintf("max-age=%d", int64(a.cfg.HSTSMaxAge/time.Second))}
	return func(c echo.Context) error {
		h := c.Response().Header()
		if a.cfg.HSTSMaxAge > 0 && a.isHTTPS(c.Request()) {
			h["Strict-Transport-Security"] = hsts
		}
		// The same value slices for every response (the keys are already
		// canonical): nothing allocated per request. Each has len == cap,
		// so a later Add copies instead of writing into the shared array.
		for _, kv := range securityHeaderValues {
			h[kv.key] = kv.value
		}
		return next(c)
	}
}

// contentSecurityPolicy is every response's CSP (a page on its way to an
// app's sign-in widens its form-action: formActionFor).
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// fixedHeader is one header every response carries, with its value slice.
type fixedHeader struct {
	key   string
	value []string
}

// securityHeaderValues are the fixed headers of every response.
var securityHeaderValues = func() []fixedHeader {
	var out []fixedHeader
	for _, kv := range [][2]string{
		{"Content-Security-Policy", contentSecurityPolicy},
		{"X-Content-Type-Options", "nosniff"},
		{"Referrer-Policy", "same-origin"},
		{"X-Frame-Options", "DENY"},
		{"Cross-Origin-Opener-Policy", "same-origin"},
		{"Cache-Control", "no-store"},
	} {
		if http.CanonicalHeaderKey(kv[0]) != kv[0] {
			panic("securityHeaderValues: " + kv[0] + " is not canonical")
		}
		out = append(out, fixedHeader{kv[0], []string{kv[1]}})
	}
	return out
}()

// deadline gives each request RequestTimeout: every database call it makes
// inherits it. The routes that read the database carry it, after shed.
func (a *app) deadline(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if a.cfg.RequestTimeout <= 0 {
			return next(c)
		}
		r := c.Request()
		ctx, cancel := context.WithTimeout(r.Context(), a.cfg.RequestTimeout)
		defer cancel()
		c.SetRequest(r.WithContext(ctx))
		return next(c)
	}
}

// streamDeadline is deadline for the event stream's route. A stream lives
// longer than RequestTimeout, so only its session check runs under the
// deadline; the stream itself gets the request's own context (ctxStream),
// and each check it makes later carries db.CallTimeout.
func (a *app) streamDeadline(next echo.HandlerFunc) echo.HandlerFunc {
	bounded := a.deadline(next)
	return func(c echo.Context) error {
		c.Set(ctxStream, c.Request().Context())
		return bounded(c)
	}
}

// streamContext is the context an event stream lives by: the request's,
// without the page deadline.
func streamContext(c echo.Context) context.Context {
	if ctx, ok := c.Get(ctxStream).(context.Context); ok {
		return ctx
	}
	return c.Request().Context()
}

// errBusy marks a request shed: expected under overload, so the error log
// does not get a line for each (the access log still has it, with its 503).
var errBusy = errors.New("shed: too many requests in flight")

// shed bounds the requests in flight that may touch the database
// (MaxInFlight). When the database stalls, requests wait for it up to
// RequestTimeout; past the bound, new ones are refused at once with a 503
// and Retry-After instead of queueing without limit (goroutines, memory,
// and a backlog that outlives the stall). The routes that read the
// database carry it first, so it refuses before any read; static files,
// the health checks and the event stream (which holds no database call
// while it waits) do not, and are not counted. (Echo wraps its middleware
// around the handler on every request, so the slots live on the app, not
// in this closure.)
func (a *app) shed(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if a.slots == nil {
			return next(c)
		}
		select {
		case a.slots <- struct{}{}:
		default:
			c.Response().Header().Set("Retry-After", "1")
			return echo.NewHTTPError(http.StatusServiceUnavailable, "Doorman is too busy to answer right now. Please try again in a moment.").SetInternal(errBusy)
		}
		defer func() { <-a.slots }()
		return next(c)
	}
}

// requestID gives every request an id for the logs and the X-Request-ID
// response header. An id sent by the client is believed only from a trusted
// proxy (which made it, so one request can be followed through both logs),
// and only if it is short and plain; anyone else's is replaced, so a client
// can neither forge log lines nor pick ids that collide with others'.
func (a *app) requestID(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		id := r.Header.Get(echo.HeaderXRequestID)
		if id == "" || !a.fromTrustedProxy(r) || !plainRequestID(id) {
			var b [16]byte
			var enc [22]byte // base64.RawURLEncoding.EncodedLen(16)
			rand.Read(b[:])
			base64.RawURLEncoding.Encode(enc[:], b[:])
			id = string(enc[:])
		}
		// One value slice for both (neither is changed afterwards).
		v := []string{id}
		r.Header[echo.HeaderXRequestID] = v
		c.Response().Header()[echo.HeaderXRequestID] = v
		return next(c)
	}
}

// plainRequestID reports whether id is 1–128 characters of letters, digits,
// '-', '_', '.' and ':' (what proxies generate).
func plainRequestID(id string) bool {
	if len(id) == 0 || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		b := id[i]
		if !(b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || b == '-' || b == '_' || b == '.' || b == ':') {
			return false
		}
	}
	return true
}

// accessLog logs one line per request. Only the path is logged: the query
// may carry a next= URL, and nothing secret ever travels in a URL anyway.
func (a *app) accessLog(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		err := next(c)
		if err != nil {
			c.Error(err) // render the error page now so the status is final
		}
		r := c.Request()
		level := slog.LevelInfo
		if a.kindOf(c) == quietRoute {
			level = slog.LevelDebug
		}
		if !a.log.Enabled(r.Context(), level) {
			return nil
		}
		// LogAttrs: the attributes are not boxed into interfaces.
		a.log.LogAttrs(r.Context(), level, "request",
			slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.Int("status", c.Response().Status),
			slog.Duration("duration", time.Since(start)), slog.String("ip", c.RealIP()),
			slog.String("request_id", c.Response().Header().Get(echo.HeaderXRequestID)))
		return nil
	}
}

// unrouted gives a request no route claimed the chain its route would
// carry. Echo answers an unknown path (404) or a wrong method (405) itself,
// inside the global chain only, and those answers are pages too: a
// signed-in browser's 404 shows it signed in, and a cross-site PUT is
// refused before it is told the method is wrong, so they get the browser's
// routes' chain, bounds included (reading the session is a database read).
// Programs' paths (the API, the OAuth endpoints) get the database's bounds
// and read no cookie, static files and the health checks nothing, as on
// their routes. This, with unroutedKind, is the one place a path decides:
// there is no route to carry it.
func (a *app) unrouted(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if routed(c) {
			return next(c)
		}
		switch unroutedKind(c.Request().URL.Path) {
		case quietRoute:
			return next(c)
		case programRoute:
			return a.shed(a.deadline(next))(c)
		}
		return a.shed(a.deadline(a.csrf(a.loadSession(next))))(c)
	}
}

// routed reports whether a route claimed c's request. Echo routes before
// the global chain runs: a claimed request has its route's path (a group's
// unknown path too, whose group carries its chain); a 405 has one as well,
// with the Allow value the router set.
func routed(c echo.Context) bool {
	return c.Path() != "" && c.Get(echo.ContextKeyHeaderAllow) == nil
}

// unroutedKind is the kind of a request no route claimed, by its path:
// under a programs' prefix (the API, OAuth) it is a program's, so an
// unknown API path is a problem+json 404; a wrong method on a static file
// or a health check stays quiet; anything else is a page.
func unroutedKind(path string) routeKind {
	switch {
	case strings.HasPrefix(path, static.Prefix) || path == paths.Healthz || path == paths.Readyz:
		return quietRoute
	case strings.HasPrefix(path, paths.API+"/") || strings.HasPrefix(path, paths.OAuth+"/") || path == paths.OAuthMetadata,
		strings.HasPrefix(path, paths.OIDC+"/") && path != paths.OIDCContinue, path == paths.OIDCDiscovery:
		return programRoute
	}
	return pageRoute
}

// loadSession finds the request's session (one indexed read) and, when it is
// alive, makes the user available to handlers. A cookie that is not a live
// session is deleted; if its session was ended from elsewhere or expired, the
// browser is told so. Activity is recorded after the handler, and only for
// requests that succeeded, so a refused request changes nothing.
func (a *app) loadSession(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		b, err := a.sessions.Lookup(r)
		if err != nil {
			return err
		}
		switch b.state {
		case stateAlive:
			c.Set(ctxAuth, &authInfo{User: b.user, Session: b.row})
		case stateEnded:
			// When, why and from which of the account's devices (the
			// live notice says the same).
			a.addFlash(c, flashNotice, a.signedOutMessage(r.Context(), b.row, b.user, a.now()))
			switch {
			case b.row.RevokedReason == db.ReasonSessionLimit:
			case b.row.Revoked() || b.user.Disabled():
				// Counted on the ended session's details page: someone
				// (this browser, or whoever copied its cookie) still holds it.
				if b.row.Revoked() {
					if err := a.store.NoteRefusedUse(r.Context(), b.row.ID, a.now()); err != nil {
						a.log.Error("note refused use", "session", b.row.ID, "err", err)
					}
				}
			default:
				a.log.Info("session expired", "session", b.row.ID, "user", b.row.UserID)
			}
			a.sessions.ClearCookie(c)
		case stateInvalid, stateSelf:
			a.sessions.ClearCookie(c)
		case stateStale:
			// A request that left before another tab rotated the secret:
			// signed out for this request, but the cookie is not deleted,
			// since in a browser that would delete the new one.
		}
		if err := next(c); err != nil {
			return err
		}
		if b.state == stateAlive && c.Response().Status < 400 {
			a.touch(c, b.row)
		}
		return nil
	}
}

// touch records activity on a live session, writing at most once per
// ActivityWriteEvery however many requests arrive, and pushing the idle expiry
// forward at most once per IdleExtendEvery. The address and location are
// refreshed with it, so the list shows where a session was last used (a
// stolen cookie shows up as a new place).
func (a *app) touch(c echo.Context, row db.Session) {
	now := a.now()
	if now.Sub(row.LastSeenAt) < a.cfg.ActivityWriteEvery {
		return
	}
	t := db.Touch{LastSeenAt: now, IdleExpiresAt: row.IdleExpiresAt, IP: row.IP, Location: row.Location, LocationShort: row.LocationShort}
	if next := now.Add(a.cfg.IdleTimeout); next.Sub(row.IdleExpiresAt) >= a.cfg.IdleExtendEvery {
		t.IdleExpiresAt = next
	}
	if ip := a.clientIP(c.Request()); ip.String() != row.IP {
		loc := a.geo.Lookup(ip)
		t.IP, t.Location, t.LocationShort = ip.String(), loc.Label, loc.Short
	}
	// A request whose context is over (the client left, or an event stream
	// outlived the request deadline it started with) records nothing, and
	// that is no error: there is nothing to fix.
	ctx := c.Request().Context()
	if ctx.Err() != nil {
		a.log.Debug("touch session skipped: the request is over", "session", row.ID, "err", ctx.Err())
		return
	}
	if err := a.store.TouchSession(ctx, row.ID, t); err != nil {
		if ctx.Err() != nil {
			a.log.Debug("touch session skipped: the request is over", "session", row.ID, "err", err)
			return
		}
		a.log.Error("touch session", "session", row.ID, "err", err)
	}
}

// requireAuth sends signed-out browsers to the sign-in page, remembering
// where they were going.
func (a *app) requireAuth(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if authOf(c) != nil {
			return next(c)
		}
		target := paths.Login
		if r := c.Request(); r.Method == http.MethodGet {
			target = paths.LoginNext(r.URL.RequestURI())
		}
		return c.Redirect(http.StatusSeeOther, target)
	}
}

// requireStreamAuth is requireAuth for the event stream, which is not a
// page: a redirect would have the browser fetch the sign-in page into the
// stream, and its notice (why this browser was signed out) would be spent
// there, unseen. A signed-out stream gets a 401; the tab then asks where it
// stands and moves to sign-in itself.
func (a *app) requireStreamAuth(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if authOf(c) == nil {
			return c.NoContent(http.StatusUnauthorized)
		}
		return next(c)
	}
}

// csrf protects every POST twice. First by origin: a browser tells us where a
// request comes from (Sec-Fetch-Site, else Origin), and anything but our own
// origin is refused, even a same-site subdomain. Second by a token: a random
// value in a cookie that must come back in the form's "csrf" field
// (double-submit), for browsers that send neither header.
//
// Only the browser's requests run it (browserRoutes, and unrouted for what
// no route claims). Static files and the health checks change nothing, and
// a static response carrying a Set-Cookie would be refused by a shared
// cache, or worse, replay one visitor's CSRF cookie to everyone. The API
// and OAuth endpoints read no cookie: nothing ambient for a cross-site
// request to ride.
func (a *app) csrf(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		name := a.cookieName(r, csrfCookie)
		token := ""
		if ck, err := r.Cookie(name); err == nil && len(ck.Value) == 43 {
			token = ck.Value
		}
		switch r.Method {
		case http.MethodGet, http.MethodHead, http.MethodOptions:
		default:
			if err := a.crossOrigin.Check(r); err != nil {
				return echo.NewHTTPError(http.StatusForbidden, "This request came from another site, so it was blocked.")
			}
			sent := formValue(c, "csrf")
			if token == "" || subtle.ConstantTimeCompare([]byte(token), []byte(sent)) != 1 {
				return echo.NewHTTPError(http.StatusForbidden, "This form has expired. Go back, reload the page and try again.")
			}
		}
		if token == "" {
			b := make([]byte, 32)
			rand.Read(b)
			token = base64.RawURLEncoding.EncodeToString(b)
			c.SetCookie(&http.Cookie{Name: name, Value: token, Path: "/", HttpOnly: true, Secure: a.isHTTPS(r), SameSite: http.SameSiteLaxMode})
		}
		c.Set(ctxCSRF, token)
		return next(c)
	}
}
