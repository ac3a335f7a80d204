package handlers

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"

	"github.com/labstack/echo/v4"

	"doorman/db"
	"doorman/geo"
	"doorman/paths"
	"doorman/sessiontoken"
	"doorman/views"
)

// lookAlike is what makes two sessions the same browser on the same
// machine as far as the page can tell, from what the store records of
// each: the same name, if the owner named them (a name is the owner's
// word that it is one device, and a named session never hides among
// unnamed ones), the same browser label (browser and operating system,
// parsed from the user agent), the same kind of device and the same
// place (the city the address was last seen in). The user agent itself
// is not in a list's summary, and would split one browser across its
// updates; the address would split one laptop across networks. Two
// laptops of the same make at the same place do group, as on Google's
// and Facebook's pages: each member keeps its own row inside the group.
type lookAlike struct{ name, label, kind, place string }

func lookAlikeOf(s db.SessionSummary) lookAlike {
	return lookAlike{s.DeviceName, s.DeviceLabel, s.DeviceKind, s.Location}
}

// sessionEntries groups the other sessions (list, most recently active
// first, and rows, their rows in the same order) into the list's entries:
// each group where its newest member is, a session with no look-alike on
// its own. This device's session is not among them: it heads the list,
// never inside a collapsed group.
func sessionEntries(list []db.SessionSummary, rows []views.SessionRow) []views.SessionEntry {
	var out []views.SessionEntry
	at := map[lookAlike]int{}
	members := map[lookAlike][]int{}
	for i, s := range list {
		k := lookAlikeOf(s)
		if _, ok := at[k]; !ok {
			at[k] = len(out)
			out = append(out, views.SessionEntry{Row: rows[i]})
		}
		members[k] = append(members[k], i)
	}
	for k, idx := range members {
		if len(idx) < 2 {
			continue
		}
		first := rows[idx[0]]
		g := &views.SessionGroup{
			Key: groupKey(k), Device: first.Device, Browser: first.Browser, DeviceKind: first.DeviceKind,
			Location: first.Location, Count: plural(len(idx), "session"),
			LastActive: first.LastActive, LastActiveISO: first.LastActiveISO, LastActiveAt: first.LastActiveAt,
		}
		for _, i := range idx {
			g.Members = append(g.Members, rows[i])
			g.IDs = append(g.IDs, rows[i].ID)
		}
		g.EndLabel = "Sign out these " + strconv.Itoa(len(idx))
		g.EndURL = paths.SessionsSignOut + "?" + idsQuery(g.IDs)
		g.DialogID = "sign-out-group-" + g.Key
		g.DialogMessage = groupMessage(g.Device, g.Location, len(idx))
		out[at[k]] = views.SessionEntry{Group: g}
	}
	return out
}

// groupKey names a group in the page (its data-group and dialog id): the
// same look-alikes get the same key across reloads, so an open group
// stays open when the list refreshes; a hash, so it is a valid id.
func groupKey(k lookAlike) string {
	sum := sha256.Sum256([]byte(k.name + "\x00" + k.label + "\x00" + k.kind + "\x00" + k.place))
	return hex.EncodeToString(sum[:6])
}

// groupMessage says what signing out a group ends.
func groupMessage(device, place string, n int) string {
	where := device
	if place != geo.LabelUnknown {
		where += " in " + place
	}
	return "These " + strconv.Itoa(n) + " sessions of " + where + " will be signed out. This device stays signed in, and so does any session that signs in meanwhile."
}

// idsQuery is ids as id=…&id=… (the group's confirm page reads them).
func idsQuery(ids []string) string {
	q := url.Values{"id": ids}
	return q.Encode()
}

// maxGroupIDs bounds the ids one group sign-out takes: a group is the
// user's own sessions, which the session cap bounds.
const maxGroupIDs = 1000

// groupTargets reads the ids the group form names (the query on the
// confirm page, the body on the post) as the user's live sessions, in the
// list's order. Any id that is not one (another user's, unknown, ended)
// is a 404, and this device's own a 400: nothing is signed out then.
func (a *app) groupTargets(c echo.Context, au *authInfo, ids []string) ([]db.SessionSummary, error) {
	if len(ids) == 0 || len(ids) > maxGroupIDs {
		return nil, echo.NewHTTPError(http.StatusBadRequest, "Choose the sessions to sign out on the Security page.")
	}
	want := map[string]bool{}
	for _, id := range ids {
		if !sessiontoken.ValidID(id) {
			return nil, errNoSuchSession()
		}
		if id == au.Session.ID {
			return nil, echo.NewHTTPError(http.StatusBadRequest, "This device is not signed out with others: use Sign out at the top.")
		}
		want[id] = true
	}
	list, err := a.store.ListSessionSummaries(c.Request().Context(), au.User.ID, a.now())
	if err != nil {
		return nil, fmt.Errorf("group sign-out: %w", err)
	}
	list = slices.DeleteFunc(list, func(s db.SessionSummary) bool { return !want[s.ID] })
	if len(list) != len(want) {
		return nil, errNoSuchSession()
	}
	return list, nil
}

// confirmSignOutGroup is the no-JavaScript confirm page of "Sign out
// these N": the sessions it names, and the form that posts their ids.
func (a *app) confirmSignOutGroup(c echo.Context) error {
	return a.confirmSignOutGroupPage(c, authOf(c), c.QueryParams()["id"], nil)
}

func (a *app) confirmSignOutGroupPage(c echo.Context, au *authInfo, ids []string, problem *passwordProblem) error {
	list, err := a.groupTargets(c, au, ids)
	if err != nil {
		return err
	}
	rows := sessionRows(list, au.Session.ID, a.now())
	heading := "Sign out these " + strconv.Itoa(len(rows)) + "?"
	return a.renderConfirm(c, views.ConfirmProps{
		Page: a.page(c, "Sign out these sessions", "security"), Heading: heading,
		Message:  groupMessage(rows[0].Device, rows[0].Location, len(rows)),
		Sessions: rows, IDs: ids, Action: paths.SessionsSignOut, Button: "Sign them out", CancelURL: paths.Security,
	}, au, problem)
}

// signOutGroup signs out exactly the sessions the group's form names, as
// if each X were pressed (each recorded as ended from this device), once
// the password is confirmed (outside the sudo window), as the X asks.
func (a *app) signOutGroup(c echo.Context) error {
	au, now := authOf(c), a.now()
	if err := c.Request().ParseForm(); err != nil {
		return echo.NewHTTPError(http.StatusBadRequest, "The form could not be read.")
	}
	ids := c.Request().PostForm["id"]
	list, err := a.groupTargets(c, au, ids)
	if err != nil {
		return err
	}
	if g := a.reauthenticate(c, au, "password"); !g.passed() {
		return g.refuse(func(problem *passwordProblem) error { return a.confirmSignOutGroupPage(c, au, ids, problem) })
	}
	var ended []db.Session
	for _, s := range list {
		e, err := a.sessions.EndOne(c, au, s.ID)
		if err == nil {
			ended = append(ended, e)
		} else if !errors.Is(err, db.ErrNotFound) {
			// Those ended so far stay ended (each ending is whole); the
			// list shows what is left.
			return fmt.Errorf("group sign-out: %w", err)
		}
	}
	msg := "Signed out " + plural(len(ended), "session")
	if len(ended) < len(list) {
		msg += " (" + strconv.Itoa(len(list)-len(ended)) + " had ended meanwhile)"
	}
	apps := a.appsConfirmation(c, au.User.ID, logoutsOf{since: now, ended: ended})
	a.addFlash(c, flashSuccess, withApps(msg+".", apps))
	return c.Redirect(http.StatusSeeOther, paths.Security)
}
