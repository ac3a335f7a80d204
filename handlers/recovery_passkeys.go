package handlers

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"doorman/db"
	"doorman/views"
)

// Passkeys on the forms that take an account back (issue 24, the inventory
// rule). A passkey is a credential a new password does not change: whoever
// held the account could have added one to come back with. So disowning a
// session ("Not you?", "This wasn't me") removes the passkeys added from it
// (and, in turn, from the sessions they opened), and every such form lists
// the account's other passkeys, each with an unticked "Also remove" box.
// The removals happen in the recovery's own transaction (db.Recovery).

const (
	passkeysNoteReset = "Passkeys keep working after a password reset unless you remove them here. Removing one also signs out any session it signed in."
	passkeysNoteOther = "A new password doesn't change your passkeys: each keeps signing in to this account until it is removed. Removing one also signs out any session it signed in."
)

// recoveryPasskeys fills p's passkeys for the user: those that disowning
// session from removes (none if from is ""), and the others, ticked as the
// form posted says. reset: the form is a password reset.
func (a *app) recoveryPasskeys(c echo.Context, userID int64, from string, reset bool, p *views.NewPasswordProps) error {
	ctx := c.Request().Context()
	ticked := map[string]bool{}
	for _, v := range c.Request().PostForm["remove_passkey"] {
		ticked[v] = true
	}
	list, err := a.store.ListPasskeys(ctx, userID)
	if err != nil || len(list) == 0 {
		return err
	}
	going := map[int64]bool{}
	if from != "" {
		added, err := a.store.PasskeysAddedFrom(ctx, userID, from)
		if err != nil {
			return err
		}
		for _, k := range added {
			going[k.ID] = true
		}
	}
	p.PasskeysNote = passkeysNoteOther
	if reset {
		p.PasskeysNote = passkeysNoteReset
	}
	p.PasskeysGoing, p.Passkeys = nil, nil
	for _, k := range list {
		if going[k.ID] {
			p.PasskeysGoing = append(p.PasskeysGoing, k.Name)
			continue
		}
		detail := passkeyKind(k) + ", added " + exactTime(k.CreatedAt)
		id := strconv.FormatInt(k.ID, 10)
		p.Passkeys = append(p.Passkeys, views.PasskeyChoice{ID: id, Name: k.Name, Detail: detail, Checked: ticked[id]})
	}
	return nil
}

// tickedPasskeys reads the form's "Also remove" boxes: the ids ticked, and
// whether each is one of the user's passkeys still. One that is not
// (another account's, removed meanwhile, not a number) refuses the form,
// changing nothing: the page is shown again with the list as it is now.
func (a *app) tickedPasskeys(c echo.Context, userID int64) (ids []int64, ok bool, err error) {
	values := c.Request().PostForm["remove_passkey"]
	if len(values) == 0 {
		return nil, true, nil
	}
	list, err := a.store.ListPasskeys(c.Request().Context(), userID)
	if err != nil {
		return nil, false, fmt.Errorf("list passkeys: %w", err)
	}
	ticked := map[int64]bool{}
	mine := map[int64]bool{}
	for _, k := range list {
		mine[k.ID] = true
	}
	ok = true
	for _, v := range values {
		id, err := strconv.ParseInt(v, 10, 64)
		if err != nil || !mine[id] {
			ok = false
			continue
		}
		if !ticked[id] {
			ticked[id] = true
			ids = append(ids, id)
		}
	}
	return ids, ok, nil
}

// passkeysGone is the form error when a ticked passkey is not the user's.
const passkeysGone = "A passkey you ticked is no longer on this account (removed meanwhile?). Nothing was changed: check the list and send the form again."

// passkeysGoneStatus is the status of that answer.
const passkeysGoneStatus = http.StatusConflict

// removedPasskeysNote is what the flash adds for the passkeys a recovery
// removed ("" for none).
func removedPasskeysNote(removed []db.Passkey) string {
	if len(removed) == 0 {
		return ""
	}
	names := make([]string, len(removed))
	for i, k := range removed {
		names[i] = "“" + k.Name + "”"
	}
	if len(removed) == 1 {
		return " Removed the passkey " + names[0] + "."
	}
	return " Removed the passkeys " + strings.Join(names, ", ") + "."
}
