package rp

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"time"
)

// EventKind names what an Event records.
type EventKind string

// The kinds of Event.
const (
	// EventSignedIn: a sign-in through the provider completed.
	EventSignedIn EventKind = "signed_in"
	// EventSignInFailed: a callback was refused (Reason says why).
	EventSignInFailed EventKind = "sign_in_failed"
	// EventSignedOut: the person signed out of the RP (RP-initiated logout).
	EventSignedOut EventKind = "signed_out"
	// EventLogoutVerified: a logout token was verified; Ended sessions ended.
	EventLogoutVerified EventKind = "logout_verified"
	// EventLogoutRefused: a logout token was refused (Reason says why); nothing ended.
	EventLogoutRefused EventKind = "logout_refused"
	// EventRefreshed: the refresh grant succeeded.
	EventRefreshed EventKind = "refreshed"
	// EventRefreshFailed: the refresh grant failed; Reason is the OAuth error
	// code (such as invalid_grant) when the provider gave one.
	EventRefreshFailed EventKind = "refresh_failed"
)

// maxEvents bounds the log: an example app must not grow without end.
const maxEvents = 1000

// Event is one thing the RP received or did. It never holds a token.
type Event struct {
	Time time.Time `json:"time"`
	Kind EventKind `json:"kind"`
	// Sub and SID name the person and the provider session concerned, when known.
	Sub string `json:"sub,omitempty"`
	SID string `json:"sid,omitempty"`
	// JTI is a logout token's id.
	JTI string `json:"jti,omitempty"`
	// Ended is how many RP sessions a verified logout ended.
	Ended int `json:"ended"`
	// Reason says why something was refused or failed.
	Reason string `json:"reason,omitempty"`
}

// eventLog keeps the last maxEvents events and wakes waiters on each new one.
type eventLog struct {
	mu      sync.Mutex
	now     func() time.Time
	events  []Event
	total   int           // events ever added; events[0] is number total-len(events)
	changed chan struct{} // closed and replaced on every add
}

func newEventLog(now func() time.Time) *eventLog {
	return &eventLog{now: now, changed: make(chan struct{})}
}

func (l *eventLog) add(e Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e.Time = l.now()
	l.events = append(l.events, e)
	l.total++
	if len(l.events) > maxEvents {
		l.events = append([]Event(nil), l.events[len(l.events)-maxEvents:]...)
	}
	close(l.changed)
	l.changed = make(chan struct{})
}

// snapshot returns the kept events, how many were ever added, and a channel
// closed on the next add.
func (l *eventLog) snapshot() ([]Event, int, <-chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Event(nil), l.events...), l.total, l.changed
}

// Events returns what the RP received and did so far, oldest first.
func (r *RP) Events() []Event {
	events, _, _ := r.events.snapshot()
	return events
}

// WaitEvent returns the first event, past or future, for which match is true.
// It waits until one arrives or ctx is done, so a test can wait for "a logout
// token for sid X was received and verified" without sleeping.
func (r *RP) WaitEvent(ctx context.Context, match func(Event) bool) (Event, error) {
	seen := 0 // events ever added that were already matched against
	for {
		events, total, changed := r.events.snapshot()
		// Counting by total, not by index, so that events the log dropped
		// meanwhile never make it skip a new one.
		first := total - len(events)
		for i := max(seen-first, 0); i < len(events); i++ {
			if match(events[i]) {
				return events[i], nil
			}
		}
		seen = total
		select {
		case <-changed:
		case <-ctx.Done():
			return Event{}, ctx.Err()
		}
	}
}

// Sessions returns copies of the RP's live sessions, tokens included. It is
// for tests in the same process (say, to try a refresh token after the
// provider ended its session); it is never served over HTTP.
func (r *RP) Sessions() []Session {
	return r.sessions.list()
}

// eventsJSON serves the event log (no tokens in it) for scripts and curious people.
func (r *RP) eventsJSON(w http.ResponseWriter, req *http.Request) {
	events := r.Events()
	if events == nil {
		events = []Event{}
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(events)
}
