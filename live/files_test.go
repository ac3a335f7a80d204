package live

import "testing"

// TestStreamsForFileLimit: a quarter of the open-file limit, within its
// floor and ceiling; an unknown or unlimited one is never zero or huge.
func TestStreamsForFileLimit(t *testing.T) {
	for _, c := range []struct {
		nofile uint64
		want   int
	}{
		{0, 256},            // unknown: as for 1024
		{100, 64},           // the floor
		{1024, 256},         // the usual soft default
		{20000, 5000},       // a quarter
		{1 << 20, 16384},    // the ceiling
		{^uint64(0), 16384}, // RLIM_INFINITY
	} {
		if got := streamsFor(c.nofile); got != c.want {
			t.Errorf("streamsFor(%d) = %d, want %d", c.nofile, got, c.want)
		}
	}
	if n := StreamsForFileLimit(); n < minDerivedStreams || n > maxDerivedStreams {
		t.Errorf("this process: %d", n)
	}
	b := New(Limits{PerSession: 4, PerUser: 20}, nil)
	if b.Limits().Total != StreamsForFileLimit() {
		t.Errorf("Total 0 became %d", b.Limits().Total)
	}
}
