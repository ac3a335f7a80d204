package account_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"doorman/account"
	"doorman/db"
	"doorman/db/sqlite"
	"doorman/db/storetest"
	"doorman/sessiontoken"
)

// EndSession is the one way a session is ended by id (the Security page,
// the API, the operator): an id that is not a live session of this user's
// (malformed, unknown, another user's, ended already) changes nothing and
// is db.ErrNotFound; a real one ends, logged once with who and why.
func TestEndSession(t *testing.T) {
	ctx := context.Background()
	now := time.Unix(1_800_000_000, 0)
	store, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "doorman.db"), db.Options{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	var logs bytes.Buffer
	svc := account.New(store, slog.New(slog.NewTextHandler(&logs, nil)), func() time.Time { return now })

	var users [2]db.User
	var ids [2]string
	for i, email := range []string{"alice@example.com", "bob@example.com"} {
		if users[i], err = store.CreateUser(ctx, email, "hash", false, now); err != nil {
			t.Fatal(err)
		}
		ids[i] = sessiontoken.New().ID
		if _, err := store.CreateSession(ctx, storetest.Session(ids[i], users[i].ID, now), 0, users[i].Epoch); err != nil {
			t.Fatal(err)
		}
	}
	before, err := store.Dump(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"", "x", strings.Repeat("a", sessiontoken.IDLen+1), "../" + ids[0], sessiontoken.New().ID, ids[1]} {
		if _, err := svc.EndSession(ctx, users[0].ID, id, db.ReasonRevoked, "test"); !errors.Is(err, db.ErrNotFound) {
			t.Errorf("EndSession(%q) = %v, want db.ErrNotFound", id, err)
		}
	}
	if after, err := store.Dump(ctx); err != nil || after != before {
		t.Fatalf("a refused EndSession changed the database (err %v)", err)
	}
	if logs.Len() != 0 {
		t.Fatalf("a refused EndSession logged:\n%s", logs.String())
	}

	ended, err := svc.EndSession(ctx, users[0].ID, ids[0], db.ReasonRevoked, "test")
	if err != nil || ended.ID != ids[0] || ended.RevokedBy != "test" || ended.RevokedReason != db.ReasonRevoked {
		t.Fatalf("EndSession = %+v, %v", ended, err)
	}
	if n := strings.Count(logs.String(), "session revoked"); n != 1 || !strings.Contains(logs.String(), ids[0]) {
		t.Fatalf("want one log line naming the session, got:\n%s", logs.String())
	}
	if _, err := svc.EndSession(ctx, users[0].ID, ids[0], db.ReasonRevoked, "test"); !errors.Is(err, db.ErrNotFound) {
		t.Fatalf("ending it again: %v, want db.ErrNotFound", err)
	}
}
