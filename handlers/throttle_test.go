package handlers

import (
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestIPLimiterEvictsOldestFirst: at the cap, the address hit least recently
// is forgotten, one at a time; the others keep their counts.
func TestIPLimiterEvictsOldestFirst(t *testing.T) {
	l := newIPLimiter(2, time.Hour)
	l.max = 3
	t0 := time.Unix(1_700_000_000, 0)
	for i, ip := range []string{"a", "b", "c"} {
		l.add(ip, t0.Add(time.Duration(i)*time.Second))
	}
	l.add("a", t0.Add(10*time.Second)) // a is now the most recent; b the oldest
	if l.retryAfter("a", t0.Add(11*time.Second)) == 0 {
		t.Fatal("a has two failures but may try")
	}
	l.add("d", t0.Add(12*time.Second)) // evicts b only
	if got := l.tracked(); got != 3 {
		t.Fatalf("tracking %d addresses, want 3", got)
	}
	if _, ok := l.hits["b"]; ok {
		t.Fatal("b (the least recently hit) was kept")
	}
	for _, ip := range []string{"a", "c", "d"} {
		if _, ok := l.hits[ip]; !ok {
			t.Fatalf("%s was forgotten", ip)
		}
	}
	if l.retryAfter("a", t0.Add(13*time.Second)) == 0 {
		t.Fatal("a lost its count when another address was evicted")
	}
	// A flood of new addresses never clears everyone at once.
	for i := range 100 {
		l.add("flood"+strconv.Itoa(i), t0.Add(20*time.Second))
		if l.tracked() > 3 {
			t.Fatal("over the cap")
		}
	}
}

func TestIPKey(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.9":            "192.0.2.9",
		"::ffff:192.0.2.9":     "192.0.2.9",
		"::ffff:c000:209":      "192.0.2.9",
		"2001:db8:1:2::1":      "2001:db8:1:2::/64",
		"2001:db8:1:2:ffff::9": "2001:db8:1:2::/64",
		"2001:db8:1:3::1":      "2001:db8:1:3::/64",
	} {
		if got := ipKey(netip.MustParseAddr(in)); got != want {
			t.Errorf("ipKey(%s) = %s, want %s", in, got, want)
		}
	}
}

// TestIPLimiterTakeIsAtomic (second review, finding 5): goroutines taking
// from one address at once get exactly the limit, never more; a right
// attempt given back makes room for exactly one more.
func TestIPLimiterTakeIsAtomic(t *testing.T) {
	const limit, callers = 50, 400
	l := newIPLimiter(limit, time.Hour)
	now := time.Unix(1_700_000_000, 0)
	// Several rounds, one address each: a check and a count made apart
	// let more through in some round.
	for round := range 20 {
		key := "192.0.2." + strconv.Itoa(round)
		var passed atomic.Int64
		var wg sync.WaitGroup
		start := make(chan struct{})
		for range callers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				if l.take(key, now) == 0 {
					passed.Add(1)
				}
			}()
		}
		close(start)
		wg.Wait()
		if got := passed.Load(); got != limit {
			t.Fatalf("round %d: %d concurrent takes passed, want exactly %d", round, got, limit)
		}
	}
	l.giveBack("192.0.2.1", now)
	if l.take("192.0.2.1", now) != 0 {
		t.Fatal("no room after a give-back")
	}
	if l.take("192.0.2.1", now) == 0 {
		t.Fatal("a give-back made room for two")
	}
}
