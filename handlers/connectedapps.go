package handlers

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/labstack/echo/v4"

	"doorman/db"
	"doorman/paths"
	"doorman/views"
)

// appsStore is what a session's details and the inventory read of the
// apps people signed in to with Doorman (OpenID Connect), and how one is
// disconnected (the Security page has its list from SecurityOverview).
// db.Store has it; a store without the provider's part, or a server
// without the provider, has none (app.apps is nil, and the pages list no
// such apps).
type appsStore interface {
	ConnectedApps(ctx context.Context, userID int64, now time.Time) ([]db.ConnectedApp, error)
	SessionApps(ctx context.Context, userID int64, sessionID string) ([]db.ConnectedApp, error)
	DisconnectApp(ctx context.Context, userID int64, clientID string, now time.Time) (db.LogoutDelivery, error)
	App(ctx context.Context, clientID string) (db.App, error)
}

// errNoSuchApp is the 404 for a client id that is not an app the user is
// connected to (another user's, an unknown one, one disconnected already).
func errNoSuchApp() error {
	return echo.NewHTTPError(http.StatusNotFound, "There is no such connected app. It may already have been disconnected.")
}

// appParam is the :client of an app URL. A client id is short (apps add
// makes "app_" and 20 characters; an operator may choose one): anything
// long is no client id and is a 404 without a query.
func appParam(c echo.Context) (string, error) {
	id, err := url.PathUnescape(c.Param("client"))
	if err != nil || id == "" || len(id) > 200 {
		return "", errNoSuchApp()
	}
	return id, nil
}

// appGets says in plain words what a connected app gets, in the consent
// page's words: who the person is, their address (the email scope they
// allowed it), and staying signed in while they are away (a live offline
// refresh token). A first-party app asked no consent, so the store knows
// no scopes of it: only what every app gets is said.
func appGets(a db.ConnectedApp) []string {
	gets := []string{"Gets who you are"}
	if slices.Contains(a.Scopes, "email") {
		gets[0] = "Gets who you are and your email address"
	}
	if a.Offline {
		gets = append(gets, "Stays signed in while you're away")
	}
	return gets
}

// disconnectMessage is what disconnecting app name does, as its dialog and
// confirm page say it: an app without a back-channel logout URI (logsOut
// false) cannot be told to sign the person out (SECURITY.md), so it is
// not promised.
func disconnectMessage(name string, logsOut bool) string {
	if !logsOut {
		return "It can no longer use your account. It takes no sign-out message from Doorman: sign out in " + name + " too."
	}
	return "It can no longer use your account, and Doorman tells it to sign you out."
}

// signInAppRows are the Security page's rows of list, the apps the user
// signed in to with Doorman (the overview's: no read here). Their sessions
// are named from the page's own list (current and others): no read per
// row. Without the provider (a.apps nil) there are none.
func (a *app) signInAppRows(list []db.ConnectedApp, current views.SessionRow, others []views.SessionRow, now time.Time) []views.SignInAppRow {
	if a.apps == nil || len(list) == 0 {
		return nil
	}
	sessions := map[string]views.AppSessionLink{current.ID: {Label: "this device", URL: current.DetailsURL}}
	for _, s := range others {
		sessions[s.ID] = views.AppSessionLink{Label: s.Device + ", " + s.Location, URL: s.DetailsURL}
	}
	rows := make([]views.SignInAppRow, 0, len(list))
	for i, ca := range list {
		r := views.SignInAppRow{
			ClientID: ca.ClientID, Name: ca.Name, Gets: appGets(ca),
			DisconnectURL: paths.AppDisconnect(ca.ClientID), DisconnectLabel: "Disconnect " + ca.Name,
			// The dialog's id is the row's place: a client id may hold
			// characters an id should not.
			DialogID: fmt.Sprintf("disconnect-app-%d", i), DialogHeading: "Disconnect “" + ca.Name + "”?",
			DialogMessage: disconnectMessage(ca.Name, ca.LogsOut),
		}
		r.LastUsedLabel, r.LastUsed, r.LastUsedISO, r.LastUsedAt = lastUsed(ca, now)
		for _, id := range ca.SessionIDs {
			if s, ok := sessions[id]; ok {
				if len(r.Sessions) > 0 {
					r.Sessions[len(r.Sessions)-1].Sep = ","
				}
				r.Sessions = append(r.Sessions, s)
			}
		}
		rows = append(rows, r)
	}
	return rows
}

// lastUsed is when app was last used ("Last used"), or, if that is not
// known, first signed in to ("Connected").
func lastUsed(ca db.ConnectedApp, now time.Time) (label, rel, iso, exact string) {
	label, t := "Last used", ca.LastUsedAt
	if t.IsZero() {
		label, t = "Connected", ca.FirstAt
	}
	return label, relTime(now, t), isoTime(t), exactTime(t)
}

// sessionAppRows are the apps session id of the user's signed in to, for
// its details page.
func (a *app) sessionAppRows(c echo.Context, userID int64, id string, now time.Time) ([]views.SessionAppRow, error) {
	if a.apps == nil {
		return nil, nil
	}
	list, err := a.apps.SessionApps(c.Request().Context(), userID, id)
	if err != nil {
		return nil, err
	}
	var rows []views.SessionAppRow
	for _, ca := range list {
		_, rel, iso, exact := lastUsed(ca, now)
		rows = append(rows, views.SessionAppRow{Name: ca.Name, LastUsed: rel, LastUsedISO: iso, LastUsedAt: exact})
	}
	return rows, nil
}

// connectedApp is the user's connected app with client id clientID, or
// errNoSuchApp.
func (a *app) connectedApp(c echo.Context, userID int64, clientID string, now time.Time) (db.ConnectedApp, error) {
	list, err := a.apps.ConnectedApps(c.Request().Context(), userID, now)
	if err != nil {
		return db.ConnectedApp{}, fmt.Errorf("connected app: %w", err)
	}
	i := slices.IndexFunc(list, func(ca db.ConnectedApp) bool { return ca.ClientID == clientID })
	if i < 0 {
		return db.ConnectedApp{}, errNoSuchApp()
	}
	return list[i], nil
}

// disconnectApp disconnects an app the user signed in to with Doorman
// (its trash icon), as disconnecting a device-flow app does: GET is the
// confirm page, POST disconnects, inside the sudo window or with the
// password. The store ends the user's grants for the app, forgets their
// consent and owes the app a logout of every session of theirs (sub
// only), in one transaction; the delivery worker is woken at once rather
// than at its next poll. Another user's app, or an unknown one, is a 404
// and nothing changes (the store decides: DisconnectApp's ErrNotFound).
func (a *app) disconnectApp(c echo.Context) error {
	if a.apps == nil {
		return errNoSuchApp()
	}
	clientID, err := appParam(c)
	if err != nil {
		return err
	}
	au, now := authOf(c), a.now()
	ca, err := a.connectedApp(c, au.User.ID, clientID, now)
	if err != nil {
		return err
	}
	reg, err := a.apps.App(c.Request().Context(), clientID)
	if errors.Is(err, db.ErrNotFound) {
		return errNoSuchApp()
	}
	if err != nil {
		return fmt.Errorf("disconnect app: %w", err)
	}
	confirm := func(problem *passwordProblem) error {
		return a.renderConfirm(c, views.ConfirmProps{
			Page: a.page(c, "Disconnect "+ca.Name, "security"), Heading: "Disconnect “" + ca.Name + "”?",
			Message: disconnectMessage(reg.Name, reg.BackchannelLogoutURI != ""), Action: paths.AppDisconnect(clientID), Button: "Disconnect",
			CancelURL: paths.Security,
		}, au, problem)
	}
	if c.Request().Method == http.MethodGet {
		return confirm(nil)
	}
	if g := a.reauthenticate(c, au, "password"); !g.passed() {
		return g.refuse(confirm)
	}
	d, err := a.apps.DisconnectApp(a.acting(c), au.User.ID, clientID, now)
	if errors.Is(err, db.ErrNotFound) {
		return errNoSuchApp()
	}
	if err != nil {
		return fmt.Errorf("disconnect app: %w", err)
	}
	a.log.Info("app disconnected", "client", clientID, "user", au.User.ID, "session", au.Session.ID, "delivery", d.ID)
	if d.ID == 0 {
		a.addFlash(c, flashSuccess, "Disconnected "+ca.Name+". It takes no sign-out message from Doorman: sign out in "+ca.Name+" too.")
	} else {
		// The worker is kicked and the delivery waited for, as after any
		// action that owes logouts: "Signed out of NAME", or that it is
		// being told, or did not answer yet.
		apps := a.appsConfirmation(c, au.User.ID, logoutsOf{since: now, subOnly: true})
		a.addFlash(c, flashSuccess, withApps("Disconnected "+ca.Name+".", apps))
	}
	return c.Redirect(http.StatusSeeOther, paths.Security)
}
