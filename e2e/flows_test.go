package e2e

import (
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/playwright-community/playwright-go"
)

const (
	email = "alice@example.com"
	pass1 = "correct horse battery"
)

func heading(p playwright.Page, name string) playwright.Locator {
	return p.GetByRole("heading", playwright.PageGetByRoleOptions{Name: name, Exact: playwright.Bool(true)})
}

func link(p playwright.Page, name string) playwright.Locator {
	return p.GetByRole("link", playwright.PageGetByRoleOptions{Name: name, Exact: playwright.Bool(true)})
}

func expectSignedOut(t *testing.T, p playwright.Page) {
	t.Helper()
	must(t, expect.Page(p).ToHaveURL(regexpOf(`/login(\?|$)`)))
	must(t, expect.Locator(p.GetByRole("status").Filter(playwright.LocatorFilterOptions{HasText: "You were signed out of this device."})).ToBeVisible())
}

// holdSignIn keeps p on its page when the page moves itself to the
// sign-in page. A tab whose session ends elsewhere shows the live notice
// and moves on 1.5 s later; a check of the notice (its text, its role,
// where focus is, a screenshot, axe) would race that move, and on a busy
// machine lose it. So the move's request is answered 204 No Content: the
// browser stays on the page, fully usable, with nothing pending (a held,
// unanswered navigation would not do: playwright waits for a pending
// navigation to finish before every check). After its checks the test
// calls release: it waits until the tab has asked for the sign-in page
// (the move itself), stops holding, and makes that same request, so
// expectSignedOut then checks where the move lands. Only navigations are
// held: the script's own background reads go through.
func holdSignIn(t *testing.T, p playwright.Page) (release func()) {
	t.Helper()
	asked := make(chan string, 1)
	var ending atomic.Bool // in cleanup: the context may close under a request
	must(t, p.Route("**/login*", func(r playwright.Route) {
		var err error
		if r.Request().IsNavigationRequest() {
			// Answered before release may go on: a release that
			// unrouted while this answer was still on its way let the
			// held move through to the server as well, where it took
			// the tab's one-time notice (seen on a busy machine).
			err = r.Fulfill(playwright.RouteFulfillOptions{Status: playwright.Int(http.StatusNoContent)})
			if err == nil {
				select {
				case asked <- r.Request().URL():
				default:
				}
			}
		} else {
			err = r.Continue()
		}
		if err != nil && !ending.Load() {
			t.Errorf("holding the move to sign-in: %v", err)
		}
	}))
	t.Cleanup(func() { ending.Store(true) })
	var once sync.Once
	return func() {
		t.Helper()
		once.Do(func() {
			var u string
			select {
			case u = <-asked:
			case <-time.After(waitTimeout):
				t.Fatal("the tab never moved itself to the sign-in page")
			}
			must(t, p.Unroute("**/login*"))
			goTo(t, p, u)
		})
	}
}

// signOut signs the tab out with the header's button and waits until the
// sign-in page has loaded: a navigation the test started before then would
// race the sign-out's own (and could cancel its request).
func signOut(t *testing.T, p playwright.Page) {
	t.Helper()
	must(t, button(p, "Sign out").Click())
	must(t, expect.Page(p).ToHaveURL(regexpOf(`/login$`)))
}

// Flow 1: sign up, sign out, a wrong password (the error by the field and
// announced), sign in, sign out — through the UI on a phone.
func TestFlowSignUpSignInSignOut(t *testing.T) {
	t.Parallel()
	srv := startServer(t)
	p := newDevice(t, srv, iPhone13, ipLondon)
	signUp(t, p, email, pass1)
	must(t, expect.Locator(p.GetByRole("status")).ToContainText("Welcome to Doorman"))
	must(t, button(p, "Sign out").Click())
	must(t, expect.Page(p).ToHaveURL(regexpOf(`/login$`)))
	must(t, expect.Locator(p.GetByRole("status")).ToContainText("You signed out."))

	must(t, p.GetByLabel("Email").Fill(email))
	must(t, p.GetByLabel("Password").Fill("not my password"))
	must(t, button(p, "Sign in").Click())
	alert := p.GetByRole("alert")
	must(t, expect.Locator(alert).ToHaveText("Incorrect email or password"))
	// The message is tied to the fields, so a screen reader reads it with them.
	must(t, expect.Locator(p.GetByLabel("Password")).ToHaveAccessibleDescription("Incorrect email or password"))
	must(t, expect.Locator(p.GetByLabel("Email")).ToHaveValue(email))

	must(t, p.GetByLabel("Password").Fill(pass1))
	must(t, button(p, "Sign in").Click())
	must(t, expect.Page(p).ToHaveURL(regexpOf(`/settings/security$`)))
	must(t, button(p, "Sign out").Click())
	must(t, expect.Page(p).ToHaveURL(regexpOf(`/login$`)))
}

// signedInDevices signs the account in on each device (by request) and
// returns their pages, all on the Security page.
func signedInDevices(t *testing.T, srv *server, devices map[string]string, order []string, opts ...deviceOption) map[string]playwright.Page {
	t.Helper()
	pages := map[string]playwright.Page{}
	for i, name := range order {
		p := newDevice(t, srv, name, devices[name], opts...)
		signInByRequest(t, p, email, pass1, i == 0)
		goTo(t, p, "/settings/security")
		pages[name] = p
	}
	return pages
}

// Flow 2: five devices signed in; each sees the others with the right
// labels and "This device" on itself; last activity follows use.
func TestFlowEveryDeviceSeesTheOthers(t *testing.T) {
	t.Parallel()
	srv := startServer(t)
	devices := map[string]string{desktopChrome: ipBerlin, iPhone13: ipLondon, pixel7: ipTokyo, iPad: ipBerlin, narrowPhone: ipLondon}
	order := []string{desktopChrome, iPhone13, pixel7, iPad, narrowPhone}
	labels := map[string]string{desktopChrome: "Chrome on Windows", iPhone13: "Safari on iPhone", pixel7: "Chrome on Android", iPad: "Safari on iPad", narrowPhone: "Safari on iPhone"}
	pages := signedInDevices(t, srv, devices, order)
	for _, name := range order {
		p := pages[name]
		goTo(t, p, "/settings/security")
		must(t, expect.Locator(p.Locator("[data-session-id]")).ToHaveCount(5))
		current := p.Locator(`[data-current="true"]`)
		must(t, expect.Locator(current).ToContainText(labels[name]))
		must(t, expect.Locator(current).ToContainText("This device"))
		for _, other := range []string{"Chrome on Windows", "Safari on iPhone", "Chrome on Android", "Safari on iPad"} {
			must(t, expect.Locator(p.Locator("[data-session-id]").Filter(playwright.LocatorFilterOptions{HasText: other}).First()).ToBeVisible())
		}
		// Four X buttons: one per other session, none on this one.
		must(t, expect.Locator(p.Locator("[data-session-id] .icon-button")).ToHaveCount(4))
	}

	// Ten minutes later the Pixel is used; the desktop's list follows.
	srv.advance(10 * time.Minute)
	desktop := pages[desktopChrome]
	pixelRow := desktop.Locator("[data-session-id]").Filter(playwright.LocatorFilterOptions{HasText: "Chrome on Android"})
	reload(t, desktop)
	must(t, expect.Locator(pixelRow).ToContainText("10 minutes ago"))
	goTo(t, pages[pixel7], "/settings")
	reload(t, desktop)
	must(t, expect.Locator(pixelRow).ToContainText("just now"))
	// The most recently active is listed right after this device.
	must(t, expect.Locator(desktop.Locator("[data-session-id]").Nth(1)).ToContainText("Chrome on Android"))
}

// Flows 3–5 with JavaScript on (dialogs) or off (confirm pages).
func TestFlowEndingSessions(t *testing.T) {
	t.Parallel()
	for _, js := range []bool{true, false} {
		name := "javascript"
		var opts []deviceOption
		if !js {
			name = "no-javascript"
			opts = append(opts, noJavaScript)
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			srv := startServer(t)
			devices := map[string]string{desktopChrome: ipBerlin, iPhone13: ipLondon, pixel7: ipTokyo, iPad: ipBerlin}
			pages := signedInDevices(t, srv, devices, []string{desktopChrome, iPhone13, pixel7, iPad}, opts...)
			desktop, iphone := pages[desktopChrome], pages[iPhone13]
			rows := desktop.Locator("[data-session-id]")
			goTo(t, desktop, "/settings/security")
			must(t, expect.Locator(rows).ToHaveCount(4))

			// Flow 3: X on the iPhone row (once the iPhone's tab listens).
			var letGo func()
			if js {
				must(t, expect.Locator(iphone.Locator(`body[data-live-stream="open"]`)).ToHaveCount(1))
				letGo = holdSignIn(t, iphone)
			}
			must(t, button(desktop, "Sign out Safari on iPhone, London").Click())
			must(t, expect.Locator(desktop.GetByRole("status")).ToHaveText("Signed out Safari on iPhone"))
			must(t, expect.Locator(rows).ToHaveCount(3))
			must(t, expect.Locator(rows.Filter(playwright.LocatorFilterOptions{HasText: "Safari on iPhone"})).ToHaveCount(0))
			// The iPhone is told why: with JavaScript its open tab at once
			// (and it moves itself to sign-in), without it at its next click.
			// (Clicking with JavaScript on would race the tab's own move.)
			if js {
				must(t, expect.Locator(iphone.Locator("#live-notice")).ToHaveText("You were signed out of this device."))
				letGo()
				must(t, expect.Page(iphone).ToHaveURL(regexpOf(`/login`)))
			} else {
				must(t, link(iphone, "Account").Click())
			}
			expectSignedOut(t, iphone)

			// Flow 4: sign out all other sessions.
			open := button(desktop, "Sign out all other sessions")
			if js {
				dialog := desktop.GetByRole("dialog", playwright.PageGetByRoleOptions{Name: "Sign out all other sessions?"})
				must(t, open.Click())
				must(t, expect.Locator(dialog).ToContainText("2 other sessions will be signed out: "))
				// Cancel with the button: nothing changes, focus returns.
				must(t, dialog.GetByRole("button", playwright.LocatorGetByRoleOptions{Name: "Cancel"}).Click())
				must(t, expect.Locator(dialog).ToBeHidden())
				must(t, expect.Locator(open).ToBeFocused())
				// Cancel with Escape: the same.
				must(t, open.Click())
				must(t, expect.Locator(dialog).ToBeVisible())
				must(t, desktop.Keyboard().Press("Escape"))
				must(t, expect.Locator(dialog).ToBeHidden())
				must(t, expect.Locator(open).ToBeFocused())
				must(t, expect.Locator(rows).ToHaveCount(3))
				must(t, open.Click())
				must(t, dialog.GetByRole("button", playwright.LocatorGetByRoleOptions{Name: "Sign them out", Exact: playwright.Bool(true)}).Click())
			} else {
				must(t, open.Click())
				must(t, expect.Page(desktop).ToHaveURL(regexpOf(`/settings/security/sessions/revoke-others\??$`)))
				must(t, expect.Locator(heading(desktop, "Sign out all other sessions?")).ToBeVisible())
				must(t, expect.Locator(desktop.GetByText("2 other sessions will be signed out: ")).ToBeVisible())
				// Cancel: back, nothing changed.
				must(t, link(desktop, "Cancel").Click())
				must(t, expect.Locator(rows).ToHaveCount(3))
				must(t, open.Click())
				must(t, button(desktop, "Sign them out").Click())
			}
			must(t, expect.Page(desktop).ToHaveURL(regexpOf(`/settings/security$`)))
			must(t, expect.Locator(desktop.GetByRole("status")).ToHaveText("Signed out 2 other sessions."))
			must(t, expect.Locator(rows).ToHaveCount(1))
			must(t, expect.Locator(desktop.Locator(`[data-current="true"]`)).ToContainText("This device"))
			must(t, expect.Locator(open).ToHaveCount(0))
			for _, name := range []string{pixel7, iPad} {
				// With JavaScript the open tab is told at once and moves
				// to the sign-in page by itself; without, its next
				// request is refused and says so.
				if !js {
					reload(t, pages[name])
				}
				expectSignedOut(t, pages[name])
			}

			// Flow 5: sign out everywhere ends this device too.
			everywhere := button(desktop, "Sign out everywhere")
			must(t, everywhere.Click())
			if js {
				dialog := desktop.GetByRole("dialog", playwright.PageGetByRoleOptions{Name: "Sign out everywhere?"})
				must(t, expect.Locator(dialog).ToContainText("including this device"))
				must(t, dialog.GetByRole("button", playwright.LocatorGetByRoleOptions{Name: "Sign out everywhere", Exact: playwright.Bool(true)}).Click())
			} else {
				must(t, expect.Locator(heading(desktop, "Sign out everywhere?")).ToBeVisible())
				must(t, button(desktop, "Sign out everywhere").Click())
			}
			must(t, expect.Page(desktop).ToHaveURL(regexpOf(`/login$`)))
			must(t, expect.Locator(desktop.GetByRole("status")).ToContainText("You signed out everywhere: 1 session ended."))
			goTo(t, desktop, "/settings/security")
			must(t, expect.Page(desktop).ToHaveURL(regexpOf(`/login\?next=`)))
		})
	}
}

// focusVisible reports whether the focused element shows a focus ring.
const focusVisible = `() => {
  const e = document.activeElement;
  if (!e || e === document.body) return false;
  const s = getComputedStyle(e);
  return e.matches(':focus-visible') && s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) >= 2;
}`

// activeName is the focused element's accessible name, roughly.
const activeName = `() => { const e = document.activeElement; return e ? (e.getAttribute('aria-label') || e.textContent || e.name || '').trim() : '' }`

// tabTo presses key (Tab or Shift+Tab) until the element named name has
// focus, checking at every step that focus is visible.
func tabTo(t *testing.T, p playwright.Page, key, name string) {
	t.Helper()
	for range 40 {
		must(t, p.Keyboard().Press(key))
		visible, err := p.Evaluate(focusVisible)
		must(t, err)
		got, err := p.Evaluate(activeName)
		must(t, err)
		if visible != true {
			t.Fatalf("focus on %q is not visible", got)
		}
		if got == name {
			return
		}
	}
	t.Fatalf("%s never reached %q", key, name)
}

// Flow 7: the same flows with the keyboard only.
func TestFlowKeyboardOnly(t *testing.T) {
	t.Parallel()
	srv := startServer(t)
	devices := map[string]string{desktopChrome: ipBerlin, iPhone13: ipLondon, pixel7: ipTokyo}
	pages := signedInDevices(t, srv, devices, []string{desktopChrome, iPhone13, pixel7})
	p := pages[desktopChrome]
	goTo(t, p, "/settings/security")
	rows := p.Locator("[data-session-id]")
	must(t, expect.Locator(rows).ToHaveCount(3))

	// Space on an X button.
	tabTo(t, p, "Tab", "Sign out Chrome on Android, Tokyo")
	must(t, p.Keyboard().Press(" "))
	must(t, expect.Locator(p.GetByRole("status")).ToHaveText("Signed out Chrome on Android"))
	must(t, expect.Locator(rows).ToHaveCount(2))

	// Enter opens the dialog; focus starts on Cancel and stays inside.
	open := button(p, "Sign out all other sessions")
	tabTo(t, p, "Tab", "Sign out all other sessions")
	must(t, p.Keyboard().Press("Enter"))
	dialog := p.GetByRole("dialog", playwright.PageGetByRoleOptions{Name: "Sign out all other sessions?"})
	must(t, expect.Locator(dialog).ToBeVisible())
	must(t, expect.Locator(dialog.GetByRole("button", playwright.LocatorGetByRoleOptions{Name: "Cancel"})).ToBeFocused())
	for _, key := range []string{"Tab", "Tab", "Tab", "Shift+Tab", "Shift+Tab", "Shift+Tab"} {
		must(t, p.Keyboard().Press(key))
		inside, err := p.Evaluate(`() => !!document.activeElement.closest('dialog[open]')`)
		must(t, err)
		if inside != true {
			name, _ := p.Evaluate(activeName)
			t.Fatalf("after %s focus left the dialog (to %q)", key, name)
		}
		visible, err := p.Evaluate(focusVisible)
		must(t, err)
		if visible != true {
			t.Fatalf("after %s focus is not visible", key)
		}
	}
	// Escape closes it and gives focus back.
	must(t, p.Keyboard().Press("Escape"))
	must(t, expect.Locator(dialog).ToBeHidden())
	must(t, expect.Locator(open).ToBeFocused())
	// Space opens it again; Tab to "Sign them out", Enter confirms.
	must(t, p.Keyboard().Press(" "))
	must(t, expect.Locator(dialog).ToBeVisible())
	tabTo(t, p, "Tab", "Sign them out")
	must(t, p.Keyboard().Press("Enter"))
	must(t, expect.Locator(p.GetByRole("status")).ToHaveText("Signed out 1 other session."))
	must(t, expect.Locator(rows).ToHaveCount(1))

	// Sign out everywhere, by keyboard; Shift+Tab works backwards too.
	tabTo(t, p, "Tab", "Sign out everywhere")
	tabTo(t, p, "Shift+Tab", "Sign out")
	tabTo(t, p, "Tab", "Sign out everywhere")
	must(t, p.Keyboard().Press("Enter"))
	everywhere := p.GetByRole("dialog", playwright.PageGetByRoleOptions{Name: "Sign out everywhere?"})
	must(t, expect.Locator(everywhere).ToBeVisible())
	tabTo(t, p, "Tab", "Sign out everywhere")
	must(t, p.Keyboard().Press("Enter"))
	must(t, expect.Page(p).ToHaveURL(regexpOf(`/login$`)))
}

// Flow 8: after signing out, Back shows no private page.
func TestFlowBackAfterSignOut(t *testing.T) {
	t.Parallel()
	srv := startServer(t)
	p := newDevice(t, srv, desktopChrome, ipBerlin)
	signInByRequest(t, p, email, pass1, true)
	goTo(t, p, "/settings")
	goTo(t, p, "/settings/security")
	must(t, expect.Locator(heading(p, "Where you're signed in")).ToBeVisible())
	must(t, button(p, "Sign out").Click())
	must(t, expect.Page(p).ToHaveURL(regexpOf(`/login$`)))
	for range 2 {
		_, err := p.GoBack()
		must(t, err)
		must(t, expect.Page(p).ToHaveURL(regexpOf(`/login\?next=`)))
		must(t, expect.Locator(heading(p, "Sign in")).ToBeVisible())
		must(t, expect.Locator(p.GetByText(email)).ToHaveCount(0))
		must(t, expect.Locator(heading(p, "Where you're signed in")).ToHaveCount(0))
	}
}

func reload(t *testing.T, p playwright.Page) {
	t.Helper()
	_, err := p.Reload()
	must(t, err)
}
