package oidcprovider

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/op"

	"doorman/db"
	"doorman/secretbox"
)

// SealPurpose binds a sealed signing key to what it is: a sealed value
// copied into another column does not open as a signing key.
const SealPurpose = "oidc-signing-key"

// algorithm is the only signature algorithm Doorman signs with: RS256,
// which every relying party speaks (OIDC Core §15.1 makes it the one RPs
// must support).
const algorithm = jose.RS256

// rsaBits is the size of a new signing key: 2048 bits is what RS256
// deployments use and what NIST accepts through 2030; larger keys make
// every token slower to sign for no gain an attacker would notice.
const rsaBits = 2048

// MaxTokenLifetime is the longest a token signed with a key stays valid
// (ID and access tokens): a retired key must stay published at least this
// long, or apps would refuse tokens that have not expired (`doorman keys
// rotate` keeps it published longer).
const MaxTokenLifetime = max(idTokenLifetime, accessTokenLifetime)

// NewSigningKey makes a fresh RS256 key whose private half is sealed with
// box (it is never written in clear), ready for the store.
func NewSigningKey(box *secretbox.Box, now time.Time) (db.SigningKey, error) {
	if box == nil {
		return db.SigningKey{}, ErrNoSecretBox
	}
	priv, err := rsa.GenerateKey(rand.Reader, rsaBits)
	if err != nil {
		return db.SigningKey{}, fmt.Errorf("oidcprovider: generate signing key: %w", err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return db.SigningKey{}, fmt.Errorf("oidcprovider: encode signing key: %w", err)
	}
	kidBytes := make([]byte, 12)
	rand.Read(kidBytes)
	kid := base64.RawURLEncoding.EncodeToString(kidBytes)
	pub, err := json.Marshal(jose.JSONWebKey{Key: &priv.PublicKey, KeyID: kid, Algorithm: string(algorithm), Use: "sig"})
	if err != nil {
		return db.SigningKey{}, fmt.Errorf("oidcprovider: encode public key: %w", err)
	}
	return db.SigningKey{
		ID: kid, Algorithm: string(algorithm),
		PrivateSealed: []byte(box.Seal(pkcs8, SealPurpose)),
		PublicJWK:     pub,
		CreatedAt:     now,
	}, nil
}

// ErrNoSecretBox means the provider was asked to start without the key
// ring that seals its signing keys: Doorman never keeps a private key in
// clear in the database, so it does not start the provider at all.
var ErrNoSecretBox = errors.New("oidcprovider: no secret key ring (-secret-key-file / DOORMAN_SECRET_KEY): the OpenID Connect provider's signing keys are sealed with it, so the provider cannot start without one")

// signingKey is an op.SigningKey: the unsealed private half of the key
// that signs now.
type signingKey struct {
	id  string
	key *rsa.PrivateKey
}

func (k signingKey) SignatureAlgorithm() jose.SignatureAlgorithm { return algorithm }
func (k signingKey) Key() any                                    { return k.key }
func (k signingKey) ID() string                                  { return k.id }

// publicKey is an op.Key: one key of the published set (JWKS).
type publicKey struct{ jwk jose.JSONWebKey }

func (k publicKey) ID() string { return k.jwk.KeyID }
func (k publicKey) Algorithm() jose.SignatureAlgorithm {
	return jose.SignatureAlgorithm(k.jwk.Algorithm)
}
func (k publicKey) Use() string { return "sig" }
func (k publicKey) Key() any    { return k.jwk.Key }

// parsePublicJWK reads a stored public key.
func parsePublicJWK(raw []byte) (k jose.JSONWebKey, err error) {
	err = json.Unmarshal(raw, &k)
	return k, err
}

// keyRing reads the keys from the store on every use (another instance
// may have rotated them: the store is the truth) and keeps only the
// unsealed private keys by kid, so a token costs one read, not an RSA
// parse and an AES open.
type keyRing struct {
	store Store
	box   *secretbox.Box
	now   func() time.Time
	mu    sync.Mutex
	open  map[string]*rsa.PrivateKey
}

// signing returns the key that signs now.
func (r *keyRing) signing(ctx context.Context) (op.SigningKey, error) {
	keys, err := r.store.SigningKeys(ctx, r.now())
	if err != nil {
		return nil, fmt.Errorf("oidcprovider: signing keys: %w", err)
	}
	var k db.SigningKey
	if len(keys) == 0 || !keys[0].RetiredAt.IsZero() {
		// The first sign-in (or key set) of a new database makes the key:
		// a server that signs no app in never spends the RSA generation,
		// and instances starting at once agree on one (EnsureSigningKey).
		first, err := NewSigningKey(r.box, r.now())
		if err != nil {
			return nil, err
		}
		if k, err = r.store.EnsureSigningKey(ctx, first); err != nil {
			return nil, fmt.Errorf("oidcprovider: signing key: %w", err)
		}
	} else {
		k = keys[0]
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if priv, ok := r.open[k.ID]; ok {
		return signingKey{k.ID, priv}, nil
	}
	pkcs8, err := r.box.Open(string(k.PrivateSealed), SealPurpose)
	if err != nil {
		return nil, fmt.Errorf("oidcprovider: open signing key %s (is this the secret key it was sealed with?): %w", k.ID, err)
	}
	parsed, err := x509.ParsePKCS8PrivateKey(pkcs8)
	if err != nil {
		return nil, fmt.Errorf("oidcprovider: parse signing key %s: %w", k.ID, err)
	}
	priv, ok := parsed.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("oidcprovider: signing key %s is not RSA", k.ID)
	}
	if r.open == nil {
		r.open = map[string]*rsa.PrivateKey{}
	}
	r.open[k.ID] = priv
	return signingKey{k.ID, priv}, nil
}

// published returns the public keys of the JWKS: the signing key and the
// retired ones still published.
func (r *keyRing) published(ctx context.Context) ([]op.Key, error) {
	keys, err := r.store.SigningKeys(ctx, r.now())
	if err != nil {
		return nil, fmt.Errorf("oidcprovider: signing keys: %w", err)
	}
	if len(keys) == 0 { // none made yet: make it, then publish it
		if _, err := r.signing(ctx); err != nil {
			return nil, err
		}
		if keys, err = r.store.SigningKeys(ctx, r.now()); err != nil {
			return nil, fmt.Errorf("oidcprovider: signing keys: %w", err)
		}
	}
	out := make([]op.Key, 0, len(keys))
	for _, k := range keys {
		jwk, err := parsePublicJWK(k.PublicJWK)
		if err != nil {
			return nil, fmt.Errorf("oidcprovider: public key %s: %w", k.ID, err)
		}
		out = append(out, publicKey{jwk})
	}
	return out, nil
}
