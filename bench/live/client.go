package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"
)

const (
	userAgent = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"
	password  = "live-bench-password-1"
	// Plain http and no X-Forwarded-Proto: the cookies are not __Host-.
	sessionCookie = "doorman_session"
	csrfCookie    = "doorman_csrf"
)

// httpClient is shared by every browser: keep-alive connections, no
// redirects followed (a 303 is the answer we check), no cookie jar (each
// browser keeps its own cookies, like e2e/proxy_test.go's rawClient).
var httpClient = &http.Client{
	Transport: &http.Transport{MaxIdleConnsPerHost: 16, IdleConnTimeout: 30 * time.Second},
	Timeout:   30 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	},
}

// browser is one browser's cookies, talking to one instance.
type browser struct {
	base    string
	cookies map[string]string
}

func newBrowser(base string) *browser { return &browser{base: base, cookies: map[string]string{}} }

// do sends one request with the browser's cookies (and, for a form, its
// CSRF token), reads the body away and keeps the cookies it was sent.
func (b *browser) do(method, path string, form url.Values) (int, error) {
	var body io.Reader
	if form != nil {
		form.Set("csrf", b.cookies[csrfCookie])
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, b.base+path, body)
	if err != nil {
		return 0, err
	}
	req.Header.Set("User-Agent", userAgent)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range b.cookies {
		req.AddCookie(&http.Cookie{Name: k, Value: v})
	}
	res, err := httpClient.Do(req)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	for _, ck := range res.Cookies() {
		if ck.MaxAge < 0 {
			delete(b.cookies, ck.Name)
		} else {
			b.cookies[ck.Name] = ck.Value
		}
	}
	return res.StatusCode, nil
}

// signIn is a fresh browser signing up (or in) on base: it GETs the form
// for its CSRF cookie, then posts it. A 303 with a session cookie is success.
func signIn(base, email string, signup bool) (*browser, error) {
	b := newBrowser(base)
	path := "/login"
	if signup {
		path = "/signup"
	}
	if st, err := b.do(http.MethodGet, path, nil); err != nil || st != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %d %v", path, st, err)
	}
	st, err := b.do(http.MethodPost, path, url.Values{"email": {email}, "password": {password}})
	if err != nil || st != http.StatusSeeOther || b.cookies[sessionCookie] == "" {
		return nil, fmt.Errorf("POST %s as %s: status %d, %v", path, email, st, err)
	}
	return b, nil
}

// signInRetry retries a failed sign-in twice (a slow machine can time a
// request out); the last error is returned.
func signInRetry(base, email string, signup bool) (*browser, error) {
	var err error
	for try := range 3 {
		var b *browser
		if b, err = signIn(base, email, signup); err == nil {
			return b, nil
		}
		if signup && try > 0 && strings.Contains(err.Error(), "status 422") {
			break // the first try created the account after all
		}
		time.Sleep(500 * time.Millisecond)
	}
	return nil, err
}

// sessionID is the session's public id: the cookie value before the '.'.
func (b *browser) sessionID() string {
	id, _, _ := strings.Cut(b.cookies[sessionCookie], ".")
	return id
}

// cookieHeader is the Cookie header of the browser's session and CSRF
// cookies.
func (b *browser) cookieHeader() string {
	return sessionCookie + "=" + b.cookies[sessionCookie] + "; " + csrfCookie + "=" + b.cookies[csrfCookie]
}

// stream is one open GET /settings/security/events, on its own TCP
// connection (a raw one: thousands of them cost far less than as many
// net/http client connections), read line by line.
type stream struct {
	conn    net.Conn
	lines   *bufio.Reader
	closing atomic.Bool
}

// openStream opens the event stream as the browser with cookies and reads
// until the server's first comment (": stream open"), sent once the stream
// is subscribed. status is the HTTP status (0 if there was none).
func openStream(addr, cookies string) (s *stream, status int, err error) {
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, 0, err
	}
	defer func() {
		if err != nil {
			conn.Close()
		}
	}()
	conn.SetDeadline(time.Now().Add(15 * time.Second))
	const path = "/settings/security/events"
	if _, err = fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: %s\r\nAccept: text/event-stream\r\nCache-Control: no-cache\r\nCookie: %s\r\n\r\n",
		path, addr, userAgent, cookies); err != nil {
		return nil, 0, err
	}
	req, _ := http.NewRequest(http.MethodGet, "http://"+addr+path, nil)
	res, err := http.ReadResponse(bufio.NewReaderSize(conn, 1024), req)
	if err != nil {
		return nil, 0, err
	}
	if res.StatusCode != http.StatusOK {
		return nil, res.StatusCode, fmt.Errorf("GET %s: status %d", path, res.StatusCode)
	}
	s = &stream{conn: conn, lines: bufio.NewReaderSize(res.Body, 256)}
	for {
		line, rerr := s.lines.ReadString('\n')
		if rerr != nil {
			return nil, res.StatusCode, fmt.Errorf("stream ended before it opened: %w", rerr)
		}
		if strings.HasPrefix(line, ": stream open") {
			break
		}
	}
	conn.SetDeadline(time.Time{})
	return s, res.StatusCode, nil
}

// close ends the stream from our side (so the reader's error is expected).
func (s *stream) close() {
	s.closing.Store(true)
	s.conn.Close()
}
