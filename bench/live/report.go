package main

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"sort"
	"strings"
	"time"
)

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

func kernel() string {
	out, err := exec.Command("uname", "-sr").Output()
	if err != nil {
		return runtime.GOOS
	}
	return strings.TrimSpace(string(out))
}

func memTotal() string {
	b, _ := os.ReadFile("/proc/meminfo")
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "MemTotal:"); ok {
			var kb int64
			fmt.Sscan(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), &kb)
			return fmt.Sprintf("%.1f GB", float64(kb)/1024/1024)
		}
	}
	return "unknown"
}

func buildReport(c config, e *env, rev *revResults, notice noticeResult, st *streamResult, pg *pageResults, a, b *instance) string {
	var w strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&w, format, args...) }
	var skewed []string
	skew := func(what string, share float64) {
		if share >= skewThreshold {
			skewed = append(skewed, fmt.Sprintf("%s (%.0f%%)", what, 100*share))
		}
	}
	p("# Live benchmarks: revocation push, event streams, PostgreSQL\n\n")
	p("Measured %s on %d cores (`nproc`), CPU: %s, %s RAM, %s, %s/%s, %s; %s.\n\n",
		e.started.UTC().Format("2006-01-02 15:04 MST"), runtime.NumCPU(), cpuModel(), memTotal(), kernel(),
		runtime.GOOS, runtime.GOARCH, runtime.Version(), e.pgVersion)
	p("Command: `%s` (from the module root; source in `bench/live/`). The whole run took %s.\n\n",
		c.cmd, time.Since(e.started).Round(time.Second))
	p("Setup: a throwaway PostgreSQL from `scripts/pgtest.sh` (fsync off, loopback), the binary built with `go build` into a temp folder, ")
	p("instances started as `doorman -addr 127.0.0.1:PORT -debug-addr 127.0.0.1:PORT -db DSN %s`. ", e.instanceFlags)
	p("Every request goes to 127.0.0.1 over plain http with no `X-Forwarded-*`, so the cookies are the plain `doorman_session` / `doorman_csrf`. ")
	p("The driver, wrk, PostgreSQL and the instances all share the same %d cores. ", runtime.NumCPU())
	switch {
	case len(e.waitedFor) > 0:
		p("Other test processes were **still running** when the %s wait for them ran out (%s): the numbers are skewed.", c.waitTests, strings.Join(e.waitedFor, "; "))
	case e.waited > time.Second:
		p("The run first waited %s for another `go test`/`make test` on this machine to finish.", e.waited.Round(time.Second))
	default:
		p("No other `go test`/`make test` was running when it started.")
	}
	if seen := e.monitor.sightings(); len(seen) > 0 {
		p("\n\n**Other test processes ran during part of this run** (checked every 2 s; the numbers of these phases are skewed): %s.\n", strings.Join(seen, "; "))
	} else {
		p(" None appeared during the run either (checked every 2 s).\n")
	}

	// 1.
	p("\n## 1. Revocation push across instances\n\n")
	p("Two instances, A and B, on one PostgreSQL. One user; a revoker session signed in once on B. Each round: a fresh browser signs in on A (`POST /login`), ")
	p("opens `GET /settings/security/events` on A and reads to the server's first comment (the stream is subscribed), then the revoker posts ")
	p("`/settings/security/sessions/ID/revoke` to B (ID: the cookie value before the `.`). Measured: from just before the revoke is sent to the ")
	p("moment the `event: signed-out` line is read on A's stream (B commits the revocation with a `NOTIFY` in the same transaction; A's `LISTEN` ")
	p("connection hears it and ends the stream). The one-instance row sends the revoke to A itself, for comparison. Rounds run one after another; the round's sign-in is not timed.\n\n")
	p("| Path | rounds | pushes arrived | p50 | p90 | p99 | max | revoke POST p50 / p99 | other processes' CPU |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range []revResult{rev.cross, rev.same} {
		if r.rounds == 0 {
			continue
		}
		p("| %s | %d | %d | %s | %s | %s | %s | %s / %s | %s |\n", r.name, r.rounds, r.delivered,
			ms(percentile(r.push, .5)), ms(percentile(r.push, .9)), ms(percentile(r.push, .99)), ms(r.max()),
			ms(percentile(r.post, .5)), ms(percentile(r.post, .99)), skewNote(r.foreign))
		skew(r.name, r.foreign)
	}
	p("\nAcross instances, the push arrived before the revoke's own 303 was back in %d of %d rounds (the notification goes out at commit). ", rev.cross.pushFirst, rev.cross.delivered)
	p("Sign-in per round (argon2id, setup): mean %s. Both series took %s.\n", ms(mean(append(rev.cross.signIn, rev.same.signIn...))), rev.took.Round(time.Second))
	for _, r := range []revResult{rev.cross, rev.same} {
		if len(r.failures) > 0 {
			p("\nPushes that did not arrive (%s, %d): %s.\n", r.name, r.missed, strings.Join(r.failures, "; "))
		}
	}

	// 1b.
	if notice.rounds > 0 {
		p("\n## 1b. The live notice in a browser\n\n")
		p("What a person sees, and what the browser tests wait for (they no longer time it): each round signs a session in on A, opens the Security page on A in a fresh ")
		p("Chromium context (headless) with its cookies and waits until the tab's stream is subscribed; the revoker then posts the revoke to B. Measured: from just ")
		p("before the revoke is sent to the moment the tab shows \"You were signed out of this device …\"; the sentence goes on to say when and from which device (playwright's wait for it polls the page; its few ms are included). ")
		p("The tab's move to the sign-in page 1.5 s later is not timed.\n\n")
		p("| Path | rounds | notices shown | p50 | p90 | p99 | max | other processes' CPU |\n|---|---:|---:|---:|---:|---:|---:|---:|\n")
		p("| tab on A, revoke sent to B | %d | %d | %s | %s | %s | %s | %s |\n", notice.rounds, notice.shown,
			ms(percentile(notice.took, .5)), ms(percentile(notice.took, .9)), ms(percentile(notice.took, .99)), ms(maxOf(notice.took)), skewNote(notice.foreign))
		skew("live notice in a browser", notice.foreign)
		if len(notice.failures) > 0 {
			p("\nRounds without a notice (%d): %s.\n", notice.rounds-notice.shown, strings.Join(notice.failures, "; "))
		}
	}

	// 2.
	p("\n## 2. Idle event streams on one instance\n\n")
	p("%d users × %d sessions were signed in through A and B (%d sign-ins, %d workers alternating between the instances: each hashes one password at a time on 2 cores) ",
		st.users, st.perUser, st.signIns, c.workers)
	p("in %s (%.1f sign-ins/s). Then a **fresh** instance D was started on the same database and %d streams were opened on it (%d per session, the server's cap), ",
		st.signInTook.Round(time.Second), float64(st.signIns)/st.signInTook.Seconds(), st.requested, st.perSession)
	p("%d at a time, each on its own TCP connection, and held for %s, longer than the 20 s heartbeat (each heartbeat also rereads the session from PostgreSQL).\n\n", c.openers, st.hold)
	refused := 0
	var codes []string
	for code, n := range st.refused {
		refused += n
		codes = append(codes, fmt.Sprintf("%d × status %d", n, code))
	}
	sort.Strings(codes)
	p("| | Value |\n|---|---:|\n")
	p("| Streams requested | %d |\n", st.requested)
	p("| Streams open at once | **%d** |\n", st.opened)
	p("| Refused | %d %s |\n", refused, strings.Join(codes, ", "))
	p("| Dropped during the hold | %d |\n", st.dropped.Load())
	p("| Streams that got a heartbeat during the hold | %d |\n", st.pinged.Load())
	p("| Events during the hold (none expected) | %d |\n", st.events.Load())
	p("| Time to open them all | %s (%.0f streams/s) |\n", st.openTook.Round(time.Millisecond), float64(st.opened)/st.openTook.Seconds())
	p("| A 5th stream on a session holding 4 | status %d |\n", st.extraStatus)
	p("| Server VmRSS, fresh (no streams) | %s |\n", mb(st.fresh.rss))
	p("| Server VmRSS, all streams open | %s |\n", mb(st.open.rss))
	p("| Server VmRSS, end of the hold (peak sampled) | %s (%s) |\n", mb(st.end.rss), mb(st.peakRSS))
	p("| Server VmHWM (reset before opening) | %s |\n", mb(st.end.hwm))
	p("| RssAnon / RssFile at the end | %s / %s |\n", mb(st.end.anon), mb(st.end.file))
	if st.opened > 0 {
		p("| RSS per stream, (end − fresh) ÷ streams | %.1f kB |\n", float64(st.end.rss-st.fresh.rss)/float64(st.opened))
	}
	p("| Goroutines fresh → with streams | %d → %d |\n", st.gorFresh, st.gorOpen)
	p("| Open fds fresh → with streams | %d → %d |\n", st.fdFresh, st.fdOpen)
	p("| Server CPU during the hold | %s over %s (%.1f%% of one core) |\n", st.cpuHold, st.hold, 100*st.cpuHold.Seconds()/st.hold.Seconds())
	p("| ERROR lines in D's log | %s |\n", errorsText(st.serverErrors, st.firstError))
	p("| Other processes' CPU during the sign-ins / the hold | %s / %s |\n", skewNote(st.foreignSignIn), skewNote(st.foreignHold))
	skew("idle streams, sign-ins", st.foreignSignIn)
	skew("idle streams, hold", st.foreignHold)
	if st.refusedLast != "" {
		p("\nLast refusal: %s.\n", st.refusedLast)
	}
	if st.droppedLast != "" {
		p("\nLast drop: %s.\n", st.droppedLast)
	}
	p("\nOpen files: the driver's limit was soft %d / hard %d when it started (Go raises its own soft limit to the hard one at start); it calls `setrlimit(RLIMIT_NOFILE)` with soft = hard = %d, ",
		e.noFileBefore.Cur, e.noFileBefore.Max, e.noFileAfter.Cur)
	p("which Go then passes on to the processes it starts (without that call it gives children the original soft limit back). D's `/proc/PID/limits`: %s. ", e.serverNoFile)
	p("Each stream is one fd in D and one in the driver; `ulimit -n` of the calling shell is not changed.\n")

	// 3.
	p("\n## 3. Security page: PostgreSQL vs SQLite\n\n")
	p("`wrk -tT -cC -d%s` with `bench/wrk.lua`, the same session cookie on every request: the current session of a user with %d sessions (signed up + %d sign-ins). ",
		c.wrkDur, pg.sessions, pg.sessions-1)
	p("PostgreSQL: instance A (its database also holds the sessions of sections 1 and 2). SQLite: a fresh instance S on a new file. ")
	p("Each run has a %s warm-up first. Server CPU is the instance's own (utime + stime from `/proc/PID/stat`) ÷ requests; on PostgreSQL the database's CPU is not in it.\n\n", c.wrkWarm)
	p("| Store | Instance | Path | wrk | req/s | p50 | p99 | max | errors | server CPU / req | other processes' CPU |\n|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|\n")
	row := func(inst string, r wrkResult) {
		p("| %s | %s | %s | -t%d -c%d | %.0f | %s | %s | %s | %d | %d µs | %s |\n", r.store, inst, r.path, r.threads, r.conns, r.rps(),
			ms(r.p50), ms(r.p99), ms(r.max), r.errors, r.cpuPerReq.Microseconds(), skewNote(r.foreign))
		skew(r.store+" "+inst+" "+r.path, r.foreign)
	}
	row("A", pg.pgPage)
	row("A", pg.pgHealth)
	row("S", pg.sqPage)
	row("S", pg.sqHealth)
	row("A (with B)", pg.bothA)
	row("B (with A)", pg.bothB)
	combined := pg.bothA.rps() + pg.bothB.rps()
	p("\n- Security page ÷ /healthz: **%.0f%%** on PostgreSQL (%.0f ÷ %.0f req/s), **%.0f%%** on SQLite (%.0f ÷ %.0f req/s).\n",
		100*ratio(pg.pgPage, pg.pgHealth), pg.pgPage.rps(), pg.pgHealth.rps(), 100*ratio(pg.sqPage, pg.sqHealth), pg.sqPage.rps(), pg.sqHealth.rps())
	p("- PostgreSQL ÷ SQLite, Security page: %.2f×.\n", ratio(pg.pgPage, pg.sqPage))
	p("- A and B at once (one wrk each, -t1 -c%d, in parallel): **%.0f req/s combined** (A %.0f + B %.0f), against %.0f req/s for A alone. ",
		c.conns/2, combined, pg.bothA.rps(), pg.bothB.rps(), pg.pgPage.rps())
	p("Both instances, PostgreSQL and wrk share the same %d cores, so a second instance cannot add CPU here; on separate machines it would (see the notes).", runtime.NumCPU())
	if worst := max(pg.bothA.p99, pg.bothB.p99); pg.pgPage.p99 > 0 && worst > 5*pg.pgPage.p99 {
		p(" **In this run the p99 with both instances loaded (%s) was %.0f× that of A alone**: the intermittent stall described in the notes.", ms(worst), float64(worst)/float64(pg.pgPage.p99))
	}
	p("\n")
	an, af := a.serverErrors()
	bn, bf := b.serverErrors()
	p("- ERROR lines in the logs over the whole run: A %s; B %s; S %s.\n", errorsText(an, af), errorsText(bn, bf), errorsText(pg.sqliteErrors, pg.sqliteFirst))

	p("\n\"Other processes' CPU\" is the share of the machine's CPU capacity that went, while a measurement ran, to processes that are not this run's: every process in /proc but the driver, its descendants (instances, wrk) and the PostgreSQL server's processes, by the growth of its CPU time and its finished children's (`/proc/PID/stat` fields 14–17). ")
	if len(skewed) > 0 {
		p("**At %.0f%% or more the measurement was disturbed** by someone else's work on the machine: %s.\n", 100*skewThreshold, strings.Join(skewed, "; "))
	} else {
		p("It stayed under %.0f%% for every measurement here.\n", 100*skewThreshold)
	}

	// Goals.
	p("\n## Goals, checked against this run\n\n| Goal | Measured | Met |\n|---|---|---|\n")
	check := func(goal, measured string, ok bool) {
		mark := "yes"
		if !ok {
			mark = "**no**"
		}
		p("| %s | %s | %s |\n", goal, measured, mark)
	}
	cp99 := percentile(rev.cross.push, .99)
	check("Revocation push across instances: p99 ≤ 250 ms, every push arrives",
		fmt.Sprintf("p99 %s, %d of %d arrived", ms(cp99), rev.cross.delivered, rev.cross.rounds),
		cp99 <= 250*time.Millisecond && rev.cross.delivered == rev.cross.rounds)
	if notice.rounds > 0 {
		nmax := maxOf(notice.took)
		check("Live notice in the ended tab (Chromium, revoke sent to B): within 1 s in every round",
			fmt.Sprintf("max %s (p99 %s), %d of %d shown", ms(nmax), ms(percentile(notice.took, .99)), notice.shown, notice.rounds),
			notice.shown == notice.rounds && nmax <= time.Second)
	}
	check("≥ 5,000 idle streams on one instance, none refused or dropped",
		fmt.Sprintf("%d open, %d refused, %d dropped, %d with a heartbeat", st.opened, refused, st.dropped.Load(), st.pinged.Load()),
		st.opened >= 5000 && refused == 0 && st.dropped.Load() == 0 && st.pinged.Load() == int64(st.opened))
	check("RSS with the streams open, stated",
		fmt.Sprintf("VmRSS %s → %s (VmHWM %s) for %d streams", mb(st.fresh.rss), mb(st.end.rss), mb(st.end.hwm), st.opened), st.end.rss > 0)
	errs := pg.pgPage.errors + pg.pgHealth.errors + pg.sqPage.errors + pg.sqHealth.errors + pg.bothA.errors + pg.bothB.errors
	check("Every wrk request answered 200", fmt.Sprintf("%d errors", errs), errs == 0)
	p("\nFor reference, the Security page targets of docs/BENCHMARKS.md (set for SQLite with many users' cookies; here one session, 64 connections):\n\n| Target | Measured | Met |\n|---|---|---|\n")
	for _, x := range []struct {
		store        string
		page, health wrkResult
	}{{"PostgreSQL", pg.pgPage, pg.pgHealth}, {"SQLite", pg.sqPage, pg.sqHealth}} {
		rt := ratio(x.page, x.health)
		check(fmt.Sprintf("%s: Security page ≥ 30%% of /healthz", x.store),
			fmt.Sprintf("%.0f%%", 100*rt), rt >= .30)
		check(fmt.Sprintf("%s: Security page p99 ≤ 25 ms at %d connections", x.store, c.conns),
			ms(x.page.p99), x.page.p99 <= 25*time.Millisecond)
	}
	// Notes written by hand (how things are counted, what a goal's miss or
	// an odd number came from) are appended as they are.
	if notes, err := os.ReadFile("bench/live/NOTES.md"); err == nil {
		p("\n")
		w.Write(notes)
	}
	return w.String()
}

func ratio(a, b wrkResult) float64 {
	if b.rps() == 0 {
		return 0
	}
	return a.rps() / b.rps()
}

// errorsText is a count of log errors, with the first one if any.
func errorsText(n int, first string) string {
	if n == 0 {
		return "0"
	}
	if len(first) > 300 {
		first = first[:300] + "…"
	}
	return fmt.Sprintf("%d (first: `%s`)", n, strings.ReplaceAll(first, "`", "'"))
}
