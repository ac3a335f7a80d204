package handlers_test

import (
	"fmt"
	"html"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"
)

var revokeLabelRE = regexp.MustCompile(`aria-label="(Sign out [^"]*)"`)

// TestSecurityPageListsTheMostRecentSessions: look-alike sessions are one
// group (each member still its own row); past ten entries the Security
// page lists the ten most recently active and links to all of them (a
// plain GET link, so it works without JavaScript), counting sessions;
// every row says when it signed in; look-alike sessions' X buttons have
// distinct names.
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
	if len(rows) != 13 {
		t.Fatalf("%d rows, want this device and the 12 others, in their group", len(rows))
	}
	if n := strings.Count(res.body, `<li class="session-group"`); n != 1 {
		t.Fatalf("%d groups, want the 12 look-alikes as one", n)
	}
	expectBody(t, res, `<span class="badge group-count">12 sessions</span>`, "Sign out these 12</button>", "Signed in <time")
	expectNoBody(t, res, "Show all")
	// This device is never inside a group.
	if i, j := strings.Index(res.body, `data-current="true"`), strings.Index(res.body, `<li class="session-group"`); i < 0 || i > j {
		t.Error("this device's row is not ahead of the group")
	}
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
	if len(seen) != 12 {
		t.Errorf("%d distinct X button names, want 12: %v", len(seen), seen)
	}

	// Named, eleven of them are eleven devices: with the twelfth, more
	// entries than the list shows.
	for i, r := range rows[2:] {
		expectRedirect(t, me.post("/settings/security/sessions/"+r.ID+"/name", url.Values{"name": {fmt.Sprintf("Phone %d", i+1)}}),
			"/settings/security/sessions/"+r.ID)
	}
	res, rows = me.securityPage()
	if len(rows) != 11 {
		t.Fatalf("%d rows listed, want this device and the 10 most recent others", len(rows))
	}
	expectNoBody(t, res, `<li class="session-group"`)
	expectBody(t, res, `href="/settings/security?sessions=all">Show all 13 sessions</a>`)

	all := me.get("/settings/security?sessions=all")
	expectStatus(t, all, 200)
	if n := len(sessionsOnPage(t, all.body)); n != 13 {
		t.Fatalf("%d rows with ?sessions=all, want 13", n)
	}
	expectBody(t, all, fmt.Sprintf(`href="/settings/security">Show only the %d most recent</a>`, 10))
	expectNoBody(t, all, "Show all 13 sessions")
}
