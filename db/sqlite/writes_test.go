package sqlite

import (
	"context"
	"testing"
	"time"

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

// TestIdleLogoutClaimDoesNotWrite: the back-channel worker's poll, when
// nothing is due, is a read and takes no write transaction; when a
// delivery is due, the claim is one.
func TestIdleLogoutClaimDoesNotWrite(t *testing.T) {
	s, ctx, now := openTest(t, db.Options{}), context.Background(), storetest.T0
	u, err := s.CreateUser(ctx, "a@example.com", "x", false, now)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CreateApp(ctx, db.App{ClientID: "wiki", Name: "Wiki", CreatedAt: now,
		RedirectURIs: []string{"https://wiki.example/cb"}, BackchannelLogoutURI: "https://wiki.example/bcl"}); err != nil {
		t.Fatal(err)
	}
	if err := s.GrantConsent(ctx, u.ID, "wiki", []string{"openid"}, now); err != nil {
		t.Fatal(err)
	}
	claim := func(want int) {
		t.Helper()
		before := s.WriteTransactions()
		got, err := s.ClaimLogoutDeliveries(ctx, now, time.Minute, 10)
		if err != nil || len(got) != want {
			t.Fatalf("ClaimLogoutDeliveries = %v, %v; want %d", got, err, want)
		}
		writes := uint64(0)
		if want > 0 {
			writes = 1
		}
		if n := s.WriteTransactions() - before; n != writes {
			t.Fatalf("claiming %d: %d write transactions, want %d", want, n, writes)
		}
	}
	claim(0)
	if _, err := s.DisconnectApp(ctx, u.ID, "wiki", now); err != nil {
		t.Fatal(err)
	}
	claim(1)
	claim(0) // leased
}

// TestFailedEndingsChangeNothing: a trigger makes the ending of tokens
// fail after the sessions were ended in the same transaction; nothing
// changes (storetest.RunFailedEndings).
func TestFailedEndingsChangeNothing(t *testing.T) {
	storetest.RunFailedEndings(t, func(t *testing.T, opts db.Options) db.Store { return openTest(t, opts) },
		func(t *testing.T, s db.Store) {
			if _, err := s.(*Store).write.ExecContext(context.Background(), `CREATE TRIGGER tokens_fail BEFORE UPDATE ON tokens
				BEGIN SELECT RAISE(ABORT, 'injected failure'); END`); err != nil {
				t.Fatal(err)
			}
		})
}
