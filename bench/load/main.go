// Command load is Doorman's load test (`make bench`). It seeds a database
// with `doorman seed`, starts the real binary on 127.0.0.1, and in one run
// measures:
//
//   - GET /healthz, the ceiling (wrk);
//   - GET /settings/security signed in, rotating over many users' cookies
//     (wrk);
//   - a mixed workload: 90% page views, 8% revoke-one, 1% revoke-others, 1%
//     sign-ins (this program: it has to know which sessions it revoked, and
//     checks at the end that every one of them is refused);
//   - page views (wrk) while sign-ins (this program) saturate argon2id.
//
// For each phase it reads the server's CPU time from /proc/<pid>/stat, its
// peak memory from /proc/<pid>/status and the SQLite write transactions from
// the -debug-addr counter, then prints one table and writes it, with the
// Go benchmark results, to docs/BENCHMARKS.md.
//
// wrk (C, epoll) drives the two read-only phases because it costs the shared
// 2-core machine far less CPU per request than a Go client, which keeps the
// page ÷ healthz ratio about the server. Traffic goes only to 127.0.0.1.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

type config struct {
	bin, work, out, gobench, geoDir, cmd string
	only                                 string
	users, perUser, cookieUsers, conns   int
	signinWorkers                        int
	dur, warm                            time.Duration
}

func main() {
	var c config
	flag.StringVar(&c.bin, "bin", "bench/out/doorman", "the doorman binary")
	flag.StringVar(&c.work, "work", "bench/out", "working folder (database, cookies, logs)")
	flag.StringVar(&c.out, "out", "docs/BENCHMARKS.md", "where to write the report")
	flag.StringVar(&c.gobench, "gobench", "", "go test -bench output to summarise in the report")
	flag.StringVar(&c.geoDir, "geoip-dir", "data", "GeoIP folder for the server")
	flag.StringVar(&c.cmd, "cmd", "make bench", "the command to print in the report")
	flag.IntVar(&c.users, "users", 100_000, "seeded users")
	flag.IntVar(&c.perUser, "sessions-per-user", 10, "seeded sessions per user")
	flag.IntVar(&c.cookieUsers, "cookie-users", 3000, "users whose cookies the load uses")
	flag.IntVar(&c.conns, "conns", 64, "connections")
	flag.IntVar(&c.signinWorkers, "signin-workers", 16, "concurrent sign-ins in the saturation phase")
	flag.DurationVar(&c.dur, "duration", 20*time.Second, "measured time per phase")
	flag.DurationVar(&c.warm, "warmup", 3*time.Second, "unmeasured time before each phase")
	flag.StringVar(&c.only, "only", "", "run only the phases whose names contain this (for profiling; the report is incomplete)")
	flag.Usage = func() {
		fmt.Fprintln(flag.CommandLine.Output(), "usage: load [flags] [-- server flags]")
		flag.PrintDefaults()
	}
	flag.Parse()
	if err := run(c); err != nil {
		fmt.Fprintln(os.Stderr, "load:", err)
		os.Exit(1)
	}
}

// result is one row of the table.
type result struct {
	name             string
	requests         int64
	secs             float64
	p50, p99         time.Duration
	cpuPerReq        time.Duration
	hwm, anon, file  int64 // kB
	writes           uint64
	errors           int64
	note             string
	active           int // sessions in use, for the writes bound
	perOp            map[string]*opStats
	signinsPerSecond float64
}

func (r result) rps() float64 { return float64(r.requests) / r.secs }

type server struct {
	cmd      *exec.Cmd
	pid      int
	base     string
	debug    string
	log      string
	startDur time.Duration
}

func run(c config) error {
	if err := os.MkdirAll(c.work, 0o755); err != nil {
		return err
	}
	if _, err := exec.LookPath("wrk"); err != nil {
		return errors.New("wrk not found (bench/run.sh installs it with apt)")
	}
	dbPath := filepath.Join(c.work, "load.db")
	for _, suffix := range []string{"", "-wal", "-shm"} {
		os.Remove(dbPath + suffix)
	}
	cookiesPath := filepath.Join(c.work, "cookies.txt")

	// Seed.
	t0 := time.Now()
	seedOut, err := exec.Command(c.bin, "seed", "-db", dbPath, "-users", strconv.Itoa(c.users),
		"-sessions-per-user", strconv.Itoa(c.perUser), "-cookies", cookiesPath,
		"-cookie-users", strconv.Itoa(c.cookieUsers)).CombinedOutput()
	if err != nil {
		return fmt.Errorf("seed: %v: %s", err, seedOut)
	}
	seedDur := time.Since(t0)
	fmt.Printf("%s", seedOut)
	users, err := readCookies(cookiesPath)
	if err != nil {
		return err
	}
	// One session per user for the page phases: many distinct users.
	pageCookies := filepath.Join(c.work, "page-cookies.txt")
	var pc bytes.Buffer
	for _, u := range users {
		fmt.Fprintln(&pc, u.live[0].value)
	}
	if err := os.WriteFile(pageCookies, pc.Bytes(), 0o644); err != nil {
		return err
	}

	srv, err := startServer(c)
	if err != nil {
		return err
	}
	defer srv.cmd.Process.Kill()
	fmt.Printf("server pid %d, first request served %s after start\n", srv.pid, srv.startDur.Round(time.Microsecond))

	var results []result
	script, _ := filepath.Abs("bench/wrk.lua")
	// phase runs warm (unmeasured, so the phase starts in steady state),
	// then measures f alone.
	phase := func(name string, active int, warm func() error, f func() (result, error)) error {
		if c.only != "" && !strings.Contains(name, c.only) {
			return nil
		}
		fmt.Printf("phase %s ...\n", name)
		if warm != nil {
			if err := warm(); err != nil {
				return fmt.Errorf("%s: warm-up: %w", name, err)
			}
		}
		clearRefs(srv.pid)
		cpu0, w0 := cpuTime(srv.pid), writes(srv)
		peak := sampleMem(srv.pid)
		r, err := f()
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		cpu1, w1 := cpuTime(srv.pid), writes(srv)
		r.name, r.active = name, active
		r.cpuPerReq = (cpu1 - cpu0) / time.Duration(max(r.requests, 1))
		r.writes = w1 - w0
		r.hwm, r.anon, r.file = peak()
		fmt.Printf("  %.0f req/s, p50 %s, p99 %s, %s CPU/req, %.1f writes/s, %d errors\n",
			r.rps(), r.p50, r.p99, r.cpuPerReq, float64(r.writes)/r.secs, r.errors)
		results = append(results, r)
		return nil
	}
	wrkWarm := func(path, cookies string) func() error {
		return func() error {
			_, err := runWrk(srv.base+path, script, cookies, c.conns, c.warm)
			return err
		}
	}
	wrkPhase := func(path, cookies string) func() (result, error) {
		return func() (result, error) {
			return runWrk(srv.base+path, script, cookies, c.conns, c.dur)
		}
	}
	if err := phase("GET /healthz", 0, wrkWarm("/healthz", ""), wrkPhase("/healthz", "")); err != nil {
		return err
	}
	if err := phase("GET /settings/security", len(users), wrkWarm("/settings/security", pageCookies), wrkPhase("/settings/security", pageCookies)); err != nil {
		return err
	}
	var mixed *mixedLoad
	if err := phase("mixed 90/8/1/1", 0, nil, func() (result, error) {
		mixed = newMixed(srv, users, c.conns)
		return mixed.run(c.dur), nil
	}); err != nil {
		return err
	}
	// The mixed phase revoked sessions: page views go on with live ones.
	pc.Reset()
	for _, u := range users {
		fmt.Fprintln(&pc, u.live[0].value)
	}
	if err := os.WriteFile(pageCookies, pc.Bytes(), 0o644); err != nil {
		return err
	}
	if err := phase("page views while sign-ins saturate", len(users), nil, func() (result, error) {
		return signinFlood(srv, users, script, pageCookies, c)
	}); err != nil {
		return err
	}

	// Every revoked cookie must be refused now.
	if mixed == nil {
		mixed = newMixed(srv, users, c.conns)
	}
	lost, checked := mixed.checkRevoked()
	fmt.Printf("revoked cookies checked: %d, still accepted: %d\n", checked, lost)

	srv.cmd.Process.Signal(os.Interrupt)
	srv.cmd.Wait()
	logb, _ := os.ReadFile(srv.log)
	busy := bytes.Count(logb, []byte("SQLITE_BUSY")) + bytes.Count(logb, []byte("database is locked"))
	serverErrors := bytes.Count(logb, []byte("level=ERROR"))

	report := buildReport(c, results, srv, seedDur, string(seedOut), lost, checked, busy, serverErrors)
	fmt.Print(report)
	return os.WriteFile(c.out, []byte(report), 0o644)
}

// user is a seeded user with the sessions the load knows of.
type user struct {
	mu      sync.Mutex
	email   string
	live    []cookie
	revoked []cookie
}

type cookie struct{ id, value string }

func readCookies(path string) ([]*user, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []*user
	byEmail := map[string]*user{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) != 3 {
			continue
		}
		u := byEmail[fs[0]]
		if u == nil {
			u = &user{email: fs[0]}
			byEmail[fs[0]] = u
			out = append(out, u)
		}
		u.live = append(u.live, cookie{fs[1], fs[2]})
	}
	if len(out) == 0 {
		return nil, errors.New("no cookies seeded")
	}
	return out, sc.Err()
}

func freePort() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// startServer starts the binary and polls /healthz until it answers, to
// measure start to first served request.
func startServer(c config) (*server, error) {
	addr, debug := freePort(), freePort()
	logPath := filepath.Join(c.work, "server.log")
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	// The load's revocations carry no password: the sudo window is
	// stretched so every session can end sessions as one just signed in can
	// (re-authentication costs an argon2 hash and is measured by sign-ins).
	// Flags after "--" still override it.
	cmd := exec.Command(c.bin, append([]string{"-addr", addr, "-db", filepath.Join(c.work, "load.db"),
		"-geoip-dir", c.geoDir, "-debug-addr", debug, "-sudo-window", "2160h"}, flag.Args()...)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	client := &http.Client{Timeout: time.Second}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &server{cmd: cmd, pid: cmd.Process.Pid, base: "http://" + addr, debug: "http://" + debug, log: logPath}
	for time.Since(start) < 10*time.Second {
		res, err := client.Get(s.base + "/healthz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				s.startDur = time.Since(start)
				return s, nil
			}
		}
		time.Sleep(500 * time.Microsecond)
	}
	cmd.Process.Kill()
	return nil, errors.New("server did not answer /healthz within 10 s (see " + logPath + ")")
}

// cpuTime is the process's user+system CPU time (/proc/<pid>/stat fields 14
// and 15, in clock ticks of 10 ms).
func cpuTime(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The command name (field 2) may hold spaces: split after its ")".
	fs := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
	ut, _ := strconv.ParseInt(fs[11], 10, 64)
	st, _ := strconv.ParseInt(fs[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond
}

// memStatus reads VmHWM, RssAnon and RssFile (kB) from /proc/<pid>/status.
func memStatus(pid int) (hwm, anon, file int64) {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, line := range strings.Split(string(b), "\n") {
		k, v, _ := strings.Cut(line, ":")
		n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		switch k {
		case "VmHWM":
			hwm = n
		case "RssAnon":
			anon = n
		case "RssFile":
			file = n
		}
	}
	return
}

// clearRefs resets the peak RSS (VmHWM) so each phase reports its own.
func clearRefs(pid int) {
	os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0)
}

// sampleMem samples RssAnon and RssFile every 100 ms until the returned func
// is called, which reports VmHWM and the largest samples.
func sampleMem(pid int) func() (int64, int64, int64) {
	var anon, file atomic.Int64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			_, a, f := memStatus(pid)
			if a > anon.Load() {
				anon.Store(a)
			}
			if f > file.Load() {
				file.Store(f)
			}
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}()
	return func() (int64, int64, int64) {
		close(stop)
		<-done
		hwm, _, _ := memStatus(pid)
		return hwm, anon.Load(), file.Load()
	}
}

func writes(s *server) uint64 {
	res, err := http.Get(s.debug + "/debug/doorman")
	if err != nil {
		return 0
	}
	defer res.Body.Close()
	var v struct {
		N uint64 `json:"sqlite_write_transactions"`
	}
	json.NewDecoder(res.Body).Decode(&v)
	return v.N
}

// runWrk runs wrk with two threads and parses the JSON line bench/wrk.lua
// prints.
func runWrk(target, script, cookies string, conns int, d time.Duration) (result, error) {
	args := []string{"-t2", "-c" + strconv.Itoa(conns), "-d" + strconv.Itoa(int(d/time.Second)) + "s", "--timeout", "5s", "-s", script, target}
	if cookies != "" {
		args = append(args, "--", cookies)
	}
	out, err := exec.Command("wrk", args...).CombinedOutput()
	if err != nil {
		return result{}, fmt.Errorf("wrk: %v: %s", err, out)
	}
	_, js, ok := strings.Cut(string(out), "WRKJSON ")
	if !ok {
		return result{}, fmt.Errorf("wrk printed no result: %s", out)
	}
	var v struct {
		Requests, DurationUS, P50US, P99US, MaxUS, Non200, Errors int64
	}
	dec := json.NewDecoder(strings.NewReader(js))
	if err := dec.Decode(&struct {
		Requests   *int64 `json:"requests"`
		DurationUS *int64 `json:"duration_us"`
		P50US      *int64 `json:"p50_us"`
		P99US      *int64 `json:"p99_us"`
		MaxUS      *int64 `json:"max_us"`
		Non200     *int64 `json:"non200"`
		Errors     *int64 `json:"errors"`
	}{&v.Requests, &v.DurationUS, &v.P50US, &v.P99US, &v.MaxUS, &v.Non200, &v.Errors}); err != nil {
		return result{}, fmt.Errorf("wrk result %q: %w", js, err)
	}
	return result{
		requests: v.Requests, secs: float64(v.DurationUS) / 1e6,
		p50: time.Duration(v.P50US) * time.Microsecond, p99: time.Duration(v.P99US) * time.Microsecond,
		errors: v.Non200 + v.Errors,
	}, nil
}

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

func percentile(l []time.Duration, p float64) time.Duration {
	if len(l) == 0 {
		return 0
	}
	s := slices.Clone(l)
	slices.Sort(s)
	return s[min(len(s)-1, int(float64(len(s))*p))]
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
	var started time.Time
	var startOnce sync.Once
	for range c.signinWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			startOnce.Do(func() { started = time.Now() })
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
	_ = started
	r.signinsPerSecond = float64(n) / el
	r.requests += n // CPU per request counts both
	r.errors += st.errs
	r.perOp = map[string]*opStats{"sign-in": st}
	r.note = fmt.Sprintf("%d concurrent sign-ins: %.1f sign-ins/s (p50 %s, p99 %s)",
		c.signinWorkers, r.signinsPerSecond, percentile(st.lat, .5).Round(time.Millisecond), percentile(st.lat, .99).Round(time.Millisecond))
	return r, err
}

// cpuModel is the CPU model from /proc/cpuinfo.
func cpuModel() string {
	b, _ := os.ReadFile("/proc/cpuinfo")
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/1e6) }

func buildReport(c config, rs []result, srv *server, seedDur time.Duration, seedOut string, lost, checked, busy, serverErrors int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Benchmarks\n\n")
	fmt.Fprintf(&b, "Measured %s on %d cores (`nproc`), CPU: %s, %s/%s, %s.\n\n",
		time.Now().UTC().Format("2006-01-02 15:04 MST"), runtime.NumCPU(), cpuModel(), runtime.GOOS, runtime.GOARCH, runtime.Version())
	fmt.Fprintf(&b, "Command: `%s` (`bash bench/run.sh`: Go benchmarks, then `go run ./bench/load`). Absolute numbers drift on a shared machine; the ratios are the headline.\n\n", c.cmd)
	fmt.Fprintf(&b, "## Load test: the real binary on 127.0.0.1\n\n")
	fmt.Fprintf(&b, "Database: %d users × %d sessions = %d sessions, seeded by `doorman seed` in %s. Each phase: %s warm-up, then %s measured, %d connections. The load generator (wrk, and the Go driver in bench/load) runs on the same 2 cores as the server.\n\n",
		c.users, c.perUser, c.users*c.perUser, seedDur.Round(100*time.Millisecond), c.warm, c.dur, c.conns)
	fmt.Fprintf(&b, "| Phase | req/s | p50 | p99 | server CPU / req | peak RSS (VmHWM) | RssAnon | RssFile | SQLite writes/s | errors |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range rs {
		fmt.Fprintf(&b, "| %s | %.0f | %s | %s | %d µs | %.1f MB | %.1f MB | %.1f MB | %.1f | %d |\n",
			r.name, r.rps(), ms(r.p50), ms(r.p99), r.cpuPerReq.Microseconds(),
			float64(r.hwm)/1024, float64(r.anon)/1024, float64(r.file)/1024, float64(r.writes)/r.secs, r.errors)
	}
	var health, page result
	for _, r := range rs {
		switch r.name {
		case "GET /healthz":
			health = r
		case "GET /settings/security":
			page = r
		}
	}
	fmt.Fprintf(&b, "\n**Security page ÷ healthz throughput: %.0f%%** (target ≥ 30%%).\n\n", 100*page.rps()/health.rps())
	fmt.Fprintf(&b, "- Start to first served request: %s (exec to the first 200 from /healthz, 1M-session database).\n", ms(srv.startDur))
	fmt.Fprintf(&b, "- Page views: %d distinct users' sessions in use; SQLite write transactions %.1f/s, bound active ÷ 60 = %.1f/s.\n",
		page.active, float64(page.writes)/page.secs, float64(page.active)/60)
	for _, r := range rs {
		if r.perOp == nil {
			continue
		}
		fmt.Fprintf(&b, "- %s:", r.name)
		for _, name := range []string{"page", "revoke-one", "revoke-others", "sign-in"} {
			if o := r.perOp[name]; o != nil && len(o.lat) > 0 {
				fmt.Fprintf(&b, " %s %d (p50 %s, p99 %s, %d errors);", name, len(o.lat), ms(percentile(o.lat, .5)), ms(percentile(o.lat, .99)), o.errs)
				if o.last != "" {
					fmt.Fprintf(&b, " last error: %s;", o.last)
				}
			}
		}
		if r.note != "" {
			fmt.Fprintf(&b, " %s.", r.note)
		}
		b.WriteString("\n")
	}
	fmt.Fprintf(&b, "- Revoked cookies checked after the run: %d; still accepted: **%d**. SQLITE_BUSY / \"database is locked\" in the server log: **%d**; error lines: %d.\n", checked, lost, busy, serverErrors)
	fmt.Fprintf(&b, "- Memory: VmHWM is the phase's peak resident set (reset per phase through /proc/PID/clear_refs); RssAnon is the Go heap, stacks and SQLite's page caches; RssFile is file-backed pages touched, mostly the memory-mapped GeoIP files (134 MB on disk, only the pages looked up become resident) and the binary. The ≤ 64 MB check below uses VmHWM whole, file-backed pages included.\n")
	fmt.Fprintf(&b, "- CPU per request is (utime + stime) of the server from /proc/PID/stat over the phase ÷ requests (10 ms ticks).\n")
	var goTable string
	meds := map[string]float64{}
	if c.gobench != "" {
		if gb, err := os.ReadFile(c.gobench); err == nil {
			goTable, meds = summariseGoBench(string(gb))
		}
	}

	// The targets, checked against this run.
	b.WriteString("\n## Targets, checked against this run\n\n| Target | Measured | Met |\n|---|---|---|\n")
	check := func(target, measured string, ok bool) {
		mark := "yes"
		if !ok {
			mark = "**no**"
		}
		fmt.Fprintf(&b, "| %s | %s | %s |\n", target, measured, mark)
	}
	var mixed, flood result
	for _, r := range rs {
		switch {
		case strings.HasPrefix(r.name, "mixed"):
			mixed = r
		case strings.HasPrefix(r.name, "page views while"):
			flood = r
		}
	}
	ratio := page.rps() / health.rps()
	check("Security page ≥ 30% of /healthz throughput", fmt.Sprintf("%.0f%% (%.0f vs %.0f req/s)", 100*ratio, page.rps(), health.rps()), ratio >= .30)
	check("Security page p99 ≤ 25 ms at 64 connections", ms(page.p99), page.p99 <= 25*time.Millisecond)
	check("Server CPU ≤ 100 µs per page request", fmt.Sprintf("%d µs (healthz: %d µs)", page.cpuPerReq.Microseconds(), health.cpuPerReq.Microseconds()), page.cpuPerReq <= 100*time.Microsecond)
	if k1, k1m := meds["SessionCheck/sessions=1k/request"], meds["SessionCheck/sessions=1M/request"]; k1 > 0 {
		s1, s1m := meds["SessionCheck/sessions=1k/store"], meds["SessionCheck/sessions=1M/store"]
		check("Session check ≤ 20 µs median", fmt.Sprintf("store query + secret check %.1f µs (1M); whole middleware chain %.1f µs (1M)", s1m/1e3, k1m/1e3), s1m <= 20e3)
		check("Session check flat: 1M ≤ 1.5 × 1k", fmt.Sprintf("%.2f× (chain), %.2f× (store)", k1m/k1, s1m/s1), k1m <= 1.5*k1 && s1m <= 1.5*s1)
	}
	wps := float64(page.writes) / page.secs
	check("Page views: write transactions/s ≤ active sessions ÷ 60", fmt.Sprintf("%.1f/s for %d sessions (bound %.1f/s)", wps, page.active, float64(page.active)/60), wps <= float64(page.active)/60*1.05)
	if v := meds["RevokeOtherSessions/sessions=10000"]; v > 0 {
		check("Revoke all others, 10,000 sessions ≤ 50 ms", ms(time.Duration(v)), v <= 50e6)
	}
	if v := meds["SecurityPage/sessions=100"]; v > 0 {
		check("Security page with 100 sessions ≤ 2 ms", ms(time.Duration(v)), v <= 2e6)
	}
	check("Mixed load: 0 errors, 0 SQLITE_BUSY, 0 lost revocations", fmt.Sprintf("%d errors, %d BUSY, %d of %d revoked cookies accepted", mixed.errors, busy, lost, checked), mixed.errors == 0 && busy == 0 && lost == 0 && checked > 0)
	for _, r := range rs {
		check("RSS ≤ 64 MB: "+r.name, fmt.Sprintf("VmHWM %.1f MB (RssAnon %.1f + RssFile %.1f)", float64(r.hwm)/1024, float64(r.anon)/1024, float64(r.file)/1024), r.hwm <= 64*1024)
	}
	check("Start to first served request ≤ 150 ms", ms(srv.startDur), srv.startDur <= 150*time.Millisecond)
	check("Sign-ins saturating: page views within their targets", fmt.Sprintf("%.1f sign-ins/s; pages %.0f req/s, p99 %s", flood.signinsPerSecond, flood.rps(), ms(flood.p99)), flood.p99 <= 25*time.Millisecond && flood.rps() >= .3*health.rps())

	if goTable != "" {
		b.WriteString("\n## Go benchmarks (median of the -count runs)\n\n")
		b.WriteString(goTable)
	}
	// Notes written by hand (why a target is not met, how things are
	// counted) live in bench/NOTES.md and are appended as they are.
	if notes, err := os.ReadFile("bench/NOTES.md"); err == nil {
		b.WriteString("\n")
		b.Write(notes)
	}
	return b.String()
}

// summariseGoBench turns `go test -bench -benchmem -count N` output into a
// table of medians.
func summariseGoBench(out string) (string, map[string]float64) {
	type row struct{ ns, bytes, allocs []float64 }
	rows := map[string]*row{}
	var order []string
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		name := f[0]
		if i := strings.LastIndexByte(name, '-'); i > 0 {
			name = name[:i]
		}
		r := rows[name]
		if r == nil {
			r = &row{}
			rows[name] = r
			order = append(order, name)
		}
		for k := 2; k+1 < len(f); k += 2 {
			v, _ := strconv.ParseFloat(f[k], 64)
			switch f[k+1] {
			case "ns/op":
				r.ns = append(r.ns, v)
			case "B/op":
				r.bytes = append(r.bytes, v)
			case "allocs/op":
				r.allocs = append(r.allocs, v)
			}
		}
	}
	med := func(v []float64) float64 {
		if len(v) == 0 {
			return 0
		}
		s := slices.Clone(v)
		slices.Sort(s)
		return s[len(s)/2]
	}
	var b strings.Builder
	meds := map[string]float64{}
	b.WriteString("| Benchmark | time/op | B/op | allocs/op | runs |\n|---|---:|---:|---:|---:|\n")
	for _, name := range order {
		r := rows[name]
		ns := med(r.ns)
		meds[strings.TrimPrefix(name, "Benchmark")] = ns
		t := fmt.Sprintf("%.0f ns", ns)
		switch {
		case ns >= 1e6:
			t = fmt.Sprintf("%.2f ms", ns/1e6)
		case ns >= 1e4:
			t = fmt.Sprintf("%.1f µs", ns/1e3)
		}
		fmt.Fprintf(&b, "| %s | %s | %.0f | %.0f | %d |\n", strings.TrimPrefix(name, "Benchmark"), t, med(r.bytes), med(r.allocs), len(r.ns))
	}
	return b.String(), meds
}
