package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// wrkResult is one wrk run.
type wrkResult struct {
	name, store, path string
	threads, conns    int
	requests          int64
	secs              float64
	p50, p99, max     time.Duration
	errors            int64 // non-200 answers + socket errors
	cpuPerReq         time.Duration
	foreign           float64 // other processes' share of the CPU meanwhile
}

func (w wrkResult) rps() float64 {
	if w.secs == 0 {
		return 0
	}
	return float64(w.requests) / w.secs
}

type pageResults struct {
	sessions                           int
	pgPage, pgHealth, sqPage, sqHealth wrkResult
	bothA, bothB                       wrkResult
	sqliteErrors                       int
	sqliteFirst                        string
}

const pageEmail = "page@live.test"

// pages measures GET /settings/security and /healthz with wrk on A
// (PostgreSQL) and on a fresh instance S on a new SQLite file, then A and B
// at once.
func pages(c config, bin, tmp string, common []string, a, b *instance) (*pageResults, error) {
	r := &pageResults{sessions: 10}
	script, err := filepath.Abs("bench/wrk.lua")
	if err != nil {
		return nil, err
	}
	pgCookies, err := tenSessions(a, filepath.Join(tmp, "cookies-pg.txt"), r.sessions)
	if err != nil {
		return nil, err
	}
	s, err := startInstance(bin, tmp, "S", append([]string{"-db", filepath.Join(tmp, "live.db")}, common...)...)
	if err != nil {
		return nil, err
	}
	defer s.stop()
	sqCookies, err := tenSessions(s, filepath.Join(tmp, "cookies-sqlite.txt"), r.sessions)
	if err != nil {
		return nil, err
	}
	// runs runs the given wrk runs at once: their warm-ups together, then
	// the measured runs together, between two CPU snapshots.
	type run struct {
		name, store string
		in          *instance
		path, cks   string
		threads     int
		conns       int
	}
	runs := func(rs ...run) ([]wrkResult, error) {
		out := make([]wrkResult, len(rs))
		errs := make([]error, len(rs))
		together := func(d time.Duration) {
			var wg sync.WaitGroup
			for i, x := range rs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					out[i], errs[i] = runWrk(x.in.base+x.path, script, x.cks, x.threads, x.conns, d)
				}()
			}
			wg.Wait()
		}
		for _, x := range rs {
			logf("wrk %s: %s%s, -t%d -c%d, %s warm-up + %s", x.name, x.in.base, x.path, x.threads, x.conns, c.wrkWarm, c.wrkDur)
		}
		together(c.wrkWarm)
		for _, err := range errs {
			if err != nil {
				return nil, err
			}
		}
		cpu0 := make([]time.Duration, len(rs))
		for i, x := range rs {
			cpu0[i] = cpuTime(x.in.pid)
		}
		snap0 := snapCPU()
		together(c.wrkDur)
		foreign := foreignShare(snap0, snapCPU())
		for i, x := range rs {
			if errs[i] != nil {
				return nil, errs[i]
			}
			w := &out[i]
			w.cpuPerReq = (cpuTime(x.in.pid) - cpu0[i]) / time.Duration(max(w.requests, 1))
			w.foreign = foreign
			w.name, w.store, w.path, w.threads, w.conns = x.name, x.store, x.path, x.threads, x.conns
			logf("  %s: %.0f req/s, p50 %s, p99 %s, %d errors; other processes used %.0f%% of the CPU",
				x.name, w.rps(), ms(w.p50), ms(w.p99), w.errors, 100*w.foreign)
		}
		return out, nil
	}
	const page, health = "/settings/security", "/healthz"
	var res []wrkResult
	for _, x := range []struct {
		run
		dst *wrkResult
	}{
		{run{"Security page", "PostgreSQL", a, page, pgCookies, 2, c.conns}, &r.pgPage},
		{run{"/healthz", "PostgreSQL", a, health, "", 2, c.conns}, &r.pgHealth},
		{run{"Security page", "SQLite", s, page, sqCookies, 2, c.conns}, &r.sqPage},
		{run{"/healthz", "SQLite", s, health, "", 2, c.conns}, &r.sqHealth},
	} {
		if res, err = runs(x.run); err != nil {
			return nil, err
		}
		*x.dst = res[0]
	}
	s.stop()
	r.sqliteErrors, r.sqliteFirst = s.serverErrors()

	// A and B at once: one wrk each, with half the threads and connections,
	// so the client side is the same as for one instance.
	if res, err = runs(run{"Security page, A and B at once: A", "PostgreSQL", a, page, pgCookies, 1, c.conns / 2},
		run{"Security page, A and B at once: B", "PostgreSQL", b, page, pgCookies, 1, c.conns / 2}); err != nil {
		return nil, err
	}
	r.bothA, r.bothB = res[0], res[1]
	return r, nil
}

// tenSessions signs one user up on in and in n-1 more times, checks the
// last session gets the Security page, and writes its cookie value to path
// (the format bench/wrk.lua reads).
func tenSessions(in *instance, path string, n int) (string, error) {
	logf("signing %s in %d times on %s", pageEmail, n, in.name)
	br, err := signInRetry(in.base, pageEmail, true)
	if err != nil {
		return "", err
	}
	for range n - 1 {
		if br, err = signInRetry(in.base, pageEmail, false); err != nil {
			return "", err
		}
	}
	if st, err := br.do(http.MethodGet, "/settings/security", nil); err != nil || st != http.StatusOK {
		return "", fmt.Errorf("GET /settings/security on %s: %d %v", in.name, st, err)
	}
	return path, os.WriteFile(path, []byte(br.cookies[sessionCookie]+"\n"), 0o600)
}

// runWrk runs wrk with bench/wrk.lua and parses the JSON line it prints
// (the same as bench/load does).
func runWrk(target, script, cookies string, threads, conns int, d time.Duration) (wrkResult, error) {
	args := []string{"-t" + strconv.Itoa(threads), "-c" + strconv.Itoa(conns), "-d" + strconv.Itoa(int(d/time.Second)) + "s",
		"--timeout", "5s", "-s", script, target}
	if cookies != "" {
		args = append(args, "--", cookies)
	}
	out, err := runTracked(exec.Command("wrk", args...))
	if err != nil {
		return wrkResult{}, fmt.Errorf("wrk: %v: %s", err, out)
	}
	_, js, ok := strings.Cut(string(out), "WRKJSON ")
	if !ok {
		return wrkResult{}, fmt.Errorf("wrk printed no result: %s", out)
	}
	var v struct {
		Requests   int64 `json:"requests"`
		DurationUS int64 `json:"duration_us"`
		P50US      int64 `json:"p50_us"`
		P99US      int64 `json:"p99_us"`
		MaxUS      int64 `json:"max_us"`
		Non200     int64 `json:"non200"`
		Errors     int64 `json:"errors"`
	}
	if err := json.NewDecoder(strings.NewReader(js)).Decode(&v); err != nil {
		return wrkResult{}, fmt.Errorf("wrk result %q: %w", js, err)
	}
	return wrkResult{
		requests: v.Requests, secs: float64(v.DurationUS) / 1e6,
		p50: time.Duration(v.P50US) * time.Microsecond, p99: time.Duration(v.P99US) * time.Microsecond,
		max: time.Duration(v.MaxUS) * time.Microsecond, errors: v.Non200 + v.Errors,
	}, nil
}
