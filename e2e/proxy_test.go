package e2e

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/playwright-community/playwright-go"

	"doorman/db/postgres/pgtest"
	"doorman/geo/geotest"
)

// The deployment the docs describe, for real: two Doorman processes on one
// PostgreSQL behind nginx terminating TLS (docs/nginx/doorman.conf, with
// only its ports, certificate and proxy address replaced), driven by
// Chromium through the proxy.

// proxyAddr is where nginx connects from (proxy_bind), and the only address
// the instances trust: the test's own direct requests come from 127.0.0.1,
// so they can show that a forged X-Forwarded-* from anyone else is ignored.
const proxyAddr = "127.0.0.2"

type deployment struct {
	url       string   // https://localhost:port, through nginx
	instances []string // http://127.0.0.1:port, direct
	accessLog string

	t             *testing.T
	bin, dsn, dir string
	procs         []*exec.Cmd // running instances; nil when stopped
	starts        int
}

// start runs instance i on its port and waits until it listens.
func (d *deployment) start(i int) {
	t := d.t
	t.Helper()
	d.starts++
	cmd := exec.Command(d.bin, "-addr", strings.TrimPrefix(d.instances[i], "http://"), "-db", d.dsn,
		"-trusted-proxy", proxyAddr, "-geoip-dir", d.dir, "-log-level", "warn")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(d.dir, fmt.Sprintf("instance%d-%d.log", i, d.starts)))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || !strings.Contains(line, "running at") {
		cmd.Process.Kill()
		logs, _ := os.ReadFile(logf.Name())
		t.Fatalf("instance %d did not start: %q %v\n%s", i, line, err, logs)
	}
	go io.Copy(io.Discard, out)
	d.procs[i] = cmd
}

// stop ends instance i as a service manager would (SIGTERM: finish what is
// in flight, then exit) and reports how long it took.
func (d *deployment) stop(i int) time.Duration {
	cmd := d.procs[i]
	if cmd == nil {
		return 0
	}
	d.procs[i] = nil
	began := time.Now()
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		d.t.Errorf("instance %d exited with %v on SIGTERM", i, err)
	}
	return time.Since(began)
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func run(t *testing.T, dir, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
}

func startDeployment(t *testing.T) *deployment {
	t.Helper()
	nginx, err := exec.LookPath("nginx")
	if err != nil {
		nginx = "/usr/sbin/nginx"
	}
	if _, err := os.Stat(nginx); err != nil {
		t.Fatalf("nginx is not installed (make setup installs it): %v", err)
	}
	dsn := pgtest.NewDatabase(t)
	dir := t.TempDir()
	bin := filepath.Join(dir, "doorman")
	run(t, "..", "go", "build", "-o", bin, ".")
	geotest.WriteSample(t, dir)
	run(t, dir, "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
		"-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost", "-days", "1",
		"-keyout", filepath.Join(dir, "key.pem"), "-out", filepath.Join(dir, "cert.pem"))

	d := &deployment{t: t, bin: bin, dsn: dsn, dir: dir}
	for i := range 2 {
		d.instances = append(d.instances, fmt.Sprintf("http://127.0.0.1:%d", freePort(t)))
		d.procs = append(d.procs, nil)
		d.start(i)
	}
	t.Cleanup(func() {
		for i := range d.procs {
			d.stop(i)
		}
	})

	conf, err := os.ReadFile("../docs/nginx/doorman.conf")
	if err != nil {
		t.Fatal(err)
	}
	httpsPort, httpPort := freePort(t), freePort(t)
	c := string(conf)
	for old, new := range map[string]string{
		"server 127.0.0.1:8081 ":         "server " + strings.TrimPrefix(d.instances[0], "http://") + " ",
		"server 127.0.0.1:8082 ":         "server " + strings.TrimPrefix(d.instances[1], "http://") + " ",
		"listen 80;":                     fmt.Sprintf("listen 127.0.0.1:%d;", httpPort),
		"listen 443 ssl http2;":          fmt.Sprintf("listen 127.0.0.1:%d ssl http2;", httpsPort),
		"/etc/ssl/doorman/fullchain.pem": filepath.Join(dir, "cert.pem"),
		"/etc/ssl/doorman/privkey.pem":   filepath.Join(dir, "key.pem"),
		// The test's one addition: name the instance(s) that served each
		// response (a retried request names both).
		"proxy_bind 127.0.0.1;":            "proxy_bind " + proxyAddr + ";\n        add_header X-Upstream $upstream_addr always;",
		"server_name doorman.example.com;": "server_name localhost;",
	} {
		if !strings.Contains(c, old) {
			t.Fatalf("docs/nginx/doorman.conf no longer has %q", old)
		}
		c = strings.ReplaceAll(c, old, new)
	}
	d.accessLog = filepath.Join(dir, "access.log")
	main := fmt.Sprintf(`daemon off;
worker_processes 1;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log warn;
events { worker_connections 256; }
http {
    log_format upstream '$request_method $uri $status $upstream_addr';
    access_log %[2]s upstream;
    client_body_temp_path %[1]s/client;
    proxy_temp_path %[1]s/proxy;
    fastcgi_temp_path %[1]s/fastcgi;
    uwsgi_temp_path %[1]s/uwsgi;
    scgi_temp_path %[1]s/scgi;
    include %[1]s/doorman.conf;
}
`, dir, d.accessLog)
	os.WriteFile(filepath.Join(dir, "doorman.conf"), []byte(c), 0o644)
	os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(main), 0o644)
	ng := exec.Command(nginx, "-p", dir, "-c", filepath.Join(dir, "nginx.conf"))
	ng.Stderr = os.Stderr
	if err := ng.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ng.Process.Signal(os.Interrupt); ng.Wait() })
	d.url = fmt.Sprintf("https://localhost:%d", httpsPort)
	deadline := time.Now().Add(waitTimeout)
	for {
		conn, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", httpsPort))
		if err == nil {
			conn.Close()
			break
		}
		if time.Now().After(deadline) {
			logs, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			t.Fatalf("nginx did not start: %v\n%s", err, logs)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return d
}

// directClient talks to one instance without nginx, from the proxy's
// address (so it is trusted) or from 127.0.0.1 (not).
func directClient(trusted bool) *http.Client {
	jar, _ := cookiejar.New(nil)
	dialer := &net.Dialer{Timeout: waitTimeout}
	if trusted {
		dialer.LocalAddr = &net.TCPAddr{IP: net.ParseIP(proxyAddr)}
	}
	return &http.Client{Jar: jar, Transport: &http.Transport{DialContext: dialer.DialContext},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func TestDeploymentBehindNginx(t *testing.T) {
	t.Parallel()
	d := startDeployment(t)

	// Sign up through the proxy in Chromium.
	ctx, err := browser.NewContext(playwright.BrowserNewContextOptions{
		BaseURL: playwright.String(d.url), IgnoreHttpsErrors: playwright.Bool(true),
		ExtraHttpHeaders: map[string]string{"X-Forwarded-For": "203.0.113.9"}, // a client's lie: nginx replaces it
	})
	must(t, err)
	t.Cleanup(func() { ctx.Close() })
	p, err := ctx.NewPage()
	must(t, err)
	p.SetDefaultTimeout(float64(waitTimeout.Milliseconds()))
	signUp(t, p, email, pass1)

	// The cookie is __Host- and Secure; HSTS is sent.
	cookies, err := ctx.Cookies()
	must(t, err)
	var session *playwright.Cookie
	for i, c := range cookies {
		if c.Name == "__Host-doorman_session" {
			session = &cookies[i]
		}
		if c.Name == "doorman_session" {
			t.Fatal("over https the session cookie is not __Host-")
		}
	}
	if session == nil || !session.Secure || !session.HttpOnly || session.Path != "/" || session.Domain != "localhost" {
		t.Fatalf("session cookie %+v", session)
	}
	res, err := ctx.Request().Get("/login")
	must(t, err)
	if h := res.Headers()["strict-transport-security"]; h != "max-age=31536000" {
		t.Fatalf("HSTS through the proxy: %q", h)
	}
	// The client's own X-Forwarded-For was replaced by nginx: the session
	// shows the real peer.
	goTo(t, p, "/settings/security")
	must(t, p.Locator(`[data-current="true"] a`).First().Click())
	must(t, expect.Locator(p.Locator("main")).Not().ToContainText("203.0.113.9"))
	must(t, expect.Locator(p.Locator("main")).ToContainText("127.0.0.1"))

	// From anyone but the proxy, X-Forwarded-* are not believed: no
	// __Host- cookie, no HSTS, over plain http.
	req, _ := http.NewRequest(http.MethodGet, d.instances[0]+"/login", nil)
	req.Header.Set("X-Forwarded-Proto", "https")
	req.Header.Set("X-Forwarded-For", "203.0.113.9")
	direct, err := directClient(false).Do(req)
	must(t, err)
	direct.Body.Close()
	if direct.Header.Get("Strict-Transport-Security") != "" || strings.Contains(strings.Join(direct.Header.Values("Set-Cookie"), ";"), "__Host-") {
		t.Fatalf("an untrusted peer's X-Forwarded-Proto was believed: %v", direct.Header)
	}

	// Which instance holds the tab's event stream? (The test's copy of the
	// config names the upstream in a response header.)
	goTo(t, p, "/settings/security")
	var resp playwright.Response
	resp, err = p.ExpectResponse("**/settings/security/events", func() error {
		_, err := p.Reload()
		return err
	})
	must(t, err)
	holder := resp.Headers()["x-upstream"]
	other := d.instances[0]
	if strings.HasSuffix(d.instances[0], holderPort(holder)) {
		other = d.instances[1]
	}
	id, err := p.Locator(`[data-current="true"]`).GetAttribute("data-session-id")
	must(t, err)
	t.Logf("the tab's stream is on %s; ending its session through %s", holder, other)

	// Another device signs in through the other instance and ends the tab's
	// session there: the tab, held by the first, signs out live.
	dev := &rawClient{t: t, base: other, http: directClient(true), cookies: map[string]string{}}
	dev.do("GET", "/login", nil)
	if r := dev.do("POST", "/login", url.Values{"email": {email}, "password": {pass1}}); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-in through the other instance: %d", r.StatusCode)
	}
	// (How soon: make bench-live measures the push across instances.)
	release := holdSignIn(t, p)
	started := time.Now()
	if r := dev.do("POST", "/settings/security/sessions/"+id+"/revoke", url.Values{}); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("revoke through the other instance: %d", r.StatusCode)
	}
	must(t, expect.Locator(p.Locator("#live-notice")).ToHaveText(signedOutNotice))
	t.Logf("the tab on the other instance showed the notice %v after the revocation", time.Since(started).Round(time.Millisecond))
	release()
	expectSignedOut(t, p)
}

// rawClient is a browser-like client talking to one instance directly, as
// the proxy would (X-Forwarded-Proto: https), keeping its cookies by hand
// (a cookie jar will not send Secure cookies over plain http).
type rawClient struct {
	t       *testing.T
	base    string
	http    *http.Client
	cookies map[string]string
}

func (c *rawClient) do(method, path string, form url.Values) *http.Response {
	c.t.Helper()
	var body io.Reader
	if form != nil {
		form.Set("csrf", c.cookies["__Host-doorman_csrf"])
		body = strings.NewReader(form.Encode())
	}
	req, _ := http.NewRequestWithContext(context.Background(), method, c.base+path, body)
	req.Header.Set("X-Forwarded-Proto", "https")
	req.Header.Set("User-Agent", "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15")
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range c.cookies {
		req.AddCookie(&http.Cookie{Name: k, Value: v})
	}
	res, err := c.http.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	for _, ck := range res.Cookies() {
		if ck.MaxAge < 0 {
			delete(c.cookies, ck.Name)
		} else {
			c.cookies[ck.Name] = ck.Value
		}
	}
	return res
}

func holderPort(addr string) string {
	_, port, _ := net.SplitHostPort(addr)
	return ":" + port
}

// proxyBrowser is a browser-like client going through nginx over https
// (cookies in a jar; redirects not followed).
type proxyBrowser struct {
	base string
	http *http.Client
}

func newProxyBrowser(base string) *proxyBrowser {
	jar, _ := cookiejar.New(nil)
	// The timeout only stops a hung request: a busy machine's slow answer
	// is not a failed page view.
	return &proxyBrowser{base: base, http: &http.Client{Jar: jar, Timeout: waitTimeout,
		Transport:     &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (b *proxyBrowser) cookie(name string) string {
	u, _ := url.Parse(b.base)
	for _, c := range b.http.Jar.Cookies(u) {
		if c.Name == name {
			return c.Value
		}
	}
	return ""
}

// get returns the status and the instance(s) nginx used.
func (b *proxyBrowser) get(path string) (int, string, error) {
	res, err := b.http.Get(b.base + path)
	if err != nil {
		return 0, "", err
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.StatusCode, res.Header.Get("X-Upstream"), nil
}

// post sends a form; ok is whether the server acknowledged it with a 303
// to where.
func (b *proxyBrowser) post(path string, form url.Values, where string) (bool, int) {
	if b.cookie("__Host-doorman_csrf") == "" {
		if _, _, err := b.get("/login"); err != nil {
			return false, 0
		}
	}
	form.Set("csrf", b.cookie("__Host-doorman_csrf"))
	res, err := b.http.PostForm(b.base+path, form)
	if err != nil {
		return false, 0
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.StatusCode == http.StatusSeeOther && res.Header.Get("Location") == where, res.StatusCode
}

// TestRollingRestart restarts both instances behind nginx, one after the
// other (SIGTERM, start again, wait until nginx sends it traffic), while
// browsers view pages and sign in and revoke through the proxy: no page
// view fails (nginx retries a refused connection on the other instance),
// and every acknowledged revocation still holds afterwards.
func TestRollingRestart(t *testing.T) {
	t.Parallel()
	d := startDeployment(t)
	owner := newProxyBrowser(d.url)
	if ok, code := owner.post("/signup", url.Values{"email": {email}, "password": {pass1}}, "/settings/security"); !ok {
		t.Fatalf("sign-up: %d", code)
	}

	var mu sync.Mutex
	var views, retried, failedPosts int
	var failedViews []string
	var revoked []*proxyBrowser
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 3 {
		v := newProxyBrowser(d.url)
		if ok, code := v.post("/login", url.Values{"email": {email}, "password": {pass1}}, "/settings/security"); !ok {
			t.Fatalf("sign-in: %d", code)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				code, upstream, err := v.get("/settings/security")
				mu.Lock()
				views++
				if strings.Contains(upstream, ",") {
					retried++
				}
				if err != nil || code != http.StatusOK {
					failedViews = append(failedViews, fmt.Sprintf("%d %s %v", code, upstream, err))
				}
				mu.Unlock()
			}
		}()
	}
	wg.Add(1)
	go func() { // sign in two browsers; the second ends the first, then signs out
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			x, y := newProxyBrowser(d.url), newProxyBrowser(d.url)
			okX, _ := x.post("/login", url.Values{"email": {email}, "password": {pass1}}, "/settings/security")
			okY, _ := y.post("/login", url.Values{"email": {email}, "password": {pass1}}, "/settings/security")
			if !okX || !okY {
				mu.Lock()
				failedPosts++
				mu.Unlock()
				continue
			}
			id, _, _ := strings.Cut(x.cookie("__Host-doorman_session"), ".")
			ok, _ := y.post("/settings/security/sessions/"+id+"/revoke", url.Values{}, "/settings/security")
			// y signs out: the account stays under its session cap.
			out, _ := y.post("/logout", url.Values{}, "/login")
			mu.Lock()
			if ok {
				revoked = append(revoked, x)
			}
			if !ok || !out {
				failedPosts++
			}
			mu.Unlock()
		}
	}()

	time.Sleep(500 * time.Millisecond)
	for i := range d.instances {
		took := d.stop(i)
		time.Sleep(300 * time.Millisecond) // down for a moment under load
		d.start(i)
		back := time.Now()
		port := holderPort(strings.TrimPrefix(d.instances[i], "http://"))
		for {
			_, upstream, _ := owner.get("/healthz")
			if strings.HasSuffix(upstream, port) {
				break
			}
			if time.Since(back) > 2*waitTimeout {
				t.Fatalf("nginx sent instance %d no traffic in the %v after its restart", i, 2*waitTimeout)
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Logf("instance %d: stopped in %v, served through nginx again %v after its start", i, took.Round(time.Millisecond), time.Since(back).Round(time.Millisecond))
	}
	// The load goes on until it has done enough to judge (a floor, not a
	// duration: a busy machine gets there later).
	for enough := time.Now().Add(2 * waitTimeout); ; time.Sleep(100 * time.Millisecond) {
		mu.Lock()
		done := views >= 20 && len(revoked) > 0
		mu.Unlock()
		if done || time.Now().After(enough) {
			break
		}
	}
	close(stop)
	wg.Wait()

	t.Logf("%d page views during two restarts, %d of them retried by nginx on the other instance, %d failed; %d revocations acknowledged, %d sign-ins or revocations not acknowledged",
		views, retried, len(failedViews), len(revoked), failedPosts)
	if len(failedViews) > 0 {
		t.Fatalf("page views failed during the rolling restart (the first ones): %v", failedViews[:min(10, len(failedViews))])
	}
	if len(revoked) == 0 || views < 20 {
		t.Fatalf("the drill did too little: %d views, %d revocations", views, len(revoked))
	}
	for _, x := range revoked {
		if code, _, err := x.get("/settings"); err != nil || code != http.StatusSeeOther {
			t.Fatalf("an acknowledged revocation was lost: %d %v", code, err)
		}
	}
}
