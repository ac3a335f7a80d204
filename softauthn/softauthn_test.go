package softauthn

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"
)

// The tests run go-webauthn's own ceremonies against the software authenticator, through
// http.Requests as a handler would receive them.

const rpID = "doorman.test"

type user struct {
	id    []byte
	name  string
	creds []webauthn.Credential
}

func (u *user) WebAuthnID() []byte                         { return u.id }
func (u *user) WebAuthnName() string                       { return u.name }
func (u *user) WebAuthnDisplayName() string                { return u.name }
func (u *user) WebAuthnCredentials() []webauthn.Credential { return u.creds }

// save replaces the stored credential with the one a login returned (its counter, flags, warning).
func (u *user) save(c *webauthn.Credential) {
	for i := range u.creds {
		if bytes.Equal(u.creds[i].ID, c.ID) {
			u.creds[i] = *c
			return
		}
	}
	u.creds = append(u.creds, *c)
}

func newRP(t *testing.T) *webauthn.WebAuthn {
	t.Helper()
	wa, err := webauthn.New(&webauthn.Config{
		RPID:          rpID,
		RPDisplayName: "Doorman",
		RPOrigins:     []string{"https://" + rpID},
	})
	if err != nil {
		t.Fatal(err)
	}
	return wa
}

func post(body []byte) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "https://"+rpID+"/passkeys", bytes.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	return r
}

// register runs a whole registration; the authenticator must answer, the server may refuse.
func register(t *testing.T, wa *webauthn.WebAuthn, u *user, a *Authenticator, opts ...webauthn.RegistrationOption) (*webauthn.Credential, error) {
	t.Helper()
	creation, session, err := wa.BeginRegistration(u, opts...)
	if err != nil {
		t.Fatal(err)
	}
	optionsJSON, err := json.Marshal(creation)
	if err != nil {
		t.Fatal(err)
	}
	body, err := a.Create(optionsJSON)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	return wa.FinishRegistration(u, *session, post(body))
}

// login runs a whole discoverable (passkey) sign-in among users.
func login(t *testing.T, wa *webauthn.WebAuthn, users []*user, a *Authenticator, opts ...webauthn.LoginOption) (*user, *webauthn.Credential, error) {
	t.Helper()
	assertion, session, err := wa.BeginDiscoverableLogin(opts...)
	if err != nil {
		t.Fatal(err)
	}
	optionsJSON, err := json.Marshal(assertion)
	if err != nil {
		t.Fatal(err)
	}
	body, err := a.Get(optionsJSON)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	found, cred, err := wa.FinishPasskeyLogin(func(rawID, userHandle []byte) (webauthn.User, error) {
		for _, u := range users {
			if bytes.Equal(u.id, userHandle) {
				return u, nil
			}
		}
		return nil, errors.New("no such user")
	}, *session, post(body))
	if err != nil {
		return nil, nil, err
	}
	return found.(*user), cred, nil
}

// refusedFor fails unless err is go-webauthn refusing for the reason named (a part of its
// details or developer info), so a refusal for some other fault does not pass for this one.
func refusedFor(t *testing.T, err error, what, reason string) {
	t.Helper()
	var e *protocol.Error
	if !errors.As(err, &e) {
		t.Fatalf("%s: got %v; want go-webauthn to refuse (%s)", what, err, reason)
	}
	if !strings.Contains(e.Details+" "+e.DevInfo, reason) {
		t.Fatalf("%s: refused for %q / %q; want %q", what, e.Details, e.DevInfo, reason)
	}
}

func mustRegister(t *testing.T, wa *webauthn.WebAuthn, u *user, a *Authenticator, opts ...webauthn.RegistrationOption) *webauthn.Credential {
	t.Helper()
	c, err := register(t, wa, u, a, opts...)
	if err != nil {
		t.Fatalf("FinishRegistration: %v", err)
	}
	u.save(c)
	return c
}

func TestRegisterThenSignInWithPasskey(t *testing.T) {
	wa := newRP(t)
	alice := &user{id: []byte("alice-handle-0001"), name: "alice"}
	bob := &user{id: []byte("bob-handle-000002"), name: "bob"}
	a := New()
	a.AAGUID = [16]byte{0xea, 0x9b, 0x8d, 0x66, 0x4d, 0x01, 0x1d, 0x21, 0x3c, 0xe4, 0xb6, 0xb4, 0x8c, 0xb5, 0x75, 0xd4}

	cred := mustRegister(t, wa, alice, a)
	if !bytes.Equal(cred.Authenticator.AAGUID, a.AAGUID[:]) {
		t.Errorf("AAGUID = %x; want %x", cred.Authenticator.AAGUID, a.AAGUID)
	}
	if !cred.Flags.UserPresent || !cred.Flags.UserVerified || cred.Flags.BackupEligible || cred.Flags.BackupState {
		t.Errorf("flags = %+v; want UP and UV only", cred.Flags)
	}
	if cred.AttestationFormat != "none" {
		t.Errorf("attestation format = %q; want none", cred.AttestationFormat)
	}
	if len(a.Credentials()) != 1 || !bytes.Equal(a.Credentials()[0].ID, cred.ID) {
		t.Fatalf("authenticator holds %d credentials; want the one registered", len(a.Credentials()))
	}
	mustRegister(t, wa, bob, New()) // another user on another device

	for want := uint32(1); want <= 2; want++ {
		got, c, err := login(t, wa, []*user{bob, alice}, a)
		if err != nil {
			t.Fatalf("FinishPasskeyLogin %d: %v", want, err)
		}
		if got != alice || !bytes.Equal(c.ID, cred.ID) {
			t.Fatalf("signed in %s with %x; want alice with %x", got.name, c.ID, cred.ID)
		}
		if c.Authenticator.SignCount != want || c.Authenticator.CloneWarning {
			t.Fatalf("sign count %d, clone warning %v; want %d, false", c.Authenticator.SignCount, c.Authenticator.CloneWarning, want)
		}
		alice.save(c)
	}
}

func TestWrongOriginRefused(t *testing.T) {
	wa := newRP(t)
	u := &user{id: []byte("user-1"), name: "u"}
	a := New()
	a.Origin = "https://evil.test"
	_, err := register(t, wa, u, a)
	refusedFor(t, err, "registration from another origin", "Error validating origin")

	a.Origin = ""
	mustRegister(t, wa, u, a)
	a.Origin = "https://doorman.test.evil.test"
	_, _, err = login(t, wa, []*user{u}, a)
	refusedFor(t, err, "sign-in from another origin", "Error validating origin")
	a.Origin = "https://" + rpID
	if _, _, err := login(t, wa, []*user{u}, a); err != nil {
		t.Fatalf("sign-in from the right origin: %v", err)
	}
}

func TestWrongRPIDRefused(t *testing.T) {
	wa := newRP(t)
	u := &user{id: []byte("user-1"), name: "u"}
	a := New()
	a.RPID = "evil.test"
	_, err := register(t, wa, u, a)
	refusedFor(t, err, "registration with another RP ID", "RP Hash mismatch")

	a.RPID = ""
	mustRegister(t, wa, u, a)
	a.RPID = "evil.test"
	_, _, err = login(t, wa, []*user{u}, a)
	refusedFor(t, err, "sign-in with another RP ID", "RP Hash mismatch")
}

func TestUserVerificationRequired(t *testing.T) {
	wa := newRP(t)
	u := &user{id: []byte("user-1"), name: "u"}
	a := New()
	a.UserVerified = false
	required := webauthn.WithAuthenticatorSelection(protocol.AuthenticatorSelection{
		ResidentKey:      protocol.ResidentKeyRequirementRequired,
		UserVerification: protocol.VerificationRequired,
	})
	_, err := register(t, wa, u, a, required)
	refusedFor(t, err, "registration without UV when required", "User verification required but flag not set")
	cred := mustRegister(t, wa, u, a) // preferred: accepted, UV recorded as absent
	if cred.Flags.UserVerified {
		t.Error("credential records UV although the authenticator did not verify")
	}

	_, _, err = login(t, wa, []*user{u}, a, webauthn.WithUserVerification(protocol.VerificationRequired))
	refusedFor(t, err, "sign-in without UV when required", "User verification required but flag not set")
	a.UserVerified = true
	if _, _, err := login(t, wa, []*user{u}, a, webauthn.WithUserVerification(protocol.VerificationRequired)); err != nil {
		t.Fatalf("sign-in with user verification: %v", err)
	}
}

func TestBackupFlags(t *testing.T) {
	wa := newRP(t)
	u := &user{id: []byte("user-1"), name: "u"}
	a := New()
	a.BackupEligible, a.BackupState = true, true
	cred := mustRegister(t, wa, u, a)
	if !cred.Flags.BackupEligible || !cred.Flags.BackupState {
		t.Fatalf("flags = %+v; want backup eligible and backed up", cred.Flags)
	}
	// A credential that was backup eligible cannot stop being so: go-webauthn refuses the change.
	a.BackupEligible, a.BackupState = false, false
	_, _, err := login(t, wa, []*user{u}, a)
	refusedFor(t, err, "sign-in with the backup eligible flag dropped", "Backup Eligible flag inconsistency")
}

func TestCloneCounterGoingBackwardsIsReported(t *testing.T) {
	wa := newRP(t)
	u := &user{id: []byte("user-1"), name: "u"}
	a := New()
	mustRegister(t, wa, u, a)
	for range 3 {
		_, c, err := login(t, wa, []*user{u}, a)
		if err != nil {
			t.Fatal(err)
		}
		u.save(c)
	}
	if got := u.creds[0].Authenticator.SignCount; got != 3 {
		t.Fatalf("stored sign count %d; want 3", got)
	}

	clone := a.Clone()
	if len(clone.Credentials()) != 1 || !bytes.Equal(clone.Credentials()[0].ID, a.Credentials()[0].ID) {
		t.Fatal("clone does not hold the credential")
	}
	clone.Credentials()[0].SignCount = 1 // the copy was taken earlier: its counter is behind
	_, c, err := login(t, wa, []*user{u}, clone)
	if err != nil {
		t.Fatalf("go-webauthn leaves a clone warning to the caller, but refused: %v", err)
	}
	if !c.Authenticator.CloneWarning {
		t.Fatalf("counter went from 3 to 2 and no clone warning (sign count %d)", c.Authenticator.SignCount)
	}
	if a.Credentials()[0].SignCount != 3 {
		t.Error("the clone's counter is shared with the original")
	}

	// The original, still ahead, raises no warning against a fresh record.
	fresh := &user{id: u.id, name: u.name, creds: []webauthn.Credential{u.creds[0]}}
	_, c, err = login(t, wa, []*user{fresh}, a)
	if err != nil || c.Authenticator.CloneWarning || c.Authenticator.SignCount != 4 {
		t.Fatalf("original after the clone: err %v, warning %v, count %d; want nil, false, 4", err, c.Authenticator.CloneWarning, c.Authenticator.SignCount)
	}
}

func TestExcludedCredentialRefusedByAuthenticator(t *testing.T) {
	wa := newRP(t)
	u := &user{id: []byte("user-1"), name: "u"}
	a := New()
	cred := mustRegister(t, wa, u, a)
	creation, _, err := wa.BeginRegistration(u, webauthn.WithExclusions([]protocol.CredentialDescriptor{cred.Descriptor()}))
	if err != nil {
		t.Fatal(err)
	}
	optionsJSON, _ := json.Marshal(creation)
	if _, err := a.Create(optionsJSON); err == nil {
		t.Fatal("the authenticator made a second credential although the first was excluded")
	}
	if _, err := New().Create(optionsJSON); err != nil {
		t.Fatalf("another authenticator: %v", err)
	}
}

func TestBareOptionsAccepted(t *testing.T) {
	wa := newRP(t)
	u := &user{id: []byte("user-1"), name: "u"}
	a := New()
	creation, session, err := wa.BeginRegistration(u)
	if err != nil {
		t.Fatal(err)
	}
	optionsJSON, _ := json.Marshal(creation.Response) // without the "publicKey" wrapper
	body, err := a.Create(optionsJSON)
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := protocol.ParseCredentialCreationResponseBody(bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	c, err := wa.CreateCredential(u, *session, parsed)
	if err != nil {
		t.Fatal(err)
	}
	u.save(c)

	assertion, session, err := wa.BeginDiscoverableLogin()
	if err != nil {
		t.Fatal(err)
	}
	optionsJSON, _ = json.Marshal(assertion.Response)
	body, err = a.Get(optionsJSON)
	if err != nil {
		t.Fatal(err)
	}
	p, err := protocol.ParseCredentialRequestResponseBody(bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(p.Response.UserHandle, u.id) {
		t.Fatalf("user handle %q; want %q", p.Response.UserHandle, u.id)
	}
	if _, _, err := wa.ValidatePasskeyLogin(func(_, _ []byte) (webauthn.User, error) { return u, nil }, *session, p); err != nil {
		t.Fatal(err)
	}
}
