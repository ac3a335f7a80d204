package e2e

import (
	"testing"

	"github.com/playwright-community/playwright-go"

	"doorman/handlers"
)

// TestConfirmWithPassword: outside the sudo window (here: always), the
// confirm dialog carries the password field. A wrong password ends nothing
// and lands on the confirm page with the error by the field; the right one
// ends the other sessions.
func TestConfirmWithPassword(t *testing.T) {
	t.Parallel()
	srv := startServer(t, func(c *handlers.Config) { c.SudoWindow = 0 })
	desktop := newDevice(t, srv, desktopChrome, ipBerlin)
	phone := newDevice(t, srv, pixel7, ipTokyo)
	signInByRequest(t, desktop, email, pass1, true)
	signInByRequest(t, phone, email, pass1, false)

	goTo(t, desktop, "/settings/security")
	rows := desktop.Locator("[data-session-id]")
	must(t, expect.Locator(rows).ToHaveCount(2))
	must(t, expect.Locator(rows.Filter(playwright.LocatorFilterOptions{HasText: "Chrome on Android"})).ToContainText("Tokyo, Japan"))
	must(t, button(desktop, "Sign out all other sessions").Click())
	dialog := desktop.GetByRole("dialog", playwright.PageGetByRoleOptions{Name: "Sign out all other sessions?"})
	must(t, expect.Locator(dialog).ToBeVisible())
	field := dialog.GetByLabel("Your password")
	must(t, expect.Locator(field).ToBeFocused())
	screenshot(t, desktop, "dialog-password-desktop")

	// Wrong password: the confirm page, the error announced by the field.
	must(t, field.Fill("not my password"))
	must(t, dialog.GetByRole("button", playwright.LocatorGetByRoleOptions{Name: "Sign them out", Exact: playwright.Bool(true)}).Click())
	must(t, expect.Page(desktop).ToHaveURL(regexpOf(`/settings/security/sessions/revoke-others$`)))
	input := desktop.GetByLabel("Your password")
	must(t, expect.Locator(input).ToHaveAttribute("aria-invalid", "true"))
	must(t, expect.Locator(input).ToHaveAccessibleDescription("Incorrect password."))
	goTo(t, phone, "/settings/security")
	must(t, expect.Page(phone).ToHaveURL(regexpOf(`/settings/security$`)))
	// The phone's tab watches its session from here on.
	must(t, expect.Locator(phone.Locator(`body[data-live-stream="open"]`)).ToHaveCount(1))

	// Right password, on the no-JS confirm page's form.
	must(t, input.Fill(pass1))
	must(t, button(desktop, "Sign them out").Click())
	must(t, expect.Page(desktop).ToHaveURL(regexpOf(`/settings/security$`)))
	must(t, expect.Locator(desktop.GetByRole("status")).ToContainText("Signed out 1 other session."))
	must(t, expect.Locator(rows).ToHaveCount(1))
	// The phone's open tab moves itself to sign-in and says why (a
	// navigation of the test's own here would race that move, and on a
	// busy machine could land after it, on a page with no notice left).
	expectSignedOut(t, phone)
}
