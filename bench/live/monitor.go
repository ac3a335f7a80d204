package main

import (
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"time"
)

// otherTests lists the other `go test` / `make test` processes running now.
// Two pgreps at once would see each other: one at a time, and any pgrep
// left in the list is dropped.
func otherTests() []string {
	pgrepMu.Lock()
	out, _ := exec.Command("pgrep", "-af", "go test|make test").Output()
	pgrepMu.Unlock()
	var l []string
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		line = strings.TrimSpace(line)
		if _, cmd, _ := strings.Cut(line, " "); line == "" || strings.HasPrefix(cmd, "pgrep ") {
			continue
		}
		l = append(l, line)
	}
	return l
}

var pgrepMu sync.Mutex

// testMonitor notes, every 2 s, which other test processes run during
// which phase.
type testMonitor struct {
	mu    sync.Mutex
	phase string
	seen  map[string][]string // phase → commands, in the order first seen
	order []string            // phases with sightings
	done  chan struct{}
	wg    sync.WaitGroup
}

func startMonitor() *testMonitor {
	m := &testMonitor{phase: "setup", seen: map[string][]string{}, done: make(chan struct{})}
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		t := time.NewTicker(2 * time.Second)
		defer t.Stop()
		for {
			m.look()
			select {
			case <-m.done:
				return
			case <-t.C:
			}
		}
	}()
	return m
}

func (m *testMonitor) setPhase(name string) {
	m.mu.Lock()
	m.phase = name
	m.mu.Unlock()
	m.look()
}

func (m *testMonitor) look() {
	busy := otherTests()
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, cmd := range busy {
		if slices.Contains(m.seen[m.phase], cmd) {
			continue
		}
		if len(m.seen[m.phase]) == 0 {
			m.order = append(m.order, m.phase)
		}
		m.seen[m.phase] = append(m.seen[m.phase], cmd)
		logf("warning: a test process is running during %q, its numbers may be skewed: %s", m.phase, cmd)
	}
}

func (m *testMonitor) stop() {
	select {
	case <-m.done:
	default:
		close(m.done)
	}
	m.wg.Wait()
}

// sightings is one line per phase that saw other tests.
func (m *testMonitor) sightings() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var l []string
	for _, ph := range m.order {
		l = append(l, fmt.Sprintf("%s: `%s`", ph, strings.Join(m.seen[ph], "`, `")))
	}
	return l
}

// waitForTests waits, at most limit, until otherTests is empty: someone
// else's test suite on these 2 cores would skew every number.
func waitForTests(limit time.Duration) (time.Duration, []string) {
	start := time.Now()
	var said time.Time
	for {
		busy := otherTests()
		if len(busy) == 0 {
			if time.Since(start) > time.Second {
				logf("no other tests running after %s: measuring", time.Since(start).Round(time.Second))
			}
			return time.Since(start), nil
		}
		if time.Since(start) >= limit {
			logf("still running after %s, measuring anyway: %s", limit, strings.Join(busy, "; "))
			return time.Since(start), busy
		}
		if time.Since(said) >= 30*time.Second {
			logf("waiting for other tests to finish (%s so far, at most %s): %s",
				time.Since(start).Round(time.Second), limit, strings.Join(busy, "; "))
			said = time.Now()
		}
		time.Sleep(5 * time.Second)
	}
}
