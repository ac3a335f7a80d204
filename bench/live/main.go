// Command live measures Doorman's live pushes and event streams on this
// machine and writes docs/BENCHMARKS-LIVE.md:
//
//  1. revocation push across instances: two instances A and B on one
//     PostgreSQL; a session signed in on A holds its event stream on A, a
//     session on B revokes it, and the time from just before the revoke is
//     sent to the "event: signed-out" line on A's stream is recorded per
//     round (LISTEN/NOTIFY between the instances). The same with the revoke
//     sent to A itself, for comparison;
//     then the same as a person sees it: a tab in Chromium on A, its
//     session ended through B, timed until it shows the live notice;
//  2. idle streams: thousands of sessions are signed in through A and B,
//     then a fresh instance D on the same database holds 4 streams for each
//     of them through at least one heartbeat; its RSS before and with them,
//     and any stream refused or dropped;
//  3. the Security page with wrk on PostgreSQL (A) and on a fresh SQLite
//     file, /healthz on the same instances for the ratio, and A and B under
//     load at once.
//
// It starts everything it measures (a throwaway PostgreSQL through
// scripts/pgtest.sh, the binary built into a temp folder, the instances, wrk)
// and stops all of it on exit, on error and on SIGINT/SIGTERM. All traffic
// goes to 127.0.0.1. Run it from the module root:
//
//	go run ./bench/live -out docs/BENCHMARKS-LIVE.md
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

type config struct {
	out, cmd, geoDir           string
	rounds, sameRounds         int
	noticeRounds               int
	users, perUser, perSession int
	workers, openers, conns    int
	hold, wrkDur, wrkWarm      time.Duration
	waitTests                  time.Duration
	keep                       bool
}

func main() {
	var c config
	flag.StringVar(&c.out, "out", "docs/BENCHMARKS-LIVE.md", "where to write the report")
	flag.StringVar(&c.cmd, "cmd", "", "the command to print in the report (default: this command line)")
	flag.StringVar(&c.geoDir, "geoip-dir", "data", "GeoIP folder for the instances")
	flag.IntVar(&c.rounds, "rounds", 300, "revocation rounds across instances (revoke on B, stream on A)")
	flag.IntVar(&c.sameRounds, "same-rounds", 50, "revocation rounds on one instance, for comparison (0: skip)")
	flag.IntVar(&c.noticeRounds, "notice-rounds", 30, "rounds of the live notice in Chromium (tab on A, revoke sent to B; 0: skip)")
	flag.IntVar(&c.users, "stream-users", 52, "users in the idle-streams test")
	flag.IntVar(&c.perUser, "stream-sessions", 25, "sessions per user in the idle-streams test (≤ 100, the default cap)")
	flag.IntVar(&c.perSession, "streams-per-session", 4, "streams per session (the server allows 4)")
	flag.IntVar(&c.workers, "signin-workers", 4, "concurrent sign-ins (spread over A and B)")
	flag.IntVar(&c.openers, "stream-openers", 8, "concurrent stream opens")
	flag.IntVar(&c.conns, "conns", 64, "wrk connections")
	flag.DurationVar(&c.hold, "hold", 25*time.Second, "how long the idle streams are held open (more than one 20 s heartbeat)")
	flag.DurationVar(&c.wrkDur, "duration", 10*time.Second, "measured time per wrk run")
	flag.DurationVar(&c.wrkWarm, "warmup", 2*time.Second, "unmeasured wrk time before each run")
	flag.DurationVar(&c.waitTests, "wait-tests", 10*time.Minute, "wait at most this long for other `go test`/`make test` processes to end")
	flag.BoolVar(&c.keep, "keep", false, "keep the temp folder (instance logs) instead of removing it")
	flag.Parse()
	if c.cmd == "" {
		c.cmd = strings.TrimSpace("go run ./bench/live " + strings.Join(os.Args[1:], " "))
	}

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		s := <-sigs
		logf("%v: stopping everything this run started", s)
		runCleanups()
		os.Exit(130)
	}()
	err := run(c)
	runCleanups()
	if err != nil {
		fmt.Fprintln(os.Stderr, "live:", err)
		os.Exit(1)
	}
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "live: "+format+"\n", args...)
}

// Cleanups run once, last registered first, whether the run ends normally,
// with an error or on a signal; a second caller waits for the first.
var (
	cleanupMu   sync.Mutex
	cleanupFns  []func()
	cleanupOnce sync.Once
)

func atExit(f func()) {
	cleanupMu.Lock()
	defer cleanupMu.Unlock()
	cleanupFns = append(cleanupFns, f)
}

func runCleanups() {
	cleanupOnce.Do(func() {
		killChildren()
		cleanupMu.Lock()
		fns := cleanupFns
		cleanupFns = nil
		cleanupMu.Unlock()
		for i := len(fns) - 1; i >= 0; i-- {
			fns[i]()
		}
	})
}

// env is what the report says about the run itself.
type env struct {
	started       time.Time
	waited        time.Duration
	waitedFor     []string // test processes still running when the wait gave up
	monitor       *testMonitor
	pgVersion     string
	noFileBefore  syscall.Rlimit
	noFileAfter   syscall.Rlimit
	serverNoFile  string
	instanceFlags string
}

func run(c config) error {
	if _, err := os.Stat("go.mod"); err != nil {
		return errors.New("run it from the module root (go.mod not found)")
	}
	if c.perSession < 1 || c.perUser < 1 || c.users < 1 || c.rounds < 1 {
		return errors.New("-rounds, -stream-users, -stream-sessions and -streams-per-session must be at least 1")
	}
	e := &env{started: time.Now()}
	if err := ensureWrk(); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "doorman-live-")
	if err != nil {
		return err
	}
	atExit(func() {
		if c.keep {
			logf("kept %s (instance logs)", tmp)
			return
		}
		os.RemoveAll(tmp)
	})
	bin := filepath.Join(tmp, "doorman")
	logf("building the binary into %s", bin)
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		return fmt.Errorf("go build: %v\n%s", err, out)
	}

	// The streams need an fd each in this process and in the server; the
	// server (started below, from this process) inherits the limit.
	need := uint64(c.users*c.perUser*c.perSession + 1024)
	e.noFileBefore, e.noFileAfter, err = raiseNoFile(need)
	if err != nil {
		return err
	}
	logf("open files: soft %d / hard %d before, %d / %d now (need ~%d)",
		e.noFileBefore.Cur, e.noFileBefore.Max, e.noFileAfter.Cur, e.noFileAfter.Max, need)
	if e.noFileAfter.Cur < need {
		return fmt.Errorf("open-file limit %d is below the %d the streams need", e.noFileAfter.Cur, need)
	}

	e.waited, e.waitedFor = waitForTests(c.waitTests)

	pgDir := fmt.Sprintf("/tmp/doorman-live-pg-%d", os.Getpid())
	keepLog := ""
	if c.keep {
		keepLog = filepath.Join(tmp, "postgres.log")
	}
	dsn, err := startPostgres(pgDir, keepLog)
	if err != nil {
		return err
	}
	e.pgVersion = postgresVersion()

	geo, _ := filepath.Abs(c.geoDir)
	// Every sign-up of the run comes from 127.0.0.1: the per-address limit
	// on sign-ups (50 a window) is lifted so the stream test's users can be
	// created. Nothing here sends X-Forwarded-*, so -trusted-proxy changes
	// nothing but matches the documented deployment.
	common := []string{"-geoip-dir", geo, "-trusted-proxy", "127.0.0.1", "-login-failures-per-ip", "100000"}
	e.instanceFlags = strings.Join(common, " ")
	a, err := startInstance(bin, tmp, "A", append([]string{"-db", dsn}, common...)...)
	if err != nil {
		return err
	}
	b, err := startInstance(bin, tmp, "B", append([]string{"-db", dsn}, common...)...)
	if err != nil {
		return err
	}

	// From here on, other test processes are looked for every 2 s and
	// noted against the phase that was running.
	e.monitor = startMonitor()
	phase := func(name string) {
		logf("== %s", name)
		e.monitor.setPhase(name)
	}

	phase("1. revocation push")
	rev, err := revocation(c, a, b)
	if err != nil {
		return fmt.Errorf("revocation: %w", err)
	}

	phase("1b. live notice in a browser")
	notice, err := liveNotice(c, a, b)
	if err != nil {
		return fmt.Errorf("live notice: %w", err)
	}

	phase("2. idle streams")
	st, err := idleStreams(c, e, bin, tmp, dsn, common, a, b)
	if err != nil {
		return fmt.Errorf("idle streams: %w", err)
	}

	phase("3. Security page")
	pg, err := pages(c, bin, tmp, common, a, b)
	if err != nil {
		return fmt.Errorf("security page: %w", err)
	}

	e.monitor.stop()
	report := buildReport(c, e, rev, notice, st, pg, a, b)
	if err := os.WriteFile(c.out, []byte(report), 0o644); err != nil {
		return err
	}
	fmt.Print(report)
	logf("wrote %s in %s", c.out, time.Since(e.started).Round(time.Second))
	return nil
}

// raiseNoFile sets this process's open-file soft limit to its hard limit
// (and the hard limit to need, if it is lower and we may). Go already raises
// the soft limit for itself at start, but gives children the original one
// back unless the program calls Setrlimit, as here: the instances inherit
// this limit. (They are Go programs too, so they would raise their own soft
// limit to the hard one anyway.)
func raiseNoFile(need uint64) (before, after syscall.Rlimit, err error) {
	if err = syscall.Getrlimit(syscall.RLIMIT_NOFILE, &before); err != nil {
		return
	}
	lim := before
	if lim.Max < need {
		lim.Max = need
	}
	lim.Cur = lim.Max
	if err = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil && lim.Max != before.Max {
		lim.Max, lim.Cur = before.Max, before.Max // not root: keep the hard limit
		err = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
	}
	if err != nil {
		return before, before, fmt.Errorf("setrlimit: %w", err)
	}
	err = syscall.Getrlimit(syscall.RLIMIT_NOFILE, &after)
	return
}
