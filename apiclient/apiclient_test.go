package apiclient

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestLoginSaysTheCodeExpired: x/oauth2 stops polling at the expiry the
// server announced, usually before the server could answer expired_token;
// login still says the code expired and what to do, not "context deadline
// exceeded". The server here is a stand-in that keeps the code pending
// and lets it live one second.
func TestLoginSaysTheCodeExpired(t *testing.T) {
	mux := http.NewServeMux()
	var srv *httptest.Server
	answer := func(w http.ResponseWriter, status int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		if err := json.NewEncoder(w).Encode(v); err != nil {
			t.Error(err)
		}
	}
	mux.HandleFunc("GET /.well-known/oauth-authorization-server", func(w http.ResponseWriter, r *http.Request) {
		answer(w, http.StatusOK, map[string]string{"device_authorization_endpoint": srv.URL + "/da", "token_endpoint": srv.URL + "/token"})
	})
	mux.HandleFunc("POST /da", func(w http.ResponseWriter, r *http.Request) {
		answer(w, http.StatusOK, map[string]any{"device_code": "dc", "user_code": "BCDF-GHJK", "verification_uri": srv.URL + "/device",
			"verification_uri_complete": srv.URL + "/device?code=BCDF-GHJK", "expires_in": 1, "interval": 1})
	})
	mux.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
		answer(w, http.StatusBadRequest, map[string]string{"error": "authorization_pending"})
	})
	srv = httptest.NewServer(mux)
	defer srv.Close()
	dir := t.TempDir()
	env := func(k string) string {
		if k == "DOORMAN_CONFIG_DIR" {
			return dir
		}
		return ""
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	err := Run(ctx, []string{"login", "--server", srv.URL, "--client-id", "app_x"}, env, io.Discard, nil)
	if err == nil || !strings.HasPrefix(err.Error(), "login: the code expired at ") || !strings.HasSuffix(err.Error(), " before it was approved: run `doorman login` again for a new one") {
		t.Fatalf("login: %v", err)
	}
}
