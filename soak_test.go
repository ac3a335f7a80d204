package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"doorman/db/postgres/pgtest"
)

// soakSample is the server process as the soak saw it at one moment.
type soakSample struct {
	at                             time.Duration
	rssKB, fds, goroutines, stream int
	requests                       int64
}

// sampleChild reads the child's RSS and open descriptors from /proc and
// its goroutines and open streams from its debug listener.
func sampleChild(t *testing.T, pid int, debug string) soakSample {
	t.Helper()
	var s soakSample
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			s.rssKB, _ = strconv.Atoi(strings.Fields(v)[0])
		}
	}
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	s.fds = len(fds)
	res, err := http.Get(debug + "/debug/doorman")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var counters struct {
		OpenStreams int `json:"open_streams"`
		Goroutines  int `json:"goroutines"`
	}
	if err := json.NewDecoder(res.Body).Decode(&counters); err != nil {
		t.Fatal(err)
	}
	s.goroutines, s.stream = counters.Goroutines, counters.OpenStreams
	return s
}

// soakDuration is 15 s in make test, DOORMAN_SOAK in make drills (10m).
func soakDuration(t *testing.T) time.Duration {
	if v := os.Getenv("DOORMAN_SOAK"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("DOORMAN_SOAK=%q: %v", v, err)
		}
		return d
	}
	return 15 * time.Second
}

// openStream opens the browser's event stream; the returned channel gets
// the name of the event that ended it ("" when the connection just
// closed) and is closed after. A refused stream returns its status and no
// channel.
func (b *drillBrowser) openStream(stop <-chan struct{}) (<-chan string, int, error) {
	req, _ := http.NewRequest(http.MethodGet, b.base+"/settings/security/events", nil)
	req.Header.Set("Accept", "text/event-stream")
	res, err := (&http.Client{Jar: b.jar}).Do(req)
	if err != nil {
		return nil, 0, err
	}
	if res.StatusCode != http.StatusOK {
		res.Body.Close()
		return nil, res.StatusCode, nil
	}
	ended := make(chan string, 1)
	go func() {
		<-stop
		res.Body.Close()
	}()
	go func() {
		defer close(ended)
		defer res.Body.Close()
		sc := bufio.NewScanner(res.Body)
		for sc.Scan() {
			if ev, ok := strings.CutPrefix(sc.Text(), "event: "); ok && ev == "signed-out" {
				ended <- ev
				return
			}
		}
		ended <- ""
	}()
	return ended, http.StatusOK, nil
}

// soak runs the real program on dsn under mixed load for d: browsers
// holding live streams whose sessions other devices end (each then signs
// in again and reopens), page views, sign-ins and sign-outs. It samples
// the process throughout and checks that, once the load stops and the
// streams close, the server is back where it was idle: no goroutine, file
// descriptor or stream left behind, and memory flat.
func soak(t *testing.T, dsn string, d time.Duration) []soakSample {
	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	debugAddr := ln.Addr().String()
	ln.Close()
	// Up to 13 fresh browsers sign in to one account at once from one
	// address: each attempt is counted while its password is being checked
	// (a burst gets no more checks than the limit), so the limits are
	// raised out of the way of a test that measures leaks.
	child := startChild(t, dir, dsn, "-debug-addr", debugAddr, "-login-failures-per-account", "1000")
	defer child.kill()
	debug := "http://" + debugAddr
	for up := time.Now().Add(clientTimeout); ; time.Sleep(20 * time.Millisecond) {
		res, err := http.Get(debug + "/debug/doorman")
		if err == nil {
			res.Body.Close()
			break
		}
		if time.Now().After(up) {
			t.Fatalf("the debug listener never answered: %v", err)
		}
	}
	pid := child.cmd.Process.Pid
	const email, password = "soak@example.com", "soak password 1"
	if !newDrillBrowser(child.base).post("/signup", url.Values{"email": {email}, "password": {password}}, "/settings/security") {
		t.Fatal("sign-up failed")
	}
	idle := sampleChild(t, pid, debug)

	var requests, failures, busy atomic.Int64
	fail := func(format string, args ...any) {
		if failures.Add(1) <= 5 {
			t.Errorf(format, args...)
		}
	}
	// A 503 is the server saying it is too busy right now (on a slow
	// machine a sign-in can wait past its deadline for a hashing slot):
	// the right answer under overload, and not what the soak is about
	// (leaks). It is counted and reported; any other unexpected answer
	// fails the soak.
	answered := func(what string, code int, err error, want int) bool {
		switch {
		case err == nil && code == want:
			return true
		case err == nil && code == http.StatusServiceUnavailable:
			busy.Add(1)
		default:
			fail("%s: %d %v", what, code, err)
		}
		return false
	}
	signIn := func() *drillBrowser {
		b := newDrillBrowser(child.base)
		requests.Add(2)
		code, where, err := b.send("/login", url.Values{"email": {email}, "password": {password}})
		if err == nil && code == http.StatusSeeOther && where != "/settings/security" {
			fail("sign-in went to %q", where)
			return nil
		}
		if !answered("sign-in", code, err, http.StatusSeeOther) {
			return nil
		}
		return b
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	holders := map[string]bool{} // session ids of browsers holding a stream
	var streamsEnded atomic.Int64
	for range 8 { // hold a stream; when its session is ended, sign in again
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				b := signIn()
				if b == nil {
					time.Sleep(100 * time.Millisecond)
					continue
				}
				id, _, _ := strings.Cut(b.cookie("doorman_session"), ".")
				ended, code, err := b.openStream(stop)
				if !answered("open stream", code, err, http.StatusOK) {
					continue
				}
				requests.Add(1)
				mu.Lock()
				holders[id] = true
				mu.Unlock()
				ev := <-ended
				mu.Lock()
				delete(holders, id)
				mu.Unlock()
				if ev == "signed-out" {
					streamsEnded.Add(1)
				}
			}
		}()
	}
	for range 4 { // page views
		wg.Add(1)
		go func() {
			defer wg.Done()
			var b *drillBrowser
			for b == nil { // again if the server was too busy
				select {
				case <-stop:
					return
				default:
				}
				if b = signIn(); b == nil {
					time.Sleep(100 * time.Millisecond)
				}
			}
			for {
				select {
				case <-stop:
					return
				case <-time.After(2 * time.Millisecond):
				}
				for _, p := range []string{"/settings/security", "/settings", "/settings/security"} {
					requests.Add(1)
					code, err := b.view(p)
					answered("GET "+p, code, err, http.StatusOK)
				}
			}
		}()
	}
	wg.Add(1)
	go func() { // another device ends one streaming session, then signs out
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(500 * time.Millisecond):
			}
			mu.Lock()
			var victim string
			for id := range holders {
				victim = id
				break
			}
			mu.Unlock()
			b := signIn()
			if b == nil || victim == "" {
				continue
			}
			requests.Add(2)
			code, _, err := b.send("/settings/security/sessions/"+victim+"/revoke", url.Values{})
			answered("revoke", code, err, http.StatusSeeOther)
			code, _, err = b.send("/logout", url.Values{})
			answered("sign-out", code, err, http.StatusSeeOther)
		}
	}()

	// The load runs for d, and on past it (up to two minutes more) until
	// at least one live stream has been ended by another device: the
	// verdict needs that much to stand on (a floor), and a busy machine
	// takes longer to get there.
	every := max(d/20, time.Second)
	var samples []soakSample
	began := time.Now()
	for time.Since(began) < d || (streamsEnded.Load() == 0 && time.Since(began) < d+2*time.Minute) {
		time.Sleep(every)
		s := sampleChild(t, pid, debug)
		s.at, s.requests = time.Since(began).Round(time.Second), requests.Load()
		samples = append(samples, s)
	}
	close(stop)
	wg.Wait()

	// Idle again: every client stream closed, nothing in flight. Waited
	// for (up to clientTimeout: a busy machine winds down slower), not
	// sampled once: a leak never gets there, however long the wait.
	// The clients have gone: their idle keep-alive connections (every
	// drill browser shares the default transport) close too, so the
	// server's count of descriptors and goroutines is its own.
	http.DefaultTransport.(*http.Transport).CloseIdleConnections()
	var after soakSample
	for settle := time.Now().Add(clientTimeout); ; {
		time.Sleep(100 * time.Millisecond)
		after = sampleChild(t, pid, debug)
		if (after.stream == 0 && after.goroutines <= idle.goroutines+8 && after.fds <= idle.fds+8) || time.Now().After(settle) {
			break
		}
	}
	after.at, after.requests = time.Since(began).Round(time.Second), requests.Load()

	t.Logf("soak of %v on %s: %d requests, %d streams ended live by another device, %d answered 503 (too busy), %d failures",
		time.Since(began).Round(time.Second), storeName(dsn), requests.Load(), streamsEnded.Load(), busy.Load(), failures.Load())
	t.Logf("%8s %10s %8s %6s %11s %8s", "at", "requests", "RSS MB", "fds", "goroutines", "streams")
	row := func(label string, s soakSample) {
		t.Logf("%8s %10d %8.1f %6d %11d %8d", label, s.requests, float64(s.rssKB)/1024, s.fds, s.goroutines, s.stream)
	}
	row("idle", idle)
	for _, s := range samples {
		row(s.at.String(), s)
	}
	row("after", after)
	if report := os.Getenv("DOORMAN_SOAK_REPORT"); report != "" {
		writeSoakReport(t, report, dsn, d, idle, samples, after, requests.Load(), streamsEnded.Load())
	}

	if streamsEnded.Load() == 0 || len(samples) < 2 {
		t.Fatalf("the soak did too little: %d streams ended, %d samples", streamsEnded.Load(), len(samples))
	}
	if after.stream != 0 {
		t.Errorf("%d streams still open after every client closed its own", after.stream)
	}
	if after.goroutines > idle.goroutines+8 {
		t.Errorf("goroutines: %d idle before, %d idle after: a leak", idle.goroutines, after.goroutines)
	}
	if after.fds > idle.fds+8 {
		t.Errorf("file descriptors: %d idle before, %d idle after: a leak", idle.fds, after.fds)
	}
	// What the verdict tolerates, and why. Goroutines and descriptors: 8
	// more than before the load, once idle again (a connection or timer
	// the runtime has not yet closed); a leak grows with the load (this
	// one opens hundreds of streams and sign-ins), far past 8. Memory: a
	// trend, not a size: the second half of the run may not keep growing
	// past the first half (allowing 25%). Compared by the floor (the smallest
	// sample) of each half: a leak lifts the floor, while single samples,
	// and even the median, swing with how many sign-ins were hashing when
	// they were taken (each hash's 19 MiB is collected right after, so the
	// resident set rises and falls with each one: see
	// password.CollectAfterHash).
	var first, second []int
	for i, s := range samples {
		if i < len(samples)/2 {
			first = append(first, s.rssKB)
		} else {
			second = append(second, s.rssKB)
		}
	}
	// The first half's floor is taken no lower than the idle size before
	// the load: the runtime may hand memory back right after a hash and dip
	// below idle for one sample (seen under a busy machine: 40.6 MB idle,
	// one 32.7 MB sample, then a steady 43-48 MB), which made a flat run
	// look like growth.
	if m1, m2 := max(slices.Min(first), idle.rssKB), slices.Min(second); m2 > m1*5/4 {
		t.Errorf("RSS kept growing: at least %d KB in the first half (or idle), %d KB in the second", m1, m2)
	}
	return samples
}

func storeName(dsn string) string {
	if strings.HasPrefix(dsn, "postgres") {
		return "PostgreSQL"
	}
	return "SQLite"
}

// writeSoakReport appends the run as a Markdown table to path.
func writeSoakReport(t *testing.T, path, dsn string, d time.Duration, idle soakSample, samples []soakSample, after soakSample, requests, ended int64) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fmt.Fprintf(f, "\n### Soak: %v on %s\n\n%d requests; %d live streams ended by another device (and reopened).\n\n", d, storeName(dsn), requests, ended)
	fmt.Fprintf(f, "| at | requests | RSS MB | fds | goroutines | open streams |\n|---|---:|---:|---:|---:|---:|\n")
	line := func(label string, s soakSample) {
		fmt.Fprintf(f, "| %s | %d | %.1f | %d | %d | %d |\n", label, s.requests, float64(s.rssKB)/1024, s.fds, s.goroutines, s.stream)
	}
	line("idle, before", idle)
	for _, s := range samples {
		line(s.at.String(), s)
	}
	line("idle, after", after)
}

// TestSoak is the soak drill on SQLite.
func TestSoak(t *testing.T) {
	soak(t, filepath.Join(t.TempDir(), "soak.db"), soakDuration(t))
}

// TestSoakPostgres is the soak drill on PostgreSQL.
func TestSoakPostgres(t *testing.T) {
	soak(t, pgtest.NewDatabase(t), soakDuration(t))
}
