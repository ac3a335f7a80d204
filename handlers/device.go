package handlers

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"doorman/apitoken"
	"doorman/db"
	"doorman/geo"
	"doorman/mails"
	"doorman/paths"
	"doorman/views"
)

// The OAuth 2.0 Device Authorization Grant (RFC 8628), for command-line
// tools: the tool asks for a code, the person enters it at /device in a
// browser where they are signed in, approves, and the tool's polling of the
// token endpoint turns into an access token.

const (
	grantDeviceCode = "urn:ietf:params:oauth:grant-type:device_code"
	// deviceCodeLifetime is how long a code may wait for its approval.
	deviceCodeLifetime = 10 * time.Minute
	// devicePollInterval is the seconds a client waits between polls.
	devicePollInterval = 5
	// tokenPollsPerSecond and tokenPollBurst bound the token endpoint's
	// requests per client address (see oauthToken).
	tokenPollsPerSecond = 1
	tokenPollBurst      = 30
	// appTokenLifetime is how long a connected app's token lasts.
	appTokenLifetime = 90 * 24 * time.Hour
	// userCodeAlphabet: consonants only (no words, no 0/O, 1/I mix-ups),
	// RFC 8628 §6.1's example; 20^8 ≈ 2^34.6 codes.
	userCodeAlphabet = "BCDFGHJKLMNPQRSTVWXZ"
	// scopeDeviceCode (+ the session's id) counts wrong codes entered at
	// /device per session, and all of a user's together (its prefix),
	// under the account "user:<id>".
	scopeDeviceCode = "device_code:"
)

// baseURL is the origin of the flow's absolute URLs: the configured public
// origin (-base-url) when there is one, since the Host header is the
// client's to write; else the origin the client reached us at (behind a
// trusted proxy, the one it names).
func (a *app) baseURL(r *http.Request) string {
	if a.cfg.PublicOrigin != "" {
		return a.cfg.PublicOrigin
	}
	scheme := "http"
	if a.isHTTPS(r) {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// oauthMetadata is RFC 8414's authorization server metadata.
func (a *app) oauthMetadata(c echo.Context) error {
	base := a.baseURL(c.Request())
	return c.JSON(http.StatusOK, map[string]any{
		"issuer":                                base,
		"device_authorization_endpoint":         base + paths.OAuthDeviceAuthorization,
		"token_endpoint":                        base + paths.OAuthToken,
		"scopes_supported":                      AllScopes,
		"grant_types_supported":                 []string{grantDeviceCode},
		"response_types_supported":              []string{},
		"token_endpoint_auth_methods_supported": []string{"none"},
	})
}

// oauthError answers an RFC 6749 §5.2 error.
func oauthError(c echo.Context, status int, code, description string) error {
	body := map[string]string{"error": code}
	if description != "" {
		body["error_description"] = description
	}
	return c.JSON(status, body)
}

// oauthClientID is the client_id of a device-flow request. Doorman's apps
// are public clients (RFC 6749 §2.1: no secret), identified by client_id
// in the body (RFC 8628 §3.1, §3.4) or, as RFC 6749 §2.3.1 lets a client
// send its identity, as the user name of HTTP Basic authentication
// (form-urlencoded first) with an empty password. Standard clients do the
// latter: golang.org/x/oauth2 with its default (auto-detected) auth style
// sends every token request first with Basic, then again with the id in
// the body if that failed, so the first of the two must be a real poll.
// Both at once must name the same client. A password is refused (401
// invalid_client, with the WWW-Authenticate §5.2 asks for): these clients
// have none, and a client that thinks it has one is misconfigured.
// refused is non-nil when the request is refused here, before anything is
// looked up: the caller answers with it.
func oauthClientID(c echo.Context) (clientID string, refused *oauthRefusal) {
	body := formValue(c, "client_id")
	if c.Request().Header.Get(echo.HeaderAuthorization) == "" {
		return body, nil
	}
	user, password, basic := c.Request().BasicAuth()
	var bad error
	if basic {
		user, bad = url.QueryUnescape(user)
	}
	switch {
	case !basic || bad != nil || user == "":
		return "", &oauthRefusal{http.StatusUnauthorized, "invalid_client", "Send the client_id in the body, or as the HTTP Basic user name with an empty password.", true}
	case password != "":
		return "", &oauthRefusal{http.StatusUnauthorized, "invalid_client", "This app has no client secret: send the client_id only.", true}
	case body != "" && body != user:
		return "", &oauthRefusal{http.StatusBadRequest, "invalid_request", "The client_id in the body and in the Authorization header differ.", false}
	}
	return user, nil
}

// oauthRefusal is an RFC 6749 §5.2 error not answered yet. challenge asks
// for the WWW-Authenticate header §5.2 wants with a 401 invalid_client to a
// client that tried to authenticate through the Authorization header.
type oauthRefusal struct {
	status            int
	code, description string
	challenge         bool
}

// answer sends the refusal.
func (r *oauthRefusal) answer(c echo.Context) error {
	if r.challenge {
		c.Response().Header().Set(echo.HeaderWWWAuthenticate, `Basic realm="doorman"`)
	}
	return oauthError(c, r.status, r.code, r.description)
}

// parseScopes reads a space-separated scope parameter: each must be known;
// none means every scope.
func parseScopes(s string) ([]string, bool) {
	fields := strings.Fields(s)
	if len(fields) == 0 {
		return slices.Clone(AllScopes), true
	}
	var out []string
	for _, want := range AllScopes {
		if slices.Contains(fields, want) {
			out = append(out, want)
		}
	}
	for _, f := range fields {
		if !slices.Contains(AllScopes, f) {
			return nil, false
		}
	}
	return out, true
}

func newUserCode() string {
	b := make([]byte, 8)
	rand.Read(b)
	for i := range b {
		b[i] = userCodeAlphabet[int(b[i])%len(userCodeAlphabet)]
	}
	return string(b)
}

// normaliseUserCode accepts what people type: any case, with or without
// the dash or spaces.
func normaliseUserCode(s string) string {
	return strings.ToUpper(strings.Map(func(r rune) rune {
		if r == '-' || r == ' ' {
			return -1
		}
		return r
	}, strings.TrimSpace(s)))
}

func showUserCode(code string) string {
	if len(code) != 8 {
		return code
	}
	return code[:4] + "-" + code[4:]
}

func hashDeviceCode(code string) []byte {
	sum := sha256.Sum256([]byte(code))
	return sum[:]
}

// deviceAuthorization is POST /oauth/device_authorization.
func (a *app) deviceAuthorization(c echo.Context) error {
	r := c.Request()
	if wait := a.oauthLimit.take("device:"+a.clientKey(c), a.now()); wait > 0 {
		c.Response().Header().Set("Retry-After", fmt.Sprint(int(wait/time.Second)+1))
		return oauthError(c, http.StatusTooManyRequests, "slow_down", "Too many requests from this address.")
	}
	clientID, refused := oauthClientID(c)
	if refused != nil {
		return refused.answer(c)
	}
	app, err := a.store.App(r.Context(), clientID)
	if errors.Is(err, db.ErrNotFound) {
		return oauthError(c, http.StatusUnauthorized, "invalid_client", "Unknown client_id.")
	}
	if err != nil {
		return fmt.Errorf("device authorization: %w", err)
	}
	scopes, ok := parseScopes(formValue(c, "scope"))
	if !ok {
		return oauthError(c, http.StatusBadRequest, "invalid_scope", "Supported scopes: "+strings.Join(AllScopes, " ")+".")
	}
	now := a.now()
	raw := make([]byte, 32)
	rand.Read(raw)
	deviceCode := base64.RawURLEncoding.EncodeToString(raw)
	ip := a.clientIP(r)
	d := db.DeviceAuthorization{
		DeviceCodeHash: hashDeviceCode(deviceCode), ClientID: app.ClientID, Scopes: scopes,
		CreatedAt: now, ExpiresAt: now.Add(deviceCodeLifetime), Interval: devicePollInterval,
		IP: ip.String(), Location: a.geo.Lookup(ip).Label, Status: db.DevicePending,
	}
	for range 5 { // a user code still in use: draw another
		d.UserCode = newUserCode()
		if err = a.store.CreateDeviceAuthorization(r.Context(), d); !errors.Is(err, db.ErrConflict) {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("device authorization: %w", err)
	}
	a.log.Info("device authorization requested", "client", app.ClientID, "ip", ip.String())
	verify := a.baseURL(r) + paths.Device
	return c.JSON(http.StatusOK, map[string]any{
		"device_code":               deviceCode,
		"user_code":                 showUserCode(d.UserCode),
		"verification_uri":          verify,
		"verification_uri_complete": verify + "?code=" + showUserCode(d.UserCode),
		"expires_in":                int(deviceCodeLifetime / time.Second),
		"interval":                  devicePollInterval,
	})
}

// oauthToken is POST /oauth/token for the device_code grant, answering as
// RFC 8628 §3.5 says.
//
// Requests are limited per client address first (each poll is a database
// write), tokenPollsPerSecond in bursts of tokenPollBurst: room for many
// tools polling at the 5 s interval from one address, none for a flood.
// Past it the answer is 429 with Retry-After and RFC 8628's "slow_down":
// the one error every device-flow client already obeys by polling more
// slowly (5 s more each time) rather than giving up, and which clients read
// from any 4xx (golang.org/x/oauth2 does); 429 (RFC 6585) rather than
// RFC 6749's default 400 says to everyone else that this is a rate limit,
// not a bad request, as /oauth/device_authorization already does. (The
// per-device-code slow_down, for a client polling faster than its
// interval, stays a 400: it is about that grant.)
func (a *app) oauthToken(c echo.Context) error {
	r := c.Request()
	if wait := a.tokenPollLimit.take(a.clientKey(c), a.now()); wait > 0 {
		c.Response().Header().Set("Retry-After", fmt.Sprint(int((wait+time.Second-1)/time.Second)))
		return oauthError(c, http.StatusTooManyRequests, "slow_down", "Too many requests from this address.")
	}
	if gt := formValue(c, "grant_type"); gt != grantDeviceCode {
		return oauthError(c, http.StatusBadRequest, "unsupported_grant_type", "Only "+grantDeviceCode+" is supported.")
	}
	clientID, refused := oauthClientID(c)
	if refused != nil {
		return refused.answer(c)
	}
	deviceCode := formValue(c, "device_code")
	if deviceCode == "" || len(deviceCode) > 100 {
		return oauthError(c, http.StatusBadRequest, "invalid_request", "device_code is required.")
	}
	now := a.now()
	d, tooFast, err := a.store.PollDeviceAuthorization(r.Context(), hashDeviceCode(deviceCode), now)
	if errors.Is(err, db.ErrNotFound) || (err == nil && d.ClientID != clientID) {
		return oauthError(c, http.StatusBadRequest, "invalid_grant", "Unknown device_code.")
	}
	if err != nil {
		return fmt.Errorf("token: %w", err)
	}
	// A final answer (expired, denied, already used) comes before
	// slow_down, whatever the pace: slow_down tells a client to keep
	// polling, so answering it to a poll of a code that can never turn into
	// a token would keep the tool waiting until the code expires, never
	// learning it was refused. golang.org/x/oauth2 sends each poll twice in
	// a row (see oauthClientID) and reads only the second answer, which is
	// always too fast. A final answer gives nothing away that the one
	// before did not. Only a poll that could still get a token (pending or
	// approved) is held to the interval.
	switch {
	case !now.Before(d.ExpiresAt):
		return oauthError(c, http.StatusBadRequest, "expired_token", "The code expired. Start again.")
	case d.Status == db.DeviceDenied:
		return oauthError(c, http.StatusBadRequest, "access_denied", "The request was denied.")
	case d.Status != db.DevicePending && d.Status != db.DeviceApproved:
		return oauthError(c, http.StatusBadRequest, "invalid_grant", "This code was already used.")
	case tooFast:
		return oauthError(c, http.StatusBadRequest, "slow_down", fmt.Sprintf("Poll at most every %d seconds.", d.Interval))
	case d.Status == db.DevicePending:
		return oauthError(c, http.StatusBadRequest, "authorization_pending", "")
	}
	app, err := a.store.App(r.Context(), d.ClientID)
	if err != nil {
		return oauthError(c, http.StatusBadRequest, "invalid_grant", "The app was removed.")
	}
	tok := apitoken.New(apitoken.AppPrefix)
	t := db.Token{
		ID: tok.ID, SecretHash: tok.Hash, UserID: d.UserID, Kind: db.TokenApp, Name: app.Name, ClientID: app.ClientID,
		Scopes: d.Scopes, CreatedAt: now, ExpiresAt: now.Add(appTokenLifetime), CreatedIP: d.IP, CreatedLocation: d.Location,
	}
	err = a.store.RedeemDeviceAuthorization(r.Context(), d.DeviceCodeHash, t)
	if errors.Is(err, db.ErrNotFound) {
		return oauthError(c, http.StatusBadRequest, "invalid_grant", "This code was already used.")
	}
	if errors.Is(err, db.ErrSignInsReset) {
		// The account was reset after the approval: the approval died
		// with everything else, and the tool must ask again.
		a.log.Info("device approval void", "reason", "account reset since approval", "client", app.ClientID, "user", d.UserID)
		return oauthError(c, http.StatusBadRequest, "access_denied", "The approval was withdrawn: the account was reset since. Start again.")
	}
	if err != nil {
		return fmt.Errorf("token: %w", err)
	}
	a.log.Info("app connected", "client", app.ClientID, "user", d.UserID, "token", tok.ID)
	return c.JSON(http.StatusOK, map[string]any{
		"access_token": tok.Value, "token_type": "Bearer", "scope": strings.Join(t.Scopes, " "),
		"expires_in": int(appTokenLifetime / time.Second),
	})
}

// scopeTexts say what each scope lets an app do.
var scopeTexts = map[string]string{
	ScopeSessionsRead:  "See where you're signed in",
	ScopeSessionsWrite: "Sign your sessions out",
}

// devicePage is GET /device: the form for the code (pre-filled from
// verification_uri_complete).
func (a *app) devicePage(c echo.Context) error {
	return a.render(c, http.StatusOK, views.DevicePage(views.DeviceProps{
		Page: a.page(c, "Connect a device", "security"), Code: c.QueryParam("code"),
	}))
}

// deviceCodeProblem is /device again, with what was wrong with the code.
func (a *app) deviceCodeProblem(c echo.Context, status int, code, problem string) error {
	return a.render(c, status, views.DevicePage(views.DeviceProps{Page: a.page(c, "Connect a device", "security"), Code: code, CodeError: problem}))
}

// deviceLookup is POST /device: the entered code → the approval page.
func (a *app) deviceLookup(c echo.Context) error {
	d, p, err := a.deviceRequest(c)
	if err != nil || p != nil {
		if p != nil {
			return a.deviceCodeProblem(c, p.status, formValue(c, "code"), p.text)
		}
		return err
	}
	return a.renderApproval(c, http.StatusOK, d, "")
}

// deviceRequest finds the pending request of the form's code. Wrong codes
// are counted three ways, each within FailureWindow, so nobody finds
// another person's pending code by guessing (20^8 ≈ 2^34.6 codes):
//   - per session (AccountFailureLimit, 10): a copied cookie alone spends
//     only its own session's count, never the owner's whole allowance;
//   - per user across all their sessions (DeviceCodeFailuresPerUser, 30,
//     in the database): signing in again gives a guesser no fresh count;
//   - per client address (DeviceCodeFailuresPerIP, 30, in memory): many
//     accounts of one guesser share one count.
//
// Each attempt is counted before the lookup, atomically (the store's
// reservation, the limiter's take), and given back when the code exists.
// While any count is spent, every code is refused with 429 before it is
// looked up, the right one too: if the answer depended on the code, a
// throttled guesser could go on guessing and learn from the difference.
// The owner waits (the page says how long) or starts again on the device
// if its code expires meanwhile.
func (a *app) deviceRequest(c echo.Context) (db.DeviceAuthorization, *passwordProblem, error) {
	au := authOf(c)
	account, scope := "user:"+fmt.Sprint(au.User.ID), scopeDeviceCode+au.Session.ID
	now, ipKey := a.now(), a.clientKey(c)
	var try attempt
	wait := a.deviceCodeLimit.take(ipKey, now)
	if wait == 0 {
		var err error
		try, wait, _, err = a.reserve(c, account, scope, a.cfg.AccountFailureLimit, a.cfg.FailureWindow,
			db.AttemptLimit{Scope: scopeDeviceCode, Prefix: true, Max: a.cfg.DeviceCodeFailuresPerUser})
		if err != nil || wait > 0 {
			a.deviceCodeLimit.giveBack(ipKey, now)
		}
		if err != nil {
			return db.DeviceAuthorization{}, nil, err
		}
	}
	if wait > 0 {
		t := throttled{wait}
		t.setHeader(c)
		mins := int((wait + time.Minute - 1) / time.Minute)
		return db.DeviceAuthorization{}, &passwordProblem{fmt.Sprintf("Too many wrong codes. Please wait %s and try again; if the code on your device expires meanwhile, start again there.", plural(max(mins, 1), "minute")), http.StatusTooManyRequests}, nil
	}
	code := normaliseUserCode(formValue(c, "code"))
	d, err := a.store.DeviceAuthorizationByUserCode(c.Request().Context(), code)
	if err != nil && !errors.Is(err, db.ErrNotFound) {
		a.release(c, try)
		a.deviceCodeLimit.giveBack(ipKey, now)
		return d, nil, fmt.Errorf("device: %w", err)
	}
	if len(code) == 8 && err == nil {
		// A code that exists is no guess, whatever its state: only
		// wrong codes stay counted.
		a.release(c, try)
		a.deviceCodeLimit.giveBack(ipKey, now)
	}
	switch {
	case len(code) != 8 || errors.Is(err, db.ErrNotFound):
		return d, &passwordProblem{"That code isn't right. Check the code your device shows (8 letters).", http.StatusUnprocessableEntity}, nil
	case !now.Before(d.ExpiresAt):
		return d, &passwordProblem{"That code expired. Start again on your device to get a new one.", http.StatusGone}, nil
	case d.Status != db.DevicePending:
		return d, &passwordProblem{"That code was already used.", http.StatusConflict}, nil
	}
	return d, nil, nil
}

func (a *app) renderApproval(c echo.Context, status int, d db.DeviceAuthorization, passwordError string) error {
	app, err := a.store.App(c.Request().Context(), d.ClientID)
	if err != nil {
		return fmt.Errorf("device: %w", err)
	}
	var access []string
	for _, s := range d.Scopes {
		access = append(access, scopeTexts[s])
	}
	// A request from somewhere else than this browser is how a device
	// code is phished ("enter this code to claim your prize"): say so.
	var elsewhere string
	if here := a.geo.Lookup(a.clientIP(c.Request())).Label; aPlace(here) && aPlace(d.Location) && here != d.Location {
		elsewhere = "This request came from " + d.Location + ", and you are in " + here + ". Approve it only if you started it yourself, on a device of yours."
	}
	return a.render(c, status, views.DeviceApprovePage(views.DeviceApproveProps{
		Page: a.page(c, "Connect "+app.Name, "security"), AppName: app.Name, Code: showUserCode(d.UserCode),
		Access: access, Where: requestedFrom(d), Elsewhere: elsewhere, RequestedAgo: relTime(a.now(), d.CreatedAt), RequestedISO: isoTime(d.CreatedAt),
		PasswordError: passwordError,
	}))
}

// aPlace reports whether a location label names a place on the map (not
// this computer, the local network, or unknown), so two can be compared.
func aPlace(label string) bool {
	return label != "" && label != geo.LabelThisComputer && label != geo.LabelLocalNetwork && label != geo.LabelUnknown
}

// requestedFrom is where a device request came from, in words.
func requestedFrom(d db.DeviceAuthorization) string {
	if d.IP == "" {
		return d.Location
	}
	return d.Location + " (" + d.IP + ")"
}

// deviceDecide is POST /device/approve and /device/deny.
func (a *app) deviceDecide(c echo.Context) error {
	approve := c.Path() == paths.DeviceApprove
	d, p, err := a.deviceRequest(c)
	if err != nil || p != nil {
		if p != nil {
			return a.deviceCodeProblem(c, p.status, formValue(c, "code"), p.text)
		}
		return err
	}
	au := authOf(c)
	var notice []db.Mail
	if approve {
		// Approving hands out a credential that outlives this session, as
		// creating a token does: the password every time (a cookie copied
		// inside the sudo window must not mint a 90-day app token), and
		// the owner is mailed.
		if g := a.confirmPassword(c, au, "password"); !g.passed() {
			return g.refuse(func(problem *passwordProblem) error { return a.renderApproval(c, problem.status, d, problem.text) })
		}
		app, err := a.store.App(c.Request().Context(), d.ClientID)
		if err != nil {
			return fmt.Errorf("device: %w", err)
		}
		notice = a.securityNotice(c, au.User, paths.Security, func(to string, w mails.Where, pageURL string) db.Mail {
			return a.mails.AppConnected(to, app.Name, requestedFrom(d), w, pageURL)
		})
	}
	err = a.store.DecideDeviceAuthorization(c.Request().Context(), d.UserCode, au.User.ID, au.User.Epoch, approve, a.now(), notice...)
	if errors.Is(err, db.ErrNotFound) {
		return a.deviceCodeProblem(c, http.StatusConflict, "", "That code was already used or expired.")
	}
	if err != nil {
		return fmt.Errorf("device: %w", err)
	}
	a.kickMail(notice)
	a.log.Info("device authorization decided", "client", d.ClientID, "user", au.User.ID, "approved", approve)
	if approve {
		// Not "Connected": the tool connects when it next asks (its poll),
		// and until then the page lists the approval as waiting.
		a.addFlash(c, flashSuccess, "Approved. Go back to your device: it finishes connecting by itself, then appears under Connected apps.")
	} else {
		a.addFlash(c, flashNotice, "Denied. The device was not connected.")
	}
	return c.Redirect(http.StatusSeeOther, paths.Security)
}

// cancelApproval withdraws an approval no app has redeemed yet, from the
// Security page (no password: withdrawing only protects the account).
// Another user's code, or one no longer waiting, is a 404.
func (a *app) cancelApproval(c echo.Context) error {
	au := authOf(c)
	code := normaliseUserCode(c.Param("code"))
	if len(code) != 8 {
		return errNoSuchApproval()
	}
	err := a.store.CancelApproval(c.Request().Context(), au.User.ID, code, a.now())
	if errors.Is(err, db.ErrNotFound) {
		return errNoSuchApproval()
	}
	if err != nil {
		return fmt.Errorf("cancel approval: %w", err)
	}
	a.log.Info("device approval withdrawn", "user", au.User.ID, "session", au.Session.ID)
	a.addFlash(c, flashSuccess, "The approval was withdrawn. That device won't be connected.")
	return c.Redirect(http.StatusSeeOther, paths.Security)
}

func errNoSuchApproval() error {
	return echo.NewHTTPError(http.StatusNotFound, "There is no such approval waiting. The app may have connected already: see Connected apps.")
}
