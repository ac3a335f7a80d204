package handlers_test

import (
	"strings"
	"testing"
	"time"

	"doorman/handlers"
)

// TestClosedStreamLogsNoError: an event stream that outlived its request
// deadline and was then closed by its tab (the client left) records no
// activity, and says so at most at Debug: no ERROR "touch session …
// context deadline exceeded" for something nobody has to fix.
func TestClosedStreamLogsNoError(t *testing.T) {
	const deadline = 200 * time.Millisecond
	app := newTestApp(t)
	alice := app.client(uaWindowsChrome, ipBerlin)
	alice.signup("alice@example.com", pw)
	// Then the server restarts with a deadline short enough for a stream
	// to outlive it (the sign-up, a password hash and a write, could miss
	// it on a busy machine).
	app.serve(app.app.NewHandlerWith(func(c *handlers.Config) {
		c.RequestTimeout = deadline
		// The heartbeat comes after the deadline passed: a state to wait for.
		c.StreamHeartbeat = 2 * deadline
	}))
	// Activity is due again, so the stream's end would try to record it.
	app.advance(app.cfg.ActivityWriteEvery + time.Second)

	for _, outlive := range []bool{false, true} {
		s := alice.openStream()
		for waiting := true; waiting; {
			select {
			case line, ok := <-s.lines:
				if !ok {
					t.Fatal("the stream closed by itself")
				}
				// The first line says it is open; a ping comes after the
				// request's deadline.
				waiting = !(line == ": ping" || (!outlive && strings.HasPrefix(line, "retry:")))
			case <-time.After(waitTimeout):
				t.Fatal("no ping on the stream")
			}
		}
		before := strings.Count(app.logs.String(), "path=/settings/security/events status=200")
		s.cancel() // the tab closes
		for ended := time.Now().Add(waitTimeout); strings.Count(app.logs.String(), "path=/settings/security/events status=200") == before; time.Sleep(25 * time.Millisecond) {
			if time.Now().After(ended) {
				t.Fatal("the closed stream's request never ended")
			}
		}
	}
	if logs := app.logs.String(); strings.Contains(logs, "level=ERROR") {
		t.Fatalf("a closed stream logged an error:\n%s", logs)
	}
}
