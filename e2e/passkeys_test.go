package e2e

import (
	"context"
	"fmt"
	"math"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/playwright-community/playwright-go"

	"doorman/db"
	"doorman/db/storetest"
	"doorman/handlers"
	"doorman/sessiontoken"
)

// startPasskeyServer is startServer at http://localhost:PORT, its public
// origin: passkeys need a name, not an IP address.
func startPasskeyServer(t *testing.T) *server {
	t.Helper()
	srv := startServer(t, func(c *handlers.Config) {
		c.PublicOrigin = strings.Replace(c.PublicOrigin, "://127.0.0.1:", "://localhost:", 1)
	})
	srv.URL = strings.Replace(srv.URL, "://127.0.0.1:", "://localhost:", 1)
	return srv
}

// withoutAutofill makes the page's browser one without passkey autofill
// (conditional mediation), as some are: the button is then the way in.
func withoutAutofill(t *testing.T, p playwright.Page) {
	t.Helper()
	must(t, p.AddInitScript(playwright.Script{Content: playwright.String(
		`if (window.PublicKeyCredential) PublicKeyCredential.isConditionalMediationAvailable = async () => false;`)}))
}

// addPasskeyInUI adds a passkey called name from the Security page.
func addPasskeyInUI(t *testing.T, p playwright.Page, name string) {
	t.Helper()
	goTo(t, p, "/settings/security")
	must(t, link(p, "Add a passkey").Click())
	must(t, expect.Locator(heading(p, "Add a passkey")).ToBeVisible())
	must(t, p.GetByLabel("Name", playwright.PageGetByLabelOptions{Exact: playwright.Bool(true)}).Fill(name))
	must(t, p.GetByLabel("Your password", playwright.PageGetByLabelOptions{Exact: playwright.Bool(true)}).Fill(pass1))
	must(t, button(p, "Continue").Click())
	must(t, expect.Locator(heading(p, "Create “"+name+"”")).ToBeVisible())
	must(t, button(p, "Create passkey").Click())
	if err := expect.Page(p).ToHaveURL(regexpOf(`/settings/security#passkeys-heading$`)); err != nil {
		text, _ := p.Locator("main").InnerText()
		t.Fatalf("adding passkey %s: %v\n%s", name, err, text)
	}
	must(t, expect.Locator(p.GetByRole("status").GetByText("Passkey “"+name+"” added.")).ToBeVisible())
}

// passkeyRow is the passkey called name in the Security page's list.
func passkeyRow(p playwright.Page, name string) playwright.Locator {
	return p.Locator("li[data-passkey-id]").Filter(playwright.LocatorFilterOptions{
		Has: p.Locator(".passkey-name").GetByText(name, playwright.LocatorGetByTextOptions{Exact: playwright.Bool(true)})})
}

// currentSessionSays waits for this browser's own row of the Security page
// to say text.
func currentSessionSays(t *testing.T, p playwright.Page, text string) {
	t.Helper()
	must(t, expect.Locator(p.Locator(`li[data-current="true"]`).GetByText(text)).ToBeVisible())
}

// Flow: passkeys in a browser, with Chromium's virtual authenticator: a
// synced one and a device-bound one added and told apart; signing in by
// autofill and by the button with two-factor on (no code asked); a
// browser without the key turned away; a copied key's counter going
// backwards signs in with a warning; removing a passkey signs out what it
// signed in.
func TestFlowPasskeys(t *testing.T) {
	t.Parallel()
	srv := startPasskeyServer(t)
	const email = "pia@example.com"
	exact := playwright.LocatorGetByTextOptions{Exact: playwright.Bool(true)}

	// A synced passkey on the laptop, a device-bound one on the phone.
	laptop := newDevice(t, srv, desktopChrome, ipBerlin)
	laptopKeys := addVirtualAuthenticator(t, laptop, virtualAuthenticatorOptions{BackupEligible: true, BackupState: true})
	signUp(t, laptop, email, pass1)
	// (Mail's links name the server by its address.)
	byAddress := *srv
	byAddress.URL = strings.Replace(srv.URL, "://localhost:", "://127.0.0.1:", 1)
	verifyEmail(t, &byAddress, laptop, email)
	addPasskeyInUI(t, laptop, "Laptop")
	srv.mailTo(t, email, "A passkey was added")
	phone := newDevice(t, srv, pixel7, ipLondon)
	phoneKeys := addVirtualAuthenticator(t, phone, virtualAuthenticatorOptions{})
	signInByRequest(t, phone, email, pass1, false)
	addPasskeyInUI(t, phone, "Phone")
	goTo(t, laptop, "/settings/security")
	must(t, expect.Locator(passkeyRow(laptop, "Laptop").GetByText("Synced", exact)).ToBeVisible())
	must(t, expect.Locator(passkeyRow(laptop, "Phone").GetByText("This device only", exact)).ToBeVisible())

	// Two-factor on: a passkey is two factors, no code is asked.
	goTo(t, laptop, "/settings/security/two-factor")
	setUpTwoFactor(t, srv, laptop, nil)

	// By autofill: signed out, the sign-in page offers the laptop's
	// passkey in the email field, and the authenticator takes it.
	goTo(t, laptop, "/settings/security")
	must(t, button(laptop, "Sign out").Click())
	must(t, expect.Page(laptop).ToHaveURL(regexpOf(`/settings/security$`)))
	currentSessionSays(t, laptop, "Signed in with passkey “Laptop” (synced)")

	// By the button, in a browser without autofill, the synced passkey
	// having reached the tablet.
	tablet := newDevice(t, srv, iPad, ipTokyo)
	withoutAutofill(t, tablet)
	tabletKeys := addVirtualAuthenticator(t, tablet, virtualAuthenticatorOptions{BackupEligible: true, BackupState: true})
	synced := laptopKeys.credentials(t)[0]
	cloneCredential(t, tabletKeys, synced, synced.SignCount)
	goTo(t, tablet, "/login")
	must(t, button(tablet, "Sign in with a passkey").Click())
	must(t, expect.Page(tablet).ToHaveURL(regexpOf(`/settings/security$`)))
	currentSessionSays(t, tablet, "Signed in with passkey “Laptop” (synced)")
	must(t, expect.Locator(tablet.GetByText("it may have been copied")).ToHaveCount(0))

	// A browser without the key gets nowhere.
	stranger := newDevice(t, srv, desktopChrome, ipTokyo)
	withoutAutofill(t, stranger)
	addVirtualAuthenticator(t, stranger, virtualAuthenticatorOptions{})
	goTo(t, stranger, "/login")
	must(t, button(stranger, "Sign in with a passkey").Click())
	must(t, expect.Locator(stranger.GetByRole("alert").GetByText("Signing in with a passkey was cancelled, or took too long.")).ToBeVisible())
	must(t, expect.Page(stranger).ToHaveURL(regexpOf(`/login$`)))

	// The phone signs in with its own passkey (its counter moves on);
	// then a copy of it, counting from where it was made, signs in too,
	// and the passkey says it may have been copied.
	must(t, button(phone, "Sign out").Click())
	must(t, expect.Page(phone).ToHaveURL(regexpOf(`/settings/security$`)))
	currentSessionSays(t, phone, "Signed in with passkey “Phone” (this device only)")
	thief := newDevice(t, srv, desktopChrome, "203.0.113.9")
	withoutAutofill(t, thief)
	thiefKeys := addVirtualAuthenticator(t, thief, virtualAuthenticatorOptions{})
	cloneCredential(t, thiefKeys, phoneKeys.credentials(t)[0], 0)
	goTo(t, thief, "/login")
	must(t, button(thief, "Sign in with a passkey").Click())
	must(t, expect.Page(thief).ToHaveURL(regexpOf(`/settings/security$`)))
	must(t, expect.Locator(thief.GetByRole("status").GetByText("it may have been copied")).ToBeVisible())
	goTo(t, phone, "/settings/security")
	must(t, expect.Locator(passkeyRow(phone, "Phone").GetByText("Possible copy: its signature counter went backwards 1 time")).ToBeVisible())

	// Removing the laptop's passkey signs out the two sessions it signed
	// in (the laptop's and the tablet's), after the password.
	laptopKeys.remove(t)
	must(t, passkeyRow(phone, "Laptop").GetByRole("button", playwright.LocatorGetByRoleOptions{Name: "Remove passkey Laptop"}).Click())
	must(t, expect.Locator(heading(phone, "Remove passkey “Laptop”?")).ToBeVisible())
	box := phone.GetByLabel("Also sign out the 2 sessions it signed in")
	must(t, expect.Locator(box).ToBeChecked())
	must(t, phone.GetByLabel("Your password", playwright.PageGetByLabelOptions{Exact: playwright.Bool(true)}).Fill(pass1))
	must(t, button(phone, "Remove").Click())
	must(t, expect.Locator(phone.GetByRole("status").GetByText("Passkey “Laptop” removed. 2 sessions it signed in were signed out.")).ToBeVisible())
	must(t, expect.Locator(passkeyRow(phone, "Laptop")).ToHaveCount(0))
	expectSignedOut(t, laptop)
	goTo(t, tablet, "/settings/security")
	must(t, expect.Page(tablet).ToHaveURL(regexpOf(`/login`)))
}

// TestPasskeyPagesAccessible: the passkey pages (the sign-in page with its
// button, the Security page's passkeys, adding one, removing one), at
// phone, desktop and 320 px, light and dark, through axe and the layout
// checks, with screenshots. The passkeys are put in the store: a synced
// one with a provider that signed a session in, a device-bound one with a
// long name and a possible-copy warning.
func TestPasskeyPagesAccessible(t *testing.T) {
	t.Parallel()
	srv := startPasskeyServer(t)
	ctx := context.Background()
	store := srv.app.Store
	exact := playwright.LocatorGetByTextOptions{Exact: playwright.Bool(true)}
	eachLook(t, func(t *testing.T, l look) {
		p := newDevice(t, srv, l.device, ipBerlin, l.opts...)
		l.visit(t, p, "/login", "passkey-signin")
		must(t, expect.Locator(button(p, "Sign in with a passkey")).ToBeEnabled())
		address := "keys" + l.suffix + "@example.com"
		signInByRequest(t, p, address, pass1, true)
		u, err := store.UserByEmail(ctx, address)
		must(t, err)
		now := srv.clock.Now()
		synced := storetest.Passkey("MacBook", u.ID, now)
		synced.CredentialID = []byte("cred-mac" + l.suffix)
		copy(synced.AAGUID, []byte{0x08, 0x98, 0x70, 0x58, 0xca, 0xdc, 0x4b, 0x81, 0xb6, 0xe1, 0x30, 0xde, 0x50, 0xdc, 0xbe, 0x96}) // Windows Hello
		synced, err = store.AddPasskey(ctx, synced, 20, u.Epoch)
		must(t, err)
		bound := storetest.Passkey("YubiKey 5 NFC kept in the desk drawer at the office", u.ID, now)
		bound.CredentialID, bound.BackupEligible, bound.BackupState = []byte("cred-yubikey"+l.suffix), false, false
		bound, err = store.AddPasskey(ctx, bound, 20, u.Epoch)
		must(t, err)
		// The MacBook signed in a session its owner named; the YubiKey two
		// look-alikes (the same browser and place), an hour apart.
		for _, use := range []struct {
			key   db.Passkey
			count uint32
			ago   time.Duration
			name  string
		}{{synced, 0, 0, "Anna's work laptop"}, {bound, 5, time.Hour, ""}, {bound, 3, 0, ""}} {
			s := storetest.Session(sessiontoken.New().ID, u.ID, now.Add(-use.ago))
			s.AuthMethod = db.MethodPasskey
			_, _, err := store.SignInWithPasskey(ctx, db.PasskeyUse{PasskeyID: use.key.ID, SignCount: use.count, BackupState: use.key.BackupState, At: now}, s, 0, u.Epoch)
			must(t, err)
			if use.name != "" {
				_, err := store.RenameSession(ctx, u.ID, s.ID, use.name, now)
				must(t, err)
			}
		}
		goTo(t, p, "/settings/security")
		must(t, expect.Locator(passkeyRow(p, "MacBook").GetByText("Windows Hello")).ToBeVisible())
		must(t, expect.Locator(p.GetByText("Possible copy")).ToBeVisible())
		// Each passkey lists the sessions it signed in, one link a line,
		// each saying what tells it apart: the name, or browser and place
		// and when it signed in.
		mac := passkeyRow(p, "MacBook").GetByRole("list", playwright.LocatorGetByRoleOptions{Name: "Signed in 1 session:"})
		must(t, expect.Locator(mac.GetByRole("link")).ToHaveText([]string{"Anna's work laptop"}))
		yubi := passkeyRow(p, "YubiKey 5 NFC kept in the desk drawer at the office").GetByRole("list", playwright.LocatorGetByRoleOptions{Name: "Signed in 2 sessions:"})
		signedIn := func(d time.Duration) *regexp.Regexp {
			return regexp.MustCompile(`^Chrome on macOS, London\s*·?\s*Signed in ` + regexp.QuoteMeta(now.Add(-d).UTC().Format("2 Jan 2006, 15:04")))
		}
		must(t, expect.Locator(yubi.GetByRole("link")).ToHaveText([]*regexp.Regexp{signedIn(0), signedIn(time.Hour)}))
		// The possible-copy warning stands clear of the list above it and
		// the Rename toggle below it (half a line, as a flash does).
		gaps, err := p.Locator(".passkey-warning").Evaluate(`(e) => {
			const box = e.getBoundingClientRect();
			return [box.top - e.previousElementSibling.getBoundingClientRect().bottom, e.nextElementSibling.getBoundingClientRect().top - box.bottom];
		}`, nil)
		must(t, err)
		if g := gaps.([]any); len(g) != 2 || !(toFloat(g[0]) >= 8) || !(toFloat(g[1]) >= 8) {
			t.Errorf("the possible-copy warning is %v px from the list above and the Rename toggle below; want at least 8", gaps)
		}
		l.check(t, p, "passkeys-security")
		// The card alone, to look at (the page is long).
		_, err = p.Locator("#passkeys").Screenshot(playwright.LocatorScreenshotOptions{Path: playwright.String(filepath.Join("screenshots", "passkeys-card"+l.suffix+".png"))})
		must(t, err)
		// A name that will not do, answered beside its field.
		macRow := passkeyRow(p, "MacBook")
		must(t, macRow.GetByText("Rename", exact).Click())
		must(t, macRow.GetByLabel("New name for MacBook").Fill(""))
		must(t, macRow.GetByRole("button", playwright.LocatorGetByRoleOptions{Name: "Save"}).Click())
		must(t, expect.Locator(macRow.GetByLabel("New name for MacBook")).ToHaveAccessibleDescription("Give the passkey a name."))
		l.check(t, p, "passkey-rename-error")
		_, err = p.Locator("#passkeys").Screenshot(playwright.LocatorScreenshotOptions{Path: playwright.String(filepath.Join("screenshots", "passkeys-card-rename-error"+l.suffix+".png"))})
		must(t, err)
		l.visit(t, p, "/settings/security/passkeys/new", "passkey-new")
		must(t, p.GetByLabel("Your password", playwright.PageGetByLabelOptions{Exact: playwright.Bool(true)}).Fill(pass1))
		must(t, button(p, "Continue").Click())
		must(t, expect.Locator(button(p, "Create passkey")).ToBeEnabled())
		l.check(t, p, "passkey-create")
		l.visit(t, p, fmt.Sprintf("/settings/security/passkeys/%d/remove", bound.ID), "passkey-remove")
		must(t, expect.Locator(p.GetByLabel("Also sign out the 2 sessions it signed in")).ToBeChecked())
	})
}

// toFloat is a number Evaluate returned (an int when it is whole).
func toFloat(v any) float64 {
	switch n := v.(type) {
	case int:
		return float64(n)
	case float64:
		return n
	}
	return math.NaN()
}
