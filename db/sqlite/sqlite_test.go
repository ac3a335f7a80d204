package sqlite

import (
	"context"
	"path/filepath"
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
