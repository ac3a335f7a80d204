package handlers

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/labstack/echo/v4"

	"doorman/db"
	"doorman/device"
	"doorman/mails"
	"doorman/paths"
	"doorman/sessiontoken"
)

// Mail is how the handlers send email: they compose each mail and queue it
// in the transaction of what causes it; the outbox worker (package mailer)
// sends it.
type Mail struct {
	// BaseURL is the public origin every link in a mail starts with
	// (https://id.example.com), without a trailing slash.
	BaseURL string
	// Kick wakes the outbox worker after a mail was queued, so it leaves
	// at once rather than at the worker's next poll; nil: no worker here.
	Kick func()
	// DevDir, when set, is the folder the development transport writes
	// mails to, served at /dev/mail so a developer can follow every link
	// without a mail server. Set only when asked for (-dev-mail, never in
	// a deployment); the viewer answers only requests from this machine.
	DevDir string
}

// How long each emailed link works. Short where the link alone signs in or
// sets a password (OWASP: minutes, not days); a week where it only reports
// or undoes, so that someone reading mail late can still act on it.
const (
	resetLinkLifetime  = 30 * time.Minute
	signInLinkLifetime = 15 * time.Minute
	verifyLinkLifetime = 7 * 24 * time.Hour
	changeLinkLifetime = 24 * time.Hour
	undoLinkLifetime   = 7 * 24 * time.Hour
	// cancelLinkLifetime: the cancel link works as long as the change
	// it cancels could be confirmed.
	cancelLinkLifetime  = changeLinkLifetime
	alertLinkLifetime   = 7 * 24 * time.Hour
	knownPlaceWindow    = 90 * 24 * time.Hour
	linkRequestsPerHour = 5 // per address and purpose
)

// mailOn reports whether this server sends mail.
func (a *app) mailOn() bool { return a.mail != nil }

// mailURL is the absolute URL of path on the public origin.
func (a *app) mailURL(path string) string { return a.mail.BaseURL + path }

// kickMail wakes the worker if mails were queued.
func (a *app) kickMail(mails []db.Mail) {
	if len(mails) > 0 && a.mail != nil && a.mail.Kick != nil {
		a.mail.Kick()
	}
}

// whereFrom is the device, place and address of request r at now.
func (a *app) whereFrom(r *http.Request, now time.Time) mails.Where {
	ip := a.clientIP(r)
	return mails.Where{Device: device.Parse(truncate(r.UserAgent(), 512)).Label, Location: a.geo.Lookup(ip).Label, IP: ip.String(), At: now}
}

// whereOfSession is where session s signed in.
func whereOfSession(s db.Session) mails.Where {
	return mails.Where{Device: s.DeviceLabel, Location: s.Location, IP: s.IP, At: s.CreatedAt}
}

// newLink makes an emailed link of purpose for user, to path, asked for from
// w, and returns its row (for the store) and its absolute URL (for the
// mail). The URL carries "<id>.<secret>": only the secret's hash is kept.
func (a *app) newLink(user db.User, purpose, path string, ttl time.Duration, w mails.Where) (db.LinkToken, string) {
	tok := sessiontoken.New()
	l := db.LinkToken{
		ID: tok.ID, SecretHash: tok.Hash, UserID: user.ID, Purpose: purpose, Epoch: user.Epoch, AccountEmail: user.Email,
		CreatedAt: w.At, ExpiresAt: w.At.Add(ttl), IP: w.IP, Device: w.Device, Location: w.Location,
	}
	return l, a.mailURL(path) + "?token=" + url.QueryEscape(tok.CookieValue)
}

// linkState is what an emailed link's token turned out to be.
type linkState int

const (
	linkBad     linkState = iota // malformed, unknown, forged, or of another purpose
	linkUsable                   // unused, unexpired, not void
	linkUsed                     // used already
	linkExpired                  // too late
	linkVoid                     // void by the revocation rule: the account was reset, or its address changed, since it was sent
)

// openLink reads the token of an emailed link of purpose (the query on GET,
// the form on POST) and finds its row and user. The secret is compared in
// constant time; what a forged token gets is indistinguishable from an
// unknown one.
func (a *app) openLink(c echo.Context, purpose string) (db.LinkToken, db.User, string, linkState, error) {
	value := c.QueryParam("token")
	if c.Request().Method == http.MethodPost {
		value = formValue(c, "token")
	}
	id, secret, ok := sessiontoken.Parse(value)
	if !ok {
		return db.LinkToken{}, db.User{}, "", linkBad, nil
	}
	ctx := c.Request().Context()
	l, err := a.store.LinkToken(ctx, id)
	if errors.Is(err, db.ErrNotFound) {
		return l, db.User{}, "", linkBad, nil
	}
	if err != nil {
		return l, db.User{}, "", linkBad, fmt.Errorf("open link: %w", err)
	}
	if l.Purpose != purpose || !sessiontoken.Matches(secret, l.SecretHash) {
		return db.LinkToken{}, db.User{}, "", linkBad, nil
	}
	user, err := a.store.UserByID(ctx, l.UserID)
	if errors.Is(err, db.ErrNotFound) {
		return l, user, "", linkBad, nil
	}
	if err != nil {
		return l, user, "", linkBad, fmt.Errorf("open link: %w", err)
	}
	switch {
	case !l.UsedAt.IsZero():
		return l, user, value, linkUsed, nil
	case !a.now().Before(l.ExpiresAt):
		return l, user, value, linkExpired, nil
	case db.LinkDiesWithReset(purpose) && (l.Epoch != user.Epoch || l.AccountEmail != "" && l.AccountEmail != user.Email):
		// The revocation rule (the store checks it again when the link is
		// used): void since the account was reset, or since its address
		// changed: the link went to a mailbox that is no longer the
		// account's, or was asked for by whoever held it before.
		return l, user, value, linkVoid, nil
	}
	return l, user, value, linkUsable, nil
}

// noReferrer keeps the page an emailed link opened from handing its URL,
// token included, to anything it links to or loads.
func noReferrer(c echo.Context) { c.Response().Header().Set("Referrer-Policy", "no-referrer") }

// signInAlert is the new sign-in alert for session row of user, or nothing
// when none is due: mail is off, the user turned alerts off, it is the
// sign-up's own session, or the device and place were seen on the account
// in the last 90 days (same device label — browser and OS family — and an
// address in the same /16 or /64: db.Network).
func (a *app) signInAlert(c echo.Context, user db.User, row db.Session) ([]db.Mail, error) {
	if !a.mailOn() || user.SignInAlertsOff || row.AuthMethod == methodSignup {
		return nil, nil
	}
	ctx := c.Request().Context()
	network := db.Network(row.IP)
	seen, err := a.store.SignInPlaceSeen(ctx, user.ID, row.DeviceLabel, network, row.CreatedAt.Add(-knownPlaceWindow))
	if err != nil {
		return nil, fmt.Errorf("sign-in alert: %w", err)
	}
	if seen {
		return nil, nil
	}
	// An account older than sign-in places: its live sessions count as
	// seen, so upgrading does not mail everyone at their next sign-in.
	live, err := a.store.ListSessions(ctx, user.ID, row.CreatedAt)
	if err != nil {
		return nil, fmt.Errorf("sign-in alert: %w", err)
	}
	for _, s := range live {
		if s.DeviceLabel == row.DeviceLabel && db.Network(s.IP) == network {
			return nil, nil
		}
	}
	w := whereOfSession(row)
	known, knownURL := a.newLink(user, db.LinkSignInKnown, paths.SignInKnown, alertLinkLifetime, w)
	notMe, notMeURL := a.newLink(user, db.LinkSignInNotMe, paths.SignInNotMe, alertLinkLifetime, w)
	known.SessionID, notMe.SessionID = row.ID, row.ID
	m := a.mails.NewSignIn(user.Email, w, methodLabel(row.AuthMethod), knownURL, notMeURL, a.mailURL(paths.Settings), notMe.ExpiresAt)
	m.UserID, m.Links = user.ID, []db.LinkToken{known, notMe}
	a.log.Info("new sign-in alert", "user", user.ID, "session", row.ID)
	return []db.Mail{m}, nil
}

// bindingHash is what a sign-in link stores of the binding cookie's value.
func bindingHash(value string) []byte {
	sum := sha256.Sum256([]byte(value))
	return sum[:]
}

// securityNotice is a security notice to user (two-factor on or off) made
// by build, or none when mail is off.
func (a *app) securityNotice(c echo.Context, user db.User, page string, build func(to string, w mails.Where, pageURL string) db.Mail) []db.Mail {
	if !a.mailOn() {
		return nil
	}
	m := build(user.Email, a.whereFrom(c.Request(), a.now()), a.mailURL(page))
	m.UserID = user.ID
	return []db.Mail{m}
}
