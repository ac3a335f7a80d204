package handlers

import (
	"context"
	"time"

	"doorman/db"
)

// What a tab whose session ended is told: when, why, and from which of
// the person's own devices, where the store knows (issue 25, point 14).
// The live notice (the event stream's signed-out event) and the flash of
// the next page load say the same sentence, made here from the ended
// session's row.

// signedOutMessage is what the browser of session row (of user) is told
// once the session has ended, read at now.
func (a *app) signedOutMessage(ctx context.Context, row db.Session, user db.User, now time.Time) string {
	if !row.Revoked() {
		if user.Disabled() {
			return "You were signed out of this device when your account was disabled."
		}
		// Ended by itself: it timed out, idle or at the end of its lifetime.
		at := row.ExpiresAt()
		if row.AbsoluteExpiresAt.After(row.IdleExpiresAt) {
			return "Your session timed out " + when(at, now) + " after " + durationWords(a.cfg.IdleTimeout) + " unused. Please sign in again."
		}
		return "Your session timed out " + when(at, now) + ": a session lasts at most " + durationWords(a.cfg.AbsoluteLifetime) + ". Please sign in again."
	}
	head := "You were signed out of this device " + when(row.RevokedAt, now)
	who := a.ender(ctx, row)
	from, on := "", ""
	if who != "" {
		from, on = " from "+who, " on "+who
	}
	switch row.RevokedReason {
	case db.ReasonSignedOut:
		return "You signed out of this device " + when(row.RevokedAt, now) + "."
	case db.ReasonSessionLimit:
		return head + " because your account signed in on too many others."
	case db.ReasonPassword:
		return head + " when your password was changed" + on + "."
	case db.ReasonTwoFactor:
		return head + " when two-factor authentication was turned on" + on + "."
	case db.ReasonPasswordReset:
		return head + " when your password was reset by an emailed link."
	case db.ReasonNotMe:
		return head + from + ": it was reported as not yours."
	case db.ReasonEmailUndone:
		return head + " when the change of your email address was undone."
	case db.ReasonOperator:
		return head + " by the people who run this site."
	case db.ReasonDisabled:
		return head + " when your account was disabled."
	}
	return head + from + "."
}

// ender names the device (or access token) of the person's own that ended
// session row: "Firefox on Windows (Berlin)", "the access token “deploy”",
// or "" when the store does not know, or it was not one of the same
// account's (another account's device is never named to this browser).
// Whoever holds the ended session learns nothing new by it: while it was
// alive, its Security page listed every session of the account, place
// included.
func (a *app) ender(ctx context.Context, row db.Session) string {
	by := row.RevokedBy
	if by == "" || by == row.ID || by == "operator" {
		return ""
	}
	if s, _, err := a.store.SessionWithUser(ctx, by); err == nil {
		if s.UserID != row.UserID {
			return ""
		}
		place := s.LocationShort
		if place == "" {
			place = s.Location
		}
		if place == "" {
			return s.DeviceLabel
		}
		return s.DeviceLabel + " (" + place + ")"
	}
	if t, _, err := a.store.TokenWithUser(ctx, by); err == nil && t.UserID == row.UserID {
		return "the access token “" + t.Name + "”"
	}
	return ""
}

// when is "at 14:05 UTC" for a time of today (UTC), else "on 6 Dec 2026
// at 14:05 UTC": the flash may come days after the ending.
func when(t, now time.Time) string {
	t, now = t.UTC(), now.UTC()
	if t.Year() == now.Year() && t.YearDay() == now.YearDay() {
		return "at " + t.Format("15:04 UTC")
	}
	return "on " + t.Format("2 Jan 2006") + " at " + t.Format("15:04 UTC")
}

// liveSignedOutText is the live notice of session id's tab, whose stream
// ended for reason: the same sentence the next page load's flash says,
// from the session's row, or the reason alone if the row can't be read.
func (a *app) liveSignedOutText(ctx context.Context, id, reason string) string {
	row, user, err := a.store.SessionWithUser(ctx, id)
	if err != nil || row.Alive(a.now()) && !user.Disabled() {
		return signedOutText(reason)
	}
	return a.signedOutMessage(ctx, row, user, a.now())
}
