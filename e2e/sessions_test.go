package e2e

import (
	"regexp"
	"testing"

	"github.com/playwright-community/playwright-go"
)

func regexpOf(s string) *regexp.Regexp { return regexp.MustCompile(s) }

// TestWhereYoureLoggedIn is the v1 story: a desktop and an iPhone sign in,
// the desktop signs the iPhone out with its X button, and the iPhone's next
// navigation lands on sign-in with the notice. Then "Log out all other
// sessions": Cancel changes nothing, Log out ends the others.
func TestWhereYoureLoggedIn(t *testing.T) {
	base := startServer(t)
	desktop := newDevice(t, base, "Desktop Chrome", ipBerlin)
	iphone := newDevice(t, base, "iPhone 13", ipLondon)

	signUp(t, desktop, "alice@example.com", "correct horse battery")
	signIn(t, iphone, "alice@example.com", "correct horse battery")

	// The desktop sees both sessions, itself first.
	goTo(t, desktop, "/settings/security")
	must(t, expect.Locator(desktop.GetByRole("heading", playwright.PageGetByRoleOptions{Name: "Where you're logged in"})).ToBeVisible())
	rows := desktop.Locator("[data-session-id]")
	must(t, expect.Locator(rows).ToHaveCount(2))
	current := desktop.Locator(`[data-current="true"]`)
	must(t, expect.Locator(current).ToContainText("Chrome on Windows"))
	must(t, expect.Locator(current).ToContainText("This device"))
	must(t, expect.Locator(current).ToContainText("Berlin, Germany"))
	phoneRow := rows.Filter(playwright.LocatorFilterOptions{HasText: "Safari on iPhone"})
	must(t, expect.Locator(phoneRow).ToContainText("London, England, United Kingdom"))
	must(t, expect.Locator(phoneRow).ToContainText("just now"))
	screenshot(t, desktop, "security-desktop")

	// The iPhone sees the same two, itself marked.
	goTo(t, iphone, "/settings/security")
	must(t, expect.Locator(iphone.Locator("[data-session-id]")).ToHaveCount(2))
	must(t, expect.Locator(iphone.Locator(`[data-current="true"]`)).ToContainText("Safari on iPhone"))
	screenshot(t, iphone, "security-iphone")

	// X on the iPhone row.
	must(t, button(desktop, "Sign out Safari on iPhone, London").Click())
	must(t, expect.Locator(desktop.GetByRole("status")).ToContainText("Signed out Safari on iPhone"))
	must(t, expect.Locator(rows).ToHaveCount(1))

	// The iPhone's very next navigation is refused, with the notice.
	goTo(t, iphone, "/settings/security")
	must(t, expect.Page(iphone).ToHaveURL(regexpOf(`/login\?next=`)))
	must(t, expect.Locator(iphone.GetByText("You were signed out of this device.")).ToBeVisible())
	screenshot(t, iphone, "signed-out-iphone")

	// Back in on the iPhone, then "Log out all other sessions" from the desktop.
	signIn(t, iphone, "alice@example.com", "correct horse battery")
	goTo(t, desktop, "/settings/security")
	must(t, expect.Locator(rows).ToHaveCount(2))

	open := button(desktop, "Log out all other sessions")
	dialog := desktop.GetByRole("dialog", playwright.PageGetByRoleOptions{Name: "Log out all other sessions?"})
	must(t, open.Click())
	must(t, expect.Locator(dialog).ToBeVisible())
	must(t, expect.Locator(dialog).ToContainText("1 other session will be signed out"))
	screenshot(t, desktop, "dialog-desktop")
	// Cancel first: nothing changes, focus returns to the button.
	must(t, dialog.GetByRole("button", playwright.LocatorGetByRoleOptions{Name: "Cancel"}).Click())
	must(t, expect.Locator(dialog).ToBeHidden())
	must(t, expect.Locator(open).ToBeFocused())
	must(t, expect.Locator(rows).ToHaveCount(2))
	goTo(t, iphone, "/settings/security")
	must(t, expect.Page(iphone).ToHaveURL(regexpOf(`/settings/security$`)))

	// Then confirm.
	must(t, open.Click())
	must(t, expect.Locator(dialog).ToBeVisible())
	must(t, dialog.GetByRole("button", playwright.LocatorGetByRoleOptions{Name: "Log out", Exact: playwright.Bool(true)}).Click())
	must(t, expect.Locator(desktop.GetByRole("status")).ToContainText("Signed out 1 other session."))
	must(t, expect.Locator(rows).ToHaveCount(1))
	must(t, expect.Locator(current).ToContainText("This device"))
	must(t, expect.Locator(open).ToHaveCount(0))

	goTo(t, iphone, "/settings/security")
	must(t, expect.Page(iphone).ToHaveURL(regexpOf(`/login\?next=`)))
	must(t, expect.Locator(iphone.GetByText("You were signed out of this device.")).ToBeVisible())
}
