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
	"strings"
	"testing"
	"time"
)

// The kill -9 drill's child: the real program, run by the test binary
// itself so it can be SIGKILLed.
func TestMain(m *testing.M) {
	if os.Getenv("DOORMAN_DRILL_CHILD") == "1" {
		err := run(context.Background(), os.Args[len(os.Args)-4:], os.Getenv, os.Stdout, time.Now)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

type drillBrowser struct {
	base string
	http *http.Client
	jar  *cookiejar.Jar
}

func newDrillBrowser(base string) *drillBrowser {
	jar, _ := cookiejar.New(nil)
	return &drillBrowser{base: base, jar: jar, http: &http.Client{Jar: jar, Timeout: 5 * time.Second,
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
	if b.cookie("doorman_csrf") == "" {
		res, err := b.http.Get(b.base + "/login")
		if err != nil {
			return false
		}
		res.Body.Close()
	}
	form.Set("csrf", b.cookie("doorman_csrf"))
	res, err := b.http.PostForm(b.base+path, form)
	if err != nil {
		return false
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.StatusCode == http.StatusSeeOther && res.Header.Get("Location") == where
}

// status is GET path with this browser's cookie value set by hand (the
// server's address changes between restarts).
func drillStatus(base, cookie, path string) (int, error) {
	req, _ := http.NewRequest(http.MethodGet, base+path, nil)
	req.AddCookie(&http.Cookie{Name: "doorman_session", Value: cookie})
	c := &http.Client{Timeout: 5 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	res.Body.Close()
	return res.StatusCode, nil
}

// TestKillDashNine is the short form of the crash drill: the real program
// on SQLite is SIGKILLed at random moments while a driver signs in and
// revokes; after each restart every acknowledged revocation is still
// refused and every acknowledged sign-in still works, and the database
// passes integrity_check at the end.
func TestKillDashNine(t *testing.T) {
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "drill.db")
	start := func() (*exec.Cmd, string) {
		cmd := exec.Command(os.Args[0], "-test.run=^$", "-addr", "127.0.0.1:0", "-db", dbPath)
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
		return cmd, strings.TrimSpace(strings.TrimPrefix(line, "Doorman is running at "))
	}
	var live, revoked []string // acknowledged cookies
	const password = "drill password 1"
	kills := 0
	for cycle := range 10 {
		cmd, base := start()
		// What was acknowledged before the last crash still holds.
		for _, c := range revoked {
			if code, err := drillStatus(base, c, "/settings"); err != nil || code != http.StatusSeeOther {
				cmd.Process.Kill()
				t.Fatalf("cycle %d: an acknowledged revocation was lost: %d %v", cycle, code, err)
			}
		}
		for _, c := range live {
			if code, err := drillStatus(base, c, "/settings"); err != nil || code != http.StatusOK {
				cmd.Process.Kill()
				t.Fatalf("cycle %d: an acknowledged sign-in was lost: %d %v", cycle, code, err)
			}
		}
		if cycle == 0 {
			owner := newDrillBrowser(base)
			if !owner.post("/signup", url.Values{"email": {"drill@example.com"}, "password": {password}}, "/settings/security") {
				t.Fatal("sign-up failed")
			}
			live = append(live, owner.cookie("doorman_session"))
		}
		// Load until a kill at a random moment.
		done := make(chan struct{})
		go func() {
			defer close(done)
			for i := 0; ; i++ {
				b := newDrillBrowser(base)
				if !b.post("/login", url.Values{"email": {"drill@example.com"}, "password": {password}}, "/settings/security") {
					return
				}
				live = append(live, b.cookie("doorman_session"))
				if i%2 == 1 && len(live) > 2 {
					// The newest session ends one of the others.
					victim := live[1]
					id, _, _ := strings.Cut(victim, ".")
					if !b.post("/settings/security/sessions/"+id+"/revoke", url.Values{}, "/settings/security") {
						return
					}
					live = append(live[:1], live[2:]...)
					revoked = append(revoked, victim)
				}
			}
		}()
		time.Sleep(time.Duration(150+rand.IntN(500)) * time.Millisecond)
		cmd.Process.Kill() // SIGKILL: no shutdown of any kind
		cmd.Wait()
		<-done
		kills++
	}
	raw, err := sql.Open("sqlite", "file:"+dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	var check string
	if err := raw.QueryRow(`PRAGMA integrity_check`).Scan(&check); err != nil || check != "ok" {
		t.Fatalf("integrity_check: %q %v", check, err)
	}
	var dupes int
	if err := raw.QueryRow(`SELECT COUNT(*) FROM (SELECT id FROM sessions GROUP BY id HAVING COUNT(*) > 1)`).Scan(&dupes); err != nil || dupes != 0 {
		t.Fatalf("duplicate sessions: %d %v", dupes, err)
	}
	if len(revoked) == 0 || len(live) < 2 {
		t.Fatalf("the drill did too little: %d live, %d revoked", len(live), len(revoked))
	}
	t.Logf("%d kills; %d acknowledged sign-ins alive and %d acknowledged revocations held across them", kills, len(live), len(revoked))
}
