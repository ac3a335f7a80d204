package e2e

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/playwright-community/playwright-go"

	"doorman/db"
	"doorman/handlers"
)

// axeSource is axe-core, installed by `make setup` next to the driver.
var axeSource = sync.OnceValues(func() (string, error) {
	driver := os.Getenv("PLAYWRIGHT_DRIVER_PATH")
	if driver == "" {
		driver, _ = filepath.Abs("../.pwdriver")
	}
	b, err := os.ReadFile(filepath.Join(driver, "npm", "node_modules", "axe-core", "axe.min.js"))
	return string(b), err
})

// axeTags are the rule sets run: WCAG 2.0, 2.1 and 2.2, levels A and AA.
const axeRun = `async () => {
  const r = await axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22a', 'wcag22aa']}});
  return r.violations.map(v => v.id + ' (' + v.impact + '): ' + v.help + ' at ' + v.nodes.map(n => n.target.join(' ')).join(' | '));
}`

// smallTargets lists visible links and buttons smaller than 44×44 CSS px.
const smallTargets = `() => Array.from(document.querySelectorAll('a[href], button, input[type=submit], [role=button]'))
  .filter(e => {
    const r = e.getBoundingClientRect(), s = getComputedStyle(e);
    return r.width > 0 && r.height > 0 && r.bottom > 0 && s.visibility !== 'hidden' && !e.closest('dialog:not([open])');
  })
  .map(e => [e, e.getBoundingClientRect()])
  .filter(([e, r]) => r.width < 43.5 || r.height < 43.5)
  .map(([e, r]) => (e.getAttribute('aria-label') || e.textContent.trim()).slice(0, 40) + ' ' + Math.round(r.width) + 'x' + Math.round(r.height))`

// checkPage runs the accessibility and layout checks on the current page
// and saves its screenshot. phone turns on the touch-target check.
func checkPage(t *testing.T, p playwright.Page, name string, phone bool) {
	t.Helper()
	src, err := axeSource()
	if err != nil {
		t.Fatalf("axe-core not installed (run make setup): %v", err)
	}
	_, err = p.Evaluate(src)
	must(t, err)
	res, err := p.Evaluate(axeRun)
	must(t, err)
	if v := list(t, res); len(v) > 0 {
		t.Errorf("%s: %d axe violations:\n%s", name, len(v), joinAny(v))
	}
	fits, err := p.Evaluate(`() => document.documentElement.scrollWidth <= window.innerWidth`)
	must(t, err)
	if fits != true {
		t.Errorf("%s: scrolls sideways (%v)", name, fits)
	}
	if phone {
		small, err := p.Evaluate(smallTargets)
		must(t, err)
		if v := list(t, small); len(v) > 0 {
			t.Errorf("%s: touch targets under 44×44: %s", name, joinAny(v))
		}
	}
	screenshot(t, p, name)
}

// list is a JavaScript array returned by Evaluate. Anything else fails the
// test: a check whose result could not be read must not pass.
func list(t *testing.T, v any) []any {
	t.Helper()
	if v, ok := v.([]any); ok {
		return v
	}
	t.Fatalf("expected an array from the page, got %T %v", v, v)
	return nil
}

func joinAny(v []any) string {
	var sb strings.Builder
	for _, x := range v {
		fmt.Fprintf(&sb, "  - %v\n", x)
	}
	return sb.String()
}

// look is one device and colour scheme of the accessibility pass.
type look struct {
	device string         // playwright's device name
	phone  bool           // checked as a phone (touch targets)
	suffix string         // of its screenshots' names: "-iphone-dark"
	opts   []deviceOption // the scheme, and the CSP bypass axe needs
}

// check is checkPage under the look's screenshot name and size.
func (l look) check(t *testing.T, p playwright.Page, name string) {
	t.Helper()
	checkPage(t, p, name+l.suffix, l.phone)
}

// visit opens path on p and checks it as name.
func (l look) visit(t *testing.T, p playwright.Page, path, name string) {
	t.Helper()
	goTo(t, p, path)
	l.check(t, p, name)
}

// eachLook runs pass in a parallel subtest per look: a phone, the desktop
// and a narrow phone, in light and dark (the narrow phone in light only: it
// is for layout; colours are covered by the others).
func eachLook(t *testing.T, pass func(t *testing.T, l look)) {
	t.Helper()
	for _, dev := range []struct {
		name, short string
		phone       bool
	}{{iPhone13, "iphone", true}, {desktopChrome, "desktop", false}, {narrowPhone, "narrow", true}} {
		for _, scheme := range []string{"light", "dark"} {
			if dev.short == "narrow" && scheme == "dark" {
				continue
			}
			l := look{device: dev.name, phone: dev.phone, suffix: "-" + dev.short + "-" + scheme, opts: []deviceOption{bypassCSP}}
			if scheme == "dark" {
				l.opts = append(l.opts, dark)
			}
			t.Run(dev.short+"-"+scheme, func(t *testing.T) {
				t.Parallel()
				pass(t, l)
			})
		}
	}
}

// TestEveryPageAccessible visits every page at phone and desktop size, in
// light and dark, with axe-core (WCAG 2.2 A/AA), the no-sideways-scroll and
// touch-target checks, and saves a full-page screenshot of each.
func TestEveryPageAccessible(t *testing.T) {
	t.Parallel()
	// The sudo window is always over on this server, so every confirm
	// dialog and page carries its password field: the fuller variant.
	srv := startServer(t, func(c *handlers.Config) { c.SudoWindow = 0 })
	// The account, and a second device so lists, details and confirm pages
	// have something to show.
	other := newDevice(t, srv, pixel7, ipTokyo)
	signInByRequest(t, other, email, pass1, true)
	_, err := other.Goto("/settings/security")
	must(t, err)
	otherID, err := other.Locator(`[data-current="true"]`).GetAttribute("data-session-id")
	must(t, err)
	// Two more like it: a group of three look-alikes on every look's
	// Security page.
	group := url.Values{"id": {otherID}}
	for range 2 {
		p := newDevice(t, srv, pixel7, ipTokyo)
		signInByRequest(t, p, email, pass1, false)
		goTo(t, p, "/settings/security")
		id, err := p.Locator(`[data-current="true"]`).GetAttribute("data-session-id")
		must(t, err)
		group.Add("id", id)
	}
	clientID := registerApp(t, srv, "app_a11y", "Doorman CLI")
	// An app that signs its users in through Doorman and is not
	// first-party: its sign-in asks for consent.
	appSignIn := registerOIDCApp(t, srv, "rp_a11y", "Grafana")
	// One with a long name: its row must wrap at spaces at 320 px.
	longAppSignIn := registerOIDCApp(t, srv, "rp_a11y_long", "Observability Dashboards for the Platform Engineering Team")

	eachLook(t, func(t *testing.T, l look) {
		p := newDevice(t, srv, l.device, ipBerlin, l.opts...)
		l.visit(t, p, "/login", "signin")
		l.visit(t, p, "/signup", "signup")
		l.visit(t, p, "/no/such/page", "error-404")
		// Sign-in with a wrong password: the error page state.
		goTo(t, p, "/login")
		must(t, p.GetByLabel("Email").Fill(email))
		must(t, p.GetByLabel("Password").Fill("wrong password"))
		must(t, button(p, "Sign in").Click())
		must(t, expect.Locator(p.GetByRole("alert")).ToContainText("Incorrect email or password"))
		l.check(t, p, "signin-error")
		// The sign-in page of an app's sign-in names the app.
		goTo(t, p, appSignIn(l.suffix))
		must(t, expect.Locator(p.GetByText("to continue to Grafana")).ToBeVisible())
		l.check(t, p, "signin-continue")

		signInByRequest(t, p, email, pass1, false)
		// The consent page (never answered Allow here: the account is
		// every look's, and a consent would spare the others the page),
		// by keyboard: every control reached with focus visible, and
		// Cancel sends the app access_denied.
		goTo(t, p, appSignIn(l.suffix))
		must(t, expect.Locator(heading(p, "Sign in to Grafana?")).ToBeVisible())
		l.check(t, p, "consent")
		tabTo(t, p, "Tab", "Not you? Use another account")
		tabTo(t, p, "Tab", "Allow")
		tabTo(t, p, "Shift+Tab", "Cancel")
		must(t, p.Keyboard().Press("Enter"))
		must(t, expect.Page(p).ToHaveURL(regexpOf(`/rp-callback\?error=access_denied&`)))
		// The page that asks whether an app may sign this browser out of
		// Doorman (never answered Sign out here: the account is every
		// look's).
		goTo(t, p, "/oidc/end_session?client_id=rp_a11y")
		must(t, expect.Locator(heading(p, "Grafana asks to sign you out of Doorman on this device.")).ToBeVisible())
		l.check(t, p, "end-session")
		l.visit(t, p, "/settings", "settings")
		l.visit(t, p, "/settings/security", "security")
		// The confirm dialog, open.
		must(t, button(p, "Sign out all other sessions").Click())
		must(t, expect.Locator(p.GetByRole("dialog")).ToBeVisible())
		l.check(t, p, "security-dialog")
		// The group of look-alikes, open, and its dialog.
		goTo(t, p, "/settings/security")
		lookAlikes := p.Locator("li.session-group").Filter(playwright.LocatorFilterOptions{HasText: "Chrome on Android"})
		must(t, lookAlikes.Locator("summary").Click())
		must(t, expect.Locator(lookAlikes.Locator("li[data-session-id]").First()).ToBeVisible())
		l.check(t, p, "security-group-open")
		must(t, button(p, "Sign out these 3").Click())
		must(t, expect.Locator(p.GetByRole("dialog")).ToBeVisible())
		l.check(t, p, "security-group-dialog")
		must(t, p.Keyboard().Press("Escape"))
		must(t, expect.Locator(p.GetByRole("dialog")).ToBeHidden())
		l.visit(t, p, "/settings/security/sessions/sign-out?"+group.Encode(), "confirm-sign-out-group")
		l.visit(t, p, "/settings/security/sessions/"+otherID, "session-details")
		// Its rename form with a name it refuses (nothing changes).
		must(t, p.GetByLabel("Name this device").Fill("Pixel\tin Tokyo"))
		must(t, button(p, "Save name").Click())
		must(t, expect.Locator(p.Locator("#device-name-error")).ToBeVisible())
		l.check(t, p, "session-details-rename-error")
		l.visit(t, p, "/settings/security/sessions/revoke-others", "confirm-revoke-others")
		l.visit(t, p, "/settings/security/sessions/revoke-all", "confirm-revoke-all")
		l.visit(t, p, "/settings/security/password", "password")
		l.visit(t, p, "/settings/account/email", "email")
		l.visit(t, p, "/settings/account/delete", "confirm-delete")
		l.visit(t, p, "/settings/nope", "error-404-signed-in")
		// A confirm page with a password error.
		goTo(t, p, "/settings/security/sessions/revoke-others")
		must(t, p.GetByLabel("Your password").Fill("wrong password"))
		must(t, button(p, "Sign them out").Click())
		must(t, expect.Locator(p.GetByText("Incorrect password.")).ToBeVisible())
		l.check(t, p, "confirm-password-error")
		// The two-factor pages, on an account of this run's own
		// (turning it on changes how the shared account signs in).
		tfEmail := "tf" + l.suffix + "@example.com"
		// Signing the browser in again ends its session, and the open
		// tab would be told and move itself to sign-in, racing the next
		// page the test opens: the tab leaves first.
		leave(t, p)
		signInByRequest(t, p, tfEmail, pass1, true)
		// The banner of new sign-ins (on this look's own account): one
		// named, then several; "They were all me" takes them off.
		for i, d := range []struct{ name, ip string }{{pixel7, ipTokyo}, {iPad, ipLondon}} {
			o := newDevice(t, srv, d.name, d.ip)
			signInByRequest(t, o, tfEmail, pass1, false)
			goTo(t, p, "/settings/security")
			must(t, expect.Locator(p.Locator("[data-new-signins] li")).ToHaveCount(i*2))
			must(t, expect.Locator(p.Locator("[data-new-signins]")).ToBeVisible())
			l.check(t, p, []string{"security-new-signin", "security-new-signins"}[i])
		}
		must(t, button(p, "They were all me").Click())
		must(t, expect.Locator(p.Locator("[data-new-signins]")).ToHaveCount(0))
		l.visit(t, p, "/settings/security/two-factor", "two-factor-verify-first")
		verifyEmail(t, srv, p, tfEmail)
		l.visit(t, p, "/settings/security/two-factor", "two-factor-off")
		secret := setUpTwoFactor(t, srv, p, func(name string) { l.check(t, p, name) })
		l.check(t, p, "recovery-codes")
		l.visit(t, p, "/settings/security/two-factor", "two-factor-on")
		signOut(t, p)
		signInWithPassword(t, p, tfEmail)
		l.check(t, p, "signin-two-factor")
		codeField := p.GetByLabel("Code from your authenticator app, or a recovery code")
		must(t, codeField.Fill("000000"))
		must(t, button(p, "Verify").Click())
		must(t, expect.Locator(codeField).ToHaveAttribute("aria-invalid", "true"))
		l.check(t, p, "signin-two-factor-error")
		enterCode(t, p, "Code from your authenticator app, or a recovery code", "Verify",
			heading(p, "Where you're signed in"), func() string { return codeNow(t, srv, secret) })
		// Access tokens and a connected app (same account).
		l.visit(t, p, "/settings/security/tokens", "tokens")
		must(t, button(p, "Create token").Click())
		must(t, expect.Locator(p.GetByText("Give the token a name.")).ToBeVisible())
		l.check(t, p, "tokens-errors")
		createTokenInUI(t, p, "a11y token")
		l.check(t, p, "tokens-new")
		deviceCode, verify := startDeviceFlow(t, srv, clientID)
		link, err := url.Parse(verify)
		must(t, err)
		l.visit(t, p, link.RequestURI(), "device")
		must(t, button(p, "Continue").Click())
		must(t, expect.Locator(heading(p, "Connect Doorman CLI?")).ToBeVisible())
		l.check(t, p, "device-approve")
		must(t, p.GetByLabel("Your password").Fill(pass1))
		must(t, button(p, "Approve").Click())
		must(t, expect.Page(p).ToHaveURL(regexpOf(`/settings/security$`)))
		// Approved, not yet redeemed: listed with the apps, withdrawable.
		must(t, expect.Locator(p.GetByRole("button", playwright.PageGetByRoleOptions{Name: "Withdraw the approval of Doorman CLI"})).ToBeVisible())
		l.check(t, p, "security-pending-approval")
		redeem(t, srv, clientID, deviceCode)
		// Apps signed in to with Doorman (this look's own account: its
		// consent spares no other look the consent page). Grafana redeems
		// its code: it holds an offline refresh token.
		grafana, redeemCode := pkceSignIn(t, srv, "rp_a11y", "openid email offline_access", l.suffix)
		for _, start := range []string{grafana, longAppSignIn(l.suffix)} {
			goTo(t, p, start)
			must(t, button(p, "Allow").Click())
			must(t, expect.Page(p).ToHaveURL(regexpOf(`/rp-callback\?code=`)))
			if start == grafana {
				redeemCode(p.URL())
			}
		}
		l.visit(t, p, "/settings/security", "security-inventory")
		must(t, expect.Locator(p.Locator(`[data-app-id="rp_a11y"]`)).ToContainText("Stays signed in while you're away"))
		tokenID, err := p.Locator("[data-token-id]").First().GetAttribute("data-token-id")
		must(t, err)
		tfID, err := p.Locator(`[data-current="true"]`).GetAttribute("data-session-id")
		must(t, err)
		l.visit(t, p, "/settings/security/sessions/"+tfID, "session-details-apps")
		must(t, expect.Locator(p.GetByRole("list", playwright.PageGetByRoleOptions{Name: "Apps this session signed in to"})).ToContainText("Grafana"))
		l.visit(t, p, "/settings/security/apps/rp_a11y/disconnect", "confirm-disconnect-app")
		l.visit(t, p, "/settings/security/tokens/"+tokenID+"/revoke", "confirm-revoke-token")
		l.visit(t, p, "/settings/security/activity", "activity")
		// The filter form narrowed, and with a date it cannot read (its
		// error next to the field).
		l.visit(t, p, "/settings/security/activity?kind=sign-ins", "activity-filtered")
		l.visit(t, p, "/settings/security/activity?from=31.12.2026", "activity-filter-error")
		l.visit(t, p, "/settings/security/activity?q=berlin", "activity-search")
		l.visit(t, p, "/settings/security/activity?q="+strings.Repeat("tokyo", 21), "activity-search-error")
		leave(t, p)
		signInByRequest(t, p, email, pass1, false)
		// The live notice of a session ended elsewhere, held on
		// the page (the move to sign-in waits) to be checked.
		goTo(t, p, "/settings/security")
		id, err := p.Locator(`[data-current="true"]`).GetAttribute("data-session-id")
		must(t, err)
		// The tab's stream is subscribed before the session ends
		// (a revocation before that is answered at the next
		// request instead, and the page would not change).
		must(t, expect.Locator(p.Locator(`body[data-live-stream="open"]`)).ToHaveCount(1))
		release := holdSignIn(t, p)
		u, err := srv.app.Store.UserByEmail(t.Context(), email)
		must(t, err)
		_, err = srv.app.Store.RevokeSession(t.Context(), u.ID, id, "revoked", "a11y", srv.clock.Now())
		must(t, err)
		must(t, expect.Locator(p.Locator("#live-notice")).ToHaveText(signedOutNotice))
		l.check(t, p, "live-signed-out")
		release()
		expectSignedOut(t, p)
		// "Not you?" with passkeys (an account of this look's own): the
		// one the disowned session added, named as going, and the
		// owner's, offered unticked.
		nvEmail := "nv" + l.suffix + "@example.com"
		signInByRequest(t, p, nvEmail, pass1, true)
		away := newDevice(t, srv, pixel7, ipTokyo)
		signInByRequest(t, away, nvEmail, pass1, false)
		goTo(t, away, "/settings/security")
		awayID, err := away.Locator(`[data-current="true"]`).GetAttribute("data-session-id")
		must(t, err)
		goTo(t, p, "/settings/security")
		ownID, err := p.Locator(`[data-current="true"]`).GetAttribute("data-session-id")
		must(t, err)
		nv, err := srv.app.Store.UserByEmail(t.Context(), nvEmail)
		must(t, err)
		for _, k := range []db.Passkey{
			{Name: "MacBook Air", AddedBySession: ownID, BackupEligible: true, BackupState: true},
			{Name: "Spare key", AddedBySession: awayID},
		} {
			k.UserID, k.CreatedAt, k.UserVerified, k.AAGUID = nv.ID, srv.clock.Now(), true, make([]byte, 16)
			k.CredentialID, k.PublicKey = []byte(k.Name+l.suffix), []byte("public key")
			_, err := srv.app.Store.AddPasskey(t.Context(), k, 20, nv.Epoch)
			must(t, err)
		}
		l.visit(t, p, "/settings/security/sessions/"+awayID+"/not-you", "not-you-passkeys")
		must(t, expect.Locator(p.GetByText("The passkey “Spare key” added from that session will be removed.")).ToBeVisible())
		must(t, expect.Locator(p.GetByLabel("Also remove “MacBook Air”")).Not().ToBeChecked())
	})
}

// registerOIDCApp registers an OpenID Connect app that is not
// first-party, public (PKCE), whose redirect URI is on the test server
// (its page there is a 404: the URL is what a test reads). It returns
// the start of a sign-in through it: the authorization request's URL,
// with state.
func registerOIDCApp(t *testing.T, srv *server, clientID, name string) func(state string) string {
	t.Helper()
	redirect := srv.URL + "/rp-callback"
	must(t, srv.app.Store.CreateApp(t.Context(), db.App{ClientID: clientID, Name: name, CreatedAt: srv.clock.Now(), RedirectURIs: []string{redirect}}))
	return func(state string) string {
		q := url.Values{"client_id": {clientID}, "redirect_uri": {redirect}, "response_type": {"code"},
			"scope": {"openid email offline_access"}, "state": {state},
			"code_challenge": {"E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"}, "code_challenge_method": {"S256"}}
		return "/oidc/authorize?" + q.Encode()
	}
}

// TestConsentWithoutJavaScript: the consent page's Allow is a plain form:
// without JavaScript it signs the person in to the app (back at its
// redirect URI with a code).
func TestConsentWithoutJavaScript(t *testing.T) {
	t.Parallel()
	srv := startServer(t)
	appSignIn := registerOIDCApp(t, srv, "rp_nojs", "Grafana")
	p := newDevice(t, srv, desktopChrome, ipBerlin, noJavaScript)
	signInByRequest(t, p, "nojs@example.com", pass1, true)
	goTo(t, p, appSignIn("nojs"))
	must(t, expect.Locator(p.GetByText("Signed in as nojs@example.com")).ToBeVisible())
	must(t, button(p, "Allow").Click())
	must(t, expect.Page(p).ToHaveURL(regexpOf(`/rp-callback\?code=[^&]+&iss=[^&]+&state=nojs$`)))
}

// leave takes the tab to a blank page, so that nothing on it (the live
// stream of a session about to end) can move it while the test works
// elsewhere.
func leave(t *testing.T, p playwright.Page) {
	t.Helper()
	goTo(t, p, "about:blank")
}
