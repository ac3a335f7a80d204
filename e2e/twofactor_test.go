package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/playwright-community/playwright-go"
	"github.com/pquerna/otp"

	"doorman/twofactor"
)

// setUpTwoFactor turns two-factor on through the UI of p (signed in, on the
// two-factor page's "Off" state) and returns the secret, read off the page
// the way an authenticator app reads the QR code's URI.
func setUpTwoFactor(t *testing.T, srv *server, p playwright.Page, check func(name string)) string {
	t.Helper()
	must(t, p.GetByLabel("Your password").Fill(pass1))
	must(t, button(p, "Set up two-factor").Click())
	must(t, expect.Locator(heading(p, "1. Add Doorman to your authenticator app")).ToBeVisible())
	// The QR code is served by Doorman itself and actually loads.
	qr := p.GetByRole("img", playwright.PageGetByRoleOptions{Name: "QR code to add Doorman to your authenticator app"})
	must(t, expect.Locator(qr).ToBeVisible())
	// decode() settles once the image has loaded (or failed to).
	loaded, err := qr.Evaluate("img => img.decode().then(() => img.naturalWidth > 0, () => false)", nil)
	must(t, err)
	if loaded != true {
		t.Fatal("the QR code image did not load")
	}
	if check != nil {
		check("two-factor-setup")
	}
	uri, err := p.Locator("[data-otpauth]").GetAttribute("data-otpauth")
	must(t, err)
	key, err := otp.NewKeyFromURL(uri)
	must(t, err)
	shown, err := p.Locator("[data-secret]").TextContent()
	must(t, err)
	if strings.ReplaceAll(shown, " ", "") != key.Secret() {
		t.Fatalf("the typed secret %q is not the QR code's", shown)
	}
	enterCode(t, p, "Code from your authenticator app", "Turn on two-factor", heading(p, "Two-factor is on"), func() string {
		code, err := twofactor.Code(key.Secret(), twofactor.Step(srv.clock.Now()))
		must(t, err)
		return code
	})
	must(t, expect.Locator(p.Locator("[data-recovery-codes] li")).ToHaveCount(10))
	return key.Secret()
}

// verifyEmail opens, in p, the link the sign-up mailed to address:
// two-factor is turned on only for a verified address.
func verifyEmail(t *testing.T, srv *server, p playwright.Page, address string) {
	t.Helper()
	link := srv.mailTo(t, address, "Confirm your email").Link(srv.URL + "/email/verify")
	if link == "" {
		t.Fatal("no verification link in the sign-up's mail")
	}
	_, err := p.Goto(link)
	must(t, err)
	must(t, expect.Locator(p.GetByText(address+" is verified")).ToBeVisible())
}

// enterCode types the code code() gives into the field labelled label and
// submits with button until done is visible. A test sharing its server's
// clock with others running at once (the accessibility pass) can see that
// clock jump between reading a code and the server checking it; a person
// would simply type the next code, and so does this, at most three times.
func enterCode(t *testing.T, p playwright.Page, label, submit string, done playwright.Locator, code func() string) {
	t.Helper()
	for attempt := 1; ; attempt++ {
		must(t, p.GetByLabel(label).Fill(code()))
		must(t, button(p, submit).Click())
		must(t, expect.Locator(done.Or(p.Locator(".field-error"))).ToBeVisible())
		if ok, err := done.IsVisible(); err == nil && ok {
			return
		}
		if attempt == 3 {
			t.Fatal("three codes in a row were refused")
		}
	}
}

// codeNow is the authenticator's code for the next time step: the server's
// clock moves on first, as a person waits for a fresh code (the last one
// was used and is refused as a replay).
func codeNow(t *testing.T, srv *server, secret string) string {
	t.Helper()
	srv.advance(30 * time.Second)
	code, err := twofactor.Code(secret, twofactor.Step(srv.clock.Now()))
	must(t, err)
	return code
}

func signInWithPassword(t *testing.T, p playwright.Page, address string) {
	t.Helper()
	goTo(t, p, "/login")
	must(t, p.GetByLabel("Email").Fill(address))
	must(t, p.GetByLabel("Password").Fill(pass1))
	must(t, button(p, "Sign in").Click())
	must(t, expect.Page(p).ToHaveURL(regexpOf(`/login/two-factor$`)))
}

// Flow: two-factor on a phone — turn it on, sign in with a code, sign in
// with a recovery code, turn it off.
func TestFlowTwoFactor(t *testing.T) {
	t.Parallel()
	srv := startServer(t)
	p := newDevice(t, srv, iPhone13, ipLondon)
	signUp(t, p, email, pass1)
	must(t, link(p, "Set up two-factor").Click())
	must(t, expect.Locator(heading(p, "Two-factor authentication")).ToBeVisible())
	// Not before the address is verified.
	must(t, expect.Locator(p.GetByText("Two-factor can be turned on once your email address")).ToBeVisible())
	must(t, expect.Locator(button(p, "Set up two-factor")).ToHaveCount(0))
	verifyEmail(t, srv, p, email)
	goTo(t, p, "/settings/security/two-factor")
	secret := setUpTwoFactor(t, srv, p, nil)
	codes, err := p.Locator("[data-recovery-codes] code").AllTextContents()
	must(t, err)
	must(t, link(p, "I saved them").Click())
	must(t, expect.Locator(heading(p, "On")).ToBeVisible())

	// Sign in again: password, then the code.
	signOut(t, p)
	signInWithPassword(t, p, email)
	must(t, p.GetByLabel("Code from your authenticator app, or a recovery code").Fill("000000"))
	must(t, button(p, "Verify").Click())
	must(t, expect.Locator(p.GetByText("That code didn't work.")).ToBeVisible())
	must(t, expect.Locator(p.GetByLabel("Code from your authenticator app, or a recovery code")).ToHaveAttribute("aria-invalid", "true"))
	must(t, p.GetByLabel("Code from your authenticator app, or a recovery code").Fill(codeNow(t, srv, secret)))
	must(t, button(p, "Verify").Click())
	must(t, expect.Page(p).ToHaveURL(regexpOf(`/settings/security$`)))
	must(t, expect.Locator(p.Locator(`[data-current="true"]`)).ToBeVisible())

	// Lost the phone: a recovery code.
	signOut(t, p)
	signInWithPassword(t, p, email)
	must(t, p.GetByLabel("Code from your authenticator app, or a recovery code").Fill(codes[0]))
	must(t, button(p, "Verify").Click())
	must(t, expect.Page(p).ToHaveURL(regexpOf(`/settings/security$`)))
	must(t, expect.Locator(p.GetByRole("status")).ToContainText("9 codes left"))
	goTo(t, p, "/settings/security/two-factor")
	must(t, expect.Locator(p.Locator("[data-recovery-left]")).ToContainText("9 of 10 recovery codes left"))

	// Turn it off: password and a current code.
	off := p.Locator("form").Filter(playwright.LocatorFilterOptions{Has: button(p, "Turn off two-factor")})
	must(t, off.GetByLabel("Your password").Fill(pass1))
	must(t, off.GetByLabel("Code from your authenticator app, or a recovery code").Fill(codeNow(t, srv, secret)))
	must(t, button(p, "Turn off two-factor").Click())
	must(t, expect.Locator(p.GetByRole("status")).ToContainText("Two-factor authentication is off."))
	signOut(t, p)
	goTo(t, p, "/login")
	must(t, p.GetByLabel("Email").Fill(email))
	must(t, p.GetByLabel("Password").Fill(pass1))
	must(t, button(p, "Sign in").Click())
	must(t, expect.Page(p).ToHaveURL(regexpOf(`/settings/security$`)))
}
