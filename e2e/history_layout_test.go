package e2e

import (
	"strconv"
	"testing"

	"github.com/playwright-community/playwright-go"
)

// TestHistoryTitlesKeepOneRhythm: in the security history, a title that
// links to its session and one that links nowhere take the same height on
// a phone, so the entries do not jump between 44 px and a text line.
func TestHistoryTitlesKeepOneRhythm(t *testing.T) {
	t.Parallel()
	srv := startServer(t)
	p := newDevice(t, srv, narrowPhone, ipBerlin, func(o *playwright.BrowserNewContextOptions) {
		o.Viewport = &playwright.Size{Width: 375, Height: 667}
	})
	signInByRequest(t, p, "rhythm@example.com", pass1, true) // "Signed in on …": linked
	goTo(t, p, "/settings/security/tokens")
	createTokenInUI(t, p, "cron") // "Access token “cron” created": not linked
	goTo(t, p, "/settings/security/activity")
	must(t, expect.Locator(p.Locator(`.event-title a`)).Not().ToHaveCount(0))
	must(t, expect.Locator(p.Locator(`.event-title:not(:has(a))`)).Not().ToHaveCount(0))
	res, err := p.Evaluate(`() => Array.from(document.querySelectorAll('.event-title')).map(e => ({
	  text: e.textContent.trim(), linked: !!e.querySelector("a"), height: String(e.getBoundingClientRect().height) }))`)
	must(t, err)
	heights := map[bool]float64{}
	for _, v := range list(t, res) {
		row := v.(map[string]any)
		h, err := strconv.ParseFloat(row["height"].(string), 64)
		must(t, err)
		linked := row["linked"].(bool)
		if h < 44 {
			t.Errorf("%q is %.0f px tall, under the 44 px every title takes", row["text"], h)
		}
		if h < 60 { // one line
			if prev, ok := heights[linked]; ok && prev != h {
				t.Errorf("%q: %.0f px, another like it %.0f px", row["text"], h, prev)
			}
			heights[linked] = h
		}
	}
	if len(heights) == 2 && heights[true] != heights[false] {
		t.Errorf("a linked title is %.0f px tall, an unlinked one %.0f px", heights[true], heights[false])
	}
	screenshot(t, p, "layout-history-375")
}
