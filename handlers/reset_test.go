package handlers_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"doorman/operator"
)

// op runs an operator command on the app's database, on the server's clock.
func (a *testApp) op(args ...string) (string, error) {
	var out bytes.Buffer
	err := operator.Run(context.Background(), append(args, "-db", a.dbPath), func(string) string { return "" }, &out,
		slog.New(slog.NewTextHandler(io.Discard, nil)), a.clock)
	return out.String(), err
}

// TestOperatorResetEndsEverything: `doorman users reset EMAIL` ends every
// live session and token of the user (the real server refuses the cookie
// and the token at once), voids a reset link and a sign-in waiting for its
// second factor, says what it ended, and is in the user's history; another
// user keeps everything. `users reset --all` (the restore step) does it for
// every user.
func TestOperatorResetEndsEverything(t *testing.T) {
	app := newTestApp(t)
	desktop, phone := app.client(uaWindowsChrome, ipBerlin), app.client(uaIPhone, ipLondon)
	desktop.signup("alice@example.com", pw)
	phone.login("alice@example.com", pw)
	token := app.apiClient(t, desktop.createToken("laptop script", "30", "sessions:read"))
	bob := app.client(uaMacFirefox, ipTokyo)
	bob.signup("bob@example.com", pw)
	bobToken := app.apiClient(t, bob.createToken("bob's script", "30", "sessions:read"))
	if res, _ := token.call(http.MethodGet, "/api/v1/sessions"); res.StatusCode != http.StatusOK {
		t.Fatalf("the token before the reset: %d", res.StatusCode)
	}
	// A password reset link asked for before the reset.
	expectRedirect(t, app.client(uaIPhone, ipLondon).post("/password/forgot", url.Values{"email": {"alice@example.com"}}), "/password/forgot")
	link := app.link(app.mail("alice@example.com", "Reset your"), "/password/reset")

	for _, bad := range [][]string{
		{"users", "reset"},
		{"users", "reset", "alice@example.com", "--all"},
		{"users", "reset", "nobody@example.com"},
	} {
		before := app.dump()
		if _, err := app.op(bad...); err == nil {
			t.Errorf("%v: no error", bad)
		}
		if app.dump() != before {
			t.Errorf("%v changed the database", bad)
		}
	}

	out, err := app.op("users", "reset", "alice@example.com")
	if err != nil || !strings.Contains(out, "Reset alice@example.com: ended 2 session(s) and 1 app or access token(s)") {
		t.Fatalf("users reset: %v %s", err, out)
	}
	for _, c := range []*client{desktop, phone} {
		expectRedirect(t, c.get("/settings"), "/login?next=%2Fsettings")
	}
	res, body := token.call(http.MethodGet, "/api/v1/sessions")
	expectProblem(t, res, body, http.StatusUnauthorized, "invalid_token")
	expectStatus(t, app.client(uaIPhone, ipLondon).follow(link), http.StatusGone)
	expectStatus(t, bob.get("/settings"), http.StatusOK)
	if res, _ := bobToken.call(http.MethodGet, "/api/v1/sessions"); res.StatusCode != http.StatusOK {
		t.Fatalf("bob's token after alice's reset: %d", res.StatusCode)
	}

	// The password still signs in, and the history says what happened.
	desktop.login("alice@example.com", pw)
	expectBody(t, desktop.get("/settings/security/activity"), "Every session, app and token ended",
		"by the people who run this site", "ended by the people who run this site")

	// --all: every user, a second time harmless.
	phone.login("alice@example.com", pw)
	out, err = app.op("users", "reset", "--all")
	if err != nil || !strings.Contains(out, "Reset 2 user(s): ended 3 session(s) and 1 app or access token(s)") {
		t.Fatalf("users reset --all: %v %s", err, out)
	}
	for _, c := range []*client{desktop, phone, bob} {
		expectRedirect(t, c.get("/settings"), "/login?next=%2Fsettings")
	}
	res, body = bobToken.call(http.MethodGet, "/api/v1/sessions")
	expectProblem(t, res, body, http.StatusUnauthorized, "invalid_token")
	out, err = app.op("users", "reset", "--all")
	if err != nil || !strings.Contains(out, "Reset 2 user(s): ended 0 session(s) and 0 app or access token(s)") {
		t.Fatalf("users reset --all again: %v %s", err, out)
	}
	bob.login("bob@example.com", pw)
}
