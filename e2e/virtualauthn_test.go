package e2e

import (
	"encoding/json"
	"net"
	"net/http"
	"strconv"
	"testing"

	"github.com/playwright-community/playwright-go"
)

// Chromium's virtual authenticator (the DevTools protocol's WebAuthn domain), for tests of the
// passkey pages: playwright-go has no credentials API of its own. An authenticator belongs to one
// page; it answers navigator.credentials.create and .get there without any prompt.

// virtualAuthenticator is one virtual authenticator attached to a page.
type virtualAuthenticator struct {
	cdp playwright.CDPSession
	id  string
}

// virtualAuthenticatorOptions are what a test may change from a platform passkey provider that
// verifies the user (a phone's or laptop's built-in one).
type virtualAuthenticatorOptions struct {
	// NoUserVerification: the authenticator cannot verify the user (hasUserVerification false).
	NoUserVerification bool
	// BackupEligible and BackupState: new credentials are synced passkeys (BE and BS flags).
	BackupEligible bool
	BackupState    bool
}

// virtualCredential is a credential as WebAuthn.getCredentials reports it and addCredential takes it.
// The byte fields are standard base64 (the DevTools protocol's "binary"), not base64url as the page
// and go-webauthn spell a credential ID.
type virtualCredential struct {
	CredentialID         string `json:"credentialId"`
	IsResidentCredential bool   `json:"isResidentCredential"`
	RPID                 string `json:"rpId,omitempty"`
	PrivateKey           string `json:"privateKey"` // PKCS#8
	UserHandle           string `json:"userHandle,omitempty"`
	SignCount            int    `json:"signCount"`
	BackupEligibility    bool   `json:"backupEligibility,omitempty"`
	BackupState          bool   `json:"backupState,omitempty"`
	UserName             string `json:"userName,omitempty"`
	UserDisplayName      string `json:"userDisplayName,omitempty"`
}

// addVirtualAuthenticator attaches a CTAP2 platform authenticator with resident keys and user
// verification to p, answering without a prompt. It is removed when the test ends (if the test
// has not removed it).
func addVirtualAuthenticator(t *testing.T, p playwright.Page, o virtualAuthenticatorOptions) *virtualAuthenticator {
	t.Helper()
	cdp, err := p.Context().NewCDPSession(p)
	must(t, err)
	_, err = cdp.Send("WebAuthn.enable", map[string]any{"enableUI": false})
	must(t, err)
	res, err := cdp.Send("WebAuthn.addVirtualAuthenticator", map[string]any{"options": map[string]any{
		"protocol":                    "ctap2",
		"ctap2Version":                "ctap2_1",
		"transport":                   "internal",
		"hasResidentKey":              true,
		"hasUserVerification":         !o.NoUserVerification,
		"isUserVerified":              !o.NoUserVerification,
		"automaticPresenceSimulation": true,
		"defaultBackupEligibility":    o.BackupEligible,
		"defaultBackupState":          o.BackupState,
	}})
	must(t, err)
	id, _ := res.(map[string]any)["authenticatorId"].(string)
	if id == "" {
		t.Fatalf("WebAuthn.addVirtualAuthenticator answered %v", res)
	}
	a := &virtualAuthenticator{cdp: cdp, id: id}
	t.Cleanup(func() {
		if a.id != "" {
			// The page may be gone already; then so is the authenticator.
			_, _ = a.cdp.Send("WebAuthn.removeVirtualAuthenticator", map[string]any{"authenticatorId": a.id})
		}
	})
	return a
}

// credentials lists the credentials the authenticator holds.
func (a *virtualAuthenticator) credentials(t *testing.T) []virtualCredential {
	t.Helper()
	res, err := a.cdp.Send("WebAuthn.getCredentials", map[string]any{"authenticatorId": a.id})
	must(t, err)
	raw, err := json.Marshal(res.(map[string]any)["credentials"])
	must(t, err)
	var creds []virtualCredential
	must(t, json.Unmarshal(raw, &creds))
	return creds
}

// addCredential puts c into the authenticator.
func (a *virtualAuthenticator) addCredential(t *testing.T, c virtualCredential) {
	t.Helper()
	raw, err := json.Marshal(c)
	must(t, err)
	var m map[string]any
	must(t, json.Unmarshal(raw, &m))
	_, err = a.cdp.Send("WebAuthn.addCredential", map[string]any{"authenticatorId": a.id, "credential": m})
	must(t, err)
}

// cloneCredential copies c (from credentials) into the authenticator to with its counter set back
// to signCount: a copied private key whose next signature counts lower than the original's.
func cloneCredential(t *testing.T, to *virtualAuthenticator, c virtualCredential, signCount int) {
	t.Helper()
	c.SignCount = signCount
	to.addCredential(t, c)
}

// setUserVerified makes the authenticator's next user verifications succeed or fail.
func (a *virtualAuthenticator) setUserVerified(t *testing.T, verified bool) {
	t.Helper()
	_, err := a.cdp.Send("WebAuthn.setUserVerified", map[string]any{"authenticatorId": a.id, "isUserVerified": verified})
	must(t, err)
}

// remove detaches the authenticator (and its credentials) from the page.
func (a *virtualAuthenticator) remove(t *testing.T) {
	t.Helper()
	_, err := a.cdp.Send("WebAuthn.removeVirtualAuthenticator", map[string]any{"authenticatorId": a.id})
	must(t, err)
	a.id = ""
}

// webauthnTestPage makes and uses a passkey with fixed options, on its own origin; it needs none
// of Doorman's pages. register() and signIn() resolve to the credential ID (base64url), the
// authenticator data's flags and counter, and the user handle.
const webauthnTestPage = `<!doctype html><meta charset="utf-8"><title>WebAuthn</title>
<script>
const b64url = (buf) => btoa(String.fromCharCode(...new Uint8Array(buf))).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
const describe = (cred, authData, userHandle) => {
  const d = new DataView(authData);
  return {id: cred.id, rawId: b64url(cred.rawId), flags: d.getUint8(32), signCount: d.getUint32(33),
    userHandle: userHandle ? new TextDecoder().decode(userHandle) : ""};
};
window.register = async () => {
  const cred = await navigator.credentials.create({publicKey: {
    rp: {id: location.hostname, name: "Virtual authenticator test"},
    user: {id: new TextEncoder().encode("user-handle-1"), name: "ada@example.com", displayName: "Ada"},
    challenge: crypto.getRandomValues(new Uint8Array(32)),
    pubKeyCredParams: [{type: "public-key", alg: -7}],
    authenticatorSelection: {residentKey: "required", userVerification: "required"},
    attestation: "none"}});
  return describe(cred, cred.response.getAuthenticatorData(), null);
};
window.signIn = async () => {
  const cred = await navigator.credentials.get({publicKey: {
    rpId: location.hostname,
    challenge: crypto.getRandomValues(new Uint8Array(32)),
    userVerification: "required"}});
  return describe(cred, cred.response.authenticatorData, cred.response.userHandle);
};
</script>`

// usedCredential is what webauthnTestPage's register and signIn resolve to.
type usedCredential struct {
	ID         string `json:"id"`
	Flags      int    `json:"flags"`
	SignCount  uint32 `json:"signCount"`
	UserHandle string `json:"userHandle"`
}

func runCeremony(t *testing.T, p playwright.Page, fn string) usedCredential {
	t.Helper()
	res, err := p.Evaluate(`(fn) => window[fn]()`, fn)
	must(t, err)
	raw, err := json.Marshal(res)
	must(t, err)
	var c usedCredential
	must(t, json.Unmarshal(raw, &c))
	return c
}

// serveWebAuthnTestPage serves webauthnTestPage on http://localhost:PORT (localhost is a secure
// context, so WebAuthn works over plain HTTP; an IP address cannot be an RP ID).
func serveWebAuthnTestPage(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte(webauthnTestPage))
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "http://localhost:" + strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
}

func newBlankPage(t *testing.T) playwright.Page {
	t.Helper()
	ctx, err := browser.NewContext()
	must(t, err)
	t.Cleanup(func() { ctx.Close() })
	ctx.SetDefaultTimeout(float64(waitTimeout.Milliseconds()))
	p, err := ctx.NewPage()
	must(t, err)
	return p
}

const (
	flagUV = 0x04
	flagBE = 0x08
	flagBS = 0x10
)

func TestVirtualAuthenticator(t *testing.T) {
	url := serveWebAuthnTestPage(t)

	// A synced passkey made and used on one device.
	p := newBlankPage(t)
	goTo(t, p, url)
	auth := addVirtualAuthenticator(t, p, virtualAuthenticatorOptions{BackupEligible: true, BackupState: true})
	made := runCeremony(t, p, "register")
	if made.Flags&(flagUV|flagBE|flagBS) != flagUV|flagBE|flagBS {
		t.Errorf("registration flags %#x; want UV, BE and BS set", made.Flags)
	}
	creds := auth.credentials(t)
	if len(creds) != 1 {
		t.Fatalf("authenticator holds %d credentials; want 1", len(creds))
	}
	c := creds[0]
	if id := base64StdToURL(c.CredentialID); id != made.ID {
		t.Fatalf("getCredentials has %s; the page made %s", id, made.ID)
	}
	if !c.IsResidentCredential || c.RPID != "localhost" || c.UserHandle == "" {
		t.Errorf("credential %+v; want resident, for localhost, with a user handle", c)
	}

	first := runCeremony(t, p, "signIn")
	second := runCeremony(t, p, "signIn")
	if first.ID != made.ID || first.UserHandle != "user-handle-1" {
		t.Fatalf("signed in with %s as %q; want %s as user-handle-1", first.ID, first.UserHandle, made.ID)
	}
	if second.SignCount <= first.SignCount {
		t.Fatalf("sign count went %d then %d; want it to advance", first.SignCount, second.SignCount)
	}
	if got := auth.credentials(t)[0].SignCount; uint32(got) != second.SignCount {
		t.Errorf("getCredentials says sign count %d; the last assertion carried %d", got, second.SignCount)
	}

	// The same private key on a second device, its counter behind the original's.
	p2 := newBlankPage(t)
	goTo(t, p2, url)
	clone := addVirtualAuthenticator(t, p2, virtualAuthenticatorOptions{BackupEligible: true, BackupState: true})
	cloneCredential(t, clone, auth.credentials(t)[0], 0)
	cloned := runCeremony(t, p2, "signIn")
	if cloned.ID != made.ID || cloned.SignCount > first.SignCount {
		t.Fatalf("clone signed with %s at count %d; want %s at most %d", cloned.ID, cloned.SignCount, made.ID, first.SignCount)
	}

	// Without user verification the ceremony that requires it fails.
	auth.setUserVerified(t, false)
	if _, err := p.Evaluate(`() => window.signIn()`); err == nil {
		t.Error("sign-in requiring user verification succeeded with verification failing")
	}
	auth.setUserVerified(t, true)

	// Removed, the authenticator answers nothing.
	auth.remove(t)
	res, err := p.Evaluate(`() => navigator.credentials.get({publicKey: {rpId: location.hostname,
		challenge: new Uint8Array(32), timeout: 2000}}).then(() => "answered", (e) => e.name)`)
	must(t, err)
	if res == "answered" {
		t.Error("a removed authenticator still answered")
	}
}

// base64StdToURL turns the DevTools protocol's standard base64 into base64url without padding.
func base64StdToURL(s string) string {
	out := []byte(s)
	n := len(out)
	for n > 0 && out[n-1] == '=' {
		n--
	}
	out = out[:n]
	for i, c := range out {
		switch c {
		case '+':
			out[i] = '-'
		case '/':
			out[i] = '_'
		}
	}
	return string(out)
}
