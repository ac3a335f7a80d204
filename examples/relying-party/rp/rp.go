// Package rp is a small OpenID Connect relying party: an app that signs people
// in through an OpenID Connect provider (Doorman) with the authorization code
// flow and PKCE, and is signed out by the provider's Back-Channel Logout 1.0.
//
// It is the example a newcomer runs beside Doorman (examples/relying-party) and
// the app the browser tests drive in the same process. Everything it keeps
// (sessions, seen logout token ids, events) lives in memory: a restart signs
// everyone out of it, which is fine for an example.
package rp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// Config is what an RP needs to know about itself and its provider.
type Config struct {
	// Issuer is the provider's issuer URL, e.g. http://127.0.0.1:8080. Its
	// discovery document is fetched on first use, so the RP may start first.
	Issuer string
	// ClientID is the client_id the provider gave this app when it was registered.
	ClientID string
	// ClientSecret is the client secret of a confidential client; empty for a
	// public client (which then authenticates with PKCE alone).
	ClientSecret string
	// BaseURL is this app's own origin as the browser sees it, e.g.
	// http://127.0.0.1:9090. The redirect URI is BaseURL + "/callback" and the
	// post-logout redirect URI is BaseURL + "/"; both must be registered as such.
	BaseURL string
	// Scopes asked for; nil means "openid email". "openid" is always included.
	Scopes []string
	// HTTPClient talks to the provider (discovery, keys, token endpoint); nil
	// means a client with a 10 s timeout.
	HTTPClient *http.Client
	// Logger receives what happened; nil means slog.Default().
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// RP is the relying party: an http.Handler serving its pages, the callback and
// the back-channel logout endpoint.
type RP struct {
	cfg          Config
	client       *http.Client
	log          *slog.Logger
	now          func() time.Time
	redirectURI  string
	postLogout   string
	secureCookie bool
	handler      http.Handler

	discoverMu sync.Mutex
	discovered *discovery // nil until discovery succeeded once

	sessions *sessionStore
	jtis     *jtiStore
	events   *eventLog
}

// discovery is what the RP learned from the provider's discovery document.
type discovery struct {
	provider *oidc.Provider
	verifier *oidc.IDTokenVerifier
	oauth2   *oauth2.Config
	// endSession is the end_session_endpoint (RP-Initiated Logout); empty when
	// the provider has none.
	endSession string
	// issParameter is authorization_response_iss_parameter_supported (RFC 9207).
	issParameter bool
}

// New checks cfg and returns an RP. It does not contact the provider.
func New(cfg Config) (*RP, error) {
	if cfg.Issuer == "" {
		return nil, errors.New("rp: Issuer is required")
	}
	if cfg.ClientID == "" {
		return nil, errors.New("rp: ClientID is required")
	}
	base, err := url.Parse(cfg.BaseURL)
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" || base.RawQuery != "" || base.Fragment != "" {
		return nil, fmt.Errorf("rp: BaseURL %q must be an http(s) origin such as http://127.0.0.1:9090", cfg.BaseURL)
	}
	baseURL := strings.TrimSuffix(cfg.BaseURL, "/")
	if len(cfg.Scopes) == 0 {
		cfg.Scopes = []string{"email"}
	}
	scopes := []string{oidc.ScopeOpenID}
	for _, s := range cfg.Scopes {
		if s != oidc.ScopeOpenID && s != "" {
			scopes = append(scopes, s)
		}
	}
	cfg.Scopes = scopes
	r := &RP{
		cfg:          cfg,
		client:       cfg.HTTPClient,
		log:          cfg.Logger,
		now:          cfg.Now,
		redirectURI:  baseURL + "/callback",
		postLogout:   baseURL + "/",
		secureCookie: base.Scheme == "https",
	}
	if r.client == nil {
		// A provider that hangs must not hang the page (or a back-channel
		// request) forever.
		r.client = &http.Client{Timeout: 10 * time.Second}
	}
	if r.log == nil {
		r.log = slog.Default()
	}
	if r.now == nil {
		r.now = time.Now
	}
	r.sessions = newSessionStore(r.now)
	r.jtis = newJTIStore(r.now)
	r.events = newEventLog(r.now)
	r.handler = r.routes()
	return r, nil
}

// routes lists every route of the RP in one place.
func (r *RP) routes() http.Handler {
	mux := http.NewServeMux()
	// Browser POSTs are refused when they come from another origin (Go's
	// Sec-Fetch-Site/Origin check): another site must not sign people out of
	// this app or spend their refresh token.
	browser := http.NewCrossOriginProtection()
	mux.HandleFunc("GET /{$}", r.home)
	mux.HandleFunc("GET /login", r.login)
	mux.HandleFunc("GET /callback", r.callback)
	mux.Handle("POST /logout", browser.Handler(http.HandlerFunc(r.logout)))
	mux.Handle("POST /refresh", browser.Handler(http.HandlerFunc(r.refresh)))
	// The provider calls this one server to server: no browser, no cookie, no
	// Origin header. The logout token's signature is what authenticates it.
	mux.HandleFunc("POST /backchannel-logout", r.backchannelLogout)
	mux.HandleFunc("GET /events", r.eventsJSON)
	return securityHeaders(mux)
}

// ServeHTTP serves the RP's pages and endpoints.
func (r *RP) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	r.handler.ServeHTTP(w, req)
}

// securityHeaders sets the headers every response carries.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		h := w.Header()
		// No script, no frames, nothing loaded from elsewhere: the pages are
		// plain HTML with one inline style sheet. form-action is left out on
		// purpose: "Sign out" posts here and is then redirected to the
		// provider, which Chromium would count against form-action.
		h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; frame-ancestors 'none'")
		// The callback URL carries the authorization code: never send it on.
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Content-Type-Options", "nosniff")
		next.ServeHTTP(w, req)
	})
}

// ctx returns ctx carrying the RP's HTTP client for go-oidc and oauth2.
func (r *RP) ctx(ctx context.Context) context.Context {
	return oidc.ClientContext(ctx, r.client)
}

// provider returns what discovery found, fetching the discovery document on
// first use. A failure is not remembered: the next request tries again, so the
// RP can be started before the provider.
func (r *RP) provider(ctx context.Context) (*discovery, error) {
	r.discoverMu.Lock()
	defer r.discoverMu.Unlock()
	if r.discovered != nil {
		return r.discovered, nil
	}
	p, err := oidc.NewProvider(r.ctx(ctx), r.cfg.Issuer)
	if err != nil {
		return nil, fmt.Errorf("rp: discovery at %s: %w", r.cfg.Issuer, err)
	}
	var meta struct {
		EndSession   string `json:"end_session_endpoint"`
		IssParameter bool   `json:"authorization_response_iss_parameter_supported"`
	}
	if err := p.Claims(&meta); err != nil {
		return nil, fmt.Errorf("rp: discovery at %s: %w", r.cfg.Issuer, err)
	}
	endpoint := p.Endpoint()
	// Say how the client authenticates instead of letting oauth2 guess: its
	// auto-detection retries a failed token request the other way, and a
	// provider may count the first attempt as the code's one use.
	if r.cfg.ClientSecret == "" {
		endpoint.AuthStyle = oauth2.AuthStyleInParams // public client: client_id in the body, no secret
	} else {
		endpoint.AuthStyle = oauth2.AuthStyleInHeader // client_secret_basic, the OIDC default
	}
	r.discovered = &discovery{
		provider: p,
		// The verifier checks signature (keys from the provider's jwks_uri,
		// refetched when an unknown key id appears, so key rotation works),
		// iss, aud and exp; the algorithms are those the provider publishes
		// (never "none").
		verifier: p.VerifierContext(r.ctx(context.Background()), &oidc.Config{ClientID: r.cfg.ClientID, Now: r.now}),
		oauth2: &oauth2.Config{
			ClientID:     r.cfg.ClientID,
			ClientSecret: r.cfg.ClientSecret,
			Endpoint:     endpoint,
			RedirectURL:  r.redirectURI,
			Scopes:       r.cfg.Scopes,
		},
		endSession:   meta.EndSession,
		issParameter: meta.IssParameter,
	}
	return r.discovered, nil
}
