package e2e

import (
	"fmt"
	"testing"
	"time"

	"github.com/playwright-community/playwright-go"

	"doorman/db"
	"doorman/sessiontoken"
)

// wordBreaks lists, for every element matched by the selector given, the
// words whose text is split over two line boxes (a Range over the word has
// more than one client rect), and the elements whose text takes more than
// two lines. A word is a run of letters between spaces and hyphens: a
// break at a space, or after the hyphen of "command-line", is where a
// line may end; one inside "Safari" is not.
const wordBreaks = `(sel) => {
  const out = [];
  const lines = (rects) => {
    const tops = [];
    for (const r of rects) {
      if (r.width === 0 || r.height === 0) continue;
      if (!tops.some(t => Math.abs(t - r.top) < r.height / 2)) tops.push(r.top);
    }
    return tops.length;
  };
  for (const el of document.querySelectorAll(sel)) {
    if (el.getClientRects().length === 0) continue; // not rendered
    const walker = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
    for (let n = walker.nextNode(); n; n = walker.nextNode()) {
      for (const m of n.data.matchAll(/[^\s-]+/g)) {
        const r = document.createRange();
        r.setStart(n, m.index);
        r.setEnd(n, m.index + m[0].length);
        if (lines(r.getClientRects()) > 1) out.push('"' + m[0] + '" is broken in "' + el.textContent.trim() + '"');
      }
    }
    const all = document.createRange();
    all.selectNodeContents(el);
    const n = lines(all.getClientRects());
    if (n > 2) out.push('"' + el.textContent.trim() + '" takes ' + n + ' lines');
  }
  return out;
}`

// rowOverlaps lists the pairs of a list row's texts and controls whose
// boxes intersect (neither inside the other: the name's link is inside its
// paragraph).
const rowOverlaps = `() => {
  const out = [];
  const parts = '.session-icon, .session-device > a, .session-device:not(:has(> a)), .badge, .session-meta > span, .session-not-you, .icon-button';
  for (const row of document.querySelectorAll('li.session')) {
    const els = Array.from(row.querySelectorAll(parts)).filter(e => e.getClientRects().length > 0);
    for (let i = 0; i < els.length; i++) {
      for (let j = i + 1; j < els.length; j++) {
        const a = els[i], b = els[j];
        if (a.contains(b) || b.contains(a)) continue;
        const r = a.getBoundingClientRect(), s = b.getBoundingClientRect();
        const w = Math.min(r.right, s.right) - Math.max(r.left, s.left);
        const h = Math.min(r.bottom, s.bottom) - Math.max(r.top, s.top);
        if (w > 0.5 && h > 0.5) {
          out.push('"' + a.textContent.trim().slice(0, 40) + '" overlaps "' + b.textContent.trim().slice(0, 40) + '" in "' + row.textContent.trim().replace(/\s+/g, ' ').slice(0, 60) + '"');
        }
      }
    }
  }
  return out;
}`

// namesAndLabels are what must read whole: device, token and app names,
// the "This device" badge, and every button and button-styled link.
const namesAndLabels = `.session-device > a, .session-device:not(:has(> a)), .badge, .button, .session-not-you, .list-more a`

// layoutDevices are the long, real labels the seeded sessions get (the
// longest device.Parse makes, and long places).
var layoutDevices = []struct{ label, kind, place, short string }{
	{"Samsung Internet on Android", "phone", "Saint-Jean-sur-Richelieu, Quebec, Canada", "Saint-Jean-sur-Richelieu"},
	{"Microsoft Edge on Windows", "desktop", "Rio de Janeiro, Brazil", "Rio de Janeiro"},
	{"Safari on iPhone", "phone", "Berlin, Germany", "Berlin"},
	{"Firefox on Linux", "desktop", "Llanfairpwllgwyngyll, United Kingdom", "Llanfairpwllgwyngyll"},
	{"Chrome on macOS", "desktop", "San Francisco, United States", "San Francisco"},
	{"Safari on iPad", "tablet", "Tokyo, Japan", "Tokyo"},
}

// layoutSessions is how many sessions besides the browser's own the
// account of the layout checks has: the 60-session account of issue 25.
const layoutSessions = 60

// seedSessions adds n live sessions to the account, with the long labels
// above, their activity spread over the last hours (bulk, as the demo and
// the benchmarks seed: no history, no announcements).
func seedSessions(t *testing.T, srv *server, account string, n int) {
	t.Helper()
	ctx := t.Context()
	u, err := srv.app.Store.UserByEmail(ctx, account)
	must(t, err)
	bulk, err := srv.app.Store.BeginBulk(ctx)
	must(t, err)
	now := srv.clock.Now()
	for i := range n {
		d := layoutDevices[i%len(layoutDevices)]
		tok := sessiontoken.New()
		seen := now.Add(-time.Duration(i+1) * 7 * time.Minute)
		created := seen.Add(-time.Duration(i%5) * 24 * time.Hour)
		must(t, bulk.AddSession(ctx, db.Session{
			ID: tok.ID, SecretHash: tok.Hash, UserID: u.ID, CreatedAt: created, LastSeenAt: seen,
			IdleExpiresAt: seen.Add(srv.app.Config.IdleTimeout), AbsoluteExpiresAt: created.Add(srv.app.Config.AbsoluteLifetime),
			IP: ipLondon, UserAgent: "seeded", DeviceLabel: d.label, DeviceKind: d.kind,
			Location: d.place, LocationShort: d.short, AuthMethod: "seed",
		}))
	}
	must(t, bulk.Commit(ctx))
}

// TestSecurityPageLayout: at 320 and 375 px, on the Security page of an
// account with 60 other sessions, long token and app names, every name
// and button label reads whole (no break inside a word, at most two
// lines), no two parts of a row overlap, and the bulk actions are on the
// first screen; the same with every session shown.
func TestSecurityPageLayout(t *testing.T) {
	t.Parallel()
	srv := startServer(t)
	const account = "layout@example.com"
	setup := newDevice(t, srv, desktopChrome, ipBerlin)
	signInByRequest(t, setup, account, pass1, true)
	seedSessions(t, srv, account, layoutSessions)
	// An access token, an app connected with a device code and an app
	// signed in to with Doorman, each with a long name (about 35
	// characters: two lines' worth at 320 px; a longer one wraps onto
	// more lines, at spaces).
	goTo(t, setup, "/settings/security/tokens")
	createTokenInUI(t, setup, "Nightly backup to the attic server")
	clientID := registerApp(t, srv, "app_layout", "Family calendar command-line sync")
	deviceCode, link := startDeviceFlow(t, srv, clientID)
	goTo(t, setup, link)
	must(t, button(setup, "Continue").Click())
	must(t, setup.GetByLabel("Your password").Fill(pass1))
	must(t, button(setup, "Approve").Click())
	must(t, expect.Page(setup).ToHaveURL(regexpOf(`/settings/security$`)))
	redeem(t, srv, clientID, deviceCode)
	signIn := registerOIDCApp(t, srv, "rp_layout", "Observability Dashboards (staging)")
	goTo(t, setup, signIn("layout"))
	must(t, button(setup, "Allow").Click())
	must(t, expect.Page(setup).ToHaveURL(regexpOf(`/rp-callback\?code=`)))

	for _, width := range []int{320, 375} {
		t.Run(fmt.Sprint(width), func(t *testing.T) {
			p := newDevice(t, srv, narrowPhone, ipTokyo, func(o *playwright.BrowserNewContextOptions) {
				o.Viewport = &playwright.Size{Width: width, Height: 667}
			})
			signInByRequest(t, p, account, pass1, false)
			goTo(t, p, "/settings/security")
			must(t, expect.Locator(heading(p, "Where you're signed in")).ToBeVisible())
			// Every row is there (the app rows are the last filled in).
			must(t, expect.Locator(p.Locator(`[data-app-id="rp_layout"]`)).ToBeVisible())
			must(t, expect.Locator(p.Locator(`[data-token-id]`)).ToHaveCount(2))
			checkLayout(t, p, fmt.Sprintf("security %d px", width))
			screenshot(t, p, fmt.Sprintf("layout-security-%d", width))
			// Past ten other sessions the list shows the ten most
			// recent, the bulk actions first, and a link to all.
			bulk := button(p, "Sign out all other sessions")
			must(t, expect.Locator(bulk).ToBeVisible())
			box, err := bulk.BoundingBox()
			must(t, err)
			if box == nil || box.Y+box.Height > 667 {
				t.Errorf("%d px: \"Sign out all other sessions\" is not on the first screen: %+v", width, box)
			}
			must(t, expect.Locator(p.Locator(`li[data-session-id]`)).ToHaveCount(11))
			// Every session: the setup's, the 60 seeded, and one per
			// width run so far.
			all := p.GetByRole("link", playwright.PageGetByRoleOptions{Name: regexpOf(`^Show all \d+ sessions$`)})
			text, err := all.TextContent()
			must(t, err)
			var n int
			if _, err := fmt.Sscanf(text, "Show all %d sessions", &n); err != nil || n < layoutSessions+2 {
				t.Fatalf("%q: not every session (%d besides this one) counted", text, layoutSessions+1)
			}
			must(t, all.Click())
			must(t, expect.Page(p).ToHaveURL(regexpOf(`\?sessions=all$`)))
			must(t, expect.Locator(p.Locator(`li[data-session-id]`)).ToHaveCount(n))
			must(t, expect.Locator(p.GetByRole("link", playwright.PageGetByRoleOptions{Name: "Show only the 10 most recent"})).ToBeVisible())
			checkLayout(t, p, fmt.Sprintf("all sessions %d px", width))
		})
	}
}

// checkLayout fails the test for every word broken, name over two lines
// and overlap on the page.
func checkLayout(t *testing.T, p playwright.Page, name string) {
	t.Helper()
	// The fonts are what lines break with: measure after they load.
	_, err := p.Evaluate(`() => document.fonts.ready.then(() => true)`)
	must(t, err)
	res, err := p.Evaluate(wordBreaks, namesAndLabels)
	must(t, err)
	if v := list(t, res); len(v) > 0 {
		t.Errorf("%s: names and labels that do not read whole:\n%s", name, joinAny(v))
	}
	res, err = p.Evaluate(rowOverlaps)
	must(t, err)
	if v := list(t, res); len(v) > 0 {
		t.Errorf("%s: overlapping parts of rows:\n%s", name, joinAny(v))
	}
}
