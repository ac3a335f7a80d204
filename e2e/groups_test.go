package e2e

import (
	"testing"

	"github.com/playwright-community/playwright-go"
)

// TestLookAlikeSessionsGrouped: three iPhones signed in from London are
// one group on the desktop's Security page ("3 sessions"), closed until
// opened; opened, each member is its own row with its own X, and it stays
// open when a fourth signs in and the list refreshes; ending one leaves
// the group of three; "Sign out these 3", confirmed in its dialog, ends
// exactly those (the iPhones are signed out, the Pixel and this desktop
// are not). This device's row is never in the group.
func TestLookAlikeSessionsGrouped(t *testing.T) {
	t.Parallel()
	srv := startServer(t)
	desktop := newDevice(t, srv, desktopChrome, ipBerlin)
	signInByRequest(t, desktop, email, pass1, true)
	var phones []playwright.Page
	for range 3 {
		p := newDevice(t, srv, iPhone13, ipLondon)
		signInByRequest(t, p, email, pass1, false)
		phones = append(phones, p)
	}
	pixel := newDevice(t, srv, pixel7, ipTokyo)
	signInByRequest(t, pixel, email, pass1, false)

	goTo(t, desktop, "/settings/security")
	group := desktop.Locator("li.session-group")
	must(t, expect.Locator(group).ToHaveCount(1))
	summary := group.Locator("summary")
	must(t, expect.Locator(summary).ToContainText("Safari on iPhone"))
	must(t, expect.Locator(summary).ToContainText("3 sessions"))
	must(t, expect.Locator(summary).ToContainText("London"))
	members := group.Locator("li[data-session-id]")
	must(t, expect.Locator(members).ToHaveCount(3))
	must(t, expect.Locator(members.First()).ToBeHidden())
	must(t, expect.Locator(group.Locator(`[data-current="true"]`)).ToHaveCount(0))
	must(t, expect.Locator(desktop.Locator(`[data-current="true"]`)).ToBeVisible())

	// Opened: each member with its own X, distinctly named. A fourth
	// iPhone signing in refreshes the list in place: the group grows
	// and stays open.
	must(t, summary.Click())
	must(t, expect.Locator(members.First()).ToBeVisible())
	must(t, expect.Locator(group.Locator(".icon-button")).ToHaveCount(3))
	must(t, expect.Locator(desktop.Locator(`body[data-live-stream="open"]`)).ToHaveCount(1))
	fourth := newDevice(t, srv, iPhone13, ipLondon)
	signInByRequest(t, fourth, email, pass1, false)
	phones = append(phones, fourth)
	must(t, expect.Locator(summary).ToContainText("4 sessions"))
	must(t, expect.Locator(members).ToHaveCount(4))
	must(t, expect.Locator(members.First()).ToBeVisible())
	first, err := members.First().GetAttribute("data-session-id")
	must(t, err)
	label, err := members.First().Locator(".icon-button").GetAttribute("aria-label")
	must(t, err)
	must(t, button(desktop, label).Click())
	must(t, expect.Locator(desktop.GetByRole("status")).ToHaveText("Signed out Safari on iPhone"))
	must(t, expect.Locator(summary).ToContainText("3 sessions"))
	must(t, expect.Locator(desktop.Locator(`[data-session-id="`+first+`"]`)).ToHaveCount(0))

	// The group's own button, confirmed in its dialog.
	must(t, summary.Click())
	must(t, button(desktop, "Sign out these 3").Click())
	dialog := desktop.GetByRole("dialog")
	must(t, expect.Locator(dialog).ToBeVisible())
	must(t, expect.Locator(dialog).ToContainText("These 3 sessions of Safari on iPhone in London"))
	must(t, dialog.GetByRole("button", playwright.LocatorGetByRoleOptions{Name: "Sign them out", Exact: playwright.Bool(true)}).Click())
	must(t, expect.Locator(desktop.GetByRole("status")).ToHaveText("Signed out 3 sessions."))
	must(t, expect.Locator(group).ToHaveCount(0))
	must(t, expect.Locator(desktop.Locator("[data-session-id]")).ToHaveCount(2)) // this desktop and the Pixel
	for _, p := range phones {
		goTo(t, p, "/settings/security")
		must(t, expect.Page(p).ToHaveURL(regexpOf(`/login(\?|$)`)))
	}
	goTo(t, pixel, "/settings/security")
	must(t, expect.Locator(heading(pixel, "Where you're signed in")).ToBeVisible())
}

// TestRenameADevice: the desktop names the iPhone's device from its
// details page; the name heads the details and the iPhone's row (the
// browser's label beside it), names its X, and the history says so; the
// iPhone stays signed in. A name with a line break is refused next to the
// field.
func TestRenameADevice(t *testing.T) {
	t.Parallel()
	srv := startServer(t)
	desktop := newDevice(t, srv, desktopChrome, ipBerlin)
	signInByRequest(t, desktop, email, pass1, true)
	phone := newDevice(t, srv, iPhone13, ipLondon)
	signInByRequest(t, phone, email, pass1, false)

	goTo(t, desktop, "/settings/security")
	// The row's link (the new sign-ins banner links the same session).
	must(t, desktop.Locator("ul.sessions").GetByRole("link", playwright.LocatorGetByRoleOptions{Name: "Safari on iPhone", Exact: playwright.Bool(true)}).Click())
	must(t, expect.Locator(heading(desktop, "Safari on iPhone")).ToBeVisible())
	field := desktop.GetByLabel("Name this device")
	must(t, field.Fill("Anna's iPhone"))
	must(t, button(desktop, "Save name").Click())
	must(t, expect.Locator(desktop.GetByRole("status")).ToHaveText("Named it “Anna's iPhone”."))
	must(t, expect.Locator(heading(desktop, "Anna's iPhone")).ToBeVisible())
	must(t, expect.Locator(desktop.Locator(".page-subtitle")).ToHaveText("Safari on iPhone"))
	must(t, expect.Locator(field).ToHaveValue("Anna's iPhone"))

	goTo(t, desktop, "/settings/security")
	row := desktop.Locator("[data-session-id]").Filter(playwright.LocatorFilterOptions{HasText: "Anna's iPhone"})
	must(t, expect.Locator(row).ToContainText("Safari on iPhone"))
	must(t, expect.Locator(row.Locator(".icon-button")).ToHaveAttribute("aria-label", "Sign out Anna's iPhone, London"))
	goTo(t, desktop, "/settings/security/activity")
	must(t, expect.Locator(desktop.GetByRole("link", playwright.PageGetByRoleOptions{Name: "Safari on iPhone named “Anna's iPhone”"})).ToBeVisible())
	goTo(t, phone, "/settings/security")
	must(t, expect.Locator(phone.Locator(`[data-current="true"]`)).ToContainText("Anna's iPhone"))

	// Refused next to the field; the name stays.
	goTo(t, desktop, "/settings/security")
	must(t, row.Locator(".session-device a").Click())
	must(t, field.Fill("Anna's\tiPhone"))
	must(t, button(desktop, "Save name").Click())
	must(t, expect.Locator(field).ToHaveAttribute("aria-invalid", "true"))
	must(t, expect.Locator(desktop.Locator("#device-name-error")).ToContainText("no line breaks, tabs or other control characters"))
	must(t, expect.Locator(heading(desktop, "Anna's iPhone")).ToBeVisible())
}
