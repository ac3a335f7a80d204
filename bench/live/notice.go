package main

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/playwright-community/playwright-go"
)

// noticeResult is the live notice as a person sees it: a tab in Chromium
// whose session another instance ends.
type noticeResult struct {
	rounds, shown int
	took          []time.Duration // revoke sent → the notice visible in the tab
	failures      []string        // the first few rounds without a notice
	foreign       float64         // share of the machine's CPU other processes used meanwhile
}

// liveNotice measures, in a real browser, what the end-to-end tests used
// to assert ("the ended tab shows the notice within a second"): each round
// signs a session in on A, opens the Security page on A in a fresh Chromium
// context with that session's cookies and waits until the tab's stream is
// subscribed (the page marks body[data-live-stream="open"]); then a revoker
// on B ends the session, and the time runs from just before the revoke is
// sent to the moment the tab shows "You were signed out of this device …"
// (playwright's wait for the notice, which polls the page: its few
// milliseconds are in the figure). The tab's move to sign-in 1.5 s later is
// not waited for.
func liveNotice(c config, a, b *instance) (noticeResult, error) {
	r := noticeResult{rounds: c.noticeRounds}
	if r.rounds == 0 {
		return r, nil
	}
	driver := os.Getenv("PLAYWRIGHT_DRIVER_PATH")
	if driver == "" {
		driver, _ = filepath.Abs(".pwdriver")
	}
	if _, err := os.Stat(filepath.Join(driver, "package", "cli.js")); err != nil {
		return r, fmt.Errorf("no playwright driver at %s: run make setup (make bench-live does)", driver)
	}
	pw, err := playwright.Run(&playwright.RunOptions{DriverDirectory: driver, SkipInstallBrowsers: true, Stdout: os.Stderr})
	if err != nil {
		return r, fmt.Errorf("start playwright: %w", err)
	}
	defer pw.Stop()
	chromium, err := pw.Chromium.Launch(playwright.BrowserTypeLaunchOptions{
		ExecutablePath: playwright.String("/usr/bin/chromium"),
		Headless:       playwright.Bool(true),
		Args: []string{"--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
			"--disable-component-update", "--disable-sync"},
	})
	if err != nil {
		return r, fmt.Errorf("launch chromium: %w", err)
	}
	defer chromium.Close()

	// A revoker signed in just now: inside the window where ending a
	// session needs no password.
	revoker, err := signInRetry(b.base, revokeEmail, false)
	if err != nil {
		return r, err
	}
	defer revoker.do(http.MethodPost, "/logout", url.Values{})
	logf("live notice in Chromium: %d rounds (stream on A, revoke sent to B)", r.rounds)
	cpu0 := snapCPU()
	defer func() { r.foreign = foreignShare(cpu0, snapCPU()) }()
	for i := range r.rounds {
		took, err := noticeRound(chromium, a, revoker)
		var missed errNoNotice
		switch {
		case errors.As(err, &missed):
			if len(r.failures) < 5 {
				r.failures = append(r.failures, fmt.Sprintf("round %d: %v", i, err))
			}
		case err != nil:
			return r, fmt.Errorf("round %d: %w", i, err)
		default:
			r.shown++
			r.took = append(r.took, took)
		}
		// Follow the 303 as a browser would (see revRounds).
		if status, err := revoker.do(http.MethodGet, "/settings/security", nil); err != nil || status != http.StatusOK {
			return r, fmt.Errorf("round %d: the revoker's Security page: status %d, %v", i, status, err)
		}
	}
	logf("  %d/%d shown: p50 %s, p90 %s, p99 %s, max %s", r.shown, r.rounds,
		ms(percentile(r.took, .5)), ms(percentile(r.took, .9)), ms(percentile(r.took, .99)), ms(maxOf(r.took)))
	return r, nil
}

// errNoNotice is a round whose tab never showed the notice.
type errNoNotice struct{ err error }

func (e errNoNotice) Error() string { return "no notice in the tab: " + e.err.Error() }

// noticeRound is one round of liveNotice.
func noticeRound(chromium playwright.Browser, a *instance, revoker *browser) (time.Duration, error) {
	s, err := signInRetry(a.base, revokeEmail, false)
	if err != nil {
		return 0, err
	}
	ctx, err := chromium.NewContext(playwright.BrowserNewContextOptions{UserAgent: playwright.String(userAgent)})
	if err != nil {
		return 0, err
	}
	defer ctx.Close()
	var cookies []playwright.OptionalCookie
	for name, value := range s.cookies {
		cookies = append(cookies, playwright.OptionalCookie{Name: name, Value: value, URL: playwright.String(a.base)})
	}
	if err := ctx.AddCookies(cookies); err != nil {
		return 0, err
	}
	page, err := ctx.NewPage()
	if err != nil {
		return 0, err
	}
	if _, err := page.Goto(a.base + "/settings/security"); err != nil {
		return 0, err
	}
	if err := page.Locator(`body[data-live-stream="open"]`).WaitFor(playwright.LocatorWaitForOptions{
		State: playwright.WaitForSelectorStateAttached, Timeout: playwright.Float(30000)}); err != nil {
		return 0, fmt.Errorf("the tab's stream never opened: %w", err)
	}
	notice := page.GetByRole("status").Filter(playwright.LocatorFilterOptions{HasText: "You were signed out of this device"})
	t0 := time.Now()
	status, err := revoker.do(http.MethodPost, "/settings/security/sessions/"+s.sessionID()+"/revoke", url.Values{})
	if err != nil || status != http.StatusSeeOther {
		return 0, fmt.Errorf("revoke: status %d, %v", status, err)
	}
	if err := notice.WaitFor(playwright.LocatorWaitForOptions{State: playwright.WaitForSelectorStateVisible, Timeout: playwright.Float(10000)}); err != nil {
		return 0, errNoNotice{err}
	}
	return time.Since(t0), nil
}

func maxOf(l []time.Duration) time.Duration {
	var m time.Duration
	for _, d := range l {
		m = max(m, d)
	}
	return m
}
