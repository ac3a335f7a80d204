package handlers_test

import (
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"

	"doorman/apptest"
)

// newOIDCAppAtLocalhost is newOIDCApp served at http://localhost:port:
// passkeys need a name, not an IP address, and the issuer is that URL.
func newOIDCAppAtLocalhost(t *testing.T) *testApp {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	base := "http://localhost:" + port
	a := newTestAppWith(t, apptest.Options{BaseURL: base})
	if a.app.OIDC == nil {
		t.Fatal("the OpenID Connect provider is off")
	}
	a.srv.Close()
	srv := httptest.NewUnstartedServer(a.e)
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
	srv.URL = base
	a.srv = srv
	return a
}

// rpAMR is the amr of the ID token the real RP verified for Doorman
// session sid.
func (r *realRP) rpAMR(sid string) []string {
	for _, s := range r.rp.Sessions() {
		if s.SID == sid {
			return s.AMR
		}
	}
	r.t.Fatalf("no RP session names the Doorman session %s", sid)
	return nil
}

// TestOIDCAMRForPasskeys: an app signing in through Doorman reads, in the
// ID token its real RP verified, amr ["hwk", "mfa"] for a session opened
// with a passkey bound to its device, ["swk", "mfa"] for a synced one, and
// what a password session always said for one.
func TestOIDCAMRForPasskeys(t *testing.T) {
	a := newOIDCAppAtLocalhost(t)
	r := a.newRealRP("notes")
	owner := a.client(uaWindowsChrome, ipBerlin)
	owner.signup("alice@example.com", pw)
	if got := r.rpAMR(r.signIn(owner)); !slices.Equal(got, []string{"pwd"}) {
		t.Errorf("a password session's amr: %v, want [pwd]", got)
	}

	bound, synced := a.invAuthenticator(), a.invAuthenticator()
	synced.BackupEligible, synced.BackupState = true, true
	owner.invAddPasskey(bound, "Security key")
	owner.invAddPasskey(synced, "Phone")
	for _, c := range []struct {
		name string
		want []string
	}{{"Security key", []string{"hwk", "mfa"}}, {"Phone", []string{"swk", "mfa"}}} {
		auth := bound
		if c.name == "Phone" {
			auth = synced
		}
		browser := a.client(uaIPhone, ipLondon)
		expectStatus(t, browser.invPasskeyLogin(auth), http.StatusSeeOther)
		if got := r.rpAMR(r.signIn(browser)); !slices.Equal(got, c.want) {
			t.Errorf("a session opened with %s: amr %v, want %v", c.name, got, c.want)
		}
	}
}
