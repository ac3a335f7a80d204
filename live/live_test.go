package live

import (
	"context"
	"testing"
	"time"
)

// TestRecheckEndsTheDeadAndRefreshesTheLiving: a recheck (a listener
// reconnected, and a notification may have been missed) ends the streams
// of sessions the store says are gone, and tells every other open stream
// its list may have changed: a sign-in elsewhere whose notice was lost is
// made good, not only an ending.
func TestRecheckEndsTheDeadAndRefreshesTheLiving(t *testing.T) {
	alive := map[string]bool{"live": true, "gone": false}
	b := New(Limits{PerSession: 4, PerUser: 8, Total: 16}, func(_ context.Context, id string) (bool, string, time.Time, error) {
		if alive[id] {
			return true, "", time.Time{}, nil
		}
		return false, "revoked", time.Time{}, nil
	})
	defer b.Close()
	living, err := b.Subscribe(1, "live")
	if err != nil {
		t.Fatal(err)
	}
	dead, err := b.Subscribe(1, "gone")
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-living.Refresh:
		t.Fatal("a refresh before anything happened")
	default:
	}

	if err := b.Recheck(context.Background()); err != nil {
		t.Fatal(err)
	}
	select {
	case <-dead.Ended():
		if dead.Reason() != "revoked" {
			t.Fatalf("ended with %q, want revoked", dead.Reason())
		}
	default:
		t.Fatal("the stream of a session the store says is gone did not end")
	}
	select {
	case <-living.Ended():
		t.Fatal("the stream of a live session ended")
	case <-living.Refresh:
	default:
		t.Fatal("the stream of a live session was not told its list may have changed")
	}
}
