package oidcprovider

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"doorman/db"
)

// Lifetimes. Short access and ID tokens bound what revocation cannot
// reach: a JWT access token is checked by an app that does not introspect
// only against its expiry, so it is 5 minutes (SECURITY.md says so).
const (
	accessTokenLifetime = 5 * time.Minute
	idTokenLifetime     = 5 * time.Minute
	// refreshLifetime is a refresh token's idle lifetime: each use gives
	// a new one for as long again. One bound to its session also dies with
	// that session (checked by the store on every use).
	refreshLifetime = 30 * 24 * time.Hour
	// authRequestLifetime is the time to sign in (and consent) once an
	// app sent the browser to Doorman.
	authRequestLifetime = 10 * time.Minute
	// codeLifetime: a code is redeemed by the app's server straight after
	// the redirect; a minute covers a slow network (RFC 6749 §4.1.2 says
	// at most 10 minutes).
	codeLifetime = time.Minute
)

// storage is the op.Storage the library calls: every answer comes from
// the store, read at the time of the call.
type storage struct {
	store    Store
	keys     *keyRing
	now      func() time.Time
	loginURL func(requestID string) string
}

var (
	_ op.Storage                   = (*storage)(nil)
	_ op.CanSetUserinfoFromRequest = (*storage)(nil)
)

// randomID is 128 random bits, base64url: ids of requests and grants.
func randomID() string {
	b := make([]byte, 16)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// hash is how a code or a refresh token's secret is kept: SHA-256, as
// session secrets are. They are 256 random bits, so a fast hash is enough:
// a leaked database gives no usable code or token.
func hash(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}

// client returns the app as an op.Client; an app without redirect URIs
// (a device-flow tool) is no OpenID Connect client.
func (s *storage) client(ctx context.Context, clientID string) (client, error) {
	app, err := s.store.App(ctx, clientID)
	if errors.Is(err, db.ErrNotFound) || (err == nil && !app.OIDC()) {
		return client{}, fmt.Errorf("oidcprovider: no app %q", clientID)
	}
	if err != nil {
		return client{}, oidc.ErrServerError().WithParent(err)
	}
	return client{app: app, loginURL: s.loginURL}, nil
}

// GetClientByClientID implements op.OPStorage.
func (s *storage) GetClientByClientID(ctx context.Context, clientID string) (op.Client, error) {
	return s.client(ctx, clientID)
}

// AuthorizeClientIDSecret checks a confidential app's secret against its
// stored hash in constant time. A public app has no secret to check: it
// is refused here, so it cannot pass as a confidential one.
func (s *storage) AuthorizeClientIDSecret(ctx context.Context, clientID, secret string) error {
	c, err := s.client(ctx, clientID)
	if err != nil {
		return err
	}
	if !c.confidential() || subtle.ConstantTimeCompare(hash(secret), c.app.SecretHash) != 1 {
		return errors.New("oidcprovider: wrong client secret")
	}
	return nil
}

// CreateAuthRequest stores an authorization request the library checked
// (client, exact redirect URI, response type code). Doorman's own rules
// come on top: PKCE with S256 for every public app (RFC 9700 §2.1.1),
// and never the plain method, whose challenge is the verifier itself.
func (s *storage) CreateAuthRequest(ctx context.Context, r *oidc.AuthRequest, _ string) (op.AuthRequest, error) {
	c, err := s.client(ctx, r.ClientID)
	if err != nil {
		return nil, err
	}
	switch {
	case r.CodeChallenge == "" && !c.confidential():
		return nil, oidc.ErrInvalidRequest().WithDescription("PKCE is required: send a code_challenge with code_challenge_method S256")
	case r.CodeChallenge != "" && r.CodeChallengeMethod != oidc.CodeChallengeMethodS256:
		return nil, oidc.ErrInvalidRequest().WithDescription("code_challenge_method must be S256")
	}
	switch r.ResponseMode {
	case "", oidc.ResponseModeQuery:
	default:
		// The response carries iss (RFC 9207) in the query; other modes
		// are not served.
		return nil, oidc.ErrInvalidRequest().WithDescription("response_mode must be query")
	}
	now := s.now()
	maxAge := int64(-1)
	if r.MaxAge != nil {
		maxAge = int64(*r.MaxAge)
	}
	row := db.AuthRequest{
		ID: randomID(), ClientID: r.ClientID, RedirectURI: r.RedirectURI, Scopes: r.Scopes,
		State: r.State, Nonce: r.Nonce, ResponseMode: string(r.ResponseMode),
		CodeChallenge: r.CodeChallenge, CodeChallengeMethod: string(r.CodeChallengeMethod),
		Prompt: r.Prompt, MaxAge: maxAge, LoginHint: r.LoginHint,
		CreatedAt: now, ExpiresAt: now.Add(authRequestLifetime),
	}
	if err := s.store.CreateAuthRequest(ctx, row); err != nil {
		return nil, fmt.Errorf("oidcprovider: create auth request: %w", err)
	}
	return &authRequest{AuthRequest: row}, nil
}

// withSubject completes r with its user's subject, once a session did.
func (s *storage) withSubject(ctx context.Context, r db.AuthRequest) (*authRequest, error) {
	out := &authRequest{AuthRequest: r}
	if r.Done() {
		sub, err := s.store.Subject(ctx, r.UserID)
		if err != nil {
			return nil, fmt.Errorf("oidcprovider: subject: %w", err)
		}
		out.subject = sub
	}
	return out, nil
}

// AuthRequestByID implements op.AuthStorage.
func (s *storage) AuthRequestByID(ctx context.Context, id string) (op.AuthRequest, error) {
	r, err := s.store.AuthRequest(ctx, id, s.now())
	if err != nil {
		return nil, fmt.Errorf("oidcprovider: auth request: %w", err)
	}
	return s.withSubject(ctx, r)
}

// AuthRequestByCode spends the code: it is single use from its first
// presentation. A code presented again makes the store revoke what its
// first use issued (RFC 6749 §4.1.2); either way the answer is
// invalid_grant (the library wraps every error here as that).
func (s *storage) AuthRequestByCode(ctx context.Context, code string) (op.AuthRequest, error) {
	r, err := s.store.RedeemAuthCode(ctx, hash(code), s.now())
	if err != nil {
		return nil, fmt.Errorf("oidcprovider: redeem code: %w", err)
	}
	if !r.Done() {
		return nil, errors.New("oidcprovider: code of an unfinished request")
	}
	return s.withSubject(ctx, r)
}

// SaveAuthCode stores the code's hash only: the code itself is in the
// redirect to the app and nowhere else.
func (s *storage) SaveAuthCode(ctx context.Context, id, code string) error {
	if err := s.store.SaveAuthCode(ctx, id, hash(code), s.now().Add(codeLifetime)); err != nil {
		return fmt.Errorf("oidcprovider: save code: %w", err)
	}
	return nil
}

// DeleteAuthRequest is called once a code's tokens are issued. The store
// keeps a redeemed request until it is pruned, so that the code presented
// again is still recognised as reused.
func (s *storage) DeleteAuthRequest(ctx context.Context, id string) error {
	if err := s.store.DeleteAuthRequest(ctx, id); err != nil {
		return fmt.Errorf("oidcprovider: delete auth request: %w", err)
	}
	return nil
}

// grantError says what a refused IssueGrants means to the app: every
// refusal is invalid_grant (the token or code is no good, and the app
// must send the person to sign in again); only a fault of ours is not.
func grantError(err error) error {
	switch {
	case errors.Is(err, db.ErrCodeUsed):
		return oidc.ErrInvalidGrant().WithDescription("this refresh token was used before: every token of this sign-in has been revoked").WithParent(err)
	case errors.Is(err, db.ErrNotFound), errors.Is(err, db.ErrSignInsReset):
		return oidc.ErrInvalidGrant().WithDescription("this sign-in has ended").WithParent(err)
	}
	return oidc.ErrServerError().WithParent(err)
}

// accessGrant is a new access token's row.
func accessGrant(family string, userID int64, clientID, sessionID string, scopes []string, authTime time.Time, amr []string, now time.Time) db.Grant {
	return db.Grant{
		ID: randomID(), Kind: db.GrantAccess, FamilyID: family, UserID: userID, ClientID: clientID,
		SessionID: sessionID, Scopes: scopes, AuthTime: authTime, AMR: amr,
		CreatedAt: now, ExpiresAt: now.Add(accessTokenLifetime),
	}
}

// CreateAccessToken records an access token (a code exchange without a
// refresh token: an app without the refresh grant).
func (s *storage) CreateAccessToken(ctx context.Context, req op.TokenRequest) (string, time.Time, error) {
	r, ok := unwrapAuthRequest(req)
	if !ok {
		return "", time.Time{}, oidc.ErrUnsupportedGrantType()
	}
	now := s.now()
	g := accessGrant(r.ID, r.UserID, r.ClientID, r.SessionID, r.Scopes, r.AuthTime, r.AMR, now)
	g.Offline = r.offline()
	if err := s.store.IssueGrants(ctx, []db.Grant{g}, "", r.Epoch, now); err != nil {
		return "", time.Time{}, grantError(err)
	}
	return g.ID, g.ExpiresAt, nil
}

// unwrapAuthRequest is the stored request behind a code exchange's
// token request.
func unwrapAuthRequest(req op.TokenRequest) (*authRequest, bool) {
	switch r := req.(type) {
	case *authRequest:
		return r, true
	case sessionRefresh:
		return r.authRequest, true
	}
	return nil, false
}

// CreateAccessAndRefreshTokens issues an access token and a refresh token
// in one transaction: for a code exchange (the family is the request's
// id), or for a refresh, which spends the presented token in the same
// transaction (rotation: a spent one presented again ends the family).
// The refresh token is "<id>.<secret>"; only the secret's hash is stored.
func (s *storage) CreateAccessAndRefreshTokens(ctx context.Context, req op.TokenRequest, current string) (string, string, time.Time, error) {
	now := s.now()
	secret := make([]byte, 32)
	rand.Read(secret)
	secretText := base64.RawURLEncoding.EncodeToString(secret)
	var access, refresh db.Grant
	spend, epoch := "", int64(-1)
	if r, ok := unwrapAuthRequest(req); ok {
		access = accessGrant(r.ID, r.UserID, r.ClientID, r.SessionID, r.Scopes, r.AuthTime, r.AMR, now)
		refresh = access
		refresh.Scopes = r.Scopes
		epoch = r.Epoch
	} else if r, ok := req.(*refreshRequest); ok {
		old := r.grant
		access = accessGrant(old.FamilyID, old.UserID, old.ClientID, old.SessionID, r.scopes, old.AuthTime, old.AMR, now)
		// The new refresh token keeps the grant's scopes: a refresh asking
		// for fewer narrows its access token only (RFC 6749 §6).
		refresh = access
		refresh.Scopes = old.Scopes
		refresh.Offline = old.Offline
		spend = old.ID
	} else {
		return "", "", time.Time{}, oidc.ErrUnsupportedGrantType()
	}
	if r, ok := unwrapAuthRequest(req); ok {
		refresh.Offline = r.offline()
	}
	access.Offline = refresh.Offline
	refresh.ID, refresh.Kind, refresh.SecretHash = randomID(), db.GrantRefresh, hash(secretText)
	refresh.ExpiresAt = now.Add(refreshLifetime)
	if err := s.store.IssueGrants(ctx, []db.Grant{access, refresh}, spend, epoch, now); err != nil {
		return "", "", time.Time{}, grantError(err)
	}
	return access.ID, refresh.ID + "." + secretText, access.ExpiresAt, nil
}

// refreshGrant finds the grant a refresh token names and checks its secret
// in constant time. Nothing about the grant (spent, revoked) is decided
// here: the caller does.
func (s *storage) refreshGrant(ctx context.Context, token string) (db.Grant, db.User, bool, error) {
	id, secret, ok := strings.Cut(token, ".")
	if !ok || id == "" || secret == "" {
		return db.Grant{}, db.User{}, false, op.ErrInvalidRefreshToken
	}
	g, u, usable, err := s.store.GrantWithUser(ctx, id, s.now())
	if errors.Is(err, db.ErrNotFound) {
		return db.Grant{}, db.User{}, false, op.ErrInvalidRefreshToken
	}
	if err != nil {
		return db.Grant{}, db.User{}, false, fmt.Errorf("oidcprovider: refresh token: %w", err)
	}
	if g.Kind != db.GrantRefresh || subtle.ConstantTimeCompare(hash(secret), g.SecretHash) != 1 {
		return db.Grant{}, db.User{}, false, op.ErrInvalidRefreshToken
	}
	return g, u, usable, nil
}

// TokenRequestByRefreshToken reads a presented refresh token. A spent one
// is passed on on purpose: the exchange's IssueGrants sees it spent and
// ends its whole family (someone holds a copy). A revoked, expired one,
// or one whose session or account ended, is refused here.
func (s *storage) TokenRequestByRefreshToken(ctx context.Context, token string) (op.RefreshTokenRequest, error) {
	g, _, usable, err := s.refreshGrant(ctx, token)
	if err != nil {
		return nil, err
	}
	spent := !g.UsedAt.IsZero() && g.RevokedAt.IsZero()
	if !usable && !spent {
		return nil, errors.New("oidcprovider: refresh token no longer usable")
	}
	sub, err := s.store.Subject(ctx, g.UserID)
	if err != nil {
		return nil, fmt.Errorf("oidcprovider: subject: %w", err)
	}
	return &refreshRequest{grant: g, subject: sub, scopes: g.Scopes}, nil
}

// GetRefreshTokenInfo names the grant of one of the app's refresh tokens
// (for revocation).
func (s *storage) GetRefreshTokenInfo(ctx context.Context, clientID, token string) (string, string, error) {
	g, _, _, err := s.refreshGrant(ctx, token)
	if err != nil {
		return "", "", err
	}
	if g.ClientID != clientID {
		return "", "", op.ErrInvalidRefreshToken
	}
	sub, err := s.store.Subject(ctx, g.UserID)
	if err != nil {
		return "", "", fmt.Errorf("oidcprovider: subject: %w", err)
	}
	return sub, g.ID, nil
}

// RevokeToken ends a grant of the app's (RFC 7009): a refresh token ends
// its family. A token that is unknown, or another app's, is answered as
// revoked: RFC 7009 §2.2 says so, and it tells a prober nothing.
func (s *storage) RevokeToken(ctx context.Context, tokenOrID, _, clientID string) *oidc.Error {
	err := s.store.RevokeGrant(ctx, clientID, tokenOrID, s.now())
	if err != nil && !errors.Is(err, db.ErrNotFound) {
		return oidc.ErrServerError().WithParent(err)
	}
	return nil
}

// TerminateSession is the library's RP-initiated logout, which Doorman
// does not mount: the handlers serve the end-session endpoint themselves
// (they see the browser's session and can ask the person;
// Provider.ReadEndSession). Should the library ever call it, it ends
// nothing and says so.
func (s *storage) TerminateSession(context.Context, string, string) error {
	return oidc.ErrRequestNotSupported().WithDescription("the end-session endpoint is served by Doorman's pages")
}

// SigningKey implements op.AuthStorage.
func (s *storage) SigningKey(ctx context.Context) (op.SigningKey, error) { return s.keys.signing(ctx) }

// SignatureAlgorithms implements op.AuthStorage.
func (s *storage) SignatureAlgorithms(context.Context) ([]jose.SignatureAlgorithm, error) {
	return []jose.SignatureAlgorithm{algorithm}, nil
}

// KeySet implements op.AuthStorage: what JWKS publishes and what the
// provider verifies its own tokens with.
func (s *storage) KeySet(ctx context.Context) ([]op.Key, error) { return s.keys.published(ctx) }

// SetUserinfoFromScopes is deprecated in the library: SetUserinfoFromRequest
// does the work.
func (s *storage) SetUserinfoFromScopes(context.Context, *oidc.UserInfo, string, string, []string) error {
	return nil
}

// setUserinfo fills the claims the scopes allow about user.
func setUserinfo(info *oidc.UserInfo, subject string, u db.User, scopes []string) {
	info.Subject = subject
	if slices.Contains(scopes, oidc.ScopeEmail) {
		info.Email = u.Email
		info.EmailVerified = oidc.Bool(u.EmailVerified())
		if !u.EmailVerified() {
			// The library's field drops a false value (omitempty); an app
			// must be told the address is unverified, not left to guess.
			info.AppendClaims("email_verified", false)
		}
	}
}

// SetUserinfoFromRequest fills the ID token's claims: the email claims
// its scopes allow, and sid, the Doorman session that signed in, which
// back-channel logout tokens name.
func (s *storage) SetUserinfoFromRequest(ctx context.Context, info *oidc.UserInfo, req op.IDTokenRequest, scopes []string) error {
	var userID int64
	var sid string
	switch r := req.(type) {
	case *authRequest:
		userID, sid = r.UserID, r.SessionID
	case sessionRefresh:
		userID, sid = r.UserID, r.SessionID
	case *refreshRequest:
		userID, sid = r.grant.UserID, r.grant.SessionID
	default:
		return oidc.ErrServerError().WithDescription("unexpected token request")
	}
	u, err := s.store.UserByID(ctx, userID)
	if err != nil {
		return oidc.ErrServerError().WithParent(err)
	}
	setUserinfo(info, req.GetSubject(), u, scopes)
	if sid != "" {
		info.AppendClaims("sid", sid)
	}
	return nil
}

// errUnusable means an access token's grant may not act now.
var errUnusable = errors.New("oidcprovider: token no longer usable")

// usableGrant is the grant an access token names, with its user, if it
// may act now: alive, its user not disabled, its session alive (unless
// offline). The library checked the token's signature and expiry.
func (s *storage) usableGrant(ctx context.Context, tokenID, subject string) (db.Grant, db.User, error) {
	g, u, usable, err := s.store.GrantWithUser(ctx, tokenID, s.now())
	if err != nil {
		return db.Grant{}, db.User{}, err
	}
	if !usable || g.Kind != db.GrantAccess {
		return db.Grant{}, db.User{}, errUnusable
	}
	sub, err := s.store.Subject(ctx, g.UserID)
	if err != nil {
		return db.Grant{}, db.User{}, err
	}
	if sub != subject {
		return db.Grant{}, db.User{}, errUnusable
	}
	return g, u, nil
}

// SetUserinfoFromToken implements op.OPStorage (the userinfo endpoint is
// Doorman's own, userinfo, which answers 401 rather than the library's
// 403; this serves any other caller alike).
func (s *storage) SetUserinfoFromToken(ctx context.Context, info *oidc.UserInfo, tokenID, subject, _ string) error {
	g, u, err := s.usableGrant(ctx, tokenID, subject)
	if err != nil {
		return err
	}
	setUserinfo(info, subject, u, g.Scopes)
	return nil
}

// SetIntrospectionFromToken answers for a live access token, to the app
// it was issued to only: one app cannot learn about another's tokens.
// Anything else is "active": false.
func (s *storage) SetIntrospectionFromToken(ctx context.Context, resp *oidc.IntrospectionResponse, tokenID, subject, clientID string) error {
	g, u, err := s.usableGrant(ctx, tokenID, subject)
	if err != nil {
		return err
	}
	if g.ClientID != clientID {
		return errors.New("oidcprovider: another app's token")
	}
	info := new(oidc.UserInfo)
	setUserinfo(info, subject, u, g.Scopes)
	resp.SetUserInfo(info)
	resp.Scope = g.Scopes
	resp.ClientID = g.ClientID
	resp.TokenType = oidc.BearerToken
	resp.Expiration = oidc.FromTime(g.ExpiresAt)
	resp.IssuedAt = oidc.FromTime(g.CreatedAt)
	resp.AuthTime = oidc.FromTime(g.AuthTime)
	resp.AuthenticationMethodsReferences = g.AMR
	resp.Audience = []string{g.ClientID}
	resp.JWTID = g.ID
	return nil
}

// GetPrivateClaimsFromScopes implements op.OPStorage: no private claims.
func (s *storage) GetPrivateClaimsFromScopes(context.Context, string, string, []string) (map[string]any, error) {
	return nil, nil
}

// GetKeyByIDAndClientID is for the JWT profile grant, which Doorman does
// not serve.
func (s *storage) GetKeyByIDAndClientID(context.Context, string, string) (*jose.JSONWebKey, error) {
	return nil, errors.New("oidcprovider: no client keys")
}

// ValidateJWTProfileScopes is for the JWT profile grant, not served.
func (s *storage) ValidateJWTProfileScopes(context.Context, string, []string) ([]string, error) {
	return nil, errors.New("oidcprovider: JWT profile grant not served")
}

// Health implements op.Storage.
func (s *storage) Health(ctx context.Context) error { return s.store.Ping(ctx) }
