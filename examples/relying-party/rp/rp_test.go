package rp

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"
)

const (
	clientID   = "example-app"
	keyID      = "k1"
	logoutType = "http://schemas.openid.net/event/backchannel-logout"
)

var (
	keyOnce sync.Once
	key     *rsa.PrivateKey // the provider's signing key
	other   *rsa.PrivateKey // a key the provider never published
)

func keys(t *testing.T) {
	t.Helper()
	keyOnce.Do(func() {
		var err error
		if key, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
		if other, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
	})
}

// fixture is an RP served by httptest, beside the least of a provider its
// verifier needs: a discovery document and a JWKS. There is no authorization
// or token endpoint; sign-in itself is tested against Doorman in e2e.
type fixture struct {
	t          *testing.T
	issuer     string
	app        *httptest.Server
	rp         *RP
	tokenCalls atomic.Int32
	now        time.Time
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	keys(t)
	f := &fixture{t: t, now: time.Now().Truncate(time.Second)}
	mux := http.NewServeMux()
	provider := httptest.NewServer(mux)
	t.Cleanup(provider.Close)
	f.issuer = provider.URL
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"issuer":                                         f.issuer,
			"authorization_endpoint":                         f.issuer + "/authorize",
			"token_endpoint":                                 f.issuer + "/token",
			"jwks_uri":                                       f.issuer + "/jwks",
			"end_session_endpoint":                           f.issuer + "/end-session",
			"response_types_supported":                       []string{"code"},
			"subject_types_supported":                        []string{"public"},
			"id_token_signing_alg_values_supported":          []string{"RS256"},
			"backchannel_logout_supported":                   true,
			"backchannel_logout_session_supported":           true,
			"authorization_response_iss_parameter_supported": true,
		})
	})
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{
			{Key: &key.PublicKey, KeyID: keyID, Algorithm: string(jose.RS256), Use: "sig"},
		}})
	})
	// Counted so that a test can show a refused callback never spent the code.
	mux.HandleFunc("POST /token", func(w http.ResponseWriter, _ *http.Request) {
		f.tokenCalls.Add(1)
		http.Error(w, `{"error":"invalid_grant"}`, http.StatusBadRequest)
	})
	app := httptest.NewServer(nil)
	t.Cleanup(app.Close)
	r, err := New(Config{
		Issuer:   f.issuer,
		ClientID: clientID,
		BaseURL:  app.URL,
		Logger:   discardLogger(),
		Now:      func() time.Time { return f.now },
	})
	if err != nil {
		t.Fatal(err)
	}
	app.Config.Handler = r
	f.app, f.rp = app, r
	return f
}

// session starts an RP session as a completed sign-in would, and returns its cookie.
func (f *fixture) session(sub, sid string) *http.Cookie {
	v := f.rp.sessions.start(Session{Sub: sub, SID: sid, Email: sub + "@example.com", IDToken: "id-token-" + sid, RefreshToken: "rt-" + sid})
	return &http.Cookie{Name: sessionCookie, Value: v}
}

// claims are a valid logout token's claims for sub and sid (either may be empty).
func (f *fixture) claims(sub, sid string) map[string]any {
	c := map[string]any{
		"iss":    f.issuer,
		"aud":    clientID,
		"iat":    f.now.Unix(),
		"exp":    f.now.Add(2 * time.Minute).Unix(),
		"jti":    randomString(16),
		"events": map[string]any{logoutType: map[string]any{}},
	}
	if sub != "" {
		c["sub"] = sub
	}
	if sid != "" {
		c["sid"] = sid
	}
	return c
}

// sign signs claims as a JWS with alg and key k (the provider's RS256 key by default).
func sign(t *testing.T, claims map[string]any, alg jose.SignatureAlgorithm, k any) string {
	t.Helper()
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: jose.JSONWebKey{Key: k, KeyID: keyID}},
		(&jose.SignerOptions{}).WithType("logout+jwt"))
	if err != nil {
		t.Fatal(err)
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	s, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func (f *fixture) token(claims map[string]any) string {
	return sign(f.t, claims, jose.RS256, key)
}

// unsigned is claims as an "alg":"none" JWT.
func unsigned(t *testing.T, claims map[string]any) string {
	t.Helper()
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(`{"alg":"none","kid":"`+keyID+`"}`)) + "." + enc(payload) + "."
}

// postLogout delivers a logout token as the provider would.
func (f *fixture) postLogout(token string) (*http.Response, string) {
	f.t.Helper()
	res, err := http.PostForm(f.app.URL+"/backchannel-logout", url.Values{"logout_token": {token}})
	if err != nil {
		f.t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return res, string(body)
}

// noRedirect is a client that shows redirects instead of following them.
var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// get requests path with cookie (may be nil) and returns the response and body.
func (f *fixture) get(path string, cookie *http.Cookie) (*http.Response, string) {
	f.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, f.app.URL+path, nil)
	if cookie != nil {
		req.AddCookie(cookie)
	}
	res, err := noRedirect.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return res, string(body)
}

// signedIn reports what the home page says for cookie.
func (f *fixture) signedIn(cookie *http.Cookie) bool {
	f.t.Helper()
	_, body := f.get("/", cookie)
	switch {
	case strings.Contains(body, "Signed in as"):
		return true
	case strings.Contains(body, "Not signed in"):
		return false
	}
	f.t.Fatalf("home page says neither signed in nor not:\n%s", body)
	return false
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

func TestBackchannelLogoutBySIDEndsExactlyThatSession(t *testing.T) {
	f := newFixture(t)
	a := f.session("alice", "sid-a1")
	a2 := f.session("alice", "sid-a2")
	b := f.session("bob", "sid-b1")

	// A test waits for the event instead of sleeping: start waiting first.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	got := make(chan Event, 1)
	go func() {
		e, err := f.rp.WaitEvent(ctx, func(e Event) bool { return e.Kind == EventLogoutVerified && e.SID == "sid-a1" })
		if err != nil {
			t.Error(err)
		}
		got <- e
	}()

	claims := f.claims("alice", "sid-a1")
	res, body := f.postLogout(f.token(claims))
	if res.StatusCode != http.StatusOK {
		t.Fatalf("status %d, body %s; want 200", res.StatusCode, body)
	}
	if cc := res.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control %q, want no-store", cc)
	}
	if e := <-got; e.Ended != 1 || e.Sub != "alice" || e.JTI != claims["jti"] {
		t.Errorf("event %+v, want alice's sid-a1 with 1 session ended", e)
	}
	if f.signedIn(a2) != true || f.signedIn(b) != true {
		t.Error("a session the token did not name was ended")
	}
	// The ended browser is told why, once, and its cookie is cleared.
	res, body = f.get("/", a)
	if !strings.Contains(body, "Not signed in") || !strings.Contains(body, backchannelEnded) {
		t.Errorf("ended session's page:\n%s", body)
	}
	if c := res.Cookies(); len(c) != 1 || c[0].Name != sessionCookie || c[0].MaxAge >= 0 {
		t.Errorf("cookies %v, want %s cleared", c, sessionCookie)
	}
	if f.signedIn(a) {
		t.Error("session named by the logout token is still signed in")
	}
	if got := len(f.rp.Sessions()); got != 2 {
		t.Errorf("%d live sessions, want 2", got)
	}
}

func TestBackchannelLogoutBySubEndsAllOfTheirSessions(t *testing.T) {
	f := newFixture(t)
	a1, a2, b := f.session("alice", "sid-a1"), f.session("alice", "sid-a2"), f.session("bob", "sid-b1")
	res, body := f.postLogout(f.token(f.claims("alice", "")))
	if res.StatusCode != http.StatusOK {
		t.Fatalf("status %d, body %s; want 200", res.StatusCode, body)
	}
	if f.signedIn(a1) || f.signedIn(a2) {
		t.Error("one of alice's sessions survived a sub-only logout token")
	}
	if !f.signedIn(b) {
		t.Error("bob's session was ended by alice's logout token")
	}
	if ev := f.rp.Events(); ev[len(ev)-1].Kind != EventLogoutVerified || ev[len(ev)-1].Ended != 2 {
		t.Errorf("last event %+v, want logout_verified ending 2", ev[len(ev)-1])
	}
}

func TestBackchannelLogoutWithNoMatchingSessionIsStillAccepted(t *testing.T) {
	f := newFixture(t)
	b := f.session("bob", "sid-b1")
	// The session may be gone already (signed out here first): 200, or the
	// provider would retry forever.
	if res, body := f.postLogout(f.token(f.claims("alice", "sid-gone"))); res.StatusCode != http.StatusOK {
		t.Fatalf("status %d, body %s; want 200", res.StatusCode, body)
	}
	if !f.signedIn(b) {
		t.Error("an unrelated session was ended")
	}
}

func TestBackchannelLogoutReplayedJTIIsRefused(t *testing.T) {
	f := newFixture(t)
	f.session("alice", "sid-a1")
	tok := f.token(f.claims("alice", "sid-a1"))
	if res, body := f.postLogout(tok); res.StatusCode != http.StatusOK {
		t.Fatalf("first delivery: status %d, body %s", res.StatusCode, body)
	}
	// alice signs in again in the same provider session; the old token,
	// replayed, must not end the new sign-in.
	again := f.session("alice", "sid-a1")
	res, body := f.postLogout(tok)
	if res.StatusCode != http.StatusBadRequest || !strings.Contains(body, "already received") {
		t.Fatalf("replay: status %d, body %s; want 400 already received", res.StatusCode, body)
	}
	if !f.signedIn(again) {
		t.Error("a replayed logout token ended a session")
	}
	// The same claims with a new jti are a new logout, and count.
	fresh := f.claims("alice", "sid-a1")
	if res, body := f.postLogout(f.token(fresh)); res.StatusCode != http.StatusOK {
		t.Fatalf("new jti: status %d, body %s", res.StatusCode, body)
	}
	if f.signedIn(again) {
		t.Error("a fresh logout token did not end the session")
	}
}

func TestSeenJTIsAreForgottenAfterTheirExpiry(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	j := newJTIStore(func() time.Time { return now })
	if !j.add("a", now.Add(time.Minute)) || j.add("a", now.Add(time.Minute)) {
		t.Fatal("first add must pass, second must not")
	}
	now = now.Add(2 * time.Minute)
	j.add("b", now.Add(time.Minute))
	if _, kept := j.seen["a"]; kept {
		t.Error("an expired jti is still kept")
	}
}

func TestBackchannelLogoutRefusals(t *testing.T) {
	f := newFixture(t)
	withClaims := func(change func(map[string]any)) string {
		c := f.claims("alice", "sid-a1")
		change(c)
		return f.token(c)
	}
	cases := []struct {
		name  string
		token string
	}{
		{"missing", ""},
		{"not a JWT", "not-a-jwt"},
		{"wrong aud", withClaims(func(c map[string]any) { c["aud"] = "another-app" })},
		{"wrong iss", withClaims(func(c map[string]any) { c["iss"] = "https://evil.example" })},
		{"alg none", unsigned(t, f.claims("alice", "sid-a1"))},
		{"HS256 with a guessable key", sign(t, f.claims("alice", "sid-a1"), jose.HS256, []byte("0123456789abcdef0123456789abcdef"))},
		{"signed by another key", sign(t, f.claims("alice", "sid-a1"), jose.RS256, other)},
		{"missing events", withClaims(func(c map[string]any) { delete(c, "events") })},
		{"other event only", withClaims(func(c map[string]any) { c["events"] = map[string]any{"http://example.com/other": map[string]any{}} })},
		{"event not an object", withClaims(func(c map[string]any) { c["events"] = map[string]any{logoutType: "yes"} })},
		{"nonce present", withClaims(func(c map[string]any) { c["nonce"] = "n-0S6_WzA2Mj" })},
		{"expired", withClaims(func(c map[string]any) {
			c["iat"], c["exp"] = f.now.Add(-10*time.Minute).Unix(), f.now.Add(-time.Minute).Unix()
		})},
		{"no exp", withClaims(func(c map[string]any) { delete(c, "exp") })},
		{"no iat", withClaims(func(c map[string]any) { delete(c, "iat") })},
		{"iat in the future", withClaims(func(c map[string]any) {
			c["iat"], c["exp"] = f.now.Add(time.Hour).Unix(), f.now.Add(time.Hour+time.Minute).Unix()
		})},
		{"no jti", withClaims(func(c map[string]any) { delete(c, "jti") })},
		{"neither sub nor sid", withClaims(func(c map[string]any) { delete(c, "sub"); delete(c, "sid") })},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a1, a2 := f.session("alice", "sid-a1"), f.session("alice", "sid-a2")
			before := len(f.rp.Events())
			res, body := f.postLogout(tc.token)
			if res.StatusCode != http.StatusBadRequest {
				t.Fatalf("status %d, body %s; want 400", res.StatusCode, body)
			}
			if ct := res.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q, want application/json", ct)
			}
			if cc := res.Header.Get("Cache-Control"); cc != "no-store" {
				t.Errorf("Cache-Control %q, want no-store", cc)
			}
			var e struct {
				Error       string `json:"error"`
				Description string `json:"error_description"`
			}
			if err := json.Unmarshal([]byte(body), &e); err != nil || e.Error != "invalid_request" || e.Description == "" {
				t.Errorf("body %s, want a JSON invalid_request with a description", body)
			}
			if !f.signedIn(a1) || !f.signedIn(a2) {
				t.Error("a refused logout token ended a session")
			}
			ev := f.rp.Events()
			if len(ev) != before+1 || ev[before].Kind != EventLogoutRefused || ev[before].Reason == "" || ev[before].Ended != 0 {
				t.Errorf("events after %v, want one logout_refused with a reason", ev[before:])
			}
		})
	}
}

func TestBackchannelLogoutOnlyByPOST(t *testing.T) {
	f := newFixture(t)
	if res, _ := f.get("/backchannel-logout?logout_token="+f.token(f.claims("alice", "sid-a1")), nil); res.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET: status %d, want 405", res.StatusCode)
	}
}

func TestBackchannelLogoutWhenTheProviderIsUnreachable(t *testing.T) {
	f := newFixture(t)
	a := f.session("alice", "sid-a1")
	tok := f.token(f.claims("alice", "sid-a1"))
	down := httptest.NewServer(nil)
	down.Close()
	r, err := New(Config{Issuer: down.URL, ClientID: clientID, BaseURL: f.app.URL, Logger: discardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	r.sessions = f.rp.sessions
	f.app.Config.Handler = r
	// Not the token's fault: 503 tells the provider to try again later.
	res, body := f.postLogout(tok)
	if res.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, "temporarily_unavailable") {
		t.Fatalf("status %d, body %s; want 503 temporarily_unavailable", res.StatusCode, body)
	}
	if !f.signedIn(a) {
		t.Error("a session ended without a verified token")
	}
}

func TestLoginStartsTheCodeFlowWithPKCE(t *testing.T) {
	f := newFixture(t)
	res, _ := f.get("/login", nil)
	if res.StatusCode != http.StatusFound {
		t.Fatalf("status %d, want 302", res.StatusCode)
	}
	loc, err := url.Parse(res.Header.Get("Location"))
	if err != nil || loc.Scheme+"://"+loc.Host+loc.Path != f.issuer+"/authorize" {
		t.Fatalf("Location %q, want the authorization endpoint", res.Header.Get("Location"))
	}
	q := loc.Query()
	want := map[string]string{"response_type": "code", "client_id": clientID, "redirect_uri": f.app.URL + "/callback", "scope": "openid email", "code_challenge_method": "S256"}
	for k, v := range want {
		if q.Get(k) != v {
			t.Errorf("%s = %q, want %q", k, q.Get(k), v)
		}
	}
	var c *http.Cookie
	for _, ck := range res.Cookies() {
		if ck.Name == loginCookie {
			c = ck
		}
	}
	if c == nil || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.MaxAge <= 0 || c.MaxAge > 600 || c.Path != "/callback" {
		t.Fatalf("login cookie %+v, want HttpOnly, Lax, short-lived, for /callback", c)
	}
	req := &http.Request{Header: http.Header{"Cookie": {c.String()}}}
	a, ok := readLoginCookie(req)
	if !ok || q.Get("state") != a.State || q.Get("nonce") != a.Nonce {
		t.Errorf("state/nonce in the URL do not match the cookie")
	}
	if q.Get("code_challenge") != oauth2.S256ChallengeFromVerifier(a.Verifier) {
		t.Errorf("code_challenge %q is not S256 of the verifier", q.Get("code_challenge"))
	}
	// Every attempt is fresh.
	res2, _ := f.get("/login", nil)
	loc2, _ := url.Parse(res2.Header.Get("Location"))
	if loc2.Query().Get("state") == q.Get("state") || loc2.Query().Get("nonce") == q.Get("nonce") {
		t.Error("two sign-ins share a state or nonce")
	}
}

func TestCallbackRefusals(t *testing.T) {
	f := newFixture(t)
	res, _ := f.get("/login", nil)
	var login *http.Cookie
	for _, c := range res.Cookies() {
		if c.Name == loginCookie {
			login = c
		}
	}
	loc, _ := url.Parse(res.Header.Get("Location"))
	state := loc.Query().Get("state")
	cases := []struct {
		name   string
		query  url.Values
		cookie *http.Cookie
		want   string
	}{
		{"no login cookie", url.Values{"code": {"c"}, "state": {state}, "iss": {f.issuer}}, nil, "expired or was started in another browser"},
		{"wrong state", url.Values{"code": {"c"}, "state": {"someone-elses"}, "iss": {f.issuer}}, login, "does not belong to this browser"},
		{"wrong iss", url.Values{"code": {"c"}, "state": {state}, "iss": {"https://evil.example"}}, login, "came from another provider"},
		{"missing iss though advertised", url.Values{"code": {"c"}, "state": {state}}, login, "does not say which provider"},
		{"provider error", url.Values{"error": {"access_denied"}, "state": {state}, "iss": {f.issuer}}, login, "did not sign you in (access_denied)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res, body := f.get("/callback?"+tc.query.Encode(), tc.cookie)
			if res.StatusCode != http.StatusBadRequest || !strings.Contains(body, tc.want) {
				t.Fatalf("status %d, want 400 saying %q:\n%s", res.StatusCode, tc.want, body)
			}
			for _, c := range res.Cookies() {
				if c.Name == sessionCookie && c.MaxAge >= 0 {
					t.Error("a refused callback set a session cookie")
				}
			}
		})
	}
	if n := f.tokenCalls.Load(); n != 0 {
		t.Errorf("refused callbacks exchanged the code %d times", n)
	}
	if n := len(f.rp.Sessions()); n != 0 {
		t.Errorf("%d sessions after refused callbacks", n)
	}
}

func TestLogoutEndsTheSessionAndGoesToTheProvider(t *testing.T) {
	f := newFixture(t)
	a := f.session("alice", "sid-a1")
	post := func(site string) (*http.Response, string) {
		req, _ := http.NewRequest(http.MethodPost, f.app.URL+"/logout", nil)
		req.AddCookie(a)
		req.Header.Set("Sec-Fetch-Site", site)
		res, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		return res, string(body)
	}
	// Another site cannot sign people out of this app.
	if res, _ := post("cross-site"); res.StatusCode != http.StatusForbidden {
		t.Fatalf("cross-site POST: status %d, want 403", res.StatusCode)
	}
	if !f.signedIn(a) {
		t.Fatal("a cross-site POST ended the session")
	}
	res, _ := post("same-origin")
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("status %d, want 303", res.StatusCode)
	}
	loc, err := url.Parse(res.Header.Get("Location"))
	if err != nil || loc.Scheme+"://"+loc.Host+loc.Path != f.issuer+"/end-session" {
		t.Fatalf("Location %q, want the end_session_endpoint", res.Header.Get("Location"))
	}
	q := loc.Query()
	if q.Get("id_token_hint") != "id-token-sid-a1" || q.Get("post_logout_redirect_uri") != f.app.URL+"/" || q.Get("client_id") != clientID {
		t.Errorf("end-session query %v", q)
	}
	if f.signedIn(a) {
		t.Error("still signed in after Sign out")
	}
	if ev := f.rp.Events(); ev[len(ev)-1].Kind != EventSignedOut || ev[len(ev)-1].SID != "sid-a1" {
		t.Errorf("last event %+v, want signed_out sid-a1", ev[len(ev)-1])
	}
}

func TestHomePage(t *testing.T) {
	f := newFixture(t)
	_, body := f.get("/", nil)
	for _, want := range []string{`<html lang="en">`, "<title>", "Not signed in", `href="/login">Sign in with Doorman</a>`} {
		if !strings.Contains(body, want) {
			t.Errorf("signed-out page lacks %q", want)
		}
	}
	res, body := f.get("/", f.session("alice", "sid-a1"))
	for _, want := range []string{"Signed in as <strong>alice@example.com</strong> (sub <code>alice</code>, Doorman session sid <code>sid-a1</code>)", `<button type="submit">Sign out</button>`, "Refresh tokens"} {
		if !strings.Contains(body, want) {
			t.Errorf("signed-in page lacks %q:\n%s", want, body)
		}
	}
	if cc := res.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control %q, want no-store", cc)
	}
	if strings.Contains(body, "rt-sid-a1") || strings.Contains(body, "id-token-sid-a1") {
		t.Error("the page shows a token")
	}
	res, body = f.get("/events", nil)
	if res.Header.Get("Content-Type") != "application/json" || !strings.HasPrefix(body, "[") {
		t.Errorf("/events: %s %s", res.Header.Get("Content-Type"), body)
	}
}
