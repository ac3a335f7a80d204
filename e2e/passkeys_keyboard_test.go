package e2e

import (
	"testing"

	"github.com/playwright-community/playwright-go"

	"doorman/db/storetest"
)

// focusInside checks that focus is visible and on an element inside loc.
func focusInside(t *testing.T, p playwright.Page, loc playwright.Locator, what string) {
	t.Helper()
	visible, err := p.Evaluate(focusVisible)
	must(t, err)
	got, err := p.Evaluate(activeName)
	must(t, err)
	if visible != true {
		t.Fatalf("%s: focus on %q is not visible", what, got)
	}
	inside, err := loc.Evaluate(`(e) => e.contains(document.activeElement)`, nil)
	must(t, err)
	if inside != true {
		t.Fatalf("%s: focus is on %q, not inside the expected element", what, got)
	}
}

// typeInto checks the focused field is name and types text into it,
// replacing what it held.
func typeInto(t *testing.T, p playwright.Page, name, text string) {
	t.Helper()
	got, err := p.Evaluate(activeName)
	must(t, err)
	if got != name {
		t.Fatalf("focus on %q; want the field %q", got, name)
	}
	must(t, p.Keyboard().Press("ControlOrMeta+a"))
	must(t, p.Keyboard().Type(text))
}

// TestPasskeysByKeyboard: adding, renaming and removing a passkey, then
// signing in with one, with the keyboard alone, focus visible at every
// step and landing where the person is (on the passkeys list after each
// change).
func TestPasskeysByKeyboard(t *testing.T) {
	t.Parallel()
	srv := startPasskeyServer(t)
	const address = "kim@example.com"
	p := newDevice(t, srv, desktopChrome, ipBerlin)
	withoutAutofill(t, p)
	addVirtualAuthenticator(t, p, virtualAuthenticatorOptions{BackupEligible: true, BackupState: true})
	signInByRequest(t, p, address, pass1, true)
	card := p.Locator("#passkeys")

	// Add: the Security page's link, the name and password, the ceremony.
	goTo(t, p, "/settings/security")
	tabTo(t, p, "Tab", "Add a passkey")
	must(t, p.Keyboard().Press("Enter"))
	must(t, expect.Locator(heading(p, "Add a passkey")).ToBeVisible())
	tabTo(t, p, "Tab", "name")
	must(t, p.Keyboard().Type("Desk key"))
	tabTo(t, p, "Tab", "password")
	must(t, p.Keyboard().Type(pass1))
	must(t, p.Keyboard().Press("Enter"))
	must(t, expect.Locator(heading(p, "Create “Desk key”")).ToBeVisible())
	must(t, expect.Locator(button(p, "Create passkey")).ToBeEnabled())
	tabTo(t, p, "Tab", "Create passkey")
	must(t, p.Keyboard().Press("Enter"))
	must(t, expect.Page(p).ToHaveURL(regexpOf(`/settings/security#passkeys-heading$`)))
	must(t, expect.Locator(p.GetByRole("status").GetByText("Passkey “Desk key” added.")).ToBeVisible())
	// The next Tab is in the passkeys list, on the new passkey.
	must(t, p.Keyboard().Press("Tab"))
	focusInside(t, p, passkeyRow(p, "Desk key"), "after adding")

	// Rename: the <details> opened with the keyboard, the field, Enter.
	if got, _ := p.Evaluate(activeName); got != "Rename" {
		t.Fatalf("after adding, Tab reached %q; want the new passkey's Rename", got)
	}
	focusInside(t, p, passkeyRow(p, "Desk key"), "the Rename toggle")
	must(t, p.Keyboard().Press("Enter"))
	must(t, expect.Locator(passkeyRow(p, "Desk key").Locator("details")).ToHaveAttribute("open", ""))
	must(t, p.Keyboard().Press("Tab"))
	// An empty name is answered beside the field, which has the focus
	// again, its form still open; then a good one.
	typeInto(t, p, "name", "")
	must(t, p.Keyboard().Press("Backspace"))
	must(t, p.Keyboard().Press("Enter"))
	field := passkeyRow(p, "Desk key").GetByLabel("New name for Desk key")
	must(t, expect.Locator(field).ToBeFocused())
	must(t, expect.Locator(field).ToHaveAttribute("aria-invalid", "true"))
	must(t, expect.Locator(field).ToHaveAccessibleDescription("Give the passkey a name."))
	must(t, expect.Locator(passkeyRow(p, "Desk key").Locator("details")).ToHaveAttribute("open", ""))
	typeInto(t, p, "name", "Office key")
	must(t, p.Keyboard().Press("Enter"))
	must(t, expect.Locator(p.GetByRole("status").GetByText("Passkey renamed “Office key”.")).ToBeVisible())
	must(t, expect.Locator(passkeyRow(p, "Office key")).ToHaveCount(1))
	must(t, p.Keyboard().Press("Tab"))
	focusInside(t, p, passkeyRow(p, "Office key"), "after renaming")

	// A passkey another device added and signed in with, to remove: its
	// confirm page, the ticked box, the password, Remove.
	tablet := newDevice(t, srv, iPad, ipTokyo)
	withoutAutofill(t, tablet)
	addVirtualAuthenticator(t, tablet, virtualAuthenticatorOptions{})
	signInByRequest(t, tablet, address, pass1, false)
	addPasskeyInUI(t, tablet, "Tablet")
	must(t, button(tablet, "Sign out").Click())
	must(t, expect.Page(tablet).ToHaveURL(regexpOf(`/login`)))
	must(t, button(tablet, "Sign in with a passkey").Click())
	must(t, expect.Page(tablet).ToHaveURL(regexpOf(`/settings/security$`)))
	currentSessionSays(t, tablet, "Signed in with passkey “Tablet”")

	goTo(t, p, "/settings/security")
	must(t, expect.Locator(passkeyRow(p, "Tablet")).ToHaveCount(1))
	tabTo(t, p, "Tab", "Remove passkey Tablet")
	must(t, p.Keyboard().Press("Enter"))
	must(t, expect.Locator(heading(p, "Remove passkey “Tablet”?")).ToBeVisible())
	// Focus starts on the password (the one thing to type).
	must(t, expect.Locator(p.GetByLabel("Your password", playwright.PageGetByLabelOptions{Exact: playwright.Bool(true)})).ToBeFocused())
	box := p.GetByLabel("Also sign out the session it signed in")
	tabTo(t, p, "Shift+Tab", "end_sessions")
	must(t, expect.Locator(box).ToBeFocused())
	must(t, expect.Locator(box).ToBeChecked())
	tabTo(t, p, "Tab", "password")
	must(t, p.Keyboard().Type(pass1))
	tabTo(t, p, "Tab", "Remove")
	must(t, p.Keyboard().Press("Enter"))
	must(t, expect.Locator(p.GetByRole("status").GetByText("Passkey “Tablet” removed. 1 session it signed in was signed out.")).ToBeVisible())
	must(t, expect.Locator(passkeyRow(p, "Tablet")).ToHaveCount(0))
	must(t, p.Keyboard().Press("Tab"))
	focusInside(t, p, card, "after removing")
	expectSignedOut(t, tablet)

	// Sign out, and back in with the passkey's button.
	tabTo(t, p, "Shift+Tab", "Sign out")
	must(t, p.Keyboard().Press("Enter"))
	must(t, expect.Page(p).ToHaveURL(regexpOf(`/login$`)))
	must(t, expect.Locator(button(p, "Sign in with a passkey")).ToBeEnabled())
	tabTo(t, p, "Tab", "Sign in with a passkey")
	must(t, p.Keyboard().Press("Enter"))
	must(t, expect.Page(p).ToHaveURL(regexpOf(`/settings/security$`)))
	currentSessionSays(t, p, "Signed in with passkey “Office key” (synced)")
}

// TestNotYouRemovesThePasskeyAddedThere: someone who got the password
// signs in and adds a passkey to come back with; the owner's "Not you?" on
// that session names it as going, offers the owner's own passkey
// unticked, and, with a new password, signs the thief out and removes the
// thief's passkey: the thief's authenticator still holds it, and signing
// in with it is refused in words, making no session. The owner's passkey
// stays.
func TestNotYouRemovesThePasskeyAddedThere(t *testing.T) {
	t.Parallel()
	srv := startPasskeyServer(t)
	const address = "olu@example.com"
	owner := newDevice(t, srv, desktopChrome, ipBerlin)
	addVirtualAuthenticator(t, owner, virtualAuthenticatorOptions{BackupEligible: true, BackupState: true})
	signInByRequest(t, owner, address, pass1, true)
	addPasskeyInUI(t, owner, "Owner's laptop")

	thief := newDevice(t, srv, pixel7, ipTokyo)
	withoutAutofill(t, thief)
	thiefKeys := addVirtualAuthenticator(t, thief, virtualAuthenticatorOptions{})
	signInByRequest(t, thief, address, pass1, false)
	addPasskeyInUI(t, thief, "Backup")
	if n := len(thiefKeys.credentials(t)); n != 1 {
		t.Fatalf("the thief's authenticator holds %d credentials; want 1", n)
	}

	// The owner, on the thief's row.
	goTo(t, owner, "/settings/security")
	must(t, expect.Locator(passkeyRow(owner, "Backup")).ToHaveCount(1))
	must(t, link(owner, "Not you? Chrome on Android, Tokyo").Click())
	must(t, expect.Locator(heading(owner, "Not you? Take your account back")).ToBeVisible())
	must(t, expect.Locator(owner.GetByText("The passkey “Backup” added from that session will be removed.")).ToBeVisible())
	must(t, expect.Locator(owner.GetByLabel("Also remove “Backup”")).ToHaveCount(0))
	ownKey := owner.GetByLabel("Also remove “Owner's laptop”")
	must(t, expect.Locator(ownKey).ToHaveCount(1))
	must(t, expect.Locator(ownKey).Not().ToBeChecked())
	must(t, owner.GetByLabel("Current password").Fill(pass1))
	must(t, owner.GetByLabel("New password").Fill("a brand new password"))
	must(t, button(owner, "Sign it out and change password").Click())
	must(t, expect.Page(owner).ToHaveURL(regexpOf(`/settings/security$`)))
	must(t, expect.Locator(owner.GetByRole("status").GetByText("Removed the passkey “Backup”.")).ToBeVisible())
	must(t, expect.Locator(passkeyRow(owner, "Backup")).ToHaveCount(0))
	must(t, expect.Locator(passkeyRow(owner, "Owner's laptop")).ToHaveCount(1))

	// The thief: signed out, the credential still in the authenticator,
	// and it no longer signs in.
	expectSignedOut(t, thief)
	if n := len(thiefKeys.credentials(t)); n != 1 {
		t.Fatalf("the thief's authenticator holds %d credentials; want its passkey still", n)
	}
	u, err := srv.app.Store.UserByEmail(t.Context(), address)
	must(t, err)
	before, err := srv.app.Store.ListSessions(t.Context(), u.ID, srv.clock.Now())
	must(t, err)
	goTo(t, thief, "/login")
	must(t, button(thief, "Sign in with a passkey").Click())
	must(t, expect.Locator(thief.GetByText("This passkey isn't one of this site's: it may have been removed. Sign in with your password.")).ToBeVisible())
	must(t, expect.Page(thief).ToHaveURL(regexpOf(`/login`)))
	goTo(t, thief, "/settings/security")
	must(t, expect.Page(thief).ToHaveURL(regexpOf(`/login\?next=`)))
	after, err := srv.app.Store.ListSessions(t.Context(), u.ID, srv.clock.Now())
	must(t, err)
	if len(after) != len(before) || len(after) != 1 {
		t.Errorf("%d live sessions before the thief's try, %d after; want the owner's alone", len(before), len(after))
	}

	// The owner's passkey still signs in.
	goTo(t, owner, "/settings/security")
	must(t, button(owner, "Sign out").Click())
	must(t, expect.Page(owner).ToHaveURL(regexpOf(`/settings/security$`)))
	currentSessionSays(t, owner, "Signed in with passkey “Owner's laptop” (synced)")
}

// TestPasskeyRenameErrorWithoutJavaScript: without JavaScript, a name that
// will not do is answered beside the field as well, the form open and the
// field focused; the passkey keeps its name until a good one is saved.
func TestPasskeyRenameErrorWithoutJavaScript(t *testing.T) {
	t.Parallel()
	srv := startPasskeyServer(t)
	const address = "noor@example.com"
	p := newDevice(t, srv, pixel7, ipBerlin, noJavaScript)
	signInByRequest(t, p, address, pass1, true)
	u, err := srv.app.Store.UserByEmail(t.Context(), address)
	must(t, err)
	_, err = srv.app.Store.AddPasskey(t.Context(), storetest.Passkey("Laptop", u.ID, srv.clock.Now()), 20, u.Epoch)
	must(t, err)
	goTo(t, p, "/settings/security")
	row := passkeyRow(p, "Laptop")
	must(t, row.GetByText("Rename", playwright.LocatorGetByTextOptions{Exact: playwright.Bool(true)}).Click())
	field := row.GetByLabel("New name for Laptop")
	must(t, field.Fill(""))
	must(t, row.GetByRole("button", playwright.LocatorGetByRoleOptions{Name: "Save"}).Click())
	must(t, expect.Locator(field).ToBeFocused())
	must(t, expect.Locator(field).ToHaveAttribute("aria-invalid", "true"))
	must(t, expect.Locator(field).ToHaveAccessibleDescription("Give the passkey a name."))
	must(t, expect.Locator(row.GetByText("Give the passkey a name.")).ToBeVisible())
	must(t, field.Fill("Work laptop"))
	must(t, row.GetByRole("button", playwright.LocatorGetByRoleOptions{Name: "Save"}).Click())
	must(t, expect.Locator(p.GetByRole("status").GetByText("Passkey renamed “Work laptop”.")).ToBeVisible())
	must(t, expect.Locator(passkeyRow(p, "Work laptop")).ToHaveCount(1))
}
