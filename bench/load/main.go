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
	"bytes"
	"doorman/seed"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
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

	tokensPath := filepath.Join(c.work, "tokens.txt")
	var tokenUsers []string
	for i := c.cookieUsers; i < min(c.users, c.cookieUsers+3000); i++ {
		tokenUsers = append(tokenUsers, seed.Email(i))
	}
	nTokens, err := makeTokens(dbPath, tokensPath, tokenUsers, 5)
	if err != nil {
		// A binary from before the API (a baseline run): no API phase.
		fmt.Printf("no API phase: %v\n", err)
	} else {
		fmt.Printf("%d access tokens for the API phase\n", nTokens)
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
	wrkWarmBearer := func(path, tokens string) func() error {
		return func() error {
			_, err := runWrk(srv.base+path, script, tokens+" bearer", c.conns, c.warm)
			return err
		}
	}
	wrkPhaseBearer := func(path, tokens string) func() (result, error) {
		return func() (result, error) {
			return runWrk(srv.base+path, script, tokens+" bearer", c.conns, c.dur)
		}
	}
	if err := phase("GET /healthz", 0, wrkWarm("/healthz", ""), wrkPhase("/healthz", "")); err != nil {
		return err
	}
	if err := phase("GET /settings/security", len(users), wrkWarm("/settings/security", pageCookies), wrkPhase("/settings/security", pageCookies)); err != nil {
		return err
	}
	if nTokens == 0 {
		// skipped: see above
	} else if err := phase("GET /api/v1/me", 0, wrkWarmBearer("/api/v1/me", tokensPath), wrkPhaseBearer("/api/v1/me", tokensPath)); err != nil {
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
