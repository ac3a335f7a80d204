package oidcprovider

import (
	"slices"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"

	"doorman/db"
)

// authRequest is an op.AuthRequest over a stored db.AuthRequest, with the
// subject of the user who completed it.
type authRequest struct {
	db.AuthRequest
	subject string
}

func (r *authRequest) GetID() string          { return r.ID }
func (r *authRequest) GetACR() string         { return "" }
func (r *authRequest) GetAMR() []string       { return r.AMR }
func (r *authRequest) GetAudience() []string  { return []string{r.ClientID} }
func (r *authRequest) GetAuthTime() time.Time { return r.AuthTime }
func (r *authRequest) GetClientID() string    { return r.ClientID }
func (r *authRequest) GetNonce() string       { return r.Nonce }
func (r *authRequest) GetRedirectURI() string { return r.RedirectURI }
func (r *authRequest) GetScopes() []string    { return r.Scopes }
func (r *authRequest) GetState() string       { return r.State }
func (r *authRequest) GetSubject() string     { return r.subject }
func (r *authRequest) Done() bool             { return r.AuthRequest.Done() }
func (r *authRequest) GetResponseType() oidc.ResponseType {
	return oidc.ResponseTypeCode
}
func (r *authRequest) GetResponseMode() oidc.ResponseMode {
	return oidc.ResponseMode(r.ResponseMode)
}

func (r *authRequest) GetCodeChallenge() *oidc.CodeChallenge {
	if r.CodeChallenge == "" {
		return nil
	}
	return &oidc.CodeChallenge{Challenge: r.CodeChallenge, Method: oidc.CodeChallengeMethod(r.CodeChallengeMethod)}
}

// offline reports whether the request asked for offline_access.
func (r *authRequest) offline() bool { return slices.Contains(r.Scopes, oidc.ScopeOfflineAccess) }

// sessionRefresh is the request as the code exchange hands it to the
// library: the same request, whose scopes include offline_access for the
// library's sake only. The library issues a refresh token only when
// offline_access was asked for; Doorman's policy (what the library does
// not do) gives every sign-in one, bound to the Doorman session that
// approved it, and only an offline_access one outlives that session.
// What the app is told it got (the response's scope) is the request's own
// scopes (codeExchange).
type sessionRefresh struct{ *authRequest }

func (r sessionRefresh) GetScopes() []string {
	if r.offline() {
		return r.Scopes
	}
	return append(slices.Clip(r.Scopes), oidc.ScopeOfflineAccess)
}

// refreshRequest is an op.RefreshTokenRequest: a presented refresh
// token's grant, with its user's subject.
type refreshRequest struct {
	grant   db.Grant
	subject string
	scopes  []string // narrowed by the request (SetCurrentScopes)
}

func (r *refreshRequest) GetAMR() []string            { return r.grant.AMR }
func (r *refreshRequest) GetAudience() []string       { return []string{r.grant.ClientID} }
func (r *refreshRequest) GetAuthTime() time.Time      { return r.grant.AuthTime }
func (r *refreshRequest) GetClientID() string         { return r.grant.ClientID }
func (r *refreshRequest) GetScopes() []string         { return r.scopes }
func (r *refreshRequest) GetSubject() string          { return r.subject }
func (r *refreshRequest) SetCurrentScopes(s []string) { r.scopes = s }
