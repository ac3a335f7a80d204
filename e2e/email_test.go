package e2e

import (
	"testing"

	"github.com/playwright-community/playwright-go"

	"doorman/handlers"
)

// The email flows in Chromium: the mail comes from the real SMTP server the
// app sent it to, and the browser opens the link in it.

func TestFlowPasswordReset(t *testing.T) {
	t.Parallel()
	srv := startServer(t)
	desktop := newDevice(t, srv, desktopChrome, ipBerlin)
	signUp(t, desktop, email, pass1)
	must(t, expect.Locator(desktop.Locator(`body[data-live-stream="open"]`)).ToHaveCount(1))

	phone := newDevice(t, srv, iPhone13, ipLondon)
	goTo(t, phone, "/login")
	must(t, link(phone, "Forgot your password?").Click())
	must(t, expect.Locator(heading(phone, "Forgot your password?")).ToBeVisible())
	must(t, phone.GetByLabel("Email").Fill(email))
	must(t, button(phone, "Send reset link").Click())
	must(t, expect.Locator(phone.GetByText("If an account uses "+email+", we sent it a link")).ToBeVisible())

	m := srv.mailTo(t, email, "Reset your Doorman password")
	reset := m.Link(srv.URL + "/password/reset")
	if reset == "" {
		t.Fatalf("no reset link in the mail:\n%s", m.Text)
	}
	goTo(t, phone, reset)
	must(t, expect.Locator(heading(phone, "Choose a new password")).ToBeVisible())
	// The token leaves the address bar once the page holds it.
	must(t, expect.Page(phone).ToHaveURL(regexpOf(`/password/reset$`)))
	must(t, phone.GetByLabel("New password").Fill("a brand new password"))
	must(t, button(phone, "Set new password").Click())
	must(t, expect.Page(phone).ToHaveURL(regexpOf(`/settings/security$`)))
	must(t, expect.Locator(phone.GetByText("Your password was changed.")).ToBeVisible())
	srv.mailTo(t, email, "Your Doorman password was changed")

	// The desktop was signed out by the reset: its open tab is told at once
	// and moves to sign-in by itself.
	expectSignedOut(t, desktop)
	// The same link a second time: said plainly, with a way on.
	goTo(t, phone, reset)
	must(t, expect.Locator(phone.GetByRole("alert")).ToContainText("already used"))
	must(t, expect.Locator(link(phone, "Send a new link")).ToBeVisible())
}

func TestFlowNewSignInAlertThisWasntMe(t *testing.T) {
	t.Parallel()
	srv := startServer(t)
	owner := newDevice(t, srv, desktopChrome, ipBerlin)
	signUp(t, owner, email, pass1)
	must(t, expect.Locator(owner.Locator(`body[data-live-stream="open"]`)).ToHaveCount(1))
	srv.mailTo(t, email, "Confirm your email")

	// Someone with the password, elsewhere.
	thief := newDevice(t, srv, pixel7, ipTokyo)
	signInByRequest(t, thief, email, pass1, false)
	goTo(t, thief, "/settings/security")
	must(t, expect.Locator(heading(thief, "Where you're signed in")).ToBeVisible())
	must(t, expect.Locator(thief.Locator(`body[data-live-stream="open"]`)).ToHaveCount(1))

	m := srv.mailTo(t, email, "New sign-in to your Doorman account")
	notMe := m.Link(srv.URL + "/sign-in/not-me")
	if notMe == "" {
		t.Fatalf("no \"This wasn't me\" link:\n%s", m.Text)
	}
	phone := newDevice(t, srv, iPhone13, ipLondon)
	goTo(t, phone, notMe)
	must(t, expect.Locator(heading(phone, "Secure your account")).ToBeVisible())
	must(t, expect.Locator(phone.GetByText("Tokyo, Japan")).ToBeVisible())
	must(t, expect.Locator(phone.GetByLabel("Also sign out of every other session")).ToBeChecked())
	must(t, phone.GetByLabel("New password").Fill("a brand new password"))
	// The thief's tab stays on its notice until the test has seen it.
	release := holdSignIn(t, thief)
	must(t, button(phone, "End that session and set password").Click())
	must(t, expect.Page(phone).ToHaveURL(regexpOf(`/settings/security$`)))
	must(t, expect.Locator(phone.GetByText("That session was ended and your password changed.")).ToBeVisible())
	// The thief's open tab is told at once, and every page is closed to it.
	must(t, expect.Locator(thief.Locator("#live-notice")).ToHaveText("You were signed out of this device."))
	release()
	expectSignedOut(t, thief)
	expectSignedOut(t, owner)
}

func TestFlowSignInLink(t *testing.T) {
	t.Parallel()
	srv := startServer(t)
	setup := newDevice(t, srv, desktopChrome, ipBerlin)
	signInByRequest(t, setup, email, pass1, true)

	p := newDevice(t, srv, iPhone13, ipLondon)
	goTo(t, p, "/login")
	must(t, p.GetByLabel("Email").Fill(email))
	must(t, button(p, "Email me a sign-in link").Click())
	must(t, expect.Locator(p.GetByText("we sent it a sign-in link")).ToBeVisible())
	m := srv.mailTo(t, email, "Your Doorman sign-in link")
	l := m.Link(srv.URL + "/login/link/open")
	if l == "" {
		t.Fatalf("no sign-in link:\n%s", m.Text)
	}
	// In another browser the link asks first, saying where it was asked for.
	other := newDevice(t, srv, pixel7, ipTokyo)
	goTo(t, other, l)
	must(t, expect.Locator(other.GetByText("This link was asked for in another browser")).ToBeVisible())
	must(t, expect.Locator(other.GetByText("London, England, United Kingdom")).ToBeVisible())
	// In the browser that asked, it signs in at once.
	goTo(t, p, l)
	must(t, expect.Page(p).ToHaveURL(regexpOf(`/settings/security$`)))
	must(t, expect.Locator(heading(p, "Where you're signed in")).ToBeVisible())
	must(t, p.Locator(`[data-current="true"] a`).Click())
	must(t, expect.Locator(p.GetByText("Emailed sign-in link")).ToBeVisible())
	// The other browser's page now has a used link.
	must(t, button(other, "Sign in as "+email).Click())
	must(t, expect.Locator(other.GetByRole("alert")).ToContainText("already used"))
}

// TestEmailPagesAccessible is the accessibility pass of every page the
// email flows add, on phone and desktop, light and dark.
func TestEmailPagesAccessible(t *testing.T) {
	t.Parallel()
	srv := startServer(t, func(c *handlers.Config) { c.SudoWindow = 0 })
	dev := startServerWith(t, false)
	owner := newDevice(t, srv, pixel7, ipTokyo)
	signInByRequest(t, owner, email, pass1, true)
	goTo(t, owner, "/settings/security")
	ownerID, err := owner.Locator(`[data-current="true"]`).GetAttribute("data-session-id")
	must(t, err)
	srv.mailTo(t, email, "Confirm your email")
	// Links to open: a reset, an alert, a sign-in link, an email change.
	postForm(t, owner, "/password/forgot", map[string]any{"email": email})
	reset := srv.mailTo(t, email, "Reset your").Link(srv.URL + "/password/reset")
	postForm(t, owner, "/login/link", map[string]any{"email": email})
	signInLink := srv.mailTo(t, email, "sign-in link").Link(srv.URL + "/login/link/open")
	stranger := newDevice(t, srv, desktopChrome, ipLondon)
	signInByRequest(t, stranger, email, pass1, false)
	alert := srv.mailTo(t, email, "New sign-in")
	notMe, known := alert.Link(srv.URL+"/sign-in/not-me"), alert.Link(srv.URL+"/sign-in/known")
	postForm(t, owner, "/settings/account/email", map[string]any{"email": "new@example.com", "password": pass1})
	confirm := srv.mailTo(t, "new@example.com", "Confirm your new email").Link(srv.URL + "/email/confirm")
	cancel := srv.mailTo(t, email, "Someone asked to change your").Link(srv.URL + "/email/cancel")
	for _, l := range []string{reset, signInLink, notMe, known, confirm, cancel} {
		if l == "" {
			t.Fatal("a mail lacked its link")
		}
	}
	// A used link, for the problem page.
	devOwner := newDevice(t, dev, desktopChrome, ipBerlin)
	signInByRequest(t, devOwner, email, pass1, true)
	postForm(t, devOwner, "/password/forgot", map[string]any{"email": email})

	eachLook(t, func(t *testing.T, l look) {
		p := newDevice(t, srv, l.device, ipBerlin, l.opts...)
		l.visit(t, p, "/password/forgot", "forgot")
		must(t, p.GetByLabel("Email").Fill("not an address"))
		must(t, button(p, "Send reset link").Click())
		must(t, expect.Locator(p.GetByText("Enter an email address like")).ToBeVisible())
		l.check(t, p, "forgot-error")
		l.visit(t, p, reset, "reset")
		must(t, p.GetByLabel("New password").Fill("short"))
		must(t, button(p, "Set new password").Click())
		must(t, expect.Locator(p.GetByText("Use at least 8 characters.")).ToBeVisible())
		l.check(t, p, "reset-error")
		l.visit(t, p, signInLink, "sign-in-link-other-browser")
		l.visit(t, p, notMe, "not-me")
		l.visit(t, p, confirm, "email-confirm")
		l.visit(t, p, known, "sign-in-known")
		l.visit(t, p, cancel, "email-cancel")
		l.visit(t, p, "/password/reset?token=bad", "link-problem")
		signInByRequest(t, p, email, pass1, false)
		l.visit(t, p, "/settings", "settings-mail")
		l.visit(t, p, "/settings/security", "security-email-change")
		must(t, expect.Locator(heading(p, "Change of address waiting")).ToBeVisible())
		l.visit(t, p, "/settings/security/sessions/"+ownerID+"/not-you", "not-you")
		goTo(t, p, "/settings")
		must(t, button(p, "Turn alerts off").Click())
		must(t, expect.Locator(heading(p, "Turn off new sign-in alerts?")).ToBeVisible())
		l.check(t, p, "alerts-off-confirm")
		// The development mail viewer (a server without SMTP, started with
		// -dev-mail), in a browser on the same machine.
		dp := newDevice(t, dev, l.device, "", l.opts...)
		goTo(t, dp, "/dev/mail")
		must(t, expect.Locator(dp.GetByRole("link", playwright.PageGetByRoleOptions{Name: "Reset your Doorman password"})).ToBeVisible())
		l.check(t, dp, "dev-mail")
		must(t, dp.GetByRole("link", playwright.PageGetByRoleOptions{Name: "Reset your Doorman password"}).Click())
		must(t, expect.Locator(heading(dp, "Reset your Doorman password")).ToBeVisible())
		l.check(t, dp, "dev-mail-message")
	})
}
