package db

import (
	"context"
	"errors"
	"net/netip"
	"time"
)

// Purposes of a link sent by email (LinkToken.Purpose).
const (
	// LinkPasswordReset chooses a new password (30 minutes). It dies when
	// the user's sign-ins are reset (Epoch moves), so of two reset links
	// only the first one used works.
	LinkPasswordReset = "password_reset"
	// LinkVerifyEmail confirms that the account's address (Email) reaches
	// its owner.
	LinkVerifyEmail = "verify_email"
	// LinkChangeEmail makes Email, the address it was sent to, the
	// account's address.
	LinkChangeEmail = "change_email"
	// LinkUndoEmail, sent to the old address after a change, puts that
	// address (Email) back and ends every session, app and token.
	LinkUndoEmail = "undo_email"
	// LinkSignIn signs a browser in (15 minutes). Like a reset link it
	// dies when the user's sign-ins are reset.
	LinkSignIn = "sign_in"
	// LinkSignInKnown is "This was me" in a new sign-in alert: the
	// device and place become known.
	LinkSignInKnown = "sign_in_known"
	// LinkSignInNotMe is "This wasn't me": ends the session SessionID
	// (and optionally everything else) and sets a new password.
	LinkSignInNotMe = "sign_in_not_me"
	// LinkCancelEmailChange, sent to the current address when a change
	// of address is asked for, cancels every pending change.
	LinkCancelEmailChange = "cancel_email_change"
)

// LinkDiesWithReset is the one rule every emailed link that can act for the
// account obeys: it is void once the account is reset (its Epoch moves:
// a password change or reset, "This wasn't me", "Not you?", an undone
// email change, "Sign out all other sessions" or "everywhere", an operator
// disabling or resetting the account) and once the account's address is
// no longer the one it was mailed to or asked from (AccountEmail). The
// store checks both in the transaction that uses the link.
//
// Two purposes are exempt, on purpose: a verify link only proves that the
// address it names reaches its owner (it is refused once that is not the
// account's address), and the undo link is itself the reset of an address
// change — it goes to the old address, and whoever moved the account must
// not be able to void it by resetting the account they took.
func LinkDiesWithReset(purpose string) bool {
	return purpose != LinkVerifyEmail && purpose != LinkUndoEmail
}

// ErrLinkUsed means an emailed link was used already, has expired, or was
// made void (the user's sign-ins were reset since it was sent, for the
// purposes that die then): nothing changed.
var ErrLinkUsed = errors.New("db: link used or expired")

// LinkToken is the server's half of a link sent by email. The link carries
// the public id and a secret; only the secret's SHA-256 is stored, so a
// copy of the database opens no link. Each is single use.
type LinkToken struct {
	ID         string // public id, inside the link
	SecretHash []byte // SHA-256 of the link's secret
	UserID     int64
	Purpose    string // a Link… constant
	// Email is the address the link is about: the one it confirms
	// (verify, change) or the one it restores (undo). For a password reset
	// or sign-in link it is the address it was sent to, and the link is
	// void once the account's address is another (checked when it is used).
	Email string
	// SessionID is the session a sign-in alert's links are about.
	SessionID string
	// BindingHash (sign-in links) is the SHA-256 of the binding cookie
	// set in the browser that asked for the link: in that browser the
	// link signs in at once; anywhere else it asks first.
	BindingHash []byte
	// Epoch is the user's Epoch when the link was made, and AccountEmail
	// the account's address then: a link whose purpose LinkDiesWithReset
	// is void once either has moved (checked when it is used).
	Epoch        int64
	AccountEmail string
	CreatedAt    time.Time
	ExpiresAt    time.Time
	UsedAt       time.Time // zero while unused
	// Where the link was asked for (or, for an alert, the sign-in it is
	// about): shown on the page it opens.
	IP, Device, Location string
}

// Usable reports whether the link is unused and unexpired at now (the store
// also checks the epoch when it uses it).
func (l LinkToken) Usable(now time.Time) bool { return l.UsedAt.IsZero() && now.Before(l.ExpiresAt) }

// Kinds of mail (Mail.Kind): what it is about, for the outbox and the logs.
const (
	MailPasswordReset    = "password_reset"
	MailNoAccount        = "no_account" // a link was asked for an address no account uses
	MailPasswordChanged  = "password_changed"
	MailVerifyEmail      = "verify_email"
	MailChangeEmail      = "change_email"  // to the new address
	MailEmailChanged     = "email_changed" // to the old address, with the undo link
	MailNewSignIn        = "new_sign_in"
	MailSignInLink       = "sign_in_link"
	MailTwoFactorOn      = "two_factor_on"
	MailTwoFactorOff     = "two_factor_off"
	MailRecoveryCode     = "recovery_code_used"
	MailAccountRecovered = "account_recovered" // sessions ended and a new password set ("This wasn't me", "Not you?", undo)
	MailTokenCreated     = "token_created"
	MailAppConnected     = "app_connected"
	MailEmailChangeAsked = "email_change_asked" // to the current address, with a link that cancels the change
	MailAddressInUse     = "address_in_use"     // to the holder of an address another account asked to move to
)

// Mail is one message to send. Queued in the transaction of what causes it
// (every write that sends mail takes it), it is sent later by the outbox
// worker, with retries.
type Mail struct {
	// MessageID is the message's unique Message-ID (without the angle
	// brackets). A retry sends the same one, so a receiving server or
	// client can drop a duplicate; the store refuses a second mail with
	// the same id (ErrConflict).
	MessageID string
	// UserID is the account it is about; 0 in a mail passed to CreateUser
	// means the user being created (the store fills it in, and in Links).
	UserID    int64
	To        string
	Kind      string // a Mail… constant
	Subject   string
	Text      string // the plain-text part
	HTML      string // the HTML part
	CreatedAt time.Time
	// NotAfter, if set, is when the mail is no longer worth sending (the
	// link in it has expired): the worker drops it rather than send a dead
	// link late.
	NotAfter time.Time
	// Links are created with the mail, in the same transaction.
	Links []LinkToken
}

// Outbox states (OutboxMail.Status).
const (
	MailQueued  = "queued"
	MailSent    = "sent"
	MailFailed  = "failed"  // the worker gave up (permanent error, or too many attempts)
	MailExpired = "expired" // not sent before NotAfter
)

// OutboxMail is a mail in the outbox and how its delivery is going.
type OutboxMail struct {
	ID int64
	Mail
	Status        string
	Attempts      int
	NextAttemptAt time.Time
	// ClaimedBy is the worker holding the mail until ClaimedUntil (a
	// worker that died loses it then).
	ClaimedBy    string
	ClaimedUntil time.Time
	SentAt       time.Time
	LastError    string
}

// Recovery is one "take the account back" write (RecoverAccount): a password
// reset by emailed link, "This wasn't me", "Not you?", undoing an email
// change. Everything it names happens in one transaction, or nothing does;
// it always resets the user's sign-ins (Epoch), so no sign-in still in
// flight survives it. Its history, written in the same transaction: an
// EventPasswordChanged (Reason: Reason) if PasswordHash is set, an
// EventEmailChanged (Detail: the address, Reason: Reason) if RestoreEmail
// is, an EventTwoFactorOff (Reason) if it turned two-factor off, an
// EventAccountReset if RecordReset, every session and token it ends as
// their own endings do, and the sign-in of Start.
type Recovery struct {
	UserID int64
	// LinkID, if set, is the emailed link of purpose LinkPurpose that this
	// recovery uses up: it must be the user's, unused, unexpired at Now and
	// (for the purposes that die with a reset) of the user's current
	// Epoch, else nothing changes and the error is ErrLinkUsed.
	LinkID, LinkPurpose string
	// KeepSessionID, if set, is this browser's session, which must be a
	// live session of the user's (else ErrNotFound, nothing changes): it
	// stays signed in, with the new secret KeepSecretHash and a
	// re-authentication at Now.
	KeepSessionID  string
	KeepSecretHash []byte
	// EndSessionID, if set, is ended if it is alive (already ended is not
	// an error: "This wasn't me" on a session that expired meanwhile).
	EndSessionID string
	// EndOthers ends every live session of the user but KeepSessionID.
	EndOthers bool
	// EndTokens ends every live token of the user (apps and personal).
	EndTokens bool
	// DisableTwoFactor turns the user's two-factor off (its secret and
	// recovery codes deleted), recording EventTwoFactorOff (Reason) if it
	// was on.
	DisableTwoFactor bool
	// ClearUnverifiedTwoFactor turns the user's two-factor off, as
	// DisableTwoFactor does, only if it was turned on while the address
	// was unverified (TwoFactor.UnverifiedAddress): a password reset link
	// proved the mailbox, so a second factor someone set up before that
	// proof may not lock the owner out. The caller did not ask for a code
	// because of that: if two-factor is on and was set up with a verified
	// address (turned on again meanwhile), nothing changes and the error
	// is ErrTwoFactorEnabled. Off already is not an error.
	ClearUnverifiedTwoFactor bool
	// RemovePasskeysAddedBy, if set, is a disowned session: the passkeys
	// added from it, and in turn those added from a session one of them
	// opened (PasskeysAddedFrom), are removed. RemovePasskeys are more of
	// the user's passkeys to remove (ids no longer the user's are
	// skipped: removed meanwhile). Each removal ends the live sessions the
	// passkey opened (but KeepSessionID) and records EventPasskeyRemoved
	// (Reason, By); Recovered.Passkeys lists them.
	RemovePasskeysAddedBy string
	RemovePasskeys        []int64
	// RecordReset records an EventAccountReset (Reason, By): the entry
	// for a reset that sets no password (an operator's).
	RecordReset bool
	// PasswordHash, if set, becomes the user's password.
	PasswordHash string
	// RestoreEmail, if set, becomes the user's address again, verified
	// (ErrEmailTaken if another account has it meanwhile).
	RestoreEmail string
	// DropTwoFactorSince, if set, turns off a second factor turned on at
	// or after it (with its recovery codes; an EventTwoFactorOff): undoing
	// an email change removes one set up by whoever moved the account.
	DropTwoFactorSince time.Time
	// VerifyEmail marks the user's address verified (the emailed link
	// proved it reaches them).
	VerifyEmail bool
	// ForgetDevice and ForgetNetwork, if set, are a sign-in place the user
	// disowned: it is no longer known (the next sign-in from it alerts).
	ForgetDevice, ForgetNetwork string
	// Start, if set, is a new session for this browser, created last
	// (after the reset), under MaxPerUser (0: no limit).
	Start      *Session
	MaxPerUser int
	// Reason and By are recorded on what it ends; Now is when.
	Reason, By string
	Now        time.Time
	// Mail is queued in the same transaction.
	Mail []Mail
}

// Recovered is what RecoverAccount did.
type Recovered struct {
	User     User      // the user as it is now
	Ended    []Session // sessions it ended (reported as events too)
	Tokens   []Token   // tokens it ended
	Evicted  []Session // sessions Start evicted under MaxPerUser
	Passkeys []Passkey // passkeys it removed
	// TwoFactorOff: it turned two-factor off (DisableTwoFactor or
	// ClearUnverifiedTwoFactor found it on).
	TwoFactorOff bool
}

// MailStore is the email part of Store: the outbox, emailed links, the
// sign-in places alerts compare against, and the writes that use a link.
type MailStore interface {
	// QueueMail stores m and more, and their links, in the outbox in one
	// transaction.
	QueueMail(ctx context.Context, m Mail, more ...Mail) error
	// ClaimMail claims for worker, until now+lease, up to limit queued
	// mails whose next attempt is due at now and that no other worker
	// holds (an expired claim is free again), oldest first. Across
	// instances each mail is held by one worker at a time. Queued mails
	// past their NotAfter are marked MailExpired (bodies erased) instead
	// of being returned.
	ClaimMail(ctx context.Context, worker string, now time.Time, lease time.Duration, limit int) ([]OutboxMail, error)
	// MarkMailSent records that worker sent mail id at now and erases its
	// bodies (they may hold a link's secret). ErrNotFound if worker does
	// not hold the claim (its lease ran out and another worker took it).
	MarkMailSent(ctx context.Context, id int64, worker string, now time.Time) error
	// MarkMailFailed records a failed attempt by worker at now: attempts
	// + 1 and the error; if giveUp, status MailFailed and bodies erased,
	// else the claim is released and the next attempt is at retryAt.
	// ErrNotFound if worker does not hold the claim.
	MarkMailFailed(ctx context.Context, id int64, worker, errText string, retryAt time.Time, giveUp bool, now time.Time) error
	// OutboxMail returns the mail with that Message-ID, or ErrNotFound.
	OutboxMail(ctx context.Context, messageID string) (OutboxMail, error)
	// PruneMail deletes mails sent, failed or expired before cutoff.
	PruneMail(ctx context.Context, cutoff time.Time) (int64, error)

	// LinkToken returns the link with that public id, used or not, or
	// ErrNotFound.
	LinkToken(ctx context.Context, id string) (LinkToken, error)
	// UseLinkToken marks the link id of purpose as used at now if it is
	// usable (as Recovery.LinkID says) and returns it; ErrLinkUsed if it
	// was used, expired or made void, ErrNotFound if there is no such
	// link of that purpose.
	UseLinkToken(ctx context.Context, id, purpose string, now time.Time) (LinkToken, error)
	// PruneLinkTokens deletes links that expired before cutoff.
	PruneLinkTokens(ctx context.Context, cutoff time.Time) (int64, error)

	// ConfirmEmail uses the link id (LinkVerifyEmail or LinkChangeEmail)
	// at now, in one transaction: a verify link marks the user's address
	// verified if it is still the link's Email (else ErrLinkUsed); a
	// change link makes the link's Email the user's address, verified
	// (ErrEmailTaken if another account has it; the link stays unused),
	// records EventEmailChanged (Detail: the new address) and queues mail
	// (the notice to the old address with its undo link). It returns the
	// user as it is now.
	ConfirmEmail(ctx context.Context, id string, now time.Time, mail ...Mail) (User, error)
	// SignInWithLink, in one transaction, uses the sign-in link id (whose
	// user must be s.UserID) at s.CreatedAt and creates session s as
	// CreateSession does (maxPerUser; the link's Epoch must still be the
	// user's, else ErrLinkUsed), queueing mail. It also marks the user's
	// address verified.
	SignInWithLink(ctx context.Context, id string, s Session, maxPerUser int, mail ...Mail) (evicted []Session, err error)
	// PendingEmailChanges returns the user's change-of-address links that
	// could still be used at now (unused, unexpired, of the user's current
	// Epoch and address), newest first: the change the Security page shows.
	PendingEmailChanges(ctx context.Context, userID int64, now time.Time) ([]LinkToken, error)
	// CancelEmailChanges voids every pending change-of-address link of the
	// user at now and returns how many there were. If cancelLinkID is set,
	// it must be a usable LinkCancelEmailChange link of the user's, used up
	// in the same transaction (else ErrLinkUsed or ErrNotFound, and
	// nothing changes).
	CancelEmailChanges(ctx context.Context, userID int64, cancelLinkID string, now time.Time) (int, error)
	// RecoverAccount does everything r names in one transaction (see
	// Recovery).
	RecoverAccount(ctx context.Context, r Recovery) (Recovered, error)

	// SignInPlaceSeen reports whether the user signed in with device (a
	// device label) from network (Network of the address) at or after
	// since. Every session created records its place (CreateSession and
	// every write that creates one).
	SignInPlaceSeen(ctx context.Context, userID int64, device, network string, since time.Time) (bool, error)
	// RememberSignInPlace records device and network as seen at at.
	RememberSignInPlace(ctx context.Context, userID int64, device, network string, at time.Time) error
	// SetSignInAlerts turns the user's new sign-in alerts on or off.
	SetSignInAlerts(ctx context.Context, userID int64, on bool) error
}

// Network is the part of an address that counts as "the same place" for new
// sign-in alerts: its /16 for IPv4, its /64 for IPv6 (the rule Mastodon
// uses), as a prefix string; "" for an address that does not parse.
func Network(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return ""
	}
	a = a.Unmap()
	bits := 64
	if a.Is4() {
		bits = 16
	}
	p, err := a.Prefix(bits)
	if err != nil {
		return ""
	}
	return p.String()
}
