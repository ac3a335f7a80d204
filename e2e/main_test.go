// Package e2e drives the real server with a real Chromium through
// playwright-go. One browser is launched for the whole package; every test
// makes its own server and one BrowserContext per device.
package e2e

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/playwright-community/playwright-go"

	"doorman/apptest"
	"doorman/geo/geotest"
	"doorman/handlers"
	"doorman/mailtest"
	"doorman/password"
)

// waitTimeout is how long a test waits for a state (an element, a URL, a
// mail, an event) before it fails. It is generous on purpose: on a slow or
// busy machine (`make test-under-load`) things take longer, and that must
// make a test slower, never red. No test asserts how fast something
// happens; `make bench-live` measures that (the live notice, the push) and
// reports it against its goal.
const waitTimeout = 30 * time.Second

var (
	pw      *playwright.Playwright
	browser playwright.Browser
	expect  = playwright.NewPlaywrightAssertions(float64(waitTimeout.Milliseconds()))
)

// Addresses the devices pretend to come from (through the trusted-proxy
// header), and what the test GeoIP database says about them.
const (
	ipBerlin = geotest.SampleBerlin
	ipLondon = geotest.SampleLondon
	ipTokyo  = geotest.SampleTokyo
)

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	driver := os.Getenv("PLAYWRIGHT_DRIVER_PATH")
	if driver == "" {
		driver, _ = filepath.Abs("../.pwdriver")
	}
	if _, err := os.Stat(filepath.Join(driver, "package", "cli.js")); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: no playwright driver at %s: run `make setup` (or `make test`)\n", driver)
		return 1
	}
	var err error
	// Run never downloads: the driver and Chromium come from scripts/setup.sh.
	pw, err = playwright.Run(&playwright.RunOptions{DriverDirectory: driver, SkipInstallBrowsers: true, Stdout: io.Discard})
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e: start playwright: %v\n", err)
		return 1
	}
	defer pw.Stop()
	browser, err = pw.Chromium.Launch(playwright.BrowserTypeLaunchOptions{
		ExecutablePath: playwright.String("/usr/bin/chromium"),
		Headless:       playwright.Bool(true),
		Args: []string{"--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
			"--disable-background-networking", "--disable-component-update", "--disable-sync",
			"--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE localhost , EXCLUDE 127.0.0.1"},
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e: launch chromium: %v\n", err)
		return 1
	}
	defer browser.Close()
	if err := os.MkdirAll("screenshots", 0o755); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: %v\n", err)
		return 1
	}
	return m.Run()
}

// server is the real app (apptest: handlers.New over a fresh SQLite file)
// on 127.0.0.1, with a clock that runs with the wall clock and that the test
// can move forward.
type server struct {
	URL   string
	clock *apptest.Clock
	app   *apptest.App
	// smtp is the real SMTP server (in process) the server's mail goes to.
	smtp *mailtest.Server
}

// advance moves the server's clock forward.
func (s *server) advance(d time.Duration) { s.clock.Advance(d) }

// startServer starts the app. Loopback is a trusted proxy, so each device
// chooses its address with X-Forwarded-For.
func startServer(t *testing.T, mods ...func(*handlers.Config)) *server {
	t.Helper()
	return startServerWith(t, true, mods...)
}

// startServerWith is startServer, with its mail going to a real SMTP
// server (smtp) or, without one, to the development folder and viewer
// (-dev-mail).
func startServerWith(t *testing.T, smtp bool, mods ...func(*handlers.Config)) *server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &server{URL: "http://" + ln.Addr().String()}
	o := apptest.Options{
		Clock:   apptest.NewRunningClock(),
		Hasher:  password.NewHasher(password.DefaultParams(), 4),
		BaseURL: s.URL,
		Config: func(c *handlers.Config) {
			for _, m := range mods {
				m(c)
			}
		},
	}
	if smtp {
		s.smtp = mailtest.Start(t, mailtest.Options{})
		o.SMTP = s.smtp
	} else {
		o.DevMail = true
	}
	app := apptest.New(t, o)
	srv := &http.Server{Handler: app.Handler}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	s.clock, s.app = app.Clock, app
	return s
}

// mailTo waits for the next mail to to whose subject contains subject.
func (s *server) mailTo(t *testing.T, to, subject string) mailtest.Message {
	t.Helper()
	return s.smtp.WaitForSubject(t, to, subject, waitTimeout)
}

// deviceOption adjusts a device's browser context.
type deviceOption func(*playwright.BrowserNewContextOptions)

func dark(o *playwright.BrowserNewContextOptions) { o.ColorScheme = playwright.ColorSchemeDark }

func noJavaScript(o *playwright.BrowserNewContextOptions) {
	o.JavaScriptEnabled = playwright.Bool(false)
}

// bypassCSP lets a test inject axe-core. Only the accessibility checks use
// it; the flows run under the real Content-Security-Policy.
func bypassCSP(o *playwright.BrowserNewContextOptions) { o.BypassCSP = playwright.Bool(true) }

// Device names: playwright's own profiles (offline, from the driver), plus
// the desktop at 1280×800.
const (
	desktopChrome = "Desktop Chrome"
	iPhone13      = "iPhone 13"
	pixel7        = "Pixel 7"
	iPad          = "iPad (gen 7)"
	narrowPhone   = "iPhone SE" // 320 px wide
)

// newDevice opens a browser context emulating the named device from
// playwright's list, coming from ip ("": this machine, no proxy header).
func newDevice(t *testing.T, s *server, name, ip string, opts ...deviceOption) playwright.Page {
	t.Helper()
	d, ok := pw.Devices[name]
	if !ok {
		t.Fatalf("no device %q in playwright's list", name)
	}
	viewport := d.Viewport
	if name == desktopChrome {
		viewport = &playwright.Size{Width: 1280, Height: 800}
	}
	o := playwright.BrowserNewContextOptions{
		BaseURL:           playwright.String(s.URL),
		UserAgent:         playwright.String(d.UserAgent),
		Viewport:          viewport,
		DeviceScaleFactor: playwright.Float(d.DeviceScaleFactor),
		IsMobile:          playwright.Bool(d.IsMobile),
		HasTouch:          playwright.Bool(d.HasTouch),
	}
	if ip != "" {
		o.ExtraHttpHeaders = map[string]string{"X-Forwarded-For": ip}
	}
	for _, opt := range opts {
		opt(&o)
	}
	ctx, err := browser.NewContext(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ctx.Close() })
	ctx.SetDefaultTimeout(float64(waitTimeout.Milliseconds()))
	page, err := ctx.NewPage()
	if err != nil {
		t.Fatal(err)
	}
	// Our own script and styles must never trip the CSP: any violation the
	// browser reports fails the test.
	page.OnConsole(func(m playwright.ConsoleMessage) {
		if strings.Contains(m.Text(), "Content Security Policy") {
			t.Errorf("%s: CSP violation: %s", name, m.Text())
		}
	})
	return page
}

// must fails the test on a playwright error; every call's error is checked.
func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func goTo(t *testing.T, p playwright.Page, path string) {
	t.Helper()
	_, err := p.Goto(path)
	must(t, err)
}

func button(p playwright.Page, name string) playwright.Locator {
	return p.GetByRole("button", playwright.PageGetByRoleOptions{Name: name, Exact: playwright.Bool(true)})
}

// signInByRequest signs the device in without the UI, the way a browser
// would post the form (CSRF token included): faster for tests that are not
// about signing in. create makes the account first.
func signInByRequest(t *testing.T, p playwright.Page, email, password string, create bool) {
	t.Helper()
	path := "/login"
	if create {
		path = "/signup"
	}
	postForm(t, p, path, map[string]any{"email": email, "password": password})
}

// postForm posts form to path from the device's browser context, with its
// CSRF token, as the page's own form would, and expects a 303.
func postForm(t *testing.T, p playwright.Page, path string, form map[string]any) {
	t.Helper()
	ctx := p.Context()
	res, err := ctx.Request().Get("/login")
	must(t, err)
	must(t, res.Dispose())
	cookies, err := ctx.Cookies()
	must(t, err)
	token := ""
	for _, c := range cookies {
		if c.Name == "doorman_csrf" {
			token = c.Value
		}
	}
	if token == "" {
		t.Fatal("no CSRF cookie after GET /login")
	}
	form["csrf"] = token
	res, err = ctx.Request().Post(path, playwright.APIRequestContextPostOptions{Form: form, MaxRedirects: playwright.Int(0)})
	must(t, err)
	if res.Status() != 303 {
		body, _ := res.Text()
		t.Fatalf("POST %s: status %d\n%s", path, res.Status(), body)
	}
	must(t, res.Dispose())
}

// signUp creates the account through the UI and lands on Security.
func signUp(t *testing.T, p playwright.Page, email, pw string) {
	t.Helper()
	goTo(t, p, "/signup")
	must(t, p.GetByLabel("Email").Fill(email))
	must(t, p.GetByLabel("Password").Fill(pw))
	must(t, button(p, "Create account").Click())
	must(t, expect.Page(p).ToHaveURL(regexpOf(`/settings/security$`)))
}

func screenshot(t *testing.T, p playwright.Page, name string) {
	t.Helper()
	_, err := p.Screenshot(playwright.PageScreenshotOptions{Path: playwright.String(filepath.Join("screenshots", name+".png")), FullPage: playwright.Bool(true)})
	must(t, err)
}

func regexpOf(s string) *regexp.Regexp { return regexp.MustCompile(s) }
