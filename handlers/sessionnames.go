package handlers

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"doorman/db"
	"doorman/paths"
	"doorman/views"
)

// maxDeviceName is the longest name a device may be given, in characters:
// enough for "Anna's work MacBook Pro", short enough for a phone's row.
const maxDeviceName = 40

// deviceTitle is how a session's device is called: the name its owner
// gave it, or else its browser label.
func deviceTitle(name, label string) string {
	if name != "" {
		return name
	}
	return label
}

// deviceNameError says what is wrong with a device name as typed
// (trimmed), or "": too long, or holding control characters (a line
// break, a tab, a direction override that would make the row read
// differently from what it holds).
func deviceNameError(name string) string {
	if !utf8.ValidString(name) {
		return "Use letters, digits, spaces and punctuation only."
	}
	for _, r := range name {
		if unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) || r == '\u2028' || r == '\u2029' {
			return "Use letters, digits, spaces and punctuation only: no line breaks, tabs or other control characters."
		}
	}
	if n := utf8.RuneCountInString(name); n > maxDeviceName {
		return fmt.Sprintf("Use at most %d characters (this is %d).", maxDeviceName, n)
	}
	return ""
}

// renameSession names a session's device (the form on its details page).
// The owner's live sessions only: another user's, an unknown or an ended
// id is a 404 and nothing changes. It ends nothing, and the store records
// it in the history, from this browser.
func (a *app) renameSession(c echo.Context) error {
	id, err := sessionParam(c)
	if err != nil {
		return err
	}
	au := authOf(c)
	name := strings.TrimSpace(formValue(c, "name"))
	if problem := deviceNameError(name); problem != "" {
		// The page as it was, the error next to the field; the store is
		// not asked (its 404 still applies: the page is read for the
		// user's own session only).
		return a.sessionDetailsPage(c, id, http.StatusUnprocessableEntity, &views.RenameForm{Value: formValue(c, "name"), Error: problem})
	}
	s, err := a.store.RenameSession(a.acting(c), au.User.ID, id, name, a.now())
	if errors.Is(err, db.ErrNotFound) {
		return errNoSuchSession()
	}
	if err != nil {
		return fmt.Errorf("rename session: %w", err)
	}
	if name == "" {
		a.addFlash(c, flashSuccess, "Removed the name: it shows as "+s.DeviceLabel+" again.")
	} else {
		a.addFlash(c, flashSuccess, "Named it “"+name+"”.")
	}
	return c.Redirect(http.StatusSeeOther, paths.Session(id))
}

// nameDevices puts the names the user gave their sessions' devices into
// the entries of list about a session's device (a sign-in, an ending, an
// app signed in to), "Anna's MacBook (Chrome on macOS)", so the history
// says what the rows say. One read for the whole list. A failure is
// logged and the entries keep their browser labels: the history is a
// record, the names a courtesy.
func (a *app) nameDevices(c echo.Context, userID int64, list []db.SecurityEvent) {
	var ids []string
	for _, e := range list {
		if e.SessionID != "" && e.Kind != db.EventDeviceRenamed {
			ids = append(ids, e.SessionID)
		}
	}
	if len(ids) == 0 {
		return
	}
	names, err := a.store.SessionNames(c.Request().Context(), userID, ids)
	if err != nil {
		if !clientGone(c, err) {
			a.log.Error("session names", "user", userID, "err", err)
		}
		return
	}
	for i, e := range list {
		if n, ok := names[e.SessionID]; ok && e.Kind != db.EventDeviceRenamed && e.Device != "" {
			list[i].Device = n + " (" + e.Device + ")"
		}
	}
}
