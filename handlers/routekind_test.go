package handlers_test

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"doorman/handlers"
)

// TestProgramsGetProblemsWhereNoRouteRuns: an API or OAuth client gets
// problem+json, never an HTML page, even where its route's chain never ran:
// an unknown path, a wrong method, a body refused for its size before the
// route was reached. A page's is still a page.
func TestProgramsGetProblemsWhereNoRouteRuns(t *testing.T) {
	app := newTestApp(t)
	for _, tc := range []struct {
		method, path string
		body         string
		status       int
	}{
		{"GET", "/api/nope", "", http.StatusNotFound},
		{"GET", "/oauth/nope", "", http.StatusNotFound},
		{"GET", "/oauth/token", "", http.StatusMethodNotAllowed},
		{"POST", "/.well-known/oauth-authorization-server", "", http.StatusMethodNotAllowed},
		{"POST", "/oauth/token", strings.Repeat("x", 70<<10), http.StatusRequestEntityTooLarge},
		{"DELETE", "/api/v1/sessions/x", strings.Repeat("x", 70<<10), http.StatusRequestEntityTooLarge},
	} {
		req, _ := http.NewRequest(tc.method, app.srv.URL+tc.path, strings.NewReader(tc.body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var body map[string]any
		err = json.NewDecoder(res.Body).Decode(&body)
		res.Body.Close()
		if err != nil {
			t.Fatalf("%s %s: %d %s, not JSON: %v", tc.method, tc.path, res.StatusCode, res.Header.Get("Content-Type"), err)
		}
		expectProblem(t, res, body, tc.status, "")
	}
	res := app.client(uaWindowsChrome, ipBerlin).send(http.MethodPut, "/login", nil)
	expectStatus(t, res, http.StatusMethodNotAllowed)
	expectBody(t, res, "Not allowed", "<footer")
}

// TestUnknownPathsAreShed: a request no route claims reads the session (its
// 404 page shows who is signed in), so it is bounded like a page: with every
// slot taken it is refused at once; the health check, which reads nothing,
// is not counted. The slot is held by a sign-up whose body never arrives
// (CSRF waits to read its form, inside the bound).
func TestUnknownPathsAreShed(t *testing.T) {
	app := newTestApp(t, func(c *handlers.Config) { c.MaxInFlight = 1 })
	c := app.client(uaWindowsChrome, ipBerlin)
	expectStatus(t, c.get("/no/such/page"), http.StatusNotFound)

	conn, err := net.Dial("tcp", strings.TrimPrefix(app.srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /signup HTTP/1.1\r\nHost: doorman.test\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\n")
	held := false
	// Until the slot is taken (the sign-up may arrive late).
	for end := time.Now().Add(waitTimeout); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		res := c.get("/no/such/page")
		if res.StatusCode == http.StatusServiceUnavailable {
			expectBody(t, res, "too busy")
			held = true
			break
		}
		expectStatus(t, res, http.StatusNotFound)
	}
	if !held {
		t.Fatal("an unknown path was not shed with every slot taken")
	}
	expectStatus(t, c.get("/healthz"), http.StatusOK)
	res := c.get("/api/nope")
	if res.StatusCode != http.StatusServiceUnavailable || res.Header.Get("Content-Type") != "application/problem+json" || res.Header.Get("Retry-After") == "" {
		t.Fatalf("unknown API path with every slot taken: %d %s %q", res.StatusCode, res.Header.Get("Content-Type"), res.Header.Get("Retry-After"))
	}

	conn.Close() // the sign-up gives up, its slot is free again
	for end := time.Now().Add(waitTimeout); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		if res := c.get("/no/such/page"); res.StatusCode == http.StatusNotFound {
			return
		}
	}
	t.Fatal("the slot was never freed")
}

// TestQuietRoutesLogAtDebug: static files and the health checks, polled all
// day, are logged at Debug, a wrong method on them too; pages at Info.
func TestQuietRoutesLogAtDebug(t *testing.T) {
	app := newTestApp(t)
	c := app.client(uaWindowsChrome, ipBerlin)
	res := c.get("/login")
	asset := regexpAll(`/static/[a-z]+\.[0-9a-f]{10}\.css`, res.body)
	if len(asset) == 0 {
		t.Fatal("no stylesheet on the sign-in page")
	}
	expectStatus(t, c.get(asset[0]), http.StatusOK)
	expectStatus(t, c.get("/healthz"), http.StatusOK)
	expectStatus(t, c.send(http.MethodPost, "/readyz", nil), http.StatusMethodNotAllowed)
	logs := app.logs.String()
	for _, want := range []string{
		"level=INFO msg=request method=GET path=/login ",
		"level=DEBUG msg=request method=GET path=" + asset[0] + " ",
		"level=DEBUG msg=request method=GET path=/healthz ",
		"level=DEBUG msg=request method=POST path=/readyz status=405 ",
	} {
		if !strings.Contains(logs, want) {
			t.Errorf("no %q in the log:\n%s", want, logs)
		}
	}
}
