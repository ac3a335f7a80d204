package db

import (
	"context"
	"errors"
	"time"
)

// Sign-in methods a session records (Session.AuthMethod) beyond "password"
// and "signup": the second factor used after the password.
const (
	MethodPasswordTOTP     = "password+totp"
	MethodPasswordRecovery = "password+recovery"
)

// ErrTwoFactorEnabled means two-factor is already on for the user: a new
// setup must not replace the secret their authenticator app holds.
var ErrTwoFactorEnabled = errors.New("db: two-factor is already on")

// TwoFactor is a user's authenticator-app (TOTP) state.
type TwoFactor struct {
	UserID int64
	// SecretSealed is the TOTP secret encrypted with a key that does not
	// live in the database (package secretbox); never stored in clear.
	SecretSealed string
	// EnabledAt is when the user confirmed the setup with a code; zero
	// while the setup is pending (the secret shown, no code entered yet).
	EnabledAt time.Time
	// LastStep is the last accepted TOTP time step (unix time / 30): a
	// code of that step or an earlier one is refused (replay guard).
	LastStep int64
	// RecoveryLeft is how many recovery codes are unused.
	RecoveryLeft int
	// UnverifiedAddress: it was turned on while the account's address was
	// not verified (accounts from before the pages required a verified
	// address). Whoever set it up may not own the address, so a password
	// reset link, which proves the mailbox, may clear it
	// (Recovery.ClearUnverifiedTwoFactor).
	UnverifiedAddress bool
}

// Enabled reports whether the second step is required at sign-in.
func (t TwoFactor) Enabled() bool { return !t.EnabledAt.IsZero() }

// PendingSignIn is a sign-in whose password was right, waiting for its
// second factor. It grants nothing: no session exists until it completes.
type PendingSignIn struct {
	ID         string // public id, in the browser's pending cookie
	SecretHash []byte // SHA-256 of the cookie secret
	UserID     int64
	// Epoch is the user's Epoch when the password was checked: a reset
	// since then makes completing it fail with ErrSignInsReset.
	Epoch     int64
	CreatedAt time.Time
	ExpiresAt time.Time
	Failures  int // wrong codes entered so far
}

// TwoFactorStore is the two-factor part of Store.
type TwoFactorStore interface {
	// TwoFactor returns the user's two-factor state (pending or enabled),
	// or ErrNotFound when there is none.
	TwoFactor(ctx context.Context, userID int64) (TwoFactor, error)
	// StartTwoFactor records a pending setup with the sealed secret,
	// replacing an earlier pending one; ErrTwoFactorEnabled if it is on.
	StartTwoFactor(ctx context.Context, userID int64, secretSealed string, now time.Time) error
	// EnableTwoFactor confirms the pending setup whose sealed secret is
	// secretSealed (the one the code was checked against: a setup started
	// again meanwhile in another tab is not enabled by a code of the old
	// one): enabled at now, step as the last accepted step, and
	// recoveryHashes (each code's keyed hash, twofactor.NewRecoveryCodes)
	// as the only recovery codes.
	// ErrNotFound without that pending setup; ErrTwoFactorEnabled if it
	// is already on. It records whether the user's address was verified
	// at that moment (TwoFactor.UnverifiedAddress).
	// mail is queued in the same transaction.
	EnableTwoFactor(ctx context.Context, userID int64, secretSealed string, step int64, recoveryHashes [][]byte, now time.Time, mail ...Mail) error
	// DisableTwoFactor removes the user's two-factor state and recovery
	// codes (no error when there was none), queueing mail in the same
	// transaction when there was.
	DisableTwoFactor(ctx context.Context, userID int64, mail ...Mail) error
	// AcceptTOTPStep records step as used if two-factor is enabled and step
	// is later than LastStep, atomically (two instances checking the same
	// code at once: exactly one accepts it). ok is false otherwise.
	AcceptTOTPStep(ctx context.Context, userID int64, step int64) (ok bool, err error)
	// UseRecoveryCode marks the unused code stored as one of hashes (the
	// forms one typed code may be stored in: twofactor.RecoveryHashes) as
	// used at now, atomically, and returns how many remain; ok is false
	// (nothing changes) when no unused code has any of them. mail is
	// queued only when a code was used, in the same transaction.
	UseRecoveryCode(ctx context.Context, userID int64, hashes [][]byte, now time.Time, mail ...Mail) (left int, ok bool, err error)
	// ReplaceRecoveryCodes makes hashes the user's only recovery codes;
	// ErrNotFound unless two-factor is enabled.
	ReplaceRecoveryCodes(ctx context.Context, userID int64, hashes [][]byte, now time.Time) error

	// CreatePendingSignIn stores a pending sign-in.
	CreatePendingSignIn(ctx context.Context, p PendingSignIn) error
	// PendingSignIn returns the pending sign-in with that id, expired or
	// not, or ErrNotFound.
	PendingSignIn(ctx context.Context, id string) (PendingSignIn, error)
	// FailPendingSignIn counts a wrong code against the pending sign-in and
	// returns its failures so far; at limit or more it is deleted in the
	// same statement or transaction. ErrNotFound if it is gone.
	FailPendingSignIn(ctx context.Context, id string, limit int) (failures int, err error)
	// CompletePendingSignIn, in one transaction, deletes the pending
	// sign-in id (which must exist and be unexpired at s.CreatedAt) and
	// creates session s as CreateSession does (maxPerUser, the pending
	// sign-in's epoch). A second completion of the same id gets
	// ErrNotFound: each is redeemed once. mail is queued in the same
	// transaction.
	CompletePendingSignIn(ctx context.Context, id string, s Session, maxPerUser int, mail ...Mail) (evicted []Session, err error)
	// DeletePendingSignIn removes a pending sign-in (no error if gone).
	DeletePendingSignIn(ctx context.Context, id string) error
	// PrunePendingSignIns deletes pending sign-ins expired before cutoff.
	PrunePendingSignIns(ctx context.Context, cutoff time.Time) (int64, error)
}
