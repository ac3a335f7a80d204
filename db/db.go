// Package db is the storage-neutral part of Doorman's storage: the domain
// types (users, their sessions), the sentinel errors and reasons, the whole
// Store interface the store implements (each consumer declares the few
// methods it uses in its own package: handlers.Store, account.Store,
// mailer.Store, …), and the event seam through which a store reports what
// it started and ended. It imports no driver: the store is written once in
// db/sqlstore over a dialect per database (db/sqlite, db/postgres; package
// storage opens the one a DSN names), and both pass the same black-box
// conformance suite, db/storetest.
package db

import (
	"context"
	"errors"
	"time"
)

// CallTimeout bounds every database call made outside a request: stream
// checks, background loops, the watcher's reads. Requests carry their own
// deadline (handlers.Config.RequestTimeout). A stalled database fails the
// call rather than holding a goroutine forever.
const CallTimeout = 5 * time.Second

// ErrNotFound means no row matched: unknown id, or a row owned by someone else.
var ErrNotFound = errors.New("db: not found")

// ErrEmailTaken means a user with that email already exists.
var ErrEmailTaken = errors.New("db: email already registered")

// ErrSignInsReset means CreateSession refused: the user's sign-ins were reset
// (or the account disabled) after the sign-in read the user, so a sign-in
// that was in flight then must not produce a session now.
var ErrSignInsReset = errors.New("db: the user's sign-ins were reset")

// Store is Doorman's storage. Implementations are safe for concurrent use,
// keep ownership checks in their queries (another user's id is ErrNotFound),
// and are the only authority on whether a session lives: the handlers read
// the session row on every request.
type Store interface {
	TwoFactorStore
	TokenStore
	HistoryStore
	MailStore
	OIDCStore
	PasskeyStore
	// CreateUser inserts a user and queues mail (its verification mail: a
	// UserID of 0 in the mail and its links is the new user's). The email
	// must already be normalised; a duplicate returns ErrEmailTaken.
	CreateUser(ctx context.Context, email, passwordHash string, isDemo bool, now time.Time, mail ...Mail) (User, error)
	// UserByEmail returns the user with that (normalised) email, or ErrNotFound.
	UserByEmail(ctx context.Context, email string) (User, error)
	// UserByID returns the user with that id, or ErrNotFound.
	UserByID(ctx context.Context, id int64) (User, error)
	// UserIDs returns the id of every user, in increasing order (the
	// operator's reset of every account after a restore).
	UserIDs(ctx context.Context) ([]int64, error)
	// UpdatePassword replaces the user's password hash.
	UpdatePassword(ctx context.Context, userID int64, hash string) error
	// UpdateEmail changes the user's (normalised) email, which is then not
	// verified (unless it is the same); ErrEmailTaken if another account
	// has it.
	UpdateEmail(ctx context.Context, userID int64, email string) error
	// SetUserDisabled disables (at now) or re-enables the user. Disabling
	// ends every live session of theirs and resets their sign-ins (Epoch)
	// in the same transaction, and returns what it ended.
	SetUserDisabled(ctx context.Context, userID int64, disabled bool, now time.Time) (ended []Session, err error)
	// DeleteUser removes the user and every session row of theirs (and
	// every other row about them: tokens, links, places, mails in the
	// outbox), and returns the sessions that were alive at now.
	DeleteUser(ctx context.Context, userID int64, now time.Time) (ended []Session, err error)

	// CreateSession inserts a new session row (the caller makes the id and
	// passes only the secret's hash). Past maxPerUser live sessions (0: no
	// limit) the least recently active ones are ended (ReasonSessionLimit)
	// in the same transaction and returned. epoch is the user's Epoch as
	// the sign-in read it: if it has moved since, or the user is disabled,
	// nothing is written and the error is ErrSignInsReset. It records the
	// session's sign-in place (RememberSignInPlace) and queues mail (a new
	// sign-in alert), in the same transaction.
	CreateSession(ctx context.Context, s Session, maxPerUser int, epoch int64, mail ...Mail) (evicted []Session, err error)
	// RotateSession gives a live session a new secret hash and records a
	// re-authentication at now; ErrNotFound if it is not alive.
	RotateSession(ctx context.Context, id string, secretHash []byte, now time.Time) error
	// SessionWithUser returns the session with that public id, alive or
	// not, and its user: the one read behind every request. The user's
	// Epoch is the one every credential this request mints is checked
	// against (the revocation rule).
	SessionWithUser(ctx context.Context, id string) (Session, User, error)
	// UserSession returns one live session of the user, or ErrNotFound.
	UserSession(ctx context.Context, userID int64, id string, now time.Time) (Session, error)
	// ListSessions returns the user's live sessions, every column, most
	// recently active first.
	ListSessions(ctx context.Context, userID int64, now time.Time) ([]Session, error)
	// ListSessionSummaries is ListSessions with only the columns a list shows.
	ListSessionSummaries(ctx context.Context, userID int64, now time.Time) ([]SessionSummary, error)
	// SecurityOverview is what the Security page shows besides the session
	// check, read together (PostgreSQL: in one round trip): the user's live
	// sessions as ListSessionSummaries gives them, the two-factor state as
	// TwoFactor (HasTwoFactor false when there is none), the live tokens as
	// ListTokens of every kind, the latest historyLimit events at or
	// after historySince as ListSecurityEvents, the connected apps as
	// ConnectedApps and the passkeys as ListPasskeys.
	SecurityOverview(ctx context.Context, userID int64, now, historySince time.Time, historyLimit int) (Overview, error)
	// RenameSession gives the user's live session id the device name name
	// ("" removes it) and records it in the history (EventDeviceRenamed),
	// in one transaction, and returns the session renamed; ErrNotFound
	// (nothing changes) for another user's, unknown or ended id. It ends
	// nothing.
	RenameSession(ctx context.Context, userID int64, id, name string, now time.Time) (Session, error)
	// SessionNames returns the device names of those of ids that are
	// sessions of the user's (alive or not) and are named.
	SessionNames(ctx context.Context, userID int64, ids []string) (map[string]string, error)
	// AcknowledgeSignIns records that the user said the sign-ins of
	// sessions ids were theirs ("It was me"): KnownAt = now on each that is
	// the user's, alive and not acknowledged before, with a history entry
	// (EventSignInKnown) each, in one transaction; it returns those.
	// Another user's, an ended or an unknown id changes nothing.
	AcknowledgeSignIns(ctx context.Context, userID int64, ids []string, now time.Time) ([]SessionSummary, error)
	// TouchSession records activity on a session that is not revoked; it
	// never revives a revoked one.
	TouchSession(ctx context.Context, id string, t Touch) error
	// RevokeSession ends one live session of the user and returns it;
	// ErrNotFound (nothing changes) for another user's, unknown or ended id.
	RevokeSession(ctx context.Context, userID int64, id, reason, by string, now time.Time) (Session, error)
	// RevokeOtherSessions ends every live session of the user but keepID
	// (recorded as ended by keepID) and resets the user's sign-ins, in one
	// transaction, and returns what it ended.
	RevokeOtherSessions(ctx context.Context, userID int64, keepID, reason string, now time.Time) ([]Session, error)
	// RevokeAllSessions ends every live session of the user and resets the
	// user's sign-ins, in one transaction, and returns what it ended.
	RevokeAllSessions(ctx context.Context, userID int64, reason, by string, now time.Time) ([]Session, error)
	// RevokeSessionsAndTokens ends every live session of the user but
	// keepID ("" for none kept), resets the user's sign-ins, and ends every
	// live token and OpenID Connect grant of theirs (owing each connected
	// app a logout of every session), all in one transaction ("sign out
	// everywhere", "sign out all other sessions" with the apps), and returns
	// the sessions and tokens it ended.
	RevokeSessionsAndTokens(ctx context.Context, userID int64, keepID, reason, by string, now time.Time) ([]Session, []Token, error)
	// ChangePassword, in one transaction: sets the password hash, resets
	// the user's sign-ins, gives the live session sessionID of the user's
	// the new secret hash and a re-authentication at now, if endOthers,
	// ends every other session (ReasonPassword), and, if endTokens, every
	// token and OpenID Connect grant of the user's (as
	// RevokeSessionsAndTokens), returning what it ended. If sessionID is
	// not a live session of the user's, nothing changes and the error is
	// ErrNotFound. mail is queued in the same transaction.
	ChangePassword(ctx context.Context, userID int64, sessionID, passwordHash string, secretHash []byte, endOthers, endTokens bool, now time.Time, mail ...Mail) ([]Session, []Token, error)
	// DeleteSessionsByMethod removes the user's sessions that signed in with
	// method (the demo seeder replaces its samples).
	DeleteSessionsByMethod(ctx context.Context, userID int64, method string, now time.Time) error
	// PruneSessions deletes rows of sessions revoked or expired before cutoff.
	PruneSessions(ctx context.Context, cutoff time.Time) (int64, error)

	// RecordLoginFailure notes a failed password attempt for account (an
	// opaque key the caller derives, never the address as typed) in scope
	// (who tried: anonymous, one device, one session).
	RecordLoginFailure(ctx context.Context, account, scope, ip string, at time.Time) error
	// LoginFailuresSince counts account's failures in scope at or after
	// since, and the time of the earliest of them (zero when none).
	LoginFailuresSince(ctx context.Context, account, scope string, since time.Time) (int, time.Time, error)
	// ReserveLoginAttempt records attempt a before it is checked, if and
	// only if every one of a.Limits has fewer than its Max attempts at or
	// after a.Since: the count and the insert are one transaction,
	// serialised per account, so callers racing each other can never
	// reserve more than a limit allows. Refused, it records nothing.
	ReserveLoginAttempt(ctx context.Context, a LoginAttempt) (Reservation, error)
	// ReleaseLoginAttempt forgets the reserved attempt id (it succeeded);
	// one already gone is no error.
	ReleaseLoginAttempt(ctx context.Context, id int64) error
	// ClearLoginFailures forgets account's failures in the given scopes,
	// or in every scope when none is given.
	ClearLoginFailures(ctx context.Context, account string, scopes ...string) error
	// PruneLoginFailures deletes failures older than cutoff.
	PruneLoginFailures(ctx context.Context, cutoff time.Time) (int64, error)

	// AppSecret returns the application secret called name, creating it
	// with size random bytes the first time: the same on every instance
	// sharing the store, and across restarts.
	AppSecret(ctx context.Context, name string, size int, now time.Time) ([]byte, error)

	// BeginBulk starts a fast bulk insert (seeding and benchmarks only).
	BeginBulk(ctx context.Context) (Bulk, error)
	// Dump returns every row of every table as text in a stable order, so
	// a test can prove a refused request changed nothing.
	Dump(ctx context.Context) (string, error)
	// Ping checks the database answers (for /readyz).
	Ping(ctx context.Context) error
	// Close releases the store.
	Close() error
}

// Bulk inserts many users and sessions fast, bypassing the per-user session
// limit and events. It is not used by the server.
type Bulk interface {
	// AddUser inserts a user and returns its id.
	AddUser(ctx context.Context, email, passwordHash string, now time.Time) (int64, error)
	// AddSession inserts a session row and records its sign-in place, as
	// CreateSession would (without its checks, history event or
	// announcement). It may be sent with later ones: its error may come
	// from a later call.
	AddSession(ctx context.Context, s Session) error
	// Commit commits what was added and ends the bulk insert. After an
	// error from any call the bulk insert has ended, and what it had not
	// committed yet is rolled back.
	Commit(ctx context.Context) error
}

// Options are what every implementation's Open takes.
type Options struct {
	// Events is told what each committed write started or ended; nil: no
	// one listens.
	Events EventSink
	// Now is the clock for what the store records on its own (when a
	// migration or a secret was made, and the time of the history event of
	// a method that takes no time: UpdatePassword, UpdateEmail,
	// DisableTwoFactor); nil means time.Now. Every method that decides
	// liveness takes its time from the caller instead.
	Now func() time.Time
	// ReadOnly opens an existing, current Doorman database for reading
	// only: nothing is created, migrated or written (read-only operator
	// commands).
	ReadOnly bool
	// Existing opens an existing, current Doorman database for reading and
	// writing, without creating or migrating anything (operator commands
	// that change data).
	Existing bool
	// AllowSharedFileMode (SQLite) accepts a database file that the group
	// or others may read; by default the store refuses to open one.
	AllowSharedFileMode bool
}

// ReadOnlyStart is implemented by a store that can open a database it
// cannot write (a read-only disk, file or replica) without creating or
// migrating anything, when the schema is current. ReadOnlyCause is why
// the store opened read-only, or nil if it can write: then every write
// fails with an error the store's IsUnavailable recognises (a 503), and
// reads go on. (A database that needs a migration is refused at Open.)
type ReadOnlyStart interface {
	ReadOnlyCause() error
}

// EventKind says what happened to a session.
type EventKind int

// The kinds of Event.
const (
	// SessionStarted: a new session row (a sign-in).
	SessionStarted EventKind = iota + 1
	// SessionEnded: a live session was revoked, or deleted with its user.
	SessionEnded
)

// Event is one change to a user's sessions. A store reports events only
// after the transaction that made them committed, and reports each ended
// session exactly once: the one write that ended it.
type Event struct {
	Kind      EventKind
	UserID    int64
	SessionID string
	// Reason and By are the ended session's revoked_reason and revoked_by.
	Reason, By string
	At         time.Time
}

// EventSink receives a store's events. Notify is called synchronously after
// commit, from the goroutine that wrote: it must not block, and must not
// call back into the store. The store stays the truth; an event is only a
// courtesy to whoever wants to know at once (an open tab, a history, a mail).
type EventSink interface {
	Notify(events []Event)
}

// Watcher is implemented by stores that can see what other processes
// (other instances, operator commands) started and ended. Watch delivers
// those events (SessionStarted and SessionEnded, as the EventSink gets
// them) until ctx ends, and calls resync whenever some may have been missed (at
// the start, and after a lost connection), so the caller rechecks what it
// holds against the store. Events of this process's own writes go to the
// EventSink instead, and are not delivered again.
type Watcher interface {
	Watch(ctx context.Context, deliver func([]Event), resync func()) error
}

// EndedEvents turns ended sessions into SessionEnded events.
func EndedEvents(ended []Session) []Event {
	out := make([]Event, len(ended))
	for i, s := range ended {
		out[i] = Event{Kind: SessionEnded, UserID: s.UserID, SessionID: s.ID, Reason: s.RevokedReason, By: s.RevokedBy, At: s.RevokedAt}
	}
	return out
}
