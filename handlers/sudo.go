package handlers

import (
	"fmt"
	"net/http"

	"github.com/labstack/echo/v4"

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

// reauth is what a re-authentication gate decided: passed (the action may
// go ahead), refused (problem says why, ready to show next to the field,
// with the status to answer), or failed (err: the check itself could not
// be made). Exactly one holds, so each call site is one branch:
//
//	if g := a.reauthenticate(c, au, "password"); !g.passed() {
//		return g.refuse(func(p *passwordProblem) error { return page(p) })
//	}
type reauth struct {
	problem *passwordProblem
	err     error
}

// passed reports whether the action may go ahead.
func (g reauth) passed() bool { return g.problem == nil && g.err == nil }

// refuse answers a request the gate did not pass: the error when the check
// failed, otherwise page, shown with why (problem is never nil there).
func (g reauth) refuse(page func(problem *passwordProblem) error) error {
	if g.err != nil {
		return g.err
	}
	return page(g.problem)
}

// reauthenticate is the gate of an action that the sudo window covers
// (ending sessions). It passes when the session is inside its sudo window,
// or when the form's field holds the right password: then the session has
// been re-authenticated (see confirmPassword).
func (a *app) reauthenticate(c echo.Context, au *authInfo, field string) reauth {
	if a.inSudo(au) {
		return reauth{}
	}
	return a.confirmPassword(c, au, field)
}

// confirmPassword is the gate of the actions that always ask for the
// current password, whatever the sudo window says (changing the email,
// deleting the account): with a copied cookie alone, nobody can take the
// account. It passes when the form's field holds the right password, which
// re-authenticates the session: it is rotated (a new secret, so an earlier
// copy of the cookie is worth nothing) and starts a new sudo window.
func (a *app) confirmPassword(c echo.Context, au *authInfo, field string) reauth {
	pw := formValue(c, field)
	if pw == "" {
		return reauth{problem: &passwordProblem{"Enter your password to continue.", http.StatusForbidden}}
	}
	if p, err := a.checkPassword(c, au, pw); p != nil || err != nil {
		return reauth{problem: p, err: err}
	}
	if err := a.sessions.Rotate(c, au); err != nil {
		return reauth{err: err}
	}
	return reauth{}
}

// checkPassword verifies the signed-in user's password. nil means it was
// right. Wrong passwords are counted per session (scope "session:<id>"), not
// against the account's sign-in counters: a stranger failing to sign in can
// never stop the owner's live session from confirming an action, and a
// stolen cookie guessing the password is held to the same limit as a
// sign-in. The hash is read here, not carried with every request's session
// check.
func (a *app) checkPassword(c echo.Context, au *authInfo, pw string) (*passwordProblem, error) {
	// Counted before the hash, atomically (see reserve): wrong passwords
	// sent at once through one session get no more checks than the limit.
	try, wait, err := a.reserveGuess(c, a.accountKey(au.User.Email), "", scopeSession+au.Session.ID)
	if err != nil {
		return nil, err
	}
	if wait > 0 {
		t := throttled{wait}
		t.setHeader(c)
		a.log.Warn("re-authentication throttled", "user", au.User.ID, "session", au.Session.ID, "retry_after", wait)
		return &passwordProblem{t.message(), http.StatusTooManyRequests}, nil
	}
	user, err := a.store.UserByID(c.Request().Context(), au.User.ID)
	if err != nil {
		a.release(c, try) // never checked
		return nil, fmt.Errorf("check password: %w", err)
	}
	ok, err := a.hasher.Verify(c.Request().Context(), user.PasswordHash, pw)
	if err != nil {
		a.release(c, try)
		return nil, fmt.Errorf("verify password: %w", err)
	}
	if !ok {
		a.log.Info("re-authentication failed", "user", user.ID, "session", au.Session.ID, "ip", c.RealIP())
		return &passwordProblem{"Incorrect password.", http.StatusUnprocessableEntity}, nil
	}
	a.release(c, try)
	return nil, nil
}

// renderConfirm shows a confirm page for a sensitive action: with the
// password field when the session is outside its sudo window (or the action
// always asks, p.NeedPassword), and with the
// problem (and its status) when a password check just failed.
func (a *app) renderConfirm(c echo.Context, p views.ConfirmProps, au *authInfo, problem *passwordProblem) error {
	p.NeedPassword = p.NeedPassword || !a.inSudo(au)
	status := http.StatusOK
	if problem != nil {
		p.NeedPassword, p.PasswordError, status = true, problem.text, problem.status
	}
	return a.render(c, status, views.ConfirmPage(p))
}
