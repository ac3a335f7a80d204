package main

import (
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

func percentile(l []time.Duration, p float64) time.Duration {
	if len(l) == 0 {
		return 0
	}
	s := slices.Clone(l)
	slices.Sort(s)
	return s[min(len(s)-1, int(float64(len(s))*p))]
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
	fmt.Fprintf(&b, "The live push across instances, idle event streams, and the Security page on PostgreSQL beside SQLite are in [BENCHMARKS-LIVE.md](BENCHMARKS-LIVE.md) (`make bench-live`, also run by `make bench`). The fault drills' figures (the 10-minute soaks: RSS, file descriptors, goroutines and open streams over time; kills, outages, stalls, a rolling restart) are in [BENCHMARKS-DRILLS.md](BENCHMARKS-DRILLS.md) (`make drills`).\n\n")
	fmt.Fprintf(&b, "## Load test: the real binary on 127.0.0.1\n\n")
	fmt.Fprintf(&b, "Database: %d users × %d sessions = %d sessions, seeded by `doorman seed` in %s. Each phase: %s warm-up, then %s measured, %d connections. The load generator (wrk, and the Go driver in bench/load) runs on the same 2 cores as the server.\n\n",
		c.users, c.perUser, c.users*c.perUser, seedDur.Round(100*time.Millisecond), c.warm, c.dur, c.conns)
	fmt.Fprintf(&b, "| Phase | req/s | p50 | p99 | server CPU / req | peak RSS (VmHWM) | RssAnon | RssFile | SQLite writes/s | errors |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range rs {
		fmt.Fprintf(&b, "| %s | %.0f | %s | %s | %d µs | %.1f MB | %.1f MB | %.1f MB | %.1f | %d |\n",
			r.name, r.rps(), ms(r.p50), ms(r.p99), r.cpuPerReq.Microseconds(),
			float64(r.hwm)/1024, float64(r.anon)/1024, float64(r.file)/1024, float64(r.writes)/r.secs, r.errors)
	}
	var health, page, api result
	for _, r := range rs {
		switch r.name {
		case "GET /healthz":
			health = r
		case "GET /settings/security":
			page = r
		case "GET /api/v1/me":
			api = r
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
	if api.requests > 0 {
		apiRatio := api.rps() / health.rps()
		check("GET /api/v1/me ≥ 50% of /healthz throughput", fmt.Sprintf("%.0f%% (%.0f vs %.0f req/s, %d µs CPU per request)", 100*apiRatio, api.rps(), health.rps(), api.cpuPerReq.Microseconds()), apiRatio >= .50)
	}
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
