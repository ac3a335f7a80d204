package handlers_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"doorman/apitoken"
)

// TestTokenPrefixMustMatchItsKind: a token is refused like a bad one (401
// invalid_token) when its prefix names the other kind: a personal token's
// id and secret under doorman_app_, an app's under doorman_pat_.
func TestTokenPrefixMustMatchItsKind(t *testing.T) {
	app := newTestApp(t)
	alice := app.client(uaWindowsChrome, ipBerlin)
	alice.signup("alice@example.com", pw)
	personal := alice.createToken("script", "7", "sessions:read")

	clientID := registerApp(t, app, "Doorman CLI")
	_, da := oauthPost(t, app, "/oauth/device_authorization", url.Values{"client_id": {clientID}})
	expectRedirect(t, alice.post("/device/approve", url.Values{"code": {da["user_code"].(string)}, "password": {pw}}), "/settings/security")
	_, tok := oauthPost(t, app, "/oauth/token", url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:device_code"}, "device_code": {da["device_code"].(string)}, "client_id": {clientID}})
	appToken, _ := tok["access_token"].(string)
	if !strings.HasPrefix(personal, apitoken.PersonalPrefix) || !strings.HasPrefix(appToken, apitoken.AppPrefix) {
		t.Fatalf("tokens %q, %q", personal, appToken)
	}
	for _, good := range []string{personal, appToken} {
		if res, _ := app.apiClient(t, good).call("GET", "/api/v1/me"); res.StatusCode != http.StatusOK {
			t.Fatalf("the token as issued: %d", res.StatusCode)
		}
	}
	for name, swapped := range map[string]string{
		"a personal token as an app's": apitoken.AppPrefix + strings.TrimPrefix(personal, apitoken.PersonalPrefix),
		"an app's token as a personal": apitoken.PersonalPrefix + strings.TrimPrefix(appToken, apitoken.AppPrefix),
	} {
		res, body := app.apiClient(t, swapped).call("GET", "/api/v1/me")
		if res.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s: %d, want 401", name, res.StatusCode)
			continue
		}
		expectProblem(t, res, body, http.StatusUnauthorized, "invalid_token")
	}
}
