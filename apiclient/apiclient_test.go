package apiclient

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
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
	if err == nil || !regexp.MustCompile("^The code expired at [0-9]{1,2} [A-Z][a-z]{2} [0-9]{4}, [0-9]{2}:[0-9]{2} UTC before it was approved; nothing was saved. Run `doorman login` again for a new one.$").MatchString(err.Error()) {
		t.Fatalf("login: %v", err)
	}
}

// TestLoginSaysWhyInWords: each refusal the server can answer, at the
// start (no code given) or while waiting (the person's answer), is told as
// a sentence saying what happened and what to do, not as `oauth2:
// "access_denied" …`; nothing is saved. The answers are the server's own
// (handlers/device.go; TestCommandLineLoginDenied runs the real one).
func TestLoginSaysWhyInWords(t *testing.T) {
	for _, c := range []struct {
		name   string
		start  bool // refused at the device authorization, not the token
		status int
		code   string
		desc   string
		want   string
	}{
		{"denied", false, 400, "access_denied", "The request was denied.", "You denied the sign-in in the browser; nothing was saved."},
		{"withdrawn", false, 400, "access_denied", "The approval was withdrawn: the account was reset since. Start again.",
			"Your approval was withdrawn: the account was reset after it (a password change or \"Sign out everywhere\"); nothing was saved. Run `doorman login` again to start over."},
		{"expired", false, 400, "expired_token", "The code expired. Start again.", "The code expired before it was approved; nothing was saved. Run `doorman login` again for a new one."},
		{"used", false, 400, "invalid_grant", "This code was already used.", "The server no longer knows this code (it was already used, or the app was removed); nothing was saved. Run `doorman login` again."},
		{"unknown client", true, 401, "invalid_client", "Unknown client_id.", "The server does not know the client id \"app_x\". Register this tool on the server with `doorman apps add --name \"Doorman CLI\"` and use the client_id it prints."},
		{"too many", true, 429, "slow_down", "Too many requests from this address.", "The server is refusing sign-ins from this address for a while (too many requests). Try again in a minute."},
		{"other", false, 400, "server_error", "Something broke.", "The server refused the sign-in (server_error): Something broke."},
	} {
		t.Run(c.name, func(t *testing.T) {
			mux := http.NewServeMux()
			var srv *httptest.Server
			answer := func(w http.ResponseWriter, status int, v any) {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(status)
				if err := json.NewEncoder(w).Encode(v); err != nil {
					t.Error(err)
				}
			}
			refusal := map[string]string{"error": c.code, "error_description": c.desc}
			mux.HandleFunc("GET /.well-known/oauth-authorization-server", func(w http.ResponseWriter, r *http.Request) {
				answer(w, http.StatusOK, map[string]string{"device_authorization_endpoint": srv.URL + "/da", "token_endpoint": srv.URL + "/token"})
			})
			mux.HandleFunc("POST /da", func(w http.ResponseWriter, r *http.Request) {
				if c.start {
					answer(w, c.status, refusal)
					return
				}
				answer(w, http.StatusOK, map[string]any{"device_code": "dc", "user_code": "BCDF-GHJK", "verification_uri": srv.URL + "/device",
					"verification_uri_complete": srv.URL + "/device?code=BCDF-GHJK", "expires_in": 600, "interval": 1})
			})
			mux.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) { answer(w, c.status, refusal) })
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
			if err == nil || err.Error() != c.want {
				t.Fatalf("login: %v\nwant: %s", err, c.want)
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 0 {
				t.Fatalf("saved %v", entries)
			}
		})
	}
}
