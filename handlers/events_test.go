package handlers_test

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"doorman/apptest"
	"doorman/handlers"
	"doorman/operator"
)

// stream is an open GET /settings/security/events, read line by line.
type stream struct {
	t      *testing.T
	res    *http.Response
	lines  chan string
	cancel context.CancelFunc
}

// openStream opens the client's event stream and checks it is one.
func (c *client) openStream() *stream {
	c.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, c.app.srv.URL+"/settings/security/events", nil)
	req.Header.Set("User-Agent", c.ua)
	req.Header.Set("X-Forwarded-For", c.ip)
	req.Header.Set("Accept", "text/event-stream")
	res, err := c.http.Do(req)
	if err != nil {
		cancel()
		c.t.Fatal(err)
	}
	s := &stream{t: c.t, res: res, lines: make(chan string, 100), cancel: cancel}
	c.t.Cleanup(func() { cancel(); res.Body.Close() })
	if res.StatusCode != http.StatusOK {
		return s
	}
	if ct := res.Header.Get("Content-Type"); ct != "text/event-stream" {
		c.t.Fatalf("stream Content-Type %q", ct)
	}
	go func() {
		defer close(s.lines)
		sc := bufio.NewScanner(res.Body)
		for sc.Scan() {
			s.lines <- sc.Text()
		}
	}()
	return s
}

// next returns the next event (its name and data), skipping comments,
// within d; "" if the stream ended.
func (s *stream) next(d time.Duration) (event, data string) {
	s.t.Helper()
	timeout := time.After(d)
	for {
		select {
		case line, ok := <-s.lines:
			if !ok {
				return "", ""
			}
			switch {
			case strings.HasPrefix(line, "event: "):
				event = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				data = strings.TrimPrefix(line, "data: ")
			case line == "" && event != "":
				return event, data
			}
		case <-timeout:
			s.t.Fatalf("no event within %v", d)
			return "", ""
		}
	}
}

// expectEvent waits for the event. (The goal is a push within a second;
// make bench-live measures it. Here a busy machine may take longer.)
func (s *stream) expectEvent(event, data string) {
	s.t.Helper()
	e, d := s.next(waitTimeout)
	if e != event || (data != "" && d != data) {
		s.t.Fatalf("got event %q data %q, want %q %q", e, d, event, data)
	}
}

func (s *stream) expectClosed() {
	s.t.Helper()
	select {
	case line, ok := <-s.lines:
		for ok {
			if strings.HasPrefix(line, "event:") {
				s.t.Fatalf("stream went on with %q", line)
			}
			line, ok = <-s.lines
		}
	case <-time.After(waitTimeout):
		s.t.Fatal("the stream stayed open")
	}
}

func TestEventStreamSignsTheEndedTabOut(t *testing.T) {
	app := newTestApp(t)
	desktop, phone := app.client(uaWindowsChrome, ipBerlin), app.client(uaIPhone, ipLondon)
	desktop.signup("alice@example.com", pw)
	phone.login("alice@example.com", pw)
	phoneID := phone.currentID()
	ps, ds := phone.openStream(), desktop.openStream()

	// Ended from the other device: the phone's tab is told at once, in
	// words, and its stream closes; the desktop's list refreshes.
	expectRedirect(t, desktop.post("/settings/security/sessions/"+phoneID+"/revoke", nil), "/settings/security")
	endedAt := hhmm(app)
	ps.expectEvent("signed-out", "You were signed out of this device at "+endedAt+" from Chrome on Windows (Berlin).")
	ps.expectClosed()
	ds.expectEvent("sessions", "changed")

	// A signed-out browser gets no stream: a 401, not a redirect to the
	// sign-in page (the stream would fetch it and spend its notice); the
	// next page says why it was signed out.
	res := phone.openStream().res
	if res.StatusCode != http.StatusUnauthorized || res.Header.Get("Location") != "" {
		t.Fatalf("an ended session opened a stream: %d %s", res.StatusCode, res.Header.Get("Location"))
	}
	expectBody(t, phone.get("/login"), "You were signed out of this device at "+endedAt+" from Chrome on Windows (Berlin).")
	anon := app.client(uaIPhone, ipLondon).openStream().res
	if anon.StatusCode != http.StatusUnauthorized {
		t.Fatalf("no cookie: %d", anon.StatusCode)
	}

	// A new sign-in refreshes the other tabs' lists.
	laptop := app.client(uaMacFirefox, ipTokyo)
	laptop.login("alice@example.com", pw)
	ds.expectEvent("sessions", "changed")
	ls := laptop.openStream()

	// A password change elsewhere ends it too.
	expectRedirect(t, desktop.post("/settings/security/password", url.Values{"current_password": {pw}, "new_password": {"another password"}, "sign_out_others": {"on"}}), "/settings/security")
	ls.expectEvent("signed-out", "You were signed out of this device at "+hhmm(app)+" when your password was changed on Chrome on Windows (Berlin).")
}

// TestEventStreamSeesTheOperator: an ending written by another process (an
// operator command on the same database) reaches the open tab, through
// the store's watcher.
func TestEventStreamSeesTheOperator(t *testing.T) {
	app := newTestApp(t)
	desktop := app.client(uaWindowsChrome, ipBerlin)
	desktop.signup("alice@example.com", pw)
	ds := desktop.openStream()
	var out strings.Builder
	if err := operator.Run(context.Background(), []string{"sessions", "revoke", "--user", "alice@example.com", "--all", "-db", app.dbPath},
		func(string) string { return "" }, &out, slog.New(slog.NewTextHandler(io.Discard, nil)), app.clock); err != nil {
		t.Fatal(err)
	}
	ds.expectEvent("signed-out", "You were signed out of this device at "+hhmm(app)+" by the people who run this site.")
}

// TestEventStreamSeesASignInThroughAnotherInstance: two instances on one
// database (PostgreSQL with DOORMAN_TEST_STORE=postgres, else one SQLite
// file). A tab whose stream is held on b is told its list changed when the
// account signs in through a, and that is not a sign-out: the stream stays
// open, and an ending of its own session through a then signs it out.
func TestEventStreamSeesASignInThroughAnotherInstance(t *testing.T) {
	a := newTestApp(t)
	b := newTestAppWith(t, apptest.Options{DSN: a.dbPath, Clock: a.app.Clock, SecretBox: a.app.SecretBox})
	desktop := b.client(uaWindowsChrome, ipBerlin)
	desktop.signup("alice@example.com", pw)
	desktopID := desktop.currentID()
	ds := desktop.openStream()

	phone := a.client(uaIPhone, ipLondon)
	phone.login("alice@example.com", pw)
	// Generous: the wait is for the event, not a measure of its speed.
	if e, d := ds.next(15 * time.Second); e != "sessions" || d != "changed" {
		t.Fatalf("after a sign-in through the other instance: event %q data %q, want sessions changed", e, d)
	}
	expectRedirect(t, phone.post("/settings/security/sessions/"+desktopID+"/revoke", nil), "/settings/security")
	if e, d := ds.next(15 * time.Second); e != "signed-out" || d != "You were signed out of this device at "+hhmm(a)+" from Safari on iPhone (London)." {
		t.Fatalf("after its ending through the other instance: event %q data %q", e, d)
	}
	ds.expectClosed()
}

func TestEventStreamLimitsHeartbeatExpiryShutdown(t *testing.T) {
	app := newTestApp(t, func(c *handlers.Config) {
		c.StreamHeartbeat = 50 * time.Millisecond
		c.IdleTimeout = time.Hour
	})
	desktop := app.client(uaWindowsChrome, ipBerlin)
	desktop.signup("alice@example.com", pw)

	// At most four streams a session: a fifth is refused, and the server
	// keeps working.
	var streams []*stream
	for range 4 {
		streams = append(streams, desktop.openStream())
	}
	if res := desktop.openStream().res; res.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("a fifth stream: %d, want 429", res.StatusCode)
	}
	expectStatus(t, desktop.get("/settings"), http.StatusOK)
	// Heartbeats come as comments.
	deadline := time.After(waitTimeout)
	for got := false; !got; {
		select {
		case line := <-streams[0].lines:
			got = line == ": ping"
		case <-deadline:
			t.Fatal("no heartbeat")
		}
	}
	// Closing tabs frees their places.
	for _, s := range streams[1:] {
		s.cancel()
	}
	waitUntil(t, func() bool { return app.app.Live.Open() == 1 })
	extra := desktop.openStream()
	if extra.res.StatusCode != http.StatusOK {
		t.Fatalf("after closing tabs: %d", extra.res.StatusCode)
	}

	// Expiry needs no write: the stream notices at its next check.
	app.advance(2 * time.Hour)
	// It says when: at the idle expiry, an hour after the last use.
	timedOut := "Your session timed out at " + app.clock().Add(-time.Hour).UTC().Format("15:04 UTC") + " after 1 hour unused. Please sign in again."
	streams[0].expectEvent("signed-out", timedOut)
	extra.expectEvent("signed-out", timedOut)
	// The streams' requests, over now, do not bring the session back (it
	// began alive: a touch at its end once pushed the idle expiry on).
	streams[0].expectClosed()
	extra.expectClosed()
	expectRedirect(t, desktop.get("/settings"), "/login?next=%2Fsettings")

	// Shutdown ends the streams that are left.
	app.advance(-2 * time.Hour)
	other := app.client(uaIPhone, ipLondon)
	other.login("alice@example.com", pw)
	os := other.openStream()
	app.app.Live.Close()
	os.expectClosed()
	if res := other.openStream().res; res.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("a stream during shutdown: %d, want 503", res.StatusCode)
	}
}

func waitUntil(t *testing.T, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestBackgroundRefreshKeepsMessages: the script's re-read of the page
// (after a push) must not take the message the tab's next page shows.
func TestBackgroundRefreshKeepsMessages(t *testing.T) {
	app := newTestApp(t)
	desktop, phone := app.client(uaWindowsChrome, ipBerlin), app.client(uaIPhone, ipLondon)
	desktop.signup("alice@example.com", pw)
	desktop.get("/settings") // the welcome message, shown
	phone.login("alice@example.com", pw)
	desktop.jar.SetCookies(mustURL(app.srv.URL), nil)
	res := desktop.post("/settings/security/sessions/"+phone.currentID()+"/revoke", nil)
	expectRedirect(t, res, "/settings/security")
	req := mustRequest("GET", app.srv.URL+"/settings/security")
	req.Header.Set("X-Doorman-Refresh", "1")
	expectNoBody(t, desktop.do(req), "Signed out Safari on iPhone")
	expectBody(t, desktop.get("/settings/security"), "Signed out Safari on iPhone")
}

// TestFlashCookieStaysSmall: a client posting again and again without
// loading a page keeps only the latest messages, and nothing errors.
func TestFlashCookieStaysSmall(t *testing.T) {
	app := newTestApp(t)
	owner := app.client(uaWindowsChrome, ipBerlin)
	owner.signup("alice@example.com", pw)
	var last string
	for i := range 40 {
		c := app.client(uaIPhone, "81.2.69."+strconv.Itoa(i))
		c.login("alice@example.com", pw)
		expectRedirect(t, owner.post("/settings/security/sessions/"+c.currentID()+"/revoke", nil), "/settings/security")
		last = "Signed out Safari on iPhone"
	}
	if strings.Contains(app.logs.String(), "save flash") {
		t.Fatal("the flash cookie grew too large to save")
	}
	res := owner.get("/settings/security")
	if n := strings.Count(res.body, last); n < 1 || n > 3 {
		t.Fatalf("%d waiting messages shown, want 1 to 3", n)
	}
}

// expectRefused checks that s was refused with status and a Retry-After,
// its page saying why.
func (s *stream) expectRefused(status int, why string) {
	s.t.Helper()
	if s.res.StatusCode != status {
		s.t.Fatalf("stream: %d, want %d", s.res.StatusCode, status)
	}
	if ra, err := strconv.Atoi(s.res.Header.Get("Retry-After")); err != nil || ra < 1 {
		s.t.Fatalf("refused stream's Retry-After %q", s.res.Header.Get("Retry-After"))
	}
	body, err := io.ReadAll(s.res.Body)
	if err != nil {
		s.t.Fatal(err)
	}
	if !strings.Contains(string(body), why) {
		s.t.Fatalf("refused stream's page does not say %q:\n%s", why, body)
	}
}

// TestEventStreamLimitsPerAccountAndInstance: besides 4 a session, an
// account holds at most MaxStreamsPerUser streams across its sessions (429)
// and the instance at most MaxStreams (503), each with Retry-After; the
// refused tab is still signed in, and a closed stream frees its place.
func TestEventStreamLimitsPerAccountAndInstance(t *testing.T) {
	app := newTestApp(t, func(c *handlers.Config) {
		c.MaxStreamsPerSession = 2
		c.MaxStreamsPerUser = 3
		c.MaxStreams = 5
	})
	desktop, phone := app.client(uaWindowsChrome, ipBerlin), app.client(uaIPhone, ipLondon)
	desktop.signup("alice@example.com", pw)
	phone.login("alice@example.com", pw)
	d1, d2 := desktop.openStream(), desktop.openStream()
	p1 := phone.openStream()
	for _, s := range []*stream{d1, d2, p1} {
		if s.res.StatusCode != http.StatusOK {
			t.Fatalf("a stream within the limits: %d", s.res.StatusCode)
		}
	}
	// The phone's session holds one of its two, but the account holds its
	// three.
	phone.openStream().expectRefused(http.StatusTooManyRequests, "Too many open tabs are watching this account.")
	// A refused stream is no sign-out: the tab's check finds it signed in.
	expectStatus(t, phone.get("/settings/security"), http.StatusOK)

	// Another account fills the instance: the next stream, anyone's, is a
	// 503, not the account's fault.
	laptop, tablet := app.client(uaMacFirefox, ipTokyo), app.client(uaIPhone, ipTokyo)
	laptop.signup("bob@example.com", pw)
	tablet.login("bob@example.com", pw)
	l1, l2 := laptop.openStream(), laptop.openStream()
	if l1.res.StatusCode != http.StatusOK || l2.res.StatusCode != http.StatusOK {
		t.Fatalf("bob's streams: %d %d", l1.res.StatusCode, l2.res.StatusCode)
	}
	tablet.openStream().expectRefused(http.StatusServiceUnavailable, "watching too many open tabs")
	expectStatus(t, tablet.get("/settings/security"), http.StatusOK)
	// Pages are not streams: they are served as usual.
	expectStatus(t, desktop.get("/settings"), http.StatusOK)

	// A closed stream frees its place under every limit: alice's phone
	// gets one when her desktop closes one, and bob's tablet when his
	// laptop does.
	d1.cancel()
	waitUntil(t, func() bool { return app.app.Live.Open() == 4 })
	if s := phone.openStream(); s.res.StatusCode != http.StatusOK {
		t.Fatalf("after a tab of the account closed: %d", s.res.StatusCode)
	}
	tablet.openStream().expectRefused(http.StatusServiceUnavailable, "watching too many open tabs")
	l1.cancel()
	waitUntil(t, func() bool { return app.app.Live.Open() == 4 })
	if s := tablet.openStream(); s.res.StatusCode != http.StatusOK {
		t.Fatalf("after a tab on the instance closed: %d", s.res.StatusCode)
	}
	if strings.Contains(app.logs.String(), "level=ERROR") {
		t.Fatal("a refused stream was logged as an error")
	}
}

// TestEventStreamLimitsHoldUnderConcurrentOpens: streams opened at once
// from several sessions of one account never overshoot the account's
// limit (the count and the check are one step).
func TestEventStreamLimitsHoldUnderConcurrentOpens(t *testing.T) {
	app := newTestApp(t, func(c *handlers.Config) { c.MaxStreamsPerUser = 5 })
	var tabs []*client
	for i := range 3 {
		c := app.client(uaWindowsChrome, ipBerlin)
		if i == 0 {
			c.signup("alice@example.com", pw)
		} else {
			c.login("alice@example.com", pw)
		}
		tabs = append(tabs, c, c, c, c) // 4 a session: 12 in all
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	statuses := make(chan int, len(tabs))
	start := make(chan struct{})
	for _, c := range tabs {
		go func() {
			<-start
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, app.srv.URL+"/settings/security/events", nil)
			if err != nil {
				statuses <- -1
				return
			}
			req.Header.Set("User-Agent", c.ua)
			req.Header.Set("X-Forwarded-For", c.ip)
			res, err := c.http.Do(req)
			if err != nil {
				statuses <- -1
				return
			}
			// Held open (the body unread) until the test ends.
			t.Cleanup(func() { res.Body.Close() })
			statuses <- res.StatusCode
		}()
	}
	close(start)
	got := map[int]int{}
	for range tabs {
		got[<-statuses]++
	}
	if got[http.StatusOK] != 5 || got[http.StatusTooManyRequests] != 7 || app.app.Live.Open() != 5 {
		t.Fatalf("12 streams at once for an account allowed 5: %v, %d open", got, app.app.Live.Open())
	}
}
