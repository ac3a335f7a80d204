package main

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

type streamResult struct {
	users, perUser, perSession, requested int
	signIns                               int
	signInTook                            time.Duration
	opened                                int
	openTook                              time.Duration
	refused                               map[int]int // by HTTP status, 0: no answer
	refusedLast                           string
	dropped                               atomic.Int64
	droppedMu                             sync.Mutex
	droppedLast                           string
	pinged                                atomic.Int64 // streams that had at least one heartbeat
	events                                atomic.Int64 // event: lines during the hold (none expected)
	hold                                  time.Duration
	extraStatus                           int // a 5th stream on one session
	fresh, open, end                      mem
	peakRSS                               int64
	gorFresh, gorOpen                     int
	fdFresh, fdOpen                       int
	cpuHold                               time.Duration
	serverErrors                          int
	firstError                            string
	foreignSignIn, foreignHold            float64 // other processes' share of the CPU
}

// idleStreams signs users' sessions in through A and B (the slow part:
// argon2id), then starts a fresh instance D on the same database and opens
// perSession streams for every session on it, holds them, and watches.
func idleStreams(c config, e *env, bin, tmp, dsn string, common []string, a, b *instance) (*streamResult, error) {
	r := &streamResult{users: c.users, perUser: c.perUser, perSession: c.perSession,
		requested: c.users * c.perUser * c.perSession, refused: map[int]int{}}
	// Sign-ins: every user's sign-up first, then its other sessions, with
	// c.workers workers alternating between A and B (each instance hashes
	// one password at a time on 2 cores; two instances use both).
	t0, cpu0 := time.Now(), snapCPU()
	cookies := make([][]string, c.users)
	var mu sync.Mutex
	work := func(jobs []int, signup bool) error {
		ch := make(chan int)
		errc := make(chan error, c.workers)
		var wg sync.WaitGroup
		var done atomic.Int64
		for w := range c.workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				inst := []*instance{a, b}[w%2]
				for u := range ch {
					br, err := signInRetry(inst.base, fmt.Sprintf("stream-%03d@live.test", u), signup)
					if err != nil {
						errc <- err
						for range ch {
						}
						return
					}
					mu.Lock()
					cookies[u] = append(cookies[u], br.cookieHeader())
					mu.Unlock()
					if n := done.Add(1); n%200 == 0 {
						logf("  %d sign-ins, %.1f/s", n, float64(n)/time.Since(t0).Seconds())
					}
				}
			}()
		}
		for _, u := range jobs {
			ch <- u
		}
		close(ch)
		wg.Wait()
		select {
		case err := <-errc:
			return err
		default:
			return nil
		}
	}
	logf("signing in %d users × %d sessions through A and B (%d workers)", c.users, c.perUser, c.workers)
	users := make([]int, c.users)
	for u := range users {
		users[u] = u
	}
	if err := work(users, true); err != nil {
		return nil, err
	}
	var logins []int
	for k := 1; k < c.perUser; k++ {
		logins = append(logins, users...)
	}
	if err := work(logins, false); err != nil {
		return nil, err
	}
	r.signIns = c.users * c.perUser
	r.signInTook = time.Since(t0)
	r.foreignSignIn = foreignShare(cpu0, snapCPU())
	logf("  %d sign-ins in %s (%.1f/s)", r.signIns, r.signInTook.Round(time.Second), float64(r.signIns)/r.signInTook.Seconds())

	// D is to hold every stream at once: its per-account and per-instance
	// stream limits (20 an account; a share of the open-file limit) are
	// lifted to what the run asks for, as the sign-up limit is for all.
	limits := []string{"-max-streams-per-user", strconv.Itoa(c.perUser * c.perSession), "-max-streams", strconv.Itoa(c.users * c.perUser * c.perSession)}
	d, err := startInstance(bin, tmp, "D", append(append([]string{"-db", dsn}, common...), limits...)...)
	if err != nil {
		return nil, err
	}
	defer d.stop()
	e.serverNoFile = noFileLimit(d.pid)
	time.Sleep(2 * time.Second) // let start-up settle before the baseline
	r.fresh, r.gorFresh, r.fdFresh = memStatus(d.pid), goroutines(d), openFDs(d.pid)
	logf("instance D fresh: VmRSS %s, %d goroutines, %d fds; open files %s", mb(r.fresh.rss), r.gorFresh, r.fdFresh, e.serverNoFile)

	// Open every stream, c.openers at a time; each gets its reader at once.
	clearRefs(d.pid)
	type job struct{ u, k int }
	jobs := make(chan job)
	var streamsMu sync.Mutex
	var streams []*stream
	var wg sync.WaitGroup
	t1 := time.Now()
	for range c.openers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				s, status, err := openStream(d.addr, cookies[j.u][j.k])
				if err != nil {
					streamsMu.Lock()
					r.refused[status]++
					r.refusedLast = err.Error()
					streamsMu.Unlock()
					continue
				}
				go r.watch(s)
				streamsMu.Lock()
				streams = append(streams, s)
				if n := len(streams); n%1000 == 0 {
					logf("  %d streams open", n)
				}
				streamsMu.Unlock()
			}
		}()
	}
	for u := range c.users {
		for k := range c.perUser {
			for range c.perSession {
				jobs <- job{u, k}
			}
		}
	}
	close(jobs)
	wg.Wait()
	defer func() {
		for _, s := range streams {
			s.close()
		}
	}()
	r.openTook = time.Since(t1)
	r.opened = len(streams)
	r.open, r.gorOpen, r.fdOpen = memStatus(d.pid), goroutines(d), openFDs(d.pid)
	logf("  %d streams open in %s (%d refused); VmRSS %s, %d goroutines, %d fds",
		r.opened, r.openTook.Round(time.Millisecond), r.requested-r.opened, mb(r.open.rss), r.gorOpen, r.fdOpen)

	// The cap: one more stream on a session that holds perSession already.
	if extra, status, err := openStream(d.addr, cookies[0][0]); err == nil {
		r.extraStatus = 200
		extra.close()
	} else {
		r.extraStatus = status
	}

	// Hold them through at least one heartbeat; sample RSS meanwhile.
	logf("holding %d streams for %s", r.opened, c.hold)
	r.hold = c.hold
	dcpu0, snap0 := cpuTime(d.pid), snapCPU()
	holdEnd := time.Now().Add(c.hold)
	for time.Now().Before(holdEnd) {
		r.peakRSS = max(r.peakRSS, memStatus(d.pid).rss)
		time.Sleep(500 * time.Millisecond)
	}
	r.cpuHold = cpuTime(d.pid) - dcpu0
	r.foreignHold = foreignShare(snap0, snapCPU())
	r.end = memStatus(d.pid)
	r.peakRSS = max(r.peakRSS, r.end.rss)
	logf("  after the hold: %d dropped, %d of %d had a heartbeat; VmRSS %s, VmHWM %s, CPU %s over %s",
		r.dropped.Load(), r.pinged.Load(), r.opened, mb(r.end.rss), mb(r.end.hwm), r.cpuHold, c.hold)
	for _, s := range streams {
		s.close()
	}
	streams = nil
	d.stop()
	r.serverErrors, r.firstError = d.serverErrors()
	return r, nil
}

// watch reads one idle stream until it is closed, counting heartbeats,
// events and unexpected ends.
func (r *streamResult) watch(s *stream) {
	pinged := false
	for {
		line, err := s.lines.ReadString('\n')
		if err != nil {
			if !s.closing.Load() {
				r.dropped.Add(1)
				r.droppedMu.Lock()
				r.droppedLast = err.Error()
				r.droppedMu.Unlock()
			}
			return
		}
		switch {
		case strings.HasPrefix(line, ": ping"):
			if !pinged {
				pinged = true
				r.pinged.Add(1)
			}
		case strings.HasPrefix(line, "event: "):
			r.events.Add(1)
		}
	}
}

func mb(kb int64) string { return fmt.Sprintf("%.1f MB", float64(kb)/1024) }
