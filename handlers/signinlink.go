package handlers

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base32"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/labstack/echo/v4"

	"doorman/db"
	"doorman/paths"
	"doorman/views"
)

// Sign-in by emailed link. The link is single use, works 15 minutes, and
// dies with a reset of the account's sessions. It is bound to the browser
// that asked for it (a random cookie set then, whose hash the link row
// keeps): there it signs in at once; anywhere else it first shows where and
// when it was asked for, and asks. A mail scanner that opens the link, or
// someone it was forwarded to, therefore signs nothing in by opening it.

// requestSignInLink mails a sign-in link for the address in the sign-in form.
func (a *app) requestSignInLink(c echo.Context) error {
	f := credentialsForm{Email: normaliseEmail(formValue(c, "email")), Next: safeNext(formValue(c, "next"))}
	if f.EmailError = emailError(f.Email); f.EmailError != "" {
		return a.authPage(c, http.StatusUnprocessableEntity, false, f, "")
	}
	wait, err := a.linkWait(c, f.Email, db.LinkSignIn)
	if err != nil {
		return fmt.Errorf("sign-in link: %w", err)
	}
	if wait > 0 {
		t := throttled{wait}
		t.setHeader(c)
		return a.authPage(c, http.StatusTooManyRequests, false, f, t.message())
	}
	// Set whether or not an account uses the address: same answer.
	raw := make([]byte, 32)
	rand.Read(raw)
	binding := base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(raw)
	a.writeCookie(c, a.cookieName(c.Request(), linkCookie), binding, int(signInLinkLifetime/time.Second))
	// Where the sign-in was going (an app's sign-in, next=) rides beside the
	// binding, in this browser only: the mailed link carries no next, so a
	// link opened elsewhere leads nowhere but Doorman's own pages.
	if f.Next != "" {
		a.writeCookie(c, a.cookieName(c.Request(), linkNextCookie), base64.RawURLEncoding.EncodeToString([]byte(f.Next)), int(signInLinkLifetime/time.Second))
	} else {
		a.writeCookie(c, a.cookieName(c.Request(), linkNextCookie), "", -1)
	}
	err = a.queueLinkMail(c, f.Email, "a sign-in link", func(user db.User, now time.Time) db.Mail {
		w := a.whereFrom(c.Request(), now)
		link, u := a.newLink(user, db.LinkSignIn, paths.LoginLinkOpen, signInLinkLifetime, w)
		link.BindingHash, link.Email = bindingHash(binding), user.Email
		m := a.mails.SignInLink(f.Email, w, u, link.ExpiresAt)
		m.Links = []db.LinkToken{link}
		return m
	})
	if err != nil {
		return fmt.Errorf("sign-in link: %w", err)
	}
	a.addFlash(c, flashSuccess, "If an account uses "+f.Email+", we sent it a sign-in link. Open it in this browser within 15 minutes; it works once.")
	if f.Next != "" {
		// Still on the way to the app: the page says so, and its forms go on.
		return c.Redirect(http.StatusSeeOther, paths.Login+"?next="+url.QueryEscape(f.Next))
	}
	return c.Redirect(http.StatusSeeOther, paths.Login)
}

// linkNext is where the sign-in that asked for link l was going, when this
// is the browser that asked for it; "" otherwise.
func (a *app) linkNext(c echo.Context, l db.LinkToken) string {
	if !a.sameBrowser(c, l) {
		return ""
	}
	ck, err := c.Request().Cookie(a.cookieName(c.Request(), linkNextCookie))
	if err != nil {
		return ""
	}
	next, err := base64.RawURLEncoding.DecodeString(ck.Value)
	if err != nil {
		return ""
	}
	return safeNext(string(next))
}

// sameBrowser reports whether the request carries the binding cookie of
// link l (compared in constant time).
func (a *app) sameBrowser(c echo.Context, l db.LinkToken) bool {
	ck, err := c.Request().Cookie(a.cookieName(c.Request(), linkCookie))
	if err != nil || ck.Value == "" || len(l.BindingHash) == 0 {
		return false
	}
	return subtle.ConstantTimeCompare(bindingHash(ck.Value), l.BindingHash) == 1
}

// openSignInLink is where a sign-in link leads: in the browser that asked
// for it (and with no second factor to ask) it signs in at once.
func (a *app) openSignInLink(c echo.Context) error {
	l, user, token, tf, state, err := a.signInLinkOf(c)
	if err != nil {
		return err
	}
	if state != linkUsable {
		return a.signInLinkProblem(c, state)
	}
	same := a.sameBrowser(c, l)
	if same && !tf.Enabled() {
		return a.signInByLink(c, l, user, db.MethodEmailLink)
	}
	return a.signInLinkPage(c, http.StatusOK, l, user, token, !same, tf.Enabled(), "")
}

func (a *app) signInLinkPage(c echo.Context, status int, l db.LinkToken, user db.User, token string, other, needCode bool, codeError string) error {
	noReferrer(c)
	// Its form ends in a redirect to the app the sign-in was going to.
	if src := a.nextFormAction(c, a.linkNext(c, l)); src != "" {
		c.Set(ctxFormAction, src)
	}
	return a.render(c, status, views.SignInLinkPage(views.SignInLinkProps{
		Page: a.page(c, "Sign in with your emailed link", ""), Token: token, Email: user.Email,
		Requested: linkDetails(l), OtherBrowser: other, NeedCode: needCode, CodeError: codeError,
	}))
}

// useSignInLink signs in with the link after the page asked (and took the
// code, when two-factor is on).
func (a *app) useSignInLink(c echo.Context) error {
	l, user, token, tf, state, err := a.signInLinkOf(c)
	if err != nil {
		return err
	}
	if state != linkUsable {
		return a.signInLinkProblem(c, state)
	}
	method := db.MethodEmailLink
	if tf.Enabled() {
		problem, status, err := a.linkCode(c, user, tf)
		if err != nil {
			return err
		}
		if problem != "" {
			return a.signInLinkPage(c, status, l, user, token, !a.sameBrowser(c, l), true, problem)
		}
		method = db.MethodEmailLinkTOTP
	}
	return a.signInByLink(c, l, user, method)
}

// signInLinkOf is the request's sign-in link, its user and their
// two-factor state. state says whether the link can be used; when it
// can't, the caller answers with signInLinkProblem (tf is not read).
func (a *app) signInLinkOf(c echo.Context) (l db.LinkToken, user db.User, token string, tf db.TwoFactor, state linkState, err error) {
	l, user, token, state, err = a.openLink(c, db.LinkSignIn)
	if err != nil || state != linkUsable {
		return l, user, token, tf, state, err
	}
	tf, err = a.twoFactorState(c, user.ID)
	return l, user, token, tf, state, err
}

// signInLinkProblem answers a sign-in link that can't be used (state).
func (a *app) signInLinkProblem(c echo.Context, state linkState) error {
	return a.linkProblem(c, state, paths.Login, "Ask for a new link")
}

// signInByLink uses link l up and signs the browser in as user, in one
// transaction.
func (a *app) signInByLink(c echo.Context, l db.LinkToken, user db.User, method string) error {
	if user.Disabled() {
		return a.render(c, http.StatusForbidden, views.MessagePage(views.MessageProps{Page: a.page(c, "Account disabled", ""), Heading: "This account has been disabled",
			Message: "Contact the people who run this site.", Problem: true}))
	}
	next := a.linkNext(c, l)
	evicted, err := a.sessions.StartWithLink(c, l.ID, user, method)
	switch {
	case errors.Is(err, db.ErrLinkUsed), errors.Is(err, db.ErrNotFound), errors.Is(err, db.ErrSignInsReset):
		return a.linkProblem(c, linkUsed, paths.Login, "Ask for a new link")
	case err != nil:
		return fmt.Errorf("sign in with link: %w", err)
	}
	a.writeCookie(c, a.cookieName(c.Request(), linkCookie), "", -1)
	a.writeCookie(c, a.cookieName(c.Request(), linkNextCookie), "", -1)
	a.signedIn(c, evicted)
	a.setDeviceCookie(c, user)
	return c.Redirect(http.StatusSeeOther, afterSignIn(next))
}

// signInKnownForm is where "This was me" in a new sign-in alert leads: it
// shows the sign-in and asks. Opening it changes nothing, so a mail scanner
// that fetches every link can't vouch for a sign-in (and silence the alert
// the next one from that place would send).
func (a *app) signInKnownForm(c echo.Context) error {
	l, _, token, state, err := a.openLink(c, db.LinkSignInKnown)
	if err != nil {
		return err
	}
	if state != linkUsable {
		return a.knownLinkProblem(c, l, state)
	}
	noReferrer(c)
	return a.render(c, http.StatusOK, views.LinkActionPage(views.LinkActionProps{
		Page: a.page(c, "Was this you?", ""), Heading: "Was this sign-in you?",
		Message: []string{"If it was, Doorman will remember this device and place as yours and won't email you about sign-ins from it. If it wasn't, don't confirm: use “This wasn't me” in the same mail instead."},
		About:   linkDetails(l), Action: paths.SignInKnown, Token: token, Button: "Yes, this was me",
	}))
}

// signInKnown is "This was me", posted: the sign-in's device and place
// become known, in the transaction that uses the link up (the link obeys
// the revocation rule: after a reset it vouches for nothing).
func (a *app) signInKnown(c echo.Context) error {
	l, user, _, state, err := a.openLink(c, db.LinkSignInKnown)
	if err != nil {
		return err
	}
	if state != linkUsable {
		return a.knownLinkProblem(c, l, state)
	}
	noReferrer(c)
	_, err = a.store.UseLinkToken(c.Request().Context(), l.ID, db.LinkSignInKnown, a.now())
	if errors.Is(err, db.ErrLinkUsed) || errors.Is(err, db.ErrNotFound) {
		return a.linkProblem(c, linkUsed, paths.Security, "See where you're signed in")
	}
	if err != nil {
		return fmt.Errorf("sign-in known: %w", err)
	}
	if err := a.store.RememberSignInPlace(c.Request().Context(), user.ID, l.Device, db.Network(l.IP), a.now()); err != nil {
		return fmt.Errorf("sign-in known: %w", err)
	}
	a.log.Info("sign-in place confirmed", "user", user.ID, "session", l.SessionID)
	return a.render(c, http.StatusOK, views.MessagePage(views.MessageProps{
		Page: a.page(c, "Thanks", ""), Heading: "Thanks for checking", LinkURL: paths.Security, LinkLabel: "See where you're signed in",
		Message: "Doorman will remember " + l.Device + " in " + l.Location + " as yours, and won't email you about sign-ins from it.",
	}))
}

// knownLinkProblem answers a "This was me" link that can't be used.
func (a *app) knownLinkProblem(c echo.Context, l db.LinkToken, state linkState) error {
	if state == linkUsed {
		noReferrer(c)
		return a.render(c, http.StatusOK, views.MessagePage(views.MessageProps{
			Page: a.page(c, "Thanks", ""), Heading: "Thanks for checking", LinkURL: paths.Security, LinkLabel: "See where you're signed in",
			Message: "You already told us this sign-in (" + l.Device + ", " + l.Location + ") was you.",
		}))
	}
	return a.linkProblem(c, state, paths.Security, "See where you're signed in")
}
