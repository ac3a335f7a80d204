package handlers_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
)

// RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0) with the
// example relying party (examples/relying-party/rp): its "Sign out" sends
// the browser to Doorman's end_session_endpoint with id_token_hint,
// client_id and post_logout_redirect_uri.

// liveSessions is the ids of the user's live sessions.
func (a *testApp) liveSessions(email string) []string {
	a.t.Helper()
	u, err := a.store.UserByEmail(context.Background(), email)
	if err != nil {
		a.t.Fatal(err)
	}
	ss, err := a.store.ListSessions(context.Background(), u.ID, a.clock())
	if err != nil {
		a.t.Fatal(err)
	}
	var ids []string
	for _, s := range ss {
		ids = append(ids, s.ID)
	}
	return ids
}

// idToken is the ID token the RP holds for Doorman session sid.
func (r *realRP) idToken(sid string) string {
	r.t.Helper()
	for _, s := range r.rp.Sessions() {
		if s.SID == sid {
			return s.IDToken
		}
	}
	r.t.Fatalf("the RP holds no session of %s", sid)
	return ""
}

// endSession sends browser to the end-session endpoint with q.
func endSession(browser *client, q url.Values) *response {
	browser.t.Helper()
	return browser.get("/oidc/end_session?" + q.Encode())
}

// TestEndSessionFromTheApp: the real RP's "Sign out" ends the Doorman
// session it names at once (the hint is its own ID token, of this
// browser's session), the browser lands on the RP's post-logout page, and
// the other app that session signed in to receives a logout token for it.
// The phone's session lives on.
func TestEndSessionFromTheApp(t *testing.T) {
	a := newOIDCApp(t)
	laptop := a.client(uaWindowsChrome, ipBerlin)
	laptop.signup("alice@example.com", "correct horse")
	phone := a.client(uaIPhone, ipLondon)
	phone.login("alice@example.com", "correct horse")
	phoneID := phone.currentID()
	wiki, grafana := a.newRealRP("wiki"), a.newRealRP("grafana")
	// Both RPs are on 127.0.0.1, and cookies do not tell ports apart: the
	// wiki signs in last, so that its session cookie is the one kept.
	grafana.signIn(laptop)
	sid := wiki.signIn(laptop)

	res := laptop.do(mustRequest(http.MethodPost, wiki.srv.URL+"/logout"))
	loc := res.Header.Get("Location")
	if res.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, a.srv.URL+"/oidc/end_session?") {
		t.Fatalf("the RP's sign-out: %d %q, want the end_session_endpoint", res.StatusCode, loc)
	}
	res = laptop.do(mustRequest(http.MethodGet, loc))
	expectRedirect(t, res, wiki.srv.URL+"/")
	if ids := a.liveSessions("alice@example.com"); !slices.Equal(ids, []string{phoneID}) {
		t.Fatalf("live sessions after the app's sign-out: %v, want only the phone's %s", ids, phoneID)
	}
	if laptop.sessionCookie() != "" {
		t.Error("the session cookie was not cleared")
	}
	grafana.waitLogout(subjectOf(t, a, "alice@example.com"), sid)
	if grafana.signedIn(sid) {
		t.Error("the other app still has a session of the ended Doorman session")
	}
	// The signed-out browser at the RP's page: signed out there too.
	res = laptop.do(mustRequest(http.MethodGet, wiki.srv.URL+"/"))
	expectStatus(t, res, http.StatusOK)
	if strings.Contains(res.body, "alice@example.com") {
		t.Error("the RP's page still shows the person")
	}
}

// TestEndSessionTrustedWithState: a trusted request comes back with its
// state; posted as a form (cross-site, without the SameSite cookie) it is
// passed on to the GET, which ends the session.
func TestEndSessionTrustedWithState(t *testing.T) {
	a := newOIDCApp(t)
	laptop := a.client(uaWindowsChrome, ipBerlin)
	laptop.signup("alice@example.com", "correct horse")
	wiki := a.newRealRP("wiki")
	sid := wiki.signIn(laptop)
	q := url.Values{"id_token_hint": {wiki.idToken(sid)}, "post_logout_redirect_uri": {wiki.srv.URL + "/"}, "state": {"s-123"}}

	req, _ := http.NewRequest(http.MethodPost, a.srv.URL+"/oidc/end_session", strings.NewReader(q.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", wiki.srv.URL)
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	res := laptop.do(req)
	if res.StatusCode != http.StatusSeeOther || !strings.HasPrefix(res.Header.Get("Location"), "/oidc/end_session?") {
		t.Fatalf("POST end_session: %d %q", res.StatusCode, res.Header.Get("Location"))
	}
	if len(a.liveSessions("alice@example.com")) != 1 {
		t.Fatal("the POST ended the session itself")
	}
	res = laptop.get(res.Header.Get("Location"))
	expectRedirect(t, res, wiki.srv.URL+"/?state=s-123")
	if ids := a.liveSessions("alice@example.com"); len(ids) != 0 {
		t.Fatalf("live sessions: %v", ids)
	}
}

// TestEndSessionRedirectMustBeRegistered: a post_logout_redirect_uri that
// is not one of the app's, exactly, is never followed: the trusted
// request still signs out, and the browser stays on Doorman.
func TestEndSessionRedirectMustBeRegistered(t *testing.T) {
	a := newOIDCApp(t)
	grafana := a.newRealRP("grafana")
	for i, uri := range []func(wiki string) string{
		func(string) string { return "https://evil.example/" },
		func(wiki string) string { return wiki },
		func(wiki string) string { return wiki + "/?next=x" },
		func(wiki string) string { return wiki + "/other" },
		func(string) string { return grafana.srv.URL + "/" },
	} {
		// An app and a person each time: the logout tokens of one round
		// must not end the app sessions of the next.
		wiki := a.newRealRP(fmt.Sprintf("wiki%d", i))
		laptop := a.client(uaWindowsChrome, ipBerlin)
		email := fmt.Sprintf("alice%d@example.com", i)
		laptop.signup(email, "correct horse")
		sid := wiki.signIn(laptop)
		res := endSession(laptop, url.Values{"id_token_hint": {wiki.idToken(sid)}, "client_id": {wiki.clientID},
			"post_logout_redirect_uri": {uri(wiki.srv.URL)}, "state": {"x"}})
		expectRedirect(t, res, "/login")
		if ids := a.liveSessions(email); len(ids) != 0 {
			t.Errorf("%s: live sessions %v", uri(wiki.srv.URL), ids)
		}
		res = laptop.get("/login")
		expectBody(t, res, "You are signed out of Doorman.")
	}
}

// forge re-signs the claims of a real ID token with a key of its own,
// under Doorman's key id: a hint Doorman never signed.
func forge(t *testing.T, real string, change func(map[string]any)) string {
	t.Helper()
	parts := strings.Split(real, ".")
	payload, err := base64URLDecode(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	claims := map[string]any{}
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatal(err)
	}
	change(claims)
	payload, _ = json.Marshal(claims)
	var header struct {
		KID string `json:"kid"`
	}
	if err := json.Unmarshal([]byte(decodeJWTHeader(t, real)), &header); err != nil || header.KID == "" {
		t.Fatalf("ID token header: %v", err)
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: key, KeyID: header.KID}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := signer.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	out, err := sig.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestEndSessionUntrustedAsks: a hint signed with another key, one of
// another app's, one naming another session, and none at all: each shows
// the page that asks, and nothing ends until the person says "Sign out";
// then the session ends and the browser goes to the app's registered
// post-logout redirect URI.
func TestEndSessionUntrustedAsks(t *testing.T) {
	a := newOIDCApp(t)
	laptop := a.client(uaWindowsChrome, ipBerlin)
	laptop.signup("alice@example.com", "correct horse")
	phone := a.client(uaIPhone, ipLondon)
	phone.login("alice@example.com", "correct horse")
	wiki, grafana := a.newRealRP("wiki"), a.newRealRP("grafana")
	sid := wiki.signIn(laptop)
	grafana.signIn(laptop)
	phoneSID := wiki.signIn(phone)
	own := wiki.idToken(sid)
	back := wiki.srv.URL + "/"

	cases := []struct {
		name string
		q    url.Values
		// named: the request names the wiki in a way Doorman can check
		// (client_id); a forged hint alone names nobody.
		named bool
	}{
		{"forged (another key)", url.Values{"id_token_hint": {forge(t, own, func(map[string]any) {})}, "client_id": {"wiki"}}, true},
		{"forged, no client_id", url.Values{"id_token_hint": {forge(t, own, func(map[string]any) {})}}, false},
		{"forged, another audience", url.Values{"id_token_hint": {forge(t, own, func(c map[string]any) { c["aud"], c["azp"] = []string{"evil"}, "evil" })}}, false},
		{"another app's hint", url.Values{"id_token_hint": {grafana.idToken(sid)}, "client_id": {"wiki"}}, true},
		{"another session's hint", url.Values{"id_token_hint": {wiki.idToken(phoneSID)}, "client_id": {"wiki"}}, true},
		{"no hint", url.Values{"client_id": {"wiki"}}, true},
	}
	for _, tc := range cases {
		tc.q.Set("post_logout_redirect_uri", back)
		tc.q.Set("state", "s-1")
		res := endSession(laptop, tc.q)
		expectStatus(t, res, http.StatusOK)
		asker, formAction := "An app", "form-action 'self';"
		if tc.named {
			asker, formAction = "App wiki", "form-action 'self' "+wiki.srv.URL+";"
		}
		expectBody(t, res, asker+" asks to sign you out of Doorman on this device.", "Sign out of Doorman</button>", "Stay signed in", "alice@example.com")
		if got := res.Header.Get("Content-Security-Policy"); !strings.Contains(got, formAction) {
			t.Errorf("%s: want %s in %s", tc.name, formAction, got)
		}
		if res.Header.Get("Referrer-Policy") != "no-referrer" {
			t.Errorf("%s: the page (its URL may carry an ID token) sends a Referer", tc.name)
		}
		if ids := a.liveSessions("alice@example.com"); len(ids) != 2 {
			t.Fatalf("%s: live sessions %v: something ended before the person answered", tc.name, ids)
		}
	}
	if !grafana.signedIn(sid) {
		t.Fatal("the other app was signed out before the person answered")
	}

	// An app Doorman does not know: no name, and nowhere to go after.
	res := endSession(laptop, url.Values{"client_id": {"nobody"}, "post_logout_redirect_uri": {"https://evil.example/"}})
	expectStatus(t, res, http.StatusOK)
	expectBody(t, res, "An app asks to sign you out of Doorman on this device.")
	expectNoBody(t, res, "evil.example")

	// "Sign out" on the page asked for the wiki: its form, as it is.
	res = endSession(laptop, url.Values{"client_id": {"wiki"}, "post_logout_redirect_uri": {back}, "state": {"s-1"}})
	form := url.Values{}
	for _, m := range regexp.MustCompile(`<input type="hidden" name="([a-z_]+)" value="([^"]*)"`).FindAllStringSubmatch(res.body, -1) {
		form.Set(m[1], html.UnescapeString(m[2]))
	}
	if form.Get("session") != sid || form.Get("client_id") != "wiki" || form.Get("post_logout_redirect_uri") != back || form.Get("state") != "s-1" {
		t.Fatalf("the page's form: %v", form)
	}
	res = laptop.post("/oidc/end_session/confirm", form)
	expectRedirect(t, res, back+"?state=s-1")
	if ids := a.liveSessions("alice@example.com"); len(ids) != 1 {
		t.Fatalf("live sessions after Sign out: %v", ids)
	}
	grafana.waitLogout(subjectOf(t, a, "alice@example.com"), sid)
}

// TestEndSessionConfirmIsCheckedAgain: the confirm is refused from
// another site (CSRF) and changes nothing; one that names another session
// than the browser's shows the page again; a redirect URI not the app's
// is not followed.
func TestEndSessionConfirmIsCheckedAgain(t *testing.T) {
	a := newOIDCApp(t)
	laptop := a.client(uaWindowsChrome, ipBerlin)
	laptop.signup("alice@example.com", "correct horse")
	wiki := a.newRealRP("wiki")
	sid := wiki.signIn(laptop)
	endSession(laptop, url.Values{"client_id": {"wiki"}})
	before := a.dump()
	form := url.Values{"session": {sid}, "client_id": {"wiki"}, "post_logout_redirect_uri": {wiki.srv.URL + "/"}}
	for _, h := range [][]string{{"Origin", "https://evil.example"}, {"Sec-Fetch-Site", "cross-site"}} {
		res := laptop.post("/oidc/end_session/confirm", form, h...)
		expectStatus(t, res, http.StatusForbidden)
	}
	res := laptop.post("/oidc/end_session/confirm", url.Values{"session": {sid}, "csrf": {strings.Repeat("A", 43)}})
	expectStatus(t, res, http.StatusForbidden)
	if after := a.dump(); after != before {
		t.Fatalf("a refused confirm changed the database:\n%s\nvs\n%s", before, after)
	}

	res = laptop.post("/oidc/end_session/confirm", url.Values{"session": {"another-session"}, "client_id": {"wiki"}})
	if res.StatusCode != http.StatusSeeOther || !strings.HasPrefix(res.Header.Get("Location"), "/oidc/end_session?") {
		t.Fatalf("confirm for another session: %d %q, want the page again", res.StatusCode, res.Header.Get("Location"))
	}
	if len(a.liveSessions("alice@example.com")) != 1 {
		t.Fatal("a confirm for another session ended this one")
	}

	res = laptop.post("/oidc/end_session/confirm", url.Values{"session": {sid}, "client_id": {"wiki"}, "post_logout_redirect_uri": {"https://evil.example/"}})
	expectRedirect(t, res, "/login")
	if len(a.liveSessions("alice@example.com")) != 0 {
		t.Fatal("Sign out did not end the session")
	}
}

// TestEndSessionSignedOut: a browser signed out of Doorman has nothing to
// end: it goes on to the app's registered post-logout redirect URI (its
// hint may name a session that has ended), or to Doorman's signed-out
// page; never an error, never an unregistered URI.
func TestEndSessionSignedOut(t *testing.T) {
	a := newOIDCApp(t)
	laptop := a.client(uaWindowsChrome, ipBerlin)
	laptop.signup("alice@example.com", "correct horse")
	wiki := a.newRealRP("wiki")
	sid := wiki.signIn(laptop)
	hint := wiki.idToken(sid)
	expectRedirect(t, laptop.post("/logout", nil), "/login")

	back := wiki.srv.URL + "/"
	expectRedirect(t, endSession(laptop, url.Values{"id_token_hint": {hint}, "post_logout_redirect_uri": {back}, "state": {"s"}}), back+"?state=s")
	expectRedirect(t, endSession(laptop, url.Values{"client_id": {"wiki"}, "post_logout_redirect_uri": {back}}), back)
	expectRedirect(t, endSession(laptop, url.Values{"client_id": {"wiki"}, "post_logout_redirect_uri": {"https://evil.example/"}}), "/login")
	expectRedirect(t, endSession(laptop, url.Values{"client_id": {"nobody"}, "post_logout_redirect_uri": {back}}), "/login")
	expectRedirect(t, endSession(laptop, url.Values{"id_token_hint": {"not-a-jwt"}, "post_logout_redirect_uri": {back}}), "/login")
	expectRedirect(t, endSession(laptop, nil), "/login")
	stranger := a.client(uaIPhone, ipLondon)
	expectRedirect(t, stranger.post("/oidc/end_session/confirm", url.Values{"session": {sid}, "client_id": {"wiki"}, "post_logout_redirect_uri": {back}}), back)
	if faults := serverFaults(a.logs.String()); len(faults) > 0 {
		t.Errorf("server faults: %v", faults)
	}
}
