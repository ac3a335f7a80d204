package handlers_test

import (
	"fmt"
	"html"
	"regexp"
	"strings"
	"testing"
	"time"
)

var revokeLabelRE = regexp.MustCompile(`aria-label="(Sign out [^"]*)"`)

// TestSecurityPageListsTheMostRecentSessions: past ten other sessions the
// Security page lists the ten most recently active and links to all of
// them (a plain GET link, so it works without JavaScript); every row says
// when it signed in; look-alike sessions' X buttons have distinct names.
func TestSecurityPageListsTheMostRecentSessions(t *testing.T) {
	app := newTestApp(t)
	me := app.client(uaWindowsChrome, ipBerlin)
	me.signup("alice@example.com", pw)
	// Twelve other sessions from the same browser and place: look-alikes.
	for range 12 {
		app.advance(time.Minute)
		app.client(uaIPhone, ipLondon).login("alice@example.com", pw)
	}
	app.advance(time.Minute)
	expectStatus(t, me.get("/settings"), 200) // this one stays the most recent

	res, rows := me.securityPage()
	if len(rows) != 11 {
		t.Fatalf("%d rows listed, want this device and the 10 most recent others", len(rows))
	}
	expectBody(t, res, `href="/settings/security?sessions=all">Show all 13 sessions</a>`, "Signed in <time")
	// The bulk actions come before the list and count every session.
	if i, j := strings.Index(res.body, "Sign out all other sessions"), strings.Index(res.body, `<ul class="sessions"`); i < 0 || j < 0 || i > j {
		t.Error("the bulk actions are not above the list")
	}
	// Its dialog counts all 12, naming the first three and the rest.
	expectBody(t, res, "12 other sessions will be signed out: ", " and 9 more. This device stays signed in.")
	seen := map[string]bool{}
	for _, m := range revokeLabelRE.FindAllStringSubmatch(res.body, -1) {
		label := html.UnescapeString(m[1])
		if seen[label] {
			t.Errorf("two X buttons are named %q", label)
		}
		seen[label] = true
	}
	if len(seen) != 10 {
		t.Errorf("%d distinct X button names, want 10: %v", len(seen), seen)
	}

	all := me.get("/settings/security?sessions=all")
	expectStatus(t, all, 200)
	if n := len(sessionsOnPage(t, all.body)); n != 13 {
		t.Fatalf("%d rows with ?sessions=all, want 13", n)
	}
	expectBody(t, all, fmt.Sprintf(`href="/settings/security">Show only the %d most recent</a>`, 10))
	expectNoBody(t, all, "Show all 13 sessions")
}
