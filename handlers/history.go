package handlers

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
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
	db.MethodPasswordReset: "Password reset by emailed link", db.MethodPasskey: "Passkey",
}

func methodLabel(m string) string {
	if l, ok := methodLabels[m]; ok {
		return l
	}
	return m
}

// acting is the request's context with its browser (device, place,
// address) as the actor of the store writes made with it, so their history
// entries say where a change came from (db.WithActor): a password reset by
// emailed link, a second factor turned on or off, an address changed.
func (a *app) acting(c echo.Context) context.Context {
	w := a.whereFrom(c.Request(), a.now())
	return db.WithActor(c.Request().Context(), db.Actor{Device: w.Device, Location: w.Location, IP: w.IP})
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
		return "ended by “Sign out all other sessions” on " + who()
	case db.ReasonRevokedAll:
		return "ended by “Sign out everywhere” on " + who()
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

// joinMeta joins the parts present with " · ": a row's meta line never shows
// a separator with nothing on one side ("just now · ·").
func joinMeta(parts ...string) string {
	return strings.Join(slices.DeleteFunc(slices.Clone(parts), func(p string) bool { return p == "" }), " · ")
}

// byOperator is the words for a change no browser made: the people who
// run this site made it (an operator's command).
const byOperator = "by the people who run this site"

// eventFrom is where e came from: the device, place and address it names, or,
// for a change no browser made, who made it ("" if it says neither: an
// entry written before entries carried them).
func eventFrom(e db.SecurityEvent) string {
	if w := joinMeta(e.Device, e.Location, e.IP); w != "" {
		return w
	}
	if e.By == "operator" || e.Reason == db.ReasonOperator {
		return byOperator
	}
	return ""
}

// eventRow is the view of one history entry.
func (a *app) eventRow(c echo.Context, e db.SecurityEvent, au *authInfo, names map[string]string, now time.Time) views.EventRow {
	r := views.EventRow{Kind: e.Kind, At: exactTime(e.At), AtISO: isoTime(e.At), Ago: relTime(now, e.At)}
	where := joinMeta(e.Location, e.IP)
	switch e.Kind {
	case db.EventSignIn:
		r.Title, r.Detail = "Signed in on "+e.Device, joinMeta(where, methodLabel(e.Method))
		r.URL = paths.Session(e.SessionID)
	case db.EventSignInFailed:
		r.Title, r.Detail = "A wrong password was entered", eventFrom(e)
	case db.EventTwoFactorFailed:
		r.Title, r.Detail = "A wrong two-factor code was entered after the right password", eventFrom(e)
	case db.EventSessionEnded:
		r.Title, r.Detail = e.Device+" signed out", joinMeta(a.endedBy(c, e.Reason, e.By, au.Session.ID, names), where)
		r.URL = paths.Session(e.SessionID)
	case db.EventTokenCreated:
		r.Title, r.Detail = "Access token “"+e.Detail+"” created", eventFrom(e)
	case db.EventTokenRevoked:
		// One verb per thing (docs/WORDS.md): an access token is revoked,
		// an app disconnected. Entries from before the kind was recorded
		// say "ended".
		switch e.Method {
		case db.TokenPersonal:
			r.Title = "Access token “" + e.Detail + "” revoked"
		case db.TokenApp:
			r.Title = "“" + e.Detail + "” disconnected"
		default:
			r.Title = "“" + e.Detail + "” ended"
		}
		r.Detail = a.endedBy(c, e.Reason, e.By, au.Session.ID, names)
	case db.EventAppApproved:
		r.Title = "App “" + e.Detail + "” connected"
		if where != "" {
			r.Detail = "requested from " + where
		}
	case db.EventAppConsented:
		r.Title, r.Detail = "Allowed “"+e.Detail+"” to sign you in", eventFrom(e)
		r.URL = paths.Session(e.SessionID)
	case db.EventAppSignIn:
		r.Title = "Signed in to “" + e.Detail + "” with Doorman"
		if f := eventFrom(e); f != "" {
			r.Detail = "from " + f
		}
		r.URL = paths.Session(e.SessionID)
	case db.EventAppDisconnected:
		r.Title, r.Detail = "“"+e.Detail+"” disconnected", joinMeta("its tokens ended and your permission withdrawn", eventFrom(e))
	case db.EventRefreshReused:
		r.Title = "“" + e.Detail + "” presented a refresh token that was already used"
		r.Detail = "Doorman ended all of “" + e.Detail + "”'s tokens from that sign-in: someone else may hold a copy"
		r.URL = paths.Session(e.SessionID)
	case db.EventPasskeyAdded:
		r.Title, r.Detail = "Passkey “"+e.Detail+"” added", eventFrom(e)
	case db.EventPasskeyRemoved:
		r.Title, r.Detail = "Passkey “"+e.Detail+"” removed", eventFrom(e)
	case db.EventPasskeyCloned:
		r.Title = "Passkey “" + e.Detail + "” may have been copied"
		r.Detail = joinMeta("its signature counter went backwards when it signed in", eventFrom(e))
		r.URL = paths.Session(e.SessionID)
	case db.EventPasswordChanged:
		r.Title, r.Detail = "Password changed", eventFrom(e)
		switch e.Reason {
		case db.ReasonPasswordReset:
			r.Title = "Password reset by emailed link"
		case db.ReasonNotMe, db.ReasonEmailUndone:
			r.Title = "Password changed to take the account back"
		}
	case db.EventEmailChanged:
		r.Title, r.Detail = "Email changed to "+e.Detail, eventFrom(e)
		if e.Reason == db.ReasonEmailUndone {
			r.Title = "Email changed back to " + e.Detail
		}
	case db.EventEmailVerified:
		r.Title, r.Detail = "Email address "+e.Detail+" verified", eventFrom(e)
	case db.EventTwoFactorOn:
		r.Title, r.Detail = "Two-factor authentication turned on", eventFrom(e)
	case db.EventTwoFactorOff:
		r.Title, r.Detail = "Two-factor authentication turned off", eventFrom(e)
		if e.Reason == db.ReasonPasswordReset {
			r.Detail = joinMeta("by a password reset from the account's address: it had been turned on before the address was verified", r.Detail)
		}
	case db.EventAccountReset:
		r.Title, r.Detail = "Every session, app and token ended", eventFrom(e)
		if e.Reason == db.ReasonOperator {
			r.Detail = byOperator + "; sign-ins in progress and emailed links stopped working too"
		}
	default:
		r.Title, r.Detail = e.Kind, eventFrom(e)
	}
	return r
}

// eventGroup is one choice of the history's kind filter.
type eventGroup struct {
	value, label string
	kinds        []string
}

// eventGroups are the kinds of entry the history can be narrowed to: a
// small fixed set a person thinks in, each some kinds of event.
var eventGroups = []eventGroup{
	{"sign-ins", "Sign-ins", []string{db.EventSignIn, db.EventSignInFailed, db.EventTwoFactorFailed}},
	{"sessions", "Sessions ended", []string{db.EventSessionEnded, db.EventAccountReset}},
	{"apps", "Apps and tokens", []string{db.EventTokenCreated, db.EventTokenRevoked, db.EventAppApproved,
		db.EventAppConsented, db.EventAppSignIn, db.EventAppDisconnected, db.EventRefreshReused}},
	{"account", "Password and email", []string{db.EventPasswordChanged, db.EventEmailChanged, db.EventEmailVerified}},
	{"two-factor", "Two-factor", []string{db.EventTwoFactorOn, db.EventTwoFactorOff}},
	{"passkeys", "Passkeys", []string{db.EventPasskeyAdded, db.EventPasskeyRemoved, db.EventPasskeyCloned}},
}

// dateLayout is how the filter's dates are written (an <input
// type="date">'s value). Days are UTC days, as the times shown are UTC.
const dateLayout = "2006-01-02"

// historyFilter is the history page's filter as read from the query: the
// store's filter (within the keep window), the group chosen, the dates as
// entered and what is wrong with them.
type historyFilter struct {
	f                  db.EventFilter
	group, from, to    string
	label              string // the group's label, "" for every kind
	fromError, toError string
}

// logouts says whether the app logouts delivered belong in the filtered
// history: they are about apps, and every kind includes them.
func (h historyFilter) logouts() bool { return h.group == "" || h.group == "apps" }

// query is the filter as a query string ("" for none), for the next page's
// and the exports' links.
func (h historyFilter) query() url.Values {
	q := url.Values{}
	for k, v := range map[string]string{"kind": h.group, "from": h.from, "to": h.to} {
		if v != "" {
			q.Set(k, v)
		}
	}
	return q
}

// parseHistoryFilter reads ?kind=&from=&to= (the page's GET form): an
// unknown kind is a 400 (no form offers it); a date that is not one, or a
// range that ends before it starts, is a field error. The range is cut to
// the history's keep window (start): nothing older is kept.
func (a *app) parseHistoryFilter(c echo.Context, start time.Time) (historyFilter, error) {
	h := historyFilter{group: c.QueryParam("kind"), from: strings.TrimSpace(c.QueryParam("from")), to: strings.TrimSpace(c.QueryParam("to"))}
	h.f.Since = start
	if h.group != "" {
		i := slices.IndexFunc(eventGroups, func(g eventGroup) bool { return g.value == h.group })
		if i < 0 {
			return h, echo.NewHTTPError(http.StatusBadRequest, "There is no such kind of activity.")
		}
		h.f.Kinds, h.label = eventGroups[i].kinds, eventGroups[i].label
	}
	var from, to time.Time
	var err error
	if h.from != "" {
		if from, err = time.Parse(dateLayout, h.from); err != nil {
			h.fromError = "Enter a date like 2026-01-31."
		} else if from.After(start) {
			h.f.Since = from
		}
	}
	if h.to != "" {
		if to, err = time.Parse(dateLayout, h.to); err != nil {
			h.toError = "Enter a date like 2026-01-31."
		} else {
			// The whole of the last day.
			h.f.Until = to.AddDate(0, 0, 1)
		}
	}
	if h.fromError == "" && h.toError == "" && !from.IsZero() && !to.IsZero() && to.Before(from) {
		h.toError = "This is before the start date."
	}
	return h, nil
}

// recentEvents is the latest n entries of the user's history that pass
// filter h, before event id before (0: the newest), as rows, with the
// logouts delivered to apps in the same stretch of time merged in; next is
// the next page's before (0: none).
func (a *app) recentEvents(c echo.Context, au *authInfo, h historyFilter, before int64, n int) ([]views.EventRow, int64, error) {
	ctx, now := c.Request().Context(), a.now()
	list, err := a.store.FilterSecurityEvents(ctx, au.User.ID, before, h.f, n+1)
	if err != nil {
		return nil, 0, err
	}
	var next int64
	from := h.f.Since
	if len(list) > n {
		list, next = list[:n], list[n-1].ID
		from = list[n-1].At
	}
	rows := a.eventRows(c, au, list, now)
	if !h.logouts() {
		return rows, next, nil
	}
	// This page's stretch of time ends where the previous one's began:
	// at its last event, the one named by before (one the filter let
	// through), or where the filter's range ends.
	to := h.f.Until
	if before != 0 {
		prev, err := a.store.FilterSecurityEvents(ctx, au.User.ID, before+1, h.f, 1)
		if err != nil {
			return nil, 0, err
		}
		if len(prev) == 1 && prev[0].ID == before {
			to = prev[0].At
		}
	}
	rows, err = a.withLogouts(c, au, list, rows, from, to, now)
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
// a time (?before=<id>), narrowed by the filter form (?kind=&from=&to=).
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
	now := a.now()
	start := now.Add(-a.cfg.HistoryKeep)
	h, err := a.parseHistoryFilter(c, start)
	if err != nil {
		return err
	}
	p := views.ActivityProps{Page: a.page(c, "Security activity", "security"),
		Keep: strconv.Itoa(int(a.cfg.HistoryKeep/(24*time.Hour))) + " days", First: before == 0,
		Filter: a.filterProps(h, start, now)}
	if h.fromError != "" || h.toError != "" {
		return a.render(c, http.StatusUnprocessableEntity, views.ActivityPage(p))
	}
	rows, next, err := a.recentEvents(c, au, h, before, historyPage)
	if err != nil {
		return fmt.Errorf("activity page: %w", err)
	}
	p.Events = rows
	if next != 0 {
		q := h.query()
		q.Set("before", strconv.FormatInt(next, 10))
		p.OlderURL = paths.Activity + "?" + q.Encode()
	}
	return a.render(c, http.StatusOK, views.ActivityPage(p))
}

// filterProps is the filter form's view of h.
func (a *app) filterProps(h historyFilter, start, now time.Time) views.ActivityFilter {
	p := views.ActivityFilter{From: h.from, To: h.to, FromError: h.fromError, ToError: h.toError,
		Min: start.UTC().Format(dateLayout), Max: now.UTC().Format(dateLayout),
		Active: h.group != "" || h.from != "" || h.to != ""}
	p.Kinds = append(p.Kinds, views.KindOption{Value: "", Label: "All activity", Selected: h.group == ""})
	for _, g := range eventGroups {
		p.Kinds = append(p.Kinds, views.KindOption{Value: g.value, Label: g.label, Selected: h.group == g.value})
	}
	var parts []string
	if h.label != "" {
		parts = append(parts, h.label)
	}
	if h.from != "" && h.fromError == "" {
		parts = append(parts, "from "+h.from)
	}
	if h.to != "" && h.toError == "" {
		parts = append(parts, "to "+h.to)
	}
	p.Summary = strings.Join(parts, ", ")
	p.CSVURL, p.JSONURL = paths.ActivityCSV, paths.ActivityJSON
	if q := h.query().Encode(); q != "" {
		p.CSVURL, p.JSONURL = p.CSVURL+"?"+q, p.JSONURL+"?"+q
	}
	return p
}

// exportBatch is how many history entries an export reads at a time: it
// streams them, so a long history is never held whole.
const exportBatch = 200

// exportedEvent is one history entry in an export: the words the page
// shows, and the device, place and address apart.
type exportedEvent struct {
	At       string `json:"at"` // RFC 3339, UTC
	Kind     string `json:"kind"`
	Title    string `json:"title"`
	Detail   string `json:"detail"`
	Device   string `json:"device"`
	Location string `json:"location"`
	IP       string `json:"ip"`
}

// exportActivity downloads the signed-in person's own history (never
// anyone else's: the user id is the session's), the page's filter applied,
// as CSV or JSON by the path's extension, within the history's keep window
// (the store keeps no more), streamed a batch at a time.
func (a *app) exportActivity(c echo.Context) error {
	au := authOf(c)
	now := a.now()
	h, err := a.parseHistoryFilter(c, now.Add(-a.cfg.HistoryKeep))
	if err != nil {
		return err
	}
	if h.fromError != "" || h.toError != "" {
		return echo.NewHTTPError(http.StatusBadRequest, "Those dates are not a range of days: go back to the activity page and correct them.")
	}
	ctx := c.Request().Context()
	// The first batch before any header, so a failing store still gets
	// the error page rather than an empty file.
	list, err := a.store.FilterSecurityEvents(ctx, au.User.ID, 0, h.f, exportBatch)
	if err != nil {
		return fmt.Errorf("export activity: %w", err)
	}
	csvOut := strings.HasSuffix(c.Path(), ".csv")
	name := "doorman-security-activity-" + now.UTC().Format(dateLayout)
	res := c.Response()
	if csvOut {
		res.Header().Set(echo.HeaderContentType, "text/csv; charset=utf-8")
		name += ".csv"
	} else {
		res.Header().Set(echo.HeaderContentType, echo.MIMEApplicationJSON)
		name += ".json"
	}
	res.Header().Set(echo.HeaderContentDisposition, `attachment; filename="`+name+`"`)
	res.Header().Set("Cache-Control", "no-store")
	res.WriteHeader(http.StatusOK)
	w := newExportWriter(res, csvOut)
	names := map[string]string{}
	for len(list) > 0 {
		for _, e := range list {
			r := a.eventRow(c, e, au, names, now)
			w.write(exportedEvent{At: isoTime(e.At), Kind: e.Kind, Title: r.Title, Detail: r.Detail,
				Device: e.Device, Location: e.Location, IP: e.IP})
		}
		res.Flush()
		if len(list) < exportBatch {
			break
		}
		if list, err = a.store.FilterSecurityEvents(ctx, au.User.ID, list[len(list)-1].ID, h.f, exportBatch); err != nil {
			// The status is sent: the file ends short, and the log says why.
			a.log.Error("export activity", "user", au.User.ID, "err", err)
			return nil
		}
	}
	return w.close()
}

// exportWriter writes exported entries as CSV rows (with a header row)
// or as the elements of one JSON array.
type exportWriter struct {
	csv  *csv.Writer
	json io.Writer
	n    int
}

func newExportWriter(w io.Writer, csvOut bool) *exportWriter {
	if csvOut {
		cw := csv.NewWriter(w)
		_ = cw.Write([]string{"at", "kind", "title", "detail", "device", "location", "ip"})
		return &exportWriter{csv: cw}
	}
	_, _ = io.WriteString(w, "[")
	return &exportWriter{json: w}
}

func (w *exportWriter) write(e exportedEvent) {
	w.n++
	if w.csv != nil {
		_ = w.csv.Write([]string{csvCell(e.At), csvCell(e.Kind), csvCell(e.Title), csvCell(e.Detail),
			csvCell(e.Device), csvCell(e.Location), csvCell(e.IP)})
		w.csv.Flush()
		return
	}
	b, _ := json.Marshal(e)
	if w.n > 1 {
		_, _ = io.WriteString(w.json, ",")
	}
	_, _ = io.WriteString(w.json, "\n")
	_, _ = w.json.Write(b)
}

func (w *exportWriter) close() error {
	if w.csv != nil {
		w.csv.Flush()
		return w.csv.Error()
	}
	_, err := io.WriteString(w.json, "\n]\n")
	return err
}

// csvCell is v made safe for a spreadsheet: a cell starting with = + - @
// (or a tab or carriage return) would be read as a formula, and the
// history holds text others chose (an app's name, a device's user agent),
// so it gets a leading quote and is shown as text.
func csvCell(v string) string {
	if v != "" && strings.ContainsRune("=+-@\t\r", rune(v[0])) {
		return "'" + v
	}
	return v
}

// endedSessionDetails are the rows the details page adds for a session
// that ended: when, by whom, and the uses of its cookie refused since.
func (a *app) endedSessionDetails(c echo.Context, s db.Session, au *authInfo, now time.Time) []views.DetailRow {
	var rows []views.DetailRow
	if s.Revoked() {
		rows = append(rows, views.DetailRow{Label: "Ended", Value: exactTime(s.RevokedAt), ISO: isoTime(s.RevokedAt),
			Subtitle: a.endedBy(c, s.RevokedReason, s.RevokedBy, au.Session.ID, map[string]string{})})
		// Its cookie presented after it ended: someone (this browser, or
		// whoever copied the cookie) still holds it. Said plainly.
		refused := views.DetailRow{Label: "Used again after it ended", Value: "No"}
		if s.RefusedCount > 0 {
			refused = views.DetailRow{Label: "Used again after it ended", Value: exactTime(s.LastRefusedAt), ISO: isoTime(s.LastRefusedAt),
				Subtitle: "Turned away " + plural(s.RefusedCount, "time") + ", this the last: whoever tried still has its cookie, and it no longer works"}
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
