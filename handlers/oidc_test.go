package handlers_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"html"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"doorman/apptest"
	"doorman/db"
	"doorman/oidcprovider"
)

// An app that signs its users in through Doorman, played by a real
// relying party: golang.org/x/oauth2 for the code flow and
// github.com/coreos/go-oidc for discovery and ID token verification.

const (
	rpRedirect = "https://app.example/callback"
	rpSecret   = "app-secret-that-is-long-enough-0123456789"
)

// newOIDCApp is the test server served at the provider's issuer (the
// relying party discovers the provider there, and go-oidc checks that the
// two agree). The provider needs the store's OpenID Connect part: until
// the store has it, the test is skipped, saying so; once it has it, the
// provider must be on.
func newOIDCApp(t *testing.T) *testApp {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	a := newTestAppWith(t, apptest.Options{BaseURL: base})
	if _, ok := a.store.(oidcprovider.Store); !ok {
		ln.Close()
		t.Skip("the store has no OpenID Connect part yet (db.OIDCStore): the provider is off")
	}
	if a.app.OIDC == nil {
		t.Fatal("the store has its OpenID Connect part but the provider is off")
	}
	a.srv.Close()
	srv := httptest.NewUnstartedServer(a.e)
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
	a.srv = srv
	return a
}

// relyingParty is one registered app, as its server sees Doorman.
type relyingParty struct {
	t        *testing.T
	app      *testApp
	cfg      oauth2.Config
	provider *gooidc.Provider
	verifier *gooidc.IDTokenVerifier
	public   bool
}

// newRelyingParty registers an app (confidential unless public; first
// party when first) and discovers the provider as an app's server would.
func (a *testApp) newRelyingParty(clientID string, public, first bool) *relyingParty {
	t := a.t
	t.Helper()
	app := db.App{ClientID: clientID, Name: "App " + clientID, CreatedAt: a.clock(), RedirectURIs: []string{rpRedirect}, FirstParty: first}
	if !public {
		h := sha256.Sum256([]byte(rpSecret))
		app.SecretHash = h[:]
	}
	if err := a.store.CreateApp(context.Background(), app); err != nil {
		t.Fatal(err)
	}
	p, err := gooidc.NewProvider(context.Background(), a.srv.URL)
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	rp := &relyingParty{t: t, app: a, provider: p, public: public,
		verifier: p.Verifier(&gooidc.Config{ClientID: clientID}),
		cfg: oauth2.Config{ClientID: clientID, Endpoint: p.Endpoint(), RedirectURL: rpRedirect,
			Scopes: []string{gooidc.ScopeOpenID, "email"}},
	}
	if !public {
		rp.cfg.ClientSecret = rpSecret
	}
	return rp
}

// signIn is one sign-in of browser through the app: the app sends the
// browser to the authorization endpoint, Doorman sends it on to its own
// step (signed in already), which sends it back to the app with a code.
// It returns that redirect's query, checked for state and iss.
type signIn struct {
	verifier, nonce, state string
	back                   url.Values
}

func (rp *relyingParty) start(browser *client, extra ...oauth2.AuthCodeOption) (*signIn, *response) {
	rp.t.Helper()
	s := &signIn{verifier: oauth2.GenerateVerifier(), nonce: oauth2.GenerateVerifier(), state: oauth2.GenerateVerifier()}
	opts := append([]oauth2.AuthCodeOption{oauth2.S256ChallengeOption(s.verifier), gooidc.Nonce(s.nonce)}, extra...)
	req, _ := http.NewRequest(http.MethodGet, rp.cfg.AuthCodeURL(s.state, opts...), nil)
	res := browser.do(req)
	return s, res
}

func (rp *relyingParty) signIn(browser *client, extra ...oauth2.AuthCodeOption) *signIn {
	t := rp.t
	t.Helper()
	s, res := rp.start(browser, extra...)
	if res.StatusCode != http.StatusFound || !strings.HasPrefix(res.Header.Get("Location"), "/oidc/continue?id=") {
		t.Fatalf("authorize: %d %q\n%s", res.StatusCode, res.Header.Get("Location"), snippet(res.body))
	}
	res = browser.get(res.Header.Get("Location"))
	s.back = rp.back(res)
	if s.back.Get("state") != s.state || s.back.Get("code") == "" {
		t.Fatalf("back at the app without a code or with the wrong state: %v", s.back)
	}
	return s
}

// back is the query of a redirect to the app, with iss checked (RFC 9207).
func (rp *relyingParty) back(res *response) url.Values {
	t := rp.t
	t.Helper()
	loc := res.Header.Get("Location")
	if res.StatusCode != http.StatusSeeOther && res.StatusCode != http.StatusFound || !strings.HasPrefix(loc, rpRedirect+"?") {
		t.Fatalf("want a redirect to the app, got %d %q\n%s", res.StatusCode, loc, snippet(res.body))
	}
	u, _ := url.Parse(loc)
	q := u.Query()
	if q.Get("iss") != rp.app.srv.URL {
		t.Fatalf("redirect to the app without iss %q: %s", rp.app.srv.URL, loc)
	}
	return q
}

// exchange redeems the sign-in's code.
func (rp *relyingParty) exchange(s *signIn) (*oauth2.Token, error) {
	return rp.cfg.Exchange(context.Background(), s.back.Get("code"), oauth2.VerifierOption(s.verifier))
}

// idClaims are the ID token's claims the tests read.
type idClaims struct {
	Subject       string   `json:"sub"`
	SID           string   `json:"sid"`
	Nonce         string   `json:"nonce"`
	AuthTime      int64    `json:"auth_time"`
	AMR           []string `json:"amr"`
	Email         string   `json:"email"`
	EmailVerified *bool    `json:"email_verified"`
}

// verify checks the token response's ID token (signature through JWKS,
// issuer, audience, expiry) and returns its claims.
func (rp *relyingParty) verify(tok *oauth2.Token, nonce string) (idClaims, *gooidc.IDToken) {
	t := rp.t
	t.Helper()
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		t.Fatal("no id_token in the token response")
	}
	idt, err := rp.verifier.Verify(context.Background(), raw)
	if err != nil {
		t.Fatalf("ID token: %v", err)
	}
	var c idClaims
	if err := idt.Claims(&c); err != nil {
		t.Fatal(err)
	}
	if nonce != "" && c.Nonce != nonce {
		t.Fatalf("nonce %q, want %q", c.Nonce, nonce)
	}
	return c, idt
}

// refresh uses a refresh token once.
func (rp *relyingParty) refresh(refreshToken string) (*oauth2.Token, error) {
	return rp.cfg.TokenSource(context.Background(), &oauth2.Token{RefreshToken: refreshToken, Expiry: time.Now().Add(-time.Hour)}).Token()
}

// expectInvalidGrant checks a token endpoint error is invalid_grant.
func expectInvalidGrant(t *testing.T, err error) {
	t.Helper()
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) || re.ErrorCode != "invalid_grant" {
		t.Fatalf("want invalid_grant, got %v", err)
	}
}

// userinfo calls the userinfo endpoint with an access token: its status,
// and its claims when 200.
func (rp *relyingParty) userinfo(access string) (int, map[string]any) {
	rp.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, rp.provider.UserInfoEndpoint(), nil)
	req.Header.Set("Authorization", "Bearer "+access)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		rp.t.Fatal(err)
	}
	defer res.Body.Close()
	var out map[string]any
	json.NewDecoder(res.Body).Decode(&out)
	return res.StatusCode, out
}

// introspect asks whether a token is active (RFC 7662), as the app.
func (rp *relyingParty) introspect(token string) map[string]any {
	rp.t.Helper()
	var doc struct {
		Introspection string `json:"introspection_endpoint"`
	}
	if err := rp.provider.Claims(&doc); err != nil {
		rp.t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, doc.Introspection, strings.NewReader(url.Values{"token": {token}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(rp.cfg.ClientID, rp.cfg.ClientSecret)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		rp.t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		rp.t.Fatalf("introspection: %d", res.StatusCode)
	}
	var out map[string]any
	json.NewDecoder(res.Body).Decode(&out)
	return out
}

// TestOIDCSignInFirstParty: a signed-in person signs in to a first-party
// app through Doorman; the app verifies the ID token and reads userinfo.
func TestOIDCSignInFirstParty(t *testing.T) {
	a := newOIDCApp(t)
	browser := a.client(uaWindowsChrome, ipBerlin)
	browser.signup("alice@example.com", "correct horse")
	sid := browser.currentID()
	rp := a.newRelyingParty("grafana", false, true)

	s := rp.signIn(browser)
	tok, err := rp.exchange(s)
	if err != nil {
		t.Fatal(err)
	}
	c, idt := rp.verify(tok, s.nonce)
	user, err := a.store.UserByEmail(context.Background(), "alice@example.com")
	if err != nil {
		t.Fatal(err)
	}
	sub, err := a.app.OIDC.Subject(context.Background(), user.ID)
	if err != nil {
		t.Fatal(err)
	}
	if c.Subject != sub || strings.Contains(c.Subject, "alice") || c.Subject == "1" {
		t.Errorf("sub %q, want the user's opaque subject %q", c.Subject, sub)
	}
	if c.SID != sid {
		t.Errorf("sid %q, want the Doorman session %q", c.SID, sid)
	}
	if c.Email != "alice@example.com" || c.EmailVerified == nil || *c.EmailVerified {
		t.Errorf("email claims %q %v, want the address, not verified", c.Email, c.EmailVerified)
	}
	if d := a.clock().Unix() - c.AuthTime; d < 0 || d > 60 {
		t.Errorf("auth_time %d, want the sign-in's (now %d)", c.AuthTime, a.clock().Unix())
	}
	if !slices.Contains(c.AMR, "pwd") {
		t.Errorf("amr %v, want pwd", c.AMR)
	}
	if idt.Issuer != a.srv.URL {
		t.Errorf("iss %q, want %q", idt.Issuer, a.srv.URL)
	}
	if tok.RefreshToken == "" {
		t.Error("no refresh token: every sign-in gets one, bound to its session")
	}
	if got := tok.Extra("scope"); got != "openid email" {
		t.Errorf("scope %q: the app is told what it asked for, not offline_access", got)
	}
	status, info := rp.userinfo(tok.AccessToken)
	if status != http.StatusOK || info["sub"] != sub || info["email"] != "alice@example.com" {
		t.Errorf("userinfo: %d %v", status, info)
	}
	if in := rp.introspect(tok.AccessToken); in["active"] != true || in["sub"] != sub {
		t.Errorf("introspection of a live token: %v", in)
	}

	// The JWKS publishes the key the ID token was signed with.
	var jwks struct {
		Keys []struct {
			Kid, Alg, Kty, Use string
		}
	}
	res := browser.get("/oidc/keys")
	expectStatus(t, res, http.StatusOK)
	if err := json.Unmarshal([]byte(res.body), &jwks); err != nil || len(jwks.Keys) != 1 || jwks.Keys[0].Alg != "RS256" || jwks.Keys[0].Kty != "RSA" {
		t.Fatalf("JWKS: %v %s", err, res.body)
	}
	raw := tok.Extra("id_token").(string)
	hdr, _ := json.Marshal(jwks.Keys[0].Kid)
	if !strings.Contains(decodeJWTHeader(t, raw), string(hdr)) {
		t.Errorf("ID token's kid is not the published key's %s", hdr)
	}
}

// decodeJWTHeader is a JWT's header, as JSON text.
func decodeJWTHeader(t *testing.T, raw string) string {
	t.Helper()
	h, _, _ := strings.Cut(raw, ".")
	b, err := base64URLDecode(h)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestOIDCDiscovery: the discovery document says exactly what is served.
func TestOIDCDiscovery(t *testing.T) {
	a := newOIDCApp(t)
	res := a.client(uaWindowsChrome, ipBerlin).get("/.well-known/openid-configuration")
	expectStatus(t, res, http.StatusOK)
	var doc map[string]any
	if err := json.Unmarshal([]byte(res.body), &doc); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"backchannel_logout_supported", "backchannel_logout_session_supported", "authorization_response_iss_parameter_supported"} {
		if doc[k] != true {
			t.Errorf("%s = %v, want true", k, doc[k])
		}
	}
	if doc["issuer"] != a.srv.URL || doc["authorization_endpoint"] != a.srv.URL+"/oidc/authorize" || doc["jwks_uri"] != a.srv.URL+"/oidc/keys" ||
		doc["end_session_endpoint"] != a.srv.URL+"/oidc/end_session" {
		t.Errorf("endpoints: %v", doc)
	}
	for _, k := range []string{"device_authorization_endpoint", "check_session_iframe"} {
		if _, ok := doc[k]; ok {
			t.Errorf("%s is advertised: Doorman's device flow is its own", k)
		}
	}
	want := map[string]string{
		"response_types_supported":              `["code"]`,
		"grant_types_supported":                 `["authorization_code","refresh_token"]`,
		"code_challenge_methods_supported":      `["S256"]`,
		"id_token_signing_alg_values_supported": `["RS256"]`,
	}
	for k, v := range want {
		got, _ := json.Marshal(doc[k])
		if string(got) != v {
			t.Errorf("%s = %s, want %s", k, got, v)
		}
	}
}

// TestOIDCRefreshRotates: each refresh gives a new refresh token and
// spends the old one; the spent one presented again is refused and ends
// the whole family, the newest token included.
func TestOIDCRefreshRotates(t *testing.T) {
	a := newOIDCApp(t)
	browser := a.client(uaWindowsChrome, ipBerlin)
	browser.signup("alice@example.com", "correct horse")
	rp := a.newRelyingParty("gitea", false, true)
	s := rp.signIn(browser)
	first, err := rp.exchange(s)
	if err != nil {
		t.Fatal(err)
	}
	second, err := rp.refresh(first.RefreshToken)
	if err != nil {
		t.Fatal(err)
	}
	if second.RefreshToken == "" || second.RefreshToken == first.RefreshToken {
		t.Fatalf("refresh did not rotate: %q", second.RefreshToken)
	}
	c, _ := rp.verify(second, "")
	if c.SID != browser.currentID() {
		t.Errorf("refreshed ID token's sid %q", c.SID)
	}
	if status, _ := rp.userinfo(second.AccessToken); status != http.StatusOK {
		t.Fatalf("userinfo with the refreshed token: %d", status)
	}

	// The spent one again: refused, and the family ends.
	_, err = rp.refresh(first.RefreshToken)
	expectInvalidGrant(t, err)
	_, err = rp.refresh(second.RefreshToken)
	expectInvalidGrant(t, err)
	if status, _ := rp.userinfo(second.AccessToken); status != http.StatusUnauthorized {
		t.Errorf("userinfo after the family ended: %d, want 401", status)
	}
}

// TestOIDCCodeIsSingleUse: a code redeemed twice is refused the second
// time, and what its first use issued is revoked.
func TestOIDCCodeIsSingleUse(t *testing.T) {
	a := newOIDCApp(t)
	browser := a.client(uaWindowsChrome, ipBerlin)
	browser.signup("alice@example.com", "correct horse")
	rp := a.newRelyingParty("wiki", false, true)
	s := rp.signIn(browser)
	tok, err := rp.exchange(s)
	if err != nil {
		t.Fatal(err)
	}
	_, err = rp.exchange(s)
	expectInvalidGrant(t, err)
	if in := rp.introspect(tok.AccessToken); in["active"] != false {
		t.Errorf("the first use's access token after the code's reuse: %v", in)
	}
	_, err = rp.refresh(tok.RefreshToken)
	expectInvalidGrant(t, err)
}

// TestOIDCTokensDieWithTheSession: ending the Doorman session that signed
// in to the app (from another device, as a person does on the Security
// page) ends the app's tokens: refresh is invalid_grant, userinfo 401,
// introspection inactive.
func TestOIDCTokensDieWithTheSession(t *testing.T) {
	a := newOIDCApp(t)
	laptop := a.client(uaWindowsChrome, ipBerlin)
	laptop.signup("alice@example.com", "correct horse")
	phone := a.client(uaIPhone, ipLondon)
	phone.login("alice@example.com", "correct horse")
	rp := a.newRelyingParty("product", false, true)
	s := rp.signIn(laptop)
	tok, err := rp.exchange(s)
	if err != nil {
		t.Fatal(err)
	}
	if in := rp.introspect(tok.AccessToken); in["active"] != true {
		t.Fatalf("live token inactive: %v", in)
	}

	expectRedirect(t, phone.post("/settings/security/sessions/"+laptop.currentID()+"/revoke", nil), "/settings/security")

	_, err = rp.refresh(tok.RefreshToken)
	expectInvalidGrant(t, err)
	if status, _ := rp.userinfo(tok.AccessToken); status != http.StatusUnauthorized {
		t.Errorf("userinfo after the session ended: %d, want 401", status)
	}
	if in := rp.introspect(tok.AccessToken); in["active"] != false {
		t.Errorf("introspection after the session ended: %v", in)
	}
}

// TestOIDCPublicClient: an app without a secret signs in with PKCE, and
// without PKCE is refused (back at the app, with the error and iss).
func TestOIDCPublicClient(t *testing.T) {
	a := newOIDCApp(t)
	browser := a.client(uaWindowsChrome, ipBerlin)
	browser.signup("alice@example.com", "correct horse")
	rp := a.newRelyingParty("spa", true, true)
	s := rp.signIn(browser)
	tok, err := rp.exchange(s)
	if err != nil {
		t.Fatal(err)
	}
	rp.verify(tok, s.nonce)

	// No PKCE: the request is refused before anyone signs in.
	q := url.Values{"client_id": {"spa"}, "redirect_uri": {rpRedirect}, "response_type": {"code"}, "scope": {"openid"}, "state": {"xyz"}}
	res := browser.get("/oidc/authorize?" + q.Encode())
	back := rp.back(res)
	if back.Get("error") != "invalid_request" || back.Get("state") != "xyz" || back.Get("code") != "" {
		t.Errorf("without PKCE: %v", back)
	}
	// The plain method is refused too: its challenge is the verifier.
	q.Set("code_challenge", "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqr")
	q.Set("code_challenge_method", "plain")
	if back := rp.back(browser.get("/oidc/authorize?" + q.Encode())); back.Get("error") != "invalid_request" {
		t.Errorf("with plain PKCE: %v", back)
	}
}

// TestOIDCErrors: a wrong redirect URI is an error page, never a
// redirect to it; a wrong client secret is invalid_client (and does not
// spend the code); prompt=none signed out sends login_required back.
func TestOIDCErrors(t *testing.T) {
	a := newOIDCApp(t)
	browser := a.client(uaWindowsChrome, ipBerlin)
	rp := a.newRelyingParty("grafana", false, true)

	evil := rp.cfg
	evil.RedirectURL = "https://evil.example/callback"
	req, _ := http.NewRequest(http.MethodGet, evil.AuthCodeURL("s", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())), nil)
	res := browser.do(req)
	if res.StatusCode != http.StatusBadRequest || res.Header.Get("Location") != "" {
		t.Errorf("wrong redirect URI: %d %q, want 400 and no redirect", res.StatusCode, res.Header.Get("Location"))
	}
	// In Doorman's own page, with the library's reason.
	expectBody(t, res, "This sign-in can&#39;t go on", "redirect_uri is missing in the client configuration", `class="narrow error-page"`)
	if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
		t.Errorf("wrong redirect URI answered %q, want Doorman's HTML page", ct)
	}

	// prompt=none with nobody signed in.
	s, res := rp.start(browser, oauth2.SetAuthURLParam("prompt", "none"))
	back := rp.back(browser.get(res.Header.Get("Location")))
	if back.Get("error") != "login_required" || back.Get("state") != s.state {
		t.Errorf("prompt=none signed out: %v", back)
	}

	// Signed out without prompt=none: to the sign-in page, and back.
	_, res = rp.start(browser)
	cont := res.Header.Get("Location")
	res = browser.get(cont)
	expectRedirect(t, res, "/login?next="+url.QueryEscape(cont))
	browser.signup("alice@example.com", "correct horse")
	s = rp.signIn(browser)

	// A wrong secret: invalid_client, and the code is not spent by it.
	wrong := rp.cfg
	wrong.ClientSecret = "not-the-secret"
	_, err := wrong.Exchange(context.Background(), s.back.Get("code"), oauth2.VerifierOption(s.verifier))
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) || re.ErrorCode != "invalid_client" {
		t.Errorf("wrong secret: %v, want invalid_client", err)
	}
	if _, err := rp.exchange(s); err != nil {
		t.Errorf("the right secret after a wrong one: %v", err)
	}
}

// consentForm is the answer form of a consent page: its hidden fields
// (the request, and the session that was asked).
func consentForm(t *testing.T, res *response) url.Values {
	t.Helper()
	expectStatus(t, res, http.StatusOK)
	form := url.Values{}
	for _, name := range []string{"id", "session"} {
		m := regexp.MustCompile(`name="` + name + `" value="([^"]+)"`).FindStringSubmatch(res.body)
		if m == nil {
			t.Fatalf("no %s field on the consent page:\n%s", name, snippet(res.body))
		}
		form.Set(name, html.UnescapeString(m[1]))
	}
	return form
}

// askConsent starts a sign-in through the app and returns the consent
// page it leads to, with its sign-in.
func (rp *relyingParty) askConsent(browser *client, extra ...oauth2.AuthCodeOption) (*signIn, *response) {
	rp.t.Helper()
	s, res := rp.start(browser, extra...)
	if res.StatusCode != http.StatusFound {
		rp.t.Fatalf("authorize: %d %q", res.StatusCode, res.Header.Get("Location"))
	}
	return s, browser.get(res.Header.Get("Location"))
}

// TestOIDCConsent: an app that is not first-party asks the person first.
// Allow gives the app its code and is remembered: the next sign-in is not
// asked, one asking for more scopes is, naming only the new ones;
// prompt=consent always asks; Cancel sends access_denied back.
func TestOIDCConsent(t *testing.T) {
	a := newOIDCApp(t)
	browser := a.client(uaWindowsChrome, ipBerlin)
	browser.signup("alice@example.com", "correct horse")
	rp := a.newRelyingParty("third", false, false)

	// prompt=none before any consent: consent_required, back at the app.
	_, res := rp.start(browser, oauth2.SetAuthURLParam("prompt", "none"))
	if back := rp.back(browser.get(res.Header.Get("Location"))); back.Get("error") != "consent_required" {
		t.Errorf("prompt=none without consent: %v", back)
	}

	s, page := rp.askConsent(browser)
	expectBody(t, page, "Sign in to App third?", "Signed in as <strong class=\"consent-email\">alice@example.com</strong>",
		"Not you? Use another account", "App third will get", "Who you are on Doorman", "Your email address and whether it is verified",
		">Allow</button>", ">Cancel</button>")
	expectNoBody(t, page, "Stay signed in")
	form := consentForm(t, page)
	s.back = rp.back(browser.post("/oidc/consent", form))
	if s.back.Get("state") != s.state || s.back.Get("code") == "" {
		t.Fatalf("Allow: back at the app with %v", s.back)
	}
	tok, err := rp.exchange(s)
	if err != nil {
		t.Fatal(err)
	}
	rp.verify(tok, s.nonce)

	// The same answer again finds nothing to do, and changes nothing.
	before := a.dump()
	expectStatus(t, browser.post("/oidc/consent", form), http.StatusNotFound)
	expectStatus(t, browser.post("/oidc/consent/cancel", form), http.StatusNotFound)
	if after := a.dump(); after != before {
		t.Errorf("a replayed answer changed the database:\n%s\nvs\n%s", before, after)
	}

	// Remembered: the next sign-in is not asked.
	rp.signIn(browser)

	// More scopes: asked again, naming only the new one.
	rp.cfg.Scopes = append(rp.cfg.Scopes, "offline_access")
	s, page = rp.askConsent(browser, oauth2.AccessTypeOffline)
	expectBody(t, page, "Allow App third more?", "App third asks for more than you allowed before",
		"Stay signed in to App third while you&#39;re away: it can use your account until you disconnect it or sign out everywhere")
	expectNoBody(t, page, "Your email address", "Who you are on Doorman")
	s.back = rp.back(browser.post("/oidc/consent", consentForm(t, page)))
	if s.back.Get("code") == "" {
		t.Fatalf("Allow more: %v", s.back)
	}
	rp.signIn(browser, oauth2.AccessTypeOffline)

	// prompt=consent asks, naming everything; Cancel: access_denied,
	// and the request is gone.
	s, page = rp.askConsent(browser, oauth2.AccessTypeOffline, oauth2.SetAuthURLParam("prompt", "consent"))
	expectBody(t, page, "Sign in to App third?", "Your email address", "Stay signed in")
	form = consentForm(t, page)
	back := rp.back(browser.post("/oidc/consent/cancel", form))
	if back.Get("error") != "access_denied" || back.Get("state") != s.state || back.Get("code") != "" {
		t.Errorf("Cancel: %v", back)
	}
	expectStatus(t, browser.get("/oidc/continue?id="+url.QueryEscape(form.Get("id"))), http.StatusNotFound)
	expectStatus(t, browser.post("/oidc/consent", form), http.StatusNotFound)

	// A first-party app is never asked, prompt=consent or not.
	first := a.newRelyingParty("own", false, true)
	first.signIn(browser, oauth2.SetAuthURLParam("prompt", "consent"))

	// The history has the consents, with what was allowed.
	res = browser.get("/settings/security/activity")
	expectStatus(t, res, http.StatusOK)
	if n := strings.Count(res.body, "Allowed “App third” to sign you in"); n != 2 {
		t.Errorf("%d consents in the history, want 2:\n%s", n, snippet(res.body))
	}
}

// TestOIDCConsentAnswersFromElsewhere: an answer that is not the asked
// session's own, on the page it was asked on, changes nothing: posted
// from another site, from another person's browser, for another session
// of the same browser, or signed out.
func TestOIDCConsentAnswersFromElsewhere(t *testing.T) {
	a := newOIDCApp(t)
	alice := a.client(uaWindowsChrome, ipBerlin)
	alice.signup("alice@example.com", "correct horse")
	bob := a.client(uaIPhone, ipLondon)
	bob.signup("bob@example.com", "battery staple")
	nobody := a.client(uaIPhone, ipLondon)
	rp := a.newRelyingParty("third", false, false)
	_, page := rp.askConsent(alice)
	form := consentForm(t, page)
	cont := "/oidc/continue?id=" + url.QueryEscape(form.Get("id"))
	bob.get("/settings/security")
	nobody.get("/login")
	before := a.dump()

	// answer is the page's answer (its hidden fields), sent with the
	// poster's own CSRF token.
	answer := func() url.Values { return url.Values{"id": {form.Get("id")}, "session": {form.Get("session")}} }
	for _, path := range []string{"/oidc/consent", "/oidc/consent/cancel"} {
		for _, h := range [][]string{{"Sec-Fetch-Site", "cross-site"}, {"Origin", "https://evil.example"}} {
			expectStatus(t, alice.post(path, answer(), h...), http.StatusForbidden)
		}
		expectStatus(t, alice.post(path, url.Values{"id": {form.Get("id")}, "session": {form.Get("session")}, "csrf": {strings.Repeat("A", 43)}}), http.StatusForbidden)
		wrong := url.Values{"id": {form.Get("id")}, "session": {"another-session"}}
		expectRedirect(t, alice.post(path, wrong), cont)
		expectRedirect(t, alice.post(path, url.Values{"id": {form.Get("id")}}), cont)
		// Bob posting Alice's page's answer (his own CSRF token): he was
		// not asked, and is asked on his own page instead.
		expectRedirect(t, bob.post(path, answer()), cont)
		expectRedirect(t, nobody.post(path, answer()), cont)
		expectStatus(t, alice.post(path, url.Values{"id": {"no-such-request"}, "session": {form.Get("session")}}), http.StatusNotFound)
	}
	if after := a.dump(); after != before {
		t.Fatalf("an answer from elsewhere changed the database:\n%s\nvs\n%s", before, after)
	}
	// Bob's own page, then, is his.
	expectBody(t, bob.get(cont), "Signed in as <strong class=\"consent-email\">bob@example.com</strong>")
}

// TestOIDCConsentNotYou: "Not you? Use another account" signs the browser
// out and comes back: the sign-in page says which app it continues to,
// and the consent page then asks the account that signed in.
func TestOIDCConsentNotYou(t *testing.T) {
	a := newOIDCApp(t)
	browser := a.client(uaWindowsChrome, ipBerlin)
	other := a.client(uaIPhone, ipLondon)
	other.signup("bob@example.com", "battery staple")
	browser.signup("alice@example.com", "correct horse")
	rp := a.newRelyingParty("third", false, false)
	s, page := rp.askConsent(browser)
	cont := "/oidc/continue?id=" + url.QueryEscape(consentForm(t, page).Get("id"))

	expectRedirect(t, browser.post("/logout", url.Values{"next": {cont}}), cont)
	login := "/login?next=" + url.QueryEscape(cont)
	expectRedirect(t, browser.get(cont), login)
	res := browser.get(login)
	expectBody(t, res, "to continue to <strong>App third</strong>", "You signed out.")
	expectRedirect(t, browser.post("/login", url.Values{"email": {"bob@example.com"}, "password": {"battery staple"}, "next": {cont}}), cont)
	page = browser.get(cont)
	expectBody(t, page, "bob@example.com")
	expectNoBody(t, page, "alice@example.com")
	s.back = rp.back(browser.post("/oidc/consent", consentForm(t, page)))
	tok, err := rp.exchange(s)
	if err != nil {
		t.Fatal(err)
	}
	if c, _ := rp.verify(tok, s.nonce); c.Email != "bob@example.com" {
		t.Errorf("signed in to the app as %q, want bob", c.Email)
	}

	// The sign-in page names the app of a request in flight only: not
	// for an unknown or used one, nor for another page carrying an id.
	stranger := a.client(uaIPhone, ipTokyo)
	_, res = rp.start(stranger)
	live := res.Header.Get("Location")
	expectBody(t, stranger.get("/login?next="+url.QueryEscape(live)), "to continue to <strong>App third</strong>")
	id := strings.TrimPrefix(live, "/oidc/continue?id=")
	for _, next := range []string{"/oidc/continue?id=nope", "/oidc/continue", "/settings/security?id=" + id, cont} {
		res := stranger.get("/login?next=" + url.QueryEscape(next))
		expectStatus(t, res, http.StatusOK)
		expectNoBody(t, res, "to continue to")
	}
}

// TestOIDCPromptLogin: prompt=login asks for the password again before
// the app gets a sign-in, and the ID token's auth_time is then.
func TestOIDCPromptLogin(t *testing.T) {
	a := newOIDCApp(t)
	browser := a.client(uaWindowsChrome, ipBerlin)
	browser.signup("alice@example.com", "correct horse")
	rp := a.newRelyingParty("admin", false, true)
	a.advance(time.Hour)
	s, res := rp.start(browser, oauth2.SetAuthURLParam("prompt", "login"))
	cont := res.Header.Get("Location")
	res = browser.get(cont)
	expectStatus(t, res, http.StatusOK)
	expectBody(t, res, "enter your password again")
	expectStatus(t, browser.post(cont, url.Values{"password": {"wrong password"}}), http.StatusUnprocessableEntity)
	s.back = rp.back(browser.post(cont, url.Values{"password": {"correct horse"}}))
	tok, err := rp.exchange(s)
	if err != nil {
		t.Fatal(err)
	}
	if c, _ := rp.verify(tok, s.nonce); c.AuthTime != a.clock().Unix() {
		t.Errorf("auth_time %d, want the re-authentication's %d", c.AuthTime, a.clock().Unix())
	}
}

func base64URLDecode(s string) ([]byte, error) { return base64.RawURLEncoding.DecodeString(s) }

// TestOIDCLoginHint: an app's login_hint fills the sign-in form's email
// field (a hint: the person may change it); one that is not an address
// fills nothing.
func TestOIDCLoginHint(t *testing.T) {
	a := newOIDCApp(t)
	browser := a.client(uaWindowsChrome, ipBerlin)
	rp := a.newRelyingParty("wiki", false, true)
	for hint, want := range map[string]string{
		"Alice@Example.com":         `value="alice@example.com"`,
		"+49 30 1234567":            `value=""`,
		`"><script>x</script>@a.io`: `value=""`,
	} {
		_, res := rp.start(browser, oauth2.SetAuthURLParam("login_hint", hint))
		res = browser.get(res.Header.Get("Location"))
		expectStatus(t, res, http.StatusSeeOther)
		res = browser.get(res.Header.Get("Location"))
		expectStatus(t, res, http.StatusOK)
		expectBody(t, res, "to continue to", want)
	}
}

// TestOIDCMaxAge: max_age asks for the password again only when the
// session's sign-in is older than the app allows.
func TestOIDCMaxAge(t *testing.T) {
	a := newOIDCApp(t)
	browser := a.client(uaWindowsChrome, ipBerlin)
	browser.signup("alice@example.com", "correct horse")
	rp := a.newRelyingParty("wiki", false, true)
	a.advance(10 * time.Minute)

	// Signed in 10 minutes ago; the app accepts an hour: straight back.
	s, res := rp.start(browser, oauth2.SetAuthURLParam("max_age", "3600"))
	s.back = rp.back(browser.get(res.Header.Get("Location")))
	if _, err := rp.exchange(s); err != nil {
		t.Fatalf("max_age 3600, sign-in 10 minutes old: %v", err)
	}

	// The app accepts 5 minutes: the password again, then back.
	s, res = rp.start(browser, oauth2.SetAuthURLParam("max_age", "300"))
	cont := res.Header.Get("Location")
	res = browser.get(cont)
	expectStatus(t, res, http.StatusOK)
	expectBody(t, res, "enter your password again")
	s.back = rp.back(browser.post(cont, url.Values{"password": {"correct horse"}}))
	tok, err := rp.exchange(s)
	if err != nil {
		t.Fatal(err)
	}
	if c, _ := rp.verify(tok, s.nonce); c.AuthTime != a.clock().Unix() {
		t.Errorf("auth_time %d, want the re-authentication's %d", c.AuthTime, a.clock().Unix())
	}
}
