// Package pgtest gives each test a fresh, empty PostgreSQL database on the
// server named by DOORMAN_TEST_POSTGRES (a postgres:// URL; `make test`
// starts a throwaway server with scripts/pgtest.sh and sets it). The
// database is dropped when the test ends.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// EnvDSN names the variable holding the test server's DSN.
const EnvDSN = "DOORMAN_TEST_POSTGRES"

// EnvRequire, when set, makes a missing server a failure instead of a skip
// (`make test` sets it, so CI can never pass without PostgreSQL).
const EnvRequire = "DOORMAN_REQUIRE_POSTGRES"

// Available reports whether a test server is configured.
func Available() bool { return os.Getenv(EnvDSN) != "" }

// NewDatabase creates an empty database for t and returns its DSN. Without a
// server it skips t (or fails it, under EnvRequire).
func NewDatabase(t testing.TB) string {
	t.Helper()
	base := os.Getenv(EnvDSN)
	if base == "" {
		if os.Getenv(EnvRequire) != "" {
			t.Fatalf("%s is not set but %s is: PostgreSQL tests cannot run", EnvDSN, EnvRequire)
		}
		t.Skipf("no PostgreSQL server: set %s (make test starts one with scripts/pgtest.sh)", EnvDSN)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("pgtest: connect %s: %v", base, err)
	}
	defer admin.Close(ctx)
	b := make([]byte, 6)
	rand.Read(b)
	name := "doorman_t_" + hex.EncodeToString(b)
	if _, err := admin.Exec(ctx, `CREATE DATABASE `+name); err != nil {
		t.Fatalf("pgtest: create database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, base)
		if err != nil {
			t.Errorf("pgtest: connect to drop %s: %v", name, err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, `DROP DATABASE IF EXISTS `+name+` WITH (FORCE)`); err != nil {
			t.Errorf("pgtest: drop %s: %v", name, err)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("pgtest: %s: %v", EnvDSN, err)
	}
	u.Path = "/" + name
	return u.String()
}
