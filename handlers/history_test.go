package handlers_test

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"doorman/db"
	"doorman/handlers"
)

var eventRe = regexp.MustCompile(`data-event="([a-z_]+)"`)

// events are the data-event kinds on a page, in order.
func events(body string) []string {
	var out []string
	for _, m := range eventRe.FindAllStringSubmatch(body, -1) {
		out = append(out, m[1])
	}
	return out
}

func TestSecurityHistory(t *testing.T) {
	app := newTestApp(t)
	desktop, phone := app.client(uaWindowsChrome, ipBerlin), app.client(uaIPhone, ipLondon)
	desktop.signup("alice@example.com", pw)
	app.advance(time.Second)
	phone.login("alice@example.com", pw)
	phoneID, phoneCookie := phone.currentID(), phone.sessionCookie()
	app.advance(time.Second)
	// A stranger's wrong password for the account.
	stranger := app.client(uaMacFirefox, ipTokyo)
	expectStatus(t, stranger.post("/login", url.Values{"email": {"alice@example.com"}, "password": {"not it"}}), http.StatusUnauthorized)
	app.advance(time.Second)
	// The desktop ends the phone; the phone's cookie is tried twice more.
	expectRedirect(t, desktop.post("/settings/security/sessions/"+phoneID+"/revoke", nil), "/settings/security")
	for range 2 {
		app.advance(time.Minute)
		req, _ := http.NewRequest(http.MethodGet, app.srv.URL+"/settings", nil)
		req.AddCookie(&http.Cookie{Name: "doorman_session", Value: phoneCookie})
		res, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
	}
	app.advance(time.Second)
	tok := desktop.createToken("script", "7", "sessions:read")
	app.advance(time.Second)
	id := strings.SplitN(strings.TrimPrefix(tok, "doorman_pat_"), "_", 2)[0]
	expectRedirect(t, desktop.post("/settings/security/tokens/"+id+"/revoke", nil), "/settings/security/tokens")
	app.advance(time.Second)
	expectRedirect(t, desktop.post("/settings/account/email", url.Values{"email": {"alice2@example.com"}, "password": {pw}}), "/settings")
	confirm := app.link(app.mail("alice2@example.com", "Confirm your new email"), "/email/confirm")
	expectRedirect(t, desktop.post("/email/confirm", url.Values{"token": {linkToken(t, confirm)}}), "/settings")
	app.advance(time.Second)
	expectRedirect(t, desktop.post("/settings/security/password", url.Values{"current_password": {pw}, "new_password": {"another password 9"}}), "/settings/security")

	page := desktop.get("/settings/security/activity")
	expectStatus(t, page, http.StatusOK)
	want := []string{"password_changed", "email_changed", "token_revoked", "token_created", "session_ended", "sign_in_failed", "sign_in", "sign_in"}
	if got := events(page.body); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("history %v, want %v", got, want)
	}
	expectBody(t, page, "Safari on iPhone signed out", "ended from this device", "A wrong password was entered", "Firefox on macOS",
		"Signed in on Safari on iPhone", "Email changed to alice2@example.com", "Access token “script” created", "Access token “script” revoked")
	// The Security page shows the latest few, with the link.
	sec := desktop.get("/settings/security")
	if got := events(sec.body); len(got) != 5 || got[0] != "password_changed" {
		t.Fatalf("recent activity on the Security page: %v", got)
	}
	expectBody(t, sec, "See all activity")

	// The ended session's page: when, by whom, and its cookie's later uses.
	details := desktop.get("/settings/security/sessions/" + phoneID)
	expectStatus(t, details, http.StatusOK)
	expectBody(t, details, "This session has ended", "ended from this device", "Used again after it ended", "Turned away 2 times, this the last")
	expectNoBody(t, details, "Sign out this session")
	// Not another user's.
	bob := app.client(uaMacFirefox, ipTokyo)
	bob.signup("bob@example.com", pw)
	expectStatus(t, bob.get("/settings/security/sessions/"+phoneID), http.StatusNotFound)
	if got := events(bob.get("/settings/security/activity").body); strings.Join(got, " ") != "sign_in" {
		t.Fatalf("bob's history: %v", got)
	}
	expectStatus(t, desktop.get("/settings/security/activity?before=nonsense"), http.StatusBadRequest)
}

func TestSecurityHistoryPagesAndRetention(t *testing.T) {
	app := newTestApp(t, func(c *handlers.Config) { c.HistoryKeep = 2 * time.Hour })
	desktop := app.client(uaWindowsChrome, ipBerlin)
	desktop.signup("alice@example.com", pw)
	u, err := app.store.UserByEmail(context.Background(), "alice@example.com")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 60 {
		app.advance(time.Second)
		if err := app.store.RecordSecurityEvent(context.Background(), db.SecurityEvent{UserID: u.ID, Kind: db.EventSignInFailed, At: app.clock(), Location: "Place " + string(rune('A'+i%26))}); err != nil {
			t.Fatal(err)
		}
	}
	first := desktop.get("/settings/security/activity")
	if got := events(first.body); len(got) != 50 {
		t.Fatalf("first page: %d entries", len(got))
	}
	m := regexp.MustCompile(`href="(/settings/security/activity\?before=\d+)"`).FindStringSubmatch(first.body)
	if m == nil {
		t.Fatal("no link to older activity")
	}
	second := desktop.get(m[1])
	if got := events(second.body); len(got) != 11 || got[10] != "sign_in" {
		t.Fatalf("second page: %v", got)
	}
	expectNoBody(t, second, "Older activity")
	// Past the retention (here 2 hours), entries are no longer shown.
	app.advance(3 * time.Hour)
	expectBody(t, desktop.get("/settings/security/activity"), "Nothing here.")
}

// TestExpiryInHistory: a session that expires by itself is in the history,
// with why.
func TestExpiryInHistory(t *testing.T) {
	app := newTestApp(t, func(c *handlers.Config) { c.IdleTimeout = time.Hour; c.IdleExtendEvery = time.Minute })
	desktop, phone := app.client(uaWindowsChrome, ipBerlin), app.client(uaIPhone, ipLondon)
	desktop.signup("alice@example.com", pw)
	phone.login("alice@example.com", pw)
	// The desktop stays in use; the phone does not.
	for range 4 {
		app.advance(20 * time.Minute)
		expectStatus(t, desktop.get("/settings"), http.StatusOK)
	}
	if n, err := app.store.RecordExpiredSessions(context.Background(), app.clock(), 100); err != nil || n != 1 {
		t.Fatalf("expired sessions recorded: %d %v", n, err)
	}
	page := desktop.get("/settings/security/activity")
	if got := events(page.body); got[0] != "session_ended" {
		t.Fatalf("history %v", got)
	}
	expectBody(t, page, "Safari on iPhone signed out", "expired after 1 hour unused")
}
