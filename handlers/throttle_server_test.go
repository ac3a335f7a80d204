package handlers_test

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// burstPost is one request of a burst: a form posted by a browser.
type burstPost struct {
	c    *client
	path string
	form url.Values
}

// burst sends every post at once (each from its own goroutine, released
// together) and returns their statuses in order. Each browser has its CSRF
// cookie before the burst.
func burst(t *testing.T, app *testApp, posts []burstPost) []int {
	t.Helper()
	for _, p := range posts {
		if p.c.csrfToken() == "" {
			p.c.get("/login")
		}
	}
	statuses := make([]int, len(posts))
	errs := make([]error, len(posts))
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, p := range posts {
		form := url.Values{"csrf": {p.c.csrfToken()}}
		for k, v := range p.form {
			form[k] = v
		}
		req, err := http.NewRequest(http.MethodPost, app.srv.URL+p.path, strings.NewReader(form.Encode()))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("User-Agent", p.c.ua)
		req.Header.Set("X-Forwarded-For", p.c.ip)
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			res, err := p.c.http.Do(req)
			if err != nil {
				errs[i] = err
				return
			}
			res.Body.Close()
			statuses[i] = res.StatusCode
		}()
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	return statuses
}

// countStatuses counts statuses by code, failing on any outside allowed.
func countStatuses(t *testing.T, statuses []int, allowed ...int) map[int]int {
	t.Helper()
	n := map[int]int{}
	for i, s := range statuses {
		ok := false
		for _, a := range allowed {
			ok = ok || s == a
		}
		if !ok {
			t.Fatalf("request %d: status %d, want one of %v", i, s, allowed)
		}
		n[s]++
	}
	return n
}

// TestConcurrentWrongPasswordsAreCountedFirst (second review, finding 5):
// every attempt is counted before its password is hashed, atomically, so a
// burst of wrong passwords sent at once gets no more checks than the limit
// (a 401 is a checked password, a 429 one refused before hashing): per
// account, per address, and per session re-entering its password. A right
// password under the limit still works, and the owner's device-cookie
// browser keeps its own count.
func TestConcurrentWrongPasswordsAreCountedFirst(t *testing.T) {
	app := newTestApp(t)
	owner := app.client(uaWindowsChrome, ipBerlin)
	owner.signup("alice@example.com", pw)
	owner.post("/logout", nil)
	phone := app.client(uaIPhone, ipLondon)
	phone.login("alice@example.com", pw)

	// 150 wrong passwords for one account at once, each from its own
	// address (so only the account's limit applies).
	var posts []burstPost
	for i := range 150 {
		c := app.client(uaMacFirefox, "10.1."+strconv.Itoa(i/200)+"."+strconv.Itoa(i%200+1))
		posts = append(posts, burstPost{c, "/login", url.Values{"email": {"alice@example.com"}, "password": {"guess " + strconv.Itoa(i)}}})
	}
	n := countStatuses(t, burst(t, app, posts), http.StatusUnauthorized, http.StatusTooManyRequests)
	if n[http.StatusUnauthorized] != app.cfg.AccountFailureLimit {
		t.Fatalf("%d of 150 concurrent wrong passwords were checked, want exactly the limit %d", n[http.StatusUnauthorized], app.cfg.AccountFailureLimit)
	}
	// The owner's browser, with its device cookie, signs in meanwhile.
	owner.login("alice@example.com", pw)
	owner.post("/logout", nil)

	// 120 wrong sign-ins at once from one address, each for another
	// account: the per-address limit holds as well.
	posts = nil
	for i := range 120 {
		c := app.client(uaMacFirefox, ipTokyo)
		posts = append(posts, burstPost{c, "/login", url.Values{"email": {"user" + strconv.Itoa(i) + "@example.com"}, "password": {"guess"}}})
	}
	n = countStatuses(t, burst(t, app, posts), http.StatusUnauthorized, http.StatusTooManyRequests)
	if n[http.StatusUnauthorized] != app.cfg.IPFailureLimit {
		t.Fatalf("%d of 120 concurrent sign-ins from one address were checked, want exactly the limit %d", n[http.StatusUnauthorized], app.cfg.IPFailureLimit)
	}

	// 80 wrong passwords at once through one session re-entering it.
	app.outsideSudo()
	posts = nil
	for i := range 80 {
		posts = append(posts, burstPost{phone, "/settings/security/sessions/revoke-others", url.Values{"password": {"nope " + strconv.Itoa(i)}}})
	}
	n = countStatuses(t, burst(t, app, posts), http.StatusUnprocessableEntity, http.StatusTooManyRequests)
	if n[http.StatusUnprocessableEntity] != app.cfg.AccountFailureLimit {
		t.Fatalf("%d of 80 concurrent wrong re-entered passwords were checked, want exactly the limit %d", n[http.StatusUnprocessableEntity], app.cfg.AccountFailureLimit)
	}
	expectStatus(t, phone.post("/settings/security/sessions/revoke-others", url.Values{"password": {pw}}), http.StatusTooManyRequests)

	// Once the window has passed: wrong ones under the limit, then the right
	// one, which is not counted (the next nine wrong ones are still
	// checked).
	app.advance(app.cfg.FailureWindow)
	stranger := app.client(uaMacFirefox, "10.9.9.9")
	for range app.cfg.AccountFailureLimit - 1 {
		expectStatus(t, stranger.post("/login", url.Values{"email": {"alice@example.com"}, "password": {"guess"}}), http.StatusUnauthorized)
	}
	stranger.login("alice@example.com", pw)
	stranger.post("/logout", nil)
	expectRedirect(t, phone.post("/settings/security/sessions/revoke-others", url.Values{"password": {pw}}), "/settings/security")
}

// TestDeviceCookiesDieWithAReset (second review, finding 9): a device
// cookie is bound to the account's epoch, so one given before a password
// reset or "sign out everywhere" counts as anonymous after it, while the
// browser that made the reset, and any that signs in after it, keeps its
// own count.
func TestDeviceCookiesDieWithAReset(t *testing.T) {
	app := newTestApp(t)
	owner := app.client(uaWindowsChrome, ipBerlin)
	owner.signup("alice@example.com", pw)
	// The intruder knew the password and signed in (a device cookie).
	intruder := app.client(uaMacFirefox, ipTokyo)
	intruder.login("alice@example.com", pw)
	intruder.post("/logout", nil)

	flood := func(from string) {
		t.Helper()
		for i := range app.cfg.AccountFailureLimit {
			c := app.client(uaMacFirefox, from+strconv.Itoa(i))
			expectStatus(t, c.post("/login", url.Values{"email": {"alice@example.com"}, "password": {"guess"}}), http.StatusUnauthorized)
		}
	}
	signIn := func(c *client, password string) *response {
		return c.post("/login", url.Values{"email": {"alice@example.com"}, "password": {password}})
	}

	// "Sign out everywhere": the intruder's cookie is anonymous after it.
	app.outsideSudo()
	expectRedirect(t, owner.post("/settings/security/sessions/revoke-all", url.Values{"password": {pw}}), "/login")
	flood("10.2.0.")
	expectStatus(t, signIn(intruder, pw), http.StatusTooManyRequests)
	// The owner's browser made the reset and was given a fresh cookie.
	expectRedirect(t, signIn(owner, pw), "/settings/security")

	// A password reset by emailed link: the same, for a cookie from a
	// sign-in after the last reset (the flood has aged out).
	app.advance(app.cfg.FailureWindow)
	expectRedirect(t, signIn(intruder, pw), "/settings/security")
	intruder.post("/logout", nil)
	laptop := app.client(uaIPhone, ipLondon)
	expectRedirect(t, laptop.post("/password/forgot", url.Values{"email": {"alice@example.com"}}), "/password/forgot")
	reset := app.link(app.mail("alice@example.com", "Reset your Doorman password"), "/password/reset")
	laptop.follow(reset)
	expectRedirect(t, laptop.post("/password/reset", url.Values{"token": {linkToken(t, reset)}, "new_password": {"a brand new one"}}), "/settings/security")
	laptop.post("/logout", nil)
	flood("10.3.0.")
	expectStatus(t, signIn(intruder, "a brand new one"), http.StatusTooManyRequests)
	expectStatus(t, signIn(owner, "a brand new one"), http.StatusTooManyRequests) // its cookie predates the reset too
	expectRedirect(t, signIn(laptop, "a brand new one"), "/settings/security")    // the browser that reset
}

// TestFarmedDeviceCookiesAreCapped (second review, finding 9): all device
// scopes of one account together get at most three times the per-account
// limit per window; past that a device cookie counts as anonymous, so
// cookies collected by signing in many times add no more than the cap.
func TestFarmedDeviceCookiesAreCapped(t *testing.T) {
	app := newTestApp(t)
	app.client(uaWindowsChrome, ipBerlin).signup("alice@example.com", pw)
	limit := app.cfg.AccountFailureLimit
	// Six browsers signed in with the password: six device cookies.
	var farmed []*client
	for i := range 6 {
		c := app.client(uaMacFirefox, "10.4.0."+strconv.Itoa(i))
		c.login("alice@example.com", pw)
		c.post("/logout", nil)
		farmed = append(farmed, c)
	}
	// A stranger has spent the anonymous count.
	for i := range limit {
		c := app.client(uaMacFirefox, "10.5.0."+strconv.Itoa(i))
		expectStatus(t, c.post("/login", url.Values{"email": {"alice@example.com"}, "password": {"guess"}}), http.StatusUnauthorized)
	}
	checked := 0
	for _, c := range farmed {
		for range limit + 2 {
			res := c.post("/login", url.Values{"email": {"alice@example.com"}, "password": {"guess"}})
			switch res.StatusCode {
			case http.StatusUnauthorized:
				checked++
			case http.StatusTooManyRequests:
			default:
				t.Fatalf("status %d", res.StatusCode)
			}
		}
	}
	if want := 3 * limit; checked != want {
		t.Fatalf("six device cookies had %d guesses checked, want the cap %d", checked, want)
	}
}

// TestOwnersBrowserCanStillAskForALink (second review, finding 13): strangers
// who spend a mailbox's "send me a link" requests do not stop a browser that
// signed in to the account before (its device cookie) from asking for one:
// it has its own count per mailbox and kind.
func TestOwnersBrowserCanStillAskForALink(t *testing.T) {
	app := newTestApp(t)
	owner := app.client(uaWindowsChrome, ipBerlin)
	owner.signup("alice@example.com", pw)
	owner.post("/logout", nil)
	for i := range 5 {
		c := app.client(uaMacFirefox, "10.6.0."+strconv.Itoa(i))
		expectRedirect(t, c.post("/password/forgot", url.Values{"email": {"alice@example.com"}}), "/password/forgot")
	}
	expectStatus(t, app.client(uaMacFirefox, ipTokyo).post("/password/forgot", url.Values{"email": {"alice@example.com"}}), http.StatusTooManyRequests)
	// Drain the strangers' mail, then the owner's browser asks.
	for range 5 {
		app.mail("alice@example.com", "Reset your Doorman password")
	}
	expectRedirect(t, owner.post("/password/forgot", url.Values{"email": {"alice@example.com"}}), "/password/forgot")
	reset := app.link(app.mail("alice@example.com", "Reset your Doorman password"), "/password/reset")
	owner.follow(reset)
	expectRedirect(t, owner.post("/password/reset", url.Values{"token": {linkToken(t, reset)}, "new_password": {"a brand new one"}}), "/settings/security")
	// Its own count is limited too.
	owner.post("/logout", nil)
	for range 5 {
		expectRedirect(t, owner.post("/password/forgot", url.Values{"email": {"alice@example.com"}}), "/password/forgot")
	}
	expectStatus(t, owner.post("/password/forgot", url.Values{"email": {"alice@example.com"}}), http.StatusTooManyRequests)
}
