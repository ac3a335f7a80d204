package demo

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"doorman/db"
	"doorman/password"
	"doorman/storage"
)

func TestSeedIsRepeatable(t *testing.T) {
	ctx := context.Background()
	store, err := storage.Open(ctx, filepath.Join(t.TempDir(), "demo.db"), db.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	hasher := password.NewHasher(password.Params{Memory: 64, Time: 1, Threads: 1}, 1)
	now := time.Now()
	for range 2 { // a restart replaces the samples instead of adding more
		if err := Seed(ctx, store, hasher, 28*24*time.Hour, 90*24*time.Hour, now); err != nil {
			t.Fatal(err)
		}
	}
	user, err := store.UserByEmail(ctx, Email)
	if err != nil || !user.IsDemo {
		t.Fatalf("demo user = %+v, %v", user, err)
	}
	if ok, _ := hasher.Verify(ctx, user.PasswordHash, Password); !ok {
		t.Fatal("demo password does not verify")
	}
	list, err := store.ListSessions(ctx, user.ID, now)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != len(samples) {
		t.Fatalf("%d sessions, want %d", len(list), len(samples))
	}
	kinds := map[string]bool{}
	for _, s := range list {
		kinds[s.DeviceKind] = true
		if s.DeviceLabel == "" || s.Location == "" || !s.Alive(now) {
			t.Errorf("sample session %+v", s)
		}
	}
	if !kinds["desktop"] || !kinds["phone"] || !kinds["tablet"] {
		t.Errorf("device kinds %v, want desktop, phone and tablet", kinds)
	}
}
