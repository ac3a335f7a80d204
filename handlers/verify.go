package handlers

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"doorman/db"
	"doorman/mails"
	"doorman/paths"
	"doorman/views"
)

// Verified addresses, changing the address by link, and the alerts setting.

// scopeVerifyResend counts "send the link again" per account.
const scopeVerifyResend = "verify_resend"

// verificationMail is the mail that asks user to confirm email (their
// address, or, for a new account, the one signing up: UserID 0).
func (a *app) verificationMail(user db.User, email string, w mails.Where) db.Mail {
	link, u := a.newLink(user, db.LinkVerifyEmail, paths.EmailVerify, verifyLinkLifetime, w)
	link.Email = email
	m := a.mails.VerifyEmail(email, w.At, u, link.ExpiresAt)
	m.UserID, m.Links = user.ID, []db.LinkToken{link}
	return m
}

// verifyEmail is where a verification link leads: opening it verifies the
// address (a mail scanner opening it first proves no less: the mail reached
// the mailbox).
func (a *app) verifyEmail(c echo.Context) error {
	l, user, _, state, err := a.openLink(c, db.LinkVerifyEmail)
	if err != nil {
		return err
	}
	noReferrer(c)
	next, label := paths.Settings, "Go to your account"
	if authOf(c) == nil {
		next, label = paths.Login, "Sign in"
	}
	p := views.MessageProps{Page: a.page(c, "Email verified", ""), Heading: "Email verified", LinkURL: next, LinkLabel: label}
	switch {
	case state == linkUsable:
		_, err := a.store.ConfirmEmail(a.acting(c), l.ID, a.now())
		if errors.Is(err, db.ErrLinkUsed) {
			return a.linkProblem(c, linkExpired, next, label)
		}
		if err != nil {
			return fmt.Errorf("verify email: %w", err)
		}
		a.log.Info("email verified", "user", user.ID)
		p.Message = l.Email + " is verified: it's where Doorman sends your account's sign-in alerts and reset links."
	case state == linkUsed && user.EmailVerified() && user.Email == l.Email:
		p.Message = l.Email + " was already verified."
	default:
		return a.linkProblem(c, state, next, label)
	}
	return a.render(c, http.StatusOK, views.MessagePage(p))
}

// resendVerification sends the verification mail again.
func (a *app) resendVerification(c echo.Context) error {
	au := authOf(c)
	if au.User.EmailVerified() {
		a.addFlash(c, flashNotice, "Your email is already verified.")
		return c.Redirect(http.StatusSeeOther, paths.Settings)
	}
	key := "user:" + strconv.FormatInt(au.User.ID, 10)
	_, wait, _, err := a.reserve(c, key, scopeVerifyResend, linkRequestsPerHour, time.Hour)
	if err != nil {
		return fmt.Errorf("resend verification: %w", err)
	}
	if wait > 0 {
		t := throttled{wait}
		t.setHeader(c)
		a.addFlash(c, flashNotice, t.message())
		return c.Redirect(http.StatusSeeOther, paths.Settings)
	}
	m := a.verificationMail(au.User, au.User.Email, a.whereFrom(c.Request(), a.now()))
	if err := a.store.QueueMail(c.Request().Context(), m); err != nil {
		return fmt.Errorf("resend verification: %w", err)
	}
	a.kickMail([]db.Mail{m})
	a.addFlash(c, flashSuccess, "We sent a new link to "+au.User.Email+". It works for 7 days.")
	return c.Redirect(http.StatusSeeOther, paths.Settings)
}

// confirmEmailForm is where the link sent to a new address leads: it asks
// before changing the account's address.
func (a *app) confirmEmailForm(c echo.Context) error {
	l, user, token, state, err := a.openLink(c, db.LinkChangeEmail)
	if err != nil {
		return err
	}
	if state != linkUsable {
		return a.linkProblem(c, state, paths.Email, "Change your email again")
	}
	noReferrer(c)
	return a.render(c, http.StatusOK, views.EmailConfirmPage(views.EmailConfirmProps{
		Page: a.page(c, "Confirm your new email", ""), Token: token, NewEmail: l.Email, OldEmail: user.Email}))
}

// confirmEmail makes the new address the account's, and tells the old one,
// with a link that undoes it: both in one transaction.
func (a *app) confirmEmail(c echo.Context) error {
	l, user, _, state, err := a.openLink(c, db.LinkChangeEmail)
	if err != nil {
		return err
	}
	if state != linkUsable {
		return a.linkProblem(c, state, paths.Email, "Change your email again")
	}
	now := a.now()
	w := a.whereFrom(c.Request(), now)
	undo, undoURL := a.newLink(user, db.LinkUndoEmail, paths.EmailUndo, undoLinkLifetime, w)
	undo.Email = user.Email
	m := a.mails.EmailChanged(user.Email, l.Email, w, undoURL, undo.ExpiresAt)
	m.UserID, m.Links = user.ID, []db.LinkToken{undo}
	_, err = a.store.ConfirmEmail(a.acting(c), l.ID, now, m)
	switch {
	case errors.Is(err, db.ErrEmailTaken):
		noReferrer(c)
		return a.render(c, http.StatusConflict, views.MessagePage(views.MessageProps{Page: a.page(c, "Address taken", ""), Heading: "That address is taken",
			Message: "Another account started using " + l.Email + " since you asked, so your address was not changed.", LinkURL: paths.Email, LinkLabel: "Change your email", Problem: true}))
	case errors.Is(err, db.ErrLinkUsed):
		return a.linkProblem(c, linkUsed, paths.Email, "Change your email again")
	case err != nil:
		return fmt.Errorf("confirm email: %w", err)
	}
	a.kickMail([]db.Mail{m})
	a.log.Info("email changed", "user", user.ID)
	if au := authOf(c); au != nil && au.User.ID == user.ID {
		a.addFlash(c, flashSuccess, "Your email is now "+l.Email+".")
		return c.Redirect(http.StatusSeeOther, paths.Settings)
	}
	noReferrer(c)
	return a.render(c, http.StatusOK, views.MessagePage(views.MessageProps{Page: a.page(c, "Email changed", ""), Heading: "Email changed",
		Message: "Your Doorman account's address is now " + l.Email + ". We told " + user.Email + ", with a link that undoes it.", LinkURL: paths.Login, LinkLabel: "Sign in"}))
}

// cancelEmailChangeForm is where the cancel link sent to the current address
// leads: it shows the change and asks (opening it changes nothing).
func (a *app) cancelEmailChangeForm(c echo.Context) error {
	l, user, token, state, err := a.openLink(c, db.LinkCancelEmailChange)
	if err != nil {
		return err
	}
	if state != linkUsable {
		return a.linkProblem(c, state, paths.Security, "Open Security settings")
	}
	noReferrer(c)
	return a.render(c, http.StatusOK, views.LinkActionPage(views.LinkActionProps{
		Page: a.page(c, "Cancel the change of address", ""), Heading: "Cancel the change of address?",
		Message: []string{"Someone signed in to the account for " + user.Email + " asked to change its address. Cancelling keeps " + user.Email + " and makes the link sent to the new address worthless.",
			"If you didn't ask for it, whoever did knows your password: change it next."},
		About: linkDetails(l), Action: paths.EmailCancel, Token: token, Button: "Cancel the change",
	}))
}

// cancelEmailChangeByLink cancels every pending change of address, with the
// link sent to the current address (no sign-in needed: the mailbox is the
// proof).
func (a *app) cancelEmailChangeByLink(c echo.Context) error {
	l, user, _, state, err := a.openLink(c, db.LinkCancelEmailChange)
	if err != nil {
		return err
	}
	if state != linkUsable {
		return a.linkProblem(c, state, paths.Security, "Open Security settings")
	}
	noReferrer(c)
	n, err := a.store.CancelEmailChanges(c.Request().Context(), user.ID, l.ID, a.now())
	if errors.Is(err, db.ErrLinkUsed) || errors.Is(err, db.ErrNotFound) {
		return a.linkProblem(c, linkUsed, paths.Security, "Open Security settings")
	}
	if err != nil {
		return fmt.Errorf("cancel email change: %w", err)
	}
	a.log.Info("email change cancelled", "user", user.ID, "by", "link", "changes", n)
	return a.render(c, http.StatusOK, views.MessagePage(views.MessageProps{
		Page: a.page(c, "Change cancelled", ""), Heading: "The change was cancelled",
		Message: "The account keeps " + user.Email + ". If you didn't ask for the change, change your password now: whoever asked knew it.",
		LinkURL: paths.PasswordForgot, LinkLabel: "Reset your password",
	}))
}

// cancelEmailChange cancels the pending change of address from the Security
// page. It needs no password: cancelling only protects the account.
func (a *app) cancelEmailChange(c echo.Context) error {
	au := authOf(c)
	n, err := a.store.CancelEmailChanges(c.Request().Context(), au.User.ID, "", a.now())
	if err != nil {
		return fmt.Errorf("cancel email change: %w", err)
	}
	a.log.Info("email change cancelled", "user", au.User.ID, "by", "session", "session", au.Session.ID, "changes", n)
	if n == 0 {
		a.addFlash(c, flashNotice, "There was no change of address waiting.")
	} else {
		a.addFlash(c, flashSuccess, "The change of address was cancelled. Your email stays "+au.User.Email+".")
	}
	return c.Redirect(http.StatusSeeOther, paths.Security)
}

// setAlerts turns new sign-in alerts on, or off. Off needs the password (or
// the sudo window): a stolen cookie must not be able to silence the mails
// that would reveal the next sign-in.
func (a *app) setAlerts(c echo.Context) error {
	au := authOf(c)
	on := formValue(c, "alerts") == "on"
	if !on {
		if g := a.reauthenticate(c, au, "password"); !g.passed() {
			return g.refuse(func(problem *passwordProblem) error {
				if formValue(c, "password") == "" {
					problem = nil
				}
				return a.renderConfirm(c, views.ConfirmProps{
					Page: a.page(c, "Turn off sign-in alerts", "account"), Heading: "Turn off new sign-in alerts?",
					Message: "You won't be emailed when someone signs in from a new device or place.",
					Action:  paths.AccountAlerts, Button: "Turn alerts off", CancelURL: paths.Settings, NeedPassword: true,
				}, au, problem)
			})
		}
	}
	if err := a.store.SetSignInAlerts(c.Request().Context(), au.User.ID, on); err != nil {
		return fmt.Errorf("set alerts: %w", err)
	}
	a.log.Info("sign-in alerts set", "user", au.User.ID, "on", on, "session", au.Session.ID)
	if on {
		a.addFlash(c, flashSuccess, "New sign-in alerts are on.")
	} else {
		a.addFlash(c, flashSuccess, "New sign-in alerts are off.")
	}
	return c.Redirect(http.StatusSeeOther, paths.Settings)
}
