package e2e

import (
	"bufio"
	"context"
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

	d := &deployment{}
	for i := range 2 {
		port := freePort(t)
		cmd := exec.Command(bin, "-addr", fmt.Sprintf("127.0.0.1:%d", port), "-db", dsn,
			"-trusted-proxy", proxyAddr, "-geoip-dir", dir, "-log-level", "warn")
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		logf, _ := os.Create(filepath.Join(dir, fmt.Sprintf("instance%d.log", i)))
		cmd.Stderr = logf
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			cmd.Process.Signal(os.Interrupt)
			cmd.Wait()
			logf.Close()
		})
		line, err := bufio.NewReader(out).ReadString('\n')
		if err != nil || !strings.Contains(line, "running at") {
			logs, _ := os.ReadFile(logf.Name())
			t.Fatalf("instance %d did not start: %q %v\n%s", i, line, err, logs)
		}
		go io.Copy(io.Discard, out)
		d.instances = append(d.instances, fmt.Sprintf("http://127.0.0.1:%d", port))
	}

	conf, err := os.ReadFile("../docs/nginx/doorman.conf")
	if err != nil {
		t.Fatal(err)
	}
	httpsPort, httpPort := freePort(t), freePort(t)
	c := string(conf)
	for old, new := range map[string]string{
		"server 127.0.0.1:8081;":           "server " + strings.TrimPrefix(d.instances[0], "http://") + ";",
		"server 127.0.0.1:8082;":           "server " + strings.TrimPrefix(d.instances[1], "http://") + ";",
		"listen 80;":                       fmt.Sprintf("listen 127.0.0.1:%d;", httpPort),
		"listen 443 ssl http2;":            fmt.Sprintf("listen 127.0.0.1:%d ssl http2;", httpsPort),
		"/etc/ssl/doorman/fullchain.pem":   filepath.Join(dir, "cert.pem"),
		"/etc/ssl/doorman/privkey.pem":     filepath.Join(dir, "key.pem"),
		"proxy_bind 127.0.0.1;":            "proxy_bind " + proxyAddr + ";",
		"server_name doorman.example.com;": "server_name localhost;",
		// The test's one addition: name the instance that serves each
		// stream, so it can end the session through the other one.
		"proxy_read_timeout 1h;": "proxy_read_timeout 1h;\n        add_header X-Upstream $upstream_addr always;",
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
	deadline := time.Now().Add(10 * time.Second)
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
	dialer := &net.Dialer{Timeout: 5 * time.Second}
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
	p.SetDefaultTimeout(10000)
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
	started := time.Now()
	if r := dev.do("POST", "/settings/security/sessions/"+id+"/revoke", url.Values{}); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("revoke through the other instance: %d", r.StatusCode)
	}
	must(t, expect.Locator(p.Locator("#live-notice")).ToHaveText("You were signed out of this device.", playwright.LocatorAssertionsToHaveTextOptions{Timeout: playwright.Float(2000)}))
	t.Logf("the tab on the other instance showed the notice %v after the revocation", time.Since(started).Round(time.Millisecond))
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
