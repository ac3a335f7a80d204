package handlers_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"doorman/apptest"
	"doorman/db/postgres/pgtest"
	"doorman/handlers"
)

// expectUnavailable checks a clear 503: Retry-After, the page saying so, no
// stack or error text.
func expectUnavailable(t *testing.T, res *response, words string) {
	t.Helper()
	expectStatus(t, res, http.StatusServiceUnavailable)
	if res.Header.Get("Retry-After") == "" {
		t.Fatalf("%s: 503 without Retry-After", res.Request.URL.Path)
	}
	expectBody(t, res, words, "</html>")
	expectNoBody(t, res, "goroutine", "db:", "dial tcp", "sqlite")
}

// TestPostgresGoneAndBack: PostgreSQL stopped under a running Doorman: a
// clear 503 with Retry-After (never a 500), /healthz still fine, /readyz
// says not ready; started again: normal service without a restart (how
// soon is logged, and measured by make drills), and a revocation through another instance reaches the open tab
// (the listener reconnected).
func TestPostgresGoneAndBack(t *testing.T) {
	if !pgtest.Available() && os.Getenv(pgtest.EnvRequire) == "" {
		t.Skipf("no PostgreSQL: set %s (make test does)", pgtest.EnvDSN)
	}
	// Named by this process too: two test runs on one machine (two
	// clones' make test) must not stop each other's server.
	dir := filepath.Join(os.TempDir(), fmt.Sprintf("doorman-pgdown-%d-%s", os.Getpid(), strings.ReplaceAll(t.Name(), "/", "-")))
	start := func() string {
		out, err := exec.Command("bash", "../scripts/pgtest.sh", "start", dir).Output()
		if err != nil {
			t.Fatalf("pgtest start: %v", err)
		}
		return strings.TrimSpace(string(out))
	}
	dsn := start()
	t.Cleanup(func() { exec.Command("bash", "../scripts/pgtest.sh", "stop", dir).Run() })
	pgCtl := func(args ...string) {
		bins, _ := filepath.Glob("/usr/lib/postgresql/*/bin/pg_ctl")
		if len(bins) == 0 {
			t.Fatal("no pg_ctl")
		}
		cmd := exec.Command("runuser", append([]string{"-u", "postgres", "--", bins[len(bins)-1], "-D", filepath.Join(dir, "data")}, args...)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("pg_ctl %v: %v\n%s", args, err, out)
		}
	}
	port, err := os.ReadFile(filepath.Join(dir, "port"))
	if err != nil {
		t.Fatal(err)
	}

	a := newTestAppWith(t, apptest.Options{DSN: dsn})
	// A second instance on the same database, with its key ring, as every
	// instance of a deployment has.
	b := newTestAppWith(t, apptest.Options{DSN: dsn, SecretBox: a.app.SecretBox})
	desktop, phone := a.client(uaWindowsChrome, ipBerlin), a.client(uaIPhone, ipLondon)
	desktop.signup("alice@example.com", pw)
	phone.login("alice@example.com", pw)
	phoneID := phone.currentID()

	pgCtl("stop", "-m", "fast", "-w")
	expectUnavailable(t, desktop.get("/settings/security"), "reach its database right now")
	expectUnavailable(t, desktop.post("/settings/security/sessions/"+phoneID+"/revoke", nil), "save changes right now, so nothing was changed")
	expectUnavailable(t, a.client(uaMacFirefox, ipTokyo).post("/login", url.Values{"email": {"alice@example.com"}, "password": {pw}}), "save changes right now, so nothing was changed")
	if res := desktop.get("/readyz"); res.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("/readyz with the database down: %d", res.StatusCode)
	}
	expectStatus(t, desktop.get("/healthz"), http.StatusOK)
	loadWhileDown(t, []*testApp{a, b}, desktop.sessionCookie())

	pgCtl("start", "-w", "-l", filepath.Join(dir, "log"), "-o", "-p "+strings.TrimSpace(string(port))+" -k "+dir+" -c listen_addresses=127.0.0.1 -c fsync=off")
	back := time.Now()
	for desktop.get("/settings/security").StatusCode != http.StatusOK || b.client(uaIPhone, ipLondon).get("/readyz").StatusCode != http.StatusOK {
		if time.Since(back) > waitTimeout {
			t.Fatalf("no normal service in the %v after the database's return", waitTimeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("normal service %v after the database came back", time.Since(back).Round(time.Millisecond))
	expectStatus(t, desktop.get("/readyz"), http.StatusOK)
	// Nothing was half done: the phone is still signed in.
	expectStatus(t, phone.get("/settings"), http.StatusOK)

	// The open tab on instance a is told of an ending through instance b:
	// a's listener reconnected.
	ps := phone.openStream()
	other := b.client(uaMacFirefox, ipTokyo)
	other.login("alice@example.com", pw)
	deadline := time.Now().Add(waitTimeout)
	for {
		res := other.post("/settings/security/sessions/"+phoneID+"/revoke", nil)
		if res.StatusCode == http.StatusSeeOther {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("revoke through b: %d", res.StatusCode)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The new sign-in through b comes first ("sessions": the list
	// changed), then the ending.
	for deadline := time.Now().Add(waitTimeout); ; {
		e, _ := ps.next(time.Until(deadline))
		if e == "signed-out" {
			break
		}
		if e != "sessions" {
			t.Fatalf("the tab on a got %q, not the ending", e)
		}
	}
	for _, app := range []*testApp{a, b} {
		if bad := serverFaults(app.logs.String()); len(bad) > 0 {
			t.Fatalf("%d log lines with a 500 or a panic while the database was away:\n%s", len(bad), strings.Join(bad[:min(len(bad), 20)], "\n"))
		}
	}
}

// loadWhileDown requests the Security page on every instance from 16
// clients for DOORMAN_DRILL_PG_DOWN (2 s; make drills: 30 s) while the
// database is away: every answer is a 503 with Retry-After, and once the
// clients stop the server's goroutines are back where they were (nothing
// piled up waiting for the database).
func loadWhileDown(t *testing.T, apps []*testApp, cookie string) {
	t.Helper()
	down := 2 * time.Second
	if v := os.Getenv("DOORMAN_DRILL_PG_DOWN"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("DOORMAN_DRILL_PG_DOWN=%q: %v", v, err)
		}
		down = d
	}
	before := runtime.NumGoroutine()
	var mu sync.Mutex
	statuses := map[int]int{}
	peak := before
	var wg sync.WaitGroup
	end := time.Now().Add(down)
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			hc := &http.Client{Timeout: waitTimeout, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
			defer hc.CloseIdleConnections() // so their server goroutines end too
			for time.Now().Before(end) {
				req, _ := http.NewRequest(http.MethodGet, apps[i%len(apps)].srv.URL+"/settings/security", nil)
				req.AddCookie(&http.Cookie{Name: "doorman_session", Value: cookie})
				res, err := hc.Do(req)
				code := 0
				if err == nil {
					io.Copy(io.Discard, res.Body)
					res.Body.Close()
					code = res.StatusCode
					if code == http.StatusServiceUnavailable && res.Header.Get("Retry-After") == "" {
						code = -1 // a 503 without Retry-After
					}
				}
				mu.Lock()
				statuses[code]++
				peak = max(peak, runtime.NumGoroutine())
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	// Waited for (a busy machine winds down slower), not sampled once: a
	// pile-up never settles, however long the wait.
	var settled int
	for settle := time.Now().Add(waitTimeout); ; time.Sleep(100 * time.Millisecond) {
		if settled = runtime.NumGoroutine(); settled <= before+4 || time.Now().After(settle) {
			break
		}
	}
	t.Logf("database down %v under 16 clients: answers by status %v; goroutines %d before, peak %d, %d after", down, statuses, before, peak, settled)
	if len(statuses) != 1 || statuses[http.StatusServiceUnavailable] == 0 {
		t.Fatalf("while the database was down, every page should be a 503 with Retry-After: %v", statuses)
	}
	if settled > before+4 {
		t.Fatalf("goroutines piled up: %d before the outage, %d after its load", before, settled)
	}
}

// TestDiskFull: SQLite on a small filesystem that fills up. Changes get a
// clear 503 and nothing half-written; pages and the session check keep
// working; when space returns, writes work again without a restart.
func TestDiskFull(t *testing.T) {
	if apptest.UsePostgres() {
		t.Skip("the SQLite file's disk: not applicable to the PostgreSQL store")
	}
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=2m"); err != nil {
		t.Fatalf("mount a 2 MB tmpfs for the full-disk drill (needs root, as make test runs): %v", err)
	}
	t.Cleanup(func() { syscall.Unmount(dir, syscall.MNT_DETACH) })
	dbPath := filepath.Join(dir, "full.db")
	app := newTestAppWith(t, apptest.Options{DSN: dbPath})
	desktop, phone := app.client(uaWindowsChrome, ipBerlin), app.client(uaIPhone, ipLondon)
	desktop.signup("alice@example.com", pw)
	phone.login("alice@example.com", pw)
	phoneID := phone.currentID()

	// Empty the WAL into the database, so the next write must grow a file,
	// then take every free block.
	raw, err := sql.Open("sqlite", "file:"+dbPath+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		t.Fatal(err)
	}
	raw.Close()
	filler := filepath.Join(dir, "filler")
	f, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	block := make([]byte, 4096)
	for {
		if _, err := f.Write(block); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			break
		}
	}
	f.Close()

	expectWritesRefused(t, app, desktop, phone, phoneID)

	// Space returns: no restart needed.
	os.Remove(filler)
	expectWritesBack(t, app, desktop, phone, phoneID)
}

// TestReadOnlyDatabaseFile: the SQLite file made read-only under a running
// Doorman. Changes get a clear 503 and nothing half-written; pages and the
// session check keep working, also while the writer connection is replaced;
// once the file is writable again, writes work without a restart.
func TestReadOnlyDatabaseFile(t *testing.T) {
	if apptest.UsePostgres() {
		t.Skip("the SQLite file's permissions: not applicable to the PostgreSQL store")
	}
	// A short deadline, for the interrupted write below.
	app := newTestApp(t, func(c *handlers.Config) { c.RequestTimeout = 500 * time.Millisecond })
	desktop, phone := app.client(uaWindowsChrome, ipBerlin), app.client(uaIPhone, ipLondon)
	desktop.signup("alice@example.com", pw)
	phone.login("alice@example.com", pw)
	phoneID := phone.currentID()
	// Another connection to the database (as an operator's sqlite3 shell
	// would be), opened while it is writable.
	other, err := sql.Open("sqlite", "file:"+app.dbPath+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	ctx := context.Background()
	lock, err := other.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lock.ExecContext(ctx, `SELECT COUNT(*) FROM users`); err != nil {
		t.Fatal(err)
	}

	// The database and its WAL, where every write lands first (and which a
	// checkpoint copies into the database). Not the -shm: it is the WAL's
	// index, which readers write too (their read marks), so a read-only
	// -shm would stop reads as well, and SQLite maps it, so a write to it
	// could only fail as a SIGBUS. A read-only disk is a different drill.
	files := []string{app.dbPath, app.dbPath + "-wal"}
	for _, f := range files {
		if _, err := os.Stat(f); err != nil {
			t.Fatalf("the running store's file: %v", err)
		}
	}
	setImmutable(t, files...)
	expectWritesRefused(t, app, desktop, phone, phoneID)

	// A write that waits for that connection's lock past the request's
	// deadline is interrupted, and database/sql drops the interrupted
	// connection: the next write opens a new one while the file is
	// read-only. SQLite would open it read-only for good (every write a 503
	// long after the file is writable again); the store must refuse it.
	before := app.dump()
	if _, err := lock.ExecContext(ctx, `BEGIN IMMEDIATE`); err != nil {
		t.Fatal(err)
	}
	expectUnavailable(t, desktop.post("/settings/security/sessions/"+phoneID+"/revoke", nil), "save changes right now, so nothing was changed")
	if _, err := lock.ExecContext(ctx, `ROLLBACK`); err != nil {
		t.Fatal(err)
	}
	lock.Close()
	expectUnavailable(t, app.client(uaMacFirefox, ipTokyo).post("/login", url.Values{"email": {"alice@example.com"}, "password": {pw}}), "save changes right now, so nothing was changed")
	expectStatus(t, phone.get("/settings"), http.StatusOK)
	if after := app.dump(); after != before {
		t.Fatalf("a failed write left something behind:\n%s\nvs\n%s", before, after)
	}

	// Writable again: no restart needed.
	clearImmutable(t, files...)
	expectWritesBack(t, app, desktop, phone, phoneID)
}

// setImmutable makes files read-only in a way the kernel enforces even for
// root, which chmod is not (the tests run as root): the immutable attribute
// (chattr +i, the FS_IOC_SETFLAGS ioctl; chattr rather than x/sys/unix,
// which go.mod has only as an indirect dependency). It is cleared again at
// cleanup, before the store closes and TempDir is removed.
func setImmutable(t *testing.T, files ...string) {
	t.Helper()
	t.Cleanup(func() { clearImmutable(t, files...) })
	for _, f := range files {
		if out, err := exec.Command("chattr", "+i", f).CombinedOutput(); err != nil {
			t.Fatalf("chattr +i %s: %v: %s\nthe read-only-file drill needs a filesystem with the immutable attribute (ext4, xfs, btrfs) and CAP_LINUX_IMMUTABLE (root, as make test runs)", f, err, bytes.TrimSpace(out))
		}
		// Prove it: without this the drill could pass on a file that was
		// writable all along.
		if w, err := os.OpenFile(f, os.O_WRONLY, 0); err == nil {
			w.Close()
			t.Fatalf("chattr +i %s succeeded but the file still opens for writing", f)
		} else if !errors.Is(err, syscall.EPERM) {
			t.Fatalf("open %s for writing after chattr +i: %v, want EPERM", f, err)
		}
	}
}

// clearImmutable undoes setImmutable (harmless on a file without the flag).
func clearImmutable(t *testing.T, files ...string) {
	t.Helper()
	for _, f := range files {
		if out, err := exec.Command("chattr", "-i", f).CombinedOutput(); err != nil {
			t.Errorf("chattr -i %s: %v: %s", f, err, bytes.TrimSpace(out))
		}
	}
}

// expectWritesRefused is the drill for a store that cannot write (disk
// full, read-only file): a revoke and a sign-in get the clear 503, the
// Security page and another session's check still answer, nothing changed.
// On failure the test's log shows the server's.
func expectWritesRefused(t *testing.T, app *testApp, desktop, phone *client, phoneID string) {
	t.Helper()
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(app.logs.String())
		}
	})
	before := app.dump()
	expectUnavailable(t, desktop.post("/settings/security/sessions/"+phoneID+"/revoke", nil), "save changes right now, so nothing was changed")
	expectUnavailable(t, app.client(uaMacFirefox, ipTokyo).post("/login", url.Values{"email": {"alice@example.com"}, "password": {pw}}), "save changes right now, so nothing was changed")
	// Reads go on: the session check, the list.
	expectStatus(t, desktop.get("/settings/security"), http.StatusOK)
	expectStatus(t, phone.get("/settings"), http.StatusOK)
	if after := app.dump(); after != before {
		t.Fatalf("a failed write left something behind:\n%s\nvs\n%s", before, after)
	}
}

// expectWritesBack is the end of that drill, once the cause is fixed: with
// no restart, the revoke goes through and signs the phone out; there was
// never a 500.
func expectWritesBack(t *testing.T, app *testApp, desktop, phone *client, phoneID string) {
	t.Helper()
	expectRedirect(t, desktop.post("/settings/security/sessions/"+phoneID+"/revoke", nil), "/settings/security")
	expectRedirect(t, phone.get("/settings"), "/login?next=%2Fsettings")
	if strings.Contains(app.logs.String(), "status=500") {
		t.Fatal("a 500 while the store could not write")
	}
}
