package e2e

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/playwright-community/playwright-go"

	"doorman/db"
)

// registerApp registers a command-line app on srv, as `doorman apps add`
// does, and returns its client_id.
func registerApp(t *testing.T, srv *server, clientID, name string) string {
	t.Helper()
	must(t, srv.app.Store.CreateApp(t.Context(), db.App{ClientID: clientID, Name: name, CreatedAt: srv.clock.Now()}))
	return clientID
}

// oauth posts to the device flow's endpoints as the command-line tool
// would, and returns the JSON answer.
func oauth(t *testing.T, srv *server, path string, form url.Values) map[string]any {
	t.Helper()
	res, err := http.PostForm(srv.URL+path, form)
	must(t, err)
	defer res.Body.Close()
	var out map[string]any
	must(t, json.NewDecoder(res.Body).Decode(&out))
	return out
}

// startDeviceFlow is the tool's first step: it returns the device code and
// the link to show the person.
func startDeviceFlow(t *testing.T, srv *server, clientID string) (deviceCode, link string) {
	t.Helper()
	out := oauth(t, srv, "/oauth/device_authorization", url.Values{"client_id": {clientID}, "scope": {"sessions:read sessions:write"}})
	deviceCode, _ = out["device_code"].(string)
	link, _ = out["verification_uri_complete"].(string)
	if deviceCode == "" || link == "" {
		t.Fatalf("device authorization: %v", out)
	}
	return deviceCode, link
}

func redeem(t *testing.T, srv *server, clientID, deviceCode string) string {
	t.Helper()
	out := oauth(t, srv, "/oauth/token", url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:device_code"}, "device_code": {deviceCode}, "client_id": {clientID}})
	tok, _ := out["access_token"].(string)
	if !strings.HasPrefix(tok, "doorman_app_") {
		t.Fatalf("token endpoint: %v", out)
	}
	return tok
}

func apiStatus(t *testing.T, srv *server, token string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/api/v1/me", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	must(t, err)
	res.Body.Close()
	return res.StatusCode
}

// createTokenInUI fills the new-token form of p (on the tokens page) and
// returns the token shown once.
func createTokenInUI(t *testing.T, p playwright.Page, name string) string {
	t.Helper()
	must(t, p.GetByLabel("Name").Fill(name))
	_, err := p.GetByLabel("Expires after").SelectOption(playwright.SelectOptionValues{Values: &[]string{"90"}})
	must(t, err)
	must(t, p.GetByLabel("Sign sessions out").Check())
	must(t, p.GetByLabel("Your password").Fill(pass1))
	must(t, button(p, "Create token").Click())
	shown := p.Locator("[data-new-token]")
	must(t, expect.Locator(shown).ToBeVisible())
	value, err := shown.TextContent()
	must(t, err)
	if !strings.HasPrefix(value, "doorman_pat_") {
		t.Fatalf("token shown: %q", value)
	}
	return value
}

// Flow: an access token made and revoked by its trash icon; a command-line
// tool connected from a phone by its code, then disconnected from the
// inventory.
func TestFlowTokensAndConnectedApps(t *testing.T) {
	t.Parallel()
	srv := startServer(t)
	clientID := registerApp(t, srv, "app_cli", "Doorman CLI")
	p := newDevice(t, srv, desktopChrome, ipBerlin)
	must(t, p.Context().GrantPermissions([]string{"clipboard-read", "clipboard-write"}))
	signUp(t, p, email, pass1)
	must(t, link(p, "Manage access tokens").Click())
	must(t, expect.Locator(heading(p, "Access tokens")).ToBeVisible())
	token := createTokenInUI(t, p, "backup script")
	must(t, button(p, "Copy token").Click())
	must(t, expect.Locator(button(p, "Copied")).ToBeVisible())
	copied, err := p.Evaluate("navigator.clipboard.readText()", nil)
	must(t, err)
	if copied != token {
		t.Fatalf("copied %q", copied)
	}
	if apiStatus(t, srv, token) != http.StatusOK {
		t.Fatal("the new token does not work")
	}
	// Shown once: not when the page is opened again.
	goTo(t, p, "/settings/security/tokens")
	must(t, expect.Locator(p.Locator("[data-new-token]")).ToHaveCount(0))
	must(t, expect.Locator(p.Locator("main")).ToContainText("backup script"))
	// The trash icon: a dialog, then gone, and refused.
	must(t, button(p, "Revoke backup script").Click())
	dialog := p.GetByRole("dialog")
	must(t, expect.Locator(dialog).ToBeVisible())
	must(t, dialog.GetByRole("button", playwright.LocatorGetByRoleOptions{Name: "Revoke", Exact: playwright.Bool(true)}).Click())
	must(t, expect.Locator(p.GetByRole("status")).ToContainText("Revoked backup script."))
	must(t, expect.Locator(button(p, "Revoke backup script")).ToHaveCount(0))
	if apiStatus(t, srv, token) != http.StatusUnauthorized {
		t.Fatal("a revoked token still works")
	}

	// A command-line tool shows a code; the person approves on a phone.
	deviceCode, verify := startDeviceFlow(t, srv, clientID)
	phone := newDevice(t, srv, iPhone13, ipLondon)
	signInByRequest(t, phone, email, pass1, false)
	u, _ := url.Parse(verify)
	goTo(t, phone, u.RequestURI())
	must(t, button(phone, "Continue").Click())
	must(t, expect.Locator(heading(phone, "Connect Doorman CLI?")).ToBeVisible())
	must(t, expect.Locator(phone.Locator("main")).ToContainText("Only approve if you started this yourself"))
	must(t, expect.Locator(phone.Locator("main")).ToContainText("Sign your sessions out"))
	// The password is asked every time, as for a token (review finding 6).
	must(t, phone.GetByLabel("Your password").Fill(pass1))
	must(t, button(phone, "Approve").Click())
	must(t, expect.Page(phone).ToHaveURL(regexpOf(`/settings/security$`)))
	appToken := redeem(t, srv, clientID, deviceCode)
	if apiStatus(t, srv, appToken) != http.StatusOK {
		t.Fatal("the app's token does not work")
	}

	// In the inventory on the desktop; disconnected by its trash icon.
	goTo(t, p, "/settings/security")
	apps := p.Locator("section").Filter(playwright.LocatorFilterOptions{Has: heading(p, "Connected apps")})
	must(t, expect.Locator(apps).ToContainText("Doorman CLI"))
	must(t, button(p, "Disconnect Doorman CLI").Click())
	dialog = p.GetByRole("dialog").Filter(playwright.LocatorFilterOptions{HasText: "Disconnect “Doorman CLI”?"})
	must(t, expect.Locator(dialog).ToBeVisible())
	must(t, dialog.GetByRole("button", playwright.LocatorGetByRoleOptions{Name: "Disconnect", Exact: playwright.Bool(true)}).Click())
	must(t, expect.Locator(p.GetByRole("status")).ToContainText("Disconnected Doorman CLI."))
	must(t, expect.Locator(apps).ToContainText("No apps are connected"))
	if apiStatus(t, srv, appToken) != http.StatusUnauthorized {
		t.Fatal("a disconnected app's token still works")
	}

	// The history shows all of it.
	must(t, link(p, "See all activity").Click())
	must(t, expect.Locator(heading(p, "Security activity")).ToBeVisible())
	for _, kind := range []string{"token_created", "app_approved", "sign_in"} {
		must(t, expect.Locator(p.Locator(`[data-event="`+kind+`"]`).First()).ToBeVisible())
	}
	must(t, expect.Locator(p.Locator(`[data-event="token_revoked"]`)).ToHaveCount(2))
	must(t, expect.Locator(p.Locator(`[data-event="token_revoked"]`).First()).ToContainText("“Doorman CLI” disconnected"))
}
