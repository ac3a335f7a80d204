package e2e

import (
	"regexp"
	"testing"
	"time"

	"github.com/playwright-community/playwright-go"
)

// inZone makes the browser's clock read in the named IANA time zone.
func inZone(zone string) deviceOption {
	return func(o *playwright.BrowserNewContextOptions) { o.TimezoneId = playwright.String(zone) }
}

// TestTimesInTheReadersZone: every exact time on the pages has one format,
// shown in the reader's own zone with the UTC form in its title; a relative
// time keeps its words and carries both exact forms in its title. Without
// JavaScript the server's UTC form is what shows. India has one offset all
// year (UTC+5:30), so the expected local time does not depend on the date.
func TestTimesInTheReadersZone(t *testing.T) {
	s := startServer(t)
	kolkata := time.FixedZone("IST", 5*3600+30*60)
	local := regexp.MustCompile(`^\d{1,2} [A-Z][a-z]{2} \d{4}, \d\d:\d\d (IST|GMT\+5:30)$`)

	laptop := newDevice(t, s, desktopChrome, "", inZone("Asia/Kolkata"))
	signUp(t, laptop, "zone@example.com", "correct horse battery")
	phone := newDevice(t, s, iPhone13, "", inZone("Asia/Kolkata"))
	signInByRequest(t, phone, "zone@example.com", "correct horse battery", false)
	goTo(t, laptop, "/settings/security")

	signedIn := laptop.Locator("li.session[data-current] time").Last()
	iso, err := signedIn.GetAttribute("datetime")
	must(t, err)
	at, err := time.Parse(time.RFC3339, iso)
	must(t, err)
	must(t, expect.Locator(signedIn).ToHaveText(local))
	text, err := signedIn.TextContent()
	must(t, err)
	if want := at.In(kolkata).Format("2 Jan 2006, 15:04"); text[:len(want)] != want {
		t.Errorf("signed in shows %q, want %q in the reader's zone", text, want)
	}
	must(t, expect.Locator(signedIn).ToHaveAttribute("title", at.UTC().Format("2 Jan 2006, 15:04 UTC")))

	// The other session's "Last active just now": words kept, both exact
	// forms in the title.
	lastActive := laptop.Locator("li.session[data-session-id]:not([data-current]) time").First()
	must(t, expect.Locator(lastActive).ToHaveText(regexpOf(`ago|just now`)))
	must(t, expect.Locator(lastActive).ToHaveAttribute("title", regexpOf(`^\d{1,2} [A-Z][a-z]{2} \d{4}, \d\d:\d\d (IST|GMT\+5:30) \(\d{1,2} [A-Z][a-z]{2} \d{4}, \d\d:\d\d UTC\)$`)))

	// Without JavaScript: the server's one format, in UTC, saying so.
	plain := newDevice(t, s, desktopChrome, "", inZone("Asia/Kolkata"), noJavaScript)
	signInByRequest(t, plain, "zone@example.com", "correct horse battery", false)
	goTo(t, plain, "/settings/security")
	row := plain.Locator("li.session[data-current] time").Last()
	must(t, expect.Locator(row).ToHaveText(regexpOf(`^\d{1,2} [A-Z][a-z]{2} \d{4}, \d\d:\d\d UTC$`)))
}
