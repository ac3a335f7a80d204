package handlers_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"doorman/apiclient"
	"doorman/apptest"
)

// pollRecorder is an http.RoundTripper that notes, for each token-endpoint
// request a client sends, whether it used HTTP Basic and what the server
// answered; rounds is signalled after every answered slow_down (the end of
// one x/oauth2 auto-detect round while the code is pending).
type pollRecorder struct {
	mu     sync.Mutex
	polls  []recordedPoll
	rounds chan struct{}
}

type recordedPoll struct {
	basic  bool
	answer string // the error code, or "token"
}

func (p *pollRecorder) RoundTrip(r *http.Request) (*http.Response, error) {
	res, err := http.DefaultTransport.RoundTrip(r)
	if err != nil || !strings.HasSuffix(r.URL.Path, "/oauth/token") {
		return res, err
	}
	body, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil {
		return nil, err
	}
	res.Body = io.NopCloser(bytes.NewReader(body))
	var out struct {
		Error string `json:"error"`
	}
	if err := json.Unmarshal(body, &out); err != nil {
		return nil, fmt.Errorf("the token endpoint's answer is not JSON: %w", err)
	}
	answer := out.Error
	if answer == "" {
		answer = "token"
	}
	_, _, basic := r.BasicAuth()
	p.mu.Lock()
	p.polls = append(p.polls, recordedPoll{basic, answer})
	p.mu.Unlock()
	if answer == "slow_down" {
		select {
		case p.rounds <- struct{}{}:
		default:
		}
	}
	return res, nil
}

func (p *pollRecorder) list() []recordedPoll {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]recordedPoll(nil), p.polls...)
}

// TestStandardClientLearnsTheOutcome: golang.org/x/oauth2's
// DeviceAccessToken, unmodified and with its default auth style (auto
// detection: each poll is sent with HTTP Basic, then, if that got an error,
// again with the client_id in the body). While the code is pending, the
// second of each pair is too fast (slow_down); once the person denies, or
// the code expires, the client must be told so and stop, not be kept
// polling with slow_down until the code expires (review issue 21, bug 2).
// An approval still gives the token.
func TestStandardClientLearnsTheOutcome(t *testing.T) {
	for _, outcome := range []string{"access_denied", "expired_token", "token"} {
		t.Run(outcome, func(t *testing.T) {
			t.Parallel()
			app := newTestAppWith(t, apptest.Options{Clock: apptest.NewRunningClock()})
			clientID := registerApp(t, app, "Doorman CLI")
			alice := app.client(uaWindowsChrome, ipBerlin)
			alice.signup("alice@example.com", pw)

			rec := &pollRecorder{rounds: make(chan struct{}, 1)}
			// Generous: the client polls every 5 s, then 10 s; the answer
			// is awaited, never timed.
			ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
			defer cancel()
			ctx = context.WithValue(ctx, oauth2.HTTPClient, &http.Client{Transport: rec})
			conf := &oauth2.Config{ClientID: clientID, Scopes: []string{"sessions:read"},
				Endpoint: oauth2.Endpoint{DeviceAuthURL: app.srv.URL + "/oauth/device_authorization", TokenURL: app.srv.URL + "/oauth/token"}}
			if conf.Endpoint.AuthStyle != oauth2.AuthStyleAutoDetect {
				t.Fatal("the test must use the default auth style")
			}
			da, err := conf.DeviceAuth(ctx)
			if err != nil {
				t.Fatal(err)
			}
			type result struct {
				tok *oauth2.Token
				err error
			}
			done := make(chan result, 1)
			go func() {
				tok, err := conf.DeviceAccessToken(ctx, da)
				done <- result{tok, err}
			}()

			// One whole round while pending: Basic first (a real poll),
			// then the retry, too fast.
			select {
			case <-rec.rounds:
			case r := <-done:
				t.Fatalf("the client finished while the code was pending: %v %v", r.tok, r.err)
			case <-ctx.Done():
				t.Fatal("no poll")
			}
			if p := rec.list(); len(p) != 2 || !p[0].basic || p[0].answer != "authorization_pending" || p[1].basic || p[1].answer != "slow_down" {
				t.Fatalf("the first round: %+v, want a Basic poll answered authorization_pending, then one without, slow_down", p)
			}

			switch outcome {
			case "access_denied":
				expectRedirect(t, alice.post("/device/deny", url.Values{"code": {da.UserCode}}), "/settings/security")
			case "expired_token":
				app.advance(10*time.Minute + time.Second)
			case "token":
				expectRedirect(t, alice.post("/device/approve", url.Values{"code": {da.UserCode}, "password": {pw}}), "/settings/security")
			}
			var r result
			select {
			case r = <-done:
			case <-ctx.Done():
				t.Fatalf("the client never learned the outcome (%s); it was answered: %+v", outcome, rec.list())
			}
			if outcome == "token" {
				if r.err != nil || r.tok == nil || !strings.HasPrefix(r.tok.AccessToken, "doorman_app_") {
					t.Fatalf("DeviceAccessToken: %v %v", r.tok, r.err)
				}
				if resp, _ := app.apiClient(t, r.tok.AccessToken).call("GET", "/api/v1/me"); resp.StatusCode != http.StatusOK {
					t.Fatalf("the token: %d", resp.StatusCode)
				}
			} else {
				var re *oauth2.RetrieveError
				if !errors.As(r.err, &re) || re.ErrorCode != outcome {
					t.Fatalf("DeviceAccessToken: %v, want the server's %s", r.err, outcome)
				}
			}
			// The outcome was the answer to the first round after the
			// change: to the Basic request, and (for an error, which makes
			// the client try again) to its retry too.
			p := rec.list()
			want := []recordedPoll{{true, outcome}, {false, outcome}}
			if outcome == "token" {
				want = want[:1]
			}
			i := slices.IndexFunc(p, func(r recordedPoll) bool { return r.answer == outcome })
			if i < 2 || !slices.Equal(p[i:], want) {
				t.Fatalf("polls %+v: after the pending rounds, want %+v", p, want)
			}
			for _, r := range p[:i] {
				if r.answer != "authorization_pending" && r.answer != "slow_down" {
					t.Fatalf("polls %+v: before the outcome, only pending and slow_down", p)
				}
			}
			if strings.Contains(app.logs.String(), "status=500") {
				t.Fatal("a 500")
			}
		})
	}
}

// TestTokenEndpointTakesClientIDInBasic: RFC 6749 §2.3.1's HTTP Basic, with
// the client_id as the user name and an empty password, identifies the
// (public) client on both device-flow endpoints, as the client_id in the
// body does. A password, a different client_id in the body or a broken
// header is refused before anything is looked up, and counts as no poll.
// A denied or used code is answered so even to a poll that comes too soon.
func TestTokenEndpointTakesClientIDInBasic(t *testing.T) {
	app := newTestAppWith(t, apptest.Options{Clock: apptest.NewRunningClock()})
	clientID := registerApp(t, app, "Doorman CLI")
	other := registerApp(t, app, "Other tool")
	alice := app.client(uaWindowsChrome, ipBerlin)
	alice.signup("alice@example.com", pw)
	post := func(path string, form url.Values, user, password string, auth string) (int, map[string]any, http.Header) {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, app.srv.URL+path, strings.NewReader(form.Encode()))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		switch {
		case auth != "":
			req.Header.Set("Authorization", auth)
		case user != "":
			req.SetBasicAuth(url.QueryEscape(user), password)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		body, err := io.ReadAll(res.Body)
		if err != nil {
			t.Fatal(err)
		}
		var out map[string]any
		if err := json.Unmarshal(body, &out); err != nil {
			t.Fatalf("%s: not JSON (%d): %s", path, res.StatusCode, body)
		}
		return res.StatusCode, out, res.Header
	}
	grant := "urn:ietf:params:oauth:grant-type:device_code"

	// The device authorization with Basic only.
	status, da, _ := post("/oauth/device_authorization", url.Values{"scope": {"sessions:read"}}, clientID, "", "")
	if status != http.StatusOK || da["device_code"] == nil {
		t.Fatalf("device authorization with Basic: %d %v", status, da)
	}
	code, user := da["device_code"].(string), da["user_code"].(string)

	// Refused before the lookup: nothing of these counts as a poll.
	for _, c := range []struct {
		name, user, password, auth, bodyID string
		status                             int
		want                               string
	}{
		{"a client secret", clientID, "secret", "", "", http.StatusUnauthorized, "invalid_client"},
		{"two different client ids", clientID, "", "", other, http.StatusBadRequest, "invalid_request"},
		{"a Bearer header", "", "", "Bearer abc", "", http.StatusUnauthorized, "invalid_client"},
		{"a broken Basic header", "", "", "Basic !!!", "", http.StatusUnauthorized, "invalid_client"},
	} {
		form := url.Values{"grant_type": {grant}, "device_code": {code}}
		if c.bodyID != "" {
			form.Set("client_id", c.bodyID)
		}
		status, out, h := post("/oauth/token", form, c.user, c.password, c.auth)
		if status != c.status || out["error"] != c.want {
			t.Fatalf("%s: %d %v, want %d %s", c.name, status, out, c.status, c.want)
		}
		if status == http.StatusUnauthorized && !strings.HasPrefix(h.Get("WWW-Authenticate"), "Basic ") {
			t.Fatalf("%s: WWW-Authenticate %q", c.name, h.Get("WWW-Authenticate"))
		}
	}
	// Basic only: a real poll (the first, so not too fast). Another
	// client's id in Basic does not fit this code.
	if status, out, _ := post("/oauth/token", url.Values{"grant_type": {grant}, "device_code": {code}}, clientID, "", ""); status != http.StatusBadRequest || out["error"] != "authorization_pending" {
		t.Fatalf("a poll with Basic only: %d %v", status, out)
	}
	if _, out, _ := post("/oauth/token", url.Values{"grant_type": {grant}, "device_code": {code}}, other, "", ""); out["error"] != "invalid_grant" {
		t.Fatalf("another client's Basic: %v", out)
	}
	// Basic and the same id in the body, at once: too fast.
	if _, out, _ := post("/oauth/token", url.Values{"grant_type": {grant}, "device_code": {code}, "client_id": {clientID}}, clientID, "", ""); out["error"] != "slow_down" {
		t.Fatalf("a poll at once: %v", out)
	}
	// Approved: the next poll in time gets the token; one right after it
	// is told the code was used, not to slow down.
	expectRedirect(t, alice.post("/device/approve", url.Values{"code": {user}, "password": {pw}}), "/settings/security")
	app.advance(time.Minute)
	if status, out, _ := post("/oauth/token", url.Values{"grant_type": {grant}, "device_code": {code}}, clientID, "", ""); status != http.StatusOK {
		t.Fatalf("redeem with Basic: %d %v", status, out)
	}
	if _, out, _ := post("/oauth/token", url.Values{"grant_type": {grant}, "device_code": {code}, "client_id": {clientID}}, "", "", ""); out["error"] != "invalid_grant" {
		t.Fatalf("a used code polled at once: %v", out)
	}
	// Denied: every poll says so, however soon.
	_, da, _ = post("/oauth/device_authorization", url.Values{}, clientID, "", "")
	code, user = da["device_code"].(string), da["user_code"].(string)
	expectRedirect(t, alice.post("/device/deny", url.Values{"code": {user}}), "/settings/security")
	for range 3 {
		if _, out, _ := post("/oauth/token", url.Values{"grant_type": {grant}, "device_code": {code}, "client_id": {clientID}}, clientID, "", ""); out["error"] != "access_denied" {
			t.Fatalf("a denied code polled again at once: %v", out)
		}
	}
	if strings.Contains(app.logs.String(), "status=500") {
		t.Fatal("a 500")
	}
}

// TestCommandLineLoginDeniedOrExpired: `doorman login` (the binary's own
// client) ends with a message saying what happened and what to do when
// the person denies the request or the code expires, not with an OAuth
// error code.
func TestCommandLineLoginDeniedOrExpired(t *testing.T) {
	for _, c := range []struct{ outcome, want string }{
		{"denied", "You denied the sign-in in the browser; nothing was saved."},
		{"expired", "The code expired before it was approved; nothing was saved. Run `doorman login` again for a new one."},
	} {
		t.Run(c.outcome, func(t *testing.T) {
			t.Parallel()
			app := newTestAppWith(t, apptest.Options{Clock: apptest.NewRunningClock()})
			clientID := registerApp(t, app, "Doorman CLI")
			alice := app.client(uaWindowsChrome, ipBerlin)
			alice.signup("alice@example.com", pw)
			dir := t.TempDir()
			env := func(k string) string {
				if k == "DOORMAN_CONFIG_DIR" {
					return dir
				}
				return ""
			}
			out, w := io.Pipe()
			done := make(chan error, 1)
			go func() {
				done <- apiclient.Run(context.Background(), []string{"login", "--server", app.srv.URL, "--client-id", clientID}, env, w, nil)
				w.Close()
			}()
			var shown strings.Builder
			buf := make([]byte, 4096)
			var code string
			for code == "" {
				n, err := out.Read(buf)
				if err != nil {
					t.Fatalf("login printed no code: %v\n%s", err, shown.String())
				}
				shown.Write(buf[:n])
				if m := regexp.MustCompile(`enter the code ([A-Z]{4}-[A-Z]{4})`).FindStringSubmatch(shown.String()); m != nil {
					code = m[1]
				}
			}
			go io.Copy(io.Discard, out)
			if c.outcome == "denied" {
				expectRedirect(t, alice.post("/device/deny", url.Values{"code": {code}}), "/settings/security")
			} else {
				app.advance(10*time.Minute + time.Second)
			}
			select {
			case err := <-done:
				if err == nil || err.Error() != c.want {
					t.Fatalf("login: %v, want %q", err, c.want)
				}
			case <-time.After(90 * time.Second):
				t.Fatal("login did not finish")
			}
			if _, err := os.Stat(filepath.Join(dir, "credentials.json")); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("a credentials file: %v", err)
			}
		})
	}
}
