package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	_ "embed"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

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
	if !(&dialect{}).IsUniqueViolation(err) {
		t.Fatalf("duplicate insert: %v is not a unique violation", err)
	}
	_, err = s.write.ExecContext(ctx, `INSERT INTO users (email, password_hash) VALUES ('b@example.com', 'h')`)
	if err == nil || (&dialect{}).IsUniqueViolation(err) {
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

// previousRelease is a database as the previous release, v0.1.0, left it:
// made by that release's own code (its server with -demo, driven over HTTP:
// sign-ups, sign-ins, a sign-out, failed sign-ins) and dumped as SQL by
// `scripts/fixture.sh v0.1.0`. Run that again (or `make fixtures`) to
// refresh it; never edit it by hand.
//
//go:embed testdata/v0.1.0.sql
var previousRelease string

// fixtureSession is what the test remembers of a session row before the
// upgrade.
type fixtureSession struct {
	db.Session
	email string
}

// TestUpgradeFromThePreviousRelease: the database in testdata/v0.1.0.sql
// (made by the previous release itself, see previousRelease) upgrades
// cleanly: every user and session in it lives on unchanged (a session alive
// in the fixture is still alive, and found with its user's email), a new
// sign-in works, the failed sign-ins it stored as typed (one holds a password
// typed into the email field) are gone (0004), and schema_migrations reaches
// this version's latest migration.
//
// The fixture's times are those of the day it was made, so "alive" is
// judged at the fixture's own present (its latest recorded time), never at
// time.Now(): the test passes the same way whenever it runs.
func TestUpgradeFromThePreviousRelease(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "old.db")
	raw, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Exec(previousRelease); err != nil {
		t.Fatalf("loading the fixture: %v", err)
	}
	var version int
	var unix int64
	if err := raw.QueryRow(`SELECT MAX(version) FROM schema_migrations`).Scan(&version); err != nil || version != 3 {
		t.Fatalf("the fixture is at schema version %d (%v), want the previous release's 3", version, err)
	}
	// The fixture's present: the latest time anything in it happened.
	if err := raw.QueryRow(`SELECT MAX(t) FROM (
		SELECT MAX(created_at) AS t FROM users UNION ALL
		SELECT MAX(last_seen_at) FROM sessions UNION ALL SELECT MAX(revoked_at) FROM sessions UNION ALL
		SELECT MAX(at) FROM login_failures UNION ALL SELECT MAX(applied_at) FROM schema_migrations)`).Scan(&unix); err != nil {
		t.Fatal(err)
	}
	then := time.Unix(unix, 0)
	users := map[string]int64{} // email → id
	rows, err := raw.Query(`SELECT email, id FROM users`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var email string
		var id int64
		if err := rows.Scan(&email, &id); err != nil {
			t.Fatal(err)
		}
		users[email] = id
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	rows.Close()
	var sessions []fixtureSession
	rows, err = raw.Query(`SELECT s.id, s.secret_hash, s.user_id, s.created_at, s.last_seen_at, s.idle_expires_at,
		s.absolute_expires_at, s.revoked_at, s.revoked_reason, u.email FROM sessions s JOIN users u ON u.id = s.user_id ORDER BY s.rowid`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var s fixtureSession
		var created, seen, idle, abs int64
		var revokedAt sql.NullInt64
		var reason sql.NullString
		if err := rows.Scan(&s.ID, &s.SecretHash, &s.UserID, &created, &seen, &idle, &abs, &revokedAt, &reason, &s.email); err != nil {
			t.Fatal(err)
		}
		s.CreatedAt, s.LastSeenAt = time.Unix(created, 0), time.Unix(seen, 0)
		s.IdleExpiresAt, s.AbsoluteExpiresAt = time.Unix(idle, 0), time.Unix(abs, 0)
		if revokedAt.Valid {
			s.RevokedAt = time.Unix(revokedAt.Int64, 0)
		}
		s.RevokedReason = reason.String
		sessions = append(sessions, s)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	rows.Close()
	var failures int
	if err := raw.QueryRow(`SELECT COUNT(*) FROM login_failures WHERE email LIKE '%tr0ub4dor%'`).Scan(&failures); err != nil {
		t.Fatal(err)
	}
	alive, revoked := 0, 0
	for _, s := range sessions {
		if s.Alive(then) {
			alive++
		}
		if s.Revoked() {
			revoked++
		}
	}
	// A refreshed fixture must still hold what this test is about.
	if len(users) < 2 || alive < 2 || revoked < 1 || failures < 1 {
		t.Fatalf("the fixture holds %d users, %d live and %d revoked sessions, %d typed-password failures: run scripts/fixture.sh v0.1.0 again",
			len(users), alive, revoked, failures)
	}
	raw.Close()
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}

	st, err := Open(ctx, path, db.Options{Now: func() time.Time { return then }})
	if err != nil {
		t.Fatalf("upgrading: %v", err)
	}
	defer st.Close()

	count := func(table string) int {
		t.Helper()
		var n int
		if err := st.read.QueryRowContext(ctx, `SELECT COUNT(*) FROM `+table).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := count("users"); n != len(users) {
		t.Errorf("%d users after the upgrade, the fixture has %d", n, len(users))
	}
	if n := count("sessions"); n != len(sessions) {
		t.Errorf("%d sessions after the upgrade, the fixture has %d", n, len(sessions))
	}
	for email, id := range users {
		if u, err := st.UserByEmail(ctx, email); err != nil || u.ID != id || u.Epoch != 0 || u.Disabled() {
			t.Errorf("user %s after the upgrade: %+v %v", email, u, err)
		}
	}
	for _, want := range sessions {
		got, u, err := st.SessionWithUser(ctx, want.ID)
		switch {
		case err != nil:
			t.Errorf("session %s (%s): %v", want.ID, want.email, err)
		case u.Email != want.email || got.UserID != want.UserID || !bytes.Equal(got.SecretHash, want.SecretHash):
			t.Errorf("session %s: user %s (%d), want %s (%d), or its secret hash changed", want.ID, u.Email, got.UserID, want.email, want.UserID)
		case got.Alive(then) != want.Alive(then) || !got.ExpiresAt().Equal(want.ExpiresAt()) || !got.LastSeenAt.Equal(want.LastSeenAt) ||
			!got.RevokedAt.Equal(want.RevokedAt) || got.RevokedReason != want.RevokedReason:
			t.Errorf("session %s (%s) changed in the upgrade: alive %v → %v, expires %v → %v, last seen %v → %v, revoked %v %q → %v %q",
				want.ID, want.email, want.Alive(then), got.Alive(then), want.ExpiresAt(), got.ExpiresAt(), want.LastSeenAt, got.LastSeenAt,
				want.RevokedAt, want.RevokedReason, got.RevokedAt, got.RevokedReason)
		case got.RefusedCount != 0 || !got.LastRefusedAt.IsZero():
			// 0008's columns start at "never refused".
			t.Errorf("session %s: refused %d times, last %v, after the upgrade; want never", want.ID, got.RefusedCount, got.LastRefusedAt)
		}
	}
	if n := count("security_events"); n != 0 {
		t.Errorf("%d security events after the upgrade, want none", n)
	}

	// A new sign-in, for a user who had live sessions, just after the
	// fixture was made: it joins them in the user's list.
	var user db.User
	for _, s := range sessions {
		if s.Alive(then) {
			if user, err = st.UserByEmail(ctx, s.email); err != nil {
				t.Fatal(err)
			}
			break
		}
	}
	now, live := then.Add(time.Minute), 0
	for _, s := range sessions {
		if s.UserID == user.ID && s.Alive(now) {
			live++
		}
	}
	// 100 is the default limit (handlers.DefaultConfig): the sign-in counts
	// the user's live sessions over the upgraded rows first.
	evicted, err := st.CreateSession(ctx, storetest.Session("newsession000001", user.ID, now), 100, user.Epoch)
	if err != nil || len(evicted) != 0 {
		t.Fatalf("a sign-in after the upgrade: %v (evicted %d)", err, len(evicted))
	}
	if list, err := st.ListSessions(ctx, user.ID, now); err != nil || len(list) != live+1 {
		t.Errorf("%s's live sessions after a new sign-in: %d (%v), want %d", user.Email, len(list), err, live+1)
	}

	// 0004: the failures the old release stored as typed are gone.
	if n := count("login_failures"); n != 0 {
		t.Errorf("%d failed sign-ins survived the upgrade, want 0", n)
	}
	if d, _ := st.Dump(ctx); strings.Contains(strings.ToLower(d), "tr0ub4dor") {
		t.Fatal("the typed password survived the upgrade")
	}

	latest, err := latestMigration()
	if err != nil {
		t.Fatal(err)
	}
	if err := st.read.QueryRowContext(ctx, `SELECT MAX(version) FROM schema_migrations`).Scan(&version); err != nil || version != latest {
		t.Errorf("schema_migrations at version %d (%v), want %d", version, err, latest)
	}
	if files, _ := migrations.ReadDir("migrations"); count("schema_migrations") != len(files) {
		t.Errorf("schema_migrations has %d rows, want one per migration (%d)", count("schema_migrations"), len(files))
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

// TestHotReadsRefuseAnEndedContext: the page reads run without the
// driver's per-query cancellation watcher (hot), but a request already past
// its deadline still gets no query.
func TestHotReadsRefuseAnEndedContext(t *testing.T) {
	s := openTest(t, db.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	now := time.Now()
	if _, _, err := s.SessionWithUser(ctx, "aaaaaaaaaaaaaaaa"); !errors.Is(err, context.Canceled) {
		t.Errorf("SessionWithUser: %v, want context.Canceled", err)
	}
	if _, err := s.ListSessionSummaries(ctx, 1, now); !errors.Is(err, context.Canceled) {
		t.Errorf("ListSessionSummaries: %v", err)
	}
	if _, err := s.ListTokens(ctx, 1, "", now); !errors.Is(err, context.Canceled) {
		t.Errorf("ListTokens: %v", err)
	}
	if _, _, err := s.TokenWithUser(ctx, "aaaaaaaaaaaaaaaa"); !errors.Is(err, context.Canceled) {
		t.Errorf("TokenWithUser: %v", err)
	}
	if _, err := s.TwoFactor(ctx, 1); !errors.Is(err, context.Canceled) {
		t.Errorf("TwoFactor: %v", err)
	}
	if _, err := s.ListSecurityEvents(ctx, 1, 0, now.Add(-time.Hour), 5); !errors.Is(err, context.Canceled) {
		t.Errorf("ListSecurityEvents: %v", err)
	}
	// A live context still reads.
	if _, _, err := s.SessionWithUser(context.Background(), "aaaaaaaaaaaaaaaa"); !errors.Is(err, db.ErrNotFound) {
		t.Errorf("SessionWithUser, live context: %v, want ErrNotFound", err)
	}
}

// TestSecureDeleteOnEveryConnection: secure_delete is per connection, so it
// is set on the DSN; every connection of both pools has it, and a deleted
// row's bytes are gone from the database file once it is checkpointed.
func TestSecureDeleteOnEveryConnection(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "t.db")
	s, err := Open(ctx, path, db.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	check := func(pool string, conn *sql.Conn) {
		t.Helper()
		var on int
		if err := conn.QueryRowContext(ctx, `PRAGMA secure_delete`).Scan(&on); err != nil {
			t.Fatal(err)
		}
		if on != 1 {
			t.Fatalf("%s connection: secure_delete = %d, want 1", pool, on)
		}
	}
	w, err := s.write.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	check("writer", w)
	w.Close()
	// Hold several read connections at once, so each is a new one.
	var held []*sql.Conn
	for range 4 {
		c, err := s.read.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		check("reader", c)
		held = append(held, c)
	}
	for _, c := range held {
		c.Close()
	}

	// A mail's bodies, erased when it is sent and then pruned, leave no
	// trace in the file after a checkpoint.
	T0 := storetest.T0
	u, err := s.CreateUser(ctx, "a@example.com", "x", false, T0)
	if err != nil {
		t.Fatal(err)
	}
	marker := "erased-" + strings.Repeat("z", 64)
	m := db.Mail{MessageID: "m@doorman.test", UserID: u.ID, To: "a@example.com", Kind: db.MailPasswordChanged,
		Subject: "s", Text: marker, HTML: marker, CreatedAt: T0}
	if err := s.QueueMail(ctx, m); err != nil {
		t.Fatal(err)
	}
	if _, err := s.write.ExecContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		t.Fatal(err)
	}
	if raw, _ := os.ReadFile(path); !bytes.Contains(raw, []byte(marker)) {
		t.Fatal("the marker never reached the file: the test proves nothing")
	}
	got, err := s.ClaimMail(ctx, "w", T0, time.Minute, 1)
	if err != nil || len(got) != 1 {
		t.Fatalf("ClaimMail = %d, %v", len(got), err)
	}
	if err := s.MarkMailSent(ctx, got[0].ID, "w", T0); err != nil {
		t.Fatal(err)
	}
	if _, err := s.write.ExecContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw, []byte(marker)) {
		t.Fatal("an erased body is still in the database file")
	}
}

// TestMigrationMarksTwoFactorSetUpUnverified: migration 0012 marks the
// second factors of existing accounts that were turned on before the
// address was verified (never verified, or verified later), but not one
// turned on with a verified address, nor one whose address was changed
// since (its later verification is the new address's).
func TestMigrationMarksTwoFactorSetUpUnverified(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "test.db")
	s, err := Open(ctx, path, db.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Unix(1_700_000_000, 0)
	ids := map[string]int64{}
	for _, name := range []string{"never", "later", "before", "changed", "pending"} {
		u, err := s.CreateUser(ctx, name+"@example.com", "hash", false, t0)
		if err != nil {
			t.Fatal(err)
		}
		ids[name] = u.ID
		if err := s.StartTwoFactor(ctx, u.ID, "sealed", t0); err != nil {
			t.Fatal(err)
		}
		if name != "pending" {
			if err := s.EnableTwoFactor(ctx, u.ID, "sealed", 1, nil, t0.Add(time.Hour)); err != nil {
				t.Fatal(err)
			}
		}
	}
	// The database as the previous release left it: no column, and the
	// addresses verified (or not) at these times.
	for _, q := range []string{
		`ALTER TABLE two_factor DROP COLUMN unverified_address`,
		`DELETE FROM schema_migrations WHERE version = 12`,
	} {
		if _, err := s.write.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	verified := map[string]time.Time{"later": t0.Add(2 * time.Hour), "before": t0, "changed": t0.Add(3 * time.Hour)}
	for name, at := range verified {
		if _, err := s.write.ExecContext(ctx, `UPDATE users SET email_verified_at = ? WHERE id = ?`, at.Unix(), ids[name]); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.RecordSecurityEvent(ctx, db.SecurityEvent{UserID: ids["changed"], Kind: db.EventEmailChanged, At: t0.Add(3 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	s.Close()

	s, err = Open(ctx, path, db.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for name, want := range map[string]bool{"never": true, "later": true, "before": false, "changed": false, "pending": false} {
		tf, err := s.TwoFactor(ctx, ids[name])
		if err != nil {
			t.Fatal(err)
		}
		if tf.UnverifiedAddress != want {
			t.Errorf("%s: UnverifiedAddress %v, want %v", name, tf.UnverifiedAddress, want)
		}
	}
}
