package db

import "time"

// Why a session ended, stored in the session's revoked reason.
const (
	ReasonSignedOut       = "signed_out"     // the user signed out on that device
	ReasonRevoked         = "revoked"        // ended from another session's list (the X button)
	ReasonRevokedOthers   = "revoked_others" // "Sign out all other sessions" from another session
	ReasonRevokedAll      = "revoked_all"    // "Sign out everywhere"
	ReasonPassword        = "password_changed"
	ReasonTwoFactor       = "two_factor_on"    // two-factor was turned on, signing out the other sessions
	ReasonSessionLimit    = "session_limit"    // the user's least recently active session, ended to make room
	ReasonOperator        = "operator"         // `doorman sessions revoke`
	ReasonDisabled        = "user_disabled"    // `doorman users disable`
	ReasonIdleExpired     = "idle_expired"     // unused for the idle timeout (history only: no write ends it)
	ReasonAbsoluteExpired = "absolute_expired" // reached its absolute lifetime (history only)
	ReasonDeleted         = "user_deleted"     // the account was deleted (the row is gone; only events carry this)
	ReasonPasswordReset   = "password_reset"   // the password was reset by an emailed link
	ReasonNotMe           = "not_me"           // the owner disowned a sign-in ("This wasn't me", "Not you?")
	ReasonEmailUndone     = "email_undone"     // the owner undid a change of the account's address
)

// Sign-in methods (Session.AuthMethod) of an emailed sign-in link, alone or
// with a second factor.
const (
	MethodEmailLink     = "email_link"
	MethodEmailLinkTOTP = "email_link+totp"
	// MethodPasswordReset is the session a completed password reset
	// signs in.
	MethodPasswordReset = "password_reset"
)

// User is an account.
type User struct {
	ID           int64
	Email        string
	PasswordHash string
	CreatedAt    time.Time
	IsDemo       bool
	DisabledAt   time.Time // zero unless an operator disabled the account
	// Epoch counts resets of the user's sign-ins (password change, "log
	// out all other sessions", "sign out everywhere", disable). A sign-in
	// passes the value it read to CreateSession, which refuses if it moved.
	Epoch int64
	// EmailVerifiedAt is when an emailed link proved the address reaches
	// the user; zero while not verified.
	EmailVerifiedAt time.Time
	// SignInAlertsOff is the user's choice not to be mailed about new
	// sign-ins (on by default).
	SignInAlertsOff bool
}

// EmailVerified reports whether the address is verified.
func (u User) EmailVerified() bool { return !u.EmailVerifiedAt.IsZero() }

// Disabled reports whether an operator disabled the account.
func (u User) Disabled() bool { return !u.DisabledAt.IsZero() }

// LoginAttempt is a password or code attempt to reserve before it is
// checked (see Store.ReserveLoginAttempt).
type LoginAttempt struct {
	// Account is an opaque key the caller derives (never an address as
	// typed); Scope says who tried (anonymous, one device, one session).
	Account, Scope, IP string
	// At is when it is made; attempts at or after Since are counted.
	At, Since time.Time
	// Limits are what it must stay under, all of them.
	Limits []AttemptLimit
}

// AttemptLimit allows at most Max attempts of the account in Scope, or,
// with Prefix, in every scope that starts with Scope taken together.
type AttemptLimit struct {
	Scope  string
	Prefix bool
	Max    int
}

// Reservation is what Store.ReserveLoginAttempt did.
type Reservation struct {
	// ID is the recorded attempt's, for ReleaseLoginAttempt; 0 when it was
	// refused.
	ID int64
	// Full is, when refused, the index in Limits of the first limit that
	// was reached, and First the time of the earliest attempt it counted.
	Full  int
	First time.Time
}

// Session is one signed-in browser.
type Session struct {
	ID                string // public id
	SecretHash        []byte // SHA-256 of the cookie secret
	UserID            int64
	CreatedAt         time.Time
	LastSeenAt        time.Time
	IdleExpiresAt     time.Time
	AbsoluteExpiresAt time.Time
	IP                string
	UserAgent         string
	DeviceLabel       string
	DeviceName        string // the owner's name for its device ("Anna's MacBook"), "" for none
	DeviceKind        string
	Location          string
	LocationShort     string
	AuthMethod        string
	ReauthAt          time.Time // when the password was last entered in this session
	RevokedAt         time.Time // zero while not revoked
	RevokedReason     string
	RevokedBy         string
	// RefusedCount requests came with this session's cookie after it was
	// revoked (someone still holds it); the last at LastRefusedAt.
	RefusedCount  int
	LastRefusedAt time.Time
	// PasskeyID is the passkey that opened the session (0: another way).
	PasskeyID int64
}

// ExpiresAt is when the session ends if nothing else happens: the earlier of
// its idle and absolute expiry.
func (s Session) ExpiresAt() time.Time {
	if s.IdleExpiresAt.Before(s.AbsoluteExpiresAt) {
		return s.IdleExpiresAt
	}
	return s.AbsoluteExpiresAt
}

// Revoked reports whether the session was ended on purpose.
func (s Session) Revoked() bool { return !s.RevokedAt.IsZero() }

// Alive reports whether the session may be used at now: not revoked, and
// now strictly before both expiries (a session is dead at the very second
// it expires).
func (s Session) Alive(now time.Time) bool {
	return !s.Revoked() && now.Before(s.ExpiresAt())
}

// SessionSummary is what a list of sessions shows: no secret hash, address
// or user agent.
type SessionSummary struct {
	ID            string
	CreatedAt     time.Time
	LastSeenAt    time.Time
	DeviceLabel   string
	DeviceName    string // the owner's name for it, "" for none
	DeviceKind    string
	Location      string
	LocationShort string
	AuthMethod    string
	IP            string // the last address seen: where a map puts the session
	// KnownAt is when the person said this sign-in was theirs ("It was
	// me" on the Security page, "This was me" in a new sign-in alert);
	// zero while they have not.
	KnownAt   time.Time
	PasskeyID int64 // the passkey that opened it (0: another way)
}

// Summary is the session as a list shows it.
func (s Session) Summary() SessionSummary {
	return SessionSummary{ID: s.ID, CreatedAt: s.CreatedAt, LastSeenAt: s.LastSeenAt, DeviceLabel: s.DeviceLabel,
		DeviceName: s.DeviceName, DeviceKind: s.DeviceKind, Location: s.Location, LocationShort: s.LocationShort, AuthMethod: s.AuthMethod, IP: s.IP, PasskeyID: s.PasskeyID}
}

// Touch is what a request changes on its session row.
type Touch struct {
	LastSeenAt    time.Time
	IdleExpiresAt time.Time
	IP            string
	Location      string
	LocationShort string
}

// Overview is what SecurityOverview reads.
type Overview struct {
	Sessions     []SessionSummary
	TwoFactor    TwoFactor
	HasTwoFactor bool
	Tokens       []Token
	Events       []SecurityEvent
	// What was asked for and can still act for the account once completed
	// (PendingEmailChanges, PendingApprovals).
	EmailChanges []LinkToken
	Approvals    []DeviceAuthorization
	// The apps signed in to through Doorman still connected (as
	// ConnectedApps) and the passkeys (as ListPasskeys).
	Apps     []ConnectedApp
	Passkeys []Passkey
}
