package main

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// opStats collects the latencies and failures of one kind of request.
type opStats struct {
	mu   sync.Mutex
	lat  []time.Duration
	errs int64
	last string
}

func (o *opStats) add(d time.Duration, err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.lat = append(o.lat, d)
	if err != nil {
		o.errs++
		o.last = err.Error()
	}
}

// mixedLoad drives the mixed workload with its own HTTP client. Each
// operation locks its user, so the load always knows which of a user's
// sessions are live: a page view with a live cookie must get 200, and every
// revoked cookie must be refused at the end.
type mixedLoad struct {
	srv    *server
	users  []*user
	conns  int
	client *http.Client
	ops    map[string]*opStats
}

const csrfToken = "bench-csrf-token-bench-csrf-token-bench-csr" // 43 bytes, like a real one

func newMixed(srv *server, users []*user, conns int) *mixedLoad {
	tr := &http.Transport{MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns, IdleConnTimeout: time.Minute}
	return &mixedLoad{
		srv: srv, users: users, conns: conns,
		client: &http.Client{Transport: tr, Timeout: 10 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
		ops: map[string]*opStats{"page": {}, "revoke-one": {}, "revoke-others": {}, "sign-in": {}},
	}
}

// do sends one request as the browser holding session (empty: none) and
// returns the status, Location and the new session cookie, if any.
func (m *mixedLoad) do(method, path, session string, form url.Values) (int, string, string, error) {
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, _ := http.NewRequest(method, m.srv.base+path, body)
	ck := "doorman_csrf=" + csrfToken
	if session != "" {
		ck += "; doorman_session=" + session
	}
	req.Header.Set("Cookie", ck)
	req.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0")
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Sec-Fetch-Site", "same-origin")
		req.Header.Set("Origin", m.srv.base)
	}
	res, err := m.client.Do(req)
	if err != nil {
		return 0, "", "", err
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	newSession := ""
	for _, c := range res.Cookies() {
		if c.Name == "doorman_session" && c.MaxAge >= 0 {
			newSession = c.Value
		}
	}
	return res.StatusCode, res.Header.Get("Location"), newSession, nil
}

func (m *mixedLoad) run(d time.Duration) result {
	var wg sync.WaitGroup
	var total atomic.Int64
	deadline := time.Now().Add(d)
	start := time.Now()
	for range m.conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				u := m.users[rand.IntN(len(m.users))]
				u.mu.Lock()
				m.one(u)
				u.mu.Unlock()
				total.Add(1)
			}
		}()
	}
	wg.Wait()
	secs := time.Since(start).Seconds()
	var all []time.Duration
	var errs int64
	for _, o := range m.ops {
		all = append(all, o.lat...)
		errs += o.errs
	}
	return result{requests: total.Load(), secs: secs, p50: percentile(all, .5), p99: percentile(all, .99), errors: errs, perOp: m.ops}
}

// one performs one operation of the mix as user u (locked).
func (m *mixedLoad) one(u *user) {
	roll := rand.IntN(100)
	if len(u.live) < 2 && roll >= 90 && roll < 99 {
		roll = 0 // nothing to revoke: a page view instead
	}
	if len(u.live) == 0 {
		roll = 99 // signed out everywhere: sign in
	}
	start := time.Now()
	switch {
	case roll < 90:
		c := u.live[rand.IntN(len(u.live))]
		status, _, _, err := m.do(http.MethodGet, "/settings/security", c.value, nil)
		if err == nil && status != http.StatusOK {
			err = fmt.Errorf("page view: status %d", status)
		}
		m.ops["page"].add(time.Since(start), err)
	case roll < 98:
		i := rand.IntN(len(u.live))
		j := (i + 1 + rand.IntN(len(u.live)-1)) % len(u.live)
		actor, target := u.live[i], u.live[j]
		status, loc, _, err := m.do(http.MethodPost, "/settings/security/sessions/"+target.id+"/revoke", actor.value, url.Values{"csrf": {csrfToken}})
		if err == nil && (status != http.StatusSeeOther || loc != "/settings/security") {
			err = fmt.Errorf("revoke one: status %d to %q", status, loc)
		}
		if err == nil {
			u.revoked = append(u.revoked, target)
			u.live = slices.Delete(u.live, j, j+1)
		}
		m.ops["revoke-one"].add(time.Since(start), err)
	case roll < 99:
		i := rand.IntN(len(u.live))
		actor := u.live[i]
		status, loc, _, err := m.do(http.MethodPost, "/settings/security/sessions/revoke-others", actor.value, url.Values{"csrf": {csrfToken}})
		if err == nil && (status != http.StatusSeeOther || loc != "/settings/security") {
			err = fmt.Errorf("revoke others: status %d to %q", status, loc)
		}
		if err == nil {
			for k, c := range u.live {
				if k != i {
					u.revoked = append(u.revoked, c)
				}
			}
			u.live = []cookie{actor}
		}
		m.ops["revoke-others"].add(time.Since(start), err)
	default:
		value, err := m.signIn(u.email)
		if err == nil {
			id, _, _ := strings.Cut(value, ".")
			u.live = append(u.live, cookie{id, value})
		}
		m.ops["sign-in"].add(time.Since(start), err)
	}
}

func (m *mixedLoad) signIn(email string) (string, error) {
	status, loc, session, err := m.do(http.MethodPost, "/login", "", url.Values{"csrf": {csrfToken}, "email": {email}, "password": {"seed-password"}})
	if err == nil && (status != http.StatusSeeOther || session == "" || loc != "/settings/security") {
		err = fmt.Errorf("sign-in: status %d to %q", status, loc)
	}
	return session, err
}

// checkRevoked asks for the Security page with every cookie the load
// revoked; each must be refused (sent to sign in). It returns how many were
// still accepted, and how many it checked.
func (m *mixedLoad) checkRevoked() (lost, checked int) {
	var mu sync.Mutex
	var wg sync.WaitGroup
	work := make(chan cookie)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := range work {
				status, loc, _, err := m.do(http.MethodGet, "/settings/security", c.value, nil)
				mu.Lock()
				checked++
				if err != nil || status != http.StatusSeeOther || !strings.HasPrefix(loc, "/login") {
					lost++
				}
				mu.Unlock()
			}
		}()
	}
	for _, u := range m.users {
		for _, c := range u.revoked {
			work <- c
		}
	}
	close(work)
	wg.Wait()
	return lost, checked
}

// signinFlood runs page views with wrk while signinWorkers goroutines sign
// in as fast as the server lets them.
func signinFlood(srv *server, users []*user, script, pageCookies string, c config) (result, error) {
	m := newMixed(srv, users, c.signinWorkers)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	var signins atomic.Int64
	st := &opStats{}
	for range c.signinWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				t := time.Now()
				_, err := m.signIn(users[rand.IntN(len(users))].email)
				st.add(time.Since(t), err)
				if err == nil {
					signins.Add(1)
				}
			}
		}()
	}
	// No warm-up: the server is warm, and the counters must cover exactly
	// what is measured.
	t0 := time.Now()
	r, err := runWrk(srv.base+"/settings/security", script, pageCookies, c.conns, c.dur)
	n := signins.Load()
	el := time.Since(t0).Seconds()
	cancel()
	wg.Wait()
	r.signinsPerSecond = float64(n) / el
	r.requests += n // CPU per request counts both
	r.errors += st.errs
	r.perOp = map[string]*opStats{"sign-in": st}
	r.note = fmt.Sprintf("%d concurrent sign-ins: %.1f sign-ins/s (p50 %s, p99 %s)",
		c.signinWorkers, r.signinsPerSecond, percentile(st.lat, .5).Round(time.Millisecond), percentile(st.lat, .99).Round(time.Millisecond))
	return r, err
}
