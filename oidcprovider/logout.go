package oidcprovider

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"doorman/db"
)

// LogoutTokenLifetime is how long a logout token is accepted (its exp):
// long enough for a busy app to check it on arrival, short enough that a
// copy (a proxy's log) cannot be replayed much later. A new token, with a
// new jti, is signed for every attempt, so a retry hours later never sends
// an expired one.
const LogoutTokenLifetime = 2 * time.Minute

// BackchannelLogoutEvent is the event a logout token carries
// (Back-Channel Logout 1.0 §2.4).
const BackchannelLogoutEvent = "http://schemas.openid.net/event/backchannel-logout"

// logoutClaims are a logout token's claims. There is no nonce, on
// purpose: §2.4 forbids one, so that an ID token (which has one) can never
// pass for a logout token and the other way round.
type logoutClaims struct {
	Issuer   string                    `json:"iss"`
	Subject  string                    `json:"sub,omitempty"`
	Audience string                    `json:"aud"`
	IssuedAt int64                     `json:"iat"`
	Expiry   int64                     `json:"exp"`
	JTI      string                    `json:"jti"`
	Events   map[string]map[string]any `json:"events"`
	SID      string                    `json:"sid,omitempty"`
}

// LogoutToken signs a Back-Channel Logout 1.0 logout token for d: iss the
// issuer, aud the app's client_id, sub the person's subject, sid when d
// names one Doorman session (without one it means "every session of this
// person"), a random jti, exp LogoutTokenLifetime after iat, and the
// header typ "logout+jwt" (the explicit type the spec recommends, so that
// no other JWT of Doorman's can be mistaken for one). It is signed with the
// key that signs now, the one the JWKS publishes.
func (p *Provider) LogoutToken(ctx context.Context, d db.LogoutDelivery) (string, error) {
	if d.ClientID == "" || (d.Subject == "" && d.SessionID == "") {
		return "", errors.New("oidcprovider: a logout token needs an app and a subject or a session")
	}
	k, err := p.storage.keys.signing(ctx)
	if err != nil {
		return "", err
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: k.SignatureAlgorithm(), Key: jose.JSONWebKey{Key: k.Key(), KeyID: k.ID()}},
		(&jose.SignerOptions{}).WithType("logout+jwt"))
	if err != nil {
		return "", fmt.Errorf("oidcprovider: logout token signer: %w", err)
	}
	jti := make([]byte, 16)
	rand.Read(jti)
	now := p.now()
	payload, err := json.Marshal(logoutClaims{
		Issuer: p.issuer, Subject: d.Subject, Audience: d.ClientID,
		IssuedAt: now.Unix(), Expiry: now.Add(LogoutTokenLifetime).Unix(),
		JTI:    base64.RawURLEncoding.EncodeToString(jti),
		Events: map[string]map[string]any{BackchannelLogoutEvent: {}},
		SID:    d.SessionID,
	})
	if err != nil {
		return "", fmt.Errorf("oidcprovider: logout token claims: %w", err)
	}
	sig, err := signer.Sign(payload)
	if err != nil {
		return "", fmt.Errorf("oidcprovider: sign logout token: %w", err)
	}
	return sig.CompactSerialize()
}
