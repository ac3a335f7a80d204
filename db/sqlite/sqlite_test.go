package sqlite

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"doorman/db"
	"doorman/db/storetest"
)

func openTest(t *testing.T, opts db.Options) *Store {
	t.Helper()
	s, err := Open(context.Background(), filepath.Join(t.TempDir(), "test.db"), opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestConformance runs the store-neutral suite on SQLite.
func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T, opts db.Options) db.Store { return openTest(t, opts) })
}

func TestMigrateFromEmptyAndAgain(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.db")
	for i := range 2 { // the second Open must find nothing to do
		s, err := Open(context.Background(), path, db.Options{})
		if err != nil {
			t.Fatalf("Open #%d: %v", i, err)
		}
		var n int
		if err := s.read.QueryRow(`SELECT COUNT(*) FROM schema_migrations`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		files, _ := migrations.ReadDir("migrations")
		if n != len(files) {
			t.Fatalf("schema_migrations has %d rows, want %d", n, len(files))
		}
		for _, table := range []string{"users", "sessions", "app_secrets", "login_failures"} {
			if _, err := s.read.Exec(`SELECT COUNT(*) FROM ` + table); err != nil {
				t.Errorf("table %s: %v", table, err)
			}
		}
		s.Close()
	}
}

// TestUniqueViolationByCode checks that a duplicate email is recognised by
// the driver's error code.
func TestUniqueViolationByCode(t *testing.T) {
	s, ctx := openTest(t, db.Options{}), context.Background()
	if _, err := s.CreateUser(ctx, "a@example.com", "h", false, storetest.T0); err != nil {
		t.Fatal(err)
	}
	_, err := s.write.ExecContext(ctx, `INSERT INTO users (email, password_hash, created_at) VALUES ('a@example.com', 'h', 0)`)
	if !isUniqueViolation(err) {
		t.Fatalf("duplicate insert: %v is not a unique violation", err)
	}
	_, err = s.write.ExecContext(ctx, `INSERT INTO users (email, password_hash) VALUES ('b@example.com', 'h')`)
	if err == nil || isUniqueViolation(err) {
		t.Fatalf("NOT NULL failure %v taken for a unique violation", err)
	}
}

// TestFilesArePrivate: a new database and its -wal/-shm are 0600, and a
// database others can read is refused unless that is allowed.
func TestFilesArePrivate(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "p.db")
	s, err := Open(ctx, path, db.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateUser(ctx, "a@example.com", "h", false, storetest.T0); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if m := fi.Mode().Perm(); m != 0o600 {
			t.Errorf("%s has mode %04o, want 0600", p, m)
		}
	}
	s.Close()
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(ctx, path, db.Options{}); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("a world-readable database opened: %v", err)
	}
	if _, err := Open(ctx, path, db.Options{ReadOnly: true}); err == nil {
		t.Fatal("a world-readable database opened read-only")
	}
	s, err = Open(ctx, path, db.Options{AllowSharedFileMode: true})
	if err != nil {
		t.Fatalf("with AllowSharedFileMode: %v", err)
	}
	s.Close()
}

// TestReadOnlyAndExistingNeverCreateOrMigrate: operator opens refuse what is
// not a current Doorman database, and change nothing.
func TestReadOnlyAndExistingNeverCreateOrMigrate(t *testing.T) {
	ctx, dir := context.Background(), t.TempDir()
	good := filepath.Join(dir, "good.db")
	s, err := Open(ctx, good, db.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateUser(ctx, "a@example.com", "h", false, storetest.T0); err != nil {
		t.Fatal(err)
	}
	s.Close()
	empty := filepath.Join(dir, "empty.db")
	junk := filepath.Join(dir, "junk.db")
	other := filepath.Join(dir, "other.db")
	old := filepath.Join(dir, "old.db")
	for p, body := range map[string][]byte{empty: nil, junk: []byte("not a database at all, just text\n")} {
		if err := os.WriteFile(p, body, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// Another program's SQLite database, and a Doorman one from before the
	// newest migration.
	for p, ddl := range map[string]string{
		other: `CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)`,
		old:   `CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL); INSERT INTO schema_migrations VALUES (1, 0)`,
	} {
		raw, err := sql.Open("sqlite", "file:"+p)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := raw.Exec(ddl); err != nil {
			t.Fatal(err)
		}
		raw.Close()
		os.Chmod(p, 0o600)
	}
	sums := map[string][]byte{}
	for _, p := range []string{empty, junk, other, old} {
		sums[p], _ = os.ReadFile(p)
	}
	for _, mode := range []db.Options{{ReadOnly: true}, {Existing: true}} {
		for _, p := range []string{empty, junk, other} {
			if s, err := Open(ctx, p, mode); err == nil || !strings.Contains(err.Error(), "not a Doorman database") {
				if s != nil {
					s.Close()
				}
				t.Errorf("%+v %s: %v, want 'not a Doorman database'", mode, filepath.Base(p), err)
			}
		}
		if _, err := Open(ctx, old, mode); err == nil || !strings.Contains(err.Error(), "schema version 1") {
			t.Errorf("%+v old.db: %v, want a version error", mode, err)
		}
		if _, err := Open(ctx, filepath.Join(dir, "missing.db"), mode); err == nil {
			t.Errorf("%+v opened a missing file", mode)
		}
	}
	for p, before := range sums {
		if after, _ := os.ReadFile(p); string(after) != string(before) {
			t.Errorf("%s was changed by a read-only or existing open", filepath.Base(p))
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "missing.db")); err == nil {
		t.Error("a missing database was created")
	}
	// A good database: read-only reads and refuses writes; existing writes.
	ro, err := Open(ctx, good, db.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	if u, err := ro.UserByEmail(ctx, "a@example.com"); err != nil || u.Email != "a@example.com" {
		t.Fatalf("read-only read: %+v %v", u, err)
	}
	if _, err := ro.CreateUser(ctx, "b@example.com", "h", false, storetest.T0); err == nil {
		t.Fatal("a read-only store wrote")
	}
	ro.Close()
	rw, err := Open(ctx, good, db.Options{Existing: true})
	if err != nil {
		t.Fatal(err)
	}
	defer rw.Close()
	if _, err := rw.CreateUser(ctx, "b@example.com", "h", false, storetest.T0); err != nil {
		t.Fatalf("existing store write: %v", err)
	}
}

// TestWatch: an operator command's endings, written by another handle on
// the same file, reach the server's Watch.
func TestWatch(t *testing.T) {
	path := filepath.Join(t.TempDir(), "w.db")
	a, err := Open(context.Background(), path, db.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := Open(context.Background(), path, db.Options{Existing: true})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	storetest.RunWatcher(t, a, b, nil)
}

// TestUpgradeFromThePreviousRelease: a database as the previous release
// left it (migrations 0001–0003, rows in their shape) upgrades cleanly: its
// users and sessions live on; the failed sign-ins it stored as typed are
// gone (0004).
func TestUpgradeFromThePreviousRelease(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "old.db")
	raw, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Exec(`CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	for i, name := range []string{"0001_init.sql", "0002_security.sql", "0003_list_index.sql"} {
		v := i + 1
		body, err := migrations.ReadFile("migrations/" + name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := raw.Exec(string(body)); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if _, err := raw.Exec(`INSERT INTO schema_migrations VALUES (?, 0)`, v); err != nil {
			t.Fatal(err)
		}
	}
	now := storetest.T0
	s := storetest.Session("oldsession000001", 1, now)
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`INSERT INTO users (id, email, password_hash, created_at, is_demo) VALUES (1, 'old@example.com', 'hash', ?, 0)`, []any{now.Unix()}},
		{`INSERT INTO sessions (id, secret_hash, user_id, created_at, last_seen_at, idle_expires_at, absolute_expires_at, ip, user_agent,
			device_label, device_kind, location, location_short, auth_method, reauth_at) VALUES (?, ?, 1, ?, ?, ?, ?, '', '', 'Chrome on macOS', 'desktop', '', '', 'password', ?)`,
			[]any{s.ID, s.SecretHash, now.Unix(), now.Unix(), s.IdleExpiresAt.Unix(), s.AbsoluteExpiresAt.Unix(), now.Unix()}},
		{`INSERT INTO login_failures (email, ip, at) VALUES ('Tr0ub4dor&3-MyRealPassword', '192.0.2.1', ?)`, []any{now.Unix()}},
	} {
		if _, err := raw.Exec(q.sql, q.args...); err != nil {
			t.Fatal(err)
		}
	}
	raw.Close()
	os.Chmod(path, 0o600)

	st, err := Open(ctx, path, db.Options{})
	if err != nil {
		t.Fatalf("upgrading: %v", err)
	}
	defer st.Close()
	sess, u, err := st.SessionWithUser(ctx, s.ID)
	if err != nil || !sess.Alive(now) || u.Email != "old@example.com" || u.Epoch != 0 {
		t.Fatalf("after the upgrade: %+v %+v %v", sess, u, err)
	}
	if _, err := st.CreateSession(ctx, storetest.Session("newsession000001", 1, now), 0, u.Epoch); err != nil {
		t.Fatalf("a sign-in after the upgrade: %v", err)
	}
	if d, _ := st.Dump(ctx); strings.Contains(d, "Tr0ub4dor") {
		t.Fatal("the typed password survived the upgrade")
	}
}

// TestNewerDatabaseRefused: a database a newer release migrated is refused
// with a clear message, and left as it was.
func TestNewerDatabaseRefused(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "new.db")
	s, err := Open(ctx, path, db.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.write.ExecContext(ctx, `INSERT INTO schema_migrations VALUES (999, 0)`); err != nil {
		t.Fatal(err)
	}
	s.Close()
	before, _ := os.ReadFile(path)
	for _, opts := range []db.Options{{}, {Existing: true}, {ReadOnly: true}} {
		if _, err := Open(ctx, path, opts); err == nil || !strings.Contains(err.Error(), "999") {
			t.Errorf("%+v: %v, want a refusal naming version 999", opts, err)
		}
	}
	if after, _ := os.ReadFile(path); string(after) != string(before) {
		t.Error("a refused open changed the file")
	}
}
