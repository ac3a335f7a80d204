package handlers_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// oauthPost posts form to one of the provider's endpoints as an app's
// server, authenticated with client_secret_basic when clientID is set.
func (rp *relyingParty) oauthPost(endpoint, clientID, secret string, form url.Values) (int, map[string]any) {
	rp.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if clientID != "" {
		req.SetBasicAuth(clientID, secret)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		rp.t.Fatal(err)
	}
	defer res.Body.Close()
	var out map[string]any
	json.NewDecoder(res.Body).Decode(&out)
	return res.StatusCode, out
}

// endpoints reads the revocation and introspection endpoints off discovery.
func (rp *relyingParty) endpoints() (revocation, introspection string) {
	rp.t.Helper()
	var doc struct {
		Revocation    string `json:"revocation_endpoint"`
		Introspection string `json:"introspection_endpoint"`
	}
	if err := rp.provider.Claims(&doc); err != nil {
		rp.t.Fatal(err)
	}
	if doc.Revocation == "" || doc.Introspection == "" {
		rp.t.Fatalf("discovery lacks revocation or introspection: %+v", doc)
	}
	return doc.Revocation, doc.Introspection
}

// TestOIDCRevocationAndIntrospection: RFC 7009 revocation ends the
// refresh token the app sends (and nothing of another app's); a wrong
// secret or no client is refused and revokes nothing; introspection
// answers only a confidential client with its secret; userinfo wants a
// live access token.
func TestOIDCRevocationAndIntrospection(t *testing.T) {
	a := newOIDCApp(t)
	browser := a.client(uaWindowsChrome, ipBerlin)
	browser.signup("alice@example.com", "correct horse")
	wiki := a.newRelyingParty("wiki", false, true)
	other := a.newRelyingParty("other", false, true)
	a.newRelyingParty("spa", true, true) // public: no secret to introspect with
	revoke, introspect := wiki.endpoints()
	tok, err := wiki.exchange(wiki.signIn(browser))
	if err != nil {
		t.Fatal(err)
	}

	// Refused: no client, a wrong secret, another app's credentials. The
	// token lives on after each.
	for _, c := range []struct{ id, secret string }{{"", ""}, {"wiki", "not-the-secret"}, {"nope", rpSecret}} {
		status, body := wiki.oauthPost(revoke, c.id, c.secret, url.Values{"token": {tok.RefreshToken}, "token_type_hint": {"refresh_token"}})
		if status != http.StatusUnauthorized && status != http.StatusBadRequest {
			t.Errorf("revoke as %q/%q: %d %v, want 400 or 401", c.id, c.secret, status, body)
		}
	}
	// Another app may not revoke wiki's token: whatever it is told, the
	// token lives.
	other.oauthPost(revoke, "other", rpSecret, url.Values{"token": {tok.RefreshToken}})
	if in := wiki.introspect(tok.AccessToken); in["active"] != true {
		t.Fatalf("after refused revocations the access token is %v", in)
	}

	// Introspection: only a confidential client, with its secret.
	for _, c := range []struct{ id, secret string }{{"", ""}, {"wiki", "not-the-secret"}, {"spa", ""}} {
		status, body := wiki.oauthPost(introspect, c.id, c.secret, url.Values{"token": {tok.AccessToken}})
		if status == http.StatusOK && body["active"] == true {
			t.Errorf("introspection as %q/%q told it the token is active: %v", c.id, c.secret, body)
		}
	}
	if in := wiki.introspect("not-a-token"); in["active"] != false {
		t.Errorf("introspection of garbage: %v", in)
	}
	// Userinfo: no token, a made-up one.
	for _, bearer := range []string{"", "not-a-token"} {
		if status, _ := wiki.userinfo(bearer); status != http.StatusUnauthorized && status != http.StatusBadRequest {
			t.Errorf("userinfo with %q: %d", bearer, status)
		}
	}

	// Revoked by its app: the refresh token is dead, and an unknown token
	// is answered 200 as RFC 7009 says (nothing to tell an attacker).
	// The refresh token lived through the refused revocations.
	tok, err = wiki.refresh(tok.RefreshToken)
	if err != nil {
		t.Fatalf("refresh after refused revocations: %v", err)
	}
	if status, body := wiki.oauthPost(revoke, "wiki", rpSecret, url.Values{"token": {tok.RefreshToken}, "token_type_hint": {"refresh_token"}}); status != http.StatusOK {
		t.Fatalf("revoke: %d %v", status, body)
	}
	_, err = wiki.refresh(tok.RefreshToken)
	expectInvalidGrant(t, err)
	if status, body := wiki.oauthPost(revoke, "wiki", rpSecret, url.Values{"token": {"not-a-token"}}); status != http.StatusOK {
		t.Errorf("revoke an unknown token: %d %v", status, body)
	}
}
