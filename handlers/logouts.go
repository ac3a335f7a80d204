package handlers

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"doorman/backchannel"
	"doorman/db"
	"doorman/views"
)

// The back-channel logouts owed to apps, as people read them: in the
// history (one entry per delivery, merged by time with the events), and
// in the confirmation after an action that ended sessions ("Signed out of
// Grafana and Gitea; Wiki did not answer yet — retrying").

// logoutReader is the part of the store that lists a user's deliveries
// (db.OIDCStore has it; a store without the provider's part has none).
type logoutReader interface {
	LogoutDeliveries(ctx context.Context, userID int64, since time.Time) ([]db.LogoutDelivery, error)
}

// logoutDeliveries returns the user's deliveries made at or after since,
// newest first; none when the store keeps none.
func (a *app) logoutDeliveries(ctx context.Context, userID int64, since time.Time) ([]db.LogoutDelivery, error) {
	r, ok := a.store.(logoutReader)
	if !ok {
		return nil, nil
	}
	return r.LogoutDeliveries(ctx, userID, since)
}

// logoutStatus is where a delivery stands, as the pages tell it.
type logoutStatus int

const (
	logoutSending   logoutStatus = iota // not tried yet, or its first try under way
	logoutRetrying                      // tried, failed, to be tried again
	logoutGaveUp                        // given up
	logoutDelivered                     // the app answered 2xx
)

func statusOf(d db.LogoutDelivery) logoutStatus {
	switch {
	case d.State == db.LogoutDelivered:
		return logoutDelivered
	case d.State == db.LogoutGaveUp:
		return logoutGaveUp
	case d.LastError != "":
		return logoutRetrying
	}
	return logoutSending
}

// appName is the delivery's app as a page names it.
func appName(d db.LogoutDelivery) string {
	if d.AppName == "" {
		return "A removed app"
	}
	return d.AppName
}

// logoutAt is when a delivery sits in the history: when it ended
// (delivered or given up), else when it was owed.
func logoutAt(d db.LogoutDelivery) time.Time {
	if !d.DoneAt.IsZero() {
		return d.DoneAt
	}
	return d.CreatedAt
}

// logoutRow is the history entry of delivery d. sessionName names the
// session a sid delivery is about ("this device", "Chrome on Windows,
// Berlin").
func logoutRow(d db.LogoutDelivery, sessionName string, now time.Time) views.EventRow {
	at := logoutAt(d)
	r := views.EventRow{Kind: "logout_" + d.State, At: exactTime(at), AtISO: isoTime(at), Ago: relTime(now, at)}
	name := appName(d)
	which := "every session of yours there"
	if d.SessionID != "" {
		which = "the session from " + sessionName
	}
	switch statusOf(d) {
	case logoutDelivered:
		r.Title, r.Detail = "Signed out of "+name, which
	case logoutGaveUp:
		r.Title = "Gave up telling " + name + " to sign you out after " + durationWords(backchannel.DefaultGiveUpAfter)
		r.Detail = which + " · " + tries(d) + "; last: " + d.LastError
	case logoutRetrying:
		r.Title = name + " did not answer yet — retrying"
		r.Detail = which + " · " + tries(d) + "; last: " + d.LastError
	default:
		r.Title, r.Detail = "Telling "+name+" to sign you out…", which
	}
	return r
}

// tries is a delivery's attempts, counted ("1 try", "3 tries").
func tries(d db.LogoutDelivery) string {
	if d.Attempts == 1 {
		return "1 try"
	}
	return strconv.Itoa(d.Attempts) + " tries"
}

// withLogouts merges the deliveries made for the events of one history
// page into its rows, newest first: those whose time (logoutAt) is in
// [from, to) (to zero: no upper bound, the newest page). Each delivery
// whose session the page cannot name from its events costs one read, at
// most a few per page (then "another device").
func (a *app) withLogouts(c echo.Context, au *authInfo, events []db.SecurityEvent, rows []views.EventRow, from, to, now time.Time) ([]views.EventRow, error) {
	// A delivery is made at most backchannel.DefaultGiveUpAfter before
	// it ends: older ones cannot fall in [from, to).
	since := from.Add(-backchannel.DefaultGiveUpAfter - time.Hour)
	ds, err := a.logoutDeliveries(c.Request().Context(), au.User.ID, since)
	if err != nil || len(ds) == 0 {
		return rows, err
	}
	names := map[string]string{au.Session.ID: "this device"}
	for _, e := range events {
		if e.SessionID != "" && e.Device != "" && names[e.SessionID] == "" {
			names[e.SessionID] = e.Device + ", " + e.Location
		}
	}
	var page []db.LogoutDelivery
	for _, d := range ds {
		at := logoutAt(d)
		if !at.Before(from) && (to.IsZero() || at.Before(to)) {
			page = append(page, d)
		}
	}
	// Newest first, as the events are (delivered ones sit at DoneAt).
	slices.SortStableFunc(page, func(x, y db.LogoutDelivery) int { return logoutAt(y).Compare(logoutAt(x)) })
	lookups := 0
	out := make([]views.EventRow, 0, len(rows)+len(page))
	i := 0
	for _, d := range page {
		at := logoutAt(d)
		// Events newer than the delivery first; at the same second the
		// delivery (the consequence) goes above.
		for i < len(events) && events[i].At.After(at) {
			out = append(out, rows[i])
			i++
		}
		name := names[d.SessionID]
		if d.SessionID != "" && name == "" {
			name = "another device"
			if lookups < maxSessionLookups {
				lookups++
				if s, err := a.endedSession(c, au.User.ID, d.SessionID); err == nil {
					name = s.DeviceLabel + ", " + s.Location
				}
			}
			names[d.SessionID] = name
		}
		out = append(out, logoutRow(d, name, now))
	}
	return append(out, rows[i:]...), nil
}

// maxSessionLookups bounds the session reads of one history page.
const maxSessionLookups = 10

// logoutSummary is the confirmation's sentence about the apps told to
// sign the person out, one clause per state, the apps named once each by
// their least advanced delivery: "Signed out of Grafana and Gitea; Wiki
// did not answer yet — retrying." "" for none.
func logoutSummary(ds []db.LogoutDelivery) string {
	state := map[string]logoutStatus{}
	var apps []string
	for _, d := range ds {
		n := appName(d)
		st, seen := state[n]
		if !seen {
			apps = append(apps, n)
			state[n] = statusOf(d)
		} else if s := statusOf(d); s < st {
			state[n] = s
		}
	}
	slices.Sort(apps)
	by := map[logoutStatus][]string{}
	for _, n := range apps {
		by[state[n]] = append(by[state[n]], n)
	}
	var parts []string
	if l := by[logoutDelivered]; len(l) > 0 {
		parts = append(parts, "Signed out of "+andList(l))
	}
	if l := by[logoutRetrying]; len(l) > 0 {
		parts = append(parts, andList(l)+" did not answer yet — retrying")
	}
	if l := by[logoutSending]; len(l) > 0 {
		parts = append(parts, "Telling "+andList(l)+" to sign you out")
	}
	if l := by[logoutGaveUp]; len(l) > 0 {
		parts = append(parts, "Gave up telling "+andList(l)+" to sign you out")
	}
	if len(parts) == 0 {
		return ""
	}
	s := strings.Join(parts, "; ")
	return strings.ToUpper(s[:1]) + s[1:] + "."
}

// andList is "A", "A and B", "A, B and C".
func andList(l []string) string {
	if len(l) <= 1 {
		return strings.Join(l, "")
	}
	return strings.Join(l[:len(l)-1], ", ") + " and " + l[len(l)-1]
}

// settleWait bounds how long an action's confirmation waits for the
// logouts it owes to be tried: long enough for an app that answers (the
// worker is kicked at once and sends in parallel), short enough that an
// app that does not answer (backchannel.DefaultTimeout is 5 s) does not
// hold the page. What is not tried by then is confirmed as being sent,
// which is true; the history tells how it ended.
const settleWait = 2 * time.Second

// settlePoll is how often the store is read while waiting.
const settlePoll = 50 * time.Millisecond

// logoutsOf selects the deliveries an action owed: those made at or after
// since for the sessions it ended (ended), and, when subOnly, those for
// every session of the user's (no sid).
type logoutsOf struct {
	since   time.Time
	ended   []db.Session
	subOnly bool
}

func (w logoutsOf) match(d db.LogoutDelivery) bool {
	if d.SessionID == "" {
		return w.subOnly
	}
	return slices.ContainsFunc(w.ended, func(s db.Session) bool { return s.ID == d.SessionID })
}

// appsConfirmation is what the confirmation of an action adds about the
// apps it signed the person out of (logoutSummary; "" for none): the
// worker is kicked, then the store is read until every delivery the
// action owed was tried (delivered, or failed and due again), at most
// settleWait. The wait reads the store's state, so the sentence is true
// when the page is rendered, JavaScript or not.
func (a *app) appsConfirmation(c echo.Context, userID int64, w logoutsOf) string {
	if a.oidc == nil {
		return ""
	}
	if a.kickLogouts != nil {
		a.kickLogouts()
	}
	ctx := c.Request().Context()
	deadline := time.NewTimer(settleWait)
	defer deadline.Stop()
	tick := time.NewTicker(settlePoll)
	defer tick.Stop()
	for {
		ds, err := a.logoutDeliveries(ctx, userID, w.since)
		if err != nil {
			a.log.Error("logout deliveries for a confirmation", "user", userID, "err", err)
			return ""
		}
		ds = slices.DeleteFunc(ds, func(d db.LogoutDelivery) bool { return !w.match(d) })
		settled := !slices.ContainsFunc(ds, func(d db.LogoutDelivery) bool { return statusOf(d) == logoutSending })
		if settled {
			return logoutSummary(ds)
		}
		select {
		case <-tick.C:
		case <-deadline.C:
			return logoutSummary(ds)
		case <-ctx.Done():
			return logoutSummary(ds)
		}
	}
}

// withApps appends the apps' sentence to a confirmation.
func withApps(msg, apps string) string {
	if apps == "" {
		return msg
	}
	return msg + " " + apps
}
