package db

import (
	"context"
	"errors"
	"time"
)

// Passkeys (WebAuthn credentials) sign a person in without a password.
// Each is a credential like a token: it is added only by a session whose
// epoch is current (AddPasskey checks it), it is listed with the sessions
// it opened, and removing it can end them.

// Kinds of PasskeyCeremony.
const (
	CeremonyRegister = "register"
	CeremonyLogin    = "login"
)

// MethodPasskey is the sign-in method (Session.AuthMethod) of a session
// opened with a passkey (Session.PasskeyID says which).
const MethodPasskey = "passkey"

// ReasonPasskeyRemoved: the session was opened with a passkey its owner
// removed, choosing to end what it had signed in.
const ReasonPasskeyRemoved = "passkey_removed"

// History of passkeys (SecurityEvent.Kind). Detail is the passkey's name.
const (
	EventPasskeyAdded   = "passkey_added"
	EventPasskeyRemoved = "passkey_removed"
	// EventPasskeyCloned: a sign-in's signature counter did not go past the
	// one last seen (a possible copy of the key); the sign-in went on.
	EventPasskeyCloned = "passkey_cloned"
)

// MailPasskeyAdded is the mail (Mail.Kind) telling the owner a passkey was
// added.
const MailPasskeyAdded = "passkey_added"

// ErrPasskeyLimit means the account has as many passkeys as it may.
var ErrPasskeyLimit = errors.New("db: too many passkeys")

// Passkey is one WebAuthn credential of a user's.
type Passkey struct {
	ID     int64
	UserID int64
	Name   string
	// CredentialID is the authenticator's id of the credential; PublicKey
	// its COSE public key; AAGUID the authenticator model's id (16 bytes,
	// zero when it gives none).
	CredentialID, PublicKey, AAGUID []byte
	AttestationType                 string
	// SignCount is the last signature counter seen (0: it keeps none).
	SignCount uint32
	// BackupEligible and BackupState are the authenticator's BE and BS
	// flags: a passkey that may be, and is, copied to the owner's other
	// devices (synced) rather than bound to one.
	BackupEligible, BackupState bool
	// UserVerified: the authenticator verified the person (PIN,
	// biometrics) when it was made.
	UserVerified bool
	Transports   []string
	CreatedAt    time.Time
	LastUsedAt   time.Time // zero: never used to sign in
	// CloneWarnings counts sign-ins whose counter did not go forward (a
	// possible clone), the last at CloneWarnedAt.
	CloneWarnings int
	CloneWarnedAt time.Time
	// AddedBySession is the session the passkey was added from ("" if not
	// known): disowning that session removes the passkey (see
	// Recovery.RemovePasskeysAddedBy).
	AddedBySession string
}

// Synced reports whether the passkey is backed up to the owner's other
// devices (its BS flag).
func (p Passkey) Synced() bool { return p.BackupState }

// PasskeyCeremony is a WebAuthn ceremony in flight: adding a passkey
// (CeremonyRegister, by session SessionID of user UserID) or signing in
// with one (CeremonyLogin, no user yet). ID is the SHA-256 (hex) of a
// secret only the browser that began it holds. Data is what the WebAuthn
// library keeps of it (its challenge, among others).
type PasskeyCeremony struct {
	ID        string
	Kind      string
	UserID    int64
	SessionID string
	Name      string // the name of the passkey being added
	Data      []byte
	CreatedAt time.Time
	ExpiresAt time.Time
}

// PasskeyUse is a signature a passkey just made to sign in: its new
// counter and backup state.
type PasskeyUse struct {
	PasskeyID   int64
	SignCount   uint32
	BackupState bool
	At          time.Time
}

// PasskeyStore is the passkey part of Store.
type PasskeyStore interface {
	// PasskeyUserHandle returns the user's WebAuthn user handle (random,
	// never the address or the row id), making it at now the first time;
	// ErrNotFound if no such user.
	PasskeyUserHandle(ctx context.Context, userID int64, now time.Time) ([]byte, error)
	// UserByPasskeyHandle returns the user whose handle it is, or ErrNotFound.
	UserByPasskeyHandle(ctx context.Context, handle []byte) (User, error)
	// AddPasskey stores p (its ID is assigned and returned) unless the user
	// has max passkeys or more already (ErrPasskeyLimit), records it in the
	// history and queues mail, in one transaction. epoch is the user's
	// Epoch as the request read it: if it has moved, or the user is
	// disabled, nothing is written (ErrSignInsReset). A credential id
	// already stored (this account's or another's) is ErrConflict.
	AddPasskey(ctx context.Context, p Passkey, max int, epoch int64, mail ...Mail) (Passkey, error)
	// ListPasskeys returns the user's passkeys, oldest first.
	ListPasskeys(ctx context.Context, userID int64) ([]Passkey, error)
	// PasskeyByCredentialID returns the passkey with that credential id,
	// whoever's it is, or ErrNotFound.
	PasskeyByCredentialID(ctx context.Context, credentialID []byte) (Passkey, error)
	// RenamePasskey renames one of the user's passkeys; ErrNotFound for
	// another user's or an unknown id.
	RenamePasskey(ctx context.Context, userID, id int64, name string) error
	// RemovePasskey removes one of the user's passkeys (ErrNotFound for
	// another user's or an unknown id: nothing changes), records it in the
	// history, and, if endSessions, ends every live session it opened
	// (ReasonPasskeyRemoved, by by) in the same transaction, returning the
	// passkey and what it ended.
	RemovePasskey(ctx context.Context, userID, id int64, endSessions bool, by string, now time.Time) (Passkey, []Session, error)
	// SignInWithPasskey, in one transaction: records use on the user's
	// passkey use.PasskeyID (ErrNotFound if it is gone or another user's:
	// nothing is written), and creates session s as CreateSession does
	// (maxPerUser, epoch, mail), with s.PasskeyID the passkey. A counter
	// that did not go past the one stored (either non-zero) is a possible
	// clone: it is counted on the passkey and recorded in the history, and
	// cloned is true; the stored counter never goes back.
	SignInWithPasskey(ctx context.Context, use PasskeyUse, s Session, maxPerUser int, epoch int64, mail ...Mail) (evicted []Session, cloned bool, err error)
	// CreatePasskeyCeremony stores a ceremony in flight.
	CreatePasskeyCeremony(ctx context.Context, c PasskeyCeremony) error
	// TakePasskeyCeremony deletes and returns the ceremony id of kind
	// (a CeremonyRegister one only for sessionID), if it is unexpired at
	// now: each is taken once, whoever asks first. ErrNotFound otherwise
	// (an expired one is deleted too).
	TakePasskeyCeremony(ctx context.Context, id, kind, sessionID string, now time.Time) (PasskeyCeremony, error)
	// PasskeysAddedFrom returns the user's passkeys that disowning session
	// sessionID removes (Recovery.RemovePasskeysAddedBy): those added from
	// it, and, in turn, those added from a session one of them opened.
	PasskeysAddedFrom(ctx context.Context, userID int64, sessionID string) ([]Passkey, error)
	// PrunePasskeyCeremonies deletes ceremonies expired before cutoff.
	PrunePasskeyCeremonies(ctx context.Context, cutoff time.Time) (int64, error)
}
