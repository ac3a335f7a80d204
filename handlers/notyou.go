package handlers

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/labstack/echo/v4"

	"doorman/db"
	"doorman/paths"
	"doorman/sessiontoken"
	"doorman/views"
)

// "Not you?" on another session's row: one form that ends that session,
// optionally every other one (on) and every app and token (on), and sets a
// new password. It asks for the current password, like any password change:
// someone holding a stolen cookie must not be able to use it to lock the
// owner out.

// notYouTarget is the live session of the user's that the page is about
// (a 404 error when it is not the user's). own is true when it is this
// browser's own session: no "not you" there, the caller sends the browser
// to that session's page.
func (a *app) notYouTarget(c echo.Context, au *authInfo) (s db.Session, own bool, err error) {
	id := c.Param("id")
	if !sessiontoken.ValidID(id) {
		return db.Session{}, false, echo.NewHTTPError(http.StatusNotFound, "No such session.")
	}
	if id == au.Session.ID {
		return db.Session{}, true, nil
	}
	s, err = a.store.UserSession(c.Request().Context(), au.User.ID, id, a.now())
	if errors.Is(err, db.ErrNotFound) {
		return s, false, echo.NewHTTPError(http.StatusNotFound, "This session has ended or is not one of yours.")
	}
	if err != nil {
		return s, false, fmt.Errorf("not you: %w", err)
	}
	return s, false, nil
}

func (a *app) notYouPage(c echo.Context, status int, au *authInfo, s db.Session, p views.NewPasswordProps) error {
	apps, pats, err := a.inventoryCounts(c, au.User.ID, a.now())
	if err != nil {
		return fmt.Errorf("not you: %w", err)
	}
	p.Page = a.page(c, "Not you?", "security")
	p.Heading = "Not you? Take your account back"
	p.Intro = "This ends the session below and changes your password: whoever uses that session may know the current one. This device stays signed in."
	p.Action, p.Email, p.Button, p.CancelURL = paths.SessionNotYou(s.ID), au.User.Email, "Sign it out and change password", paths.Session(s.ID)
	p.AboutLabel = "The session"
	device := views.DetailRow{Label: "Device", Value: s.DeviceLabel}
	if s.DeviceName != "" {
		device.Value = s.DeviceName + " (" + s.DeviceLabel + ")"
	}
	p.About = []views.DetailRow{device, {Label: "Location", Value: s.Location},
		{Label: "IP address", Value: s.IP, Mono: true}, {Label: "Signed in", Value: exactTime(s.CreatedAt), ISO: isoTime(s.CreatedAt)},
		{Label: "Last active", Value: exactTime(s.LastSeenAt), ISO: isoTime(s.LastSeenAt)}}
	p.NeedCurrent = true
	p.EndOthers, p.EndOthersLabel = true, "Also sign out of every other session"
	if label := inventoryLabel(apps, pats); label != "" {
		p.EndTokens, p.EndTokensLabel = true, "Also disconnect "+label
	}
	if err := a.recoveryPasskeys(c, au.User.ID, s.ID, false, &p); err != nil {
		return fmt.Errorf("not you: %w", err)
	}
	return a.render(c, status, views.NewPasswordPage(p))
}

func (a *app) notYouForm(c echo.Context) error {
	au := authOf(c)
	s, own, err := a.notYouTarget(c, au)
	if err != nil {
		return err
	}
	if own {
		return c.Redirect(http.StatusSeeOther, paths.Session(au.Session.ID))
	}
	return a.notYouPage(c, http.StatusOK, au, s, views.NewPasswordProps{EndOthersOn: true, EndTokensOn: true})
}

func (a *app) notYou(c echo.Context) error {
	au := authOf(c)
	s, own, err := a.notYouTarget(c, au)
	if err != nil {
		return err
	}
	if own {
		return c.Redirect(http.StatusSeeOther, paths.Session(au.Session.ID))
	}
	f := parsePasswordChange(c)
	current, next := f.current, f.next
	p := views.NewPasswordProps{EndOthersOn: formValue(c, "end_others") != "", EndTokensOn: formValue(c, "end_tokens") != "",
		CurrentError: f.currentError, NewError: f.newError}
	if p.NewError != "" || p.CurrentError != "" {
		return a.notYouPage(c, http.StatusUnprocessableEntity, au, s, p)
	}
	problem, err := a.checkPassword(c, au, current)
	if err != nil {
		return err
	}
	if problem != nil {
		p.CurrentError = problem.text
		return a.notYouPage(c, problem.status, au, s, p)
	}
	removePasskeys, ok, err := a.tickedPasskeys(c, au.User.ID)
	if err != nil {
		return fmt.Errorf("not you: %w", err)
	}
	if !ok {
		p.FormError = passkeysGone
		return a.notYouPage(c, passkeysGoneStatus, au, s, p)
	}
	ctx, now := a.acting(c), a.now()
	hash, err := a.hasher.Hash(ctx, next)
	if err != nil {
		return fmt.Errorf("not you: %w", err)
	}
	tok := sessiontoken.Rotate(au.Session.ID)
	r := db.Recovery{
		UserID: au.User.ID, KeepSessionID: au.Session.ID, KeepSecretHash: tok.Hash,
		EndSessionID: s.ID, RemovePasskeysAddedBy: s.ID, RemovePasskeys: removePasskeys, EndOthers: p.EndOthersOn, EndTokens: p.EndTokensOn, PasswordHash: hash,
		ForgetDevice: s.DeviceLabel, ForgetNetwork: db.Network(s.IP),
		Reason: db.ReasonNotMe, By: au.Session.ID, Now: now,
	}
	if a.mailOn() {
		m := a.mails.AccountRecovered(au.User.Email, a.whereFrom(c.Request(), now), "You ended the session on "+s.DeviceLabel+" ("+s.Location+") and changed your password.", a.mailURL(paths.Security))
		m.UserID = au.User.ID
		r.Mail = []db.Mail{m}
	}
	done, err := a.account.Reset(ctx, r, "not me")
	if errors.Is(err, db.ErrNotFound) {
		a.sessions.ClearCookie(c)
		a.addFlash(c, flashNotice, "This device was signed out meanwhile, so nothing was changed. Sign in and try again.")
		return c.Redirect(http.StatusSeeOther, paths.Login)
	}
	if err != nil {
		return fmt.Errorf("not you: %w", err)
	}
	a.kickMail(r.Mail)
	au.Session.SecretHash, au.Session.ReauthAt = tok.Hash, now
	a.sessions.setCookie(c, tok.CookieValue, au.Session.AbsoluteExpiresAt.Sub(now))
	// The reset voided every device cookie; this browser typed the
	// password and keeps one.
	a.setDeviceCookie(c, done.User)
	msg := "Signed out " + plural(len(done.Ended), "session") + " and changed your password."
	if len(done.Tokens) > 0 {
		msg += " Disconnected " + plural(len(done.Tokens), "app or token") + "."
	}
	msg += removedPasskeysNote(done.Passkeys)
	msg = withApps(msg, a.appsConfirmation(c, au.User.ID, logoutsOf{since: now, ended: done.Ended, subOnly: r.EndTokens}))
	a.addFlash(c, flashSuccess, msg)
	return c.Redirect(http.StatusSeeOther, paths.Security)
}
