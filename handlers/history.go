package handlers

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"doorman/db"
	"doorman/device"
	"doorman/paths"
	"doorman/views"
)

// historyPage is how many entries the activity page shows at a time.
const historyPage = 50

// methodLabels say how a session signed in.
var methodLabels = map[string]string{
	methodPassword: "Email and password", methodSignup: "Created the account", "demo": "Demo data",
	db.MethodPasswordTOTP: "Password and authenticator app", db.MethodPasswordRecovery: "Password and recovery code",
	db.MethodEmailLink: "Emailed sign-in link", db.MethodEmailLinkTOTP: "Emailed sign-in link and authenticator app",
	db.MethodPasswordReset: "Password reset by emailed link",
}

func methodLabel(m string) string {
	if l, ok := methodLabels[m]; ok {
		return l
	}
	return m
}

// recordEvent appends an event that has no write of its own (a failed
// sign-in, a wrong code). A failure to record it is logged, never the
// request's failure: the history is a record, not a gate.
func (a *app) recordEvent(c echo.Context, e db.SecurityEvent) {
	r := c.Request()
	ip := a.clientIP(r)
	e.At, e.IP, e.Location = a.now(), ip.String(), a.geo.Lookup(ip).Label
	if e.Device == "" {
		e.Device = device.Parse(truncate(r.UserAgent(), 512)).Label
	}
	if err := a.store.RecordSecurityEvent(r.Context(), e); err != nil {
		a.log.Error("record security event", "kind", e.Kind, "user", e.UserID, "err", err)
	}
}

// endedBy says who or what ended a session or token, in words; names is
// the page's cache of the user's session and token names by id.
func (a *app) endedBy(c echo.Context, reason, by, currentID string, names map[string]string) string {
	who := func() string {
		if by == currentID {
			return "this device"
		}
		if n, ok := names[by]; ok {
			return n
		}
		name := "another device"
		if s, _, err := a.store.SessionWithUser(c.Request().Context(), by); err == nil {
			name = s.DeviceLabel + ", " + s.Location
		} else if t, _, err := a.store.TokenWithUser(c.Request().Context(), by); err == nil {
			name = "“" + t.Name + "”"
		}
		names[by] = name
		return name
	}
	switch reason {
	case db.ReasonSignedOut:
		return "signed out on that device"
	case db.ReasonRevoked, db.ReasonTokenRevoked:
		return "ended from " + who()
	case db.ReasonRevokedOthers:
		return "ended by “Log out all other sessions” on " + who()
	case db.ReasonRevokedAll:
		return "ended by “Log out everywhere” on " + who()
	case db.ReasonPassword:
		return "ended when the password was changed on " + who()
	case db.ReasonTwoFactor:
		return "ended when two-factor was turned on on " + who()
	case db.ReasonSessionLimit:
		return "ended to make room for a new sign-in (at most " + strconv.Itoa(a.cfg.MaxSessionsPerUser) + " sessions)"
	case db.ReasonOperator:
		return "ended by the people who run this site"
	case db.ReasonDisabled:
		return "ended when the account was disabled"
	case db.ReasonRevokedViaAPI:
		return "ended through the API by " + who()
	case db.ReasonAppRemoved:
		return "ended when the site removed the app"
	case db.ReasonPasswordReset:
		return "ended when the password was reset by an emailed link"
	case db.ReasonNotMe:
		return "ended as not yours (“This wasn't me” or “Not you?”)"
	case db.ReasonEmailUndone:
		return "ended when the change of email address was undone"
	case db.ReasonIdleExpired:
		return "expired after " + durationWords(a.cfg.IdleTimeout) + " unused"
	case db.ReasonAbsoluteExpired:
		return "expired at the end of its " + durationWords(a.cfg.AbsoluteLifetime) + " lifetime"
	}
	return "ended"
}

// durationWords is d in whole days or hours ("28 days", "12 hours").
func durationWords(d time.Duration) string {
	if d >= 24*time.Hour {
		return plural(int(d/(24*time.Hour)), "day")
	}
	return plural(max(1, int(d/time.Hour)), "hour")
}

// eventRow is the view of one history entry.
func (a *app) eventRow(c echo.Context, e db.SecurityEvent, au *authInfo, names map[string]string, now time.Time) views.EventRow {
	r := views.EventRow{Kind: e.Kind, At: exactTime(e.At), AtISO: isoTime(e.At), Ago: relTime(now, e.At)}
	where := e.Location
	if e.IP != "" {
		where += " · " + e.IP
	}
	switch e.Kind {
	case db.EventSignIn:
		r.Title, r.Detail = "Signed in on "+e.Device, where+" · "+methodLabel(e.Method)
		r.URL = paths.Session(e.SessionID)
	case db.EventSignInFailed:
		r.Title, r.Detail = "A wrong password was entered", e.Device+" · "+where
	case db.EventTwoFactorFailed:
		r.Title, r.Detail = "A wrong two-factor code was entered after the right password", e.Device+" · "+where
	case db.EventSessionEnded:
		r.Title, r.Detail = e.Device+" signed out", a.endedBy(c, e.Reason, e.By, au.Session.ID, names)
		r.URL = paths.Session(e.SessionID)
	case db.EventTokenCreated:
		r.Title, r.Detail = "Access token “"+e.Detail+"” created", where
	case db.EventTokenRevoked:
		r.Title, r.Detail = "“"+e.Detail+"” disconnected", a.endedBy(c, e.Reason, e.By, au.Session.ID, names)
	case db.EventAppApproved:
		r.Title, r.Detail = "App “"+e.Detail+"” connected", "requested from "+where
	case db.EventAppConsented:
		r.Title, r.Detail = "Allowed “"+e.Detail+"” to sign you in", e.Device+" · "+where
		r.URL = paths.Session(e.SessionID)
	case db.EventAppSignIn:
		r.Title, r.Detail = "Signed in to “"+e.Detail+"” with Doorman", "from "+e.Device+" · "+where
		r.URL = paths.Session(e.SessionID)
	case db.EventAppDisconnected:
		r.Title, r.Detail = "“"+e.Detail+"” disconnected", "its tokens ended and your permission withdrawn"
	case db.EventRefreshReused:
		r.Title = "“" + e.Detail + "” presented a refresh token that was already used"
		r.Detail = "Doorman ended all of “" + e.Detail + "”'s tokens from that sign-in: someone else may hold a copy"
		r.URL = paths.Session(e.SessionID)
	case db.EventPasswordChanged:
		r.Title, r.Detail = "Password changed", e.Device+" · "+where
		switch e.Reason {
		case db.ReasonPasswordReset:
			r.Title = "Password reset by emailed link"
		case db.ReasonNotMe, db.ReasonEmailUndone:
			r.Title = "Password changed to take the account back"
		}
	case db.EventEmailChanged:
		r.Title, r.Detail = "Email changed to "+e.Detail, e.Device+" · "+where
		if e.Reason == db.ReasonEmailUndone {
			r.Title = "Email changed back to " + e.Detail
		}
	case db.EventEmailVerified:
		r.Title = "Email address " + e.Detail + " verified"
	case db.EventTwoFactorOn:
		r.Title = "Two-factor authentication turned on"
	case db.EventTwoFactorOff:
		r.Title = "Two-factor authentication turned off"
		switch e.Reason {
		case db.ReasonOperator:
			r.Detail = "by the people who run this site"
		case db.ReasonPasswordReset:
			r.Detail = "by a password reset from the account's address: it had been turned on before the address was verified"
		}
	case db.EventAccountReset:
		r.Title = "Every session, app and token ended"
		if e.Reason == db.ReasonOperator {
			r.Detail = "by the people who run this site; sign-ins in progress and emailed links stopped working too"
		}
	default:
		r.Title = e.Kind
	}
	return r
}

// recentEvents is the latest n entries of the user's history before event
// id before (0: the newest), as rows, with the logouts delivered to apps
// in the same stretch of time merged in; next is the next page's before
// (0: none).
func (a *app) recentEvents(c echo.Context, au *authInfo, before int64, n int) ([]views.EventRow, int64, error) {
	ctx, now := c.Request().Context(), a.now()
	start := now.Add(-a.cfg.HistoryKeep)
	list, err := a.store.ListSecurityEvents(ctx, au.User.ID, before, start, n+1)
	if err != nil {
		return nil, 0, err
	}
	var next int64
	from := start
	if len(list) > n {
		list, next = list[:n], list[n-1].ID
		from = list[n-1].At
	}
	// This page's stretch of time ends where the previous one's began:
	// at its last event, the one named by before.
	var to time.Time
	if before != 0 {
		prev, err := a.store.ListSecurityEvents(ctx, au.User.ID, before+1, start, 1)
		if err != nil {
			return nil, 0, err
		}
		if len(prev) == 1 && prev[0].ID == before {
			to = prev[0].At
		}
	}
	rows, err := a.withLogouts(c, au, list, a.eventRows(c, au, list, now), from, to, now)
	return rows, next, err
}

// eventRows are the rows of the history entries list.
func (a *app) eventRows(c echo.Context, au *authInfo, list []db.SecurityEvent, now time.Time) []views.EventRow {
	names := map[string]string{}
	rows := make([]views.EventRow, 0, len(list))
	for _, e := range list {
		rows = append(rows, a.eventRow(c, e, au, names, now))
	}
	return rows
}

// activityPage is the account's security history, newest first, a page at
// a time (?before=<id>).
func (a *app) activityPage(c echo.Context) error {
	au := authOf(c)
	var before int64
	if v := c.QueryParam("before"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			return echo.NewHTTPError(http.StatusBadRequest, "That page of the history does not exist.")
		}
		before = n
	}
	rows, next, err := a.recentEvents(c, au, before, historyPage)
	if err != nil {
		return fmt.Errorf("activity page: %w", err)
	}
	p := views.ActivityProps{Page: a.page(c, "Security activity", "security"), Events: rows,
		Keep: strconv.Itoa(int(a.cfg.HistoryKeep/(24*time.Hour))) + " days", First: before == 0}
	if next != 0 {
		p.OlderURL = paths.Activity + "?before=" + strconv.FormatInt(next, 10)
	}
	return a.render(c, http.StatusOK, views.ActivityPage(p))
}

// endedSessionDetails are the rows the details page adds for a session
// that ended: when, by whom, and the uses of its cookie refused since.
func (a *app) endedSessionDetails(c echo.Context, s db.Session, au *authInfo, now time.Time) []views.DetailRow {
	var rows []views.DetailRow
	if s.Revoked() {
		rows = append(rows, views.DetailRow{Label: "Ended", Value: exactTime(s.RevokedAt), ISO: isoTime(s.RevokedAt),
			Subtitle: a.endedBy(c, s.RevokedReason, s.RevokedBy, au.Session.ID, map[string]string{})})
		refused := views.DetailRow{Label: "Later uses of its cookie", Value: "None"}
		if s.RefusedCount > 0 {
			refused = views.DetailRow{Label: "Later uses of its cookie", Value: exactTime(s.LastRefusedAt), ISO: isoTime(s.LastRefusedAt),
				Subtitle: "Refused " + plural(s.RefusedCount, "time") + "; this was the last"}
		}
		rows = append(rows, refused)
		// The apps it had signed in to, told to sign it out: the
		// deliveries its ending owed (for it, and those for every session
		// of the user's made by the same ending).
		ds, err := a.logoutDeliveries(c.Request().Context(), au.User.ID, s.RevokedAt.Truncate(time.Second))
		if err != nil {
			a.log.Error("logout deliveries of a session", "session", s.ID, "err", err)
		}
		ds = slices.DeleteFunc(ds, func(d db.LogoutDelivery) bool {
			return d.SessionID != s.ID && (d.SessionID != "" || d.CreatedAt.Unix() != s.RevokedAt.Unix())
		})
		if sum := logoutSummary(ds); sum != "" {
			rows = append(rows, views.DetailRow{Label: "Apps it signed in to", Value: sum})
		}
	} else {
		rows = append(rows, views.DetailRow{Label: "Ended", Value: exactTime(s.ExpiresAt()), ISO: isoTime(s.ExpiresAt()), Subtitle: "It expired"})
	}
	return rows
}

// endedSession is the user's own session id, alive or not (the history
// links to ended ones); ErrNotFound for another user's.
func (a *app) endedSession(c echo.Context, userID int64, id string) (db.Session, error) {
	s, _, err := a.store.SessionWithUser(c.Request().Context(), id)
	if err == nil && s.UserID != userID {
		return db.Session{}, db.ErrNotFound
	}
	return s, err
}
