package handlers_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// TestRenameDevice: the owner names a session's device from its details
// page; the name shows in the row, the details, the dialogs and the
// history in place of the browser label (which stays beside it); the
// rename ends nothing and is in the history. A name too long or with
// control characters is refused next to the field, another user's
// session is a 404, a post without the CSRF token is refused: each
// changes nothing.
func TestRenameDevice(t *testing.T) {
	app := newTestApp(t)
	desktop, phone := app.client(uaWindowsChrome, ipBerlin), app.client(uaIPhone, ipLondon)
	desktop.signup("alice@example.com", pw)
	app.advance(time.Second)
	phone.login("alice@example.com", pw)
	bob := app.client(uaMacFirefox, ipTokyo)
	bob.signup("bob@example.com", pw)
	bobID := bob.currentID()
	phoneID := phone.currentID()
	details := "/settings/security/sessions/" + phoneID
	name := details + "/name"

	page := desktop.get(details)
	expectStatus(t, page, http.StatusOK)
	expectBody(t, page, `action="`+name+`"`, `<label for="device-name">Name this device</label>`, `maxlength="40"`)

	// Refused, each changing nothing.
	before := app.dump()
	for _, c := range []struct {
		what, value, want string
	}{
		{"a line break", "Work\nphone", "no line breaks, tabs or other control characters"},
		{"a direction override", "Work \u202ephone", "no line breaks, tabs or other control characters"},
		{"41 characters", strings.Repeat("x", 41), "Use at most 40 characters (this is 41)."},
	} {
		res := desktop.post(name, url.Values{"name": {c.value}})
		expectStatus(t, res, http.StatusUnprocessableEntity)
		expectBody(t, res, c.want, `aria-invalid="true"`, `id="device-name-error"`)
	}
	expectStatus(t, desktop.post("/settings/security/sessions/"+bobID+"/name", url.Values{"name": {"Mine now"}}), http.StatusNotFound)
	expectStatus(t, desktop.post("/settings/security/sessions/AAAAAAAAAAAAAAAAAAAAAA/name", url.Values{"name": {"Mine now"}}), http.StatusNotFound)
	expectStatus(t, desktop.post(name, url.Values{"name": {"Work phone"}, "csrf": {""}}), http.StatusForbidden)
	expectStatus(t, desktop.post(name, url.Values{"name": {"Work phone"}, "csrf": {bob.csrfToken()}}), http.StatusForbidden)
	if after := app.dump(); after != before {
		t.Fatalf("a refused rename changed the database:\n%s\nvs\n%s", before, after)
	}

	// Named (trimmed); nothing ended.
	expectRedirect(t, desktop.post(name, url.Values{"name": {"  Work phone  "}}), details)
	expectStatus(t, phone.get("/settings/security"), http.StatusOK)
	page = desktop.get(details)
	expectBody(t, page, `<span>Work phone</span>`, `<p class="muted page-subtitle">Safari on iPhone</p>`, `value="Work phone"`, "Named it “Work phone”.")
	res, rows := desktop.securityPage()
	var row string
	for _, r := range rows {
		if r.ID == phoneID {
			row = r.HTML
		}
	}
	if !strings.Contains(row, `>Work phone</a>`) || !strings.Contains(row, `<span>Safari on iPhone</span>`) ||
		!strings.Contains(row, `aria-label="Sign out Work phone, London"`) || !strings.Contains(row, `aria-label="Not you? Work phone, London"`) {
		t.Fatalf("the row does not carry the name:\n%s", row)
	}
	expectBody(t, res, "1 other session will be signed out: Work phone in London")
	expectBody(t, desktop.get(details+"/not-you"), "Work phone", "Safari on iPhone")
	app.outsideSudo()
	confirm := desktop.post(details+"/revoke", nil)
	expectStatus(t, confirm, http.StatusForbidden)
	expectBody(t, confirm, "Sign out Work phone?")

	// The history: the rename, from the desktop, and the phone's sign-in
	// under its name.
	hist := desktop.get("/settings/security/activity")
	expectBody(t, hist, "Safari on iPhone named “Work phone”", "from Chrome on Windows · Berlin", "Signed in on Work phone (Safari on iPhone)")
	if got := events(hist.body); len(got) == 0 || got[0] != "device_renamed" {
		t.Fatalf("the newest entry is not the rename: %v", got)
	}
	expectNoBody(t, bob.get("/settings/security/activity"), "Work phone")

	// An empty name removes it.
	expectRedirect(t, desktop.post(name, url.Values{"name": {"   "}}), details)
	page = desktop.get(details)
	expectBody(t, page, "Removed the name: it shows as Safari on iPhone again.", `<span>Safari on iPhone</span>`)
	expectNoBody(t, page, "page-subtitle")
	expectBody(t, desktop.get("/settings/security/activity"), "Safari on iPhone&#39;s name removed")

	// Ended, it has nothing to name: a 404 for any name, nothing changes.
	expectRedirect(t, desktop.post(details+"/revoke", url.Values{"password": {pw}}), "/settings/security")
	expectNoBody(t, desktop.get(details), "Name this device")
	before = app.dump()
	expectStatus(t, desktop.post(name, url.Values{"name": {"Old phone"}}), http.StatusNotFound)
	expectStatus(t, desktop.post(name, url.Values{"name": {"Old\nphone"}}), http.StatusNotFound)
	if after := app.dump(); after != before {
		t.Fatalf("renaming an ended session changed the database")
	}
}

// TestSignOutGroup: "Sign out these N" ends exactly the group's sessions
// named in its form, after the password outside the sudo window, and
// nothing at all when one of them is another user's, unknown or this
// device's own, or without the CSRF token.
func TestSignOutGroup(t *testing.T) {
	app := newTestApp(t)
	desktop := app.client(uaWindowsChrome, ipBerlin)
	desktop.signup("alice@example.com", pw)
	var phones []*client
	var ids []string
	for range 3 {
		app.advance(time.Minute)
		p := app.client(uaIPhone, ipLondon)
		p.login("alice@example.com", pw)
		phones = append(phones, p)
		ids = append(ids, p.currentID())
	}
	laptop := app.client(uaMacFirefox, ipTokyo)
	laptop.login("alice@example.com", pw)
	bob := app.client(uaIPhone, ipLondon)
	bob.signup("bob@example.com", pw)
	bobID := bob.currentID()

	res, _ := desktop.securityPage()
	q := url.Values{"id": {ids[2], ids[1], ids[0]}}.Encode()
	expectBody(t, res, `<span class="badge group-count">3 sessions</span>`, `action="/settings/security/sessions/sign-out?`+strings.ReplaceAll(q, "&", "&amp;")+`"`,
		"Sign out these 3</button>", "These 3 sessions of Safari on iPhone in London, England, United Kingdom will be signed out.")
	confirm := desktop.get("/settings/security/sessions/sign-out?" + q)
	expectStatus(t, confirm, http.StatusOK)
	expectBody(t, confirm, "Sign out these 3?", `<input type="hidden" name="id" value="`+ids[0]+`">`)

	before := app.dump()
	form := func(extra ...string) url.Values {
		v := url.Values{"id": {ids[0], ids[1], ids[2]}}
		for _, id := range extra {
			v.Add("id", id)
		}
		return v
	}
	for _, c := range []struct {
		what string
		form url.Values
		code int
	}{
		{"another user's session among them", form(bobID), http.StatusNotFound},
		{"an unknown one among them", form("AAAAAAAAAAAAAAAAAAAAAA"), http.StatusNotFound},
		{"this device among them", form(desktop.currentID()), http.StatusBadRequest},
		{"none", url.Values{}, http.StatusBadRequest},
		{"no CSRF token", func() url.Values { v := form(); v.Set("csrf", ""); return v }(), http.StatusForbidden},
	} {
		if res := desktop.post("/settings/security/sessions/sign-out", c.form); res.StatusCode != c.code {
			t.Errorf("%s: %d, want %d", c.what, res.StatusCode, c.code)
		}
	}
	// Outside the sudo window: the password first, on the confirm page
	// that keeps the ids.
	app.outsideSudo()
	refused := desktop.post("/settings/security/sessions/sign-out", form())
	expectStatus(t, refused, http.StatusForbidden)
	expectBody(t, refused, "Enter your password to continue.", `<input type="hidden" name="id" value="`+ids[1]+`">`)
	if after := app.dump(); after != before {
		t.Fatalf("a refused group sign-out changed the database:\n%s\nvs\n%s", before, after)
	}

	v := form()
	v.Set("password", pw)
	expectRedirect(t, desktop.post("/settings/security/sessions/sign-out", v), "/settings/security")
	expectBody(t, desktop.get("/settings/security"), "Signed out 3 sessions.")
	for i, p := range phones {
		if res := p.get("/settings/security"); res.StatusCode != http.StatusSeeOther {
			t.Errorf("phone %d still signed in: %d", i, res.StatusCode)
		}
	}
	for _, c := range []*client{desktop, laptop, bob} {
		expectStatus(t, c.get("/settings/security"), http.StatusOK)
	}
	hist := desktop.get("/settings/security/activity")
	if n := strings.Count(hist.body, "Safari on iPhone signed out"); n != 3 {
		t.Errorf("%d endings in the history, want 3", n)
	}
	expectBody(t, hist, "ended from this device")
}

// TestHistorySearch: the history's search box finds entries by device,
// place, address and the words of their titles, never another user's,
// alongside the kind filter, and the downloads keep it; a search too long
// is refused next to its field.
func TestHistorySearch(t *testing.T) {
	app := newTestApp(t)
	desktop, phone, laptop := app.client(uaWindowsChrome, ipBerlin), app.client(uaIPhone, ipLondon), app.client(uaMacFirefox, ipTokyo)
	desktop.signup("alice@example.com", pw)
	app.advance(time.Second)
	phone.login("alice@example.com", pw)
	app.advance(time.Second)
	laptop.login("alice@example.com", pw)
	// Bob has entries matching every search below.
	bob := app.client(uaIPhone, ipTokyo)
	bob.signup("bob@example.com", pw)
	app.client(uaMacFirefox, ipLondon).login("bob@example.com", pw)

	search := func(q string) (*response, []string) {
		t.Helper()
		res := desktop.get("/settings/security/activity?" + q)
		expectStatus(t, res, http.StatusOK)
		return res, events(res.body)
	}
	page, _ := search("")
	expectBody(t, page, `<label for="history-q">Search</label>`, `name="q" type="search"`)

	res, got := search("q=iphone")
	if strings.Join(got, " ") != "sign_in" {
		t.Fatalf("q=iphone: %v", got)
	}
	expectBody(t, res, "Signed in on Safari on iPhone", `value="iphone"`, "Showing: matching “iphone”.",
		`href="/settings/security/activity/export.csv?q=iphone"`, `href="/settings/security/activity/export.json?q=iphone"`)
	res, got = search("q=TOKYO")
	if strings.Join(got, " ") != "sign_in" {
		t.Fatalf("q=TOKYO: %v", got)
	}
	expectBody(t, res, "Signed in on Firefox on macOS")
	res, got = search("q=" + url.QueryEscape(ipLondon))
	if strings.Join(got, " ") != "sign_in" {
		t.Fatalf("q=%s: %v", ipLondon, got)
	}
	expectBody(t, res, "Signed in on Safari on iPhone")
	// The words of a title; with a kind too.
	if _, got = search("q=signed+in&kind=sign-ins"); len(got) != 3 {
		t.Fatalf("q=signed in, kind=sign-ins: %v", got)
	}
	if _, got = search("q=iphone&kind=two-factor"); len(got) != 0 {
		t.Fatalf("q=iphone, kind=two-factor: %v", got)
	}
	res, _ = search("q=%25")
	expectBody(t, res, "Nothing matches this filter.")
	// The download holds what the search shows.
	csv := desktop.get("/settings/security/activity/export.csv?q=iphone")
	expectStatus(t, csv, http.StatusOK)
	if lines := strings.Split(strings.TrimSpace(csv.body), "\n"); len(lines) != 2 || !strings.Contains(lines[1], "Safari on iPhone") {
		t.Fatalf("export of q=iphone:\n%s", csv.body)
	}
	// Too long: said next to the field; the download refuses it.
	long := desktop.get("/settings/security/activity?q=" + strings.Repeat("a", 101))
	expectStatus(t, long, http.StatusUnprocessableEntity)
	expectBody(t, long, `id="history-q-error"`, "Search for at most 100 characters.")
	expectStatus(t, desktop.get("/settings/security/activity/export.json?q="+strings.Repeat("a", 101)), http.StatusBadRequest)
	// By the name given to a device: its rename and its sign-in.
	expectRedirect(t, desktop.post("/settings/security/sessions/"+phone.currentID()+"/name", url.Values{"name": {"Work phone"}}),
		"/settings/security/sessions/"+phone.currentID())
	if _, got = search("q=work+phone"); strings.Join(got, " ") != "device_renamed sign_in" {
		t.Fatalf("q=work phone: %v", got)
	}
}
