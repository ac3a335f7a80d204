package postgres

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"doorman/db"
	"doorman/db/postgres/pgtest"
	"doorman/db/storetest"
)

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestClaimMailAcrossInstances: workers on three instances (pools of their
// own) drain the outbox at once; each mail is claimed by exactly one.
func TestClaimMailAcrossInstances(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.NewDatabase(t)
	var stores []*Store
	for range 3 {
		s, err := Open(ctx, dsn, db.Options{})
		must(t, err)
		defer s.Close()
		stores = append(stores, s)
	}
	const total = 300
	for i := range total {
		must(t, stores[0].QueueMail(ctx, storetest.Mail(fmt.Sprintf("c%d", i), 0, db.MailNoAccount, storetest.T0)))
	}
	var mu sync.Mutex
	seen := map[int64]string{}
	var wg sync.WaitGroup
	for w := range 9 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, name := stores[w%3], fmt.Sprintf("w%d", w)
			for {
				got, err := s.ClaimMail(ctx, name, storetest.T0, time.Hour, 7)
				if err != nil {
					t.Error(err)
					return
				}
				if len(got) == 0 {
					return
				}
				for _, m := range got {
					mu.Lock()
					if prev, ok := seen[m.ID]; ok {
						t.Errorf("mail %d claimed by %s and %s", m.ID, prev, name)
					}
					seen[m.ID] = name
					mu.Unlock()
					if err := s.MarkMailSent(ctx, m.ID, name, storetest.T0); err != nil {
						t.Error(err)
					}
				}
			}
		}()
	}
	wg.Wait()
	if len(seen) != total {
		t.Fatalf("claimed %d of %d", len(seen), total)
	}
}

// TestRecoverAccountRacesDoNotDeadlock: recoveries using links, a "sign out
// everywhere", a remembered place and the account's deletion, all at once
// on one user, finish (no deadlock: every write takes the user's row
// first) with only the refusals the contract names.
func TestRecoverAccountRacesDoNotDeadlock(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, db.Options{})
	t0 := storetest.T0
	for round := range 20 {
		u, err := s.CreateUser(ctx, fmt.Sprintf("r%d@example.com", round), "h", false, t0)
		must(t, err)
		var links []db.LinkToken
		for i := range 4 {
			links = append(links, storetest.Link(fmt.Sprintf("l%d-%d", round, i), u.ID, db.LinkSignInNotMe, 0, t0, time.Hour))
		}
		must(t, s.QueueMail(ctx, storetest.Mail(fmt.Sprintf("m%d", round), u.ID, db.MailNewSignIn, t0, links...)))
		for i := range 4 {
			_, err := s.CreateSession(ctx, storetest.Session(fmt.Sprintf("s%d-%d", round, i), u.ID, t0), 0, 0)
			must(t, err)
		}
		must(t, s.CreateToken(ctx, db.Token{ID: fmt.Sprintf("t%d", round), SecretHash: []byte("x"), UserID: u.ID,
			Kind: db.TokenPersonal, Name: "n", CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}, u.Epoch))
		var wg sync.WaitGroup
		run := func(f func() error) {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := f(); err != nil && !errors.Is(err, db.ErrNotFound) && !errors.Is(err, db.ErrLinkUsed) {
					t.Error(err)
				}
			}()
		}
		for i := range 4 {
			run(func() error {
				start := storetest.Session(fmt.Sprintf("n%d-%d", round, i), u.ID, t0)
				_, err := s.RecoverAccount(ctx, db.Recovery{UserID: u.ID, LinkID: fmt.Sprintf("l%d-%d", round, i),
					LinkPurpose: db.LinkSignInNotMe, EndSessionID: fmt.Sprintf("s%d-%d", round, i), EndOthers: i%2 == 0,
					EndTokens: true, ForgetDevice: "Chrome on macOS", ForgetNetwork: "81.2.0.0/16", Start: &start,
					Reason: db.ReasonNotMe, Now: t0,
					Mail: []db.Mail{storetest.Mail(fmt.Sprintf("n%d-%d", round, i), u.ID, db.MailAccountRecovered, t0)}})
				return err
			})
		}
		run(func() error { _, err := s.RevokeAllSessions(ctx, u.ID, db.ReasonRevokedAll, "", t0); return err })
		run(func() error { return s.RememberSignInPlace(ctx, u.ID, "d", "n", t0) })
		run(func() error { _, err := s.DeleteUser(ctx, u.ID, t0); return err })
		wg.Wait()
	}
}
