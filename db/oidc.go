package db

import (
	"context"
	"errors"
	"time"
)

// Doorman as an OpenID Connect provider: the apps that sign their users in
// through it (App, with redirect URIs), the keys that sign its ID tokens,
// the sign-ins in flight (AuthRequest) and the codes that end them, the
// consents people gave, the tokens apps hold (Grant), which Doorman session
// signed in to which app, and the back-channel logouts owed to the apps
// (LogoutDelivery). Every credential here obeys the revocation rule
// (SECURITY.md): it dies with the session it belongs to, and with a reset
// of the account's sign-ins, checked in the transaction that uses it.

// Kinds of Grant.
const (
	GrantAccess  = "access"
	GrantRefresh = "refresh"
)

// Reasons a grant ends, beyond the session and token reasons.
const (
	// ReasonSessionEnded: the Doorman session it belongs to ended.
	ReasonSessionEnded = "session_ended"
	// ReasonRefreshReused: a spent refresh token of its family was
	// presented again (a copy is in someone else's hands).
	ReasonRefreshReused = "refresh_reused"
	// ReasonCodeReused: the authorization code it was issued for was
	// presented again.
	ReasonCodeReused = "code_reused"
	// ReasonDisconnected: the person disconnected the app.
	ReasonDisconnected = "disconnected"
	// ReasonRevokedByApp: the app revoked it (RFC 7009).
	ReasonRevokedByApp = "revoked_by_app"
)

// ErrCodeUsed means an authorization code or refresh token was presented a
// second time: what the first use issued has been revoked.
var ErrCodeUsed = errors.New("db: code already used")

// SigningKey is one key Doorman signs ID tokens, access tokens and logout
// tokens with. The private half is sealed with the secret key (never in
// clear in the database); the public half is published (JWKS) while the
// key signs and, once retired, until ExpiresAt (when the last token it
// signed has expired).
type SigningKey struct {
	ID            string // the JWK's kid
	Algorithm     string // "RS256"
	PrivateSealed []byte
	PublicJWK     []byte // the public key as a JWK (JSON)
	CreatedAt     time.Time
	RetiredAt     time.Time // zero while it is the signing key
	ExpiresAt     time.Time // zero while it signs; else published until then
}

// AuthRequest is one OpenID Connect authorization request in flight: made
// when an app sends a browser to the authorization endpoint, completed
// when that browser's Doorman session signs in (and consents), ended when
// its code is redeemed.
type AuthRequest struct {
	ID                  string // random, in the sign-in page's URL
	ClientID            string
	RedirectURI         string
	Scopes              []string
	State, Nonce        string
	ResponseMode        string
	CodeChallenge       string
	CodeChallengeMethod string // "S256" or ""
	Prompt              []string
	MaxAge              int64 // seconds; -1 when the request had none
	LoginHint           string
	CreatedAt           time.Time
	ExpiresAt           time.Time // ~10 minutes to sign in
	// Set when a session completes it.
	UserID    int64
	SessionID string
	AuthTime  time.Time // when that session last proved who it is
	AMR       []string  // how: "pwd", "otp", "mfa", …
	Epoch     int64     // the user's Epoch as the completing request read it
	DoneAt    time.Time
	// Set when its code is issued and redeemed.
	CodeExpiresAt time.Time
	CodeUsedAt    time.Time
}

// Done reports whether a session completed the request.
func (r AuthRequest) Done() bool { return !r.DoneAt.IsZero() }

// Grant is one token an app holds: a short-lived access token (a JWT whose
// jti is ID: the row is what introspection and userinfo check) or a
// refresh token (ID.secret, only the secret's hash stored). Tokens issued
// from one authorization code form a family (FamilyID, the request's ID):
// a refresh token is spent when used (UsedAt) and its successor joins the
// family; a spent one presented again ends the whole family.
type Grant struct {
	ID         string
	Kind       string // GrantAccess or GrantRefresh
	SecretHash []byte // GrantRefresh: SHA-256 of the secret; nil for access tokens
	FamilyID   string
	UserID     int64
	ClientID   string
	// SessionID is the Doorman session that approved it. A grant dies
	// with that session unless Offline (offline_access), which dies only
	// with a reset of the account's sign-ins, "sign out everywhere", the
	// ending of every app and token, or a disconnect.
	SessionID     string
	Offline       bool
	Scopes        []string
	AuthTime      time.Time
	AMR           []string
	CreatedAt     time.Time
	ExpiresAt     time.Time
	UsedAt        time.Time // GrantRefresh: when it was spent (rotated)
	RevokedAt     time.Time
	RevokedReason string
}

// Alive reports whether the grant itself may be used at now: not revoked,
// not spent, not expired. (Its session and its user's epoch are checked by
// the store where it is used.)
func (g Grant) Alive(now time.Time) bool {
	return g.RevokedAt.IsZero() && g.UsedAt.IsZero() && now.Before(g.ExpiresAt)
}

// ConnectedApp is an app a person signed in to through Doorman, as the
// Security page lists it.
type ConnectedApp struct {
	ClientID, Name string
	Scopes         []string  // what they consented to, and what their live grants hold
	Offline        bool      // it holds a live offline refresh token
	FirstAt        time.Time // its first sign-in through Doorman
	LastUsedAt     time.Time // its last sign-in or token refresh
	SessionIDs     []string  // the live sessions that signed in to it
	// LogsOut: the app takes back-channel logouts (ConnectedApps; what
	// disconnecting it may promise).
	LogsOut bool
}

// Logout delivery states.
const (
	LogoutPending   = "pending"
	LogoutDelivered = "delivered"
	LogoutGaveUp    = "gave_up"
)

// LogoutDelivery is one back-channel logout owed to an app: written in the
// transaction that ended what it reports, sent (and retried) by the
// delivery worker until the app answers 2xx.
type LogoutDelivery struct {
	ID        int64
	ClientID  string
	AppName   string
	URI       string // the app's backchannel_logout_uri, as registered
	UserID    int64
	Subject   string // the user's OIDC subject
	SessionID string // the sid; "" for "every session of this user" (sub only)
	CreatedAt time.Time
	NextAt    time.Time
	Attempts  int
	State     string // LogoutPending, LogoutDelivered or LogoutGaveUp
	DoneAt    time.Time
	LastError string
}

// OIDCStore is the OpenID Connect provider's part of Store. Apps
// (clients) are TokenStore's CreateApp/App/Apps/DeleteApp, with their
// redirect URIs, secret and logout URI.
type OIDCStore interface {
	// Subject returns the user's OpenID Connect subject (sub): random,
	// opaque and stable (never the address or the row id), made the
	// first time it is asked for. ErrNotFound for no such user.
	Subject(ctx context.Context, userID int64) (string, error)
	// UserBySubject returns the user whose subject it is, or ErrNotFound.
	UserBySubject(ctx context.Context, subject string) (User, error)

	// EnsureSigningKey makes k the signing key unless there is one
	// already (two instances starting at once make one), and returns the
	// signing key.
	EnsureSigningKey(ctx context.Context, k SigningKey) (SigningKey, error)
	// RotateSigningKey retires the signing key (published until
	// publishUntil) and makes k the signing key, in one transaction.
	RotateSigningKey(ctx context.Context, k SigningKey, publishUntil time.Time) error
	// SigningKeys returns the signing key first, then the retired keys
	// still published at now.
	SigningKeys(ctx context.Context, now time.Time) ([]SigningKey, error)

	// CreateAuthRequest stores a new authorization request.
	CreateAuthRequest(ctx context.Context, r AuthRequest) error
	// AuthRequest returns the request with that id unexpired at now, or
	// ErrNotFound.
	AuthRequest(ctx context.Context, id string, now time.Time) (AuthRequest, error)
	// CompleteAuthRequest binds the request to a signed-in session: in one
	// transaction it checks the user's epoch (ErrSignInsReset) and that the
	// session is alive and theirs (ErrNotFound), marks the request done,
	// and records that the session signed in to the request's app.
	CompleteAuthRequest(ctx context.Context, id string, userID int64, sessionID string, authTime time.Time, amr []string, epoch int64, now time.Time) error
	// SaveAuthCode gives a completed request its code (only the hash is
	// stored), valid until expiresAt; ErrNotFound if the request is not
	// done or has a code already.
	SaveAuthCode(ctx context.Context, id string, codeHash []byte, expiresAt time.Time) error
	// RedeemAuthCode spends a code, returning its request: ErrNotFound if
	// no live code has that hash; ErrCodeUsed if it was spent before, in
	// which case every grant its first use issued is revoked
	// (ReasonCodeReused) in the same transaction.
	RedeemAuthCode(ctx context.Context, codeHash []byte, now time.Time) (AuthRequest, error)
	// DeleteAuthRequest removes a request (cancelled, or its code spent
	// and its tokens issued). A request whose code was spent is kept
	// until pruned: its code's hash is how a second use is recognised
	// (RedeemAuthCode's ErrCodeUsed, which ends what the first issued).
	DeleteAuthRequest(ctx context.Context, id string) error
	// PruneAuthRequests deletes requests expired before cutoff (and
	// whose code, if any, expired before cutoff too).
	PruneAuthRequests(ctx context.Context, cutoff time.Time) (int64, error)

	// Consent returns the scopes the user consented to for the app (nil:
	// none yet).
	Consent(ctx context.Context, userID int64, clientID string) ([]string, error)
	// GrantConsent adds scopes to the user's consent for the app.
	GrantConsent(ctx context.Context, userID int64, clientID string, scopes []string, now time.Time) error

	// IssueGrants stores new grants (one family, one user, one app, one
	// session) in one transaction, after checking the user's epoch
	// (ErrSignInsReset; the code's request's epoch, or -1 for a refresh,
	// whose spent token is checked instead), that the user is not
	// disabled (ErrSignInsReset) and that their session is alive
	// (ErrNotFound): always when a code is redeemed (spend ""), so nothing
	// is minted for a session that ended after it approved the code; on a
	// refresh only for grants not offline. If spend is a refresh token's id, it is spent
	// in the same transaction: one that is spent, revoked or expired
	// already is not, nothing is issued, and a spent one ends its whole
	// family (ReasonRefreshReused, recorded in the history) and returns
	// ErrCodeUsed.
	IssueGrants(ctx context.Context, grants []Grant, spend string, epoch int64, now time.Time) error
	// GrantWithUser returns a grant and its user, with whether it may act
	// at now: alive itself, its user not disabled, and its session alive
	// unless it is offline. ErrNotFound for no such grant.
	GrantWithUser(ctx context.Context, id string, now time.Time) (g Grant, u User, usable bool, err error)
	// RevokeGrant ends a grant of the app's (RFC 7009): a refresh token
	// ends its family, an access token itself. ErrNotFound if it is not
	// the app's.
	RevokeGrant(ctx context.Context, clientID, id string, now time.Time) error
	// PruneGrants deletes grants that expired before cutoff, and unspent
	// ones ended before cutoff (a spent refresh token is kept until it
	// expires, so that presented again it is still recognised as reuse).
	PruneGrants(ctx context.Context, cutoff time.Time) (int64, error)

	// ConnectedApps lists the apps the user signed in to through Doorman
	// that still hold a consent, a live grant or a live session's sign-in.
	ConnectedApps(ctx context.Context, userID int64, now time.Time) ([]ConnectedApp, error)
	// SessionApps returns the apps session sessionID of the user's signed
	// in to (its details).
	SessionApps(ctx context.Context, userID int64, sessionID string) ([]ConnectedApp, error)
	// DisconnectApp ends every grant of the user's for the app, forgets
	// their consent, and owes the app a logout of every session of the
	// user's (sub only), in one transaction; it returns that delivery
	// (ID 0 if the app takes no back-channel logout). ErrNotFound if the
	// app was not connected.
	DisconnectApp(ctx context.Context, userID int64, clientID string, now time.Time) (LogoutDelivery, error)

	// ClaimLogoutDeliveries takes up to limit pending deliveries due at
	// now, leasing each until now+lease so that one instance sends it.
	ClaimLogoutDeliveries(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]LogoutDelivery, error)
	// LogoutDelivered records a delivery the app answered 2xx.
	LogoutDelivered(ctx context.Context, id int64, now time.Time) error
	// LogoutFailed records a failed attempt: retried at next, or given up
	// when giveUp.
	LogoutFailed(ctx context.Context, id int64, errText string, next time.Time, giveUp bool, now time.Time) error
	// LogoutDeliveries returns the user's deliveries made at or after
	// since, newest first (confirmations and the history).
	LogoutDeliveries(ctx context.Context, userID int64, since time.Time) ([]LogoutDelivery, error)
	// PruneLogoutDeliveries deletes deliveries done before cutoff, a
	// deleted account's (user 0) as soon as they are done, and pending
	// ones made before cutoff that no worker will send (their app is gone
	// or takes no back-channel logout any more).
	PruneLogoutDeliveries(ctx context.Context, cutoff time.Time) (int64, error)
}
