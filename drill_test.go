package main

import (
	"bufio"
	"context"
	"database/sql"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx", for the checks

	"doorman/db/postgres/pgtest"
)

// The kill -9 drill's child: the real program, run by the test binary
// itself so it can be SIGKILLed.
func TestMain(m *testing.M) {
	if os.Getenv("DOORMAN_DRILL_CHILD") == "1" {
		// os.Args[1] is the test binary's own -test.run flag.
		err := run(context.Background(), os.Args[2:], os.Getenv, os.Stdout, time.Now)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// clientTimeout only stops a request that hangs. It is long on purpose: on
// a busy machine a sign-in waits its turn for a hashing slot (argon2id),
// and a slow answer is not a wrong one. The drills judge what was
// acknowledged and the soak judges leaks; neither judges speed (make
// bench-live measures that).
const clientTimeout = 30 * time.Second

type drillBrowser struct {
	base string
	http *http.Client
	jar  *cookiejar.Jar
}

func newDrillBrowser(base string) *drillBrowser {
	jar, _ := cookiejar.New(nil)
	return &drillBrowser{base: base, jar: jar, http: &http.Client{Jar: jar, Timeout: clientTimeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (b *drillBrowser) cookie(name string) string {
	u, _ := url.Parse(b.base)
	for _, c := range b.jar.Cookies(u) {
		if c.Name == name {
			return c.Value
		}
	}
	return ""
}

// post sends a form; ok is whether the server acknowledged it (a 303 to
// where).
func (b *drillBrowser) post(path string, form url.Values, where string) bool {
	code, location, err := b.send(path, form)
	return err == nil && code == http.StatusSeeOther && location == where
}

// send posts a form (with the CSRF token, fetched first if need be) and
// returns the status and Location.
func (b *drillBrowser) send(path string, form url.Values) (int, string, error) {
	if b.cookie("doorman_csrf") == "" {
		res, err := b.http.Get(b.base + "/login")
		if err != nil {
			return 0, "", err
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			return res.StatusCode, "", nil
		}
	}
	form.Set("csrf", b.cookie("doorman_csrf"))
	res, err := b.http.PostForm(b.base+path, form)
	if err != nil {
		return 0, "", err
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.StatusCode, res.Header.Get("Location"), nil
}

// view is GET path, the body read and dropped.
func (b *drillBrowser) view(path string) (int, error) {
	res, err := b.http.Get(b.base + path)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.StatusCode, nil
}

// status is GET path with this browser's cookie value set by hand (the
// server's address changes between restarts).
func drillStatus(base, cookie, path string) (int, error) {
	req, _ := http.NewRequest(http.MethodGet, base+path, nil)
	req.AddCookie(&http.Cookie{Name: "doorman_session", Value: cookie})
	c := &http.Client{Timeout: clientTimeout, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	res.Body.Close()
	return res.StatusCode, nil
}

// drillChild is the real program, run by the test binary (TestMain) so it
// can be SIGKILLed.
type drillChild struct {
	cmd  *exec.Cmd
	base string // http://127.0.0.1:port
}

// startChild runs the program on dsn (a SQLite file or a postgres:// URL)
// with extra flags, and waits until it listens.
func startChild(t *testing.T, dir, dsn string, extra ...string) *drillChild {
	t.Helper()
	args := append([]string{"-test.run=^$", "-addr", "127.0.0.1:0", "-db", dsn}, extra...)
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "DOORMAN_DRILL_CHILD=1", "DOORMAN_GEOIP_DIR="+dir, "DOORMAN_LOG_LEVEL=error")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		cmd.Process.Kill()
		t.Fatalf("the server did not start: %v", err)
	}
	return &drillChild{cmd: cmd, base: strings.TrimSpace(strings.TrimPrefix(line, "Doorman is running at "))}
}

// kill is SIGKILL: no shutdown of any kind.
func (c *drillChild) kill() {
	c.cmd.Process.Kill()
	c.cmd.Wait()
}

// drillKills is how many times the crash drill kills the server: 10 in
// make test, DOORMAN_DRILL_KILLS in make drills.
func drillKills(t *testing.T) int {
	if v := os.Getenv("DOORMAN_DRILL_KILLS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("DOORMAN_DRILL_KILLS=%q", v)
		}
		return n
	}
	return 10
}

// crashDrill SIGKILLs the real program on dsn at random moments while a
// driver signs in and revokes, kills times; after each restart every
// acknowledged revocation is still refused and every acknowledged sign-in
// still works. A request cut off by the kill was not acknowledged: its
// outcome is unknown and is not counted either way (a revocation that
// committed just before the kill is refused, which is right; its victim
// is then neither checked as alive nor as ended).
func crashDrill(t *testing.T, dir, dsn string, kills int) (alive, revoked []string) {
	var unknown []string
	const password = "drill password 1"
	for cycle := range kills {
		// No session cap here: the drill is about what a crash keeps, and
		// 50 cycles of sign-ins pass the default 100 (whose evictions
		// would look like lost sign-ins).
		child := startChild(t, dir, dsn, "-max-sessions-per-user", "1000000")
		base := child.base
		// What was acknowledged before the last crash still holds.
		for _, c := range revoked {
			if code, err := drillStatus(base, c, "/settings"); err != nil || code != http.StatusSeeOther {
				child.kill()
				t.Fatalf("cycle %d: an acknowledged revocation was lost: %d %v", cycle, code, err)
			}
		}
		for _, c := range alive {
			if code, err := drillStatus(base, c, "/settings"); err != nil || code != http.StatusOK {
				child.kill()
				t.Fatalf("cycle %d: an acknowledged sign-in was lost: %d %v", cycle, code, err)
			}
		}
		if cycle == 0 {
			owner := newDrillBrowser(base)
			if !owner.post("/signup", url.Values{"email": {"drill@example.com"}, "password": {password}}, "/settings/security") {
				child.kill()
				t.Fatal("sign-up failed")
			}
			alive = append(alive, owner.cookie("doorman_session"))
		}
		// Load until a kill at a random moment.
		// The last cycle waits for a revocation if none was acknowledged
		// yet, so the drill always has one to check.
		needRevocation := cycle == kills-1 && len(revoked) == 0
		var acked atomic.Int64 // sign-ins and revocations acknowledged in this cycle
		var revokedNow atomic.Bool
		done := make(chan struct{})
		go func() {
			defer close(done)
			for i := 0; ; {
				b := newDrillBrowser(base)
				code, where, err := b.send("/login", url.Values{"email": {"drill@example.com"}, "password": {password}})
				if err == nil && code == http.StatusServiceUnavailable {
					// Too busy to hash now (a slow machine): not the
					// crash, and nothing was signed in. Again.
					time.Sleep(50 * time.Millisecond)
					continue
				}
				if err != nil || code != http.StatusSeeOther || where != "/settings/security" {
					return
				}
				alive = append(alive, b.cookie("doorman_session"))
				acked.Add(1)
				if _, err := b.view("/settings/security"); err != nil {
					return
				}
				if i%2 == 1 && len(alive) > 2 {
					// The newest session ends one of the others.
					victim := alive[1]
					alive = append(alive[:1], alive[2:]...)
					id, _, _ := strings.Cut(victim, ".")
					if !b.post("/settings/security/sessions/"+id+"/revoke", url.Values{}, "/settings/security") {
						unknown = append(unknown, victim)
						return
					}
					revoked = append(revoked, victim)
					acked.Add(1)
					revokedNow.Store(true)
				}
				i++
			}
		}()
		// The kill comes at a random moment once the load is under way:
		// after 1 to 4 acknowledged steps of this cycle, then 0–500 ms
		// more. Counted in steps rather than milliseconds, so that a busy
		// machine, where a sign-in can take seconds, still has load to
		// kill: the drill is about what a crash keeps, not how much fits
		// in a given time. The wait for the steps ends early if the load
		// stopped, and gives up after two minutes (the floor below then
		// says the drill did too little).
		steps := int64(1 + rand.IntN(4))
		for giveUp := time.Now().Add(2 * time.Minute); ; time.Sleep(5 * time.Millisecond) {
			stopped := false
			select {
			case <-done:
				stopped = true
			default:
			}
			if stopped || time.Now().After(giveUp) || (acked.Load() >= steps && (!needRevocation || revokedNow.Load())) {
				break
			}
		}
		time.Sleep(time.Duration(rand.IntN(500)) * time.Millisecond)
		child.kill()
		<-done
	}
	if len(revoked) == 0 || len(alive) < 2 {
		t.Fatalf("the drill did too little: %d alive, %d revoked", len(alive), len(revoked))
	}
	t.Logf("%d kills; %d acknowledged sign-ins alive and %d acknowledged revocations held across them (%d revocations cut off by a kill)",
		kills, len(alive), len(revoked), len(unknown))
	return alive, revoked
}

// TestKillDashNine is the crash drill on SQLite: after the kills the
// database passes integrity_check and holds no duplicate or half-written
// session.
func TestKillDashNine(t *testing.T) {
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "drill.db")
	crashDrill(t, dir, dbPath, drillKills(t))
	raw, err := sql.Open("sqlite", "file:"+dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	var check string
	if err := raw.QueryRow(`PRAGMA integrity_check`).Scan(&check); err != nil || check != "ok" {
		t.Fatalf("integrity_check: %q %v", check, err)
	}
	if err := raw.QueryRow(`PRAGMA foreign_key_check`).Scan(&check); err != sql.ErrNoRows {
		t.Fatalf("foreign_key_check: %q %v", check, err)
	}
	checkSessionRows(t, raw, "SELECT COUNT(*) FROM (SELECT id FROM sessions GROUP BY id HAVING COUNT(*) > 1)",
		"SELECT COUNT(*) FROM sessions WHERE length(secret_hash) != 32 OR created_at <= 0 OR user_id NOT IN (SELECT id FROM users)")
}

// TestKillDashNinePostgres is the crash drill on PostgreSQL: after the
// kills, amcheck finds every B-tree index of the schema consistent with
// its table, and no session is duplicate or half-written.
func TestKillDashNinePostgres(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	dir := t.TempDir()
	crashDrill(t, dir, dsn, drillKills(t))
	raw, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if _, err := raw.Exec(`CREATE EXTENSION IF NOT EXISTS amcheck`); err != nil {
		t.Fatalf("amcheck: %v", err)
	}
	var indexes int
	if err := raw.QueryRow(`SELECT COUNT(bt_index_parent_check(c.oid, true))
		FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am am ON am.oid = c.relam
		JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE am.amname = 'btree' AND n.nspname = current_schema()`).Scan(&indexes); err != nil || indexes == 0 {
		t.Fatalf("amcheck over %d indexes: %v", indexes, err)
	}
	checkSessionRows(t, raw, "SELECT COUNT(*) FROM (SELECT id FROM sessions GROUP BY id HAVING COUNT(*) > 1) d",
		"SELECT COUNT(*) FROM sessions WHERE length(secret_hash) != 32 OR created_at IS NULL OR user_id NOT IN (SELECT id FROM users)")
	t.Logf("amcheck: %d B-tree indexes consistent", indexes)
}

// checkSessionRows fails t if either query counts a row: duplicates, then
// half-written sessions.
func checkSessionRows(t *testing.T, raw *sql.DB, dupes, half string) {
	t.Helper()
	for _, q := range []string{dupes, half} {
		var n int
		if err := raw.QueryRow(q).Scan(&n); err != nil || n != 0 {
			t.Fatalf("%s: %d %v", q, n, err)
		}
	}
}
