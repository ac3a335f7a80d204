package main

import (
	"bytes"
	"database/sql"
	"errors"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	_ "modernc.org/sqlite"
)

// TestStartsOnAReadOnlyDatabase: Doorman started on a SQLite database it
// cannot write (review issue 21, bug 3: it exited with "create
// schema_migrations: unable to open database file (14)"). A current one is
// served read-only: a session made before still works, a sign-in and a
// sign-out get the clear 503. Two ways: the file alone immutable (its
// directory writable, so SQLite can keep its -shm there), and the file and
// its directory immutable (as on a read-only disk or volume: no -wal or
// -shm can be made). One that needs a migration is refused, saying which
// file, that it cannot be written, and what to do.
//
// The tests run as root, which chmod does not stop, so the files are made
// immutable (chattr +i), as the running server's read-only drill does
// (handlers TestReadOnlyDatabaseFile).
func TestStartsOnAReadOnlyDatabase(t *testing.T) {
	for _, c := range []struct {
		name     string
		whole    bool // the directory too
		migrated bool // the schema is current
	}{
		{"file immutable", false, true},
		{"file and directory immutable", true, true},
		{"needs a migration", true, false},
		{"needs a migration, file immutable", false, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "data")
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, "doorman.db")
			args := []string{"-addr", "127.0.0.1:0", "-db", path, "-geoip-dir", filepath.Join(dir, "nodata")}

			// A first, writable start: a user signs in.
			base, stop := startRun(t, append(args, "-demo"))
			jar, err := cookiejar.New(nil)
			if err != nil {
				t.Fatal(err)
			}
			browser := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
			csrf := func(base string) string {
				t.Helper()
				res, err := browser.Get(base + "/login")
				if err != nil {
					t.Fatal(err)
				}
				res.Body.Close()
				u, err := url.Parse(base)
				if err != nil {
					t.Fatal(err)
				}
				for _, ck := range jar.Cookies(u) {
					if ck.Name == "doorman_csrf" {
						return ck.Value
					}
				}
				t.Fatal("no CSRF cookie")
				return ""
			}
			post := func(base, path string, form url.Values) (int, string) {
				t.Helper()
				form.Set("csrf", csrf(base))
				res, err := browser.PostForm(base+path, form)
				if err != nil {
					t.Fatal(err)
				}
				defer res.Body.Close()
				body, err := io.ReadAll(res.Body)
				if err != nil {
					t.Fatal(err)
				}
				return res.StatusCode, string(body)
			}
			if status, _ := post(base, "/login", url.Values{"email": {"demo@doorman.test"}, "password": {"doorman-demo"}}); status != http.StatusSeeOther {
				t.Fatalf("sign-in: %d", status)
			}
			stop()
			if !c.migrated {
				// As if made by an older Doorman: the last migration not
				// yet applied.
				raw, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)")
				if err != nil {
					t.Fatal(err)
				}
				if _, err := raw.Exec(`DELETE FROM schema_migrations WHERE version = (SELECT MAX(version) FROM schema_migrations)`); err != nil {
					t.Fatal(err)
				}
				if err := raw.Close(); err != nil {
					t.Fatal(err)
				}
			}

			files := []string{path}
			for _, f := range []string{path + "-wal", path + "-shm", path + ".key"} {
				if _, err := os.Stat(f); err == nil {
					files = append(files, f)
				}
			}
			if c.whole {
				files = append(files, dir)
			}
			immutable(t, files...)

			if !c.migrated {
				err := runOrStop(args, func(string) string { return "" })
				if err == nil || !strings.Contains(err.Error(), path+" cannot be written") || !strings.Contains(err.Error(), "operation not permitted") ||
					!strings.Contains(err.Error(), "schema version") || !strings.Contains(err.Error(), "make the file, its -wal and -shm and their directory writable") {
					t.Fatalf("a read-only database that needs a migration: %v", err)
				}
				return
			}
			base, stop = startRun(t, args)
			defer stop()
			res, err := browser.Get(base + "/settings")
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != http.StatusOK {
				t.Fatalf("the session made before, on the read-only start: %d %s", res.StatusCode, res.Header.Get("Location"))
			}
			for _, w := range []struct{ path, email string }{{"/login", "demo@doorman.test"}, {"/logout", ""}} {
				form := url.Values{}
				if w.email != "" {
					form = url.Values{"email": {w.email}, "password": {"doorman-demo"}}
				}
				status, body := post(base, w.path, form)
				if status != http.StatusServiceUnavailable || !strings.Contains(body, "save changes right now, so nothing was changed") {
					t.Fatalf("POST %s on the read-only start: %d\n%s", w.path, status, body)
				}
			}
			// Still signed in: the sign-out was not half done.
			if res, err := browser.Get(base + "/settings"); err != nil || res.StatusCode != http.StatusOK {
				t.Fatalf("after the refused sign-out: %v %v", res, err)
			} else {
				res.Body.Close()
			}
		})
	}
}

// immutable makes files (and directories) read-only even for root, and
// proves it, until the test's cleanup.
func immutable(t *testing.T, files ...string) {
	t.Helper()
	t.Cleanup(func() {
		for _, f := range files {
			if out, err := exec.Command("chattr", "-i", f).CombinedOutput(); err != nil {
				t.Errorf("chattr -i %s: %v: %s", f, err, bytes.TrimSpace(out))
			}
		}
	})
	for _, f := range files {
		if out, err := exec.Command("chattr", "+i", f).CombinedOutput(); err != nil {
			t.Fatalf("chattr +i %s: %v: %s\nthis test needs a filesystem with the immutable attribute (ext4, xfs, btrfs) and CAP_LINUX_IMMUTABLE (root, as make test runs)", f, err, bytes.TrimSpace(out))
		}
		probe := f
		if st, err := os.Stat(f); err == nil && st.IsDir() {
			probe = filepath.Join(f, "probe")
			w, err := os.Create(probe)
			if err == nil {
				w.Close()
				t.Fatalf("chattr +i %s succeeded but it still takes new files", f)
			} else if !errors.Is(err, syscall.EPERM) {
				t.Fatalf("create in %s after chattr +i: %v, want EPERM", f, err)
			}
			continue
		}
		if w, err := os.OpenFile(probe, os.O_WRONLY, 0); err == nil {
			w.Close()
			t.Fatalf("chattr +i %s succeeded but it still opens for writing", f)
		} else if !errors.Is(err, syscall.EPERM) {
			t.Fatalf("open %s for writing after chattr +i: %v, want EPERM", f, err)
		}
	}
}
