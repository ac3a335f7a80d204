package main

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// revResult is one series of revocation rounds.
type revResult struct {
	name      string
	rounds    int
	delivered int
	push      []time.Duration // revoke sent → "event: signed-out" read
	post      []time.Duration // the revoke POST's round trip
	signIn    []time.Duration // the round's sign-in (setup, not measured)
	failures  []string        // first few rounds whose push did not come
	missed    int
	pushFirst int     // rounds whose push arrived before the revoke's response
	foreign   float64 // share of the machine's CPU other processes used meanwhile
}

type revResults struct {
	cross, same revResult
	took        time.Duration
}

const revokeEmail = "revoke@live.test"

// revocation creates the user on A, signs a revoker in on B and runs the
// rounds across instances; then, for comparison, with a revoker on A.
func revocation(c config, a, b *instance) (*revResults, error) {
	start := time.Now()
	if _, err := signInRetry(a.base, revokeEmail, true); err != nil {
		return nil, err
	}
	// One revoker each, reused for every round: signed in just now, so
	// inside the 10-minute window where ending a session needs no password.
	revB, err := signInRetry(b.base, revokeEmail, false)
	if err != nil {
		return nil, err
	}
	out := &revResults{}
	out.cross, err = revRounds("across instances: stream on A, revoke sent to B", c.rounds, a, revB)
	if err != nil {
		return nil, err
	}
	revB.do(http.MethodPost, "/logout", url.Values{})
	if c.sameRounds > 0 {
		revA, err := signInRetry(a.base, revokeEmail, false)
		if err != nil {
			return nil, err
		}
		out.same, err = revRounds("one instance: stream on A, revoke sent to A", c.sameRounds, a, revA)
		if err != nil {
			return nil, err
		}
		revA.do(http.MethodPost, "/logout", url.Values{})
	}
	out.took = time.Since(start)
	return out, nil
}

// revRounds: each round signs a fresh browser in on holder, opens its event
// stream there, has revoker end that session, and times the push. At most
// three sessions of the user are alive at any time (the first, the revoker,
// the round's), far under the cap of 100.
func revRounds(name string, n int, holder *instance, revoker *browser) (revResult, error) {
	r := revResult{name: name, rounds: n}
	logf("revocation, %s: %d rounds", name, n)
	cpu0 := snapCPU()
	defer func() { r.foreign = foreignShare(cpu0, snapCPU()) }()
	for i := range n {
		if i > 0 && i%50 == 0 {
			logf("  round %d/%d: p50 %s, max %s so far", i, n, ms(percentile(r.push, .5)), ms(slices.Max(append([]time.Duration{0}, r.push...))))
		}
		t := time.Now()
		s, err := signInRetry(holder.base, revokeEmail, false)
		if err != nil {
			return r, fmt.Errorf("round %d: %w", i, err)
		}
		r.signIn = append(r.signIn, time.Since(t))
		st, _, err := openStream(holder.addr, s.cookieHeader())
		if err != nil {
			return r, fmt.Errorf("round %d: open stream: %w", i, err)
		}
		got := make(chan time.Time, 1)
		go func() {
			defer close(got)
			for {
				line, err := st.lines.ReadString('\n')
				if err != nil {
					return
				}
				if strings.TrimRight(line, "\r\n") == "event: signed-out" {
					got <- time.Now()
					return
				}
			}
		}()
		t0 := time.Now()
		status, err := revoker.do(http.MethodPost, "/settings/security/sessions/"+s.sessionID()+"/revoke", url.Values{})
		post := time.Since(t0)
		if err != nil || status != http.StatusSeeOther {
			st.close()
			return r, fmt.Errorf("round %d: revoke: status %d, %v", i, status, err)
		}
		r.post = append(r.post, post)
		timeout := time.NewTimer(5 * time.Second)
		select {
		case at, ok := <-got:
			if ok {
				r.push = append(r.push, at.Sub(t0))
				if at.Sub(t0) <= post {
					r.pushFirst++
				}
				r.delivered++
			} else {
				r.fail(i, "the stream ended without \"event: signed-out\"")
			}
		case <-timeout.C:
			r.fail(i, "no \"event: signed-out\" within 5 s")
		}
		timeout.Stop()
		st.close()
		// Follow the 303 as a browser would: the page shows (and so
		// consumes) the "Signed out …" flash, which would otherwise pile up
		// in the revoker's flash cookie round after round.
		if status, err := revoker.do(http.MethodGet, "/settings/security", nil); err != nil || status != http.StatusOK {
			return r, fmt.Errorf("round %d: the revoker's Security page: status %d, %v", i, status, err)
		}
	}
	logf("  %d/%d delivered: p50 %s, p90 %s, p99 %s, max %s", r.delivered, n,
		ms(percentile(r.push, .5)), ms(percentile(r.push, .9)), ms(percentile(r.push, .99)), ms(r.max()))
	return r, nil
}

func (r *revResult) fail(round int, why string) {
	r.missed++
	if len(r.failures) < 5 {
		r.failures = append(r.failures, fmt.Sprintf("round %d: %s", round, why))
	}
}

func (r *revResult) max() time.Duration {
	if len(r.push) == 0 {
		return 0
	}
	return slices.Max(r.push)
}

func percentile(l []time.Duration, p float64) time.Duration {
	if len(l) == 0 {
		return 0
	}
	s := slices.Clone(l)
	slices.Sort(s)
	return s[min(len(s)-1, int(float64(len(s))*p))]
}

func mean(l []time.Duration) time.Duration {
	if len(l) == 0 {
		return 0
	}
	var t time.Duration
	for _, d := range l {
		t += d
	}
	return t / time.Duration(len(l))
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/1e6) }
