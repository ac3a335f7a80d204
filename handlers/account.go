package handlers

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"doorman/db"
	"doorman/paths"
	"doorman/timefmt"
	"doorman/views"
)

// settings is the settings home.
func (a *app) settings(c echo.Context) error {
	au := authOf(c)
	list, err := a.store.ListSessionSummaries(c.Request().Context(), au.User.ID, a.now())
	if err != nil {
		return fmt.Errorf("settings: %w", err)
	}
	return a.render(c, http.StatusOK, views.SettingsPage(views.SettingsProps{
		Page:          a.page(c, "Settings", "account"),
		Email:         au.User.Email,
		MemberSince:   timefmt.Date(au.User.CreatedAt),
		SessionCount:  "Signed in on " + plural(len(list), "device"),
		EmailVerified: au.User.EmailVerified(), MailOff: !a.mailOn(), AlertsOn: !au.User.SignInAlertsOff,
	}))
}

// passwordForm is the change-password page.
func (a *app) passwordForm(c echo.Context) error {
	return a.passwordPage(c, http.StatusOK, views.PasswordProps{SignOutOthers: true, DisconnectTokens: true})
}

func (a *app) passwordPage(c echo.Context, status int, p views.PasswordProps) error {
	au := authOf(c)
	others, err := a.otherSessions(c, au, a.now())
	if err != nil {
		return fmt.Errorf("password page: %w", err)
	}
	p.Page, p.Others, p.OthersCount = a.page(c, "Change password", "security"), others, plural(len(others), "session")
	apps, pats, err := a.inventoryCounts(c, au.User.ID, a.now())
	if err != nil {
		return fmt.Errorf("password page: %w", err)
	}
	p.TokensCount = inventoryLabel(apps, pats)
	return a.render(c, status, views.PasswordPage(p))
}

// changePassword always asks for the current password (not only outside the
// sudo window): a password is the one thing a stolen session must not be
// able to replace. The current session gets a new secret and stays signed
// in; every other one ends unless the user unticks the box.
func (a *app) changePassword(c echo.Context) error {
	au := authOf(c)
	f := parsePasswordChange(c)
	current, next := f.current, f.next
	p := views.PasswordProps{SignOutOthers: formValue(c, "sign_out_others") != "", DisconnectTokens: formValue(c, "disconnect_tokens") != "",
		CurrentError: f.currentError, NewError: f.newError}
	if p.NewError != "" || p.CurrentError != "" {
		return a.passwordPage(c, http.StatusUnprocessableEntity, p)
	}
	problem, err := a.checkPassword(c, au, current)
	if err != nil {
		return err
	}
	if problem != nil {
		p.CurrentError = problem.text
		return a.passwordPage(c, problem.status, p)
	}
	ctx := c.Request().Context()
	hash, err := a.hasher.Hash(ctx, next)
	if err != nil {
		return fmt.Errorf("change password: %w", err)
	}
	// One transaction: the new hash, this session's new secret, the other
	// sessions ended, the apps and tokens ended if asked, and every sign-in
	// still in flight with the old password refused (the user's epoch
	// moves).
	var notice []db.Mail
	if a.mailOn() {
		m := a.mails.PasswordChanged(au.User.Email, a.whereFrom(c.Request(), a.now()), p.SignOutOthers, a.mailURL(paths.PasswordForgot))
		m.UserID = au.User.ID
		notice = append(notice, m)
	}
	changedAt := a.now()
	ended, tokens, err := a.sessions.ChangePassword(c, au, hash, p.SignOutOthers, p.DisconnectTokens, notice...)
	if errors.Is(err, db.ErrNotFound) {
		// This session was ended elsewhere while the change ran: nothing
		// was changed, and this browser is signed out.
		a.sessions.ClearCookie(c)
		a.addFlash(c, flashNotice, "This device was signed out while you were changing your password, so the password was not changed. Sign in and try again.")
		return c.Redirect(http.StatusSeeOther, paths.Login)
	}
	if err != nil {
		return err
	}
	a.renewDeviceCookie(c, au.User.ID)
	a.kickMail(notice)
	msg := "Password changed."
	if len(ended) > 0 {
		msg += " Signed out " + plural(len(ended), "other session") + "."
	}
	if len(tokens) > 0 {
		msg += " Disconnected " + plural(len(tokens), "app or token") + "."
	}
	msg = withApps(msg, a.appsConfirmation(c, au.User.ID, logoutsOf{since: changedAt, ended: ended, subOnly: p.DisconnectTokens}))
	a.addFlash(c, flashSuccess, msg)
	return c.Redirect(http.StatusSeeOther, paths.Security)
}

// passwordChange is the current and new password of a form that changes
// the password (the password page, "Not you?"), with what is wrong with
// each ("" when nothing).
type passwordChange struct {
	current, next          string
	currentError, newError string
}

func parsePasswordChange(c echo.Context) passwordChange {
	f := passwordChange{current: formValue(c, "current_password"), next: formValue(c, "new_password")}
	switch {
	case f.next == "":
		f.newError = "Enter a new password."
	case newPasswordProblem(f.next) != "":
		f.newError = newPasswordProblem(f.next)
	case f.next == f.current:
		f.newError = "Choose a password different from the current one."
	}
	if f.current == "" {
		f.currentError = "Enter your current password."
	}
	return f
}

// Email changes are limited per account: each attempt that gets past the
// password check counts.
const (
	emailChangeLimit  = 5
	emailChangeWindow = time.Hour
)

// emailForm is the change-email page.
func (a *app) emailForm(c echo.Context) error {
	return a.emailPage(c, http.StatusOK, views.EmailProps{})
}

func (a *app) emailPage(c echo.Context, status int, p views.EmailProps) error {
	au := authOf(c)
	// Changing the email always asks for the password (see confirmPassword).
	p.Page, p.CurrentEmail, p.NeedPassword = a.page(c, "Change email", "account"), au.User.Email, true
	return a.render(c, status, views.EmailPage(p))
}

func (a *app) changeEmail(c echo.Context) error {
	au := authOf(c)
	email := normaliseEmail(formValue(c, "email"))
	p := views.EmailProps{Email: email, EmailError: emailError(email)}
	if p.EmailError == "" && email == au.User.Email {
		p.EmailError = "That is already your email."
	}
	if p.EmailError != "" {
		return a.emailPage(c, http.StatusUnprocessableEntity, p)
	}
	// At most emailChangeLimit attempts an hour, counted in the database
	// before the password is checked: an answer saying an address is taken
	// reveals another account, so it costs the password and is rare.
	userKey := "user:" + strconv.FormatInt(au.User.ID, 10)
	try, wait, _, err := a.reserve(c, userKey, scopeEmailChange, emailChangeLimit, emailChangeWindow)
	if err != nil {
		return fmt.Errorf("change email: %w", err)
	}
	if wait > 0 {
		t := throttled{wait}
		t.setHeader(c)
		p.EmailError = t.message()
		return a.emailPage(c, http.StatusTooManyRequests, p)
	}
	if g := a.confirmPassword(c, au, "password"); !g.passed() {
		// Only attempts with the right password count here (wrong ones
		// count against the session, in confirmPassword).
		a.release(c, try)
		return g.refuse(func(problem *passwordProblem) error {
			p.PasswordError = problem.text
			return a.emailPage(c, problem.status, p)
		})
	}
	if !a.mailOn() {
		return a.changeEmailNow(c, au, p)
	}
	return a.askEmailChange(c, au, email)
}

// changeEmailNow changes au's email to p.Email at once: with no mail to
// prove the new address with, there is no link to wait for.
func (a *app) changeEmailNow(c echo.Context, au *authInfo, p views.EmailProps) error {
	err := a.store.UpdateEmail(a.acting(c), au.User.ID, p.Email)
	if errors.Is(err, db.ErrEmailTaken) {
		p.EmailError = "Another account uses this email."
		return a.emailPage(c, http.StatusUnprocessableEntity, p)
	}
	if err != nil {
		return fmt.Errorf("change email: %w", err)
	}
	a.log.Info("email changed", "user", au.User.ID, "session", au.Session.ID)
	a.addFlash(c, flashSuccess, "Email changed to "+p.Email+".")
	return c.Redirect(http.StatusSeeOther, paths.Settings)
}

// askEmailChange mails the links that change au's email to email.
//
// The change takes effect only when the link sent to the new address
// is followed: nobody can move an account to an address they don't
// read, and a typo can't lock the owner out. The current address is
// told at once, with a link that cancels the change (the Security page
// shows it pending, and cancels it too). The change link dies with the
// revocation rule: a reset, or another change asked, voids it.
//
// The answer is the same whether or not another account uses the
// address: that account's holder is told by mail instead of getting a
// link, and the change (pending, as any) can never complete.
func (a *app) askEmailChange(c echo.Context, au *authInfo, email string) error {
	ctx := c.Request().Context()
	w := a.whereFrom(c.Request(), a.now())
	link, u := a.newLink(au.User, db.LinkChangeEmail, paths.EmailConfirm, changeLinkLifetime, w)
	link.Email = email
	cancel, cancelURL := a.newLink(au.User, db.LinkCancelEmailChange, paths.EmailCancel, cancelLinkLifetime, w)
	notice := a.mails.EmailChangeAsked(au.User.Email, email, w, cancelURL, cancel.ExpiresAt)
	notice.UserID, notice.Links = au.User.ID, []db.LinkToken{link, cancel}
	var toNew db.Mail
	switch holder, err := a.store.UserByEmail(ctx, email); {
	case err == nil:
		toNew = a.mails.AddressInUse(email, w, a.mailURL(paths.Security))
		toNew.UserID = holder.ID
	case errors.Is(err, db.ErrNotFound):
		toNew = a.mails.ChangeEmail(email, au.User.Email, w, u, link.ExpiresAt)
		toNew.UserID = au.User.ID
	default:
		return fmt.Errorf("change email: %w", err)
	}
	if err := a.store.QueueMail(ctx, notice, toNew); err != nil {
		return fmt.Errorf("change email: %w", err)
	}
	a.kickMail([]db.Mail{notice, toNew})
	a.log.Info("email change asked", "user", au.User.ID, "session", au.Session.ID)
	a.addFlash(c, flashSuccess, "We sent a link to "+email+". Your email stays "+au.User.Email+" until you open it (within 24 hours).")
	return c.Redirect(http.StatusSeeOther, paths.Settings)
}

// confirmDeleteAccount asks before deleting, listing every session that ends.
func (a *app) confirmDeleteAccount(c echo.Context) error {
	return a.confirmDeletePage(c, authOf(c), nil)
}

func (a *app) confirmDeletePage(c echo.Context, au *authInfo, problem *passwordProblem) error {
	now := a.now()
	others, err := a.otherSessions(c, au, now)
	if err != nil {
		return fmt.Errorf("confirm delete: %w", err)
	}
	p := views.ConfirmProps{
		Page: a.page(c, "Delete account", "account"), Heading: "Delete your account?",
		Message:  "This deletes " + au.User.Email + " and everything Doorman knows about it. Every session ends at once, including this one. It cannot be undone.",
		Sessions: append([]views.SessionRow{sessionRow(au.Session.Summary(), au.Session.ID, now)}, others...),
		Action:   paths.DeleteAccount, Button: "Delete account", CancelURL: paths.Settings,
		// Deleting always asks for the password (see confirmPassword).
		NeedPassword: true,
	}
	return a.renderConfirm(c, p, au, problem)
}

// deleteAccount removes the user; their session rows go with them, so every
// browser of theirs is signed out on its next request.
func (a *app) deleteAccount(c echo.Context) error {
	au := authOf(c)
	if g := a.confirmPassword(c, au, "password"); !g.passed() {
		return g.refuse(func(problem *passwordProblem) error { return a.confirmDeletePage(c, au, problem) })
	}
	_, err := a.account.Delete(c.Request().Context(), au.User.ID, au.Session.ID)
	if err != nil {
		return fmt.Errorf("delete account: %w", err)
	}
	// The failed sign-ins counted under the address go too.
	if err := a.store.ClearLoginFailures(c.Request().Context(), a.accountKey(au.User.Email)); err != nil {
		a.log.Error("clear login failures", "err", err)
	}
	a.sessions.ClearCookie(c)
	a.addFlash(c, flashSuccess, "Your account was deleted and every session signed out.")
	return c.Redirect(http.StatusSeeOther, paths.Login)
}
