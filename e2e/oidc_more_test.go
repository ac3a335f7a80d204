package e2e

import (
	"errors"
	"net/url"
	"regexp"
	"testing"

	"github.com/playwright-community/playwright-go"
	"golang.org/x/oauth2"

	"doorman/examples/relying-party/rp"
)

// More of signing in to an app through Doorman in Chromium, each way a
// person can, with the app on its own site (localhost, where Doorman is
// 127.0.0.1): every form on the way posts to Doorman and ends in a
// redirect to another origin, which the browser checks against the page's
// form-action; and the ways a Doorman session ends that reach the app.

// expectCrossOrigin fails the test unless the app and Doorman are two
// origins to the browser (else a form-action block could not show).
func expectCrossOrigin(t *testing.T, srv *server, app *relyingParty) {
	t.Helper()
	a, err := url.Parse(app.URL)
	must(t, err)
	d, err := url.Parse(srv.URL)
	must(t, err)
	if a.Scheme+"://"+a.Host == d.Scheme+"://"+d.Host {
		t.Fatalf("the app (%s) and Doorman (%s) share an origin", app.URL, srv.URL)
	}
}

// An app that is not the operator's own asks for consent, on Doorman's
// page, before it signs the person in: Cancel sends the browser back to
// the app with access_denied and signs nothing in; Allow lands on the
// app, which shows the person. Both buttons post a form to Doorman that
// ends in a redirect to the app's site.
func TestOIDCConsentLeadsToTheAppsSite(t *testing.T) {
	t.Parallel()
	srv := startServer(t)
	app := startRPWith(t, srv, "third", "Wiki", false)
	expectCrossOrigin(t, srv, app)
	p := newDevice(t, srv, desktopChrome, ipBerlin)
	signUp(t, p, email, pass1)

	consent := func() {
		t.Helper()
		goTo(t, p, app.URL)
		expectRPHome(t, p, app, "")
		clickSignInWithDoorman(t, p)
		must(t, expect.Page(p).ToHaveURL(regexp.MustCompile("^"+regexp.QuoteMeta(srv.URL)+`/oidc/continue\?id=`)))
		must(t, expect.Locator(heading(p, "Sign in to Wiki?")).ToBeVisible())
	}
	// Cancel first: back at the app, told it was refused, nothing signed in.
	consent()
	must(t, button(p, "Cancel").Click())
	must(t, expect.Page(p).ToHaveURL(regexp.MustCompile("^"+regexp.QuoteMeta(app.URL)+`/callback\?`)))
	must(t, expect.Locator(p.GetByRole("alert")).ToHaveText("Doorman did not sign you in (access_denied)."))
	app.waitEvent(t, "the refused sign-in", func(e rp.Event) bool {
		return e.Kind == rp.EventSignInFailed && e.Reason == "provider answered access_denied"
	})
	if n := len(app.rp.Sessions()); n != 0 {
		t.Fatalf("the app holds %d sessions after Cancel", n)
	}

	// Then Allow: on the app, signed in as the person.
	consent()
	must(t, button(p, "Allow").Click())
	expectRPHome(t, p, app, email)
	app.waitEvent(t, "the sign-in", func(e rp.Event) bool { return e.Kind == rp.EventSignedIn })

	// Remembered: the next sign-in through the app is not asked again.
	must(t, button(p, "Sign out").Click())
	expectRPHome(t, p, app, "")
	signInByRequest(t, p, email, pass1, false)
	clickSignInWithDoorman(t, p)
	expectRPHome(t, p, app, email)
}

// Signed out of Doorman, a person signs in to the app with an emailed
// link: the app sends them to Doorman's sign-in page, they ask for a link
// there, open the mail (from the real SMTP server) in the same browser,
// and land back on the app, signed in. The app's Sign out then ends that
// Doorman session too (RP-initiated logout): back on the app, signed out,
// and Doorman's pages in that browser ask to sign in.
func TestOIDCSignInWithEmailedLinkAndSignOutFromTheApp(t *testing.T) {
	t.Parallel()
	srv := startServer(t)
	app := startRP(t, srv, "wiki", "Wiki")
	expectCrossOrigin(t, srv, app)
	setup := newDevice(t, srv, pixel7, ipTokyo)
	signInByRequest(t, setup, email, pass1, true)
	srv.mailTo(t, email, "Confirm your email")

	p := newDevice(t, srv, iPhone13, ipLondon)
	goTo(t, p, app.URL)
	clickSignInWithDoorman(t, p)
	expectDoormanSignIn(t, p, srv)
	must(t, p.GetByLabel("Email").Fill(email))
	must(t, button(p, "Email me a sign-in link").Click())
	must(t, expect.Locator(p.GetByText("we sent it a sign-in link")).ToBeVisible())
	// Still on the way to the app: the page says so.
	expectDoormanSignIn(t, p, srv)
	must(t, expect.Locator(p.GetByText("to continue to Wiki")).ToBeVisible())
	l := srv.mailTo(t, email, "Your Doorman sign-in link").Link(srv.URL + "/login/link/open")
	if l == "" {
		t.Fatal("no sign-in link in the mail")
	}
	goTo(t, p, l)
	expectRPHome(t, p, app, email)
	e := app.waitEvent(t, "the sign-in", func(e rp.Event) bool { return e.Kind == rp.EventSignedIn })

	// The Doorman session that signed in is this browser's, by the link.
	doorman := newTab(t, p)
	goTo(t, doorman, srv.URL+"/settings/security")
	if sid := currentSessionID(t, doorman); sid != e.SID {
		t.Fatalf("the app signed in with Doorman session %s; this browser's is %s", e.SID, sid)
	}
	must(t, doorman.Locator(`[data-current="true"] a`).Click())
	must(t, expect.Locator(doorman.GetByText("Emailed sign-in link")).ToBeVisible())
	goTo(t, doorman, "about:blank")

	// The app's Sign out: signed out of the app and of Doorman, back on
	// the app.
	must(t, button(p, "Sign out").Click())
	expectRPHome(t, p, app, "")
	app.waitEvent(t, "the sign-out", func(ev rp.Event) bool { return ev.Kind == rp.EventSignedOut && ev.SID == e.SID })
	goTo(t, doorman, srv.URL+"/settings/security")
	must(t, expect.Page(doorman).ToHaveURL(regexp.MustCompile("^"+regexp.QuoteMeta(srv.URL)+`/login(\?|$)`)))
	must(t, expect.Locator(heading(doorman, "Sign in")).ToBeVisible())
	// The other device's Doorman session lives on, and lists no session
	// of this browser.
	goTo(t, setup, "/settings/security")
	must(t, expect.Locator(setup.Locator("[data-session-id]")).ToHaveCount(1))
	if got := currentSessionID(t, setup); got == e.SID {
		t.Fatal("the other device holds the session the app ended")
	}
	app.noRefusedLogouts(t)
}

// A password reset through the emailed link signs the person out of the
// app everywhere: the app receives a verified logout token naming only
// the person (no sid), and its next page is signed out.
func TestOIDCPasswordResetSignsOutOfTheApp(t *testing.T) {
	t.Parallel()
	srv := startServer(t)
	app := startRP(t, srv, "wiki", "Wiki")
	laptop := newDevice(t, srv, desktopChrome, ipBerlin)
	signUp(t, laptop, email, pass1)
	laptopSID := currentSessionID(t, laptop)
	goTo(t, laptop, app.URL)
	clickSignInWithDoorman(t, laptop)
	expectRPHome(t, laptop, app, email)
	sub := app.sessionOf(t, laptopSID).Sub

	// Forgot the password, on the phone: the reset link from the mail.
	phone := newDevice(t, srv, iPhone13, ipLondon)
	goTo(t, phone, "/password/forgot")
	must(t, phone.GetByLabel("Email").Fill(email))
	must(t, button(phone, "Send reset link").Click())
	must(t, expect.Locator(phone.GetByText("If an account uses "+email+", we sent it a link")).ToBeVisible())
	reset := srv.mailTo(t, email, "Reset your Doorman password").Link(srv.URL + "/password/reset")
	if reset == "" {
		t.Fatal("no reset link in the mail")
	}
	goTo(t, phone, reset)
	must(t, phone.GetByLabel("New password").Fill("a brand new password"))
	must(t, button(phone, "Set new password").Click())
	must(t, expect.Page(phone).ToHaveURL(regexpOf(`/settings/security$`)))

	app.waitEvent(t, "a verified logout token naming only the person", func(e rp.Event) bool {
		return e.Kind == rp.EventLogoutVerified && e.Sub == sub && e.SID == ""
	})
	for _, s := range app.rp.Sessions() {
		if s.Sub == sub {
			t.Errorf("the app still holds a session of the person (sid %s) after the reset", s.SID)
		}
	}
	reload(t, laptop)
	expectRPHome(t, laptop, app, "")
	must(t, expect.Locator(laptop.GetByRole("status")).ToHaveText(rpBackchannelEnded))
	app.noRefusedLogouts(t)
}

// A refresh token the app has spent (it rotates on every use) comes back,
// as a stolen copy would: Doorman refuses it with invalid_grant and ends
// its whole family, so the app's current refresh token is refused too and
// the app signs the person out.
func TestOIDCReusedRefreshTokenEndsItsFamily(t *testing.T) {
	t.Parallel()
	srv := startServer(t)
	app := startRP(t, srv, "wiki", "Wiki")
	p := newDevice(t, srv, desktopChrome, ipBerlin)
	signUp(t, p, email, pass1)
	sid := currentSessionID(t, p)
	goTo(t, p, app.URL)
	clickSignInWithDoorman(t, p)
	expectRPHome(t, p, app, email)
	spent := app.sessionOf(t, sid).RefreshToken
	if spent == "" {
		t.Fatal("the app holds no refresh token")
	}
	must(t, button(p, "Refresh tokens").Click())
	must(t, expect.Locator(p.GetByRole("status")).ToContainText("Doorman accepted the refresh token"))
	if current := app.sessionOf(t, sid).RefreshToken; current == "" || current == spent {
		t.Fatalf("the refresh token did not rotate")
	}

	// The spent one, presented as the app's server would (client secret
	// in the header).
	thief := oauth2.Config{ClientID: "wiki", ClientSecret: rpSecret,
		Endpoint: oauth2.Endpoint{TokenURL: srv.URL + "/oidc/token", AuthStyle: oauth2.AuthStyleInHeader}}
	_, err := thief.TokenSource(t.Context(), &oauth2.Token{RefreshToken: spent}).Token()
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) || re.ErrorCode != "invalid_grant" {
		t.Fatalf("the spent refresh token: %v, want invalid_grant", err)
	}
	// The family is gone: the app's current token is refused too.
	must(t, button(p, "Refresh tokens").Click())
	must(t, expect.Locator(p.GetByRole("status")).ToHaveText(
		"Doorman refused the refresh token: invalid_grant. You are signed out of this app."))
	must(t, expect.Locator(link(p, "Sign in with Doorman")).ToBeVisible())
}

// An authorization request whose redirect URI is not the app's registered
// one, exactly, is answered on Doorman's side (the provider library's
// plain error text): the browser is never sent to it, though signed in.
func TestOIDCWrongRedirectURIStaysOnDoorman(t *testing.T) {
	t.Parallel()
	srv := startServer(t)
	app := startRP(t, srv, "wiki", "Wiki")
	p := newDevice(t, srv, desktopChrome, ipBerlin)
	signUp(t, p, email, pass1)
	res, err := p.Context().Request().Get(app.URL+"/login", playwright.APIRequestContextGetOptions{MaxRedirects: playwright.Int(0)})
	must(t, err)
	authorize, err := url.Parse(res.Headers()["location"])
	must(t, err)
	must(t, res.Dispose())
	for _, redirect := range []string{"http://evil.example/callback", app.URL + "/callback/", app.URL + "/callback?x=1"} {
		q := authorize.Query()
		q.Set("redirect_uri", redirect)
		authorize.RawQuery = q.Encode()
		resp, err := p.Goto(authorize.String())
		must(t, err)
		if resp.Status() != 400 {
			t.Errorf("redirect_uri %s: status %d, want 400", redirect, resp.Status())
		}
		must(t, expect.Page(p).ToHaveURL(regexp.MustCompile("^"+regexp.QuoteMeta(srv.URL)+`/oidc/authorize\?`)))
		must(t, expect.Locator(p.Locator("body")).ToContainText("The requested redirect_uri is missing in the client configuration."))
	}
	if n := len(app.rp.Events()); n != 0 {
		t.Errorf("the app saw %d events: %+v", n, app.rp.Events())
	}
}
