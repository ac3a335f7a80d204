package handlers_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"doorman/apiclient"
	"doorman/apptest"
	"doorman/db"
	"doorman/handlers"
	"doorman/operator"
)

// oauthPost is a raw token-endpoint (or device-authorization) request, as
// a client library would send it; it returns the status and the JSON.
func oauthPost(t *testing.T, app *testApp, path string, form url.Values) (int, map[string]any) {
	t.Helper()
	res, err := http.PostForm(app.srv.URL+path, form)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	var out map[string]any
	if err := json.Unmarshal(body, &out); err != nil {
		t.Fatalf("%s: not JSON (%d): %s", path, res.StatusCode, body)
	}
	if res.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("%s: Cache-Control %q", path, res.Header.Get("Cache-Control"))
	}
	return res.StatusCode, out
}

func registerApp(t *testing.T, app *testApp, name string) string {
	t.Helper()
	id := "app_" + strings.ToLower(strings.ReplaceAll(name, " ", ""))
	if err := app.store.CreateApp(context.Background(), db.App{ClientID: id, Name: name, CreatedAt: app.clock()}); err != nil {
		t.Fatal(err)
	}
	return id
}

// TestDeviceFlowWithAStandardClient: golang.org/x/oauth2's DeviceAuth and
// DeviceAccessToken, unmodified, against the server; the person approves
// in a browser; the token works on the API; the app shows in the
// inventory and its trash icon ends it.
func TestDeviceFlowWithAStandardClient(t *testing.T) {
	app := newTestAppWith(t, apptest.Options{Clock: apptest.NewRunningClock()})
	clientID := registerApp(t, app, "Doorman CLI")
	alice := app.client(uaWindowsChrome, ipBerlin)
	alice.signup("alice@example.com", pw)

	res, err := http.Get(app.srv.URL + "/.well-known/oauth-authorization-server")
	if err != nil {
		t.Fatal(err)
	}
	var md map[string]any
	json.NewDecoder(res.Body).Decode(&md)
	res.Body.Close()
	if md["device_authorization_endpoint"] != app.srv.URL+"/oauth/device_authorization" || md["token_endpoint"] != app.srv.URL+"/oauth/token" ||
		!strings.Contains(strings.Join(toStrings(md["grant_types_supported"]), " "), "urn:ietf:params:oauth:grant-type:device_code") ||
		strings.Join(toStrings(md["scopes_supported"]), " ") != "sessions:read sessions:write" {
		t.Fatalf("metadata %v", md)
	}

	conf := &oauth2.Config{ClientID: clientID, Scopes: []string{"sessions:read"},
		Endpoint: oauth2.Endpoint{DeviceAuthURL: md["device_authorization_endpoint"].(string), TokenURL: md["token_endpoint"].(string), AuthStyle: oauth2.AuthStyleInParams}}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	da, err := conf.DeviceAuth(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}$`).MatchString(da.UserCode) ||
		da.VerificationURI != app.srv.URL+"/device" || da.VerificationURIComplete != da.VerificationURI+"?code="+da.UserCode ||
		da.Interval != 5 || time.Until(da.Expiry) > 15*time.Minute {
		t.Fatalf("device authorization %+v", da)
	}
	got := make(chan *oauth2.Token, 1)
	failed := make(chan error, 1)
	go func() {
		tok, err := conf.DeviceAccessToken(ctx, da)
		if err != nil {
			failed <- err
			return
		}
		got <- tok
	}()

	// The person: the link pre-fills the code; a wrong one is refused.
	expectBody(t, alice.get("/device?code="+da.UserCode), `value="`+da.UserCode+`"`)
	res2 := alice.post("/device", url.Values{"code": {"BBBB-BBBB"}})
	expectStatus(t, res2, http.StatusUnprocessableEntity)
	expectBody(t, res2, "That code isn")
	page := alice.post("/device", url.Values{"code": {strings.ToLower(da.UserCode)}})
	expectStatus(t, page, http.StatusOK)
	expectBody(t, page, "Connect Doorman CLI?", "See where you", "Only approve if you started this yourself", "Requested from")
	expectNoBody(t, page, "Sign your sessions out") // only the scope it asked for
	expectRedirect(t, alice.post("/device/approve", url.Values{"code": {da.UserCode}, "password": {pw}}), "/settings/security")

	var tok *oauth2.Token
	select {
	case tok = <-got:
	case err := <-failed:
		t.Fatalf("DeviceAccessToken: %v", err)
	case <-ctx.Done():
		t.Fatal("no token within 60 s of the approval")
	}
	if !strings.HasPrefix(tok.AccessToken, "doorman_app_") || tok.TokenType != "Bearer" || tok.Extra("scope") != "sessions:read" || tok.Expiry.IsZero() {
		t.Fatalf("token %+v scope %v", tok, tok.Extra("scope"))
	}
	api := app.apiClient(t, tok.AccessToken)
	resp, body := api.call("GET", "/api/v1/me")
	if resp.StatusCode != http.StatusOK || body["credential"].(map[string]any)["type"] != "app" || body["credential"].(map[string]any)["name"] != "Doorman CLI" {
		t.Fatalf("me as the app: %d %v", resp.StatusCode, body)
	}
	if resp, _ := api.call("GET", "/api/v1/sessions"); resp.StatusCode != http.StatusOK {
		t.Fatalf("sessions as the app: %d", resp.StatusCode)
	}

	// In the inventory, with a trash icon that disconnects it.
	sec := alice.get("/settings/security")
	expectBody(t, sec, "Connected apps", "Doorman CLI", `aria-label="Disconnect Doorman CLI"`)
	m := regexp.MustCompile(`data-token-id="([a-z2-7]{16})"`).FindStringSubmatch(sec.body)
	if m == nil {
		t.Fatal("the app is not in the inventory")
	}
	expectRedirect(t, alice.post("/settings/security/tokens/"+m[1]+"/revoke", nil), "/settings/security")
	resp, body = api.call("GET", "/api/v1/me")
	expectProblem(t, resp, body, http.StatusUnauthorized, "invalid_token")
	expectNoBody(t, alice.get("/settings/security"), `aria-label="Disconnect Doorman CLI"`)
}

func toStrings(v any) []string {
	var out []string
	for _, x := range v.([]any) {
		out = append(out, x.(string))
	}
	return out
}

// TestDeviceFlowErrors: the token endpoint answers exactly as RFC 8628
// §3.5 says, each device code is redeemed once, and bad requests change
// nothing.
func TestDeviceFlowErrors(t *testing.T) {
	app := newTestAppWith(t, apptest.Options{Clock: apptest.NewRunningClock()})
	clientID := registerApp(t, app, "Doorman CLI")
	alice := app.client(uaWindowsChrome, ipBerlin)
	alice.signup("alice@example.com", pw)
	start := func(scope string) (string, string) {
		t.Helper()
		status, out := oauthPost(t, app, "/oauth/device_authorization", url.Values{"client_id": {clientID}, "scope": {scope}})
		if status != http.StatusOK {
			t.Fatalf("device authorization: %d %v", status, out)
		}
		return out["device_code"].(string), out["user_code"].(string)
	}
	poll := func(deviceCode string) (int, string) {
		t.Helper()
		status, out := oauthPost(t, app, "/oauth/token", url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:device_code"}, "device_code": {deviceCode}, "client_id": {clientID}})
		e, _ := out["error"].(string)
		return status, e
	}

	if status, out := oauthPost(t, app, "/oauth/device_authorization", url.Values{"client_id": {"nobody"}}); status != http.StatusUnauthorized || out["error"] != "invalid_client" {
		t.Fatalf("unknown client: %d %v", status, out)
	}
	if status, out := oauthPost(t, app, "/oauth/device_authorization", url.Values{"client_id": {clientID}, "scope": {"admin"}}); status != http.StatusBadRequest || out["error"] != "invalid_scope" {
		t.Fatalf("unknown scope: %d %v", status, out)
	}
	if status, out := oauthPost(t, app, "/oauth/token", url.Values{"grant_type": {"password"}}); status != http.StatusBadRequest || out["error"] != "unsupported_grant_type" {
		t.Fatalf("grant type: %d %v", status, out)
	}
	if _, e := poll("not-a-code"); e != "invalid_grant" {
		t.Fatalf("unknown device code: %q", e)
	}

	code, user := start("")
	if _, e := poll(code); e != "authorization_pending" {
		t.Fatalf("first poll: %q", e)
	}
	if _, e := poll(code); e != "slow_down" {
		t.Fatalf("a poll at once: %q", e)
	}
	app.advance(6 * time.Second) // the interval is now 10 s
	if _, e := poll(code); e != "slow_down" {
		t.Fatalf("a poll after 6 s with a 10 s interval: %q", e)
	}
	app.advance(16 * time.Second)
	if _, e := poll(code); e != "authorization_pending" {
		t.Fatalf("a poll after the interval: %q", e)
	}
	// Approve; redeemed once.
	expectRedirect(t, alice.post("/device/approve", url.Values{"code": {user}, "password": {pw}}), "/settings/security")
	app.advance(20 * time.Second)
	status, out := oauthPost(t, app, "/oauth/token", url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:device_code"}, "device_code": {code}, "client_id": {clientID}})
	if status != http.StatusOK || out["token_type"] != "Bearer" || out["scope"] != "sessions:read sessions:write" {
		t.Fatalf("redeem: %d %v", status, out)
	}
	app.advance(20 * time.Second)
	if _, e := poll(code); e != "invalid_grant" {
		t.Fatalf("a second redemption: %q", e)
	}
	// The same code approved again at /device: already used.
	expectStatus(t, alice.post("/device/approve", url.Values{"code": {user}}), http.StatusConflict)

	// Denied.
	code, user = start("sessions:read")
	expectRedirect(t, alice.post("/device/deny", url.Values{"code": {user}}), "/settings/security")
	if _, e := poll(code); e != "access_denied" {
		t.Fatalf("denied: %q", e)
	}
	// Expired (10 minutes): the poll says so, /device too.
	code, user = start("sessions:read")
	app.advance(10*time.Minute + time.Second)
	if _, e := poll(code); e != "expired_token" {
		t.Fatalf("expired: %q", e)
	}
	expectStatus(t, alice.post("/device", url.Values{"code": {user}}), http.StatusGone)

	// Approving always needs the password, inside the sudo window too (a
	// copied cookie must not mint a 90-day app token: review finding 6).
	_, user = start("sessions:read")
	res := alice.post("/device/approve", url.Values{"code": {user}})
	if res.StatusCode < 400 {
		t.Fatalf("approval inside the sudo window without the password: %d", res.StatusCode)
	}
	expectBody(t, res, "Your password")
	expectRedirect(t, alice.post("/device/approve", url.Values{"code": {user}, "password": {pw}}), "/settings/security")

	// A stranger guessing codes at /device is throttled.
	mallory := app.client(uaMacFirefox, ipTokyo)
	mallory.signup("mallory@example.com", pw)
	limited := false
	for i := 0; i < 20 && !limited; i++ {
		limited = mallory.post("/device", url.Values{"code": {"ZZZZ-ZZZZ"}}).StatusCode == http.StatusTooManyRequests
	}
	if !limited {
		t.Fatal("wrong codes at /device were never throttled")
	}
	if strings.Contains(app.logs.String(), "status=500") {
		t.Fatal("a 500")
	}
}

// TestCommandLineLogin: the binary's own client — `doorman login` runs
// the device flow, keeps the token 0600, and `doorman sessions list` /
// `revoke` use it — against the real server.
func TestCommandLineLogin(t *testing.T) {
	app := newTestAppWith(t, apptest.Options{Clock: apptest.NewRunningClock()})
	clientID := registerApp(t, app, "Doorman CLI")
	alice, phone := app.client(uaWindowsChrome, ipBerlin), app.client(uaIPhone, ipLondon)
	alice.signup("alice@example.com", pw)
	phone.login("alice@example.com", pw)
	phoneID := phone.currentID()
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
	var code string
	var shown strings.Builder
	buf := make([]byte, 4096)
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
	go io.Copy(&shown, out)
	expectRedirect(t, alice.post("/device/approve", url.Values{"code": {code}, "password": {pw}}), "/settings/security")
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("login: %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("login did not finish")
	}
	st, err := os.Stat(filepath.Join(dir, "credentials.json"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("the saved token: %v %v", st, err)
	}

	var list bytes.Buffer
	if err := apiclient.Run(context.Background(), []string{"sessions", "list"}, env, &list, nil); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(list.String(), phoneID) || !strings.Contains(list.String(), "Safari on iPhone") {
		t.Fatalf("sessions list:\n%s", list.String())
	}
	// Its times as every command prints them (not the API's RFC 3339).
	if !regexp.MustCompile(`(?m)^` + phoneID + `\s.*\s\d{1,2} [A-Z][a-z]{2} \d{4}, \d{2}:\d{2} UTC\s+\d{1,2} [A-Z][a-z]{2} \d{4}, \d{2}:\d{2} UTC$`).MatchString(list.String()) {
		t.Fatalf("sessions list times:\n%s", list.String())
	}
	var revoked bytes.Buffer
	if err := apiclient.Run(context.Background(), []string{"sessions", "revoke", phoneID}, env, &revoked, nil); err != nil {
		t.Fatal(err)
	}
	expectRedirect(t, phone.get("/settings"), "/login?next=%2Fsettings")
	if err := apiclient.Run(context.Background(), []string{"sessions", "revoke", phoneID}, env, io.Discard, nil); err == nil {
		t.Fatal("revoking an ended session succeeded")
	}
	// Signed out of the command line: the file goes.
	if err := apiclient.Run(context.Background(), []string{"logout"}, env, io.Discard, nil); err != nil {
		t.Fatal(err)
	}
	if err := apiclient.Run(context.Background(), []string{"sessions", "list"}, env, io.Discard, nil); err == nil || !strings.Contains(err.Error(), "not signed in") {
		t.Fatalf("after logout: %v", err)
	}
}

// TestOperatorApps: `doorman apps add|list|remove`; removing an app ends
// its tokens at once.
func TestOperatorApps(t *testing.T) {
	app := newTestApp(t)
	op := func(args ...string) (string, error) {
		var out bytes.Buffer
		err := operator.Run(context.Background(), append(args, "-db", app.dbPath), func(string) string { return "" }, &out,
			slog.New(slog.NewTextHandler(io.Discard, nil)), app.clock)
		return out.String(), err
	}
	out, err := op("apps", "add", "--name", "Backup tool")
	m := regexp.MustCompile(`client_id: (app_[a-z2-7]+)`).FindStringSubmatch(out)
	if err != nil || m == nil {
		t.Fatalf("apps add: %v %q", err, out)
	}
	clientID := m[1]
	if out, err := op("apps", "list"); err != nil || !strings.Contains(out, clientID) || !strings.Contains(out, "Backup tool") {
		t.Fatalf("apps list: %v %q", err, out)
	}
	if _, err := op("apps", "add"); err == nil {
		t.Fatal("apps add without a name")
	}
	alice := app.client(uaWindowsChrome, ipBerlin)
	alice.signup("alice@example.com", pw)
	_, da := oauthPost(t, app, "/oauth/device_authorization", url.Values{"client_id": {clientID}})
	expectRedirect(t, alice.post("/device/approve", url.Values{"code": {da["user_code"].(string)}, "password": {pw}}), "/settings/security")
	_, tok := oauthPost(t, app, "/oauth/token", url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:device_code"}, "device_code": {da["device_code"].(string)}, "client_id": {clientID}})
	api := app.apiClient(t, tok["access_token"].(string))
	if res, _ := api.call("GET", "/api/v1/me"); res.StatusCode != http.StatusOK {
		t.Fatalf("the app's token: %d", res.StatusCode)
	}
	if out, err := op("apps", "remove", clientID); err != nil || !strings.Contains(out, "ended 1 of its token(s)") {
		t.Fatalf("apps remove: %v %q", err, out)
	}
	res, body := api.call("GET", "/api/v1/me")
	expectProblem(t, res, body, http.StatusUnauthorized, "invalid_token")
	if _, err := op("apps", "remove", clientID); err == nil {
		t.Fatal("removing it twice")
	}
	if status, out := oauthPost(t, app, "/oauth/device_authorization", url.Values{"client_id": {clientID}}); status != http.StatusUnauthorized || out["error"] != "invalid_client" {
		t.Fatalf("a removed app: %d %v", status, out)
	}
}

// TestDeviceCodeGuessingIsLimitedPerUserAndAddress: wrong user codes at
// /device are counted per session, per user across all their sessions (a
// fresh sign-in gives no fresh count) and per client address (many
// accounts, one guesser). While throttled, even the right code gets the
// 429, so a guesser learns nothing; the code stays pending, and works once
// the wait is over.
func TestDeviceCodeGuessingIsLimitedPerUserAndAddress(t *testing.T) {
	app := newTestApp(t, func(c *handlers.Config) {
		c.AccountFailureLimit = 3 // per session
		c.DeviceCodeFailuresPerUser = 5
		c.DeviceCodeFailuresPerIP = 7
	})
	clientID := registerApp(t, app, "Doorman CLI")
	start := func() string {
		t.Helper()
		status, out := oauthPost(t, app, "/oauth/device_authorization", url.Values{"client_id": {clientID}})
		if status != http.StatusOK {
			t.Fatalf("device authorization: %d %v", status, out)
		}
		return out["user_code"].(string)
	}
	const wrong = "ZZZZ-ZZZZ"
	throttled := func(res *response) {
		t.Helper()
		expectStatus(t, res, http.StatusTooManyRequests)
		expectBody(t, res, "Too many wrong codes. Please wait 15 minutes")
		if res.Header.Get("Retry-After") == "" {
			t.Fatal("no Retry-After")
		}
	}

	// Per user: sessions of one user, each within its own 3, from
	// addresses of their own.
	first := app.client(uaWindowsChrome, "198.51.100.1")
	first.signup("mallory@example.com", pw)
	for range 3 {
		expectStatus(t, first.post("/device", url.Values{"code": {wrong}}), http.StatusUnprocessableEntity)
	}
	throttled(first.post("/device", url.Values{"code": {wrong}})) // the session's own limit
	second := app.client(uaWindowsChrome, "198.51.100.2")
	second.login("mallory@example.com", pw)
	for range 2 { // 5 for the user
		expectStatus(t, second.post("/device", url.Values{"code": {wrong}}), http.StatusUnprocessableEntity)
	}
	third := app.client(uaWindowsChrome, "198.51.100.3")
	third.login("mallory@example.com", pw)
	throttled(third.post("/device", url.Values{"code": {wrong}}))
	// The right code too: approving it, or just looking it up.
	code := start()
	throttled(third.post("/device", url.Values{"code": {code}}))
	throttled(third.post("/device/approve", url.Values{"code": {code}, "password": {pw}}))
	// Another user is not held up by mallory's count.
	alice := app.client(uaMacFirefox, ipBerlin)
	alice.signup("alice@example.com", pw)
	expectStatus(t, alice.post("/device", url.Values{"code": {code}}), http.StatusOK)

	// Per address: three users at one address, none past their own limits.
	shared := "203.0.113.9"
	var users []*client
	for i, email := range []string{"u1@example.com", "u2@example.com", "u3@example.com"} {
		c := app.client(uaIPhone, "192.0.2."+strconv.Itoa(i+1))
		c.signup(email, pw)
		c.ip = shared
		users = append(users, c)
	}
	for i, n := range []int{3, 2, 2} { // 7 for the address
		for range n {
			expectStatus(t, users[i].post("/device", url.Values{"code": {wrong}}), http.StatusUnprocessableEntity)
		}
	}
	throttled(users[2].post("/device", url.Values{"code": {wrong}}))
	throttled(users[1].post("/device", url.Values{"code": {code}}))
	// The same users elsewhere are not held up by the address's count.
	users[1].ip = ipTokyo
	expectStatus(t, users[1].post("/device", url.Values{"code": {code}}), http.StatusOK)

	// The counts age out with the window; a new code then works in the
	// throttled user's session (the first has expired meanwhile).
	app.advance(15 * time.Minute)
	code = start()
	expectStatus(t, third.post("/device", url.Values{"code": {code}}), http.StatusOK)
	expectRedirect(t, third.post("/device/approve", url.Values{"code": {code}, "password": {pw}}), "/settings/security")
	if strings.Contains(app.logs.String(), "status=500") {
		t.Fatal("a 500")
	}
}

// TestTokenEndpointIsLimitedPerAddress: /oauth/token takes 30 requests at
// once from one client address, then one a second; past it a 429 with
// Retry-After and RFC 8628's slow_down (JSON, no-store), which a device-flow
// client obeys by polling more slowly. Other addresses are not held up,
// and the address may go on when its wait is over.
func TestTokenEndpointIsLimitedPerAddress(t *testing.T) {
	app := newTestApp(t)
	clientID := registerApp(t, app, "Doorman CLI")
	poll := func(ip, deviceCode string) (int, map[string]any, http.Header) {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, app.srv.URL+"/oauth/token", strings.NewReader(url.Values{
			"grant_type": {"urn:ietf:params:oauth:grant-type:device_code"}, "device_code": {deviceCode}, "client_id": {clientID}}.Encode()))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("X-Forwarded-For", ip)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var out map[string]any
		if err := json.NewDecoder(res.Body).Decode(&out); err != nil {
			t.Fatalf("not JSON (%d): %v", res.StatusCode, err)
		}
		return res.StatusCode, out, res.Header
	}
	for i := range 30 {
		if status, out, _ := poll(ipTokyo, "no-such-code"); status != http.StatusBadRequest || out["error"] != "invalid_grant" {
			t.Fatalf("request %d: %d %v", i+1, status, out)
		}
	}
	status, out, h := poll(ipTokyo, "no-such-code")
	if status != http.StatusTooManyRequests || out["error"] != "slow_down" || h.Get("Retry-After") != "1" || h.Get("Cache-Control") != "no-store" {
		t.Fatalf("request 31: %d %v Retry-After %q Cache-Control %q", status, out, h.Get("Retry-After"), h.Get("Cache-Control"))
	}
	// A real client's poll from that address waits too; from another
	// address it is answered.
	status, out = oauthPost(t, app, "/oauth/device_authorization", url.Values{"client_id": {clientID}})
	if status != http.StatusOK {
		t.Fatalf("device authorization: %d %v", status, out)
	}
	code := out["device_code"].(string)
	if status, out, _ := poll(ipTokyo, code); status != http.StatusTooManyRequests || out["error"] != "slow_down" {
		t.Fatalf("a poll from the limited address: %d %v", status, out)
	}
	if status, out, _ := poll(ipBerlin, code); status != http.StatusBadRequest || out["error"] != "authorization_pending" {
		t.Fatalf("a poll from another address: %d %v", status, out)
	}
	// One a second comes back.
	app.advance(time.Second)
	if status, out, _ := poll(ipTokyo, "no-such-code"); status != http.StatusBadRequest || out["error"] != "invalid_grant" {
		t.Fatalf("a second later: %d %v", status, out)
	}
	if status, _, _ := poll(ipTokyo, "no-such-code"); status != http.StatusTooManyRequests {
		t.Fatalf("and only one: %d", status)
	}
}
