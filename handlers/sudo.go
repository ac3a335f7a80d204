package handlers

import (
	"fmt"
	"net/http"

	"github.com/labstack/echo/v4"

	"doorman/db"
	"doorman/views"
)

// Sensitive actions (ending sessions, changing the password or email,
// deleting the account) need the password entered within the last
// SudoWindow. Outside it, their forms carry a password field, like GitHub's
// and Jetstream's "confirm password". A wrong password changes nothing and
// counts toward the same limits as a failed sign-in.

// inSudo reports whether the session entered the password recently enough.
func (a *app) inSudo(au *authInfo) bool {
	return a.now().Sub(au.Session.ReauthAt) < a.cfg.SudoWindow
}

// passwordProblem is why a password check did not pass, ready to show next
// to the field, with the status to answer with.
type passwordProblem struct {
	text   string
	status int
}

// reauthenticate decides whether a sensitive action may go ahead. It may
// (ok) when the session is inside its sudo window, or when the form's field
// holds the right password: then the session has been re-authenticated,
// which rotates it (a new secret, so an earlier copy of the cookie is worth
// nothing, and a new window). Otherwise problem says why not, ready to show
// next to the field, with the status to answer.
func (a *app) reauthenticate(c echo.Context, au *authInfo, field string) (ok bool, problem *passwordProblem, err error) {
	if a.inSudo(au) {
		return true, nil, nil
	}
	pw := c.FormValue(field)
	if pw == "" {
		return false, &passwordProblem{"Enter your password to continue.", http.StatusForbidden}, nil
	}
	if p, err := a.checkPassword(c, au.User, pw); p != nil || err != nil {
		return false, p, err
	}
	if err := a.sessions.Rotate(c, au); err != nil {
		return false, nil, err
	}
	return true, nil, nil
}

// checkPassword verifies the signed-in user's password, throttled like a
// sign-in. nil means it was right. The hash is read here, not carried with
// every request's session check.
func (a *app) checkPassword(c echo.Context, who db.User, pw string) (*passwordProblem, error) {
	wait, err := a.checkThrottle(c, who.Email)
	if err != nil {
		return nil, err
	}
	if wait > 0 {
		t := throttled{wait}
		t.setHeader(c)
		return &passwordProblem{t.message(), http.StatusTooManyRequests}, nil
	}
	user, err := a.store.UserByID(c.Request().Context(), who.ID)
	if err != nil {
		return nil, fmt.Errorf("check password: %w", err)
	}
	ok, err := a.hasher.Verify(c.Request().Context(), user.PasswordHash, pw)
	if err != nil {
		return nil, fmt.Errorf("verify password: %w", err)
	}
	if !ok {
		a.recordFailure(c, user.Email)
		a.log.Info("re-authentication failed", "user", user.ID, "ip", c.RealIP())
		return &passwordProblem{"Incorrect password.", http.StatusUnprocessableEntity}, nil
	}
	return nil, nil
}

// renderConfirm shows a confirm page for a sensitive action: with the
// password field when the session is outside its sudo window, and with the
// problem (and its status) when a password check just failed.
func (a *app) renderConfirm(c echo.Context, p views.ConfirmProps, au *authInfo, problem *passwordProblem) error {
	p.NeedPassword = !a.inSudo(au)
	status := http.StatusOK
	if problem != nil {
		p.NeedPassword, p.PasswordError, status = true, problem.text, problem.status
	}
	return a.render(c, status, views.ConfirmPage(p))
}
