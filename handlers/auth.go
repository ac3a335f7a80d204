package handlers

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/mail"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"doorman/db"
	"doorman/paths"
	"doorman/views"
)

const (
	minPasswordChars = 8
	// maxPasswordBytes bounds what we feed argon2; longer is never a real
	// password and only costs us time.
	maxPasswordBytes = 1024
	maxEmailBytes    = 254
	// Sign-in methods recorded on the session row.
	methodPassword = "password"
	methodSignup   = "signup"
	// incorrectCredentials is the only thing a failed sign-in says: never
	// which of the two was wrong, or whether the account exists.
	incorrectCredentials = "Incorrect email or password"
)

// healthz says the process serves; it touches nothing (cheap enough for
// any prober).
func healthz(c echo.Context) error { return c.String(http.StatusOK, "ok\n") }

// readyz says whether the database answers, within 2 seconds: for load
// balancers, to send traffic elsewhere while it does not.
func (a *app) readyz(c echo.Context) error {
	ctx, cancel := context.WithTimeout(c.Request().Context(), 2*time.Second)
	defer cancel()
	if err := a.store.Ping(ctx); err != nil {
		a.log.Warn("not ready", "err", err)
		c.Response().Header().Set("Retry-After", "5")
		return c.String(http.StatusServiceUnavailable, "database unavailable\n")
	}
	return c.String(http.StatusOK, "ready\n")
}

// home sends people where they most likely want to be.
func (a *app) home(c echo.Context) error {
	if authOf(c) != nil {
		return c.Redirect(http.StatusSeeOther, paths.Security)
	}
	return c.Redirect(http.StatusSeeOther, paths.Login)
}

// credentialsForm is the sign-in and sign-up form.
type credentialsForm struct {
	Email, Password, Next     string
	EmailError, PasswordError string
}

// parseCredentialsForm reads and normalises the form. Emails are trimmed and
// lower-cased (one account per mailbox however it is typed) and must be plain
// ASCII addresses: internationalised addresses are refused rather than let
// look-alike characters create a second account that reads like the first.
func parseCredentialsForm(c echo.Context, signup bool) credentialsForm {
	f := credentialsForm{
		Email:    normaliseEmail(formValue(c, "email")),
		Password: formValue(c, "password"),
		Next:     safeNext(formValue(c, "next")),
	}
	f.EmailError = emailError(f.Email)
	switch {
	case f.Password == "":
		f.PasswordError = "Enter your password."
	case signup:
		f.PasswordError = newPasswordProblem(f.Password)
	default:
		f.PasswordError = enteredPasswordProblem(f.Password)
	}
	return f
}

// The password policy, in one place. A new password (sign-up, change) has
// at least minPasswordChars characters; any password, new or typed to prove
// who you are, at most maxPasswordBytes bytes. Both return "" or the
// problem, ready to show next to the field; an empty field is the form's
// own message.

// newPasswordProblem says what is wrong with a new password, or "".
func newPasswordProblem(pw string) string {
	if p := enteredPasswordProblem(pw); p != "" {
		return p
	}
	if utf8.RuneCountInString(pw) < minPasswordChars {
		return fmt.Sprintf("Use at least %d characters.", minPasswordChars)
	}
	return ""
}

// enteredPasswordProblem says what is wrong with a password typed to sign in
// or confirm an action, or "": only one too long to be anyone's.
func enteredPasswordProblem(pw string) string {
	if len(pw) > maxPasswordBytes {
		return fmt.Sprintf("Use at most %d characters.", maxPasswordBytes)
	}
	return ""
}

func normaliseEmail(s string) string { return strings.ToLower(strings.TrimSpace(s)) }

// formValue reads a form field from the request body only, never from the
// query string: credentials in a URL end up in logs, histories and Referer
// headers, and a link must not be able to submit a form.
func formValue(c echo.Context, name string) string { return c.Request().PostFormValue(name) }

// emailError says what is wrong with a normalised email, or "".
func emailError(email string) string {
	switch {
	case email == "":
		return "Enter your email address."
	case len(email) > maxEmailBytes || !validEmail(email):
		return "Enter an email address like name@example.com."
	}
	return ""
}

func (f credentialsForm) valid() bool { return f.EmailError == "" && f.PasswordError == "" }

func validEmail(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return false
		}
	}
	addr, err := mail.ParseAddress(s)
	if err != nil || addr.Address != s || addr.Name != "" {
		return false
	}
	local, domain, ok := strings.Cut(s, "@")
	return ok && local != "" && strings.Contains(domain, ".") && !strings.HasPrefix(domain, ".") && !strings.HasSuffix(domain, ".")
}

// safeNext returns next if it is a path on this site, else "". It must start
// with a single "/" (not "//" or "/\", which browsers treat as another host)
// and carry no scheme or host.
func safeNext(next string) string {
	if next == "" || len(next) > 2048 || !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") {
		return ""
	}
	for i := 0; i < len(next); i++ {
		if next[i] < ' ' || next[i] == 0x7f {
			return ""
		}
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil {
		return ""
	}
	return next
}

func afterSignIn(next string) string {
	if next != "" {
		return next
	}
	return paths.Security
}

func (a *app) authPage(c echo.Context, status int, signup bool, f credentialsForm, formError string) error {
	title := "Sign in"
	if signup {
		title = "Create your account"
	}
	p := views.AuthFormProps{
		Page: a.page(c, title, ""), Signup: signup, Email: f.Email, Next: f.Next,
		EmailError: f.EmailError, PasswordError: f.PasswordError, FormError: formError,
	}
	if a.cfg.Demo {
		p.DemoEmail, p.DemoPassword = a.cfg.DemoEmail, a.cfg.DemoPassword
	}
	p.MailOn = a.mailOn()
	if !signup {
		site := a.passkeySite(c.Request())
		p.Passkey = views.PasskeySignIn{On: site.off == "", Off: site.off, OpenURL: site.openURL, Script: a.assets.Passkeys}
	}
	if r, ok := a.continuesTo(c, f.Next); ok {
		p.ContinueTo = r.App.Name
		if p.Email == "" && !signup {
			p.Email = loginHint(r.LoginHint)
		}
	}
	return a.render(c, status, views.AuthPage(p))
}

func (a *app) signupForm(c echo.Context) error {
	if authOf(c) != nil {
		return c.Redirect(http.StatusSeeOther, paths.Security)
	}
	return a.authPage(c, http.StatusOK, true, credentialsForm{Next: safeNext(c.QueryParam("next"))}, "")
}

func (a *app) loginForm(c echo.Context) error {
	next := safeNext(c.QueryParam("next"))
	if authOf(c) != nil {
		return c.Redirect(http.StatusSeeOther, afterSignIn(next))
	}
	return a.authPage(c, http.StatusOK, false, credentialsForm{Next: next}, "")
}

func (a *app) signup(c echo.Context) error {
	f := parseCredentialsForm(c, true)
	if !f.valid() {
		return a.authPage(c, http.StatusUnprocessableEntity, true, f, "")
	}
	// Every sign-up costs a hash: it counts toward the per-address limit
	// (checked and counted at once, so concurrent ones cannot all pass).
	if wait := a.ipLimit.take(a.clientKey(c), a.now()); wait > 0 {
		return a.throttledAuthPage(c, true, f, wait)
	}
	ctx := c.Request().Context()
	hash, err := a.hasher.Hash(ctx, f.Password)
	if err != nil {
		return fmt.Errorf("signup: hash password: %w", err)
	}
	// The verification mail is queued with the account, in one
	// transaction (UserID 0: the user being created).
	var verify []db.Mail
	if a.mailOn() {
		verify = append(verify, a.verificationMail(db.User{}, f.Email, a.whereFrom(c.Request(), a.now())))
	}
	user, err := a.store.CreateUser(ctx, f.Email, hash, false, a.now(), verify...)
	if errors.Is(err, db.ErrEmailTaken) {
		f.EmailError = "An account with this email already exists. Sign in instead."
		return a.authPage(c, http.StatusUnprocessableEntity, true, f, "")
	}
	if err != nil {
		return fmt.Errorf("signup: %w", err)
	}
	a.log.Info("user created", "user", user.ID)
	a.kickMail(verify)
	if err := a.startSession(c, user, methodSignup); err != nil {
		return err
	}
	a.setDeviceCookie(c, user)
	a.addFlash(c, flashSuccess, "Welcome to Doorman. This is where you see every device signed in to your account.")
	return c.Redirect(http.StatusSeeOther, afterSignIn(f.Next))
}

func (a *app) throttledAuthPage(c echo.Context, signup bool, f credentialsForm, wait time.Duration) error {
	t := throttled{wait}
	t.setHeader(c)
	a.log.Warn("sign-in throttled", "ip", c.RealIP(), "retry_after", wait.Round(time.Second))
	return a.authPage(c, http.StatusTooManyRequests, signup, f, t.message())
}

// login checks, in this order: the form is filled in; the address and the
// account may try again, each counting this attempt at once (before any
// hashing, so a flood is cheap to refuse, and atomically, so a burst sent
// at once gets no more checks than the limits allow); the password, whose
// attempt is given back if it was right. Every failure looks the same from outside: same
// message, same status, same work (a dummy hash for unknown accounts).
//
// The account's counter is the one of this browser's scope (see
// throttle.go): a browser with a valid device cookie for the address is
// counted on its own, apart from every anonymous attempt.
func (a *app) login(c echo.Context) error {
	f := parseCredentialsForm(c, false)
	if f.Email == "" || f.Password == "" || f.PasswordError != "" {
		return a.authPage(c, http.StatusUnprocessableEntity, false, f, "")
	}
	at, wait, err := a.countSignIn(c, f)
	if err != nil {
		return err
	}
	if wait > 0 {
		f.EmailError = ""
		return a.throttledAuthPage(c, false, f, wait)
	}
	// right: the password was right (or never checked): the attempt is no
	// failure.
	right := func() {
		a.ipLimit.giveBack(at.client, at.ipAt)
		a.release(c, at.try)
	}
	fail := func(reason string, userID int64) error {
		a.log.Info("sign-in failed", "reason", reason, "user", userID, "ip", c.RealIP(), "trusted_device", at.try.scope != scopeAnonymous)
		f.EmailError = ""
		return a.authPage(c, http.StatusUnauthorized, false, f, incorrectCredentials)
	}
	ctx := c.Request().Context()
	if f.EmailError != "" {
		// A malformed address can't be an account: same answer as any
		// other wrong credentials, after the same work.
		a.hasher.VerifyDummy(ctx, f.Password)
		return fail("malformed email", 0)
	}
	if !at.known {
		a.hasher.VerifyDummy(ctx, f.Password)
		return fail("unknown account", 0)
	}
	ok, err := a.hasher.Verify(ctx, at.user.PasswordHash, f.Password)
	if err != nil {
		right() // never checked
		return fmt.Errorf("login: verify password: %w", err)
	}
	if !ok {
		a.recordEvent(c, db.SecurityEvent{UserID: at.user.ID, Kind: db.EventSignInFailed})
		return fail("wrong password", at.user.ID)
	}
	right()
	return a.signInWithPassword(c, f, at)
}

// signInAttempt is one sign-in counted against both failure limits: its
// client address's (in memory, per instance) and its account's (in the
// database), with the user the address names, if any.
type signInAttempt struct {
	client  string    // the client address's key
	ipAt    time.Time // when it was counted against the address
	account string    // the account's key ("" for a malformed address)
	try     attempt   // the guess reserved against the account
	user    db.User
	known   bool // an account uses the address
}

// countSignIn counts sign-in f against both limits at once, before the
// hash; a right password gives both back (login's right). wait > 0: one of
// them is full, and the attempt is counted against neither.
func (a *app) countSignIn(c echo.Context, f credentialsForm) (signInAttempt, time.Duration, error) {
	// The address first: a flood past its limit costs no database work.
	at := signInAttempt{client: a.clientKey(c), ipAt: a.now()}
	if wait := a.ipLimit.take(at.client, at.ipAt); wait > 0 {
		return at, wait, nil
	}
	// Input that is not a valid address is counted per address only: it
	// can be no account, and it is never stored. The user is read before
	// the account's count: the device cookie is checked against the
	// account's current epoch. An unknown address costs the same read and
	// is counted the same way.
	scope := scopeAnonymous
	if f.EmailError == "" {
		at.account = a.accountKey(f.Email)
		user, err := a.store.UserByEmail(c.Request().Context(), f.Email)
		switch {
		case err == nil:
			at.user, at.known = user, true
			scope = a.signInScope(c, &at.user)
		case !errors.Is(err, db.ErrNotFound):
			a.ipLimit.giveBack(at.client, at.ipAt)
			return at, 0, fmt.Errorf("login: %w", err)
		}
	}
	try, wait, err := a.reserveGuess(c, at.account, "", scope)
	if err != nil {
		a.ipLimit.giveBack(at.client, at.ipAt)
		return at, 0, fmt.Errorf("login: %w", err)
	}
	if wait > 0 {
		a.ipLimit.giveBack(at.client, at.ipAt)
		return at, wait, nil
	}
	at.try = try
	return at, 0, nil
}

// signInWithPassword signs in at's user, whose password f holds and was
// right: on to the second factor if it is on, else with a new session.
func (a *app) signInWithPassword(c echo.Context, f credentialsForm, at signInAttempt) error {
	user := at.user
	if user.Disabled() {
		// Said only to someone who knows the password.
		a.log.Info("sign-in refused", "reason", "user disabled", "user", user.ID)
		return a.authPage(c, http.StatusForbidden, false, f, "This account has been disabled. Contact the people who run this site.")
	}
	// A trusted browser's own count starts again; the anonymous count is
	// left to age out, so a success here gives a guesser elsewhere nothing.
	if at.try.scope != scopeAnonymous {
		if err := a.store.ClearLoginFailures(c.Request().Context(), at.account, at.try.scope); err != nil {
			a.log.Error("clear login failures", "err", err)
		}
	}
	tf, err := a.twoFactorState(c, user.ID)
	if err != nil {
		return fmt.Errorf("login: %w", err)
	}
	if tf.Enabled() {
		return a.startPending(c, user, f.Next)
	}
	err = a.startSession(c, user, methodPassword)
	if errors.Is(err, db.ErrSignInsReset) {
		// The password was changed, or every session ended, while this
		// sign-in was checking the password: it must not outlive that.
		a.log.Info("sign-in refused", "reason", "sign-ins reset while in flight", "user", user.ID)
		return a.authPage(c, http.StatusConflict, false, f, "Your account's sessions were just reset (for example, the password was changed). Please sign in again.")
	}
	if err != nil {
		return err
	}
	a.setDeviceCookie(c, user)
	return c.Redirect(http.StatusSeeOther, afterSignIn(f.Next))
}

// startSession signs the browser in as user with a brand-new session (any
// earlier session of this browser is ended first) and says so if the session
// limit made room.
func (a *app) startSession(c echo.Context, user db.User, method string) error {
	evicted, err := a.sessions.Start(c, user, method)
	if err != nil {
		return err
	}
	a.signedIn(c, evicted)
	return nil
}

// signedIn drops notices meant for the browser's earlier session and says
// so if the session limit made room for this one.
func (a *app) signedIn(c echo.Context, evicted []db.Session) {
	// A notice about the browser's previous session ("You were signed out
	// of this device") is moot once it has signed in again.
	a.flashState(c).pending = nil
	if len(evicted) > 0 {
		e := evicted[0]
		a.addFlash(c, flashNotice, fmt.Sprintf("You were signed in on %d devices, the most Doorman keeps, so the one used least recently (%s, %s) was signed out.",
			a.cfg.MaxSessionsPerUser, e.DeviceLabel, e.Location))
	}
}

func (a *app) logout(c echo.Context) error {
	if au := authOf(c); au != nil {
		if err := a.sessions.End(c, au); err != nil {
			return err
		}
		a.addFlash(c, flashSuccess, "You signed out.")
	}
	// next (a path on this site) is where to go on: an app's sign-in
	// whose consent page offered "Not you? Use another account" comes
	// back to its step, which asks for a sign-in.
	if next := safeNext(formValue(c, "next")); next != "" {
		return c.Redirect(http.StatusSeeOther, next)
	}
	return c.Redirect(http.StatusSeeOther, paths.Login)
}
