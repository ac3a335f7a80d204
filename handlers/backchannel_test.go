package handlers_test

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"doorman/apptest"
	"doorman/db"
	"doorman/examples/relying-party/rp"
)

// Back-channel logout (OpenID Connect Back-Channel Logout 1.0) end to end:
// a real relying party (examples/relying-party/rp: go-oidc's VerifyLogout,
// its own jti log) served beside Doorman, registered as an app with a
// back-channel logout URI, signed in to through Doorman by a browser; the
// App's logout worker (apptest starts it) delivers what the endings owe.

// rpMode says how the app's back-channel endpoint answers.
const (
	modeUp       int32 = iota // the real RP answers
	modeDown                  // 503, as an app that is down behind its proxy
	modeRedirect              // 303 to another server
)

// realRP is the example relying party served on its own origin.
type realRP struct {
	t        *testing.T
	app      *testApp
	rp       *rp.RP
	srv      *httptest.Server
	clientID string
	mode     atomic.Int32
	// redirected counts requests that reached the redirect's target (a
	// logout token must never get there).
	redirected atomic.Int32
	// received counts POSTs that reached the real RP's back-channel endpoint.
	received atomic.Int32
}

// newRealRP serves a real RP and registers it with Doorman (first party,
// confidential, with its back-channel logout URI). Its clock is the
// server's, as two machines agreeing on the time.
func (a *testApp) newRealRP(clientID string) *realRP {
	t := a.t
	t.Helper()
	r := &realRP{t: t, app: a, clientID: clientID}
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { r.redirected.Add(1) }))
	t.Cleanup(target.Close)
	r.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Path == "/backchannel-logout" {
			switch r.mode.Load() {
			case modeDown:
				http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
				return
			case modeRedirect:
				http.Redirect(w, req, target.URL+"/elsewhere", http.StatusSeeOther)
				return
			}
			r.received.Add(1)
		}
		r.rp.ServeHTTP(w, req)
	}))
	base := "http://" + r.srv.Listener.Addr().String()
	var err error
	r.rp, err = rp.New(rp.Config{Issuer: a.srv.URL, ClientID: clientID, ClientSecret: rpSecret, BaseURL: base,
		Now: a.app.Clock.Now, Logger: a.app.Backchannel.Logger})
	if err != nil {
		t.Fatal(err)
	}
	r.srv.Start()
	t.Cleanup(r.srv.Close)
	h := sha256.Sum256([]byte(rpSecret))
	if err := a.store.CreateApp(context.Background(), db.App{ClientID: clientID, Name: "App " + clientID, CreatedAt: a.clock(),
		SecretHash: h[:], RedirectURIs: []string{base + "/callback"}, PostLogoutRedirectURIs: []string{base + "/"},
		BackchannelLogoutURI: base + "/backchannel-logout", FirstParty: true}); err != nil {
		t.Fatal(err)
	}
	return r
}

// signIn signs browser (signed in to Doorman) in to the RP: the RP sends
// it to Doorman, Doorman back with a code, the RP redeems it and verifies
// the ID token. It returns the Doorman session (sid) the RP holds.
func (r *realRP) signIn(browser *client) string {
	t := r.t
	t.Helper()
	before := len(r.rp.Sessions())
	req, _ := http.NewRequest(http.MethodGet, r.srv.URL+"/login", nil)
	for range 10 {
		res := browser.do(req)
		loc := res.Header.Get("Location")
		if res.StatusCode < 300 || res.StatusCode >= 400 || loc == "" {
			if res.StatusCode != http.StatusOK || !strings.HasPrefix(req.URL.String(), r.srv.URL) {
				t.Fatalf("sign-in through Doorman ended at %s with %d\n%s", req.URL, res.StatusCode, snippet(res.body))
			}
			break
		}
		next, err := req.URL.Parse(loc)
		if err != nil {
			t.Fatal(err)
		}
		req, _ = http.NewRequest(http.MethodGet, next.String(), nil)
	}
	sessions := r.rp.Sessions()
	if len(sessions) != before+1 {
		t.Fatalf("the RP has %d sessions after a sign-in, want %d", len(sessions), before+1)
	}
	sid := browser.currentID()
	for _, s := range sessions {
		if s.SID == sid {
			return sid
		}
	}
	t.Fatalf("no RP session names the Doorman session %s", sid)
	return ""
}

// signedIn reports whether the RP holds a session of Doorman session sid.
func (r *realRP) signedIn(sid string) bool {
	for _, s := range r.rp.Sessions() {
		if s.SID == sid {
			return true
		}
	}
	return false
}

// waitLogout waits for the RP to have verified a logout token matching
// sub and sid ("" matches only a token without one).
func (r *realRP) waitLogout(sub, sid string) rp.Event {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	e, err := r.rp.WaitEvent(ctx, func(e rp.Event) bool {
		return e.Kind == rp.EventLogoutVerified && e.Sub == sub && e.SID == sid
	})
	if err != nil {
		r.t.Fatalf("no verified logout token (sub %q, sid %q) reached the app: %v; its events: %+v", sub, sid, err, r.rp.Events())
	}
	return e
}

// deliveries returns the user's logout deliveries.
func (a *testApp) deliveries(email string) []db.LogoutDelivery {
	a.t.Helper()
	u, err := a.store.UserByEmail(context.Background(), email)
	if err != nil {
		a.t.Fatal(err)
	}
	ds, err := a.store.LogoutDeliveries(context.Background(), u.ID, time.Time{})
	if err != nil {
		a.t.Fatal(err)
	}
	return ds
}

// waitDelivery waits until the user's one delivery to clientID for sid
// satisfies ok, and returns it.
func (a *testApp) waitDelivery(email, clientID, sid string, ok func(db.LogoutDelivery) bool) db.LogoutDelivery {
	a.t.Helper()
	var got db.LogoutDelivery
	waitUntil(a.t, func() bool {
		for _, d := range a.deliveries(email) {
			if d.ClientID == clientID && d.SessionID == sid && ok(d) {
				got = d
				return true
			}
		}
		return false
	})
	return got
}

func subjectOf(t *testing.T, a *testApp, email string) string {
	t.Helper()
	u, err := a.store.UserByEmail(context.Background(), email)
	if err != nil {
		t.Fatal(err)
	}
	sub, err := a.store.Subject(context.Background(), u.ID)
	if err != nil {
		t.Fatal(err)
	}
	return sub
}

// TestBackchannelLogoutOfOneSession: a Doorman session that signed in to
// the app is signed out from another device; the app receives a logout
// token naming that session, verifies it, and ends its own session of
// it (and only that one); the store shows the delivery delivered.
func TestBackchannelLogoutOfOneSession(t *testing.T) {
	a := newOIDCApp(t)
	laptop := a.client(uaWindowsChrome, ipBerlin)
	laptop.signup("alice@example.com", "correct horse")
	phone := a.client(uaIPhone, ipLondon)
	phone.login("alice@example.com", "correct horse")
	app := a.newRealRP("wiki")
	laptopSID := app.signIn(laptop)
	phoneSID := app.signIn(phone)

	expectRedirect(t, phone.post("/settings/security/sessions/"+laptopSID+"/revoke", nil), "/settings/security")

	e := app.waitLogout(subjectOf(t, a, "alice@example.com"), laptopSID)
	if e.Ended != 1 || app.signedIn(laptopSID) {
		t.Errorf("the logout ended %d RP sessions; the laptop's still signed in: %v", e.Ended, app.signedIn(laptopSID))
	}
	if !app.signedIn(phoneSID) {
		t.Error("the phone's RP session ended with the laptop's")
	}
	d := a.waitDelivery("alice@example.com", "wiki", laptopSID, func(d db.LogoutDelivery) bool { return d.State == db.LogoutDelivered })
	if d.Attempts != 1 || d.LastError != "" {
		t.Errorf("delivered after %d attempts, last error %q", d.Attempts, d.LastError)
	}
	for _, e := range app.rp.Events() {
		if e.Kind == rp.EventLogoutRefused {
			t.Errorf("the app refused a logout token: %s", e.Reason)
		}
	}
	if strings.Contains(a.logs.String(), "logout_token") {
		t.Error("the log names the logout token")
	}
}

// TestBackchannelLogoutEverywhere: "Sign out everywhere" sends the app a
// token naming only the person (sub, no sid), which ends every session
// the app has of them.
func TestBackchannelLogoutEverywhere(t *testing.T) {
	a := newOIDCApp(t)
	laptop := a.client(uaWindowsChrome, ipBerlin)
	laptop.signup("alice@example.com", "correct horse")
	phone := a.client(uaIPhone, ipLondon)
	phone.login("alice@example.com", "correct horse")
	app := a.newRealRP("wiki")
	laptopSID, phoneSID := app.signIn(laptop), app.signIn(phone)

	expectRedirect(t, phone.post("/settings/security/sessions/revoke-all", nil), "/login")

	app.waitLogout(subjectOf(t, a, "alice@example.com"), "")
	if app.signedIn(laptopSID) || app.signedIn(phoneSID) {
		t.Errorf("RP sessions left after a sub-only logout: %+v", app.rp.Sessions())
	}
	a.waitDelivery("alice@example.com", "wiki", "", func(d db.LogoutDelivery) bool { return d.State == db.LogoutDelivered })
}

// TestBackchannelLogoutReachesAnAppThatWasDown: the app answers 503; the
// delivery stays pending with its attempts and the error, is retried
// after its backoff, and is delivered once the app is back.
func TestBackchannelLogoutReachesAnAppThatWasDown(t *testing.T) {
	a := newOIDCApp(t)
	laptop := a.client(uaWindowsChrome, ipBerlin)
	laptop.signup("alice@example.com", "correct horse")
	phone := a.client(uaIPhone, ipLondon)
	phone.login("alice@example.com", "correct horse")
	app := a.newRealRP("wiki")
	sid := app.signIn(laptop)
	app.mode.Store(modeDown)

	expectRedirect(t, phone.post("/settings/security/sessions/"+sid+"/revoke", nil), "/settings/security")

	d := a.waitDelivery("alice@example.com", "wiki", sid, func(d db.LogoutDelivery) bool { return d.Attempts >= 1 && d.LastError != "" })
	if d.State != db.LogoutPending || !strings.Contains(d.LastError, "503") || !d.NextAt.After(a.clock()) {
		t.Fatalf("after a 503: state %s, last error %q, next at %v (now %v)", d.State, d.LastError, d.NextAt, a.clock())
	}
	if !app.signedIn(sid) {
		t.Fatal("the app's session ended while it was down")
	}
	// Still down at the retry: two attempts, still pending.
	a.advance(time.Minute)
	a.waitDelivery("alice@example.com", "wiki", sid, func(d db.LogoutDelivery) bool {
		return d.Attempts >= 2 && d.State == db.LogoutPending && !d.NextAt.Before(a.clock())
	})

	app.mode.Store(modeUp)
	a.advance(time.Minute)
	app.waitLogout(subjectOf(t, a, "alice@example.com"), sid)
	if app.signedIn(sid) {
		t.Error("the app's session lives after the logout reached it")
	}
	d = a.waitDelivery("alice@example.com", "wiki", sid, func(d db.LogoutDelivery) bool { return d.State == db.LogoutDelivered })
	if d.Attempts < 3 {
		t.Errorf("delivered at attempt %d, want the third or later", d.Attempts)
	}
}

// TestBackchannelLogoutRedirectIsAFailure: an app answering with a
// redirect has not taken the logout: it is a failure, retried, and the
// redirect is not followed (the token goes nowhere but the registered
// URI).
func TestBackchannelLogoutRedirectIsAFailure(t *testing.T) {
	a := newOIDCApp(t)
	laptop := a.client(uaWindowsChrome, ipBerlin)
	laptop.signup("alice@example.com", "correct horse")
	phone := a.client(uaIPhone, ipLondon)
	phone.login("alice@example.com", "correct horse")
	app := a.newRealRP("wiki")
	sid := app.signIn(laptop)
	app.mode.Store(modeRedirect)

	expectRedirect(t, phone.post("/settings/security/sessions/"+sid+"/revoke", nil), "/settings/security")

	d := a.waitDelivery("alice@example.com", "wiki", sid, func(d db.LogoutDelivery) bool { return d.LastError != "" })
	if d.State != db.LogoutPending || !strings.Contains(d.LastError, "redirect") {
		t.Errorf("after a redirect: state %s, last error %q", d.State, d.LastError)
	}
	if n := app.redirected.Load(); n != 0 {
		t.Errorf("the redirect was followed %d times", n)
	}
	if !app.signedIn(sid) {
		t.Error("the app's session ended though it never took the logout")
	}
}

// TestBackchannelLogoutOnceAcrossInstances: two instances on one
// database, each with its logout worker, deliver every logout exactly
// once: each delivery claimed once (one attempt), each reaching the app
// once, with a jti of its own.
func TestBackchannelLogoutOnceAcrossInstances(t *testing.T) {
	a := newOIDCApp(t)
	b := newTestAppWith(t, apptest.Options{DSN: a.dbPath, Clock: a.app.Clock, SecretBox: a.app.SecretBox, BaseURL: a.srv.URL})
	if b.app.Backchannel == nil {
		t.Fatal("the second instance has no logout worker")
	}
	app := a.newRealRP("wiki")
	browsers := make([]*client, 4)
	sids := make([]string, len(browsers))
	for i := range browsers {
		browsers[i] = a.client(uaWindowsChrome, ipBerlin)
		if i == 0 {
			browsers[i].signup("alice@example.com", "correct horse")
		} else {
			browsers[i].login("alice@example.com", "correct horse")
		}
		sids[i] = app.signIn(browsers[i])
	}

	// Everywhere: one logout per session, and one for the person.
	expectRedirect(t, browsers[0].post("/settings/security/sessions/revoke-all", nil), "/login")

	var ds []db.LogoutDelivery
	waitUntil(t, func() bool {
		ds = a.deliveries("alice@example.com")
		for _, d := range ds {
			if d.State != db.LogoutDelivered {
				return false
			}
		}
		return len(ds) > 0
	})
	if len(ds) != len(sids)+1 {
		t.Errorf("%d deliveries, want %d (one per session, one for the person)", len(ds), len(sids)+1)
	}
	for _, d := range ds {
		if d.Attempts != 1 {
			t.Errorf("delivery %d (sid %q) claimed %d times", d.ID, d.SessionID, d.Attempts)
		}
	}
	// Every delivered one reached the app; wait for them all, then check
	// none came twice.
	var verified []rp.Event
	waitUntil(t, func() bool {
		verified = verified[:0]
		for _, e := range app.rp.Events() {
			if e.Kind == rp.EventLogoutVerified {
				verified = append(verified, e)
			}
		}
		return len(verified) >= len(ds)
	})
	seen := map[string]bool{}
	for _, e := range verified {
		if seen[e.SID] {
			t.Errorf("the logout for sid %q reached the app twice", e.SID)
		}
		seen[e.SID] = true
	}
	if n := int(app.received.Load()); n != len(ds) {
		t.Errorf("the app received %d logout requests for %d deliveries", n, len(ds))
	}
}

// TestLogoutTokenShape: the token has the explicit type logout+jwt, the
// claims Back-Channel Logout 1.0 §2.4 asks for (sid only when it names a
// session) and no nonce; every token has a jti of its own.
func TestLogoutTokenShape(t *testing.T) {
	a := newOIDCApp(t)
	d := db.LogoutDelivery{ClientID: "wiki", Subject: "sub-1", SessionID: "sess-1"}
	raw, err := a.app.OIDC.LogoutToken(context.Background(), d)
	if err != nil {
		t.Fatal(err)
	}
	if h := decodeJWTHeader(t, raw); !strings.Contains(h, `"typ":"logout+jwt"`) || !strings.Contains(h, `"alg":"RS256"`) {
		t.Errorf("header %s", h)
	}
	claims := func(raw string) map[string]any {
		parts := strings.Split(raw, ".")
		b, err := base64URLDecode(parts[1])
		if err != nil {
			t.Fatal(err)
		}
		var c map[string]any
		if err := json.Unmarshal(b, &c); err != nil {
			t.Fatal(err)
		}
		return c
	}
	c := claims(raw)
	iat, _ := c["iat"].(float64)
	exp, _ := c["exp"].(float64)
	if c["iss"] != a.srv.URL || c["aud"] != "wiki" || c["sub"] != "sub-1" || c["sid"] != "sess-1" || c["jti"] == "" ||
		int64(iat) != a.clock().Unix() || exp-iat != 120 || c["nonce"] != nil {
		t.Errorf("claims %v", c)
	}
	if ev, _ := c["events"].(map[string]any); ev == nil || ev["http://schemas.openid.net/event/backchannel-logout"] == nil {
		t.Errorf("events %v", c["events"])
	}
	d.SessionID = ""
	raw2, err := a.app.OIDC.LogoutToken(context.Background(), d)
	if err != nil {
		t.Fatal(err)
	}
	if c2 := claims(raw2); c2["sid"] != nil || c2["jti"] == c["jti"] {
		t.Errorf("a sub-only token: %v (first jti %v)", c2, c["jti"])
	}
}

// TestBackchannelLogoutAfterTheAccountIsDeleted: the person deletes their
// account while the app is down; the logouts it is owed (kept about no
// account, with the person's subject) are still sent once the app is
// back, ending its sessions of them, and are pruned once done.
func TestBackchannelLogoutAfterTheAccountIsDeleted(t *testing.T) {
	a := newOIDCApp(t)
	laptop := a.client(uaWindowsChrome, ipBerlin)
	laptop.signup("alice@example.com", "correct horse")
	phone := a.client(uaIPhone, ipLondon)
	phone.login("alice@example.com", "correct horse")
	app := a.newRealRP("wiki")
	laptopSID, phoneSID := app.signIn(laptop), app.signIn(phone)
	sub := subjectOf(t, a, "alice@example.com")
	app.mode.Store(modeDown)

	expectRedirect(t, phone.post("/settings/account/delete", url.Values{"password": {"correct horse"}}), "/login")

	ctx := context.Background()
	orphans := func() []db.LogoutDelivery {
		ds, err := a.store.LogoutDeliveries(ctx, 0, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		return ds
	}
	waitUntil(t, func() bool {
		ds := orphans()
		return len(ds) > 0 && ds[0].Attempts >= 1 && ds[0].State == db.LogoutPending
	})
	if !app.signedIn(laptopSID) || !app.signedIn(phoneSID) {
		t.Fatal("the app's sessions ended while it was down")
	}
	app.mode.Store(modeUp)
	a.advance(time.Minute)
	app.waitLogout(sub, "")
	if app.signedIn(laptopSID) || app.signedIn(phoneSID) {
		t.Errorf("RP sessions left after the deleted account's logout: %+v", app.rp.Sessions())
	}
	waitUntil(t, func() bool {
		for _, d := range orphans() {
			if d.State != db.LogoutDelivered || d.Subject != sub {
				return false
			}
		}
		return true
	})
	if _, err := a.store.PruneLogoutDeliveries(ctx, a.clock().Add(-90*24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if ds := orphans(); len(ds) != 0 {
		t.Fatalf("the deleted account's deliveries outlived pruning: %+v", ds)
	}
}
