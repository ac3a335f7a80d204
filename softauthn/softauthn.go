// Package softauthn is a software WebAuthn authenticator and client for tests: it reads the options
// a server sends (the JSON of go-webauthn's protocol.CredentialCreation or
// protocol.CredentialAssertion, with or without the outer "publicKey") and returns the JSON body a
// browser would post back (PublicKeyCredential.toJSON()), which go-webauthn's
// protocol.ParseCredentialCreationResponseBody and ParseCredentialRequestResponseBody accept.
//
// It makes ES256 keys, answers with attestation "none", and keeps every credential resident
// (discoverable): an assertion carries the user handle. Its exported fields are the knobs a test
// turns to make a ceremony go wrong: the origin the client reports, the RP ID the authenticator
// hashes, the user-verified and backup flags, the AAGUID, and each credential's signature counter.
//
// It is test support: the keys live in memory and nothing guards them.
package softauthn

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/protocol/webauthncbor"
	"github.com/go-webauthn/webauthn/protocol/webauthncose"
)

// Authenticator is a platform authenticator with its browser. The zero value is not ready: use New.
// It is not safe for concurrent use.
type Authenticator struct {
	// Origin is what the client reports in clientDataJSON. Empty: "https://" + the RP ID of the
	// options (rp.id on creation, rpId on assertion).
	Origin string

	// RPID, when set, is the RP ID the authenticator hashes into its authenticator data instead of the
	// one in the options (to forge a wrong one). Credentials are still stored and found under the
	// options' RP ID.
	RPID string

	// UserVerified sets the UV flag. New sets it; clear it to answer without user verification.
	UserVerified bool

	// BackupEligible and BackupState set the BE and BS flags (a synced passkey has both).
	BackupEligible bool
	BackupState    bool

	// AAGUID goes into the attested credential data on creation. New leaves it all zero.
	AAGUID [16]byte

	// UseCredential, when set, picks which credential answers an assertion (by ID). Empty: the most
	// recently created credential that the options allow.
	UseCredential []byte

	creds []*Credential
}

// Credential is one resident credential. Tests may change SignCount between ceremonies.
type Credential struct {
	ID         []byte
	RPID       string
	UserHandle []byte
	UserName   string
	Key        *ecdsa.PrivateKey
	// SignCount is the counter of the last signature; the next assertion sends SignCount+1 and
	// stores it. Set it lower than the server last saw to simulate a cloned authenticator.
	SignCount uint32
}

// New returns an authenticator with no credentials that verifies the user (UV flag set), is not
// backup eligible, and has the all-zero AAGUID.
func New() *Authenticator {
	return &Authenticator{UserVerified: true}
}

// Credentials returns the authenticator's credentials, oldest first. The pointers are live: changing
// a credential's SignCount changes what the next assertion sends.
func (a *Authenticator) Credentials() []*Credential {
	return a.creds
}

// Clone returns a second authenticator holding copies of every credential (same IDs, same private
// keys, same counters) and the same knobs: what a copied private key looks like to a server.
func (a *Authenticator) Clone() *Authenticator {
	b := *a
	b.UseCredential = bytes.Clone(a.UseCredential)
	b.creds = nil
	for _, c := range a.creds {
		b.AddCredential(*c)
	}
	return &b
}

// AddCredential stores a copy of c (for instance one taken from another authenticator).
func (a *Authenticator) AddCredential(c Credential) {
	c.ID = bytes.Clone(c.ID)
	c.UserHandle = bytes.Clone(c.UserHandle)
	a.creds = append(a.creds, &c)
}

// flag bits of the authenticator data (WebAuthn §6.1).
const (
	flagUP = 0x01
	flagUV = 0x04
	flagBE = 0x08
	flagBS = 0x10
	flagAT = 0x40
)

// creationOptions and requestOptions accept both the CredentialCreation / CredentialAssertion
// wrapper ({"publicKey": {...}}) and the bare options.
type creationOptions struct {
	PublicKey *protocol.PublicKeyCredentialCreationOptions `json:"publicKey"`
}

type requestOptions struct {
	PublicKey *protocol.PublicKeyCredentialRequestOptions `json:"publicKey"`
}

// Create runs navigator.credentials.create with the options JSON and returns the registration
// response JSON. It fails like a browser would when the options do not offer ES256 or exclude a
// credential this authenticator holds.
func (a *Authenticator) Create(optionsJSON []byte) ([]byte, error) {
	var wrapped creationOptions
	if err := json.Unmarshal(optionsJSON, &wrapped); err != nil {
		return nil, fmt.Errorf("softauthn: creation options: %w", err)
	}
	opts := wrapped.PublicKey
	if opts == nil {
		opts = &protocol.PublicKeyCredentialCreationOptions{}
		if err := json.Unmarshal(optionsJSON, opts); err != nil {
			return nil, fmt.Errorf("softauthn: creation options: %w", err)
		}
	}
	rpID := opts.RelyingParty.ID
	if rpID == "" {
		return nil, errors.New("softauthn: creation options carry no rp.id")
	}
	if len(opts.Challenge) == 0 {
		return nil, errors.New("softauthn: creation options carry no challenge")
	}
	es256 := len(opts.Parameters) == 0
	for _, p := range opts.Parameters {
		if p.Type == protocol.PublicKeyCredentialType && p.Algorithm == webauthncose.AlgES256 {
			es256 = true
		}
	}
	if !es256 {
		return nil, errors.New("softauthn: NotSupportedError: the options do not offer ES256")
	}
	for _, ex := range opts.CredentialExcludeList {
		for _, c := range a.creds {
			if c.RPID == rpID && bytes.Equal(c.ID, ex.CredentialID) {
				return nil, errors.New("softauthn: InvalidStateError: an excluded credential is on this authenticator")
			}
		}
	}
	userHandle, err := userID(opts.User.ID)
	if err != nil {
		return nil, err
	}

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("softauthn: generate key: %w", err)
	}
	id := make([]byte, 32)
	if _, err := rand.Read(id); err != nil {
		return nil, fmt.Errorf("softauthn: credential id: %w", err)
	}
	// Like platform authenticators that keep no counter, a new credential starts at zero.
	cred := &Credential{ID: id, RPID: rpID, UserHandle: userHandle, UserName: opts.User.Name, Key: key}

	cose, err := coseKey(&key.PublicKey)
	if err != nil {
		return nil, err
	}
	authData := a.authData(rpID, flagAT, cred.SignCount)
	authData = append(authData, a.AAGUID[:]...)
	authData = binary.BigEndian.AppendUint16(authData, uint16(len(id)))
	authData = append(authData, id...)
	authData = append(authData, cose...)

	attObj, err := webauthncbor.Marshal(struct {
		Fmt      string         `cbor:"fmt"`
		AttStmt  map[string]any `cbor:"attStmt"`
		AuthData []byte         `cbor:"authData"`
	}{"none", map[string]any{}, authData})
	if err != nil {
		return nil, fmt.Errorf("softauthn: attestation object: %w", err)
	}
	spki, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("softauthn: public key: %w", err)
	}
	clientData, err := a.clientData(protocol.CreateCeremony, opts.Challenge, rpID)
	if err != nil {
		return nil, err
	}
	ext := map[string]any{}
	if opts.Extensions.CredProps {
		ext["credProps"] = map[string]bool{"rk": true}
	}
	a.creds = append(a.creds, cred)
	return json.Marshal(map[string]any{
		"id":                      b64(id),
		"rawId":                   b64(id),
		"type":                    "public-key",
		"authenticatorAttachment": "platform",
		"clientExtensionResults":  ext,
		"response": map[string]any{
			"clientDataJSON":     b64(clientData),
			"attestationObject":  b64(attObj),
			"authenticatorData":  b64(authData),
			"publicKey":          b64(spki),
			"publicKeyAlgorithm": int64(webauthncose.AlgES256),
			"transports":         []string{"internal", "hybrid"},
		},
	})
}

// Get runs navigator.credentials.get with the options JSON and returns the assertion response JSON.
// It adds one to the chosen credential's SignCount and signs with that value.
func (a *Authenticator) Get(optionsJSON []byte) ([]byte, error) {
	var wrapped requestOptions
	if err := json.Unmarshal(optionsJSON, &wrapped); err != nil {
		return nil, fmt.Errorf("softauthn: request options: %w", err)
	}
	opts := wrapped.PublicKey
	if opts == nil {
		opts = &protocol.PublicKeyCredentialRequestOptions{}
		if err := json.Unmarshal(optionsJSON, opts); err != nil {
			return nil, fmt.Errorf("softauthn: request options: %w", err)
		}
	}
	rpID := opts.RelyingPartyID
	if rpID == "" {
		return nil, errors.New("softauthn: request options carry no rpId")
	}
	if len(opts.Challenge) == 0 {
		return nil, errors.New("softauthn: request options carry no challenge")
	}
	cred := a.pick(rpID, opts.AllowedCredentials)
	if cred == nil {
		return nil, errors.New("softauthn: NotAllowedError: no credential for this RP on this authenticator")
	}
	cred.SignCount++
	authData := a.authData(rpID, 0, cred.SignCount)
	clientData, err := a.clientData(protocol.AssertCeremony, opts.Challenge, rpID)
	if err != nil {
		return nil, err
	}
	cdHash := sha256.Sum256(clientData)
	digest := sha256.Sum256(append(bytes.Clone(authData), cdHash[:]...))
	sig, err := ecdsa.SignASN1(rand.Reader, cred.Key, digest[:])
	if err != nil {
		return nil, fmt.Errorf("softauthn: sign: %w", err)
	}
	return json.Marshal(map[string]any{
		"id":                      b64(cred.ID),
		"rawId":                   b64(cred.ID),
		"type":                    "public-key",
		"authenticatorAttachment": "platform",
		"clientExtensionResults":  map[string]any{},
		"response": map[string]any{
			"clientDataJSON":    b64(clientData),
			"authenticatorData": b64(authData),
			"signature":         b64(sig),
			"userHandle":        b64(cred.UserHandle),
		},
	})
}

// pick chooses the credential that answers an assertion for rpID.
func (a *Authenticator) pick(rpID string, allow []protocol.CredentialDescriptor) *Credential {
	for i := len(a.creds) - 1; i >= 0; i-- {
		c := a.creds[i]
		if c.RPID != rpID {
			continue
		}
		if len(a.UseCredential) > 0 && !bytes.Equal(c.ID, a.UseCredential) {
			continue
		}
		if len(allow) == 0 {
			return c
		}
		for _, d := range allow {
			if bytes.Equal(d.CredentialID, c.ID) {
				return c
			}
		}
	}
	return nil
}

// authData is the fixed part of the authenticator data: RP ID hash, flags, counter.
func (a *Authenticator) authData(rpID string, extra byte, count uint32) []byte {
	if a.RPID != "" {
		rpID = a.RPID
	}
	h := sha256.Sum256([]byte(rpID))
	flags := flagUP | extra
	if a.UserVerified {
		flags |= flagUV
	}
	if a.BackupEligible {
		flags |= flagBE
	}
	if a.BackupState {
		flags |= flagBS
	}
	out := append(h[:], flags)
	return binary.BigEndian.AppendUint32(out, count)
}

func (a *Authenticator) clientData(typ protocol.CeremonyType, challenge []byte, rpID string) ([]byte, error) {
	origin := a.Origin
	if origin == "" {
		origin = "https://" + rpID
	}
	b, err := json.Marshal(protocol.CollectedClientData{
		Type:      typ,
		Challenge: b64(challenge),
		Origin:    origin,
	})
	if err != nil {
		return nil, fmt.Errorf("softauthn: client data: %w", err)
	}
	return b, nil
}

// userID decodes user.id, which go-webauthn sends base64url-encoded.
func userID(v any) ([]byte, error) {
	s, ok := v.(string)
	if !ok || s == "" {
		return nil, errors.New("softauthn: creation options carry no user.id")
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("softauthn: user.id is not base64url: %w", err)
	}
	return b, nil
}

func coseKey(pub *ecdsa.PublicKey) ([]byte, error) {
	ecdhKey, err := pub.ECDH()
	if err != nil {
		return nil, fmt.Errorf("softauthn: public key: %w", err)
	}
	raw := ecdhKey.Bytes() // 0x04 || X || Y, 32 bytes each
	b, err := webauthncbor.Marshal(webauthncose.EC2PublicKeyData{
		PublicKeyData: webauthncose.PublicKeyData{
			KeyType:   int64(webauthncose.EllipticKey),
			Algorithm: int64(webauthncose.AlgES256),
		},
		Curve:  int64(webauthncose.P256),
		XCoord: raw[1:33],
		YCoord: raw[33:65],
	})
	if err != nil {
		return nil, fmt.Errorf("softauthn: cose key: %w", err)
	}
	return b, nil
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
