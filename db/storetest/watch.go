package storetest

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"doorman/db"
)

// RunWatcher checks db.Watcher on two handles of one database: what b
// starts and ends reaches a's Watch within two seconds, as starts and
// endings, in order; what a starts or ends itself does not come back; a big
// ending arrives whole; and, if cut is given (it breaks a's connection),
// Watch resyncs and goes on.
func RunWatcher(t *testing.T, a, b db.Store, cut func()) {
	w, ok := a.(db.Watcher)
	if !ok {
		t.Fatalf("%T does not implement db.Watcher", a)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	got := make(chan db.Event, 1000)
	var resyncs atomic.Int32
	done := make(chan error, 1)
	go func() {
		done <- w.Watch(ctx, func(es []db.Event) {
			for _, e := range es {
				got <- e
			}
		}, func() { resyncs.Add(1) })
	}()
	waitFor(t, "the first resync", func() bool { return resyncs.Load() >= 1 })

	u, err := b.CreateUser(ctx, "w@example.com", "h", false, T0)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 303 {
		if _, err := b.CreateSession(ctx, Session(fmt.Sprintf("w%03d", i), u.ID, T0), 0, u.Epoch); err != nil {
			t.Fatal(err)
		}
	}
	// What b started reaches a too, in order, as starts: a's open lists of
	// the account refresh on a sign-in through another instance.
	for i := range 303 {
		e := receive(t, got)
		if e.Kind != db.SessionStarted || e.SessionID != fmt.Sprintf("w%03d", i) || e.UserID != u.ID || e.At.Unix() != T0.Unix() || e.Reason != "" || e.By != "" {
			t.Fatalf("watched %+v, want the start of w%03d", e, i)
		}
	}
	if _, err := b.RevokeSession(ctx, u.ID, "w000", db.ReasonOperator, "operator", T0.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	e := receive(t, got)
	if e.Kind != db.SessionEnded || e.SessionID != "w000" || e.UserID != u.ID || e.Reason != db.ReasonOperator || e.By != "operator" {
		t.Fatalf("watched %+v", e)
	}
	// a's own start and ending are the event sink's business, not Watch's.
	if _, err := a.CreateSession(ctx, Session("w303", u.ID, T0), 0, u.Epoch); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"w303", "w001"} {
		if _, err := a.RevokeSession(ctx, u.ID, id, db.ReasonRevoked, "x", T0.Add(time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case e := <-got:
		t.Fatalf("a's own start or ending came back: %+v", e)
	case <-time.After(600 * time.Millisecond):
	}
	// A big ending arrives whole.
	ended, err := b.RevokeOtherSessions(ctx, u.ID, "w002", db.ReasonRevokedOthers, T0.Add(time.Second))
	if err != nil || len(ended) != 300 {
		t.Fatalf("revoke others: %d, %v", len(ended), err)
	}
	seen := map[string]bool{}
	for len(seen) < 300 {
		e := receive(t, got)
		if e.Kind != db.SessionEnded {
			t.Fatalf("watched %+v, want an ending", e)
		}
		seen[e.SessionID] = true
	}
	// A sign-in past the limit: its eviction arrives before its start.
	v, err := b.CreateUser(ctx, "v@example.com", "h", false, T0)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"v0", "v1"} {
		if _, err := b.CreateSession(ctx, Session(id, v.ID, T0), 1, v.Epoch); err != nil {
			t.Fatal(err)
		}
	}
	for _, want := range []db.Event{{Kind: db.SessionStarted, SessionID: "v0"},
		{Kind: db.SessionEnded, SessionID: "v0", Reason: db.ReasonSessionLimit, By: "v1"},
		{Kind: db.SessionStarted, SessionID: "v1"}} {
		if e := receive(t, got); e.Kind != want.Kind || e.SessionID != want.SessionID || e.UserID != v.ID || e.Reason != want.Reason || e.By != want.By {
			t.Fatalf("watched %+v, want %+v", e, want)
		}
	}
	if cut != nil {
		before := resyncs.Load()
		cut()
		waitFor(t, "a resync after the connection was cut", func() bool { return resyncs.Load() > before })
		if _, err := b.RevokeSession(ctx, u.ID, "w002", db.ReasonOperator, "operator", T0.Add(time.Second)); err != nil {
			t.Fatal(err)
		}
		if e := receive(t, got); e.SessionID != "w002" {
			t.Fatalf("after the reconnect, watched %+v", e)
		}
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Watch returned %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Watch did not return after its context ended")
	}
}

func receive(t *testing.T, c <-chan db.Event) db.Event {
	t.Helper()
	select {
	case e := <-c:
		return e
	case <-time.After(2 * time.Second):
		t.Fatal("no event within 2 s")
		return db.Event{}
	}
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
