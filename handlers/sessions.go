package handlers

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"doorman/db"
	"doorman/geo"
	"doorman/paths"
	"doorman/sessiontoken"
	"doorman/views"
)

// newSignInWindow is how long a new sign-in elsewhere is called out on the
// Security page.
const newSignInWindow = 24 * time.Hour

// newSignInsNamed is how many recent sign-ins the banner names; the rest
// are counted ("and 4 more, listed below") and come back, named, once
// these are answered. "It was me" vouches only for the ones named.
const newSignInsNamed = 5

// newSignIns is the banner of the sign-ins on other devices (list: the
// user's other live sessions) that are not older than this device's own
// (signedIn), in the last day, and not yet said to be the person's ("It
// was me" here, "This was me" in the alert mail: KnownAt). Newest first.
// A sign-in the person did not make then gets noticed, and one they did
// make stops alarming them once they say so, on every device: the answer
// is kept on the session's row.
func newSignIns(list []db.SessionSummary, signedIn, now time.Time) views.NewSignIns {
	var fresh []db.SessionSummary
	for _, s := range list {
		// Times are whole seconds: one in the same second as this
		// device's is called out too (on both, rather than on neither).
		if now.Sub(s.CreatedAt) < newSignInWindow && !s.CreatedAt.Before(signedIn) && s.KnownAt.IsZero() {
			fresh = append(fresh, s)
		}
	}
	if len(fresh) == 0 {
		return views.NewSignIns{}
	}
	slices.SortStableFunc(fresh, func(a, b db.SessionSummary) int { return b.CreatedAt.Compare(a.CreatedAt) })
	n := views.NewSignIns{Heading: "New sign-in:", KnownURL: paths.SignInsKnown, KnownButton: "It was me"}
	if len(fresh) > 1 {
		n.Heading, n.KnownButton = plural(len(fresh), "new sign-in")+" in the last day:", "They were all me"
	}
	if len(fresh) > newSignInsNamed {
		n.More = fmt.Sprintf("And %d more, listed below.", len(fresh)-newSignInsNamed)
		n.KnownButton = fmt.Sprintf("These %d were me", newSignInsNamed)
		fresh = fresh[:newSignInsNamed]
	}
	for _, s := range fresh {
		place := s.LocationShort
		if place == "" {
			place = s.Location
		}
		n.Rows = append(n.Rows, views.NewSignInRow{
			ID: s.ID, Device: s.DeviceLabel, Location: s.Location, Place: place,
			Ago: relTime(now, s.CreatedAt), ISO: isoTime(s.CreatedAt), At: exactTime(s.CreatedAt),
			DetailsURL: paths.Session(s.ID), NotMeURL: paths.SessionNotYou(s.ID), NotMeLabel: "Not me: " + s.DeviceLabel + ", " + place,
		})
	}
	return n
}

// acknowledgeSignIns is "It was me" on the banner: the sessions it named
// (the form's session ids) are kept as the person's, so the banner no
// longer shows them, on any device. Only the user's own live sessions
// change (the store's WHERE); ids of anything else are refused with a 404
// when nothing of the user's was named.
func (a *app) acknowledgeSignIns(c echo.Context) error {
	au, now := authOf(c), a.now()
	if err := c.Request().ParseForm(); err != nil {
		return echo.NewHTTPError(http.StatusBadRequest, "The form could not be read.")
	}
	ids := c.Request().PostForm["session"] // the body only, never the query
	if len(ids) == 0 || len(ids) > newSignInsNamed {
		return echo.NewHTTPError(http.StatusBadRequest, "Choose the sign-ins that were you from the Security page.")
	}
	for _, id := range ids {
		if !sessiontoken.ValidID(id) || id == au.Session.ID {
			return errNoSuchSession()
		}
	}
	known, err := a.store.AcknowledgeSignIns(a.acting(c), au.User.ID, ids, now)
	if err != nil {
		return fmt.Errorf("acknowledge sign-ins: %w", err)
	}
	if len(known) == 0 {
		return echo.NewHTTPError(http.StatusNotFound, "There are no such sign-ins. They may have been signed out or confirmed already.")
	}
	msg := "Thanks. " + known[0].DeviceLabel + " in " + known[0].Location + " is marked as yours."
	if len(known) > 1 {
		msg = "Thanks. Those " + strconv.Itoa(len(known)) + " sign-ins are marked as yours."
	}
	a.addFlash(c, flashSuccess, msg)
	return c.Redirect(http.StatusSeeOther, paths.Security)
}

// sessionRow turns a session into a list row.
func sessionRow(s db.SessionSummary, currentID string, now time.Time) views.SessionRow {
	title := deviceTitle(s.DeviceName, s.DeviceLabel)
	var browser string
	if s.DeviceName != "" {
		browser = s.DeviceLabel
	}
	return views.SessionRow{
		ID:            s.ID,
		Device:        title,
		Browser:       browser,
		DeviceKind:    s.DeviceKind,
		Location:      s.Location,
		LastActive:    relTime(now, s.LastSeenAt),
		LastActiveISO: isoTime(s.LastSeenAt),
		LastActiveAt:  exactTime(s.LastSeenAt),
		SignedInAgo:   relTime(now, s.CreatedAt),
		SignedInISO:   isoTime(s.CreatedAt),
		SignedInAt:    exactTime(s.CreatedAt),
		Current:       s.ID == currentID,
		DetailsURL:    paths.Session(s.ID),
		RevokeURL:     paths.SessionRevoke(s.ID),
		RevokeLabel:   "Sign out " + title + ", " + s.LocationShort,
		Method:        listedMethod(s.AuthMethod),
		NotYouURL:     paths.SessionNotYou(s.ID),
		NotYouLabel:   "Not you? " + title + ", " + s.LocationShort,
	}
}

// listedMethod is how a session signed in, as its row in a list says it:
// only for the methods worth telling apart at a glance (an emailed link, a
// second factor, a reset), not the plain password every other row has.
func listedMethod(m string) string {
	switch m {
	case methodPassword, methodSignup, "", "demo", "seed":
		return ""
	}
	return methodLabel(m)
}

// otherSessions lists the user's live sessions except the current one.
func (a *app) otherSessions(c echo.Context, au *authInfo, now time.Time) ([]views.SessionRow, error) {
	others, err := a.otherSummaries(c, au, now)
	if err != nil {
		return nil, err
	}
	return sessionRows(others, au.Session.ID, now), nil
}

// otherSummaries is otherSessions before it is formatted.
func (a *app) otherSummaries(c echo.Context, au *authInfo, now time.Time) ([]db.SessionSummary, error) {
	list, err := a.store.ListSessionSummaries(c.Request().Context(), au.User.ID, now)
	if err != nil {
		return nil, err
	}
	return withoutSession(list, au.Session.ID), nil
}

// withoutSession is list without the session id (this browser's).
func withoutSession(list []db.SessionSummary, id string) []db.SessionSummary {
	others := list[:0]
	for _, s := range list {
		if s.ID != id {
			others = append(others, s)
		}
	}
	return others
}

func sessionRows(list []db.SessionSummary, currentID string, now time.Time) []views.SessionRow {
	rows := make([]views.SessionRow, len(list))
	for i, s := range list {
		rows[i] = sessionRow(s, currentID, now)
	}
	distinctLabels(rows)
	return rows
}

// distinctLabels tells look-alike sessions apart by ear: where two rows'
// buttons would have the same accessible name ("Sign out Chrome on macOS,
// Berlin"), each says when it signed in, and, if that is the same minute
// too, the start of its id. A screen reader then never hears two equal
// X buttons that end different sessions.
func distinctLabels(rows []views.SessionRow) {
	for _, suffix := range []func(views.SessionRow) string{
		func(r views.SessionRow) string { return ", signed in " + r.SignedInAt },
		func(r views.SessionRow) string { return ", session " + r.ID[:min(6, len(r.ID))] },
	} {
		seen := make(map[string]int, len(rows))
		for _, r := range rows {
			seen[r.RevokeLabel]++
		}
		for i, r := range rows {
			if seen[r.RevokeLabel] > 1 {
				rows[i].RevokeLabel += suffix(r)
				rows[i].NotYouLabel += suffix(r)
			}
		}
	}
}

// sessionsListed is how many other sessions the Security page lists before
// "Show all N sessions": enough for most people's every device, few enough
// that the page stays short on a phone.
const sessionsListed = 10

// securityPageEvents is how many of the latest history entries the
// Security page shows (the rest are on the activity page).
const securityPageEvents = 5

// security is Settings → Security: the current session first, then every
// other live session, most recently active first.
func (a *app) security(c echo.Context) error {
	return a.securityPage(c, http.StatusOK, nil)
}

// securityPage is the Security page answered with status, a passkey
// rename's problem beside its field (nil: none).
func (a *app) securityPage(c echo.Context, status int, rename *passkeyRenameProblem) error {
	au, now := authOf(c), a.now()
	// The page's lists in one read (one round trip on PostgreSQL).
	o, err := a.store.SecurityOverview(c.Request().Context(), au.User.ID, now, now.Add(-a.cfg.HistoryKeep), securityPageEvents)
	if err != nil {
		return fmt.Errorf("security page: %w", err)
	}
	list := withoutSession(o.Sessions, au.Session.ID)
	others := sessionRows(list, au.Session.ID, now)
	tf := o.TwoFactor
	apps, pats := splitTokens(o.Tokens)
	activity := a.eventRows(c, au, o.Events, now)
	approvals, err := a.approvalRows(c, o.Approvals, now)
	if err != nil {
		return fmt.Errorf("security page: %w", err)
	}
	current := sessionRow(au.Session.Summary(), au.Session.ID, now)
	signInApps := a.signInAppRows(o.Apps, current, others, now)
	// (o.Sessions is list's backing array now: the full list is made anew.)
	passkeys := a.passkeysSection(c, au, o.Passkeys, append([]db.SessionSummary{au.Session.Summary()}, list...), now, rename)
	// Before the rows are grouped: a group holds copies of them.
	byPasskey(&current, au.Session.Summary(), passkeys.keys)
	for i := range others {
		byPasskey(&others[i], list[i], passkeys.keys)
	}
	// Look-alike sessions are one entry each group (sessionEntries).
	// Past sessionsListed entries, the most recently active (the store's
	// order) are listed and a link lists them all: a plain link, so it
	// works without JavaScript. Its count is of sessions, every one; the
	// bulk actions and their counts are about all of them too.
	entries := sessionEntries(list, others)
	listed := entries
	var moreLabel, moreURL string
	if len(entries) > sessionsListed {
		if c.QueryParam("sessions") == "all" {
			moreLabel, moreURL = fmt.Sprintf("Show only the %d most recent", sessionsListed), paths.Security
		} else {
			listed = entries[:sessionsListed]
			moreLabel, moreURL = fmt.Sprintf("Show all %d sessions", len(others)+1), paths.SecurityAllSessions
		}
	}
	return a.render(c, status, views.SecurityPage(views.SecurityProps{
		Passkeys:          passkeys.view,
		EmailChanges:      emailChangeRows(o.EmailChanges, now),
		Approvals:         approvals,
		Activity:          activity,
		TwoFactorOn:       tf.Enabled(),
		Apps:              a.tokenRows(apps, now),
		Tokens:            a.tokenRows(pats, now),
		EverywhereMessage: everywhereMessage(len(others)+1, len(apps)+len(signInApps), len(pats)),
		AlsoTokens:        alsoTokensLabel(len(apps)+len(signInApps), len(pats)),
		Page:              a.page(c, "Security", "security"),
		Current:           current,
		SignInApps:        signInApps,
		Others:            others,
		Listed:            listed,
		MoreLabel:         moreLabel,
		MoreURL:           moreURL,
		OthersCount:       plural(len(others), "other session"),
		OthersMessage:     othersMessage(others, len(apps)+len(signInApps)+len(pats) > 0),
		NeedPassword:      !a.inSudo(au),
		NewSignIns:        newSignIns(list, au.Session.CreatedAt, now),
		Map:               a.signInMap(au.Session.Summary(), list),
	}))
}

// emailChangeRows are the changes of address waiting for their link.
func emailChangeRows(links []db.LinkToken, now time.Time) []views.EmailChangeRow {
	var out []views.EmailChangeRow
	for _, l := range links {
		out = append(out, views.EmailChangeRow{
			NewEmail: l.Email, Asked: relTime(now, l.CreatedAt), AskedISO: isoTime(l.CreatedAt),
			Where:   l.Device + ", " + l.Location,
			Expires: relFuture(now, l.ExpiresAt), ExpiresAt: isoTime(l.ExpiresAt),
		})
	}
	return out
}

// approvalRows are the device codes approved that no app has redeemed yet
// (a few at most, each lives 10 minutes: one read of its app's name each).
func (a *app) approvalRows(c echo.Context, list []db.DeviceAuthorization, now time.Time) ([]views.ApprovalRow, error) {
	var out []views.ApprovalRow
	for _, d := range list {
		app, err := a.store.App(c.Request().Context(), d.ClientID)
		if errors.Is(err, db.ErrNotFound) {
			continue // removed meanwhile: it can't connect
		}
		if err != nil {
			return nil, err
		}
		out = append(out, views.ApprovalRow{
			AppName: app.Name, Approved: relTime(now, d.DecidedAt), ApprovedISO: isoTime(d.DecidedAt), Where: requestedFrom(d),
			CancelURL: paths.ApprovalCancel(d.UserCode), CancelLabel: "Withdraw the approval of " + app.Name,
		})
	}
	return out, nil
}

// sessionParam returns the :id parameter if it has the shape of a public id.
// Anything else cannot be a session, so it is a 404 without a query.
func sessionParam(c echo.Context) (string, error) {
	id := c.Param("id")
	if !sessiontoken.ValidID(id) {
		return "", errNoSuchSession()
	}
	return id, nil
}

// errNoSuchSession is the 404 for a session id that is not a live session of
// the user's. A new value each time: Echo's SetInternal changes an
// *echo.HTTPError in place, so a shared one would be a data race.
func errNoSuchSession() error {
	return echo.NewHTTPError(http.StatusNotFound, "There is no such session. It may already have been signed out.")
}

func (a *app) sessionDetails(c echo.Context) error {
	id, err := sessionParam(c)
	if err != nil {
		return err
	}
	return a.sessionDetailsPage(c, id, http.StatusOK, nil)
}

// sessionDetailsPage is the details page of the user's session id, with
// its rename form as rename says (nil: as the session is).
func (a *app) sessionDetailsPage(c echo.Context, id string, status int, rename *views.RenameForm) error {
	au, now := authOf(c), a.now()
	var err error
	s := au.Session
	if id != s.ID {
		// The history links to ended sessions too: the user's own only.
		s, err = a.endedSession(c, au.User.ID, id)
		if errors.Is(err, db.ErrNotFound) {
			return errNoSuchSession()
		}
		if err != nil {
			return fmt.Errorf("session details: %w", err)
		}
	}
	ended := !s.Alive(now)
	row := sessionRow(s.Summary(), au.Session.ID, now)
	lastActive := views.DetailRow{Label: "Last active", Value: exactTime(s.LastSeenAt), ISO: isoTime(s.LastSeenAt), Subtitle: relTime(now, s.LastSeenAt)}
	if row.Current {
		lastActive = views.DetailRow{Label: "Last active", Value: "Active now"}
	}
	method := methodLabel(s.AuthMethod)
	if s.PasskeyID != 0 {
		keys, err := a.passkeysByID(c, au.User.ID)
		if err != nil {
			return fmt.Errorf("session details: %w", err)
		}
		byPasskey(&row, s.Summary(), keys)
		method = row.Method
	}
	details := []views.DetailRow{
		{Label: "Device", Value: s.DeviceLabel},
		{Label: "Location", Value: s.Location, Subtitle: "Estimated from the IP address"},
		{Label: "IP address", Value: s.IP, Mono: true},
		lastActive,
		{Label: "Signed in", Value: exactTime(s.CreatedAt), ISO: isoTime(s.CreatedAt), Subtitle: relTime(now, s.CreatedAt) + " · " + method},
	}
	if ended {
		details = append(details, a.endedSessionDetails(c, s, au, now)...)
	} else {
		details = append(details, expiryRows(s, now)...)
	}
	details = append(details, views.DetailRow{Label: "Browser (user agent)", Value: orDash(s.UserAgent), Mono: true})
	apps, err := a.sessionAppRows(c, au.User.ID, s.ID, now)
	if err != nil {
		return fmt.Errorf("session details: %w", err)
	}
	if ended && rename != nil {
		// A name posted for a session that has ended: there is nothing
		// to name (as the store would say).
		return errNoSuchSession()
	}
	if !ended {
		if rename == nil {
			rename = &views.RenameForm{Value: s.DeviceName}
		}
		rename.Action, rename.Max = paths.SessionName(s.ID), maxDeviceName
	}
	return a.render(c, status, views.SessionDetailsPage(views.SessionDetailsProps{
		Page: a.page(c, row.Device, "security"), Row: row, Details: details, Ended: ended, Apps: apps, Rename: rename,
	}))
}

// expiryRows say when a live session ends by itself, one rule a row: if
// it goes unused (each use pushes this back), and at the latest however
// often it is used. The first is left out when it cannot come first.
func expiryRows(s db.Session, now time.Time) []views.DetailRow {
	var rows []views.DetailRow
	if s.IdleExpiresAt.Before(s.AbsoluteExpiresAt) {
		rows = append(rows, views.DetailRow{Label: "Signs out if unused", Value: exactTime(s.IdleExpiresAt), ISO: isoTime(s.IdleExpiresAt),
			Subtitle: relFuture(now, s.IdleExpiresAt) + ", unless it is used before then"})
	}
	return append(rows, views.DetailRow{Label: "Signs out at the latest", Value: exactTime(s.AbsoluteExpiresAt), ISO: isoTime(s.AbsoluteExpiresAt),
		Subtitle: relFuture(now, s.AbsoluteExpiresAt) + ", however often it is used"})
}

func orDash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}

// revokeSession ends one session of the user's (the X button). Its very next
// request is refused: the middleware reads the row on every request.
func (a *app) revokeSession(c echo.Context) error {
	id, err := sessionParam(c)
	if err != nil {
		return err
	}
	au, now := authOf(c), a.now()
	if id == au.Session.ID {
		// Ending the session you are using is signing out.
		return a.logout(c)
	}
	target, err := a.store.UserSession(c.Request().Context(), au.User.ID, id, now)
	if errors.Is(err, db.ErrNotFound) {
		return errNoSuchSession()
	}
	if err != nil {
		return fmt.Errorf("revoke session: %w", err)
	}
	if g := a.reauthenticate(c, au, "password"); !g.passed() {
		return g.refuse(func(problem *passwordProblem) error {
			row := sessionRow(target.Summary(), au.Session.ID, now)
			return a.renderConfirm(c, views.ConfirmProps{
				Page: a.page(c, "Sign out "+row.Device, "security"), Heading: "Sign out " + row.Device + "?",
				Message:  "This session will be signed out at once.",
				Sessions: []views.SessionRow{row}, Action: row.RevokeURL, Button: "Sign it out", CancelURL: paths.Security,
			}, au, problem)
		})
	}
	s, err := a.sessions.EndOne(c, au, id)
	if errors.Is(err, db.ErrNotFound) {
		return errNoSuchSession()
	}
	if err != nil {
		return fmt.Errorf("revoke session: %w", err)
	}
	apps := a.appsConfirmation(c, au.User.ID, logoutsOf{since: now, ended: []db.Session{s}})
	msg := "Signed out " + deviceTitle(s.DeviceName, s.DeviceLabel)
	if apps != "" {
		msg += ". " + apps
	}
	a.addFlash(c, flashSuccess, msg)
	return c.Redirect(http.StatusSeeOther, paths.Security)
}

// confirmRevokeOthers is the no-JavaScript confirm page of "Sign out all other
// sessions", listing what will end.
func (a *app) confirmRevokeOthers(c echo.Context) error {
	return a.confirmRevokeOthersPage(c, authOf(c), nil)
}

func (a *app) confirmRevokeOthersPage(c echo.Context, au *authInfo, problem *passwordProblem) error {
	others, err := a.otherSessions(c, au, a.now())
	if err != nil {
		return fmt.Errorf("confirm revoke others: %w", err)
	}
	p := views.ConfirmProps{
		Page: a.page(c, "Sign out all other sessions", "security"), Heading: "Sign out all other sessions?",
		Sessions: others, Action: paths.RevokeOthers, Button: "Sign them out", CancelURL: paths.Security,
		Message: othersMessage(others, false),
	}
	if len(others) == 0 {
		p.Heading, p.Message, p.Nothing = "No other sessions", "This device is the only one signed in to your account.", true
	}
	apps, pats, err := a.inventoryCounts(c, au.User.ID, a.now())
	if err != nil {
		return fmt.Errorf("confirm revoke others: %w", err)
	}
	p.AlsoTokens = alsoTokensLabel(apps, pats)
	return a.renderConfirm(c, p, au, problem)
}

// alsoTokensLabel labels the unchecked box that extends "Sign out all other
// sessions" to apps and tokens; "" when there are none.
func alsoTokensLabel(apps, pats int) string {
	if l := inventoryLabel(apps, pats); l != "" {
		return "Also disconnect " + l
	}
	return ""
}

// othersMessage says what "Sign out all other sessions" ends, naming the
// first few sessions (the no-script page lists them all), and, when the
// person has any, that apps and tokens stay unless the box says otherwise.
func othersMessage(others []views.SessionRow, haveTokens bool) string {
	const named = 3
	names := make([]string, 0, named+1)
	for i, s := range others {
		if i == named {
			names = append(names, strconv.Itoa(len(others)-named)+" more")
			break
		}
		if s.Location == geo.LabelUnknown {
			names = append(names, s.Device)
		} else {
			names = append(names, s.Device+" in "+s.Location)
		}
	}
	m := plural(len(others), "other session") + " will be signed out"
	if len(names) > 0 {
		m += ": " + andList(names)
	}
	m += ". This device stays signed in."
	if haveTokens {
		m += " Connected apps and access tokens keep working unless you tick the box below."
	}
	return m
}

// everywhereMessage says what "Sign out everywhere" ends, counted.
func everywhereMessage(sessions, apps, pats int) string {
	m := "All " + plural(sessions, "session") + ", including this device, will be signed out"
	if l := inventoryLabel(apps, pats); l != "" {
		m += ", and " + l + " disconnected"
	}
	return m + "."
}

func (a *app) revokeOthers(c echo.Context) error {
	au, now := authOf(c), a.now()
	if g := a.reauthenticate(c, au, "password"); !g.passed() {
		return g.refuse(func(problem *passwordProblem) error { return a.confirmRevokeOthersPage(c, au, problem) })
	}
	ended, tokens, err := a.sessions.EndOthers(c, au, db.ReasonRevokedOthers, formValue(c, "also_tokens") == "on")
	if err != nil {
		return err
	}
	n := len(ended)
	apps := a.appsConfirmation(c, au.User.ID, logoutsOf{since: now, ended: ended, subOnly: formValue(c, "also_tokens") == "on"})
	switch {
	case n == 0 && len(tokens) == 0 && apps == "":
		a.addFlash(c, flashNotice, "There were no other sessions to sign out.")
	case len(tokens) == 0:
		a.addFlash(c, flashSuccess, withApps("Signed out "+plural(n, "other session")+".", apps))
	default:
		a.addFlash(c, flashSuccess, withApps("Signed out "+plural(n, "other session")+" and disconnected "+plural(len(tokens), "app or token")+".", apps))
	}
	return c.Redirect(http.StatusSeeOther, paths.Security)
}

// confirmRevokeAll is the no-JavaScript confirm page of "Sign out everywhere".
func (a *app) confirmRevokeAll(c echo.Context) error {
	return a.confirmRevokeAllPage(c, authOf(c), nil)
}

func (a *app) confirmRevokeAllPage(c echo.Context, au *authInfo, problem *passwordProblem) error {
	now := a.now()
	others, err := a.otherSessions(c, au, now)
	if err != nil {
		return fmt.Errorf("confirm revoke all: %w", err)
	}
	all := append([]views.SessionRow{sessionRow(au.Session.Summary(), au.Session.ID, now)}, others...)
	apps, pats, err := a.inventoryCounts(c, au.User.ID, now)
	if err != nil {
		return fmt.Errorf("confirm revoke all: %w", err)
	}
	p := views.ConfirmProps{
		Page: a.page(c, "Sign out everywhere", "security"), Heading: "Sign out everywhere?",
		Message:  everywhereMessage(len(all), apps, pats),
		Sessions: all, Action: paths.RevokeAll, Button: "Sign out everywhere", CancelURL: paths.Security,
	}
	return a.renderConfirm(c, p, au, problem)
}

func (a *app) revokeAll(c echo.Context) error {
	au, now := authOf(c), a.now()
	if g := a.reauthenticate(c, au, "password"); !g.passed() {
		return g.refuse(func(problem *passwordProblem) error { return a.confirmRevokeAllPage(c, au, problem) })
	}
	// Sessions, apps and tokens in one transaction: a failure leaves all
	// of them alive, and trying again ends them all.
	ended, tokens, err := a.sessions.EndAll(c, au)
	if err != nil {
		return err
	}
	msg := "You signed out everywhere: " + plural(len(ended), "session") + " ended"
	if len(tokens) > 0 {
		msg += ", " + plural(len(tokens), "app or token") + " disconnected"
	}
	apps := a.appsConfirmation(c, au.User.ID, logoutsOf{since: now, ended: ended, subOnly: true})
	a.addFlash(c, flashSuccess, withApps(msg+".", apps))
	return c.Redirect(http.StatusSeeOther, paths.Login)
}
