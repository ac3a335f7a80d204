package handlers

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"doorman/db"
	"doorman/paths"
	"doorman/views"
)

// Password reset, and the other emailed links that take an account back
// ("This wasn't me" in a new sign-in alert, undoing an email change): each
// opens one form that sets a new password and ends what must end, in one
// transaction (db.Recovery), and signs this browser in afresh.

// scopeLinkRequest counts "send me a link" requests per mailbox (plus the
// link's purpose), so nobody can flood someone's inbox through us.
const scopeLinkRequest = "link:"

// scopeLinkCode counts wrong second-factor codes typed on a page an emailed
// link opened, per account. A link alone never bypasses two-factor: whoever
// reads the mailbox still needs the code.
const scopeLinkCode = scopeSecondFactor + "link"

// linkWait is how long a "send me a link" request for email must wait (0: go
// ahead), per client address and per mailbox and purpose. It counts the
// request when it may go ahead (checked and counted at once): the same
// whether or not an account uses the address.
//
// The owner's own browsers are counted apart: a browser with a device
// cookie valid for the account at its current epoch (see signInScope) has
// its own count per mailbox and purpose, so strangers who spend the
// mailbox's count cannot stop the owner asking for a reset or sign-in link
// from a browser that signed in before. The device scopes are capped
// together as for passwords (reserveScoped), so collected cookies do not
// turn into a mail flood.
func (a *app) linkWait(c echo.Context, email, purpose string) (time.Duration, error) {
	now, client := a.now(), a.clientKey(c)
	if wait := a.linkLimit.take(client, now); wait > 0 {
		return wait, nil
	}
	var user *db.User
	switch u, err := a.store.UserByEmail(c.Request().Context(), email); {
	case err == nil:
		user = &u
	case !errors.Is(err, db.ErrNotFound):
		a.linkLimit.giveBack(client, now)
		return 0, err
	}
	_, wait, err := a.reserveScoped(c, a.accountKey(email), scopeLinkRequest+purpose+":", a.signInScope(c, user), linkRequestsPerHour, time.Hour)
	if err != nil || wait > 0 {
		a.linkLimit.giveBack(client, now)
	}
	return wait, err
}

// queueLinkMail queues the mail a "send me a link" request causes: the link
// if an account uses email, else a note to the address that no account
// does. Either way one mail is queued, in one write: the same answer and the
// same work, so the response says nothing about which addresses have
// accounts. build makes the link's mail for the user.
func (a *app) queueLinkMail(c echo.Context, email, what string, build func(db.User, time.Time) db.Mail) error {
	ctx, now := c.Request().Context(), a.now()
	user, err := a.store.UserByEmail(ctx, email)
	var m db.Mail
	switch {
	case err == nil:
		m = build(user, now)
		m.UserID = user.ID
	case errors.Is(err, db.ErrNotFound):
		m = a.mails.NoAccount(email, a.whereFrom(c.Request(), now), what, a.mailURL(paths.Signup))
	default:
		return err
	}
	if err := a.store.QueueMail(ctx, m); err != nil {
		return err
	}
	a.log.Info("mail queued", "kind", m.Kind, "user", m.UserID, "message_id", m.MessageID)
	a.kickMail([]db.Mail{m})
	return nil
}

// linkCode checks the second-factor code a page an emailed link opened was
// posted with (two-factor is on: tf). problem is "" when it was right, else
// what to say next to the field, with the status to answer.
func (a *app) linkCode(c echo.Context, user db.User, tf db.TwoFactor) (problem string, status int, err error) {
	try, wait, _, err := a.reserve(c, a.accountKey(user.Email), scopeLinkCode, a.cfg.AccountFailureLimit, a.cfg.FailureWindow)
	if err != nil {
		return "", 0, err
	}
	if wait > 0 {
		t := throttled{wait}
		t.setHeader(c)
		return t.message(), http.StatusTooManyRequests, nil
	}
	if _, _, ok, err := a.checkCode(c, tf, formValue(c, "code"), try); !ok {
		if err != nil {
			return "", 0, err
		}
		return wrongCode, http.StatusUnprocessableEntity, nil
	}
	return "", 0, nil
}

func (a *app) forgotForm(c echo.Context) error {
	return a.render(c, http.StatusOK, views.ForgotPage(views.ForgotProps{Page: a.page(c, "Forgot your password?", "")}))
}

// forgot sends a password reset link.
func (a *app) forgot(c echo.Context) error {
	email := normaliseEmail(formValue(c, "email"))
	p := views.ForgotProps{Page: a.page(c, "Forgot your password?", ""), Email: email, EmailError: emailError(email)}
	if p.EmailError != "" {
		return a.render(c, http.StatusUnprocessableEntity, views.ForgotPage(p))
	}
	wait, err := a.linkWait(c, email, db.LinkPasswordReset)
	if err != nil {
		return fmt.Errorf("forgot password: %w", err)
	}
	if wait > 0 {
		t := throttled{wait}
		t.setHeader(c)
		p.FormError = t.message()
		return a.render(c, http.StatusTooManyRequests, views.ForgotPage(p))
	}
	err = a.queueLinkMail(c, email, "a password reset", func(user db.User, now time.Time) db.Mail {
		w := a.whereFrom(c.Request(), now)
		link, u := a.newLink(user, db.LinkPasswordReset, paths.PasswordReset, resetLinkLifetime, w)
		// The address it was sent to: using it proves that one only.
		link.Email = user.Email
		m := a.mails.PasswordReset(email, w, u, link.ExpiresAt)
		m.Links = []db.LinkToken{link}
		return m
	})
	if err != nil {
		return fmt.Errorf("forgot password: %w", err)
	}
	a.addFlash(c, flashSuccess, "If an account uses "+email+", we sent it a link to choose a new password. The link works once, for 30 minutes. Check your spam folder if it doesn't arrive.")
	return c.Redirect(http.StatusSeeOther, paths.PasswordForgot)
}

// linkProblem answers a link that cannot be used, saying plainly why, with
// a way to get a new one.
func (a *app) linkProblem(c echo.Context, state linkState, again, againLabel string) error {
	noReferrer(c)
	p := views.MessageProps{Page: a.page(c, "This link can't be used", ""), Heading: "This link can't be used", LinkURL: again, LinkLabel: againLabel, Problem: true}
	status := http.StatusGone
	switch state {
	case linkUsed:
		p.Message = "This link was already used. Each link works once."
	case linkExpired:
		p.Message = "This link has expired."
	case linkVoid:
		p.Message = "This link no longer works: since it was sent, the account was secured (a new password, or every session signed out) or its email address changed. Links from before that can't act for the account. If you didn't do that, reset your password."
		p.LinkURL, p.LinkLabel = paths.PasswordForgot, "Reset your password"
	default:
		status = http.StatusNotFound
		p.Message = "This link doesn't work. It may have been cut short when it was copied: open it straight from the email."
	}
	return a.render(c, status, views.MessagePage(p))
}

// recoveryKind is one of the emailed links that take an account back.
type recoveryKind struct {
	purpose, action   string
	heading, button   string
	again, againLabel string // where to get a new link
	reason            string
	// choose offers "also end every other session / app and token"
	// (checked); without it, everything ends.
	choose bool
	// endSession ends the link's session (the disowned sign-in).
	endSession bool
	// restoreEmail puts the link's address back.
	restoreEmail bool
	intro        func(l db.LinkToken, u db.User) string
	done         string // the flash afterwards
}

var (
	resetRecovery = recoveryKind{
		purpose: db.LinkPasswordReset, action: paths.PasswordReset,
		heading: "Choose a new password", button: "Set new password",
		again: paths.PasswordForgot, againLabel: "Send a new link",
		reason: db.ReasonPasswordReset,
		intro: func(_ db.LinkToken, u db.User) string {
			return "Choose a new password for " + u.Email + ". Every session, app and token signed in to the account ends, and this browser signs in with the new password."
		},
		done: "Your password was changed. Every other session, app and token was signed out.",
	}
	notMeRecovery = recoveryKind{
		purpose: db.LinkSignInNotMe, action: paths.SignInNotMe,
		heading: "Secure your account", button: "End that session and set password",
		again: paths.PasswordForgot, againLabel: "Reset your password instead",
		reason: db.ReasonNotMe, choose: true, endSession: true,
		intro: func(_ db.LinkToken, u db.User) string {
			return "This ends the sign-in below and sets a new password for " + u.Email + ": whoever signed in may know the current one."
		},
		done: "That session was ended and your password changed.",
	}
	undoRecovery = recoveryKind{
		purpose: db.LinkUndoEmail, action: paths.EmailUndo,
		heading: "Undo the email change", button: "Undo and set password",
		again: paths.PasswordForgot, againLabel: "Reset your password",
		reason: db.ReasonEmailUndone, restoreEmail: true,
		intro: func(l db.LinkToken, u db.User) string {
			return "This makes " + l.Email + " the account's address again (it is now " + u.Email + "), signs out every session, app and token, and sets a new password: whoever changed the address knew the current one."
		},
		done: "Your email address is back, every other session, app and token was signed out, and your password was changed.",
	}
)

// needsCode reports whether using link l of kind asks for the second factor
// tf. A link never skips two-factor, with two exceptions, both a second
// factor that may be someone else's: undoing an email change never asks for
// one turned on after the change (the undo link is made when the change
// is), since whoever moved the account would have set it up to keep the
// owner out; and a reset link never asks for one set up before the address
// was verified (clearsTwoFactor).
func (k recoveryKind) needsCode(l db.LinkToken, tf db.TwoFactor) bool {
	return tf.Enabled() && !clearsTwoFactor(k, tf) && !(k.restoreEmail && !tf.EnabledAt.Before(l.CreatedAt))
}

// clearsTwoFactor reports whether completing k's form turns off the user's
// second factor tf instead of asking for its code: a password reset link
// proves the mailbox, and a second factor turned on before the address was
// verified may be a squatter's (someone who signed up with the owner's
// address), which must not lock the address's owner out. One turned on
// with a verified address is always asked for.
func clearsTwoFactor(k recoveryKind, tf db.TwoFactor) bool {
	return k.purpose == db.LinkPasswordReset && tf.Enabled() && tf.UnverifiedAddress
}

// clearsTwoFactorNote is what the reset page says when it will turn
// two-factor off.
const clearsTwoFactorNote = " Two-factor authentication was turned on for this account before its address was verified, so it may not have been you: this reset turns it off (turn it on again afterwards)."

// recoveryPage renders kind's form for link l of user.
func (a *app) recoveryPage(c echo.Context, status int, k recoveryKind, l db.LinkToken, user db.User, token string, p views.NewPasswordProps) error {
	noReferrer(c)
	tf, err := a.twoFactorState(c, user.ID)
	if err != nil {
		return err
	}
	p.Page = a.page(c, k.heading, "")
	p.Heading, p.Intro, p.Action, p.Token, p.Email, p.Button = k.heading, k.intro(l, user), k.action, token, user.Email, k.button
	p.NeedCode = k.needsCode(l, tf)
	if clearsTwoFactor(k, tf) {
		p.Intro += clearsTwoFactorNote
	}
	if k.endSession {
		p.AboutLabel = "The sign-in"
		p.About = linkDetails(l)
	}
	if k.choose {
		p.EndOthers, p.EndOthersLabel = true, "Also sign out of every other session"
		p.EndTokens, p.EndTokensLabel = true, "Also disconnect every app and access token"
	}
	from := ""
	if k.endSession {
		from = l.SessionID
	}
	if err := a.recoveryPasskeys(c, user.ID, from, k.purpose == db.LinkPasswordReset, &p); err != nil {
		return err
	}
	return a.render(c, status, views.NewPasswordPage(p))
}

// linkDetails are the rows describing where a link's sign-in (or request)
// came from.
func linkDetails(l db.LinkToken) []views.DetailRow {
	rows := []views.DetailRow{{Label: "Device", Value: l.Device}, {Label: "Location", Value: l.Location}}
	if l.IP != "" {
		rows = append(rows, views.DetailRow{Label: "IP address", Value: l.IP, Mono: true})
	}
	return append(rows, views.DetailRow{Label: "Time", Value: exactTime(l.CreatedAt), ISO: isoTime(l.CreatedAt)})
}

func (a *app) resetForm(c echo.Context) error { return a.recoveryForm(c, resetRecovery) }
func (a *app) reset(c echo.Context) error     { return a.recover(c, resetRecovery) }
func (a *app) notMeForm(c echo.Context) error { return a.recoveryForm(c, notMeRecovery) }
func (a *app) notMe(c echo.Context) error     { return a.recover(c, notMeRecovery) }
func (a *app) undoEmailForm(c echo.Context) error {
	return a.recoveryForm(c, undoRecovery)
}
func (a *app) undoEmail(c echo.Context) error { return a.recover(c, undoRecovery) }

func (a *app) recoveryForm(c echo.Context, k recoveryKind) error {
	l, user, token, state, err := a.openLink(c, k.purpose)
	if err != nil {
		return err
	}
	if state != linkUsable {
		return a.linkProblem(c, state, k.again, k.againLabel)
	}
	return a.recoveryPage(c, http.StatusOK, k, l, user, token, views.NewPasswordProps{EndOthersOn: true, EndTokensOn: true})
}

// recover completes one of the recovery forms: in one transaction the link
// is used up, the password set, what must end ended, and this browser gets
// a fresh session.
func (a *app) recover(c echo.Context, k recoveryKind) error {
	l, user, token, state, err := a.openLink(c, k.purpose)
	if err != nil {
		return err
	}
	if state != linkUsable {
		return a.linkProblem(c, state, k.again, k.againLabel)
	}
	next, p := parseRecoveryForm(c, k)
	if p.NewError != "" {
		return a.recoveryPage(c, http.StatusUnprocessableEntity, k, l, user, token, p)
	}
	tf, err := a.twoFactorState(c, user.ID)
	if err != nil {
		return err
	}
	if k.needsCode(l, tf) {
		problem, status, err := a.linkCode(c, user, tf)
		if err != nil {
			return err
		}
		if problem != "" {
			p.CodeError = problem
			return a.recoveryPage(c, status, k, l, user, token, p)
		}
	}
	removePasskeys, ok, err := a.tickedPasskeys(c, user.ID)
	if err != nil {
		return err
	}
	if !ok {
		p.FormError = passkeysGone
		return a.recoveryPage(c, passkeysGoneStatus, k, l, user, token, p)
	}
	ctx := a.acting(c)
	hash, err := a.hasher.Hash(ctx, next)
	if err != nil {
		return fmt.Errorf("recover account: %w", err)
	}
	r, value := a.recovery(c, k, l, user, p, hash, clearsTwoFactor(k, tf))
	r.RemovePasskeys = removePasskeys
	done, err := a.account.Reset(ctx, r, k.purpose)
	if err != nil {
		return a.recoveryRefused(c, err, k, l, user, token, p)
	}
	a.recovered(c, k, r, done, value)
	return c.Redirect(http.StatusSeeOther, paths.Security)
}

// parseRecoveryForm reads a recovery form of kind k: the new password
// (p.NewError says what is wrong with it) and what else to end.
func parseRecoveryForm(c echo.Context, k recoveryKind) (string, views.NewPasswordProps) {
	next := formValue(c, "new_password")
	p := views.NewPasswordProps{EndOthersOn: formValue(c, "end_others") != "", EndTokensOn: formValue(c, "end_tokens") != ""}
	if !k.choose {
		p.EndOthersOn, p.EndTokensOn = true, true
	}
	if next == "" {
		p.NewError = "Enter a new password."
	} else {
		p.NewError = newPasswordProblem(next)
	}
	return next, p
}

// recovery is what using link l of kind k for user does in one
// transaction (form p, the new password's hash), with the mail it sends;
// clears: the user's second factor goes with it (clearsTwoFactor). The
// browser's new session is r.Start, value its cookie's.
func (a *app) recovery(c echo.Context, k recoveryKind, l db.LinkToken, user db.User, p views.NewPasswordProps, hash string, clears bool) (db.Recovery, string) {
	// The undo turns off a second factor turned on since the change (the
	// store drops any turned on since, even while this page was open).
	var dropSince time.Time
	if k.restoreEmail {
		dropSince = l.CreatedAt
	}
	now := a.now()
	row, value := a.newSessionRow(c.Request(), user.ID, db.MethodPasswordReset, now)
	r := db.Recovery{
		UserID: user.ID, LinkID: l.ID, LinkPurpose: k.purpose,
		EndOthers: p.EndOthersOn, EndTokens: p.EndTokensOn, PasswordHash: hash, VerifyEmail: !k.restoreEmail, DropTwoFactorSince: dropSince,
		Start: &row, MaxPerUser: a.cfg.MaxSessionsPerUser, Reason: k.reason, By: row.ID, Now: now,
		// Cleared only if it is still the second factor set up with an
		// unverified address (no code was asked for because of that).
		ClearUnverifiedTwoFactor: clears,
	}
	// Where from: the new session's own device and place (parsed once).
	to, w := user.Email, whereOfSession(row)
	if k.endSession {
		r.EndSessionID, r.ForgetDevice, r.ForgetNetwork = l.SessionID, l.Device, db.Network(l.IP)
		r.RemovePasskeysAddedBy = l.SessionID
	}
	if k.restoreEmail {
		r.RestoreEmail, to = l.Email, l.Email
	}
	var m db.Mail
	if k.purpose == db.LinkPasswordReset {
		m = a.mails.PasswordChanged(to, w, true, a.mailURL(paths.PasswordForgot))
	} else {
		m = a.mails.AccountRecovered(to, w, k.done, a.mailURL(paths.Security))
	}
	m.UserID = user.ID
	r.Mail = []db.Mail{m}
	if clears {
		off := a.mails.TwoFactorCleared(to, w, a.mailURL(paths.TwoFactor))
		off.UserID = user.ID
		r.Mail = append(r.Mail, off)
	}
	return r, value
}

// recoveryRefused answers a recovery the store refused with err.
func (a *app) recoveryRefused(c echo.Context, err error, k recoveryKind, l db.LinkToken, user db.User, token string, p views.NewPasswordProps) error {
	switch {
	case errors.Is(err, db.ErrTwoFactorEnabled):
		// Two-factor was turned on again meanwhile, with the address
		// verified: its code is needed after all. The link is unused.
		p.CodeError = "Two-factor authentication was turned on again meanwhile: enter a code from your authenticator app."
		return a.recoveryPage(c, http.StatusConflict, k, l, user, token, p)
	case errors.Is(err, db.ErrLinkUsed), errors.Is(err, db.ErrNotFound):
		return a.linkProblem(c, linkUsed, k.again, k.againLabel)
	case errors.Is(err, db.ErrSignInsReset):
		return a.render(c, http.StatusForbidden, views.MessagePage(views.MessageProps{Page: a.page(c, "Account disabled", ""), Heading: "This account has been disabled",
			Message: "Contact the people who run this site.", Problem: true}))
	case errors.Is(err, db.ErrEmailTaken):
		return a.render(c, http.StatusConflict, views.MessagePage(views.MessageProps{Page: a.page(c, "Address taken", ""), Heading: "That address is taken",
			Message: "Another account uses " + l.Email + " now, so it can't be put back. Reset your password from the address the account uses, or contact the people who run this site.", Problem: true}))
	}
	return fmt.Errorf("recover account: %w", err)
}

// recovered finishes recovery r of kind k, which the store has done: its
// mail goes out, and this browser holds the account's new session (cookie
// value).
func (a *app) recovered(c echo.Context, k recoveryKind, r db.Recovery, done db.Recovered, value string) {
	a.kickMail(r.Mail)
	// Whoever held the mailbox and the code is the owner: the failed
	// sign-ins counted against the address must not keep them out now.
	if err := a.store.ClearLoginFailures(c.Request().Context(), a.accountKey(done.User.Email)); err != nil {
		a.log.Error("clear login failures", "err", err)
	}
	// A browser signed in before (as anyone) now holds this account's
	// fresh session instead: its old one ends, not left orphaned.
	if au := authOf(c); au != nil {
		if err := a.sessions.endOwn(c, au); err != nil {
			a.log.Error("end replaced session", "session", au.Session.ID, "err", err)
		}
	}
	a.sessions.started(c, done.User, *r.Start, value, done.Evicted)
	a.signedIn(c, done.Evicted)
	a.setDeviceCookie(c, done.User)
	a.addFlash(c, flashSuccess, withApps(k.done+removedPasskeysNote(done.Passkeys), a.appsConfirmation(c, done.User.ID, logoutsOf{since: r.Now, ended: done.Ended, subOnly: r.EndTokens})))
}
