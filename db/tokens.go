package db

import (
	"context"
	"errors"
	"time"
)

// Kinds of token.
const (
	// TokenPersonal is a personal access token the user made by hand.
	TokenPersonal = "pat"
	// TokenApp is the access token of a connected app (the device flow).
	TokenApp = "app"
)

// Reasons a token ends, beyond the session reasons it shares
// (ReasonRevokedAll, ReasonPassword, ReasonOperator, ReasonDisabled).
const (
	ReasonTokenRevoked = "token_revoked" // the trash icon on its row
	ReasonAppRemoved   = "app_removed"   // the operator removed the app
	// ReasonRevokedViaAPI ends a session through DELETE /api/v1/sessions/<id>
	// (revoked_by is the token's id).
	ReasonRevokedViaAPI = "revoked_via_api"
)

// ErrConflict means a unique value (an app's client_id, a user code) is
// taken; the caller picks another.
var ErrConflict = errors.New("db: already exists")

// Token is a bearer credential for the API: a personal access token or a
// connected app's token. Like a session, only the hash of its secret is
// stored.
type Token struct {
	ID         string // public id, also inside the token string
	SecretHash []byte // SHA-256 of the token's secret part
	UserID     int64
	Kind       string   // TokenPersonal or TokenApp
	Name       string   // the user's name for it, or the app's name
	ClientID   string   // TokenApp: the app's client_id; "" otherwise
	Scopes     []string // e.g. "sessions:read", "sessions:write"
	CreatedAt  time.Time
	ExpiresAt  time.Time
	// Where it was made (the approving browser for an app).
	CreatedIP, CreatedLocation string
	// Last use, written at most every 15 minutes by the caller.
	LastUsedAt                   time.Time
	LastUsedIP, LastUsedLocation string
	RevokedAt                    time.Time // zero while not revoked
	RevokedReason, RevokedBy     string
}

// Revoked reports whether the token was ended on purpose.
func (t Token) Revoked() bool { return !t.RevokedAt.IsZero() }

// Alive reports whether the token may be used at now: not revoked and now
// strictly before its expiry.
func (t Token) Alive(now time.Time) bool { return !t.Revoked() && now.Before(t.ExpiresAt) }

// App is an OAuth client the operator registered: a command-line tool that
// signs in with the device flow (a public client: no secret, no redirect
// URI), or an app whose users sign in through Doorman with OpenID Connect
// (redirect URIs; a secret if it is confidential).
type App struct {
	ClientID  string
	Name      string
	CreatedAt time.Time
	// SecretHash is the SHA-256 of a confidential client's secret (shown
	// once, when the app is added); nil for a public client.
	SecretHash []byte
	// RedirectURIs are where the authorization endpoint may send the
	// browser back (matched exactly); PostLogoutRedirectURIs where
	// RP-initiated logout may.
	RedirectURIs, PostLogoutRedirectURIs []string
	// BackchannelLogoutURI receives the app's logout tokens; "" if the app
	// takes none.
	BackchannelLogoutURI string
	// FirstParty apps are the operator's own: no consent is asked.
	FirstParty bool
}

// OIDC reports whether the app signs users in with OpenID Connect (it has
// a redirect URI).
func (a App) OIDC() bool { return len(a.RedirectURIs) > 0 }

// Device authorization states.
const (
	DevicePending  = "pending"
	DeviceApproved = "approved"
	DeviceDenied   = "denied"
	DeviceRedeemed = "redeemed"
)

// DeviceAuthorization is one RFC 8628 device authorization request.
type DeviceAuthorization struct {
	DeviceCodeHash []byte // SHA-256 of the device_code (the client's secret)
	UserCode       string // 8 letters, normalised (upper case, no dash)
	ClientID       string
	Scopes         []string
	CreatedAt      time.Time
	ExpiresAt      time.Time
	// Interval is the seconds a client must wait between polls; it grows
	// by 5 each time the client polls too fast (slow_down).
	Interval     int
	LastPolledAt time.Time
	// Where the device authorization request came from.
	IP, Location string
	Status       string // DevicePending, DeviceApproved, DeviceDenied or DeviceRedeemed
	UserID       int64  // who approved or denied it (0 while pending)
	DecidedAt    time.Time
	// Epoch is the approver's Epoch as the approving request read it: an
	// approved code is redeemed only while the account has not been reset
	// since (the revocation rule, LinkDiesWithReset's for devices).
	Epoch int64
}

// TokenStore is the tokens-and-apps part of Store.
type TokenStore interface {
	// CreateToken inserts a token (the caller makes the id and passes
	// only the secret's hash) and queues mail, in one transaction.
	// ErrNotFound if the user does not exist. epoch is the user's Epoch as
	// the creating request read it: if the account was reset since (or is
	// disabled), nothing is written and the error is ErrSignInsReset, so no
	// token made by a request in flight outlives a "sign out everywhere".
	CreateToken(ctx context.Context, t Token, epoch int64, mail ...Mail) error
	// TokenWithUser returns the token with that public id, alive or not,
	// and its user: the one read behind every API request.
	TokenWithUser(ctx context.Context, id string) (Token, User, error)
	// ListTokens returns the user's live tokens of kind ("" any kind),
	// newest first.
	ListTokens(ctx context.Context, userID int64, kind string, now time.Time) ([]Token, error)
	// TouchToken records a use of a token that is not revoked.
	TouchToken(ctx context.Context, id string, at time.Time, ip, location string) error
	// RevokeToken ends one live token of the user and returns it;
	// ErrNotFound (nothing changes) for another user's, unknown or ended id.
	RevokeToken(ctx context.Context, userID int64, id, reason, by string, now time.Time) (Token, error)
	// RevokeTokens ends every live token of the user of kind ("" every
	// kind) and returns them.
	RevokeTokens(ctx context.Context, userID int64, kind, reason, by string, now time.Time) ([]Token, error)
	// RevokeAppTokens ends every live token the user gave the app
	// clientID ("disconnect") and returns them; none is not an error.
	RevokeAppTokens(ctx context.Context, userID int64, clientID, reason, by string, now time.Time) ([]Token, error)

	// CreateApp registers an app; ErrConflict if the client_id is taken.
	CreateApp(ctx context.Context, a App) error
	// App returns the app with that client_id, or ErrNotFound.
	App(ctx context.Context, clientID string) (App, error)
	// Apps returns every registered app, oldest first.
	Apps(ctx context.Context) ([]App, error)
	// DeleteApp removes the app and, in the same transaction, ends every
	// live token of it (ReasonAppRemoved) and its pending device
	// authorizations; it returns the tokens ended. ErrNotFound if unknown.
	DeleteApp(ctx context.Context, clientID string, now time.Time) ([]Token, error)

	// CreateDeviceAuthorization stores a new request; ErrConflict if its
	// user code is held by another request that has not expired at
	// d.CreatedAt (the caller draws another code).
	CreateDeviceAuthorization(ctx context.Context, d DeviceAuthorization) error
	// DeviceAuthorizationByUserCode returns the request with that user code
	// (normalised), expired or not, or ErrNotFound.
	DeviceAuthorizationByUserCode(ctx context.Context, userCode string) (DeviceAuthorization, error)
	// DecideDeviceAuthorization approves (or denies) the pending request
	// userCode for userID, if it is still pending and unexpired at now;
	// ErrNotFound otherwise (nothing changes). epoch is the user's Epoch as
	// the approving request read it, kept with the approval: if the
	// account is reset before the app redeems the code (even while this
	// write was in flight), the code is worth nothing. mail is queued in
	// the same transaction.
	DecideDeviceAuthorization(ctx context.Context, userCode string, userID, epoch int64, approve bool, now time.Time, mail ...Mail) error
	// PollDeviceAuthorization is one token-endpoint poll for the request
	// with that device code hash: atomically, tooFast is whether the
	// previous poll was less than Interval seconds before now (then
	// Interval grows by 5), and LastPolledAt becomes now. The returned
	// request is as it stands after the poll. ErrNotFound if unknown.
	PollDeviceAuthorization(ctx context.Context, deviceCodeHash []byte, now time.Time) (d DeviceAuthorization, tooFast bool, err error)
	// RedeemDeviceAuthorization, in one transaction: marks the approved,
	// unexpired (at t.CreatedAt) request redeemed and creates token t
	// (whose UserID must be the approver's). Each request is redeemed
	// once: a second call, or one on a request not approved, gets
	// ErrNotFound and creates nothing. If the approver's account was reset
	// since the approval (its Epoch moved) or is disabled, the request is
	// marked denied instead, nothing else is created, and the error is
	// ErrSignInsReset.
	RedeemDeviceAuthorization(ctx context.Context, deviceCodeHash []byte, t Token) error
	// PendingApprovals returns the requests the user approved that no app
	// has redeemed yet and that still could be at now (unexpired, approved
	// at the user's current Epoch), newest first.
	PendingApprovals(ctx context.Context, userID int64, now time.Time) ([]DeviceAuthorization, error)
	// CancelApproval withdraws the user's approval of request userCode
	// before an app redeems it (it becomes denied); ErrNotFound (nothing
	// changes) if it is not an approval of theirs still waiting.
	CancelApproval(ctx context.Context, userID int64, userCode string, now time.Time) error
	// PruneDeviceAuthorizations deletes requests that expired before cutoff.
	PruneDeviceAuthorizations(ctx context.Context, cutoff time.Time) (int64, error)
}
