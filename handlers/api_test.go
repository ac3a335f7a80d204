package handlers_test

import (
	"context"
	"encoding/json"
	"html"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
)

// apiClient calls the API with a bearer token, and checks every response
// against the OpenAPI document the server itself serves.
type apiClient struct {
	t     *testing.T
	app   *testApp
	token string
	check validator.Validator
}

func (a *testApp) apiClient(t *testing.T, token string) *apiClient {
	t.Helper()
	res, err := http.Get(a.srv.URL + "/api/v1/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	spec, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("openapi.json: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	doc, err := libopenapi.NewDocument(spec)
	if err != nil {
		t.Fatal(err)
	}
	if doc.GetVersion() != "3.1.0" {
		t.Fatalf("OpenAPI version %s", doc.GetVersion())
	}
	v, errs := validator.NewValidator(doc)
	if len(errs) > 0 {
		t.Fatalf("the OpenAPI document: %v", errs)
	}
	if ok, errs := v.ValidateDocument(); !ok {
		t.Fatalf("the OpenAPI document is invalid: %v", errs)
	}
	return &apiClient{t: t, app: a, token: token, check: v}
}

// call sends method path (with the token, unless "" or headers override)
// and validates the response against the document.
func (c *apiClient) call(method, path string, headers ...string) (*http.Response, map[string]any) {
	c.t.Helper()
	req, _ := http.NewRequest(method, c.app.srv.URL+path, nil)
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	req.Header.Set("X-Forwarded-For", ipBerlin) // the script runs in Berlin
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	// The validator reads the body again.
	check := *res
	check.Body = io.NopCloser(strings.NewReader(string(body)))
	vreq, _ := http.NewRequest(method, "http://doorman.test"+path, nil)
	vreq.Header = req.Header.Clone()
	// The response is checked against the document (bad requests are sent
	// on purpose, so the request itself is not).
	if ok, errs := c.check.ValidateHttpResponse(vreq, &check); !ok {
		for _, e := range errs {
			c.t.Errorf("%s %s → %d does not match the OpenAPI document: %s (%s)", method, path, res.StatusCode, e.Message, e.Reason)
		}
	}
	var out map[string]any
	if len(body) > 0 {
		if err := json.Unmarshal(body, &out); err != nil {
			c.t.Fatalf("%s %s: not JSON: %s", method, path, body)
		}
	}
	return res, out
}

// expectProblem checks an RFC 9457 problem with status (and, for 401/403,
// the bearer error).
func expectProblem(t *testing.T, res *http.Response, body map[string]any, status int, bearerError string) {
	t.Helper()
	if res.StatusCode != status || res.Header.Get("Content-Type") != "application/problem+json" || body["status"] != float64(status) {
		t.Fatalf("%s: %d %s %v, want a %d problem", res.Request.URL.Path, res.StatusCode, res.Header.Get("Content-Type"), body, status)
	}
	if bearerError != "" && !strings.Contains(res.Header.Get("WWW-Authenticate"), `error="`+bearerError+`"`) {
		t.Fatalf("WWW-Authenticate %q, want error=%q", res.Header.Get("WWW-Authenticate"), bearerError)
	}
}

var newTokenRe = regexp.MustCompile(`data-new-token>([^<]+)<`)

// createToken makes a personal access token through the page.
func (c *client) createToken(name, days string, scopes ...string) string {
	c.t.Helper()
	return c.createTokenWith(pw, name, days, scopes...)
}

// createTokenWith is createToken confirming with password.
func (c *client) createTokenWith(password, name, days string, scopes ...string) string {
	c.t.Helper()
	res := c.post("/settings/security/tokens", url.Values{"name": {name}, "expires_in_days": {days}, "scope": scopes, "password": {password}})
	expectStatus(c.t, res, http.StatusOK)
	m := newTokenRe.FindStringSubmatch(res.body)
	if m == nil {
		c.t.Fatalf("no new token shown:\n%s", snippet(res.body))
	}
	return html.UnescapeString(m[1])
}

func TestAccessTokensAndTheAPI(t *testing.T) {
	app := newTestApp(t)
	desktop, phone := app.client(uaWindowsChrome, ipBerlin), app.client(uaIPhone, ipLondon)
	desktop.signup("alice@example.com", pw)
	phone.login("alice@example.com", pw)
	phoneID := phone.currentID()
	expectBody(t, desktop.get("/settings/security/tokens"), "No access tokens")

	// Bad forms change nothing.
	before := app.dump()
	for _, bad := range []url.Values{
		{"name": {""}, "expires_in_days": {"30"}, "scope": {"sessions:read"}, "password": {pw}},
		{"name": {strings.Repeat("n", 101)}, "expires_in_days": {"30"}, "scope": {"sessions:read"}, "password": {pw}},
		{"name": {"x"}, "expires_in_days": {"8"}, "scope": {"sessions:read"}, "password": {pw}},
		{"name": {"x"}, "expires_in_days": {""}, "scope": {"sessions:read"}, "password": {pw}},
		{"name": {"x"}, "expires_in_days": {"30"}, "password": {pw}},
		{"name": {"x"}, "expires_in_days": {"30"}, "scope": {"admin"}, "password": {pw}},
		{"name": {"x"}, "expires_in_days": {"30"}, "scope": {"sessions:read"}},
	} {
		res := desktop.post("/settings/security/tokens", bad)
		if res.StatusCode < 400 || strings.Contains(res.body, "data-new-token") {
			t.Fatalf("%v: %d", bad, res.StatusCode)
		}
	}
	if after := app.dump(); after != before {
		t.Fatal("a refused token form changed the database")
	}
	// A wrong password is counted (against this session), and makes nothing.
	wrong := desktop.post("/settings/security/tokens", url.Values{"name": {"x"}, "expires_in_days": {"30"}, "scope": {"sessions:read"}, "password": {"wrong password"}})
	expectStatus(t, wrong, http.StatusUnprocessableEntity)
	expectBody(t, wrong, "Incorrect password")
	expectBody(t, desktop.get("/settings/security/tokens"), "No access tokens")

	reader := desktop.createToken("backup script", "30", "sessions:read")
	if !strings.HasPrefix(reader, "doorman_pat_") {
		t.Fatalf("token %q", reader)
	}
	page := desktop.get("/settings/security/tokens")
	expectBody(t, page, "backup script", "sessions:read", "Never used", `aria-label="Revoke backup script"`)
	expectNoBody(t, page, reader, "data-new-token")
	_, secret, _ := strings.Cut(strings.TrimPrefix(reader, "doorman_pat_"), "_")
	if strings.Contains(app.dump(), secret) {
		t.Fatal("the database holds the token's secret")
	}

	api := app.apiClient(t, reader)
	res, body := api.call("GET", "/api/v1/me")
	if res.StatusCode != http.StatusOK || body["user"].(map[string]any)["email"] != "alice@example.com" {
		t.Fatalf("me: %d %v", res.StatusCode, body)
	}
	cred := body["credential"].(map[string]any)
	if cred["type"] != "token" || cred["name"] != "backup script" || !strings.Contains(reader, cred["id"].(string)) {
		t.Fatalf("credential %v", cred)
	}
	res, body = api.call("GET", "/api/v1/sessions")
	if res.StatusCode != http.StatusOK {
		t.Fatalf("sessions: %d %v", res.StatusCode, body)
	}
	ids := map[string]bool{}
	for _, s := range body["sessions"].([]any) {
		ids[s.(map[string]any)["id"].(string)] = true
	}
	if len(ids) != 2 || !ids[phoneID] || !ids[desktop.currentID()] {
		t.Fatalf("sessions %v", body)
	}
	// Last used, where: shown on the page.
	expectBody(t, desktop.get("/settings/security/tokens"), "Last used", "from Berlin")

	// Scopes: reading does not allow ending.
	res, body = api.call("DELETE", "/api/v1/sessions/"+phoneID)
	expectProblem(t, res, body, http.StatusForbidden, "insufficient_scope")
	expectStatus(t, phone.get("/settings"), http.StatusOK)

	writer := app.apiClient(t, desktop.createToken("revoker", "7", "sessions:write"))
	res, body = writer.call("GET", "/api/v1/sessions")
	expectProblem(t, res, body, http.StatusForbidden, "insufficient_scope")
	res, _ = writer.call("DELETE", "/api/v1/sessions/"+phoneID)
	if res.StatusCode != http.StatusNoContent {
		t.Fatalf("delete: %d", res.StatusCode)
	}
	expectRedirect(t, phone.get("/settings"), "/login?next=%2Fsettings")
	res, body = writer.call("DELETE", "/api/v1/sessions/"+phoneID)
	expectProblem(t, res, body, http.StatusNotFound, "")
	res, body = writer.call("DELETE", "/api/v1/sessions/nonsense")
	expectProblem(t, res, body, http.StatusNotFound, "")

	// Another user: their session ids are 404, their token ids too.
	bob := app.client(uaMacFirefox, ipTokyo)
	bob.signup("bob@example.com", pw)
	res, body = writer.call("DELETE", "/api/v1/sessions/"+bob.currentID())
	expectProblem(t, res, body, http.StatusNotFound, "")
	expectStatus(t, bob.get("/settings"), http.StatusOK)
	readerID := strings.SplitN(strings.TrimPrefix(reader, "doorman_pat_"), "_", 2)[0]
	before = app.dump()
	expectStatus(t, bob.post("/settings/security/tokens/"+readerID+"/revoke", url.Values{"password": {pw}}), http.StatusNotFound)
	if app.dump() != before {
		t.Fatal("another user's revoke changed something")
	}

	// No token, a cookie instead, garbage, a forged secret: 401.
	anon := app.apiClient(t, "")
	for _, h := range [][]string{
		nil,
		{"Cookie", "doorman_session=" + desktop.sessionCookie()},
		{"Authorization", "Basic YWxpY2U6cHc="},
		{"Authorization", "Bearer nonsense"},
		{"Authorization", "Bearer doorman_pat_" + readerID + "_" + strings.Repeat("A", 52)},
	} {
		res, body = anon.call("GET", "/api/v1/me", h...)
		expectProblem(t, res, body, http.StatusUnauthorized, "invalid_token")
	}

	// Revoked through the page (the trash icon): refused on its next use.
	expectBody(t, desktop.get("/settings/security/tokens/"+readerID+"/revoke"), "Revoke “backup script”?")
	expectRedirect(t, desktop.post("/settings/security/tokens/"+readerID+"/revoke", nil), "/settings/security/tokens")
	res, body = api.call("GET", "/api/v1/me")
	expectProblem(t, res, body, http.StatusUnauthorized, "invalid_token")
	expectStatus(t, desktop.post("/settings/security/tokens/"+readerID+"/revoke", nil), http.StatusNotFound)

	// Expiry is mandatory: the 7-day token dies after 7 days.
	app.advance(7*24*time.Hour + time.Second)
	res, body = writer.call("GET", "/api/v1/me")
	expectProblem(t, res, body, http.StatusUnauthorized, "invalid_token")
	if strings.Contains(app.logs.String(), "status=500") {
		for _, l := range strings.Split(app.logs.String(), "\n") {
			if strings.Contains(l, "status=500") || strings.Contains(l, "level=ERROR") {
				t.Log(l)
			}
		}
		t.Fatal("a 500")
	}
}

func TestAPIRateLimitPerToken(t *testing.T) {
	app := newTestApp(t)
	desktop := app.client(uaWindowsChrome, ipBerlin)
	desktop.signup("alice@example.com", pw)
	one := app.apiClient(t, desktop.createToken("one", "30", "sessions:read"))
	other := app.apiClient(t, desktop.createToken("other", "30", "sessions:read"))
	limited := false
	for i := 0; i < 100 && !limited; i++ {
		res, body := one.call("GET", "/api/v1/me")
		if res.StatusCode == http.StatusTooManyRequests {
			expectProblem(t, res, body, http.StatusTooManyRequests, "")
			if res.Header.Get("Retry-After") == "" {
				t.Fatal("429 without Retry-After")
			}
			limited = true
		}
	}
	if !limited {
		t.Fatal("100 requests at once were never limited")
	}
	// Another token is not held up by the first one's flood.
	if res, _ := other.call("GET", "/api/v1/me"); res.StatusCode != http.StatusOK {
		t.Fatalf("the other token: %d", res.StatusCode)
	}
}

// TestEverywhereMeansEverywhere: "Sign out everywhere" ends apps and tokens
// too and says how many; "Sign out all other sessions" ends them only when
// asked; a password change disconnects them by default; disabling and
// deleting the account end them.
func TestEverywhereMeansEverywhere(t *testing.T) {
	app := newTestApp(t)
	desktop, phone := app.client(uaWindowsChrome, ipBerlin), app.client(uaIPhone, ipLondon)
	desktop.signup("alice@example.com", pw)
	phone.login("alice@example.com", pw)
	works := func(token string) bool {
		res, _ := app.apiClient(t, token).call("GET", "/api/v1/me")
		return res.StatusCode == http.StatusOK
	}
	tok := desktop.createToken("one", "30", "sessions:read")

	// Others only: the token stays unless the box is ticked.
	expectBody(t, desktop.get("/settings/security/sessions/revoke-others"), "Also disconnect 1 access token")
	expectRedirect(t, desktop.post("/settings/security/sessions/revoke-others", nil), "/settings/security")
	if !works(tok) {
		t.Fatal("sign out others without the box ended the token")
	}
	phone.login("alice@example.com", pw)
	expectRedirect(t, desktop.post("/settings/security/sessions/revoke-others", url.Values{"also_tokens": {"on"}}), "/settings/security")
	if works(tok) {
		t.Fatal("sign out others with the box left the token")
	}
	expectRedirect(t, phone.get("/settings"), "/login?next=%2Fsettings")

	// Everywhere: counted in the confirm, all of it ended.
	tok = desktop.createToken("two", "30", "sessions:read")
	phone.login("alice@example.com", pw)
	expectBody(t, desktop.get("/settings/security/sessions/revoke-all"), "All 2 sessions, including this device, will be signed out, and 1 access token disconnected.")
	expectRedirect(t, desktop.post("/settings/security/sessions/revoke-all", nil), "/login")
	if works(tok) {
		t.Fatal("sign out everywhere left the token")
	}

	// A password change disconnects them by default.
	desktop.login("alice@example.com", pw)
	tok = desktop.createToken("three", "30", "sessions:read")
	expectBody(t, desktop.get("/settings/security/password"), "Also disconnect 1 access token")
	const pw2 = "a new password 2"
	expectRedirect(t, desktop.post("/settings/security/password", url.Values{"current_password": {pw}, "new_password": {pw2}, "sign_out_others": {"on"}, "disconnect_tokens": {"on"}}), "/settings/security")
	if works(tok) {
		t.Fatal("a password change left the token")
	}
	// Unticked, the token stays.
	tok = desktop.createTokenWith(pw2, "four", "30", "sessions:read")
	expectRedirect(t, desktop.post("/settings/security/password", url.Values{"current_password": {pw2}, "new_password": {pw}}), "/settings/security")
	if !works(tok) {
		t.Fatal("the token ended though the box was unticked")
	}

	// Disabled by the operator, then deleted: refused.
	u, _ := app.store.UserByEmail(context.Background(), "alice@example.com")
	if _, err := app.store.SetUserDisabled(context.Background(), u.ID, true, app.clock()); err != nil {
		t.Fatal(err)
	}
	if works(tok) {
		t.Fatal("a disabled user's token works")
	}
	if _, err := app.store.SetUserDisabled(context.Background(), u.ID, false, app.clock()); err != nil {
		t.Fatal(err)
	}
	if works(tok) {
		t.Fatal("re-enabling revived a token")
	}
}
