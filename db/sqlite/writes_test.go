package sqlite

import (
	"context"
	"testing"

	"doorman/db"
	"doorman/db/storetest"
)

// TestWriteTransactions checks that writes are counted and reads are not.
func TestWriteTransactions(t *testing.T) {
	s, ctx, now := openTest(t, db.Options{}), context.Background(), storetest.T0
	u, err := s.CreateUser(ctx, "a@example.com", "x", false, now)
	if err != nil {
		t.Fatal(err)
	}
	before := s.WriteTransactions()
	if _, err := s.CreateSession(ctx, storetest.Session("aaaaaaaaaaaaaaaa", u.ID, now), 0, u.Epoch); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.SessionWithUser(ctx, "aaaaaaaaaaaaaaaa"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ListSessions(ctx, u.ID, now); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RevokeOtherSessions(ctx, u.ID, "aaaaaaaaaaaaaaaa", db.ReasonRevokedOthers, now); err != nil {
		t.Fatal(err)
	}
	if got := s.WriteTransactions() - before; got != 2 {
		t.Fatalf("%d write transactions, want 2 (create, revoke)", got)
	}
}
