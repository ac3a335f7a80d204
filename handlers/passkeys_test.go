package handlers_test

import (
	"bytes"
	"context"
	"encoding/json"
	"html"
	"maps"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"doorman/db"
	"doorman/db/storetest"
	"doorman/handlers"
	"doorman/timefmt"
)

// atLocalhost serves the app at http://localhost:port instead of
// 127.0.0.1: passkeys need a name, not an IP address.
func (a *testApp) atLocalhost() *testApp {
	a.srv.URL = strings.Replace(a.srv.URL, "://127.0.0.1:", "://localhost:", 1)
	return a
}

var creationRE = regexp.MustCompile(`(?s)<script id="passkey-creation" type="application/json">(.*?)</script>`)

// creationOptions is the JSON of the ceremony options a page holds.
func creationOptions(t *testing.T, res *response) map[string]any {
	t.Helper()
	m := creationRE.FindStringSubmatch(res.body)
	if m == nil {
		t.Fatalf("no passkey options on the page:\n%s", snippet(res.body))
	}
	var out map[string]any
	if err := json.Unmarshal([]byte(m[1]), &out); err != nil {
		t.Fatalf("options %q: %v", m[1], err)
	}
	return out
}

// beginPasskey asks to add a passkey called name, with the password.
func (c *client) beginPasskey(name string) *response {
	c.t.Helper()
	res := c.post("/settings/security/passkeys/new", url.Values{"name": {name}, "password": {pw}})
	expectStatus(c.t, res, http.StatusOK)
	return res
}

func (a *testApp) passkeys(t *testing.T, email string) []db.Passkey {
	t.Helper()
	u, err := a.store.UserByEmail(context.Background(), email)
	if err != nil {
		t.Fatal(err)
	}
	list, err := a.store.ListPasskeys(context.Background(), u.ID)
	if err != nil {
		t.Fatal(err)
	}
	return list
}

// addStoredPasskey stores a passkey for the user straight into the store
// (for the pages that list, rename and remove them).
func (a *testApp) addStoredPasskey(t *testing.T, email, name string) db.Passkey {
	t.Helper()
	u, err := a.store.UserByEmail(context.Background(), email)
	if err != nil {
		t.Fatal(err)
	}
	p, err := a.store.AddPasskey(context.Background(), storetest.Passkey(name, u.ID, a.clock()), 20, u.Epoch)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// passkeySession signs the user in elsewhere with passkey p (straight
// into the store): a session that names it.
func (a *testApp) passkeySession(t *testing.T, email string, p db.Passkey, id string) {
	t.Helper()
	u, err := a.store.UserByEmail(context.Background(), email)
	if err != nil {
		t.Fatal(err)
	}
	s := storetest.Session(id, u.ID, a.clock())
	s.AuthMethod = db.MethodPasskey
	if _, _, err := a.store.SignInWithPasskey(context.Background(), db.PasskeyUse{PasskeyID: p.ID, BackupState: p.BackupState, At: a.clock()}, s, 0, u.Epoch); err != nil {
		t.Fatal(err)
	}
}

func TestPasskeysNeedAName(t *testing.T) {
	app := newTestApp(t) // at 127.0.0.1
	c := app.client(uaWindowsChrome, ipBerlin)
	port := app.srv.URL[strings.LastIndex(app.srv.URL, ":")+1:]
	want := "Passkeys need a name, not an IP address: open http://localhost:" + port + "."
	res := c.get("/login")
	expectBody(t, res, want, `autocomplete="username"`)
	expectNoBody(t, res, "Sign in with a passkey", "username webauthn")
	c.signup("alice@example.com", pw)
	res, _ = c.securityPage()
	expectBody(t, res, "Passkeys", want, `href="http://localhost:`+port+`/settings/security"`)
	expectNoBody(t, res, "Add a passkey")
	res = c.get("/settings/security/passkeys/new")
	expectBody(t, res, want)
	expectNoBody(t, res, `name="password"`)

	before := app.dump()
	res = c.post("/settings/security/passkeys/new", url.Values{"name": {"MacBook"}, "password": {pw}})
	expectStatus(t, res, http.StatusConflict)
	res = c.post("/login/passkey/options", nil)
	expectStatus(t, res, http.StatusConflict)
	if !strings.Contains(res.body, "not an IP address") {
		t.Errorf("options at an IP address: %s", res.body)
	}
	if after := app.dump(); after != before {
		t.Fatalf("passkeys at an IP address changed the database:\n%s\nvs\n%s", before, after)
	}
}

func TestPasskeysAtAnotherOrigin(t *testing.T) {
	app := newTestApp(t, func(c *handlers.Config) { c.PublicOrigin = "https://id.example.com" }).atLocalhost()
	c := app.client(uaWindowsChrome, ipBerlin)
	res := c.get("/login")
	expectBody(t, res, "Passkeys work only at https://id.example.com: open it there.", `href="https://id.example.com/login"`)
	expectNoBody(t, res, "Sign in with a passkey")
}

func TestAddPasskeyAsksPasswordAndName(t *testing.T) {
	app := newTestApp(t).atLocalhost()
	c := app.client(uaWindowsChrome, ipBerlin)
	c.signup("alice@example.com", pw)
	res, _ := c.securityPage()
	expectBody(t, res, "No passkeys.", `href="/settings/security/passkeys/new"`, "Add a passkey")
	res = c.get("/settings/security/passkeys/new")
	expectBody(t, res, `value="Chrome on Windows"`, `name="password"`, "Adding a passkey needs JavaScript")

	for _, tc := range []struct {
		what   string
		form   url.Values
		status int
		text   string
	}{
		{"no name", url.Values{"name": {" "}, "password": {pw}}, http.StatusUnprocessableEntity, "Give the passkey a name."},
		{"a long name", url.Values{"name": {strings.Repeat("n", 61)}, "password": {pw}}, http.StatusUnprocessableEntity, "Use at most 60 characters."},
		{"no password", url.Values{"name": {"MacBook"}}, http.StatusForbidden, "Enter your password to continue."},
		{"a wrong password", url.Values{"name": {"MacBook"}, "password": {"wrong password"}}, http.StatusUnprocessableEntity, "Incorrect password."},
	} {
		res := c.post("/settings/security/passkeys/new", tc.form)
		expectStatus(t, res, tc.status)
		expectBody(t, res, tc.text)
		expectNoBody(t, res, "passkey-creation")
		if c.cookie("doorman_passkey") != "" {
			t.Fatalf("%s began a ceremony", tc.what)
		}
	}

	res = c.beginPasskey("MacBook")
	expectBody(t, res, "Create “MacBook”", "Create passkey", `action="/settings/security/passkeys/add"`)
	o := creationOptions(t, res)["publicKey"].(map[string]any)
	rp := o["rp"].(map[string]any)
	sel := o["authenticatorSelection"].(map[string]any)
	if rp["id"] != "localhost" || sel["residentKey"] != "required" || sel["userVerification"] != "required" {
		t.Errorf("options: rp %v, selection %v; want localhost, a resident key and user verification required", rp, sel)
	}
	if att, ok := o["attestation"]; ok && att != "none" {
		t.Errorf("attestation %v, want none", att)
	}
	user := o["user"].(map[string]any)
	if user["name"] != "alice@example.com" || user["id"] == "" || strings.Contains(user["id"].(string), "alice") {
		t.Errorf("user entity %v", user)
	}
	if c.cookie("doorman_passkey") == "" {
		t.Fatal("no ceremony cookie")
	}
	if n := strings.Count(app.dump(), "register |"); n != 1 {
		t.Errorf("%d registration ceremonies stored, want 1", n)
	}
}

// TestAddPasskeyRefusals: a ceremony finishes only in the browser and the
// session that began it, once, within its lifetime; nothing is added
// otherwise.
func TestAddPasskeyRefusals(t *testing.T) {
	app := newTestApp(t).atLocalhost()
	a, other := app.client(uaWindowsChrome, ipBerlin), app.client(uaIPhone, ipLondon)
	a.signup("alice@example.com", pw)
	other.login("alice@example.com", pw)
	tookTooLong := "That took too long, or it was begun in another browser. Nothing was added: try again."

	// No ceremony at all.
	res := a.post("/settings/security/passkeys/add", url.Values{"credential": {"{}"}})
	expectStatus(t, res, http.StatusBadRequest)
	expectBody(t, res, tookTooLong)

	// Begun by one session, finished by another (the cookie copied).
	a.beginPasskey("MacBook")
	other.jar.SetCookies(mustURL(app.srv.URL), []*http.Cookie{{Name: "doorman_passkey", Value: a.cookie("doorman_passkey")}})
	res = other.post("/settings/security/passkeys/add", url.Values{"credential": {"{}"}})
	expectStatus(t, res, http.StatusBadRequest)
	expectBody(t, res, tookTooLong)

	// Expired.
	app.advance(5*time.Minute + time.Second)
	res = a.post("/settings/security/passkeys/add", url.Values{"credential": {"{}"}})
	expectStatus(t, res, http.StatusBadRequest)
	expectBody(t, res, tookTooLong)

	// An answer that is no credential uses the ceremony up: a second try
	// with the same ceremony is refused as gone.
	a.beginPasskey("MacBook")
	cookie := a.cookie("doorman_passkey")
	// No answer at all (no JavaScript): said so, the ceremony kept.
	res = a.post("/settings/security/passkeys/add", url.Values{"credential": {""}})
	expectStatus(t, res, http.StatusBadRequest)
	expectBody(t, res, "Adding a passkey needs JavaScript")
	res = a.post("/settings/security/passkeys/add", url.Values{"credential": {`{"id":"x"}`}})
	expectStatus(t, res, http.StatusBadRequest)
	expectBody(t, res, "could not be read")
	a.jar.SetCookies(mustURL(app.srv.URL), []*http.Cookie{{Name: "doorman_passkey", Value: cookie}})
	res = a.post("/settings/security/passkeys/add", url.Values{"credential": {"{}"}})
	expectStatus(t, res, http.StatusBadRequest)
	expectBody(t, res, tookTooLong)
	if list := app.passkeys(t, "alice@example.com"); len(list) != 0 {
		t.Fatalf("refused answers added passkeys: %+v", list)
	}
}

func TestPasskeyCap(t *testing.T) {
	app := newTestApp(t).atLocalhost()
	c := app.client(uaWindowsChrome, ipBerlin)
	c.signup("alice@example.com", pw)
	for i := range 20 {
		app.addStoredPasskey(t, "alice@example.com", "Key "+strconv.Itoa(i))
	}
	full := "This account has 20 passkeys, the most it may have. Remove one you no longer use to add another."
	expectBody(t, c.get("/settings/security/passkeys/new"), full)
	res := c.post("/settings/security/passkeys/new", url.Values{"name": {"One more"}, "password": {pw}})
	expectStatus(t, res, http.StatusUnprocessableEntity)
	expectBody(t, res, full)
	if c.cookie("doorman_passkey") != "" {
		t.Fatal("a ceremony began past the cap")
	}
}

func TestPasskeySignInOptionsAndRefusals(t *testing.T) {
	app := newTestApp(t).atLocalhost()
	c := app.client(uaWindowsChrome, ipBerlin)
	res := c.get("/login")
	expectBody(t, res, "Sign in with a passkey", `autocomplete="username webauthn"`, `data-passkey-login="/login/passkey/options"`,
		"Signing in with a passkey needs JavaScript")
	res = c.post("/login/passkey/options", nil)
	expectStatus(t, res, http.StatusOK)
	var o struct {
		PublicKey struct {
			Challenge        string `json:"challenge"`
			RPID             string `json:"rpId"`
			UserVerification string `json:"userVerification"`
			Allow            []any  `json:"allowCredentials"`
		} `json:"publicKey"`
	}
	if err := json.Unmarshal([]byte(res.body), &o); err != nil {
		t.Fatalf("options %s: %v", res.body, err)
	}
	if len(o.PublicKey.Challenge) < 43 || o.PublicKey.RPID != "localhost" || o.PublicKey.UserVerification != "required" || len(o.PublicKey.Allow) != 0 {
		t.Errorf("options %+v: want a 32-byte challenge, localhost, user verification required, no account named", o.PublicKey)
	}
	cookie := c.cookie("doorman_passkey")
	if cookie == "" {
		t.Fatal("no ceremony cookie")
	}

	tookTooLong := "That passkey sign-in took too long, or was begun in another browser. Try again."
	// Another browser, without the ceremony's cookie.
	stranger := app.client(uaIPhone, ipLondon)
	res = stranger.post("/login/passkey", url.Values{"credential": {"{}"}})
	expectStatus(t, res, http.StatusBadRequest)
	expectBody(t, res, tookTooLong)
	// An unreadable answer uses the ceremony up; replayed, it is gone.
	res = c.post("/login/passkey", url.Values{"credential": {`{"id":"x"}`}})
	expectStatus(t, res, http.StatusBadRequest)
	expectBody(t, res, "could not be read")
	c.jar.SetCookies(mustURL(app.srv.URL), []*http.Cookie{{Name: "doorman_passkey", Value: cookie}})
	res = c.post("/login/passkey", url.Values{"credential": {"{}"}})
	expectStatus(t, res, http.StatusBadRequest)
	expectBody(t, res, tookTooLong)
	// Expired.
	c.post("/login/passkey/options", nil)
	app.advance(5*time.Minute + time.Second)
	res = c.post("/login/passkey", url.Values{"credential": {"{}"}})
	expectStatus(t, res, http.StatusBadRequest)
	expectBody(t, res, tookTooLong)
	if c.sessionCookie() != "" || stranger.sessionCookie() != "" {
		t.Fatal("a refused passkey sign-in signed in")
	}
}

func TestPasskeyListRenameRemove(t *testing.T) {
	app := newTestApp(t).atLocalhost()
	alice, bob := app.client(uaWindowsChrome, ipBerlin), app.client(uaIPhone, ipLondon)
	alice.signup("alice@example.com", pw)
	bob.signup("bob@example.com", pw)
	mac := app.addStoredPasskey(t, "alice@example.com", "MacBook")
	phone := app.addStoredPasskey(t, "alice@example.com", "Phone")
	app.addStoredPasskey(t, "alice@example.com", "Spare")
	bobs := app.addStoredPasskey(t, "bob@example.com", "Bob's key")
	app.passkeySession(t, "alice@example.com", mac, "aaaaaaaaaaaaaaa2")
	app.passkeySession(t, "alice@example.com", mac, "aaaaaaaaaaaaaaa3")
	app.passkeySession(t, "alice@example.com", phone, "aaaaaaaaaaaaaaa4")

	res, rows := alice.securityPage()
	expectBody(t, res, "MacBook", "Phone", "Synced", "Never used to sign in", "Remove passkey MacBook", "New name for MacBook")
	expectNoBody(t, res, "Bob&#39;s key", "Bob's key")
	signedIn := 0
	for _, r := range rows {
		if strings.Contains(html.UnescapeString(r.HTML), "Signed in with passkey “MacBook” (synced)") {
			signedIn++
		}
	}
	if signedIn != 2 {
		t.Errorf("%d session rows say MacBook signed them in, want 2", signedIn)
	}
	expectBody(t, alice.get("/settings/security/sessions/aaaaaaaaaaaaaaa4"), "Signed in with passkey “Phone” (synced)")

	// Another user's passkey: not found, nothing changes.
	before := app.dump()
	idBob := strconv.FormatInt(bobs.ID, 10)
	expectStatus(t, alice.post("/settings/security/passkeys/"+idBob+"/rename", url.Values{"name": {"Mine"}}), http.StatusNotFound)
	expectStatus(t, alice.get("/settings/security/passkeys/"+idBob+"/remove"), http.StatusNotFound)
	expectStatus(t, alice.post("/settings/security/passkeys/"+idBob+"/remove", url.Values{"password": {pw}, "end_sessions": {"on"}}), http.StatusNotFound)
	expectStatus(t, alice.post("/settings/security/passkeys/x/remove", url.Values{"password": {pw}}), http.StatusNotFound)
	if after := app.dump(); after != before {
		t.Fatalf("another user's passkey ids changed the database")
	}

	idMac := strconv.FormatInt(mac.ID, 10)
	res = alice.post("/settings/security/passkeys/"+idMac+"/rename", url.Values{"name": {"Work MacBook"}})
	expectRedirect(t, res, "/settings/security#passkeys-heading")
	res, _ = alice.securityPage()
	expectBody(t, res, "Passkey renamed “Work MacBook”.")

	// Removing asks the password, and offers (ticked) to end its sessions.
	res = alice.get("/settings/security/passkeys/" + idMac + "/remove")
	expectBody(t, res, "Remove passkey “Work MacBook”?", "Also sign out the 2 sessions it signed in", `checked`, `name="password"`)
	before = app.dump()
	res = alice.post("/settings/security/passkeys/"+idMac+"/remove", url.Values{"end_sessions": {"on"}})
	expectStatus(t, res, http.StatusForbidden)
	expectBody(t, res, "Enter your password to continue.")
	if after := app.dump(); after != before {
		t.Fatal("a removal without the password changed the database")
	}
	res = alice.post("/settings/security/passkeys/"+idMac+"/remove", url.Values{"end_sessions": {"on"}, "password": {pw}})
	expectStatus(t, res, http.StatusSeeOther)
	loc := res.Header.Get("Location")
	if !strings.HasPrefix(loc, "/settings/security?forget=") {
		t.Fatalf("after the removal: Location %q", loc)
	}
	res = alice.get(loc)
	expectBody(t, res, "Passkey “Work MacBook” removed. 2 sessions it signed in were signed out.", `data-passkey-forget="`, `data-rp-id="localhost"`)
	_, rows = alice.securityPage()
	for _, r := range rows {
		if r.ID == "aaaaaaaaaaaaaaa2" || r.ID == "aaaaaaaaaaaaaaa3" {
			t.Errorf("session %s of the removed passkey is still listed", r.ID)
		}
	}
	if list := app.passkeys(t, "alice@example.com"); len(list) != 2 || list[0].ID != phone.ID {
		t.Errorf("alice's passkeys after the removal: %+v", list)
	}

	// Unticked: the sessions go on, and say their passkey was removed.
	idPhone := strconv.FormatInt(phone.ID, 10)
	res = alice.post("/settings/security/passkeys/"+idPhone+"/remove", url.Values{"password": {pw}})
	expectStatus(t, res, http.StatusSeeOther)
	res, rows = alice.securityPage()
	found := false
	for _, r := range rows {
		if r.ID == "aaaaaaaaaaaaaaa4" {
			found = strings.Contains(r.HTML, "Signed in with a passkey since removed")
		}
	}
	if !found {
		t.Errorf("the kept session does not say its passkey was removed:\n%s", snippet(res.body))
	}
	activity := alice.get("/settings/security/activity")
	expectBody(t, activity, "Passkey “Work MacBook” removed")
	if list := app.passkeys(t, "bob@example.com"); len(list) != 1 || !bytes.Equal(list[0].CredentialID, bobs.CredentialID) {
		t.Errorf("bob's passkeys changed: %+v", list)
	}
}

var (
	passkeyCardRowRE     = regexp.MustCompile(`(?s)<li class="session" data-passkey-id="(\d+)">(.*?)</details>`)
	passkeySessionsRE    = regexp.MustCompile(`(?s)<p class="session-meta" id="passkey-sessions-\d+">([^<]*)</p><ul class="passkey-sessions" aria-labelledby="passkey-sessions-\d+">(.*?)</ul>`)
	passkeySessionItemRE = regexp.MustCompile(`(?s)<li><a href="([^"]*)">(.*?)</a></li>`)
	tagRE                = regexp.MustCompile(`<[^>]*>`)
)

// passkeyCardSessions reads the passkey card's list of the sessions
// passkey id signed in: its label, and each link's text by its target.
func passkeyCardSessions(t *testing.T, body string, id int64) (string, map[string]string) {
	t.Helper()
	for _, row := range passkeyCardRowRE.FindAllStringSubmatch(body, -1) {
		if row[1] != strconv.FormatInt(id, 10) {
			continue
		}
		m := passkeySessionsRE.FindStringSubmatch(row[2])
		if m == nil {
			return "", nil
		}
		links := map[string]string{}
		for _, item := range passkeySessionItemRE.FindAllStringSubmatch(m[2], -1) {
			text := html.UnescapeString(tagRE.ReplaceAllString(item[2], ""))
			links[html.UnescapeString(item[1])] = strings.Join(strings.Fields(text), " ")
		}
		return m[1], links
	}
	t.Fatalf("no passkey %d on the page:\n%s", id, snippet(body))
	return "", nil
}

// TestPasskeyCardListsItsSessions: each passkey lists the sessions it
// signed in, one link a line to each one's details, each saying what
// tells it apart as the session rows do: the device's name if it has one,
// else browser and place and when it signed in; a name two of them share
// gets the time too.
func TestPasskeyCardListsItsSessions(t *testing.T) {
	app := newTestApp(t).atLocalhost()
	alice := app.client(uaWindowsChrome, ipBerlin)
	alice.signup("alice@example.com", pw)
	u, err := app.store.UserByEmail(context.Background(), "alice@example.com")
	if err != nil {
		t.Fatal(err)
	}
	mac := app.addStoredPasskey(t, "alice@example.com", "MacBook")
	phone := app.addStoredPasskey(t, "alice@example.com", "Phone")
	app.addStoredPasskey(t, "alice@example.com", "Spare")
	first := app.clock()
	app.passkeySession(t, "alice@example.com", mac, "aaaaaaaaaaaaaaa2")
	app.advance(time.Hour)
	app.passkeySession(t, "alice@example.com", mac, "aaaaaaaaaaaaaaa3")
	app.passkeySession(t, "alice@example.com", mac, "aaaaaaaaaaaaaaa4")
	app.passkeySession(t, "alice@example.com", phone, "aaaaaaaaaaaaaaa5")
	app.advance(time.Hour)
	app.passkeySession(t, "alice@example.com", phone, "aaaaaaaaaaaaaaa6")
	for _, id := range []string{"aaaaaaaaaaaaaaa4", "aaaaaaaaaaaaaaa5", "aaaaaaaaaaaaaaa6"} {
		name := "Work phone"
		if id == "aaaaaaaaaaaaaaa4" {
			name = "Anna's MacBook"
		}
		if _, err := app.store.RenameSession(context.Background(), u.ID, id, name, app.clock()); err != nil {
			t.Fatal(err)
		}
	}
	res, _ := alice.securityPage()
	signedIn := func(at time.Time) string { return " · Signed in " + timefmt.Exact(at) }
	label, links := passkeyCardSessions(t, res.body, mac.ID)
	want := map[string]string{
		"/settings/security/sessions/aaaaaaaaaaaaaaa2": "Chrome on macOS, London" + signedIn(first),
		"/settings/security/sessions/aaaaaaaaaaaaaaa3": "Chrome on macOS, London" + signedIn(first.Add(time.Hour)),
		"/settings/security/sessions/aaaaaaaaaaaaaaa4": "Anna's MacBook",
	}
	if label != "Signed in 3 sessions:" || !maps.Equal(links, want) {
		t.Errorf("MacBook's sessions: %q %q; want %q", label, links, want)
	}
	label, links = passkeyCardSessions(t, res.body, phone.ID)
	want = map[string]string{
		"/settings/security/sessions/aaaaaaaaaaaaaaa5": "Work phone" + signedIn(first.Add(time.Hour)),
		"/settings/security/sessions/aaaaaaaaaaaaaaa6": "Work phone" + signedIn(first.Add(2*time.Hour)),
	}
	if label != "Signed in 2 sessions:" || !maps.Equal(links, want) {
		t.Errorf("Phone's sessions: %q %q; want %q", label, links, want)
	}
	spare := app.passkeys(t, "alice@example.com")[2]
	if label, links := passkeyCardSessions(t, res.body, spare.ID); label != "" || links != nil {
		t.Errorf("Spare signed nothing in, yet its card says %q %q", label, links)
	}
}

// TestPasskeyRenameRefusals: a name that will not do (empty, only
// invisible or control characters, too long) is answered on the Security
// page, the error beside the passkey's field (aria-invalid, described by
// the error, focused), its <details> open, what was typed kept; nothing is
// stored. Another user's passkey is still not found.
func TestPasskeyRenameRefusals(t *testing.T) {
	app := newTestApp(t).atLocalhost()
	alice, bob := app.client(uaWindowsChrome, ipBerlin), app.client(uaIPhone, ipLondon)
	alice.signup("alice@example.com", pw)
	bob.signup("bob@example.com", pw)
	mac := app.addStoredPasskey(t, "alice@example.com", "MacBook")
	other := app.addStoredPasskey(t, "alice@example.com", "Phone")
	bobs := app.addStoredPasskey(t, "bob@example.com", "Bob's key")
	id := strconv.FormatInt(mac.ID, 10)
	long := strings.Repeat("x", 61)
	for _, tc := range []struct{ name, posted, problem string }{
		{"empty", "", "Give the passkey a name."},
		{"spaces", "  \t ", "Give the passkey a name."},
		{"invisible", "\u202e\u200b\x01", "Use visible characters: this name has only invisible or control characters."},
		{"too long", long, "Use at most 60 characters."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := app.dump()
			res := alice.post("/settings/security/passkeys/"+id+"/rename", url.Values{"name": {tc.posted}})
			expectStatus(t, res, http.StatusUnprocessableEntity)
			field := regexp.MustCompile(`<input id="passkey-rename-` + id + `"[^>]*>`).FindString(res.body)
			for _, want := range []string{`aria-invalid="true"`, `aria-describedby="passkey-rename-` + id + `-error"`, `autofocus`, `value="` + html.EscapeString(tc.posted) + `"`} {
				if !strings.Contains(field, want) {
					t.Errorf("the field %s lacks %s", field, want)
				}
			}
			expectBody(t, res, `<p class="field-error" id="passkey-rename-`+id+`-error">`+html.EscapeString(tc.problem)+`</p>`,
				`<details class="passkey-rename" open>`, `<h2 id="passkeys-heading">Passkeys</h2>`, `id="sessions-heading"`)
			// Only this passkey's form is open and in error.
			if n := strings.Count(res.body, `aria-invalid="true"`); n != 1 {
				t.Errorf("%d fields in error; want 1", n)
			}
			if n := strings.Count(res.body, `<details class="passkey-rename" open>`); n != 1 {
				t.Errorf("%d rename forms open; want 1", n)
			}
			expectBody(t, res, `<input id="passkey-rename-`+strconv.FormatInt(other.ID, 10)+`" name="name" type="text" autocomplete="off" required maxlength="60" value="Phone">`)
			if after := app.dump(); after != before {
				t.Fatalf("a refused rename changed the database")
			}
		})
	}
	// Another user's passkey, with a bad name: not found, as with a good one.
	before := app.dump()
	expectStatus(t, alice.post("/settings/security/passkeys/"+strconv.FormatInt(bobs.ID, 10)+"/rename", url.Values{"name": {""}}), http.StatusNotFound)
	if after := app.dump(); after != before {
		t.Fatalf("a rename of another user's passkey changed the database")
	}
	if list := app.passkeys(t, "alice@example.com"); list[0].Name != "MacBook" || list[1].Name != "Phone" {
		t.Errorf("alice's passkeys after the refusals: %q, %q", list[0].Name, list[1].Name)
	}
	// The page's plain form (no error) stays closed and unmarked.
	res, _ := alice.securityPage()
	expectNoBody(t, res, `aria-invalid`, `<details class="passkey-rename" open>`, `-error"`)
}
