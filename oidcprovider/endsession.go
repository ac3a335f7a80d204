package oidcprovider

import (
	"context"
	"errors"
	"net/url"
	"slices"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"doorman/db"
)

// RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0). The
// library's EndSession does not fit: it cannot see the browser's Doorman
// session (it is a handler of its own, with no cookie), it answers every
// doubtful request with an error page instead of asking the person, and
// a post_logout_redirect_uri that is not registered is an error instead of
// "signed out, no redirect". So the handlers serve the endpoint and ask
// ReadEndSession here what the request says; the library's verifier checks
// the ID token hint's issuer and signature. The redirect URI is matched
// exactly, as at sign-in (not with the library's rule, which lets a
// native app's loopback URI differ in its port).

// EndSessionRequest is an RP-initiated logout request as Doorman reads
// it. Only what was checked is set: an unknown app, a hint that did not
// verify and an unregistered redirect URI leave their fields empty.
type EndSessionRequest struct {
	// App is the app that asks: client_id's, or when there is none the
	// audience of a hint that verified; zero when no registered app is
	// named.
	App db.App
	// SessionID and Subject are the sid and sub of an id_token_hint that
	// Doorman signed (a published key, its issuer) for App (aud, azp);
	// its expiry is not held against it, as the spec allows: the hint
	// names a session, it grants nothing. "" when there was no such hint.
	SessionID, Subject string
	// PostLogoutRedirectURI is post_logout_redirect_uri when it is one of
	// App's registered post-logout redirect URIs, exactly; "" otherwise
	// (then nobody is sent anywhere outside Doorman).
	PostLogoutRedirectURI string
	// State is the app's state, given back on the redirect.
	State string
}

// Redirect is where the browser goes once the request is answered: the
// registered post-logout redirect URI with state, or "" (Doorman's own
// signed-out page).
func (e EndSessionRequest) Redirect() string {
	if e.PostLogoutRedirectURI == "" {
		return ""
	}
	u, err := url.Parse(e.PostLogoutRedirectURI)
	if err != nil {
		return ""
	}
	if e.State != "" {
		q := u.Query()
		q.Set("state", e.State)
		u.RawQuery = q.Encode()
	}
	return u.String()
}

// ReadEndSession reads an RP-initiated logout request's parameters
// (id_token_hint, client_id, post_logout_redirect_uri, state; logout_hint
// and ui_locales are ignored). It fails only when the store cannot be
// read: whatever does not check out is left out of the answer, and the
// caller asks the person instead of trusting it.
func (p *Provider) ReadEndSession(ctx context.Context, q url.Values) (EndSessionRequest, error) {
	e := EndSessionRequest{State: q.Get("state")}
	clientID := q.Get("client_id")
	var hint *oidc.IDTokenClaims
	if raw := q.Get("id_token_hint"); raw != "" {
		hint = p.verifyHint(ctx, raw, clientID)
		if hint != nil && clientID == "" {
			clientID = hint.AuthorizedParty
		}
	}
	if clientID == "" {
		return e, nil
	}
	c, err := p.storage.client(ctx, clientID)
	var oe *oidc.Error
	if errors.As(err, &oe) {
		return e, err
	}
	if err != nil {
		// No such app: nobody to name, nowhere to send the browser.
		return e, nil
	}
	e.App = c.app
	if hint != nil {
		e.SessionID, e.Subject = hint.SessionID, hint.Subject
	}
	if uri := q.Get("post_logout_redirect_uri"); uri != "" && slices.Contains(c.PostLogoutRedirectURIs(), uri) {
		e.PostLogoutRedirectURI = uri
	}
	return e, nil
}

// verifyHint returns the claims of an ID token hint that Doorman signed
// for the app (clientID, or the token's own azp when the request names
// none), or nil. The library's verifier checks the issuer and the
// signature against the published keys (a key retired long enough ago to
// be unpublished no longer verifies); its expiry is accepted (the
// library's IDTokenHintExpiredError). The audience it does not check:
// that is done here, so that one app's ID token cannot end a session in
// another app's name. A JWT access token or a logout token carries no
// sid of a live session, so neither can pass for a hint that ends one
// (the caller compares sid with the browser's session).
func (p *Provider) verifyHint(ctx context.Context, raw, clientID string) *oidc.IDTokenClaims {
	ctx = op.ContextWithIssuer(ctx, p.issuer)
	claims, err := op.VerifyIDTokenHint[*oidc.IDTokenClaims](ctx, raw, p.op.IDTokenHintVerifier(ctx))
	if err != nil && !errors.As(err, &op.IDTokenHintExpiredError{}) {
		return nil
	}
	if claims == nil || claims.SessionID == "" || claims.Subject == "" {
		return nil
	}
	azp := claims.AuthorizedParty
	if azp == "" && len(claims.Audience) == 1 {
		azp = claims.Audience[0]
	}
	if clientID == "" {
		clientID = azp
	}
	if clientID == "" || azp != clientID || !slices.Contains(claims.Audience, clientID) {
		return nil
	}
	claims.AuthorizedParty = clientID
	return claims
}
