package oidcprovider

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	httphelper "github.com/zitadel/oidc/v3/pkg/http"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"doorman/db"
)

// Errors of an authorization request that cannot go on, sent back to the
// app (OIDC Core §3.1.2.6).
const (
	LoginRequired   = "login_required"
	ConsentRequired = "consent_required"
	AccessDenied    = "access_denied"
)

// codeCrypto makes authorization codes: 256 random bits each, nothing
// derived from the request (the library's default encrypts the request id
// under a configured key). The store keeps only their hash, so nothing
// needs decrypting: Decrypt always fails, which also keeps the library
// from reading any access token as an opaque one (they are JWTs).
type codeCrypto struct{}

func (codeCrypto) Encrypt(string) (string, error) {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b), nil
}

func (codeCrypto) Decrypt(string) (string, error) {
	return "", errors.New("oidcprovider: nothing is encrypted")
}

// Request is an authorization request in flight and its app, for the
// browser's step in between (sign in, consent).
type Request struct {
	db.AuthRequest
	App db.App
}

// PromptNone, PromptLogin and PromptConsent report the request's prompt.
func (r Request) PromptNone() bool    { return slices.Contains(r.Prompt, oidc.PromptNone) }
func (r Request) PromptLogin() bool   { return slices.Contains(r.Prompt, oidc.PromptLogin) }
func (r Request) PromptConsent() bool { return slices.Contains(r.Prompt, oidc.PromptConsent) }

// TooOld reports whether a sign-in at authTime is older than the request's
// max_age allows at now (prompt=login asks for max_age 0: the library
// sets it).
func (r Request) TooOld(authTime, now time.Time) bool {
	return r.MaxAge >= 0 && now.Sub(authTime) > time.Duration(r.MaxAge)*time.Second
}

// ErrNoRequest means no authorization request with that id is in flight
// (unknown, expired, or its app was removed).
var ErrNoRequest = errors.New("oidcprovider: no such authorization request")

// Request returns the authorization request id, unexpired, with its app.
func (p *Provider) Request(ctx context.Context, id string) (Request, error) {
	r, err := p.storage.store.AuthRequest(ctx, id, p.now())
	if errors.Is(err, db.ErrNotFound) {
		return Request{}, ErrNoRequest
	}
	if err != nil {
		return Request{}, fmt.Errorf("oidcprovider: auth request: %w", err)
	}
	c, err := p.storage.client(ctx, r.ClientID)
	var oe *oidc.Error
	if errors.As(err, &oe) {
		return Request{}, err
	}
	if err != nil {
		return Request{}, ErrNoRequest
	}
	return Request{AuthRequest: r, App: c.app}, nil
}

// Unconsented returns the scopes of the request the user has not
// consented to for its app: what the consent page must ask for (empty:
// nothing to ask). A first-party app never asks.
func (p *Provider) Unconsented(ctx context.Context, userID int64, r Request) ([]string, error) {
	if r.App.FirstParty {
		return nil, nil
	}
	given, err := p.storage.store.Consent(ctx, userID, r.ClientID)
	if err != nil {
		return nil, fmt.Errorf("oidcprovider: consent: %w", err)
	}
	var missing []string
	for _, s := range r.Scopes {
		if !slices.Contains(given, s) {
			missing = append(missing, s)
		}
	}
	return missing, nil
}

// Consent remembers that the user allowed the request's app every scope
// the request asks for (added to what they allowed it before).
func (p *Provider) Consent(ctx context.Context, userID int64, r Request) error {
	if err := p.storage.store.GrantConsent(ctx, userID, r.ClientID, r.Scopes, p.now()); err != nil {
		return fmt.Errorf("oidcprovider: grant consent: %w", err)
	}
	return nil
}

// Cancel forgets a request the person declined, so that nothing can
// complete it afterwards.
func (p *Provider) Cancel(ctx context.Context, r Request) error {
	if err := p.storage.store.DeleteAuthRequest(ctx, r.ID); err != nil {
		return fmt.Errorf("oidcprovider: cancel auth request: %w", err)
	}
	return nil
}

// Completion is the Doorman session that completes a request: who, which
// session, when it last proved who it is and how.
type Completion struct {
	UserID    int64
	SessionID string
	AuthTime  time.Time
	AMR       []string
	Epoch     int64
}

// Complete binds the request to a signed-in session (the store checks, in
// one transaction, that the session is alive and the user's sign-ins were
// not reset since it was read) and returns the redirect to the app: its
// redirect URI with a fresh code, state and iss.
func (p *Provider) Complete(ctx context.Context, r Request, c Completion) (string, error) {
	if err := p.storage.store.CompleteAuthRequest(ctx, r.ID, c.UserID, c.SessionID, c.AuthTime, c.AMR, c.Epoch, p.now()); err != nil {
		return "", fmt.Errorf("oidcprovider: complete auth request: %w", err)
	}
	done, err := p.storage.AuthRequestByID(ctx, r.ID)
	if err != nil {
		return "", err
	}
	ctx = op.ContextWithIssuer(ctx, p.issuer)
	u, err := op.BuildAuthResponseCallbackURL(ctx, done, p.op)
	if err != nil {
		return "", fmt.Errorf("oidcprovider: code: %w", err)
	}
	return withIss(u, p.issuer)
}

// ErrorRedirect is where a request that cannot go on sends the browser:
// its redirect URI (checked when the request was made) with error, state
// and iss.
func (p *Provider) ErrorRedirect(r Request, code, description string) (string, error) {
	var e *oidc.Error
	switch code {
	case LoginRequired:
		e = oidc.ErrLoginRequired()
	case ConsentRequired:
		// The library has no constructor for it; its error type takes the
		// code as an untyped constant.
		e = oidc.ErrInteractionRequired()
		e.ErrorType = ConsentRequired
	default:
		e = oidc.ErrAccessDenied()
	}
	e = e.WithDescription("%s", description)
	e.State = r.State
	u, err := op.AuthResponseURL(r.RedirectURI, oidc.ResponseTypeCode, oidc.ResponseMode(r.ResponseMode), e, p.op.Encoder())
	if err != nil {
		return "", err
	}
	return withIss(u, p.issuer)
}

// withIss adds iss (RFC 9207) to an authorization response: in the part
// of the URL that carries the response (the query; the fragment if the
// response is there), so an app talking to several providers can tell
// which one answered (mix-up attacks).
func withIss(raw, issuer string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", err
	}
	q := u.Query()
	if !q.Has("code") && !q.Has("error") && u.Fragment != "" {
		f, err := url.ParseQuery(u.Fragment)
		if err == nil && (f.Has("code") || f.Has("error")) {
			f.Set("iss", issuer)
			u.RawFragment = f.Encode()
			u.Fragment, _ = url.PathUnescape(u.RawFragment)
			return u.String(), nil
		}
	}
	q.Set("iss", issuer)
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// issWriter adds iss to a redirect the library sends to an app (the
// authorization endpoint's error redirects). Its redirect to Doorman's own
// sign-in step is a path and is left alone.
type issWriter struct {
	http.ResponseWriter
	issuer string
	wrote  bool
}

func (w *issWriter) WriteHeader(code int) {
	if !w.wrote && (code == http.StatusFound || code == http.StatusSeeOther) {
		if loc := w.Header().Get("Location"); loc != "" && !strings.HasPrefix(loc, "/") {
			if u, err := withIss(loc, w.issuer); err == nil {
				w.Header().Set("Location", u)
			}
		}
	}
	w.wrote = true
	w.ResponseWriter.WriteHeader(code)
}

func (w *issWriter) Write(b []byte) (int, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(b)
}

func (w *issWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// codeExchange is the authorization_code grant, built from the library's
// steps, for two of Doorman's rules. A confidential app is authenticated
// before its code is looked at: the code is spent at its first
// presentation, and a wrong secret must not burn it. And every sign-in
// gets a refresh token (sessionRefresh), whose scope the app is told
// truthfully.
func (p *Provider) codeExchange(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	tokenReq, err := op.ParseAccessTokenRequest(r, p.op.Decoder())
	if err != nil {
		op.RequestError(w, r, err, nil)
		return
	}
	if tokenReq.Code == "" {
		op.RequestError(w, r, oidc.ErrInvalidRequest().WithDescription("code missing"), nil)
		return
	}
	c, err := p.storage.client(ctx, tokenReq.ClientID)
	if err != nil {
		op.RequestError(w, r, oidc.ErrInvalidClient().WithParent(err), nil)
		return
	}
	if c.confidential() {
		if err := op.AuthorizeClientIDSecret(ctx, tokenReq.ClientID, tokenReq.ClientSecret, p.storage); err != nil {
			op.RequestError(w, r, err, nil)
			return
		}
	}
	authReq, cl, err := op.ValidateAccessTokenRequest(ctx, tokenReq, p.op)
	if err != nil {
		op.RequestError(w, r, err, nil)
		return
	}
	req, ok := authReq.(*authRequest)
	if !ok {
		op.RequestError(w, r, oidc.ErrServerError(), nil)
		return
	}
	resp, err := op.CreateTokenResponse(ctx, sessionRefresh{req}, cl, p.op, true, tokenReq.Code, "")
	if err != nil {
		op.RequestError(w, r, err, nil)
		return
	}
	resp.Scope = req.Scopes
	httphelper.MarshalJSON(w, resp)
}

// userinfo answers for a live access token only. One whose grant, session
// or account ended gets 401 invalid_token (RFC 6750 §3.1), as an expired
// one does, so the app signs the person out (the library would answer 403).
func (p *Provider) userinfo(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	refuse := func() {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		http.Error(w, "access token invalid", http.StatusUnauthorized)
	}
	token, err := op.ParseUserinfoRequest(r, p.op.Decoder())
	if err != nil || token == "" {
		w.Header().Set("WWW-Authenticate", `Bearer`)
		http.Error(w, "access token missing", http.StatusUnauthorized)
		return
	}
	claims, err := op.VerifyAccessToken[*oidc.AccessTokenClaims](ctx, token, p.op.AccessTokenVerifier(ctx))
	if err != nil {
		refuse()
		return
	}
	info := new(oidc.UserInfo)
	err = p.storage.SetUserinfoFromToken(ctx, info, claims.JWTID, claims.Subject, "")
	switch {
	case errors.Is(err, errUnusable), errors.Is(err, db.ErrNotFound):
		refuse()
		return
	case err != nil:
		op.RequestError(w, r, oidc.ErrServerError().WithParent(err), nil)
		return
	}
	httphelper.MarshalJSON(w, info)
}

// discovery is the library's document, narrowed to what Doorman serves
// (the library lists the implicit flow, the JWT grant, a device endpoint
// and private_key_jwt whatever is configured) and with
// authorization_response_iss_parameter_supported (RFC 9207), which it
// does not know.
func (p *Provider) discovery(w http.ResponseWriter, r *http.Request) {
	ctx := op.ContextWithIssuer(r.Context(), p.issuer)
	c := op.CreateDiscoveryConfig(ctx, p.op, p.storage)
	secret := []oidc.AuthMethod{oidc.AuthMethodBasic, oidc.AuthMethodPost}
	c.ResponseTypesSupported = []string{string(oidc.ResponseTypeCode)}
	c.ResponseModesSupported = []string{string(oidc.ResponseModeQuery)}
	c.GrantTypesSupported = []oidc.GrantType{oidc.GrantTypeCode, oidc.GrantTypeRefreshToken}
	c.SubjectTypesSupported = []string{"public"}
	c.CodeChallengeMethodsSupported = []oidc.CodeChallengeMethod{oidc.CodeChallengeMethodS256}
	c.TokenEndpointAuthMethodsSupported = append(slices.Clip(secret), oidc.AuthMethodNone)
	c.RevocationEndpointAuthMethodsSupported = append(slices.Clip(secret), oidc.AuthMethodNone)
	c.IntrospectionEndpointAuthMethodsSupported = secret
	c.TokenEndpointAuthSigningAlgValuesSupported = nil
	c.RevocationEndpointAuthSigningAlgValuesSupported = nil
	c.IntrospectionEndpointAuthSigningAlgValuesSupported = nil
	c.RequestObjectSigningAlgValuesSupported = nil
	c.RequestParameterSupported, c.RequestURIParameterSupported = false, false
	c.DeviceAuthorizationEndpoint = "" // Doorman's own device flow is at /oauth
	c.CheckSessionIframe = ""
	// end_session_endpoint (RP-initiated logout) is the library's
	// configured path, served by Doorman's pages (ReadEndSession).
	raw, err := json.Marshal(c)
	if err != nil {
		op.RequestError(w, r, oidc.ErrServerError().WithParent(err), nil)
		return
	}
	doc := map[string]any{}
	if err := json.Unmarshal(raw, &doc); err != nil {
		op.RequestError(w, r, oidc.ErrServerError().WithParent(err), nil)
		return
	}
	doc["authorization_response_iss_parameter_supported"] = true
	httphelper.MarshalJSON(w, doc)
}

// Subject is the user's subject (sub) in every token.
func (p *Provider) Subject(ctx context.Context, userID int64) (string, error) {
	return p.storage.store.Subject(ctx, userID)
}
