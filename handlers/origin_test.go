package handlers_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"doorman/apptest"
)

// TestDeviceFlowURLsIgnoreAForgedHost: with a public origin configured
// (-base-url), the OAuth metadata's endpoints and the device flow's
// verification_uri start with it, whatever Host header the request carries.
func TestDeviceFlowURLsIgnoreAForgedHost(t *testing.T) {
	app := newTestAppWith(t, apptest.Options{BaseURL: "https://id.example.com"})
	clientID := registerApp(t, app, "Doorman CLI")
	send := func(method, path string, form url.Values) map[string]any {
		t.Helper()
		req, err := http.NewRequest(method, app.srv.URL+path, strings.NewReader(form.Encode()))
		if err != nil {
			t.Fatal(err)
		}
		req.Host = "evil.example"
		req.Header.Set("X-Forwarded-Proto", "http")
		if form != nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var out map[string]any
		if err := json.NewDecoder(res.Body).Decode(&out); err != nil || res.StatusCode != http.StatusOK {
			t.Fatalf("%s %s: %d %v", method, path, res.StatusCode, err)
		}
		return out
	}
	md := send(http.MethodGet, "/.well-known/oauth-authorization-server", nil)
	for key, want := range map[string]string{
		"issuer":                        "https://id.example.com",
		"device_authorization_endpoint": "https://id.example.com/oauth/device_authorization",
		"token_endpoint":                "https://id.example.com/oauth/token",
	} {
		if md[key] != want {
			t.Errorf("metadata %s = %v, want %s", key, md[key], want)
		}
	}
	da := send(http.MethodPost, "/oauth/device_authorization", url.Values{"client_id": {clientID}})
	if da["verification_uri"] != "https://id.example.com/device" {
		t.Errorf("verification_uri = %v", da["verification_uri"])
	}
	if v, _ := da["verification_uri_complete"].(string); !strings.HasPrefix(v, "https://id.example.com/device?code=") {
		t.Errorf("verification_uri_complete = %v", da["verification_uri_complete"])
	}
}
