package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/playwright-community/playwright-go"

	"doorman/db"
	"doorman/examples/relying-party/rp"
)

// Signing in to an app through Doorman, and Doorman's logout reaching it,
// in a real Chromium. The app is the example relying party
// (examples/relying-party/rp: golang.org/x/oauth2 for the code flow with
// PKCE, go-oidc to verify the ID token and, with VerifyLogout, the logout
// tokens), served on its own origin and registered as the operator's own
// (first-party) app with its redirect, post-logout and back-channel
// logout URIs. Everything a person sees of it is read off its page; what
// it received server to server, off its event log (rp.WaitEvent).

// rpSecret is the app's client secret (a confidential client).
const rpSecret = "the-example-apps-secret-0123456789abcdef"

// rpBackchannelEnded is what the app's page says to a browser whose
// session a logout token ended.
const rpBackchannelEnded = "Doorman signed you out of this app (back-channel logout)."

// relyingParty is the example app, beside one Doorman server.
type relyingParty struct {
	// URL is the app's origin. Its host is localhost, not Doorman's
	// 127.0.0.1: another site, as a real app is (its cookies are not
	// Doorman's, and Doorman's reach it only as SameSite=Lax allows).
	URL string
	rp  *rp.RP
	// down makes its back-channel logout endpoint answer 503, as an app
	// behind its proxy while it restarts.
	down atomic.Bool
}

// startRP serves the example app and registers it with srv as `doorman
// apps add --first-party --confidential` would. It reads srv's clock: two
// machines that agree on the time (the app checks a logout token's iat
// and exp, and the test moves srv's clock).
func startRP(t *testing.T, srv *server, clientID, name string) *relyingParty {
	t.Helper()
	return startRPWith(t, srv, clientID, name, true)
}

// startRPWith is startRP; an app that is not firstParty is registered
// without --first-party, so that its sign-in asks for consent.
func startRPWith(t *testing.T, srv *server, clientID, name string, firstParty bool) *relyingParty {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	a := &relyingParty{URL: "http://localhost:" + port}
	a.rp, err = rp.New(rp.Config{Issuer: srv.URL, ClientID: clientID, ClientSecret: rpSecret, BaseURL: a.URL,
		Now: srv.clock.Now, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Path == "/backchannel-logout" && a.down.Load() {
			http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
			return
		}
		a.rp.ServeHTTP(w, req)
	})}
	go hs.Serve(ln)
	t.Cleanup(func() { hs.Close() })
	h := sha256.Sum256([]byte(rpSecret))
	must(t, srv.app.Store.CreateApp(t.Context(), db.App{ClientID: clientID, Name: name, CreatedAt: srv.clock.Now(),
		SecretHash: h[:], FirstParty: firstParty, RedirectURIs: []string{a.URL + "/callback"},
		PostLogoutRedirectURIs: []string{a.URL + "/"}, BackchannelLogoutURI: a.URL + "/backchannel-logout"}))
	return a
}

// waitEvent waits for the first event, past or future, that match accepts.
func (a *relyingParty) waitEvent(t *testing.T, what string, match func(rp.Event) bool) rp.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	e, err := a.rp.WaitEvent(ctx, match)
	if err != nil {
		t.Fatalf("the app never saw %s: %v; its events: %+v", what, err, a.rp.Events())
	}
	return e
}

// noRefusedLogouts fails the test if the app refused a logout token: every
// one Doorman sends must verify.
func (a *relyingParty) noRefusedLogouts(t *testing.T) {
	t.Helper()
	for _, e := range a.rp.Events() {
		if e.Kind == rp.EventLogoutRefused {
			t.Errorf("the app refused a logout token: %s", e.Reason)
		}
	}
}

// sessionOf returns the app's one session of the Doorman session sid.
func (a *relyingParty) sessionOf(t *testing.T, sid string) rp.Session {
	t.Helper()
	for _, s := range a.rp.Sessions() {
		if s.SID == sid {
			return s
		}
	}
	t.Fatalf("the app holds no session of the Doorman session %s: %+v", sid, a.rp.Events())
	return rp.Session{}
}

// newTab opens another tab in p's browser context (the same device), with
// the same check that no page trips its Content-Security-Policy.
func newTab(t *testing.T, p playwright.Page) playwright.Page {
	t.Helper()
	tab, err := p.Context().NewPage()
	must(t, err)
	tab.OnConsole(func(m playwright.ConsoleMessage) {
		if strings.Contains(m.Text(), "Content Security Policy") {
			t.Errorf("CSP violation: %s", m.Text())
		}
	})
	return tab
}

// rpSignedIn is the app's page saying who is signed in.
func rpSignedIn(p playwright.Page, address string) playwright.Locator {
	return p.GetByText("Signed in as " + address)
}

// expectRPHome waits until p is on the app's home page and it says
// whether (and who) is signed in.
func expectRPHome(t *testing.T, p playwright.Page, a *relyingParty, address string) {
	t.Helper()
	must(t, expect.Page(p).ToHaveURL(regexp.MustCompile("^"+regexp.QuoteMeta(a.URL)+"/$")))
	if address == "" {
		must(t, expect.Locator(p.GetByText("Not signed in", playwright.PageGetByTextOptions{Exact: playwright.Bool(true)})).ToBeVisible())
		return
	}
	must(t, expect.Locator(rpSignedIn(p, address)).ToBeVisible())
}

// clickSignInWithDoorman starts the app's sign-in from its home page.
func clickSignInWithDoorman(t *testing.T, p playwright.Page) {
	t.Helper()
	must(t, link(p, "Sign in with Doorman").Click())
}

// expectDoormanSignIn waits until p is on Doorman's sign-in page on its
// way back to an app's sign-in (next=).
func expectDoormanSignIn(t *testing.T, p playwright.Page, srv *server) {
	t.Helper()
	must(t, expect.Page(p).ToHaveURL(regexp.MustCompile("^"+regexp.QuoteMeta(srv.URL)+`/login\?next=%2Foidc%2Fcontinue`)))
}

// currentSessionID is the Doorman session of the tab p (on the Security page).
func currentSessionID(t *testing.T, p playwright.Page) string {
	t.Helper()
	id, err := p.Locator(`[data-current="true"]`).GetAttribute("data-session-id")
	must(t, err)
	if id == "" {
		t.Fatal("the Security page names no current session")
	}
	return id
}

// idTokenAMR reads the amr claim of an ID token the app verified.
func idTokenAMR(t *testing.T, raw string) []string {
	t.Helper()
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		t.Fatalf("the app's ID token is no JWS: %d parts", len(parts))
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	must(t, err)
	var c struct {
		AMR []string `json:"amr"`
	}
	must(t, json.Unmarshal(payload, &c))
	return c.AMR
}

// A person signs in to an app with Doorman; ending that Doorman session
// from another device signs them out of the app (a verified logout token
// naming the session), and "Sign out everywhere" ends what the app holds
// of them: its refresh token at once, its sessions by a logout token
// naming only the person, delivered once the app answers again.
func TestOIDCSignInAndLogoutReachTheApp(t *testing.T) {
	t.Parallel()
	srv := startServer(t)
	app := startRP(t, srv, "wiki", "Wiki")

	// Sign up in Doorman, then "Sign in with Doorman" on the app: signed
	// in already, straight back to the app.
	laptop := newDevice(t, srv, desktopChrome, ipBerlin)
	signUp(t, laptop, email, pass1)
	laptopSID := currentSessionID(t, laptop)
	laptopApp := newTab(t, laptop)
	goTo(t, laptopApp, app.URL)
	expectRPHome(t, laptopApp, app, "")
	clickSignInWithDoorman(t, laptopApp)
	expectRPHome(t, laptopApp, app, email)
	// The app's session is the laptop's Doorman session.
	sub := app.sessionOf(t, laptopSID).Sub
	must(t, expect.Locator(laptopApp.Locator("code").Filter(playwright.LocatorFilterOptions{HasText: laptopSID})).ToHaveCount(1))

	// From the phone, the laptop's session is signed out on the Security
	// page (its X button), while the laptop's Doorman tab is open.
	phone := newDevice(t, srv, iPhone13, ipLondon)
	signInByRequest(t, phone, email, pass1, false)
	goTo(t, phone, "/settings/security")
	reload(t, laptop)
	must(t, expect.Locator(laptop.Locator("[data-session-id]")).ToHaveCount(2))
	must(t, expect.Locator(laptop.Locator(`body[data-live-stream="open"]`)).ToHaveCount(1))
	release := holdSignIn(t, laptop)
	must(t, button(phone, "Sign out Chrome on Windows, Berlin").Click())
	// The confirmation names the app the laptop's session signed in to:
	// signed out of it, or being told, if its answer took longer than the
	// page waits for (a busy machine).
	must(t, expect.Locator(phone.GetByRole("status")).ToHaveText(
		regexp.MustCompile(`^Signed out Chrome on Windows\. (Signed out of Wiki|Telling Wiki to sign you out)\.$`)))
	// The app received a logout token for exactly that session, verified
	// it, and ended its session of it.
	e := app.waitEvent(t, "a verified logout token for the laptop's session", func(e rp.Event) bool {
		return e.Kind == rp.EventLogoutVerified && e.SID == laptopSID
	})
	if e.Sub != sub || e.Ended != 1 {
		t.Errorf("logout token for sub %q ended %d app sessions; want %q and 1", e.Sub, e.Ended, sub)
	}
	reload(t, laptopApp)
	expectRPHome(t, laptopApp, app, "")
	must(t, expect.Locator(laptopApp.GetByRole("status")).ToHaveText(rpBackchannelEnded))
	// And the laptop's Doorman tab says it was signed out.
	must(t, expect.Locator(laptop.Locator("#live-notice")).ToHaveText("You were signed out of this device."))
	release()
	expectSignedOut(t, laptop)

	// Signed out of Doorman, the app's sign-in goes through Doorman's
	// sign-in page and back to the app.
	clickSignInWithDoorman(t, laptopApp)
	expectDoormanSignIn(t, laptopApp, srv)
	must(t, laptopApp.GetByLabel("Email").Fill(email))
	must(t, laptopApp.GetByLabel("Password").Fill(pass1))
	must(t, button(laptopApp, "Sign in").Click())
	expectRPHome(t, laptopApp, app, email)
	// The phone signs in to the app too (signed in to Doorman: straight
	// through).
	phoneApp := newTab(t, phone)
	goTo(t, phoneApp, app.URL)
	clickSignInWithDoorman(t, phoneApp)
	expectRPHome(t, phoneApp, app, email)
	// The laptop's refresh token works.
	must(t, button(laptopApp, "Refresh tokens").Click())
	must(t, expect.Locator(laptopApp.GetByRole("status")).ToContainText("Doorman accepted the refresh token"))
	must(t, expect.Locator(rpSignedIn(laptopApp, email)).ToBeVisible())

	// The app's back-channel endpoint is down; "Sign out everywhere" from
	// the phone.
	app.down.Store(true)
	must(t, button(phone, "Sign out everywhere").Click())
	dialog := phone.GetByRole("dialog", playwright.PageGetByRoleOptions{Name: "Sign out everywhere?"})
	must(t, dialog.GetByRole("button", playwright.LocatorGetByRoleOptions{Name: "Sign out everywhere", Exact: playwright.Bool(true)}).Click())
	must(t, expect.Page(phone).ToHaveURL(regexpOf(`/login$`)))
	must(t, expect.Locator(phone.GetByRole("status")).ToContainText("You signed out everywhere: 2 sessions ended."))
	// The logout has not reached the app, yet its refresh token is dead
	// already: invalid_grant, and the app signs the laptop out.
	must(t, button(laptopApp, "Refresh tokens").Click())
	must(t, expect.Locator(laptopApp.GetByRole("status")).ToHaveText(
		"Doorman refused the refresh token: invalid_grant. You are signed out of this app."))
	must(t, expect.Locator(laptopApp.GetByRole("link", playwright.PageGetByRoleOptions{Name: "Sign in with Doorman"})).ToBeVisible())

	// The app answers again: the logout naming only the person arrives
	// (Doorman retries after its backoff, on its clock, which the test
	// moves past it each round), and no session of theirs is left in it.
	app.down.Store(false)
	subOnly := func(e rp.Event) bool { return e.Kind == rp.EventLogoutVerified && e.Sub == sub && e.SID == "" }
	deadline := time.Now().Add(waitTimeout)
	for !slices.ContainsFunc(app.rp.Events(), subOnly) {
		if time.Now().After(deadline) {
			t.Fatalf("no logout token naming only the person reached the app; its events: %+v", app.rp.Events())
		}
		srv.advance(15 * time.Second)
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, _ = app.rp.WaitEvent(ctx, subOnly) // an error here is only "not yet": the loop checks again
		cancel()
	}
	for _, s := range app.rp.Sessions() {
		if s.Sub == sub {
			t.Errorf("the app still holds a session of the person (sid %s) after Sign out everywhere", s.SID)
		}
	}
	reload(t, phoneApp)
	expectRPHome(t, phoneApp, app, "")
	must(t, expect.Locator(phoneApp.GetByRole("status")).ToHaveText(rpBackchannelEnded))
	app.noRefusedLogouts(t)
}

// A person with two-factor on signs in to an app from signed out: the
// app sends them to Doorman's sign-in page, then its second step, and
// they land back on the app, whose ID token says both factors were used.
func TestOIDCSignInWithTwoFactor(t *testing.T) {
	t.Parallel()
	srv := startServer(t)
	app := startRP(t, srv, "grafana", "Grafana")
	p := newDevice(t, srv, iPhone13, ipLondon)
	signUp(t, p, email, pass1)
	verifyEmail(t, srv, p, email)
	goTo(t, p, "/settings/security/two-factor")
	secret := setUpTwoFactor(t, srv, p, nil)
	must(t, link(p, "I saved them").Click())
	must(t, expect.Locator(heading(p, "On")).ToBeVisible())
	signOut(t, p)

	goTo(t, p, app.URL)
	clickSignInWithDoorman(t, p)
	expectDoormanSignIn(t, p, srv)
	must(t, p.GetByLabel("Email").Fill(email))
	must(t, p.GetByLabel("Password").Fill(pass1))
	must(t, button(p, "Sign in").Click())
	must(t, expect.Page(p).ToHaveURL(regexp.MustCompile("^"+regexp.QuoteMeta(srv.URL)+`/login/two-factor\?next=%2Foidc%2Fcontinue`)))
	enterCode(t, p, "Code from your authenticator app, or a recovery code", "Verify", rpSignedIn(p, email), func() string {
		return codeNow(t, srv, secret)
	})
	expectRPHome(t, p, app, email)
	e := app.waitEvent(t, "the sign-in", func(e rp.Event) bool { return e.Kind == rp.EventSignedIn })
	if amr := idTokenAMR(t, app.sessionOf(t, e.SID).IDToken); !slices.Contains(amr, "mfa") || !slices.Contains(amr, "otp") {
		t.Errorf("the ID token's amr is %v; want pwd, otp and mfa", amr)
	}
}

// An app asks for a sign-in without showing Doorman (prompt=none) while
// the browser is signed out of Doorman: it is sent straight back with
// login_required, and says so; Doorman's sign-in page is never shown.
func TestOIDCPromptNoneSignedOut(t *testing.T) {
	t.Parallel()
	srv := startServer(t)
	app := startRP(t, srv, "wiki", "Wiki")
	p := newDevice(t, srv, desktopChrome, ipBerlin)
	// The example app has no button for prompt=none: the test starts its
	// sign-in (the app sets its state, nonce and PKCE cookie in this
	// browser) and adds prompt=none to where it sends the browser, as an
	// app checking silently for a Doorman session would.
	res, err := p.Context().Request().Get(app.URL+"/login", playwright.APIRequestContextGetOptions{MaxRedirects: playwright.Int(0)})
	must(t, err)
	if res.Status() != http.StatusFound {
		t.Fatalf("the app's /login answered %d, want 302 to Doorman", res.Status())
	}
	authorize, err := url.Parse(res.Headers()["location"])
	must(t, err)
	must(t, res.Dispose())
	if !strings.HasPrefix(authorize.String(), srv.URL+"/") {
		t.Fatalf("the app sends the browser to %s, not to Doorman", authorize)
	}
	q := authorize.Query()
	q.Set("prompt", "none")
	authorize.RawQuery = q.Encode()
	goTo(t, p, authorize.String())
	must(t, expect.Page(p).ToHaveURL(regexp.MustCompile("^"+regexp.QuoteMeta(app.URL)+`/callback\?`)))
	must(t, expect.Locator(p.GetByRole("alert")).ToHaveText("Doorman did not sign you in (login_required)."))
	app.waitEvent(t, "the refused sign-in", func(e rp.Event) bool {
		return e.Kind == rp.EventSignInFailed && e.Reason == "provider answered login_required"
	})
	if n := len(app.rp.Sessions()); n != 0 {
		t.Errorf("the app holds %d sessions after a refused sign-in", n)
	}
}
