package e2e

import (
	"testing"
	"time"

	"github.com/playwright-community/playwright-go"
)

// The Security page's one banner of new sign-ins, with and without
// JavaScript: "It was me" takes the sign-in off it (and it stays off after
// a reload), a later sign-in brings it back for that one only, and "Not
// me" leads to that session's "Not you?" page.
func TestNewSignInsBanner(t *testing.T) {
	t.Parallel()
	for _, js := range []bool{true, false} {
		name, opts := "javascript", []deviceOption(nil)
		if !js {
			name, opts = "no-javascript", []deviceOption{noJavaScript}
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			srv := startServer(t)
			desktop := newDevice(t, srv, desktopChrome, ipBerlin, opts...)
			signInByRequest(t, desktop, email, pass1, true)
			goTo(t, desktop, "/settings/security")
			banner := desktop.Locator("[data-new-signins]")
			must(t, expect.Locator(banner).ToHaveCount(0))

			// A second later (the store keeps whole seconds, and a
			// sign-in in the same second as this device's is called out
			// on both): the phone is newer than the desktop.
			srv.advance(time.Second)
			phone := newDevice(t, srv, iPhone13, ipLondon, opts...)
			signInByRequest(t, phone, email, pass1, false)
			goTo(t, desktop, "/settings/security")
			must(t, expect.Locator(banner).ToContainText("New sign-in: Safari on iPhone, London"))
			must(t, expect.Locator(banner.GetByRole("link", playwright.LocatorGetByRoleOptions{Name: "Safari on iPhone", Exact: playwright.Bool(true)})).ToHaveAttribute("href", regexpOf(`/settings/security/sessions/[a-z2-7]{16}$`)))
			// The phone, newer, is told of nothing.
			goTo(t, phone, "/settings/security")
			must(t, expect.Locator(phone.Locator("[data-new-signins]")).ToHaveCount(0))

			// "It was me": gone, and still gone after a reload.
			must(t, banner.GetByRole("button", playwright.LocatorGetByRoleOptions{Name: "It was me"}).Click())
			must(t, expect.Page(desktop).ToHaveURL(regexpOf(`/settings/security$`)))
			must(t, expect.Locator(desktop.GetByRole("status")).ToContainText("Safari on iPhone in London"))
			must(t, expect.Locator(banner).ToHaveCount(0))
			reload(t, desktop)
			must(t, expect.Locator(desktop.Locator(`[data-session-id]`)).ToHaveCount(2))
			must(t, expect.Locator(banner).ToHaveCount(0))

			// A later sign-in brings it back, for that one only: with
			// JavaScript the open page shows it by itself.
			srv.advance(time.Second)
			pixel := newDevice(t, srv, pixel7, ipTokyo, opts...)
			signInByRequest(t, pixel, email, pass1, false)
			if !js {
				reload(t, desktop)
			}
			must(t, expect.Locator(banner).ToContainText("New sign-in: Chrome on Android, Tokyo"))
			must(t, expect.Locator(banner).Not().ToContainText("Safari on iPhone"))

			// "Not me" is that session's "Not you?" page.
			must(t, banner.GetByRole("link", playwright.LocatorGetByRoleOptions{Name: "Not me: Chrome on Android, Tokyo"}).Click())
			must(t, expect.Locator(heading(desktop, "Not you? Take your account back")).ToBeVisible())
			must(t, expect.Locator(desktop.GetByText("Tokyo, Japan")).ToBeVisible())
		})
	}
}
