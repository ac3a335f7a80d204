// Package live pushes session changes to the browser tabs that have a
// stream open (GET /settings/security/events): "you were signed out" to the
// tab whose session ended, "the list changed" to the account's other tabs.
//
// It is only a courtesy. The store stays the truth: a revoked session is
// refused on its next request whether or not a push arrived, and a lost
// push is made good by a recheck of every open stream's session (after a
// listener reconnects, and at each heartbeat).
package live

import (
	"context"
	"errors"
	"sync"
	"time"

	"doorman/db"
)

// ErrTooManyStreams is returned by Subscribe when the session already has
// Limits.PerSession streams open: a storm of tabs must not exhaust the server.
var ErrTooManyStreams = errors.New("live: too many streams for this session")

// ErrTooManyForUser is returned by Subscribe when the account already has
// Limits.PerUser streams open across all its sessions: without it, one
// account signed in many times holds as many streams as it has sessions
// times PerSession (an outside review saw 1,200 idle streams from three
// accounts slow every page tenfold).
var ErrTooManyForUser = errors.New("live: too many streams for this account")

// ErrFull is returned by Subscribe when the instance already holds
// Limits.Total streams: each holds a connection (a file descriptor) and a
// goroutine, and pages must still get their file descriptors.
var ErrFull = errors.New("live: too many streams on this instance")

// ErrClosed is returned by Subscribe after Close (the server is stopping).
var ErrClosed = errors.New("live: broker closed")

// ReasonExpired is the Reason of a stream whose session expired (idle or
// absolute) rather than being revoked.
const ReasonExpired = "expired"

// Checker reads whether a session is alive: the store's read, so a recheck
// decides exactly as a request would.
type Checker func(ctx context.Context, sessionID string) (alive bool, reason string, expiresAt time.Time, err error)

// Broker fans session events out to open streams. It implements
// db.EventSink, so the store can call it after each commit; a process
// watching other processes' writes (db.Watcher) feeds it too. Safe for
// concurrent use.
type Broker struct {
	limits Limits
	check  Checker

	mu        sync.Mutex
	closed    bool
	open      int // streams subscribed and not closed
	bySession map[string]map[*Stream]struct{}
	byUser    map[int64]map[*Stream]struct{}
}

// Limits bound the streams a broker holds open, all on this instance (a
// process): every stream is a connection, a file descriptor and a
// goroutine here, whatever other instances hold.
type Limits struct {
	// PerSession is the most streams one browser session may hold (its
	// tabs).
	PerSession int
	// PerUser is the most streams one account may hold across all its
	// sessions.
	PerUser int
	// Total is the most streams the instance holds; 0: StreamsForFileLimit().
	Total int
}

// New returns a broker holding at most limits' streams, which rechecks
// sessions with check.
func New(limits Limits, check Checker) *Broker {
	if limits.Total <= 0 {
		limits.Total = StreamsForFileLimit()
	}
	return &Broker{limits: limits, check: check,
		bySession: map[string]map[*Stream]struct{}{}, byUser: map[int64]map[*Stream]struct{}{}}
}

// Limits are the broker's limits (Total resolved).
func (b *Broker) Limits() Limits { return b.limits }

// Stream is one open event stream: one browser tab.
type Stream struct {
	b         *Broker
	userID    int64
	sessionID string
	// Refresh receives a value when the account's list of sessions
	// changed. Changes that find one waiting are merged into it: a refresh
	// is idempotent.
	Refresh   chan struct{}
	ended     chan struct{}
	endReason string
	once      sync.Once
	stop      chan struct{}
	stopOnce  sync.Once
	closeOnce sync.Once
}

// Subscribe opens a stream for the session.
func (b *Broker) Subscribe(userID int64, sessionID string) (*Stream, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, ErrClosed
	}
	// Checked and counted under the one lock: concurrent opens cannot
	// overshoot a limit. The narrowest limit is reported first, so a tab
	// over its own session's or account's share is told so (429) even when
	// the instance is full too (503).
	switch {
	case len(b.bySession[sessionID]) >= b.limits.PerSession:
		return nil, ErrTooManyStreams
	case len(b.byUser[userID]) >= b.limits.PerUser:
		return nil, ErrTooManyForUser
	case b.open >= b.limits.Total:
		return nil, ErrFull
	}
	s := &Stream{b: b, userID: userID, sessionID: sessionID, Refresh: make(chan struct{}, 1), ended: make(chan struct{}), stop: make(chan struct{})}
	add(b.bySession, sessionID, s)
	add(b.byUser, userID, s)
	b.open++
	return s, nil
}

func add[K comparable](m map[K]map[*Stream]struct{}, k K, s *Stream) {
	if m[k] == nil {
		m[k] = map[*Stream]struct{}{}
	}
	m[k][s] = struct{}{}
}

func remove[K comparable](m map[K]map[*Stream]struct{}, k K, s *Stream) {
	delete(m[k], s)
	if len(m[k]) == 0 {
		delete(m, k)
	}
}

// Close unsubscribes the stream (the tab went away), freeing its place
// under every limit. Closing twice frees it once.
func (s *Stream) Close() {
	s.closeOnce.Do(func() {
		s.b.mu.Lock()
		remove(s.b.bySession, s.sessionID, s)
		remove(s.b.byUser, s.userID, s)
		s.b.open--
		s.b.mu.Unlock()
	})
}

// Ended is closed when the stream's session has ended; Reason then says why.
func (s *Stream) Ended() <-chan struct{} { return s.ended }

// Reason is why the session ended (after Ended is closed).
func (s *Stream) Reason() string { return s.endReason }

// Stopped is closed when the broker closes (the server is shutting down).
func (s *Stream) Stopped() <-chan struct{} { return s.stop }

// SessionID is the stream's session.
func (s *Stream) SessionID() string { return s.sessionID }

func (s *Stream) end(reason string) {
	s.once.Do(func() {
		s.endReason = reason
		close(s.ended)
	})
}

func (s *Stream) refresh() {
	select {
	case s.Refresh <- struct{}{}:
	default: // one refresh is already waiting: it covers this one
	}
}

// Notify delivers a store's events: an ended session's streams end, and
// the other streams of its user are told the list changed; a new session
// tells the user's streams the list changed.
func (b *Broker) Notify(events []db.Event) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, e := range events {
		if e.Kind == db.SessionEnded {
			for s := range b.bySession[e.SessionID] {
				s.end(e.Reason)
			}
		}
		for s := range b.byUser[e.UserID] {
			if s.sessionID != e.SessionID {
				s.refresh()
			}
		}
	}
}

// Recheck reads every open stream's session from the store and ends the
// streams of sessions that are no longer alive, and tells the streams that
// stay open their list may have changed: run when a listener (re)connects,
// since a notification may have been missed meanwhile (an ending, or a
// sign-in elsewhere). It returns the first read error.
func (b *Broker) Recheck(ctx context.Context) error {
	b.mu.Lock()
	ids := make([]string, 0, len(b.bySession))
	for id := range b.bySession {
		ids = append(ids, id)
	}
	b.mu.Unlock()
	var first error
	for _, id := range ids {
		alive, reason, _, err := b.check(ctx, id)
		if err != nil {
			if first == nil {
				first = err
			}
			continue
		}
		if !alive {
			b.EndSession(id, reason)
			continue
		}
		b.mu.Lock()
		for s := range b.bySession[id] {
			s.refresh()
		}
		b.mu.Unlock()
	}
	return first
}

// CheckOne rechecks one session now, ending its streams if it is no longer
// alive; it returns when the session expires if it is.
func (b *Broker) CheckOne(ctx context.Context, sessionID string) (expiresAt time.Time, err error) {
	alive, reason, exp, err := b.check(ctx, sessionID)
	if err != nil {
		return time.Time{}, err
	}
	if !alive {
		b.EndSession(sessionID, reason)
	}
	return exp, nil
}

// EndSession ends the streams of one session, with reason.
func (b *Broker) EndSession(sessionID, reason string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for s := range b.bySession[sessionID] {
		s.end(reason)
	}
}

// Open is how many streams are open.
func (b *Broker) Open() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.open
}

// Close stops every stream (graceful shutdown) and refuses new ones.
func (b *Broker) Close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	for _, m := range b.bySession {
		for s := range m {
			s.stopOnce.Do(func() { close(s.stop) })
		}
	}
}

// Store is what StoreChecker reads of the store (db.Store has it): the
// same read as the one behind every request.
type Store interface {
	SessionWithUser(ctx context.Context, id string) (db.Session, db.User, error)
}

// StoreChecker is the Checker of a store: alive exactly as the request path
// decides it (the row is alive at now, and its user is not disabled).
func StoreChecker(store Store, now func() time.Time) Checker {
	return func(ctx context.Context, sessionID string) (bool, string, time.Time, error) {
		ctx, cancel := context.WithTimeout(ctx, db.CallTimeout)
		defer cancel()
		s, u, err := store.SessionWithUser(ctx, sessionID)
		if errors.Is(err, db.ErrNotFound) {
			return false, db.ReasonDeleted, time.Time{}, nil
		}
		if err != nil {
			return false, "", time.Time{}, err
		}
		switch {
		case s.Revoked():
			return false, s.RevokedReason, time.Time{}, nil
		case u.Disabled():
			return false, db.ReasonDisabled, time.Time{}, nil
		case !s.Alive(now()):
			return false, ReasonExpired, time.Time{}, nil
		}
		return true, "", s.ExpiresAt(), nil
	}
}

// Fanout is an EventSink that tells several sinks.
type Fanout []db.EventSink

// Notify tells each sink.
func (f Fanout) Notify(events []db.Event) {
	for _, s := range f {
		if s != nil {
			s.Notify(events)
		}
	}
}
