package handlers_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"doorman/apptest"
	"doorman/db"
	"doorman/db/postgres/pgtest"
	"doorman/operator"
	"doorman/storage"
)

// TestBackupAndRestore: `doorman backup` copies a live SQLite database
// while the server writes; a server started on the copy has the same
// accounts and sessions, and what was revoked stays revoked.
func TestBackupAndRestore(t *testing.T) {
	if apptest.UsePostgres() {
		t.Skip("doorman backup is SQLite's; PostgreSQL's pg_dump is TestPgDumpRestore")
	}
	app := newTestApp(t)
	desktop, phone := app.client(uaWindowsChrome, ipBerlin), app.client(uaIPhone, ipLondon)
	desktop.signup("alice@example.com", pw)
	phone.login("alice@example.com", pw)
	expectRedirect(t, desktop.post("/settings/security/sessions/"+phone.currentID()+"/revoke", nil), "/settings/security")

	// The database as it stands once the outbox worker has sent what the
	// sign-ins queued (dump waits for that): nothing writes after it.
	live := app.dump()
	out := filepath.Join(t.TempDir(), "copy.db")
	var msg bytes.Buffer
	if err := operator.Run(context.Background(), []string{"backup", "-db", app.dbPath, "-out", out}, func(string) string { return "" },
		&msg, slog.New(slog.NewTextHandler(io.Discard, nil)), app.clock); err != nil {
		t.Fatalf("backup: %v", err)
	}
	if fi, err := os.Stat(out); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("the copy: %v %v", fi, err)
	}
	// The copy holds what the live database holds.
	cp, err := storage.Open(context.Background(), out, db.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	copied, _ := cp.Dump(context.Background())
	cp.Close()
	if copied != live {
		t.Fatalf("the copy differs:\n%s\nvs\n%s", copied, live)
	}
	// A second backup to the same file is refused (nothing overwritten).
	if err := operator.Run(context.Background(), []string{"backup", "-db", app.dbPath, "-out", out}, func(string) string { return "" },
		io.Discard, slog.New(slog.NewTextHandler(io.Discard, nil)), app.clock); err == nil {
		t.Fatal("backup overwrote an existing file")
	}

	// Restore: a server on the copy, with the key ring (restoring a
	// backup restores the secret key file too: the signing keys are sealed
	// with it). Cookies go to any port of the host.
	restored := newTestAppWith(t, apptest.Options{DSN: out, SecretBox: app.app.SecretBox})
	desktop.app, phone.app = restored, restored
	expectStatus(t, desktop.get("/settings"), http.StatusOK)
	expectRedirect(t, phone.get("/settings"), "/login?next=%2Fsettings")
	restored.client(uaMacFirefox, ipTokyo).login("alice@example.com", pw)
}

// TestPgDumpRestore: PostgreSQL's backup is pg_dump (docs/DEPLOY.md): a dump
// of a live database restored into an empty one serves the same accounts.
func TestPgDumpRestore(t *testing.T) {
	source := pgtest.NewDatabase(t)
	app := newTestAppWith(t, apptest.Options{DSN: source})
	desktop := app.client(uaWindowsChrome, ipBerlin)
	desktop.signup("alice@example.com", pw)
	bins, _ := filepath.Glob("/usr/lib/postgresql/*/bin/pg_dump")
	if len(bins) == 0 {
		t.Fatal("no pg_dump")
	}
	bin := filepath.Dir(bins[len(bins)-1])
	// The database once the outbox worker has sent the sign-up's mail
	// (dump waits for that): nothing writes after it, and the restored
	// server's worker finds nothing queued.
	live := app.dump()
	dump := filepath.Join(t.TempDir(), "doorman.dump")
	if out, err := exec.Command(filepath.Join(bin, "pg_dump"), "--format=custom", "--file", dump, "--dbname", source).CombinedOutput(); err != nil {
		t.Fatalf("pg_dump: %v\n%s", err, out)
	}
	target := pgtest.NewDatabase(t)
	if out, err := exec.Command(filepath.Join(bin, "pg_restore"), "--no-owner", "--dbname", target, dump).CombinedOutput(); err != nil {
		t.Fatalf("pg_restore: %v\n%s", err, out)
	}
	restored := newTestAppWith(t, apptest.Options{DSN: target, SecretBox: app.app.SecretBox})
	if copied := restored.dump(); live != copied {
		t.Fatalf("the restored database differs:\n%s\nvs\n%s", copied, live)
	}
	desktop.app = restored
	expectStatus(t, desktop.get("/settings"), http.StatusOK)
	if !strings.Contains(restored.dump(), "alice@example.com") {
		t.Fatal("alice is not in the restored database")
	}
}
