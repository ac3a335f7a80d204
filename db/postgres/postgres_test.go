package postgres

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"doorman/db"
	"doorman/db/postgres/pgtest"
	"doorman/db/storetest"
)

func openTest(t *testing.T, opts db.Options) *Store {
	t.Helper()
	s, err := Open(context.Background(), pgtest.NewDatabase(t), opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestConformance runs the store-neutral suite, unchanged, on PostgreSQL.
func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T, opts db.Options) db.Store { return openTest(t, opts) })
}

// TestConcurrentStartsMigrateOnce: several instances starting at once on an
// empty database apply each migration exactly once (the advisory lock).
func TestConcurrentStartsMigrateOnce(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := Open(context.Background(), dsn, db.Options{})
			if err != nil {
				errs <- err
				return
			}
			s.Close()
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("a concurrent start failed: %v", err)
	}
	s, err := Open(context.Background(), dsn, db.Options{Existing: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var n int
	if err := s.pool.QueryRow(context.Background(), `SELECT COUNT(*) FROM schema_migrations`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	files, _ := migrationFiles()
	if n != len(files) {
		t.Fatalf("schema_migrations has %d rows, want %d", n, len(files))
	}
}

// TestReadOnlyAndExistingNeverMigrate: operator opens refuse a database
// that is not Doorman's, and read-only never writes.
func TestReadOnlyAndExistingNeverMigrate(t *testing.T) {
	ctx := context.Background()
	empty := pgtest.NewDatabase(t)
	for _, mode := range []db.Options{{ReadOnly: true}, {Existing: true}} {
		if s, err := Open(ctx, empty, mode); err == nil || !strings.Contains(err.Error(), "not a Doorman database") {
			if s != nil {
				s.Close()
			}
			t.Fatalf("%+v on an empty database: %v", mode, err)
		}
	}
	// A normal start migrates it; read-only then opens it and refuses writes.
	s, err := Open(ctx, empty, db.Options{AllowSharedFileMode: true, ReadOnly: false, Existing: false})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	ro, err := Open(ctx, empty, db.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if _, err := ro.CreateUser(ctx, "a@example.com", "h", false, storetest.T0); err == nil {
		t.Fatal("a read-only store wrote")
	}
}

// TestStartsOnAReadOnlyServer: a default open of a database that takes no
// writes (default_transaction_read_only, as on a standby) serves it
// read-only when the schema is current (reads work, a write fails with an
// error IsUnavailable makes a 503), and refuses it, saying why, when a
// migration is needed (review issue 21, bug 3).
func TestStartsOnAReadOnlyServer(t *testing.T) {
	ctx := context.Background()
	for _, current := range []bool{true, false} {
		dsn := pgtest.NewDatabase(t)
		s, err := Open(ctx, dsn, db.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.CreateUser(ctx, "a@example.com", "h", false, storetest.T0); err != nil {
			t.Fatal(err)
		}
		if !current {
			if _, err := s.Pool().Exec(ctx, `DELETE FROM schema_migrations WHERE version = (SELECT MAX(version) FROM schema_migrations)`); err != nil {
				t.Fatal(err)
			}
		}
		var name string
		if err := s.Pool().QueryRow(ctx, `SELECT current_database()`).Scan(&name); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Pool().Exec(ctx, `ALTER DATABASE `+pgx.Identifier{name}.Sanitize()+` SET default_transaction_read_only = on`); err != nil {
			t.Fatal(err)
		}
		s.Close()

		ro, err := Open(ctx, dsn, db.Options{})
		if !current {
			if err == nil || !strings.Contains(err.Error(), "schema version") || !strings.Contains(err.Error(), "takes no writes") {
				if ro != nil {
					ro.Close()
				}
				t.Fatalf("a read-only server with a migration to make: %v", err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("a read-only server with a current schema: %v", err)
		}
		if ro.ReadOnlyCause() == nil {
			t.Fatal("no ReadOnlyCause")
		}
		if u, err := ro.UserByEmail(ctx, "a@example.com"); err != nil || u.Email != "a@example.com" {
			t.Fatalf("a read: %+v %v", u, err)
		}
		if _, err := ro.AppSecret(ctx, "secret-key", 32, storetest.T0); err == nil {
			t.Fatal("a new app secret on a read-only server")
		}
		if _, err := ro.CreateUser(ctx, "b@example.com", "h", false, storetest.T0); err == nil || !IsUnavailable(err) {
			t.Fatalf("a write on a read-only server: %v, want one IsUnavailable recognises", err)
		}
		ro.Close()
	}
}

// TestWatch: another instance's endings arrive by LISTEN/NOTIFY, and after
// the listening connection is killed, Watch reconnects and resyncs.
func TestWatch(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	a, err := Open(context.Background(), dsn, db.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := Open(context.Background(), dsn, db.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	storetest.RunWatcher(t, a, b, func() {
		if _, err := b.pool.Exec(context.Background(),
			`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'doorman-listen' AND datname = current_database()`); err != nil {
			t.Fatal(err)
		}
	})
}

// TestNewerDatabaseRefused: a database a newer release migrated is refused.
func TestNewerDatabaseRefused(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.NewDatabase(t)
	s, err := Open(ctx, dsn, db.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.pool.Exec(ctx, `INSERT INTO schema_migrations VALUES (999, 0)`); err != nil {
		t.Fatal(err)
	}
	s.Close()
	for _, opts := range []db.Options{{}, {Existing: true}, {ReadOnly: true}} {
		if _, err := Open(ctx, dsn, opts); err == nil || !strings.Contains(err.Error(), "999") {
			t.Errorf("%+v: %v, want a refusal naming version 999", opts, err)
		}
	}
}

// TestNotifyCarriesStartsWithoutSecrets: a sign-in's NOTIFY names the new
// session by its id and its user's id only (no secret, address or device),
// and, past the limit, follows its evictions' NOTIFY; every payload stays
// under PostgreSQL's 8000 bytes, however many sessions one write ends.
func TestNotifyCarriesStartsWithoutSecrets(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, db.Options{})
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `LISTEN `+channel); err != nil {
		t.Fatal(err)
	}
	next := func() string {
		t.Helper()
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		n, err := conn.Conn().WaitForNotification(wctx)
		if err != nil {
			t.Fatalf("no notification: %v", err)
		}
		if len(n.Payload) >= 8000 {
			t.Fatalf("a payload of %d bytes", len(n.Payload))
		}
		return n.Payload
	}
	u, err := s.CreateUser(ctx, "secret-owner@example.com", "h", false, storetest.T0)
	if err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("x", 200)
	for i := range 60 {
		sess := storetest.Session(fmt.Sprintf("%s%03d", long, i), u.ID, storetest.T0)
		sess.SecretHash = []byte(fmt.Sprintf("SECRETHASH%03d", i))
		if _, err := s.CreateSession(ctx, sess, 0, u.Epoch); err != nil {
			t.Fatal(err)
		}
		p := next()
		var n notice
		if err := json.Unmarshal([]byte(p), &n); err != nil {
			t.Fatal(err)
		}
		if len(n.Ended) != 0 || len(n.Started) != 1 || n.Started[0] != (startedSession{UserID: u.ID, SessionID: sess.ID, At: storetest.T0.Unix()}) {
			t.Fatalf("a sign-in's NOTIFY: %s", p)
		}
		for _, secret := range []string{"SECRETHASH", base64.StdEncoding.EncodeToString(sess.SecretHash), hex.EncodeToString(sess.SecretHash),
			"secret-owner", sess.IP, sess.UserAgent, sess.DeviceLabel, sess.Location} {
			if strings.Contains(p, secret) {
				t.Fatalf("a sign-in's NOTIFY carries %q: %s", secret, p)
			}
		}
	}
	// Ending 60 sessions with long ids takes several payloads, each under
	// the limit, sent before the last sign-in's.
	last := storetest.Session("last", u.ID, storetest.T0)
	if _, err := s.CreateSession(ctx, last, 1, u.Epoch); err != nil {
		t.Fatal(err)
	}
	ended, payloads := 0, 0
	for ended < 60 {
		var n notice
		if err := json.Unmarshal([]byte(next()), &n); err != nil {
			t.Fatal(err)
		}
		if len(n.Started) != 0 {
			t.Fatalf("the start arrived after %d of 60 endings", ended)
		}
		ended += len(n.Ended)
		payloads++
	}
	var n notice
	if err := json.Unmarshal([]byte(next()), &n); err != nil {
		t.Fatal(err)
	}
	if len(n.Ended) != 0 || len(n.Started) != 1 || n.Started[0].SessionID != "last" {
		t.Fatalf("after the endings: %+v", n)
	}
	if payloads < 2 {
		t.Fatalf("60 endings of long ids in %d payload(s)", payloads)
	}
}

// TestFailedEndingsChangeNothing: a trigger makes the ending of tokens
// fail after the sessions were ended in the same transaction; nothing
// changes (storetest.RunFailedEndings).
func TestFailedEndingsChangeNothing(t *testing.T) {
	storetest.RunFailedEndings(t, func(t *testing.T, opts db.Options) db.Store { return openTest(t, opts) },
		func(t *testing.T, s db.Store) {
			if _, err := s.(*Store).pool.Exec(context.Background(), `CREATE FUNCTION tokens_fail() RETURNS trigger LANGUAGE plpgsql
				AS $$ BEGIN RAISE EXCEPTION 'injected failure'; END $$;
				CREATE TRIGGER tokens_fail BEFORE UPDATE ON tokens FOR EACH ROW EXECUTE FUNCTION tokens_fail()`); err != nil {
				t.Fatal(err)
			}
		})
}
