package handlers_test

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"doorman/apptest"
	"doorman/db"
	"doorman/geo/geotest"
	"doorman/handlers"
	"doorman/mailtest"
)

// User agents of the devices the tests play.
const (
	uaWindowsChrome = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
	uaIPhone        = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
	uaMacFirefox    = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14.5; rv:133.0) Gecko/20100101 Firefox/133.0"
	// Addresses in the test GeoIP database.
	ipBerlin = geotest.SampleBerlin
	ipLondon = geotest.SampleLondon
	ipTokyo  = geotest.SampleTokyo
)

// waitTimeout is how long a test waits for a state (an event on a stream,
// a mail, a row, service again after an outage) before it fails. Generous
// on purpose: a busy machine makes a test slower, never red. How fast
// things happen is measured by make bench-live (the push) and make drills,
// not asserted here.
const waitTimeout = 30 * time.Second

// testApp is the real server (apptest: handlers.New over a real SQLite
// store) behind httptest, with a clock the test moves and a log it can read.
type testApp struct {
	t     *testing.T
	srv   *httptest.Server
	app   *apptest.App
	store db.Store
	logs  *apptest.SyncBuffer
	cfg   handlers.Config
	// dbPath is the SQLite file, for operator commands run beside the server.
	dbPath string
	e      http.Handler // the router, for requests served in-process
	// smtp is the real SMTP server (in process) the app's mail goes to.
	smtp *mailtest.Server
}

// newTestApp starts a server. The loopback peer is a trusted proxy, so
// clients choose their address with X-Forwarded-For, unless mod says
// otherwise.
func newTestApp(t *testing.T, mod ...func(*handlers.Config)) *testApp {
	t.Helper()
	return newTestAppWith(t, apptest.Options{Config: func(c *handlers.Config) {
		for _, m := range mod {
			m(c)
		}
	}})
}

// newTestAppWith is newTestApp with any apptest options (a slower hasher
// for the races, a given database).
func newTestAppWith(t *testing.T, o apptest.Options) *testApp {
	t.Helper()
	logs := &apptest.SyncBuffer{}
	o.Log = logs
	if o.SMTP == nil && !o.NoMail {
		o.SMTP = mailtest.Start(t, mailtest.Options{})
	}
	app := apptest.New(t, o)
	a := &testApp{t: t, app: app, store: app.Store, logs: logs, cfg: app.Config, dbPath: app.DBPath, smtp: o.SMTP}
	a.serve(app.Handler)
	return a
}

// start serves a fresh handlers.New over the app's store: a restart (or a
// second instance on the same database).
func (a *testApp) start() { a.serve(a.app.NewHandler()) }

func (a *testApp) serve(h http.Handler) {
	if a.srv != nil {
		a.srv.Close()
	}
	a.e = h
	a.srv = httptest.NewServer(h)
	a.t.Cleanup(a.srv.Close)
}

// clock is the server's time; advance moves it.
func (a *testApp) clock() time.Time        { return a.app.Clock.Now() }
func (a *testApp) advance(d time.Duration) { a.app.Clock.Advance(d) }

// client is one browser: its own cookie jar, user agent and address. It does
// not follow redirects, so tests see every 303.
type client struct {
	t    *testing.T
	app  *testApp
	jar  *cookiejar.Jar
	http *http.Client
	ua   string
	ip   string
}

func (a *testApp) client(ua, ip string) *client {
	jar, _ := cookiejar.New(nil)
	return &client{t: a.t, app: a, jar: jar, ua: ua, ip: ip, http: &http.Client{
		Jar:           jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

type response struct {
	*http.Response
	body string
}

func (c *client) do(req *http.Request) *response {
	c.t.Helper()
	req.Header.Set("User-Agent", c.ua)
	if c.ip != "" {
		req.Header.Set("X-Forwarded-For", c.ip)
	}
	res, err := c.http.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return &response{Response: res, body: string(body)}
}

func (c *client) get(path string) *response {
	c.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, c.app.srv.URL+path, nil)
	return c.do(req)
}

// csrfToken is the token a form on the last page carried (the double-submit
// cookie holds the same value).
func (c *client) csrfToken() string { return c.cookie("doorman_csrf") }

// cookie is the browser's cookie name's value, or "".
func (c *client) cookie(name string) string {
	u, _ := url.Parse(c.app.srv.URL)
	for _, ck := range c.jar.Cookies(u) {
		if ck.Name == name {
			return ck.Value
		}
	}
	return ""
}

// post submits a form the way a browser would from one of our pages: it
// loads a page first if it has no CSRF token yet, then sends the token back.
func (c *client) post(path string, form url.Values, headers ...string) *response {
	c.t.Helper()
	return c.send(http.MethodPost, path, form, headers...)
}

// send is post with any method.
func (c *client) send(method, path string, form url.Values, headers ...string) *response {
	c.t.Helper()
	if c.csrfToken() == "" {
		c.get("/login")
	}
	if form == nil {
		form = url.Values{}
	}
	if !form.Has("csrf") {
		form.Set("csrf", c.csrfToken())
	}
	req, _ := http.NewRequest(method, c.app.srv.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	return c.do(req)
}

func (c *client) signup(email, pw string) *response {
	c.t.Helper()
	res := c.post("/signup", url.Values{"email": {email}, "password": {pw}})
	expectRedirect(c.t, res, "/settings/security")
	return res
}

func (c *client) login(email, pw string) *response {
	c.t.Helper()
	res := c.post("/login", url.Values{"email": {email}, "password": {pw}})
	expectRedirect(c.t, res, "/settings/security")
	return res
}

// sessionCookie returns the browser's session cookie value, or "".
func (c *client) sessionCookie() string { return c.cookie("doorman_session") }

func expectStatus(t *testing.T, res *response, code int) {
	t.Helper()
	if res.StatusCode != code {
		t.Fatalf("%s %s: status %d, want %d\n%s", res.Request.Method, res.Request.URL.Path, res.StatusCode, code, snippet(res.body))
	}
}

func expectRedirect(t *testing.T, res *response, location string) {
	t.Helper()
	expectStatus(t, res, http.StatusSeeOther)
	if got := res.Header.Get("Location"); got != location {
		t.Fatalf("%s %s: Location %q, want %q", res.Request.Method, res.Request.URL.Path, got, location)
	}
}

func expectBody(t *testing.T, res *response, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(res.body, w) {
			t.Fatalf("%s %s: body lacks %q\n%s", res.Request.Method, res.Request.URL.Path, w, snippet(res.body))
		}
	}
}

func expectNoBody(t *testing.T, res *response, unwanted ...string) {
	t.Helper()
	for _, w := range unwanted {
		if strings.Contains(res.body, w) {
			t.Fatalf("%s %s: body contains %q", res.Request.Method, res.Request.URL.Path, w)
		}
	}
}

func snippet(s string) string {
	if len(s) > 3000 {
		return s[:3000] + "…"
	}
	return s
}

var rowRE = regexp.MustCompile(`<li class="session" data-session-id="([a-z2-7]{16})"( data-current="true")?>`)

// listedSession is one row of the Security page as the HTML shows it.
type listedSession struct {
	ID      string
	Current bool
	HTML    string
}

// sessionsOnPage parses the session rows out of the Security page.
func sessionsOnPage(t *testing.T, body string) []listedSession {
	t.Helper()
	locs := rowRE.FindAllStringSubmatchIndex(body, -1)
	var out []listedSession
	for i, m := range locs {
		end := len(body)
		if i+1 < len(locs) {
			end = locs[i+1][0]
		} else if j := strings.Index(body[m[1]:], "</ul>"); j >= 0 {
			end = m[1] + j
		}
		out = append(out, listedSession{ID: body[m[2]:m[3]], Current: m[4] >= 0, HTML: body[m[0]:end]})
	}
	return out
}

// securityPage loads the Security page and returns its rows.
func (c *client) securityPage() (*response, []listedSession) {
	c.t.Helper()
	res := c.get("/settings/security")
	expectStatus(c.t, res, http.StatusOK)
	return res, sessionsOnPage(c.t, res.body)
}

// currentID is the public id of this browser's session.
func (c *client) currentID() string {
	c.t.Helper()
	_, rows := c.securityPage()
	for _, r := range rows {
		if r.Current {
			return r.ID
		}
	}
	c.t.Fatal("no current session on the Security page")
	return ""
}

// dump is every row of every table, to prove a refused request changed
// nothing.
// It first waits for the outbox worker to be idle (no mail still queued):
// the worker's own writes (a mail marked sent) are not the request's.
func (a *testApp) dump() string {
	a.t.Helper()
	for deadline := time.Now().Add(waitTimeout); ; time.Sleep(10 * time.Millisecond) {
		d, err := a.store.Dump(context.Background())
		if err != nil {
			a.t.Fatal(err)
		}
		if !strings.Contains(d, "| "+db.MailQueued+" |") || time.Now().After(deadline) {
			return d
		}
	}
}

func mustRequest(method, u string) *http.Request {
	req, err := http.NewRequest(method, u, nil)
	if err != nil {
		panic(err)
	}
	return req
}

// serverFaults are the lines of a server's log that record a 500 (a
// recovered panic is one too: Recover sits inside the access log) or a
// panic. Matched on the log's fields, not the bare word: a random request id
// can spell "panic".
func serverFaults(logs string) []string {
	var bad []string
	for _, line := range strings.Split(logs, "\n") {
		if strings.Contains(line, " status=500 ") || strings.Contains(line, "PANIC RECOVER") {
			bad = append(bad, line)
		}
	}
	return bad
}

func regexpAll(re, s string) []string {
	return regexp.MustCompile(re).FindAllString(s, -1)
}

// mail waits for the next mail to to whose subject contains subject, as the
// SMTP server received it.
func (a *testApp) mail(to, subject string) mailtest.Message {
	a.t.Helper()
	return a.smtp.WaitForSubject(a.t, to, subject, waitTimeout)
}

// link is the link in m whose path starts with path; the test fails if there
// is none.
func (a *testApp) link(m mailtest.Message, path string) string {
	a.t.Helper()
	l := m.Link(path)
	if l == "" {
		a.t.Fatalf("mail %q has no link to %s:\n%s", m.Subject, path, m.Text)
	}
	return l
}

// follow opens an emailed link in this browser: its path and query on the
// test server (links carry the configured public origin).
func (c *client) follow(link string) *response {
	c.t.Helper()
	u, err := url.Parse(link)
	if err != nil {
		c.t.Fatal(err)
	}
	return c.get(u.RequestURI())
}

// linkToken is the token an emailed link carries.
func linkToken(t *testing.T, link string) string {
	t.Helper()
	u, err := url.Parse(link)
	if err != nil {
		t.Fatal(err)
	}
	return u.Query().Get("token")
}
