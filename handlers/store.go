package handlers

import (
	"context"
	"time"

	"doorman/account"
	"doorman/db"
)

// Store is what the handlers use of the store (db.Store has it): the
// methods they call themselves, grouped by what calls them, and what the
// account service they build uses (account.Store). A handler that needs
// another method adds it here, where a reviewer sees it.
type Store interface {
	// The account service (account.New): ending sessions and tokens,
	// resets, password change, disable, delete.
	account.Store

	// Every request: the credential read behind it (the revocation rule),
	// the activity it records, a revoked cookie still in use, and /readyz.
	SessionWithUser(ctx context.Context, id string) (db.Session, db.User, error)
	TouchSession(ctx context.Context, id string, t db.Touch) error
	NoteRefusedUse(ctx context.Context, sessionID string, at time.Time) error
	Ping(ctx context.Context) error

	// Signing in (the session service, sign-up, the password form and its
	// throttle, the second step of a two-factor sign-in).
	CreateUser(ctx context.Context, email, passwordHash string, isDemo bool, now time.Time, mail ...db.Mail) (db.User, error)
	UserByEmail(ctx context.Context, email string) (db.User, error)
	UserByID(ctx context.Context, id int64) (db.User, error)
	CreateSession(ctx context.Context, s db.Session, maxPerUser int, epoch int64, mail ...db.Mail) (evicted []db.Session, err error)
	RotateSession(ctx context.Context, id string, secretHash []byte, now time.Time) error
	CompletePendingSignIn(ctx context.Context, id string, s db.Session, maxPerUser int, mail ...db.Mail) (evicted []db.Session, err error)
	ReserveLoginAttempt(ctx context.Context, a db.LoginAttempt) (db.Reservation, error)
	ReleaseLoginAttempt(ctx context.Context, id int64) error
	ClearLoginFailures(ctx context.Context, account string, scopes ...string) error

	// Pages: the Security page and its lists, "This wasn't me", the
	// history, the account page (changing the address), access tokens.
	SecurityOverview(ctx context.Context, userID int64, now, historySince time.Time, historyLimit int) (db.Overview, error)
	ListSessionSummaries(ctx context.Context, userID int64, now time.Time) ([]db.SessionSummary, error)
	UserSession(ctx context.Context, userID int64, id string, now time.Time) (db.Session, error)
	RenameSession(ctx context.Context, userID int64, id, name string, now time.Time) (db.Session, error)
	SessionNames(ctx context.Context, userID int64, ids []string) (map[string]string, error)
	AcknowledgeSignIns(ctx context.Context, userID int64, ids []string, now time.Time) ([]db.SessionSummary, error)
	ListSecurityEvents(ctx context.Context, userID int64, before int64, since time.Time, limit int) ([]db.SecurityEvent, error)
	FilterSecurityEvents(ctx context.Context, userID int64, before int64, f db.EventFilter, limit int) ([]db.SecurityEvent, error)
	RecordSecurityEvent(ctx context.Context, e db.SecurityEvent) error
	UpdateEmail(ctx context.Context, userID int64, email string) error
	ListTokens(ctx context.Context, userID int64, kind string, now time.Time) ([]db.Token, error)
	CreateToken(ctx context.Context, t db.Token, epoch int64, mail ...db.Mail) error

	// Two-factor: setting it up, turning it off, recovery codes, and the
	// pending sign-in between the password and the code.
	TwoFactor(ctx context.Context, userID int64) (db.TwoFactor, error)
	StartTwoFactor(ctx context.Context, userID int64, secretSealed string, now time.Time) error
	EnableTwoFactor(ctx context.Context, userID int64, secretSealed string, step int64, recoveryHashes [][]byte, now time.Time, mail ...db.Mail) error
	DisableTwoFactor(ctx context.Context, userID int64, mail ...db.Mail) error
	AcceptTOTPStep(ctx context.Context, userID int64, step int64) (ok bool, err error)
	UseRecoveryCode(ctx context.Context, userID int64, hashes [][]byte, now time.Time, mail ...db.Mail) (left int, ok bool, err error)
	ReplaceRecoveryCodes(ctx context.Context, userID int64, hashes [][]byte, now time.Time) error
	CreatePendingSignIn(ctx context.Context, p db.PendingSignIn) error
	PendingSignIn(ctx context.Context, id string) (db.PendingSignIn, error)
	FailPendingSignIn(ctx context.Context, id string, limit int) (failures int, err error)

	// The API: a Bearer token's read and use, and the sessions it lists
	// (the sign-in alert reads that list too).
	TokenWithUser(ctx context.Context, id string) (db.Token, db.User, error)
	TouchToken(ctx context.Context, id string, at time.Time, ip, location string) error
	ListSessions(ctx context.Context, userID int64, now time.Time) ([]db.Session, error)

	// The device flow: a command-line app asks, the user approves (or
	// cancels) at /device, the app polls and redeems.
	App(ctx context.Context, clientID string) (db.App, error)
	CreateDeviceAuthorization(ctx context.Context, d db.DeviceAuthorization) error
	DeviceAuthorizationByUserCode(ctx context.Context, userCode string) (db.DeviceAuthorization, error)
	DecideDeviceAuthorization(ctx context.Context, userCode string, userID, epoch int64, approve bool, now time.Time, mail ...db.Mail) error
	PollDeviceAuthorization(ctx context.Context, deviceCodeHash []byte, now time.Time) (d db.DeviceAuthorization, tooFast bool, err error)
	RedeemDeviceAuthorization(ctx context.Context, deviceCodeHash []byte, t db.Token) error
	CancelApproval(ctx context.Context, userID int64, userCode string, now time.Time) error

	// Mail and its links: queueing, the sign-in alert's known places,
	// sign-in links, confirming or undoing an address change.
	QueueMail(ctx context.Context, m db.Mail, more ...db.Mail) error
	SignInPlaceSeen(ctx context.Context, userID int64, device, network string, since time.Time) (bool, error)
	RememberSignInPlace(ctx context.Context, userID int64, device, network string, at time.Time) error
	SetSignInAlerts(ctx context.Context, userID int64, on bool) error
	LinkToken(ctx context.Context, id string) (db.LinkToken, error)
	UseLinkToken(ctx context.Context, id, purpose string, now time.Time) (db.LinkToken, error)
	SignInWithLink(ctx context.Context, id string, s db.Session, maxPerUser int, mail ...db.Mail) (evicted []db.Session, err error)
	ConfirmEmail(ctx context.Context, id string, now time.Time, mail ...db.Mail) (db.User, error)
	CancelEmailChanges(ctx context.Context, userID int64, cancelLinkID string, now time.Time) (int, error)

	// Passkeys: adding, listing, renaming and removing them, and signing
	// in with one (the ceremonies in flight are stored too).
	PasskeyUserHandle(ctx context.Context, userID int64, now time.Time) ([]byte, error)
	UserByPasskeyHandle(ctx context.Context, handle []byte) (db.User, error)
	AddPasskey(ctx context.Context, p db.Passkey, max int, epoch int64, mail ...db.Mail) (db.Passkey, error)
	ListPasskeys(ctx context.Context, userID int64) ([]db.Passkey, error)
	PasskeyByCredentialID(ctx context.Context, credentialID []byte) (db.Passkey, error)
	RenamePasskey(ctx context.Context, userID, id int64, name string) error
	RemovePasskey(ctx context.Context, userID, id int64, endSessions bool, by string, now time.Time) (db.Passkey, []db.Session, error)
	PasskeysAddedFrom(ctx context.Context, userID int64, sessionID string) ([]db.Passkey, error)
	SignInWithPasskey(ctx context.Context, use db.PasskeyUse, s db.Session, maxPerUser int, epoch int64, mail ...db.Mail) (evicted []db.Session, cloned bool, err error)
	CreatePasskeyCeremony(ctx context.Context, c db.PasskeyCeremony) error
	TakePasskeyCeremony(ctx context.Context, id, kind, sessionID string, now time.Time) (db.PasskeyCeremony, error)
}
