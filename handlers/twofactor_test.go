package handlers_test

import (
	"bytes"
	"context"
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp"

	"doorman/operator"
	"doorman/twofactor"
)

// turnOnTwoFactor sets two-factor up for the signed-in browser c the way a
// person does: password, read the secret off the page, enter a code. It
// returns the secret and the recovery codes shown.
func turnOnTwoFactor(t *testing.T, c *client, signOutOthers bool) (secret string, codes []string) {
	t.Helper()
	// Two-factor is turned on only for a verified address: open the
	// verification link the sign-up sent, if the page asks for it.
	if m := verifyFirstRE.FindStringSubmatch(c.get("/settings/security/two-factor").body); m != nil {
		c.verifyEmail(m[1])
	}
	expectRedirect(t, c.post("/settings/security/two-factor/setup", url.Values{"password": {pw}}), "/settings/security/two-factor")
	page := c.get("/settings/security/two-factor")
	expectStatus(t, page, http.StatusOK)
	m := regexp.MustCompile(`data-otpauth="([^"]+)"`).FindStringSubmatch(page.body)
	if m == nil {
		t.Fatalf("no data-otpauth on the setup page:\n%s", snippet(page.body))
	}
	key, err := otp.NewKeyFromURL(html.UnescapeString(m[1]))
	if err != nil {
		t.Fatal(err)
	}
	if key.Issuer() != "Doorman" || key.Period() != 30 || key.Digits() != otp.DigitsSix || key.Algorithm() != otp.AlgorithmSHA1 {
		t.Fatalf("otpauth URI %s", key.URL())
	}
	if !strings.Contains(page.body, twofactor.Grouped(key.Secret())) {
		t.Fatal("the secret is not shown in groups for typing")
	}
	form := url.Values{"code": {codeAt(t, key.Secret(), c.app.clock())}}
	if signOutOthers {
		form.Set("sign_out_others", "on")
	}
	res := c.post("/settings/security/two-factor/enable", form)
	expectStatus(t, res, http.StatusOK)
	list := regexp.MustCompile(`(?s)data-recovery-codes>(.*?)</ol>`).FindStringSubmatch(res.body)
	if list == nil {
		t.Fatalf("no recovery codes shown:\n%s", snippet(res.body))
	}
	for _, m := range regexp.MustCompile(`<code>([a-z0-9-]+)</code>`).FindAllStringSubmatch(list[1], -1) {
		codes = append(codes, m[1])
	}
	if len(codes) != 10 {
		t.Fatalf("%d recovery codes", len(codes))
	}
	return key.Secret(), codes
}

// verifyFirstRE finds the address the two-factor page asks to verify first.
var verifyFirstRE = regexp.MustCompile(`data-verify-first>Two-factor can be turned on once your email address, ([^,<]+), is verified`)

// verifyEmail opens the verification link sent to email (by the sign-up)
// in this browser.
func (c *client) verifyEmail(email string) {
	c.t.Helper()
	res := c.follow(c.app.link(c.app.mail(email, "Confirm your email address"), "/email/verify"))
	expectStatus(c.t, res, http.StatusOK)
	expectBody(c.t, res, email+" is verified")
}

func codeAt(t *testing.T, secret string, at time.Time) string {
	t.Helper()
	code, err := twofactor.Code(secret, twofactor.Step(at))
	if err != nil {
		t.Fatal(err)
	}
	return code
}

// passwordStep signs in with the password and expects the second step.
func (c *client) passwordStep(email string) {
	c.t.Helper()
	expectRedirect(c.t, c.post("/login", url.Values{"email": {email}, "password": {pw}}), "/login/two-factor")
	if c.sessionCookie() != "" {
		c.t.Fatal("a session cookie before the second factor")
	}
}

func TestTwoFactorOnAndSignIn(t *testing.T) {
	app := newTestApp(t)
	desktop, phone := app.client(uaWindowsChrome, ipBerlin), app.client(uaIPhone, ipLondon)
	desktop.signup("alice@example.com", pw)
	desktop.verifyEmail("alice@example.com")
	phone.login("alice@example.com", pw)
	app.advance(11 * time.Minute) // past both sessions' sudo window

	expectBody(t, desktop.get("/settings/security"), "Two-factor authentication", "Set up two-factor")
	// Setup always asks for the password; a wrong one changes nothing.
	res := desktop.post("/settings/security/two-factor/setup", url.Values{"password": {"wrong password"}})
	expectStatus(t, res, http.StatusUnprocessableEntity)
	expectBody(t, res, "Incorrect password")
	expectNoBody(t, desktop.get("/settings/security/two-factor"), "data-otpauth")
	// Another session of the account (no password entered) never sees a
	// setup in progress, nor its QR code.
	expectRedirect(t, desktop.post("/settings/security/two-factor/setup", url.Values{"password": {pw}}), "/settings/security/two-factor")
	expectNoBody(t, phone.get("/settings/security/two-factor"), "data-otpauth")
	expectStatus(t, phone.get("/settings/security/two-factor/qr.png"), http.StatusNotFound)

	res = desktop.get("/settings/security/two-factor/qr.png")
	expectStatus(t, res, http.StatusOK)
	if res.Header.Get("Content-Type") != "image/png" || !strings.HasPrefix(res.body, "\x89PNG") || res.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("QR: %v %q", res.Header, res.body[:8])
	}
	// A wrong code does not turn it on.
	res = desktop.post("/settings/security/two-factor/enable", url.Values{"code": {"000000"}})
	expectStatus(t, res, http.StatusUnprocessableEntity)
	expectBody(t, res, "That code didn")
	secret, _ := turnOnTwoFactor(t, desktop, true)
	// "Sign out other sessions" was on: the phone is signed out.
	expectRedirect(t, phone.get("/settings"), "/login?next=%2Fsettings")
	expectBody(t, desktop.get("/settings/security"), "Manage two-factor")

	// Signing in now: the password gives a pending sign-in only.
	laptop := app.client(uaMacFirefox, ipTokyo)
	laptop.passwordStep("alice@example.com")
	expectRedirect(t, laptop.get("/settings"), "/login?next=%2Fsettings") // grants nothing
	expectBody(t, laptop.get("/login/two-factor"), "alice@example.com", `autocomplete="one-time-code"`)
	res = laptop.post("/login/two-factor", url.Values{"code": {"123456"}})
	expectStatus(t, res, http.StatusUnauthorized)
	expectBody(t, res, "That code didn")
	// The enable step used this step's code: it cannot be used again.
	res = laptop.post("/login/two-factor", url.Values{"code": {codeAt(t, secret, app.clock())}})
	expectStatus(t, res, http.StatusUnauthorized)
	app.advance(30 * time.Second)
	code := codeAt(t, secret, app.clock())
	expectRedirect(t, laptop.post("/login/two-factor", url.Values{"code": {code[:3] + " " + code[3:]}}), "/settings/security")
	expectStatus(t, laptop.get("/settings"), http.StatusOK)
	if laptop.cookie("doorman_pending") != "" {
		t.Fatal("the pending cookie outlived the sign-in")
	}
	expectBody(t, laptop.get("/settings/security/sessions/"+laptop.currentID()), "Password and authenticator app")

	// The same code, on another browser within its step: refused (replay).
	thief := app.client(uaIPhone, ipLondon)
	thief.passwordStep("alice@example.com")
	expectStatus(t, thief.post("/login/two-factor", url.Values{"code": {code}}), http.StatusUnauthorized)
	// The next step's code works.
	app.advance(30 * time.Second)
	expectRedirect(t, thief.post("/login/two-factor", url.Values{"code": {codeAt(t, secret, app.clock())}}), "/settings/security")
}

func TestTwoFactorRecoveryCode(t *testing.T) {
	app := newTestApp(t)
	desktop := app.client(uaWindowsChrome, ipBerlin)
	desktop.signup("alice@example.com", pw)
	_, codes := turnOnTwoFactor(t, desktop, false)

	phone := app.client(uaIPhone, ipLondon)
	phone.passwordStep("alice@example.com")
	res := phone.post("/login/two-factor", url.Values{"code": {strings.ToUpper(codes[3])}})
	expectRedirect(t, res, "/settings/security")
	expectBody(t, phone.get("/settings/security"), "9 codes left")
	expectBody(t, phone.get("/settings/security/sessions/"+phone.currentID()), "Password and recovery code")
	expectBody(t, desktop.get("/settings/security/two-factor"), "9 of 10 recovery codes left")

	// Used once: refused the second time.
	other := app.client(uaMacFirefox, ipTokyo)
	other.passwordStep("alice@example.com")
	expectStatus(t, other.post("/login/two-factor", url.Values{"code": {codes[3]}}), http.StatusUnauthorized)
	expectRedirect(t, other.post("/login/two-factor", url.Values{"code": {codes[4]}}), "/settings/security")
}

func TestTwoFactorPendingSignInLimits(t *testing.T) {
	app := newTestApp(t)
	desktop := app.client(uaWindowsChrome, ipBerlin)
	desktop.signup("alice@example.com", pw)
	secret, _ := turnOnTwoFactor(t, desktop, false)
	app.advance(30 * time.Second)

	// Five minutes, then the password again.
	late := app.client(uaIPhone, ipLondon)
	late.passwordStep("alice@example.com")
	app.advance(5 * time.Minute)
	res := late.post("/login/two-factor", url.Values{"code": {codeAt(t, secret, app.clock())}})
	expectRedirect(t, res, "/login")
	expectBody(t, late.get("/login"), "took too long")
	expectRedirect(t, late.get("/settings"), "/login?next=%2Fsettings")

	// Five wrong codes end the pending sign-in: the right one after is
	// refused, and the password must be entered again.
	guesser := app.client(uaMacFirefox, ipTokyo)
	guesser.passwordStep("alice@example.com")
	for i := range 4 {
		expectStatus(t, guesser.post("/login/two-factor", url.Values{"code": {"00000" + string(rune('0'+i))}}), http.StatusUnauthorized)
	}
	expectRedirect(t, guesser.post("/login/two-factor", url.Values{"code": {"111111"}}), "/login")
	expectBody(t, guesser.get("/login"), "Too many wrong codes")
	expectRedirect(t, guesser.post("/login/two-factor", url.Values{"code": {codeAt(t, secret, app.clock())}}), "/login")

	// A forged or garbage pending cookie: back to the password, no 500.
	forger := app.client(uaMacFirefox, ipTokyo)
	u, _ := url.Parse(app.srv.URL)
	for _, v := range []string{"x", "abcdefghijklmnop.AAAA", strings.Repeat("A", 300)} {
		forger.jar.SetCookies(u, []*http.Cookie{{Name: "doorman_pending", Value: v, Path: "/"}})
		expectRedirect(t, forger.post("/login/two-factor", url.Values{"code": {"123456"}}), "/login")
	}
	if strings.Contains(app.logs.String(), "status=500") {
		t.Fatal("a 500")
	}
}

// TestTwoFactorStrangerCannotLockOut: someone who has the password floods
// wrong codes from their own browsers until they are throttled; the owner,
// on a browser that signed in before, still signs in with a code.
func TestTwoFactorStrangerCannotLockOut(t *testing.T) {
	app := newTestApp(t)
	owner := app.client(uaWindowsChrome, ipBerlin)
	owner.signup("alice@example.com", pw)
	secret, _ := turnOnTwoFactor(t, owner, false)
	expectRedirect(t, owner.post("/logout", nil), "/login")

	throttled := false
	for i := 0; i < 30 && !throttled; i++ {
		attacker := app.client(uaMacFirefox, ipTokyo)
		attacker.passwordStep("alice@example.com")
		for range 4 {
			res := attacker.post("/login/two-factor", url.Values{"code": {"999999"}})
			if res.StatusCode == http.StatusTooManyRequests {
				throttled = true
				break
			}
			expectStatus(t, res, http.StatusUnauthorized)
		}
	}
	if !throttled {
		t.Fatal("wrong codes were never throttled")
	}
	app.advance(30 * time.Second)
	owner.passwordStep("alice@example.com")
	expectRedirect(t, owner.post("/login/two-factor", url.Values{"code": {codeAt(t, secret, app.clock())}}), "/settings/security")
}

func TestTwoFactorOffAndNewCodes(t *testing.T) {
	app := newTestApp(t)
	desktop := app.client(uaWindowsChrome, ipBerlin)
	desktop.signup("alice@example.com", pw)
	secret, codes := turnOnTwoFactor(t, desktop, false)
	app.advance(30 * time.Second)

	// New recovery codes: password and a current code; the old ones die.
	res := desktop.post("/settings/security/two-factor/recovery-codes", url.Values{"password": {pw}, "code": {"123456"}})
	expectStatus(t, res, http.StatusUnprocessableEntity)
	res = desktop.post("/settings/security/two-factor/recovery-codes", url.Values{"password": {pw}, "code": {codeAt(t, secret, app.clock())}})
	expectStatus(t, res, http.StatusOK)
	expectBody(t, res, "data-recovery-codes", "New recovery codes")
	other := app.client(uaIPhone, ipLondon)
	other.passwordStep("alice@example.com")
	expectStatus(t, other.post("/login/two-factor", url.Values{"code": {codes[0]}}), http.StatusUnauthorized)

	// Off: needs the password too, then a code; then sign-in is password only.
	app.advance(30 * time.Second)
	res = desktop.post("/settings/security/two-factor/disable", url.Values{"password": {"wrong password"}, "code": {codeAt(t, secret, app.clock())}})
	expectStatus(t, res, http.StatusUnprocessableEntity)
	expectBody(t, desktop.get("/settings/security/two-factor"), "Turn off two-factor")
	expectRedirect(t, desktop.post("/settings/security/two-factor/disable", url.Values{"password": {pw}, "code": {codeAt(t, secret, app.clock())}}), "/settings/security/two-factor")
	expectBody(t, desktop.get("/settings/security/two-factor"), "Set up two-factor")
	app.client(uaMacFirefox, ipTokyo).login("alice@example.com", pw)
	// A pending sign-in from before it was turned off finishes with the
	// password alone (that is all that is asked now).
	expectRedirect(t, other.post("/login/two-factor", url.Values{"code": {"000000"}}), "/settings/security")
}

// TestOperatorResetsTwoFactor: `doorman users reset-2fa` (the phone and the
// recovery codes are lost) turns it off and, since someone else may hold
// the account, ends every session and token and resets the sign-ins; then
// the password alone signs in.
func TestOperatorResetsTwoFactor(t *testing.T) {
	app := newTestApp(t)
	desktop := app.client(uaWindowsChrome, ipBerlin)
	desktop.signup("alice@example.com", pw)
	turnOnTwoFactor(t, desktop, false)
	token := app.apiClient(t, desktop.createToken("script", "30", "sessions:read"))
	pending := app.client(uaIPhone, ipLondon)
	pending.passwordStep("alice@example.com")

	var out bytes.Buffer
	err := operator.Run(context.Background(), []string{"users", "reset-2fa", "alice@example.com", "-db", app.dbPath},
		func(string) string { return "" }, &out, slog.New(slog.NewTextHandler(io.Discard, nil)), app.clock)
	if err != nil || !strings.Contains(out.String(), "Turned two-factor off for alice@example.com and ended 1 session(s) and 1 app or access token(s)") {
		t.Fatalf("reset-2fa: %v %s", err, out.String())
	}
	expectRedirect(t, desktop.get("/settings"), "/login?next=%2Fsettings")
	res, body := token.call(http.MethodGet, "/api/v1/sessions")
	expectProblem(t, res, body, http.StatusUnauthorized, "invalid_token")
	// A sign-in that was waiting for its code when the reset happened does
	// not become a session (every sign-in before the reset is void).
	expectRedirect(t, pending.post("/login/two-factor", url.Values{"code": {"000000"}}), "/login")
	expectRedirect(t, pending.get("/settings"), "/login?next=%2Fsettings")
	app.client(uaMacFirefox, ipTokyo).login("alice@example.com", pw)
}
