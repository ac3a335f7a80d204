package operator_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"doorman/db"
	"doorman/db/postgres/pgtest"
	"doorman/operator"
	"doorman/sessiontoken"
	"doorman/storage"
)

// t0 is the clock every command of a test reads.
var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// env is one fresh, migrated database and the environment the commands
// run with.
type env struct {
	dsn   string
	store db.Store
	vars  map[string]string
	now   time.Time
}

// eachStore runs f on a fresh SQLite database and, when a test server is
// configured (DOORMAN_TEST_POSTGRES), on a fresh PostgreSQL database.
func eachStore(t *testing.T, f func(t *testing.T, e *env)) {
	t.Run("sqlite", func(t *testing.T) { f(t, newEnv(t, filepath.Join(t.TempDir(), "doorman.db"))) })
	t.Run("postgres", func(t *testing.T) { f(t, newEnv(t, pgtest.NewDatabase(t))) })
}

func newEnv(t *testing.T, dsn string) *env {
	e := &env{dsn: dsn, vars: map[string]string{}, now: t0}
	s, err := storage.Open(context.Background(), dsn, db.Options{Now: func() time.Time { return e.now }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	e.store = s
	return e
}

// run runs an operator command on the database, returning what it printed.
func (e *env) run(args ...string) (string, error) {
	var out bytes.Buffer
	err := operator.Run(context.Background(), append(args, "-db", e.dsn), func(k string) string { return e.vars[k] }, &out,
		slog.New(slog.NewTextHandler(io.Discard, nil)), func() time.Time { return e.now })
	return out.String(), err
}

// apps returns the registered apps.
func (e *env) apps(t *testing.T) []db.App {
	t.Helper()
	list, err := e.store.Apps(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return list
}

// TestSessionsListPrintsOneTimeFormat: `sessions list --user` prints its
// times as every command does (apiclient.TimeLayout: "1 Mar 2026, 12:00 UTC").
func TestSessionsListPrintsOneTimeFormat(t *testing.T) {
	eachStore(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		u, err := e.store.CreateUser(ctx, "alice@example.com", "hash", false, t0)
		if err != nil {
			t.Fatal(err)
		}
		tok := sessiontoken.New()
		if _, err := e.store.CreateSession(ctx, db.Session{ID: tok.ID, SecretHash: tok.Hash, UserID: u.ID,
			CreatedAt: t0.Add(-time.Hour), LastSeenAt: t0.Add(-5 * time.Minute), IdleExpiresAt: t0.Add(24 * time.Hour), AbsoluteExpiresAt: t0.Add(48 * time.Hour),
			IP: "192.0.2.1", DeviceLabel: "Firefox on Linux", Location: "Berlin, Germany", AuthMethod: "password"}, 0, u.Epoch); err != nil {
			t.Fatal(err)
		}
		out, err := e.run("sessions", "list", "--user", "alice@example.com")
		if err != nil {
			t.Fatal(err)
		}
		row := regexp.MustCompile(`(?m)^` + tok.ID + `\s+Firefox on Linux\s+Berlin, Germany\s+192\.0\.2\.1\s+1 Mar 2026, 11:55 UTC\s+1 Mar 2026, 11:00 UTC\s+2 Mar 2026, 12:00 UTC$`)
		if !row.MatchString(out) {
			t.Fatalf("sessions list:\n%s", out)
		}
	})
}
