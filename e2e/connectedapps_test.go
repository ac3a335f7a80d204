package e2e

import (
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"testing"

	"github.com/playwright-community/playwright-go"
	"golang.org/x/oauth2"

	"doorman/examples/relying-party/rp"
)

// A person signs in to an app with Doorman; the Security page lists it
// under Connected apps with the session that signed in to it, and its
// trash icon disconnects it: the app is told (a logout token naming only
// the person, which it verifies) and its next page is signed out, while
// the Doorman session stays.
func TestConnectedAppDisconnect(t *testing.T) {
	t.Parallel()
	srv := startServer(t)
	app := startRP(t, srv, "wiki", "Team Wiki")

	p := newDevice(t, srv, desktopChrome, ipBerlin)
	signUp(t, p, email, pass1)
	sid := currentSessionID(t, p)
	appTab := newTab(t, p)
	goTo(t, appTab, app.URL)
	clickSignInWithDoorman(t, appTab)
	expectRPHome(t, appTab, app, email)
	sub := app.sessionOf(t, sid).Sub

	// Listed, from this device (linking to its details, which list the
	// app in turn).
	goTo(t, p, "/settings/security")
	apps := p.Locator("section").Filter(playwright.LocatorFilterOptions{Has: heading(p, "Connected apps")})
	row := apps.Locator(`[data-app-id="wiki"]`)
	must(t, expect.Locator(row).ToContainText("Team Wiki"))
	must(t, expect.Locator(row).ToContainText("Gets who you are"))
	must(t, expect.Locator(row.Locator("time")).ToHaveAttribute("datetime", regexpOf(`^\d{4}-\d\d-\d\dT`)))
	must(t, row.GetByRole("link", playwright.LocatorGetByRoleOptions{Name: "this device", Exact: playwright.Bool(true)}).Click())
	must(t, expect.Page(p).ToHaveURL(regexpOf(`/settings/security/sessions/`+sid+`$`)))
	appsHere := p.GetByRole("list", playwright.PageGetByRoleOptions{Name: "Apps this session signed in to"})
	must(t, expect.Locator(appsHere).ToContainText("Team Wiki"))
	goTo(t, p, "/settings/security")

	// The trash icon: a dialog; Cancel changes nothing.
	must(t, button(p, "Disconnect Team Wiki").Click())
	dialog := p.GetByRole("dialog").Filter(playwright.LocatorFilterOptions{HasText: "Disconnect “Team Wiki”?"})
	must(t, expect.Locator(dialog).ToBeVisible())
	must(t, expect.Locator(dialog).ToContainText("Doorman tells it to sign you out"))
	must(t, dialog.GetByRole("button", playwright.LocatorGetByRoleOptions{Name: "Cancel", Exact: playwright.Bool(true)}).Click())
	must(t, expect.Locator(dialog).ToBeHidden())
	reload(t, appTab)
	expectRPHome(t, appTab, app, email)
	must(t, expect.Locator(row).ToHaveCount(1))

	// Then Disconnect.
	must(t, button(p, "Disconnect Team Wiki").Click())
	must(t, expect.Locator(dialog).ToBeVisible())
	must(t, dialog.GetByRole("button", playwright.LocatorGetByRoleOptions{Name: "Disconnect", Exact: playwright.Bool(true)}).Click())
	must(t, expect.Locator(p.GetByRole("status").First()).ToHaveText(regexp.MustCompile(`^Disconnected Team Wiki\. (Signed out of Team Wiki|Telling Team Wiki to sign you out)\.$`)))
	must(t, expect.Locator(row).ToHaveCount(0))
	must(t, expect.Locator(apps).ToContainText("No apps are connected"))

	// The app was told: a logout token naming only the person, verified,
	// which ended its session; its next page says so.
	e := app.waitEvent(t, "a verified logout token naming only the person", func(e rp.Event) bool {
		return e.Kind == rp.EventLogoutVerified && e.Sub == sub && e.SID == ""
	})
	if e.Ended != 1 {
		t.Errorf("the logout ended %d app sessions, want 1", e.Ended)
	}
	reload(t, appTab)
	expectRPHome(t, appTab, app, "")
	must(t, expect.Locator(appTab.GetByRole("status")).ToHaveText(rpBackchannelEnded))
	app.noRefusedLogouts(t)
	// Doorman's own session is not ended by disconnecting an app.
	reload(t, p)
	must(t, expect.Locator(p.Locator(`[data-current="true"]`)).ToHaveCount(1))
}

// pkceSignIn is the start of a sign-in through an app registerOIDCApp
// registered, asking for scope, with a PKCE verifier of its own: the
// authorization request's URL, and redeem, which redeems the code in the
// URL the browser reached (the app's redirect URI) at the token endpoint
// as that public app would, failing the test unless it gets a refresh
// token.
func pkceSignIn(t *testing.T, srv *server, clientID, scope, state string) (start string, redeem func(callback string)) {
	verifier := oauth2.GenerateVerifier()
	redirect := srv.URL + "/rp-callback"
	q := url.Values{"client_id": {clientID}, "redirect_uri": {redirect}, "response_type": {"code"}, "scope": {scope},
		"state": {state}, "code_challenge": {oauth2.S256ChallengeFromVerifier(verifier)}, "code_challenge_method": {"S256"}}
	return "/oidc/authorize?" + q.Encode(), func(callback string) {
		t.Helper()
		u, err := url.Parse(callback)
		must(t, err)
		res, err := http.PostForm(srv.URL+"/oidc/token", url.Values{"grant_type": {"authorization_code"}, "code": {u.Query().Get("code")},
			"redirect_uri": {redirect}, "client_id": {clientID}, "code_verifier": {verifier}})
		must(t, err)
		defer res.Body.Close()
		var tok struct {
			RefreshToken string `json:"refresh_token"`
		}
		must(t, json.NewDecoder(res.Body).Decode(&tok))
		if res.StatusCode != http.StatusOK || tok.RefreshToken == "" {
			t.Fatalf("the app's code was not redeemed for a refresh token: %d", res.StatusCode)
		}
	}
}
