package oidcprovider

import (
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"doorman/db"
)

// client is an op.Client over a registered app: the one registry
// (db.App) is the truth, read on every request (an app removed stops at
// once).
type client struct {
	app      db.App
	loginURL func(requestID string) string
}

// confidential reports whether the app authenticates with a secret.
func (c client) confidential() bool { return len(c.app.SecretHash) > 0 }

func (c client) GetID() string                    { return c.app.ClientID }
func (c client) RedirectURIs() []string           { return c.app.RedirectURIs }
func (c client) PostLogoutRedirectURIs() []string { return c.app.PostLogoutRedirectURIs }

// ApplicationType: a confidential app is a web app; a public one a
// user-agent app, never "native", whose loopback redirect URIs the
// library matches on any port: Doorman matches every redirect URI exactly
// (RFC 9700 §4.1.1).
func (c client) ApplicationType() op.ApplicationType {
	if c.confidential() {
		return op.ApplicationTypeWeb
	}
	return op.ApplicationTypeUserAgent
}

// AuthMethod: client_secret_basic for a confidential app (client_secret_post
// is accepted as well: Config.AuthMethodPost), none for a public one, which
// must prove itself with PKCE instead.
func (c client) AuthMethod() oidc.AuthMethod {
	if c.confidential() {
		return oidc.AuthMethodBasic
	}
	return oidc.AuthMethodNone
}

// ResponseTypes is the code flow only: no implicit or hybrid flow puts a
// token in a URL (RFC 9700 §2.1.2).
func (c client) ResponseTypes() []oidc.ResponseType {
	return []oidc.ResponseType{oidc.ResponseTypeCode}
}

// GrantTypes are the code and refresh grants; nothing else is served
// (the device flow is Doorman's own, at /oauth).
func (c client) GrantTypes() []oidc.GrantType {
	return []oidc.GrantType{oidc.GrantTypeCode, oidc.GrantTypeRefreshToken}
}

func (c client) LoginURL(id string) string { return c.loginURL(id) }

// AccessTokenType: access tokens are JWTs, so an app can check one
// without calling back; each carries its grant's id (jti), which
// introspection and userinfo look up, so a revoked one stops working for
// the apps that ask.
func (c client) AccessTokenType() op.AccessTokenType { return op.AccessTokenTypeJWT }

func (c client) IDTokenLifetime() time.Duration { return idTokenLifetime }

// DevMode lets a registered http:// redirect URI (an app on the operator's
// own machine) pass the library's scheme check. It loosens nothing else:
// the URI must still match a registered one exactly, and only the operator
// registers them.
func (c client) DevMode() bool { return true }

func (c client) RestrictAdditionalIdTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}

func (c client) RestrictAdditionalAccessTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}

// IsScopeAllowed: only the standard scopes Doorman knows (the library
// keeps those itself); any other is dropped from the request.
func (c client) IsScopeAllowed(string) bool { return false }

// IDTokenUserinfoClaimsAssertion puts the email claims in the ID token
// even when an access token is issued with it: relying parties such as
// oauth2-proxy read them from the ID token only.
func (c client) IDTokenUserinfoClaimsAssertion() bool { return true }

func (c client) ClockSkew() time.Duration { return 0 }
