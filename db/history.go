package db

import (
	"context"
	"time"
)

// Kinds of security event (the account's history).
const (
	EventSignIn          = "sign_in"           // a session started (Method says how)
	EventSignInFailed    = "sign_in_failed"    // a wrong password for the account
	EventSessionEnded    = "session_ended"     // Reason and By say why and by whom
	EventTokenCreated    = "token_created"     // a personal access token
	EventTokenRevoked    = "token_revoked"     // a token or an app's token ended (Reason, By)
	EventAppApproved     = "app_approved"      // a device code approved and redeemed: an app connected
	EventPasswordChanged = "password_changed"  //
	EventEmailChanged    = "email_changed"     // Detail: the new address
	EventEmailVerified   = "email_verified"    // Detail: the address
	EventTwoFactorOn     = "two_factor_on"     //
	EventTwoFactorOff    = "two_factor_off"    // Reason says why when it was not the user (an operator, a reset)
	EventAccountReset    = "account_reset"     // everything that could act for the account ended (Reason, By: an operator)
	EventTwoFactorFailed = "two_factor_failed" // a wrong second-factor code after the right password
	EventRefreshReused   = "refresh_reused"    // a spent refresh token of an app's came back: its family ended (Detail: the app)
	EventAppConsented    = "app_consented"     // the person allowed an app to sign them in (Detail: the app; Method: the scopes allowed, space-separated)
	EventAppSignIn       = "app_sign_in"       // a session signed in to an app through Doorman (Detail: the app; SessionID, Device, Location, IP: the session's)
	EventAppDisconnected = "app_disconnected"  // the person disconnected an app signed in to through Doorman (Detail: the app; Reason ReasonDisconnected)
)

// SecurityEvent is one entry of an account's security history.
type SecurityEvent struct {
	ID     int64 // increasing; pages of history are "before ID"
	UserID int64
	Kind   string
	At     time.Time
	// What it is about: a session (browser) or a token / app.
	SessionID, TokenID string
	// The device, place and address it happened from, and the sign-in
	// method ("password", "password+totp", …) for sign-ins; for a token
	// that ended, its kind (TokenPersonal or TokenApp), so the history can
	// say "revoked" of an access token and "disconnected" of an app.
	Device, Location, IP, Method string
	// For endings: the reason (a Reason… constant) and who ended it (a
	// session id, a token id, "operator", or "").
	Reason, By string
	// Detail is a short free text (a token's or app's name, an address).
	Detail string
}

// HistoryStore is the security-history part of Store. Events that record a
// write of the store's own (a session started or ended, a token created or
// ended, an app connected, the password or email changed, two-factor turned
// on or off) are written by that write, in its transaction; the caller does
// not record them. Events with no write of their own (failed sign-ins,
// wrong codes) are recorded with RecordSecurityEvent.
type HistoryStore interface {
	// RecordSecurityEvent appends e (its ID is assigned).
	RecordSecurityEvent(ctx context.Context, e SecurityEvent) error
	// ListSecurityEvents returns the user's events with ID < before (0: from
	// the newest) and At >= since, newest first, at most limit.
	ListSecurityEvents(ctx context.Context, userID int64, before int64, since time.Time, limit int) ([]SecurityEvent, error)
	// FilterSecurityEvents is ListSecurityEvents narrowed by f: only the
	// events of one of f.Kinds (none: every kind) with At in [f.Since,
	// f.Until) (a zero Until: no end).
	FilterSecurityEvents(ctx context.Context, userID int64, before int64, f EventFilter, limit int) ([]SecurityEvent, error)
	// PruneSecurityEvents deletes events older than cutoff.
	PruneSecurityEvents(ctx context.Context, cutoff time.Time) (int64, error)
	// RecordExpiredSessions writes an EventSessionEnded (Reason
	// ReasonIdleExpired or ReasonAbsoluteExpired, At the moment it expired)
	// for each session that expired at or before now without being
	// revoked, at most limit of them, each once whichever instance calls
	// it (a marker on the row, set in the same transaction), and owes
	// every app each of them signed in to a back-channel logout naming it
	// (sid), in the same transaction. It returns how many it recorded.
	RecordExpiredSessions(ctx context.Context, now time.Time, limit int) (int, error)
	// NoteRefusedUse counts a request refused because session id had been
	// revoked (someone still holds its cookie): RefusedCount + 1 and
	// LastRefusedAt = at, on a revoked session only.
	NoteRefusedUse(ctx context.Context, sessionID string, at time.Time) error
}

// EventFilter narrows a user's history (FilterSecurityEvents).
type EventFilter struct {
	Kinds        []string  // any of these kinds; none: every kind
	Since, Until time.Time // At >= Since and, unless Until is zero, At < Until
}

// Actor is the browser a change came from: its device label, place and
// address. A handler puts it in the context of the store call it makes
// (WithActor); the store writes it on the history entries of that call
// that name no device, place or address of their own (a password reset, a
// second factor turned on or off, an address changed), so the history
// says where every change came from. A call with no actor in its context
// (an operator's command, the expiry sweep) records none: no browser acted.
type Actor struct{ Device, Location, IP string }

type actorKey struct{}

// WithActor returns ctx carrying a as the browser acting.
func WithActor(ctx context.Context, a Actor) context.Context {
	return context.WithValue(ctx, actorKey{}, a)
}

// Acted returns e with the acting browser of ctx (WithActor) as its
// device, place and address, if it names none of them itself: an entry
// about a session or an app's request keeps the place it names.
func Acted(ctx context.Context, e SecurityEvent) SecurityEvent {
	a, ok := ctx.Value(actorKey{}).(Actor)
	if ok && e.Device == "" && e.Location == "" && e.IP == "" {
		e.Device, e.Location, e.IP = a.Device, a.Location, a.IP
	}
	return e
}

// ExpiredEvent is the history entry of session sess expiring by itself: at
// its expiry, for whichever came first, the idle timeout or the absolute
// lifetime.
func ExpiredEvent(sess Session) SecurityEvent {
	e := SecurityEvent{UserID: sess.UserID, Kind: EventSessionEnded, At: sess.ExpiresAt(), SessionID: sess.ID,
		Device: sess.DeviceLabel, Location: sess.Location, IP: sess.IP, Reason: ReasonIdleExpired}
	if !sess.AbsoluteExpiresAt.After(sess.IdleExpiresAt) {
		e.Reason = ReasonAbsoluteExpired
	}
	return e
}
