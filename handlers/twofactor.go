package handlers

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"doorman/db"
	"doorman/paths"
	"doorman/sessiontoken"
	"doorman/twofactor"
	"doorman/views"
)

const (
	// pendingLifetime is how long a sign-in may wait for its second factor.
	pendingLifetime = 5 * time.Minute
	// pendingFailureLimit wrong codes end a pending sign-in: the password
	// must be entered again (and is counted again).
	pendingFailureLimit = 5
	// setupWindow is how long after entering the password a session is
	// shown the secret of the setup it started (and may confirm it). Not
	// the sudo window: an operator may set that to 0 ("always ask").
	setupWindow = 10 * time.Minute
	// scopeSecondFactor prefixes the counters of wrong codes per account,
	// kept apart per browser like the password's (scopeAnonymous, a device
	// cookie, a session): someone who knows the password and floods wrong
	// codes from their browser fills their own count, never the owner's.
	scopeSecondFactor = "2fa:"
)

// verifyFirst is what a refused setup says: two-factor is turned on only
// for a verified address.
const verifyFirst = "Verify your email address first: two-factor can be turned on once the link we sent to it has been opened."

// needsVerifiedEmail reports whether the user must verify the account's
// address before turning two-factor on. Someone who signs up with another
// person's address and turns two-factor on would lock that person out: a
// password reset from their mailbox would still ask for the squatter's
// code. Without mail there is no verification and no reset by mail either,
// so nothing to require.
func (a *app) needsVerifiedEmail(u db.User) bool { return a.mailOn() && !u.EmailVerified() }

// twoFactorPurpose binds a sealed secret to its user's row.
func twoFactorPurpose(userID int64) string { return "two-factor user " + strconv.FormatInt(userID, 10) }

// settingUp reports whether this session may see and confirm the user's
// pending setup: it entered the password within setupWindow.
func (a *app) settingUp(au *authInfo, tf db.TwoFactor) bool {
	return !tf.Enabled() && tf.SecretSealed != "" && a.now().Sub(au.Session.ReauthAt) < setupWindow
}

// twoFactorState is the user's two-factor row, the zero TwoFactor when
// there is none.
func (a *app) twoFactorState(c echo.Context, userID int64) (db.TwoFactor, error) {
	tf, err := a.store.TwoFactor(c.Request().Context(), userID)
	if errors.Is(err, db.ErrNotFound) {
		return db.TwoFactor{}, nil
	}
	return tf, err
}

// errNoSecretKey is the answer when a code must be checked (or recovery
// codes made) on a server started without the secret key: a 503, fresh
// each time (an *echo.HTTPError is mutable).
func errNoSecretKey() error {
	return echo.NewHTTPError(http.StatusServiceUnavailable, "Doorman can't check two-factor codes right now: this server has no secret key. Please try again later.")
}

// openSecret decrypts the user's TOTP secret. Without the key it was sealed
// with (another key file on this instance) the database is fine but codes
// cannot be checked: a 503 that says so, not a 500.
func (a *app) openSecret(tf db.TwoFactor) (string, error) {
	if a.box == nil {
		return "", errNoSecretKey()
	}
	secret, err := a.box.Open(tf.SecretSealed, twoFactorPurpose(tf.UserID))
	if err != nil {
		a.log.Error("open two-factor secret", "user", tf.UserID, "err", err)
		return "", echo.NewHTTPError(http.StatusServiceUnavailable, "Doorman can't check two-factor codes right now. Please try again later.").SetInternal(err)
	}
	return string(secret), nil
}

// twoFactorPage shows the state: off, being set up (only to a session that
// entered the password within setupWindow: the secret is shown to the
// browser that just proved it is the owner, not to any session of the
// account), or on.
func (a *app) twoFactorPage(c echo.Context) error {
	return a.renderTwoFactor(c, http.StatusOK, views.TwoFactorProps{})
}

func (a *app) renderTwoFactor(c echo.Context, status int, p views.TwoFactorProps) error {
	au := authOf(c)
	tf, err := a.twoFactorState(c, au.User.ID)
	if err != nil {
		return fmt.Errorf("two-factor page: %w", err)
	}
	p.Page = a.page(c, "Two-factor authentication", "security")
	switch {
	case tf.Enabled():
		p.On = true
		p.RecoveryLeft = fmt.Sprintf("%d of %d recovery codes left", tf.RecoveryLeft, twofactor.RecoveryCodes)
	case a.needsVerifiedEmail(au.User) && a.box != nil:
		// Before the setup's secret: a setup started before the address
		// stopped being verified is not shown (nor can it be finished).
		p.VerifyFirst, p.Email = true, au.User.Email
	case a.settingUp(au, tf):
		secret, err := a.openSecret(tf)
		if err != nil {
			return err
		}
		p.SettingUp, p.QRURL = true, paths.TwoFactorQR
		p.SecretGrouped, p.URI = twofactor.Grouped(secret), twofactor.URI(secret, au.User.Email)
		others, err := a.otherSessions(c, au, a.now())
		if err != nil {
			return fmt.Errorf("two-factor page: %w", err)
		}
		if len(others) > 0 {
			p.OthersCount = plural(len(others), "other session")
		}
	case a.box == nil:
		p.Unavailable = "Two-factor authentication isn't available on this server yet: whoever runs it must give it a secret key (-secret-key-file)."
	}
	return a.render(c, status, views.TwoFactorPage(p))
}

// twoFactorQR is the setup's QR code, for the same browser the secret page
// is shown to. It never leaves the origin (the CSP allows no other images).
func (a *app) twoFactorQR(c echo.Context) error {
	au := authOf(c)
	tf, err := a.twoFactorState(c, au.User.ID)
	if err != nil {
		return fmt.Errorf("two-factor QR: %w", err)
	}
	if !a.settingUp(au, tf) {
		return echo.NewHTTPError(http.StatusNotFound, "There is no two-factor setup in progress.")
	}
	secret, err := a.openSecret(tf)
	if err != nil {
		return err
	}
	png, err := twofactor.QR(twofactor.URI(secret, au.User.Email), 400)
	if err != nil {
		return fmt.Errorf("two-factor QR: %w", err)
	}
	return c.Blob(http.StatusOK, "image/png", png)
}

// twoFactorSetup starts a setup (the password is always asked): a new
// secret, sealed, pending until a code from it is entered.
func (a *app) twoFactorSetup(c echo.Context) error {
	au := authOf(c)
	if a.box == nil {
		return echo.NewHTTPError(http.StatusServiceUnavailable, "Two-factor authentication isn't available on this server yet.")
	}
	if a.needsVerifiedEmail(au.User) {
		return a.renderTwoFactor(c, http.StatusUnprocessableEntity, views.TwoFactorProps{Form: "setup", VerifyError: verifyFirst})
	}
	if g := a.confirmPassword(c, au, "password"); !g.passed() {
		return g.refuse(func(problem *passwordProblem) error {
			return a.renderTwoFactor(c, problem.status, views.TwoFactorProps{Form: "setup", PasswordError: problem.text})
		})
	}
	secret := twofactor.NewSecret()
	err := a.store.StartTwoFactor(c.Request().Context(), au.User.ID, a.box.Seal([]byte(secret), twoFactorPurpose(au.User.ID)), a.now())
	if errors.Is(err, db.ErrTwoFactorEnabled) {
		a.addFlash(c, flashNotice, "Two-factor authentication is already on.")
		return c.Redirect(http.StatusSeeOther, paths.TwoFactor)
	}
	if err != nil {
		return fmt.Errorf("two-factor setup: %w", err)
	}
	a.log.Info("two-factor setup started", "user", au.User.ID, "session", au.Session.ID)
	return c.Redirect(http.StatusSeeOther, paths.TwoFactor)
}

// twoFactorEnable confirms the setup with a code from the app, then shows
// the recovery codes, once.
func (a *app) twoFactorEnable(c echo.Context) error {
	au := authOf(c)
	tf, err := a.twoFactorState(c, au.User.ID)
	if err != nil {
		return fmt.Errorf("two-factor enable: %w", err)
	}
	if !a.settingUp(au, tf) {
		a.addFlash(c, flashNotice, "The setup took too long or was finished elsewhere. Please start again.")
		return c.Redirect(http.StatusSeeOther, paths.TwoFactor)
	}
	// A setup started before the address stopped being verified (changed
	// meanwhile) is not finished either.
	if a.needsVerifiedEmail(au.User) {
		return a.renderTwoFactor(c, http.StatusUnprocessableEntity, views.TwoFactorProps{Form: "setup", VerifyError: verifyFirst})
	}
	secret, err := a.openSecret(tf)
	if err != nil {
		return err
	}
	step, ok := twofactor.Match(secret, formValue(c, "code"), a.now())
	if !ok {
		return a.renderTwoFactor(c, http.StatusUnprocessableEntity, views.TwoFactorProps{Form: "enable",
			CodeError: "That code didn't match. Enter the 6-digit code your app shows now (check that your phone's time is set automatically)."})
	}
	// a.box is set: openSecret above needs it.
	codes, hashes := twofactor.NewRecoveryCodes(a.box, au.User.ID)
	notice := a.securityNotice(c, au.User, paths.TwoFactor, a.mails.TwoFactorOn)
	if err := a.store.EnableTwoFactor(a.acting(c), au.User.ID, tf.SecretSealed, step, hashes, a.now(), notice...); err != nil {
		if errors.Is(err, db.ErrNotFound) || errors.Is(err, db.ErrTwoFactorEnabled) {
			a.addFlash(c, flashNotice, "The setup was finished or replaced elsewhere. Please check and start again if needed.")
			return c.Redirect(http.StatusSeeOther, paths.TwoFactor)
		}
		return fmt.Errorf("two-factor enable: %w", err)
	}
	a.kickMail(notice)
	a.log.Info("two-factor enabled", "user", au.User.ID, "session", au.Session.ID)
	p := views.RecoveryCodesProps{Page: a.page(c, "Two-factor is on", "security"), Codes: codes, Enabled: true}
	if formValue(c, "sign_out_others") == "on" {
		ended, _, err := a.sessions.EndOthers(c, au, db.ReasonTwoFactor, false)
		if err != nil {
			return err
		}
		if len(ended) > 0 {
			p.SignedOut = "Signed out " + plural(len(ended), "other session") + "."
		}
	}
	return a.render(c, http.StatusOK, views.RecoveryCodesPage(p))
}

// checkCode checks a code from the app or a recovery code for user: a TOTP
// code counts once (its time step is recorded atomically, so a code seen
// over someone's shoulder, or sent twice, or checked by two instances at
// once, works at most once), a recovery code is used up. method is how the
// user proved it; ok false when the code was wrong. try is the attempt the
// caller reserved before (see reserve): it stays counted unless the code
// was right.
func (a *app) checkCode(c echo.Context, tf db.TwoFactor, code string, try attempt) (method string, left int, ok bool, err error) {
	method, left, ok, err = a.matchCode(c, tf, code)
	if ok || err != nil {
		a.release(c, try)
	}
	return method, left, ok, err
}

// matchCode is checkCode without the counting.
func (a *app) matchCode(c echo.Context, tf db.TwoFactor, code string) (method string, left int, ok bool, err error) {
	ctx := c.Request().Context()
	if twofactor.IsRecoveryCode(code) {
		// Recovery codes are stored keyed with the secret key: without it
		// no code can be checked (as for app codes), and a right code must
		// not count as a wrong one.
		if a.box == nil {
			return "", 0, false, errNoSecretKey()
		}
		// The mail saying a recovery code was used is queued with the use
		// (only if one was): the owner learns of it even if it wasn't them.
		var notice []db.Mail
		if a.mailOn() {
			user, err := a.store.UserByID(ctx, tf.UserID)
			if err != nil {
				return "", 0, false, fmt.Errorf("use recovery code: %w", err)
			}
			m := a.mails.RecoveryCodeUsed(user.Email, a.whereFrom(c.Request(), a.now()), max(tf.RecoveryLeft-1, 0), a.mailURL(paths.TwoFactor))
			m.UserID = user.ID
			notice = append(notice, m)
		}
		left, ok, err = a.store.UseRecoveryCode(ctx, tf.UserID, twofactor.RecoveryHashes(a.box, tf.UserID, code), a.now(), notice...)
		if err != nil {
			return "", 0, false, fmt.Errorf("use recovery code: %w", err)
		}
		if ok {
			a.kickMail(notice)
			a.log.Info("recovery code used", "user", tf.UserID, "left", left)
			return db.MethodPasswordRecovery, left, true, nil
		}
	} else {
		secret, err := a.openSecret(tf)
		if err != nil {
			return "", 0, false, err
		}
		if step, match := twofactor.Match(secret, code, a.now()); match {
			ok, err = a.store.AcceptTOTPStep(ctx, tf.UserID, step)
			if err != nil {
				return "", 0, false, fmt.Errorf("accept code: %w", err)
			}
			if ok {
				return db.MethodPasswordTOTP, tf.RecoveryLeft, true, nil
			}
			a.log.Info("two-factor code replayed", "user", tf.UserID)
		}
	}
	a.recordEvent(c, db.SecurityEvent{UserID: tf.UserID, Kind: db.EventTwoFactorFailed})
	a.log.Info("two-factor code wrong", "user", tf.UserID, "ip", c.RealIP())
	return "", 0, false, nil
}

const wrongCode = "That code didn't work. Enter the code your app shows now, or an unused recovery code."

// confirmWithCode is the check that turning two-factor off and replacing
// the recovery codes need: the password (always) and a current code. It
// passes when both are nil; refused is the answer for the caller to give,
// and err is an error, never a page.
func (a *app) confirmWithCode(c echo.Context, form string) (refused *twoFactorRefusal, err error) {
	au := authOf(c)
	tf, err := a.twoFactorState(c, au.User.ID)
	if err != nil {
		return nil, err
	}
	if !tf.Enabled() {
		return &twoFactorRefusal{off: true}, nil
	}
	try, wait, err := a.reserveGuess(c, a.accountKey(au.User.Email), scopeSecondFactor, scopeSession+au.Session.ID)
	if err != nil {
		return nil, err
	}
	if wait > 0 {
		t := throttled{wait}
		t.setHeader(c)
		return &twoFactorRefusal{status: http.StatusTooManyRequests, props: views.TwoFactorProps{Form: form, CodeError: t.message()}}, nil
	}
	if g := a.confirmPassword(c, au, "password"); !g.passed() {
		a.release(c, try) // the code was never checked
		if g.err != nil {
			return nil, g.err
		}
		return &twoFactorRefusal{status: g.problem.status, props: views.TwoFactorProps{Form: form, PasswordError: g.problem.text}}, nil
	}
	if _, _, ok, err := a.checkCode(c, tf, formValue(c, "code"), try); !ok {
		if err != nil {
			return nil, err
		}
		return &twoFactorRefusal{status: http.StatusUnprocessableEntity, props: views.TwoFactorProps{Form: form, CodeError: wrongCode}}, nil
	}
	return nil, nil
}

// twoFactorRefusal is why confirmWithCode did not pass: off (two-factor is
// off already, so there is nothing to confirm), or the form to show again
// with its error, answered with status.
type twoFactorRefusal struct {
	off    bool
	status int
	props  views.TwoFactorProps
}

// refuseTwoFactor answers a request that confirmWithCode refused.
func (a *app) refuseTwoFactor(c echo.Context, r *twoFactorRefusal) error {
	if r.off {
		a.addFlash(c, flashNotice, "Two-factor authentication is off.")
		return c.Redirect(http.StatusSeeOther, paths.TwoFactor)
	}
	return a.renderTwoFactor(c, r.status, r.props)
}

// twoFactorDisable turns two-factor off.
func (a *app) twoFactorDisable(c echo.Context) error {
	refused, err := a.confirmWithCode(c, "disable")
	if err != nil {
		return err
	}
	if refused != nil {
		return a.refuseTwoFactor(c, refused)
	}
	au := authOf(c)
	notice := a.securityNotice(c, au.User, paths.TwoFactor, a.mails.TwoFactorOff)
	if err := a.store.DisableTwoFactor(a.acting(c), au.User.ID, notice...); err != nil {
		return fmt.Errorf("two-factor disable: %w", err)
	}
	a.kickMail(notice)
	a.log.Info("two-factor disabled", "user", au.User.ID, "session", au.Session.ID)
	a.addFlash(c, flashSuccess, "Two-factor authentication is off. Signing in needs only your password.")
	return c.Redirect(http.StatusSeeOther, paths.TwoFactor)
}

// twoFactorRecoveryCodes replaces the recovery codes and shows the new ones.
func (a *app) twoFactorRecoveryCodes(c echo.Context) error {
	refused, err := a.confirmWithCode(c, "recovery")
	if err != nil {
		return err
	}
	if refused != nil {
		return a.refuseTwoFactor(c, refused)
	}
	au := authOf(c)
	if a.box == nil {
		return errNoSecretKey()
	}
	codes, hashes := twofactor.NewRecoveryCodes(a.box, au.User.ID)
	if err := a.store.ReplaceRecoveryCodes(c.Request().Context(), au.User.ID, hashes, a.now()); err != nil {
		return fmt.Errorf("replace recovery codes: %w", err)
	}
	a.log.Info("recovery codes replaced", "user", au.User.ID, "session", au.Session.ID)
	return a.render(c, http.StatusOK, views.RecoveryCodesPage(views.RecoveryCodesProps{Page: a.page(c, "New recovery codes", "security"), Codes: codes}))
}

// The pending sign-in: after the right password, the browser gets a
// cookie naming a pending row (its own id and secret, like a session's),
// valid pendingLifetime, which unlocks only the second step: it is not a
// session cookie, so no page, stream or API accepts it.

func (a *app) setPendingCookie(c echo.Context, value string, maxAge int) {
	a.writeCookie(c, a.cookieName(c.Request(), pendingCookie), value, maxAge)
}

// startPending records a sign-in waiting for its second factor and sends
// the browser to the second step.
func (a *app) startPending(c echo.Context, user db.User, next string) error {
	now := a.now()
	tok := sessiontoken.New()
	err := a.store.CreatePendingSignIn(c.Request().Context(), db.PendingSignIn{
		ID: tok.ID, SecretHash: tok.Hash, UserID: user.ID, Epoch: user.Epoch, CreatedAt: now, ExpiresAt: now.Add(pendingLifetime),
	})
	if err != nil {
		return fmt.Errorf("start two-factor sign-in: %w", err)
	}
	a.setPendingCookie(c, tok.CookieValue, int(pendingLifetime/time.Second))
	a.log.Info("sign-in waiting for second factor", "user", user.ID, "pending", tok.ID)
	target := paths.LoginTwoFactor
	if next = safeNext(next); next != "" {
		target += "?next=" + url.QueryEscape(next)
	}
	return c.Redirect(http.StatusSeeOther, target)
}

// pendingOf is the browser's live pending sign-in and its user; ok false
// when it has none (or it expired, or its cookie does not match).
func (a *app) pendingOf(c echo.Context) (db.PendingSignIn, db.User, bool, error) {
	ck, err := c.Request().Cookie(a.cookieName(c.Request(), pendingCookie))
	if err != nil {
		return db.PendingSignIn{}, db.User{}, false, nil
	}
	id, secret, ok := sessiontoken.Parse(ck.Value)
	if !ok {
		return db.PendingSignIn{}, db.User{}, false, nil
	}
	p, err := a.store.PendingSignIn(c.Request().Context(), id)
	if errors.Is(err, db.ErrNotFound) {
		return p, db.User{}, false, nil
	}
	if err != nil {
		return p, db.User{}, false, err
	}
	if !sessiontoken.Matches(secret, p.SecretHash) || !a.now().Before(p.ExpiresAt) {
		return p, db.User{}, false, nil
	}
	user, err := a.store.UserByID(c.Request().Context(), p.UserID)
	if errors.Is(err, db.ErrNotFound) {
		return p, user, false, nil
	}
	return p, user, err == nil && !user.Disabled(), err
}

// startOver sends a browser without a usable pending sign-in back to the
// password.
func (a *app) startOver(c echo.Context, message string) error {
	a.setPendingCookie(c, "", -1)
	a.addFlash(c, flashNotice, message)
	return c.Redirect(http.StatusSeeOther, paths.Login)
}

func (a *app) loginTwoFactorForm(c echo.Context) error {
	_, user, ok, err := a.pendingOf(c)
	if err != nil {
		return fmt.Errorf("two-factor sign-in: %w", err)
	}
	if !ok {
		return a.startOver(c, "Please sign in with your password first. (A sign-in waits 5 minutes for its code.)")
	}
	return a.render(c, http.StatusOK, views.LoginTwoFactorPage(views.LoginTwoFactorProps{
		Page: a.page(c, "Two-factor authentication", ""), Email: user.Email, Next: safeNext(c.QueryParam("next"))}))
}

// loginTwoFactor checks the second step's code and, if right, turns the
// pending sign-in into a session.
func (a *app) loginTwoFactor(c echo.Context) error {
	p, user, ok, err := a.pendingOf(c)
	if err != nil {
		return fmt.Errorf("two-factor sign-in: %w", err)
	}
	if !ok {
		return a.startOver(c, "That sign-in took too long. Please enter your password again.")
	}
	page := views.LoginTwoFactorProps{Page: a.page(c, "Two-factor authentication", ""), Email: user.Email, Next: safeNext(formValue(c, "next"))}
	try, wait, err := a.reserveGuess(c, a.accountKey(user.Email), scopeSecondFactor, a.signInScope(c, &user))
	if err != nil {
		return fmt.Errorf("two-factor sign-in: %w", err)
	}
	if wait > 0 {
		t := throttled{wait}
		t.setHeader(c)
		page.CodeError = t.message()
		return a.render(c, http.StatusTooManyRequests, views.LoginTwoFactorPage(page))
	}
	tf, err := a.twoFactorState(c, user.ID)
	if err != nil {
		a.release(c, try)
		return fmt.Errorf("two-factor sign-in: %w", err)
	}
	if !tf.Enabled() {
		// Turned off (or reset by the operator) since the password step:
		// the password was right, and it is all that is asked now.
		a.release(c, try)
		return a.completeSignIn(c, p.ID, user, methodPassword, "")
	}
	method, left, ok, err := a.checkCode(c, tf, formValue(c, "code"), try)
	if err != nil {
		return err
	}
	if !ok {
		failures, err := a.store.FailPendingSignIn(c.Request().Context(), p.ID, pendingFailureLimit)
		if err != nil && !errors.Is(err, db.ErrNotFound) {
			return fmt.Errorf("two-factor sign-in: %w", err)
		}
		if errors.Is(err, db.ErrNotFound) || failures >= pendingFailureLimit {
			a.log.Info("pending sign-in ended", "user", user.ID, "reason", "too many wrong codes")
			return a.startOver(c, "Too many wrong codes. Please enter your password again.")
		}
		page.CodeError = wrongCode
		return a.render(c, http.StatusUnauthorized, views.LoginTwoFactorPage(page))
	}
	notice := ""
	if method == db.MethodPasswordRecovery {
		notice = fmt.Sprintf("You signed in with a recovery code; %s left. Make new ones on the two-factor page if you're running low.", plural(left, "code"))
	}
	return a.completeSignIn(c, p.ID, user, method, notice)
}

// completeSignIn turns the pending sign-in into a session, with notice (if
// any) for the signed-in browser.
func (a *app) completeSignIn(c echo.Context, pendingID string, user db.User, method, notice string) error {
	a.setPendingCookie(c, "", -1)
	evicted, err := a.sessions.Complete(c, pendingID, user, method)
	switch {
	case errors.Is(err, db.ErrNotFound):
		return a.startOver(c, "That sign-in was already used or took too long. Please enter your password again.")
	case errors.Is(err, db.ErrSignInsReset):
		a.log.Info("sign-in refused", "reason", "sign-ins reset while in flight", "user", user.ID)
		return a.startOver(c, "Your account's sessions were just reset (for example, the password was changed). Please sign in again.")
	case err != nil:
		return err
	}
	a.signedIn(c, evicted)
	if notice != "" {
		a.addFlash(c, flashNotice, notice)
	}
	a.setDeviceCookie(c, user)
	return c.Redirect(http.StatusSeeOther, afterSignIn(formValue(c, "next")))
}
