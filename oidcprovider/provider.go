// Package oidcprovider makes Doorman an OpenID Connect provider: apps sign
// their users in through it (the authorization code flow with PKCE) and
// get ID tokens, short-lived JWT access tokens and rotating refresh tokens,
// each of which dies with the Doorman session that approved it.
//
// It is github.com/zitadel/oidc/v3's op.Provider over an op.Storage
// adapter on the store (storage.go): the library parses and checks the
// protocol; the store, read on every call, decides what lives. Written by
// hand is only what the library does not do: the refresh-token policy
// (every sign-in gets one, bound to its session unless offline_access;
// codeExchange), the iss authorization response parameter (RFC 9207),
// userinfo's 401 for a token whose session ended, and a discovery
// document that says exactly what is served.
package oidcprovider

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"doorman/db"
	"doorman/paths"
	"doorman/secretbox"
)

// Store is what the provider uses of the store (db.Store has it once the
// OpenID Connect store is in): the apps, users and their subjects, and
// db.OIDCStore's keys, requests, codes, consents and grants.
type Store interface {
	App(ctx context.Context, clientID string) (db.App, error)
	UserByID(ctx context.Context, id int64) (db.User, error)
	Ping(ctx context.Context) error

	Subject(ctx context.Context, userID int64) (string, error)
	EnsureSigningKey(ctx context.Context, k db.SigningKey) (db.SigningKey, error)
	SigningKeys(ctx context.Context, now time.Time) ([]db.SigningKey, error)
	CreateAuthRequest(ctx context.Context, r db.AuthRequest) error
	AuthRequest(ctx context.Context, id string, now time.Time) (db.AuthRequest, error)
	CompleteAuthRequest(ctx context.Context, id string, userID int64, sessionID string, authTime time.Time, amr []string, epoch int64, now time.Time) error
	SaveAuthCode(ctx context.Context, id string, codeHash []byte, expiresAt time.Time) error
	RedeemAuthCode(ctx context.Context, codeHash []byte, now time.Time) (db.AuthRequest, error)
	DeleteAuthRequest(ctx context.Context, id string) error
	Consent(ctx context.Context, userID int64, clientID string) ([]string, error)
	GrantConsent(ctx context.Context, userID int64, clientID string, scopes []string, now time.Time) error
	IssueGrants(ctx context.Context, grants []db.Grant, spend string, epoch int64, now time.Time) error
	GrantWithUser(ctx context.Context, id string, now time.Time) (g db.Grant, u db.User, usable bool, err error)
	RevokeGrant(ctx context.Context, clientID, id string, now time.Time) error
}

// The provider's paths, under Prefix; Discovery is at the root, where
// relying parties look for it (OIDC Discovery §4).
const (
	Prefix     = "/oidc"
	Authorize  = Prefix + "/authorize"
	Token      = Prefix + "/token"
	Userinfo   = Prefix + "/userinfo"
	Keys       = Prefix + "/keys"
	Revoke     = Prefix + "/revoke"
	Introspect = Prefix + "/introspect"
	EndSession = Prefix + "/end_session"
	Discovery  = oidc.DiscoveryEndpoint
)

// Config is what New needs.
type Config struct {
	// Issuer is the public origin (-base-url), e.g. https://id.example.com:
	// every token's iss and every endpoint's URL start with it.
	Issuer string
	// AllowHTTP accepts an http:// issuer whose host is not loopback
	// (tests on a made-up name). An http issuer on loopback (go run .) is
	// always accepted; anywhere else tokens and codes would cross the
	// network in clear.
	AllowHTTP bool
	Store     Store
	// Box seals the signing keys' private halves; required.
	Box *secretbox.Box
	// Now is the clock; nil: time.Now.
	Now func() time.Time
	// LoginURL is the browser page that takes over an authorization
	// request (signs the person in, asks consent): the path with ?id=.
	LoginURL func(requestID string) string
}

// Provider is Doorman's OpenID Connect provider.
type Provider struct {
	op      *op.Provider
	storage *storage
	issuer  string
	now     func() time.Time
}

// New starts the provider: it checks that the signing key, if there is
// one yet, opens with the key ring (the first use makes one otherwise).
func New(ctx context.Context, c Config) (*Provider, error) {
	if c.Box == nil {
		return nil, ErrNoSecretBox
	}
	if c.Store == nil || c.LoginURL == nil {
		return nil, errors.New("oidcprovider: Config.Store and Config.LoginURL are required")
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	u, err := url.Parse(c.Issuer)
	if err != nil || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("oidcprovider: issuer %q must be an origin like https://id.example.com", c.Issuer)
	}
	insecure := false
	switch u.Scheme {
	case "https":
	case "http":
		if !loopback(u.Hostname()) && !c.AllowHTTP {
			return nil, fmt.Errorf("oidcprovider: issuer %q is plain http: codes and tokens would cross the network in clear (use https, or loopback for development)", c.Issuer)
		}
		insecure = true
	default:
		return nil, fmt.Errorf("oidcprovider: issuer %q must be https", c.Issuer)
	}
	issuer := u.Scheme + "://" + u.Host
	keys := &keyRing{store: c.Store, box: c.Box, now: c.Now}
	// A key sealed with another key ring fails here, at start, not at the
	// first sign-in. A database with no key yet gets one at its first use
	// (keyRing.signing).
	if existing, err := c.Store.SigningKeys(ctx, c.Now()); err != nil {
		return nil, fmt.Errorf("oidcprovider: signing keys: %w", err)
	} else if len(existing) > 0 {
		if _, err := keys.signing(ctx); err != nil {
			return nil, err
		}
	}
	s := &storage{store: c.Store, keys: keys, now: c.Now, loginURL: c.LoginURL}
	opts := []op.Option{
		op.WithCustomAuthEndpoint(op.NewEndpoint(paths.OIDCAuthorize)),
		op.WithCustomTokenEndpoint(op.NewEndpoint(paths.OIDCToken)),
		op.WithCustomUserinfoEndpoint(op.NewEndpoint(paths.OIDCUserinfo)),
		op.WithCustomKeysEndpoint(op.NewEndpoint(paths.OIDCKeys)),
		op.WithCustomRevocationEndpoint(op.NewEndpoint(paths.OIDCRevoke)),
		op.WithCustomIntrospectionEndpoint(op.NewEndpoint(paths.OIDCIntrospect)),
		op.WithCustomEndSessionEndpoint(op.NewEndpoint(paths.OIDCEndSession)),
		op.WithCrypto(codeCrypto{}),
	}
	if insecure {
		opts = append(opts, op.WithAllowInsecure())
	}
	p, err := op.NewProvider(&op.Config{
		CodeMethodS256:                    true,
		AuthMethodPost:                    true,
		GrantTypeRefreshToken:             true,
		SupportedScopes:                   []string{oidc.ScopeOpenID, oidc.ScopeEmail, oidc.ScopeOfflineAccess},
		SupportedClaims:                   supportedClaims,
		BackChannelLogoutSupported:        true,
		BackChannelLogoutSessionSupported: true,
	}, s, op.StaticIssuer(issuer), opts...)
	if err != nil {
		return nil, fmt.Errorf("oidcprovider: %w", err)
	}
	return &Provider{op: p, storage: s, issuer: issuer, now: c.Now}, nil
}

// supportedClaims are the claims Doorman's tokens carry.
var supportedClaims = []string{"iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "amr", "azp", "sid", "email", "email_verified"}

// loopback reports whether host is this machine.
func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Issuer is the provider's issuer.
func (p *Provider) Issuer() string { return p.issuer }

// withIssuer gives r the context the library's functions read the issuer
// from (its own router does this for its endpoints).
func (p *Provider) withIssuer(r *http.Request) *http.Request {
	return r.WithContext(op.ContextWithIssuer(r.Context(), p.issuer))
}

// Handler serves one of the provider's endpoints (the library's router,
// which dispatches by path).
func (p *Provider) Handler() http.Handler { return p.op }

// DiscoveryHandler serves /.well-known/openid-configuration.
func (p *Provider) DiscoveryHandler() http.Handler { return http.HandlerFunc(p.discovery) }

// AuthorizeHandler serves the authorization endpoint. The library checks
// the request and sends the browser on to LoginURL; an error it redirects
// to the app (only to a registered redirect URI) gets iss (RFC 9207).
func (p *Provider) AuthorizeHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.op.ServeHTTP(&issWriter{ResponseWriter: w, issuer: p.issuer}, r)
	})
}

// TokenHandler serves the token endpoint: the code grant by codeExchange,
// the refresh grant by the library, nothing else.
func (p *Provider) TokenHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch oidc.GrantType(r.PostFormValue("grant_type")) {
		case oidc.GrantTypeCode:
			p.codeExchange(w, p.withIssuer(r))
		case oidc.GrantTypeRefreshToken:
			p.op.ServeHTTP(w, r)
		case "":
			op.RequestError(w, r, oidc.ErrInvalidRequest().WithDescription("grant_type missing"), nil)
		default:
			op.RequestError(w, r, oidc.ErrUnsupportedGrantType().WithDescription("only authorization_code and refresh_token are served"), nil)
		}
	})
}

// UserinfoHandler serves the userinfo endpoint.
func (p *Provider) UserinfoHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { p.userinfo(w, p.withIssuer(r)) })
}
