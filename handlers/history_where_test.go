package handlers_test

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"doorman/db"
)

var eventItemRe = regexp.MustCompile(`(?s)<li class="event" data-event="([a-z_]+)">(.*?)</li>`)

// eventMeta are the history entries on a page, in order, each as its kind
// and its text (tags removed, spaces collapsed).
func eventMeta(body string) [][2]string {
	var out [][2]string
	for _, m := range eventItemRe.FindAllStringSubmatch(body, -1) {
		text := strings.Join(strings.Fields(regexp.MustCompile(`<[^>]*>`).ReplaceAllString(m[2], " ")), " ")
		out = append(out, [2]string{m[1], text})
	}
	return out
}

// historyEntry is the text of the first entry of kind on the page (failing the
// test if there is none).
func historyEntry(t *testing.T, body, kind string) string {
	t.Helper()
	for _, e := range eventMeta(body) {
		if e[0] == kind {
			return e[1]
		}
	}
	t.Fatalf("no %s entry in the history", kind)
	return ""
}

// noDanglingSeparators fails the test if an entry's meta line has a
// separator with nothing on one side.
func noDanglingSeparators(t *testing.T, body string) {
	t.Helper()
	for _, e := range eventMeta(body) {
		if strings.Contains(e[1], "· ·") || strings.HasSuffix(e[1], "·") || strings.Contains(e[1], "· ,") {
			t.Errorf("a %s entry with an empty part: %q", e[0], e[1])
		}
	}
}

// TestHistorySaysWhereEveryChangeCameFrom: a password change, a second
// factor turned on and off, and a password reset by emailed link each
// name the device, place and address they came from; an operator's reset
// says the operator did it; no meta line has an empty part.
func TestHistorySaysWhereEveryChangeCameFrom(t *testing.T) {
	app := newTestApp(t)
	desktop := app.client(uaWindowsChrome, ipBerlin)
	desktop.signup("alice@example.com", pw)
	app.advance(time.Second)
	expectRedirect(t, desktop.post("/settings/security/password", url.Values{"current_password": {pw}, "new_password": {"another password 9"}}), "/settings/security")
	app.advance(time.Second)
	// Two-factor asks for the password in use.
	expectRedirect(t, desktop.post("/settings/security/password", url.Values{"current_password": {"another password 9"}, "new_password": {pw}}), "/settings/security")
	app.advance(time.Second)
	secret, _ := turnOnTwoFactor(t, desktop, false)
	app.advance(time.Minute)
	expectRedirect(t, desktop.post("/settings/security/two-factor/disable", url.Values{"password": {pw}, "code": {codeAt(t, secret, app.clock())}}), "/settings/security/two-factor")
	app.advance(time.Second)

	// A reset by emailed link, from another computer in another city.
	laptop := app.client(uaMacFirefox, ipTokyo)
	expectRedirect(t, laptop.post("/password/forgot", url.Values{"email": {"alice@example.com"}}), "/password/forgot")
	link := app.link(app.mail("alice@example.com", "Reset your"), "/password/reset")
	expectRedirect(t, laptop.post("/password/reset", url.Values{"token": {linkToken(t, link)}, "new_password": {"a new password 1"}}), "/settings/security")

	page := laptop.get("/settings/security/activity")
	expectStatus(t, page, http.StatusOK)
	berlin := "Chrome on Windows · Berlin, Germany · " + ipBerlin
	tokyo := "Firefox on macOS · Tokyo, Japan · " + ipTokyo
	if got := historyEntry(t, page.body, db.EventPasswordChanged); !strings.Contains(got, "Password reset by emailed link") || !strings.HasSuffix(got, tokyo) {
		t.Errorf("the reset: %q, want it from %q", got, tokyo)
	}
	for _, kind := range []string{db.EventTwoFactorOn, db.EventTwoFactorOff, db.EventEmailVerified} {
		if got := historyEntry(t, page.body, kind); !strings.HasSuffix(got, berlin) {
			t.Errorf("%s: %q, want it from %q", kind, got, berlin)
		}
	}
	var changes int
	for _, e := range eventMeta(page.body) {
		if e[0] == db.EventPasswordChanged && strings.HasPrefix(e[1], "Password changed") {
			changes++
			if !strings.HasSuffix(e[1], berlin) {
				t.Errorf("a password change: %q, want it from %q", e[1], berlin)
			}
		}
	}
	if changes != 2 {
		t.Errorf("%d password changes in the history, want 2", changes)
	}
	noDanglingSeparators(t, page.body)

	// An operator's reset: no browser acted, and the entry says who did.
	if _, err := app.op("users", "reset", "alice@example.com"); err != nil {
		t.Fatal(err)
	}
	laptop.login("alice@example.com", "a new password 1")
	page = laptop.get("/settings/security/activity")
	if got := historyEntry(t, page.body, db.EventAccountReset); !strings.Contains(got, "by the people who run this site") {
		t.Errorf("the operator's reset: %q", got)
	}
	noDanglingSeparators(t, page.body)
}

// TestHistoryMetaLineJoinsOnlyWhatIsThere: an entry recorded with no
// device, place or address (as older entries were) shows no separators
// around nothing.
func TestHistoryMetaLineJoinsOnlyWhatIsThere(t *testing.T) {
	app := newTestApp(t)
	desktop := app.client(uaWindowsChrome, ipBerlin)
	desktop.signup("alice@example.com", pw)
	u, err := app.store.UserByEmail(context.Background(), "alice@example.com")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range []db.SecurityEvent{
		{Kind: db.EventPasswordChanged, Reason: db.ReasonPasswordReset},
		{Kind: db.EventTwoFactorOn},
		{Kind: db.EventEmailChanged, Detail: "a@example.com"},
		{Kind: db.EventSignInFailed, Location: "Paris, France"},
		{Kind: db.EventAppSignIn, Detail: "Wiki"},
	} {
		e.UserID, e.At = u.ID, app.clock()
		if err := app.store.RecordSecurityEvent(context.Background(), e); err != nil {
			t.Fatal(err)
		}
	}
	page := desktop.get("/settings/security/activity")
	noDanglingSeparators(t, page.body)
	if got := historyEntry(t, page.body, db.EventPasswordChanged); got != "Password reset by emailed link just now" {
		t.Errorf("a reset recorded with nothing: %q", got)
	}
	if got := historyEntry(t, page.body, db.EventSignInFailed); !strings.HasSuffix(got, "just now · Paris, France") {
		t.Errorf("a failed sign-in with a place only: %q", got)
	}
}

// history seeds alice's history with kinds of entry across days, and bob's
// with his own, and returns alice's browser and bob's.
func historyFixture(t *testing.T) (*testApp, *client, *client) {
	app := newTestApp(t)
	alice, bob := app.client(uaWindowsChrome, ipBerlin), app.client(uaMacFirefox, ipTokyo)
	alice.signup("alice@example.com", pw)
	bob.signup("bob@example.com", pw)
	ctx := context.Background()
	a, err := app.store.UserByEmail(ctx, "alice@example.com")
	if err != nil {
		t.Fatal(err)
	}
	b, err := app.store.UserByEmail(ctx, "bob@example.com")
	if err != nil {
		t.Fatal(err)
	}
	// Day by day: a wrong password, a second factor turned on; bob too.
	for range 4 {
		app.advance(24 * time.Hour)
		for _, e := range []db.SecurityEvent{
			{UserID: a.ID, Kind: db.EventSignInFailed, Device: "=HYPERLINK(\"http://evil\")", Location: "Paris, France", IP: "203.0.113.9"},
			{UserID: a.ID, Kind: db.EventTwoFactorOn, Device: "Chrome on Windows", Location: "+Berlin", IP: "89.246.64.10"},
			{UserID: b.ID, Kind: db.EventTwoFactorOn, Device: "Bob's device", Location: "Bobtown", IP: "198.51.100.1"},
		} {
			e.At = app.clock()
			if err := app.store.RecordSecurityEvent(ctx, e); err != nil {
				t.Fatal(err)
			}
		}
	}
	return app, alice, bob
}

// TestHistoryFilter: the page narrows by kind and dates, pages correctly
// under the filter, and says what is wrong with a date.
func TestHistoryFilter(t *testing.T) {
	app, alice, _ := historyFixture(t)
	page := alice.get("/settings/security/activity")
	expectBody(t, page, `<form method="get" action="/settings/security/activity"`, `<label for="history-kind">Kind</label>`,
		`<option value="two-factor">Two-factor</option>`, `type="date"`, "Download CSV", "Download JSON")
	if got := strings.Join(events(page.body), " "); got != strings.TrimSpace(strings.Repeat("two_factor_on sign_in_failed ", 4)+"sign_in") {
		t.Fatalf("unfiltered: %s", got)
	}
	twoFactor := alice.get("/settings/security/activity?kind=two-factor")
	if got := strings.Join(events(twoFactor.body), " "); got != "two_factor_on two_factor_on two_factor_on two_factor_on" {
		t.Fatalf("kind=two-factor: %s", got)
	}
	expectBody(t, twoFactor, `<option value="two-factor" selected>Two-factor</option>`, "Showing: Two-factor.", "Clear filter",
		`href="/settings/security/activity/export.csv?kind=two-factor"`)
	expectNoBody(t, twoFactor, "Bob")
	// The days: entries were at T+1d … T+4d (T: the sign-up).
	day := func(n int) string {
		return app.clock().Add(time.Duration(n-4) * 24 * time.Hour).UTC().Format("2006-01-02")
	}
	ranged := alice.get("/settings/security/activity?kind=sign-ins&from=" + day(2) + "&to=" + day(3))
	if got := strings.Join(events(ranged.body), " "); got != "sign_in_failed sign_in_failed" {
		t.Fatalf("sign-ins from day 2 to day 3: %s", got)
	}
	expectBody(t, ranged, "Showing: Sign-ins, from "+day(2)+", to "+day(3)+".")
	expectBody(t, alice.get("/settings/security/activity?kind=account"), "Nothing matches this filter.")

	// Bad input: an unknown kind is refused; bad dates are said next to
	// their fields.
	expectStatus(t, alice.get("/settings/security/activity?kind=everything"), http.StatusBadRequest)
	bad := alice.get("/settings/security/activity?from=yesterday&to=" + day(1))
	expectStatus(t, bad, http.StatusUnprocessableEntity)
	expectBody(t, bad, `aria-invalid="true"`, `id="history-from-error"`, "Enter a date like 2026-01-31.")
	backwards := alice.get("/settings/security/activity?from=" + day(3) + "&to=" + day(1))
	expectStatus(t, backwards, http.StatusUnprocessableEntity)
	expectBody(t, backwards, "This is before the start date.")
}

// TestHistoryFilterPages: a filtered history pages within the filter, and
// the next page's link keeps it.
func TestHistoryFilterPages(t *testing.T) {
	app := newTestApp(t)
	alice := app.client(uaWindowsChrome, ipBerlin)
	alice.signup("alice@example.com", pw)
	u, err := app.store.UserByEmail(context.Background(), "alice@example.com")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 70 {
		app.advance(time.Second)
		kind := db.EventSignInFailed
		if i%2 == 0 {
			kind = db.EventTwoFactorOn
		}
		if err := app.store.RecordSecurityEvent(context.Background(), db.SecurityEvent{UserID: u.ID, Kind: kind, At: app.clock(), Detail: fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
	}
	first := alice.get("/settings/security/activity?kind=sign-ins")
	got := events(first.body)
	if len(got) != 36 || strings.Count(strings.Join(got, " "), "sign_in_failed") != 35 {
		t.Fatalf("kind=sign-ins: %d entries: %v", len(got), got)
	}
	expectNoBody(t, first, "Older activity")
	all := alice.get("/settings/security/activity?kind=two-factor")
	if got := events(all.body); len(got) != 35 {
		t.Fatalf("kind=two-factor: %d entries", len(got))
	}
	// 35 + 35 + the sign-up: the unfiltered history has two pages; with a
	// range of today's date, the same.
	today := app.clock().UTC().Format("2006-01-02")
	p1 := alice.get("/settings/security/activity?from=" + today)
	m := regexp.MustCompile(`href="(/settings/security/activity\?[^"]*before=\d+[^"]*)"`).FindStringSubmatch(p1.body)
	if len(events(p1.body)) != 50 || m == nil {
		t.Fatalf("first filtered page: %d entries, link %v", len(events(p1.body)), m)
	}
	next := strings.ReplaceAll(m[1], "&amp;", "&")
	if !strings.Contains(next, "from="+today) {
		t.Fatalf("the next page's link drops the filter: %s", next)
	}
	if got := events(alice.get(next).body); len(got) != 21 {
		t.Fatalf("second filtered page: %d entries", len(got))
	}
}

// TestHistoryExport: CSV and JSON downloads of the person's own history,
// the filter applied, safe in a spreadsheet, never another's, signed in
// only.
func TestHistoryExport(t *testing.T) {
	app, alice, bob := historyFixture(t)
	res := alice.get("/settings/security/activity/export.csv")
	expectStatus(t, res, http.StatusOK)
	if ct := res.Header.Get("Content-Type"); ct != "text/csv; charset=utf-8" {
		t.Errorf("Content-Type %q", ct)
	}
	if cd := res.Header.Get("Content-Disposition"); !regexp.MustCompile(`^attachment; filename="doorman-security-activity-\d{4}-\d{2}-\d{2}\.csv"$`).MatchString(cd) {
		t.Errorf("Content-Disposition %q", cd)
	}
	rows, err := csv.NewReader(strings.NewReader(res.body)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1+9 || strings.Join(rows[0], ",") != "at,kind,title,detail,device,location,ip" {
		t.Fatalf("CSV: %d rows, header %v", len(rows), rows[0])
	}
	for _, r := range rows[1:] {
		for _, cell := range r {
			if cell != "" && strings.ContainsAny(cell[:1], "=+-@") {
				t.Errorf("a cell a spreadsheet would run: %q", cell)
			}
		}
	}
	if rows[1][1] != db.EventTwoFactorOn || rows[1][5] != "'+Berlin" || rows[2][4] != `'=HYPERLINK("http://evil")` {
		t.Errorf("CSV rows: %v / %v", rows[1], rows[2])
	}
	if strings.Contains(res.body, "Bob") || strings.Contains(res.body, "198.51.100.1") {
		t.Fatal("alice's export holds bob's history")
	}

	res = alice.get("/settings/security/activity/export.json?kind=two-factor")
	expectStatus(t, res, http.StatusOK)
	if ct := res.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	if cd := res.Header.Get("Content-Disposition"); !strings.HasPrefix(cd, `attachment; filename="doorman-security-activity-`) || !strings.HasSuffix(cd, `.json"`) {
		t.Errorf("Content-Disposition %q", cd)
	}
	var list []map[string]string
	if err := json.Unmarshal([]byte(res.body), &list); err != nil {
		t.Fatalf("JSON: %v\n%s", err, res.body)
	}
	if len(list) != 4 {
		t.Fatalf("JSON with kind=two-factor: %d entries", len(list))
	}
	for _, e := range list {
		if e["kind"] != db.EventTwoFactorOn || e["device"] != "Chrome on Windows" || e["ip"] != "89.246.64.10" ||
			e["title"] != "Two-factor authentication turned on" || e["at"] == "" {
			t.Errorf("JSON entry %v", e)
		}
	}
	// Bob's own export is his alone.
	var bobs []map[string]string
	if err := json.Unmarshal([]byte(bob.get("/settings/security/activity/export.json").body), &bobs); err != nil || len(bobs) != 5 {
		t.Fatalf("bob's export: %d entries, %v", len(bobs), err)
	}
	for _, e := range bobs {
		if strings.Contains(e["location"], "Paris") || strings.Contains(e["location"], "Berlin") {
			t.Fatalf("bob's export holds alice's entry %v", e)
		}
	}
	// An empty range is an empty file, not an error; bad dates are.
	today := app.clock().UTC().Format("2006-01-02")
	if res := alice.get("/settings/security/activity/export.json?from=" + today + "&kind=account"); strings.TrimSpace(res.body) != "[\n]" && strings.TrimSpace(res.body) != "[]" {
		t.Errorf("an empty export: %q", res.body)
	}
	expectStatus(t, alice.get("/settings/security/activity/export.csv?from=nonsense"), http.StatusBadRequest)
	expectStatus(t, alice.get("/settings/security/activity/export.csv?kind=nonsense"), http.StatusBadRequest)
	// Signed out: to sign in.
	stranger := app.client(uaIPhone, ipLondon)
	for _, p := range []string{"/settings/security/activity/export.csv", "/settings/security/activity/export.json"} {
		res := stranger.get(p)
		expectStatus(t, res, http.StatusSeeOther)
		if !strings.HasPrefix(res.Header.Get("Location"), "/login") {
			t.Errorf("%s signed out: to %q", p, res.Header.Get("Location"))
		}
	}
}
