package handlers

import (
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"doorman/apitoken"
	"doorman/db"
	"doorman/sessiontoken"
)

// The JSON API: bearer tokens only. No cookie is ever read on /api/, so no
// page's session can be ridden by a cross-site request, and there is no
// CSRF surface to defend.

// Scopes a token may carry.
const (
	ScopeSessionsRead  = "sessions:read"
	ScopeSessionsWrite = "sessions:write"
)

// AllScopes are the scopes, in the order pages show them.
var AllScopes = []string{ScopeSessionsRead, ScopeSessionsWrite}

const (
	ctxToken = "doorman.token" // *tokenAuth on API requests
	// tokenTouchEvery: a token's last use is written at most this often.
	tokenTouchEvery = 15 * time.Minute
)

//go:embed openapi.json
var openAPIDocument []byte

// tokenAuth is the API request's credential and its user.
type tokenAuth struct {
	Token db.Token
	User  db.User
}

// problem is an RFC 9457 problem details body.
type problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail,omitempty"`
}

// apiProblem answers status with a problem+json body.
func apiProblem(c echo.Context, status int, detail string) error {
	c.Response().Header().Set(echo.HeaderContentType, "application/problem+json")
	c.Response().WriteHeader(status)
	return json.NewEncoder(c.Response()).Encode(problem{Type: "about:blank", Title: http.StatusText(status), Status: status, Detail: detail})
}

// errAPI is an expected API refusal, turned into a problem by handleError.
type errAPI struct {
	status         int
	detail, bearer string // bearer: the WWW-Authenticate error, if any
	retryAfterSecs int
}

func (e *errAPI) Error() string { return fmt.Sprintf("api: %d %s", e.status, e.detail) }

func invalidToken(detail string) error {
	return &errAPI{status: http.StatusUnauthorized, detail: detail, bearer: "invalid_token"}
}

// writeAPIError is handleError for API paths: every error is a problem.
// code and message are what handleError made of err so far (500, or 503
// when the database cannot serve).
func (a *app) writeAPIError(c echo.Context, err error, code int, message string) {
	var ae *errAPI
	var he *echo.HTTPError
	switch {
	case errors.As(err, &ae):
		code, message = ae.status, ae.detail
		switch {
		case ae.bearer != "":
			c.Response().Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm="doorman", error=%q`, ae.bearer))
		case code == http.StatusUnauthorized:
			c.Response().Header().Set("WWW-Authenticate", `Bearer realm="doorman"`)
		}
		if ae.retryAfterSecs > 0 {
			c.Response().Header().Set("Retry-After", fmt.Sprint(ae.retryAfterSecs))
		}
	case errors.As(err, &he):
		code = he.Code
		if m, ok := he.Message.(string); ok {
			message = m
		}
	}
	if code >= 500 && !errors.Is(err, errBusy) {
		r := c.Request()
		a.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "status", code,
			"request_id", c.Response().Header().Get(echo.HeaderXRequestID), "err", err)
	}
	if message == "" {
		message = http.StatusText(code)
	}
	_ = apiProblem(c, code, message)
}

// tokenPrefixes is the prefix each kind of token is issued with.
var tokenPrefixes = map[string]string{db.TokenPersonal: apitoken.PersonalPrefix, db.TokenApp: apitoken.AppPrefix}

// apiAuth authenticates an API request by its bearer token: the token row
// is read on every request (revocation takes effect on the next call), its
// secret compared in constant time; it must be alive, its user not
// disabled. Then the per-token rate limit.
func (a *app) apiAuth(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		h := c.Request().Header.Get(echo.HeaderAuthorization)
		scheme, value, _ := strings.Cut(h, " ")
		if h == "" {
			return invalidToken("This API needs an access token: Authorization: Bearer <token>.")
		}
		if !strings.EqualFold(scheme, "Bearer") {
			return invalidToken("Only Bearer tokens are accepted.")
		}
		prefix, id, secret, ok := apitoken.Parse(strings.TrimSpace(value))
		if !ok {
			return invalidToken("The access token is malformed.")
		}
		tok, user, err := a.store.TokenWithUser(c.Request().Context(), id)
		if errors.Is(err, db.ErrNotFound) {
			return invalidToken("The access token is unknown.")
		}
		if err != nil {
			return fmt.Errorf("api auth: %w", err)
		}
		now := a.now()
		switch {
		// The prefix names the kind: a token shown with the other kind's
		// prefix is not a token we issued (scanners and people read the
		// prefix to know what leaked).
		case !sessiontoken.Matches(secret, tok.SecretHash) || prefix != tokenPrefixes[tok.Kind]:
			return invalidToken("The access token is unknown.")
		case tok.Revoked():
			return invalidToken("The access token was revoked.")
		case !tok.Alive(now):
			return invalidToken("The access token expired.")
		case user.Disabled():
			return invalidToken("The account is disabled.")
		}
		if wait := a.tokenLimit.take(tok.ID, now); wait > 0 {
			return &errAPI{status: http.StatusTooManyRequests, detail: "Too many requests with this token. Slow down.", retryAfterSecs: int(wait/time.Second) + 1}
		}
		c.Set(ctxToken, &tokenAuth{Token: tok, User: user})
		if err := next(c); err != nil {
			return err
		}
		if now.Sub(tok.LastUsedAt) >= tokenTouchEvery {
			ip := a.clientIP(c.Request())
			if err := a.store.TouchToken(c.Request().Context(), tok.ID, now, ip.String(), a.geo.Lookup(ip).Label); clientGone(c, err) {
				a.log.Debug("touch token: client went away", "token", tok.ID)
			} else if err != nil {
				a.log.Error("touch token", "token", tok.ID, "err", err)
			}
		}
		return nil
	}
}

// requireScope refuses a token without scope.
func requireScope(scope string, h echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		ta := c.Get(ctxToken).(*tokenAuth)
		if !slices.Contains(ta.Token.Scopes, scope) {
			return &errAPI{status: http.StatusForbidden, detail: "This token does not have the " + scope + " scope.", bearer: "insufficient_scope"}
		}
		return h(c)
	}
}

func (a *app) apiOpenAPI(c echo.Context) error {
	return c.Blob(http.StatusOK, "application/json", openAPIDocument)
}

type apiCredential struct {
	Type string `json:"type"`
	ID   string `json:"id"`
	Name string `json:"name"`
}

// apiMe is GET /api/v1/me: who the token acts for, and which credential.
func (a *app) apiMe(c echo.Context) error {
	ta := c.Get(ctxToken).(*tokenAuth)
	kind := "token"
	if ta.Token.Kind == db.TokenApp {
		kind = "app"
	}
	return c.JSON(http.StatusOK, map[string]any{
		"user":       map[string]string{"email": ta.User.Email},
		"credential": apiCredential{Type: kind, ID: ta.Token.ID, Name: ta.Token.Name},
	})
}

type apiSession struct {
	ID           string `json:"id"`
	Device       string `json:"device"`
	Location     string `json:"location"`
	IP           string `json:"ip"`
	SignedInAt   string `json:"signed_in_at"`
	LastActiveAt string `json:"last_active_at"`
	ExpiresAt    string `json:"expires_at"`
}

// apiSessions is GET /api/v1/sessions: the user's live browser sessions,
// most recently active first; ids are the pages' data-session-id.
func (a *app) apiSessions(c echo.Context) error {
	ta := c.Get(ctxToken).(*tokenAuth)
	list, err := a.store.ListSessions(c.Request().Context(), ta.User.ID, a.now())
	if err != nil {
		return fmt.Errorf("api sessions: %w", err)
	}
	out := make([]apiSession, 0, len(list))
	for _, s := range list {
		out = append(out, apiSession{ID: s.ID, Device: s.DeviceLabel, Location: s.Location, IP: s.IP,
			SignedInAt: isoTime(s.CreatedAt), LastActiveAt: isoTime(s.LastSeenAt), ExpiresAt: isoTime(s.ExpiresAt())})
	}
	return c.JSON(http.StatusOK, map[string]any{"sessions": out})
}

// apiRevokeSession is DELETE /api/v1/sessions/<id>: the browser is refused
// on its next request, and its open tabs are told at once.
func (a *app) apiRevokeSession(c echo.Context) error {
	ta := c.Get(ctxToken).(*tokenAuth)
	_, err := a.account.EndSession(c.Request().Context(), ta.User.ID, c.Param("id"), db.ReasonRevokedViaAPI, ta.Token.ID)
	if errors.Is(err, db.ErrNotFound) {
		return &errAPI{status: http.StatusNotFound, detail: "No such session."}
	}
	if err != nil {
		return fmt.Errorf("api revoke session: %w", err)
	}
	return c.NoContent(http.StatusNoContent)
}

// tokenLimiter is a token bucket per API token (per instance): burst
// requests at once, refilled at rate a second. At most maxKeys tokens are
// tracked; the least recently seen is forgotten first.
type tokenLimiter struct {
	mu      sync.Mutex
	rate    float64
	burst   float64
	buckets map[string]*bucket
	maxKeys int
}

type bucket struct {
	level float64
	at    time.Time
}

func newTokenLimiter(rate, burst float64) *tokenLimiter {
	return &tokenLimiter{rate: rate, burst: burst, buckets: map[string]*bucket{}, maxKeys: 100_000}
}

// take spends one request of key's bucket; it returns how long to wait
// when the bucket is empty (0: go ahead). A nil limiter limits nothing.
func (l *tokenLimiter) take(key string, now time.Time) time.Duration {
	if l == nil {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[key]
	if b == nil {
		if len(l.buckets) >= l.maxKeys {
			l.evictOldest()
		}
		b = &bucket{level: l.burst, at: now}
		l.buckets[key] = b
	}
	b.level = min(l.burst, b.level+now.Sub(b.at).Seconds()*l.rate)
	b.at = now
	if b.level < 1 {
		return time.Duration((1 - b.level) / l.rate * float64(time.Second))
	}
	b.level--
	return 0
}

func (l *tokenLimiter) evictOldest() {
	var oldest string
	var at time.Time
	for k, b := range l.buckets {
		if oldest == "" || b.at.Before(at) {
			oldest, at = k, b.at
		}
	}
	delete(l.buckets, oldest)
}
