package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"doorman/db"
)

// "Sign out everywhere", "Sign out all other sessions" with the apps, and a
// password change that ends the apps end sessions, tokens and OpenID
// Connect grants, and owe the apps their logouts, in ONE transaction: a
// failure anywhere leaves every one of them alive (and the answer "try
// again" is the whole truth), never sessions ended and tokens alive.

// endingsSetUp gives a three sessions (a1, a2, a3), a personal token ta,
// and two sign-ins to wiki (which takes back-channel logouts): g2 from a2
// and g3, offline, from a3; and b a session b1 and a token tb.
func endingsSetUp(t *testing.T, f *fixture) (a, b db.User) {
	t.Helper()
	a, b = f.user(t, "a@example.com"), f.user(t, "b@example.com")
	for _, id := range []string{"a1", "a2", "a3"} {
		f.session(t, Session(id, a.ID, T0))
	}
	f.session(t, Session("b1", b.ID, T0))
	f.oidcApp(t, "wiki", "https://wiki.example/bcl")
	f.oidcSignIn(t, a, "a2", "wiki", "g2", false, T0)
	f.oidcSignIn(t, a, "a3", "wiki", "g3", true, T0)
	f.token(t, Token("ta", a.ID, db.TokenPersonal, T0))
	f.token(t, Token("tb", b.ID, db.TokenPersonal, T0))
	return a, b
}

// testEndingsTogether: each of the three is one call that ends the
// sessions, the tokens and the grants and writes the apps' logouts; a
// password change whose last statement fails (its mail's Message-ID is
// taken) leaves all of it as it was.
func testEndingsTogether(t *testing.T, f *fixture) {
	a, b := endingsSetUp(t, f)
	now := T0.Add(time.Minute)
	if err := f.s.QueueMail(f.ctx, Mail("taken", a.ID, db.MailPasswordChanged, now)); err != nil {
		t.Fatal(err)
	}
	before := f.dump(t)
	if _, _, err := f.s.ChangePassword(f.ctx, a.ID, "a1", "hash-2", []byte("secret-2"), true, true, now,
		Mail("taken", a.ID, db.MailPasswordChanged, now)); !errors.Is(err, db.ErrConflict) {
		t.Fatalf("a password change whose mail cannot be queued: %v, want ErrConflict", err)
	}
	f.unchanged(t, before, "a password change that failed at its end")

	ended, tokens, err := f.s.ChangePassword(f.ctx, a.ID, "a1", "hash-2", []byte("secret-2"), true, true, now,
		Mail("changed", a.ID, db.MailPasswordChanged, now))
	if err != nil || sortedIDs(ended) != "a2,a3" || tokenIDs(tokens) != "ta" || tokens[0].RevokedReason != db.ReasonPassword ||
		tokens[0].RevokedBy != "a1" {
		t.Fatalf("ChangePassword = %s, %+v, %v", ids(ended), tokens, err)
	}
	if got := f.live(t, a.ID, now); got != "a1" {
		t.Fatalf("a's sessions after the change: %s", got)
	}
	if got := f.liveTokens(t, a.ID, "", now); got != "" {
		t.Fatalf("a's tokens after the change: %s", got)
	}
	f.expectGrants(t, "password changed", now, map[string]string{"g2-rt": db.ReasonSessionEnded, "g3-rt": db.ReasonPassword})
	if got := f.deliveries(t, a.ID); got != "wiki/,wiki/a2,wiki/a3" {
		t.Fatalf("logouts owed after the change: %s", got)
	}
	f.queued(t, "changed", a.ID, "ChangePassword")

	// "Sign out all other sessions" with the apps: a1 stays.
	f.session(t, Session("a4", a.ID, now))
	f.oidcSignIn(t, a, "a4", "wiki", "g4", true, now)
	f.token(t, Token("ta2", a.ID, db.TokenPersonal, now))
	epoch := f.userRow(t, a.ID).Epoch
	ended, tokens, err = f.s.RevokeSessionsAndTokens(f.ctx, a.ID, "a1", db.ReasonRevokedOthers, "a1", now)
	if err != nil || ids(ended) != "a4" || tokenIDs(tokens) != "ta2" || ended[0].RevokedBy != "a1" ||
		tokens[0].RevokedReason != db.ReasonRevokedOthers {
		t.Fatalf("RevokeSessionsAndTokens(keep a1) = %s, %s, %v", ids(ended), tokenIDs(tokens), err)
	}
	if got := f.live(t, a.ID, now); got != "a1" {
		t.Fatalf("a's sessions after ending the others: %s", got)
	}
	if f.userRow(t, a.ID).Epoch == epoch {
		t.Fatal("ending the others with the apps did not reset the sign-ins")
	}
	f.expectGrants(t, "others ended", now, map[string]string{"g4-rt": db.ReasonRevokedOthers})

	// "Sign out everywhere".
	f.token(t, Token("ta3", a.ID, db.TokenPersonal, now))
	f.rec.Take()
	ended, tokens, err = f.s.RevokeSessionsAndTokens(f.ctx, a.ID, "", db.ReasonRevokedAll, "a1", now)
	if err != nil || ids(ended) != "a1" || tokenIDs(tokens) != "ta3" {
		t.Fatalf("RevokeSessionsAndTokens(everywhere) = %s, %s, %v", ids(ended), tokenIDs(tokens), err)
	}
	if ev := f.rec.Take(); len(ev) != 1 || ev[0].SessionID != "a1" {
		t.Fatalf("events of sign out everywhere: %+v", ev)
	}
	if got := f.live(t, a.ID, now); got != "" {
		t.Fatalf("a's sessions after sign out everywhere: %s", got)
	}
	// b is untouched throughout.
	if got := f.live(t, b.ID, now); got != "b1" {
		t.Fatalf("b's sessions: %s", got)
	}
	if got := f.liveTokens(t, b.ID, "", now); got != "tb" {
		t.Fatalf("b's tokens: %s", got)
	}
}

// RunFailedEndings checks, on a store whose statements the dialect's test
// can make fail, that "sign out everywhere", "sign out all other sessions"
// with the apps and a password change that ends the apps change nothing
// at all when the ending of the tokens fails, after the sessions were
// ended in the same transaction. failTokens makes every later UPDATE of a
// token fail (a trigger, say).
func RunFailedEndings(t *testing.T, newStore NewStore, failTokens func(t *testing.T, s db.Store)) {
	for _, tc := range []struct {
		name string
		end  func(f *fixture, userID int64, now time.Time) error
	}{
		{"Everywhere", func(f *fixture, userID int64, now time.Time) error {
			_, _, err := f.s.RevokeSessionsAndTokens(f.ctx, userID, "", db.ReasonRevokedAll, "a1", now)
			return err
		}},
		{"OthersWithTheApps", func(f *fixture, userID int64, now time.Time) error {
			_, _, err := f.s.RevokeSessionsAndTokens(f.ctx, userID, "a1", db.ReasonRevokedOthers, "a1", now)
			return err
		}},
		{"PasswordChange", func(f *fixture, userID int64, now time.Time) error {
			_, _, err := f.s.ChangePassword(f.ctx, userID, "a1", "hash-2", []byte("secret-2"), true, true, now)
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := &Recorder{}
			s := newStore(t, db.Options{Events: rec, Now: func() time.Time { return T0 }})
			f := &fixture{s: s, rec: rec, ctx: context.Background()}
			a, _ := endingsSetUp(t, f)
			now := T0.Add(time.Minute)
			failTokens(t, s)
			before := f.dump(t)
			rec.Take()
			if err := tc.end(f, a.ID, now); err == nil {
				t.Fatal("the ending succeeded though its tokens could not be ended")
			}
			f.unchanged(t, before, "an ending whose tokens failed")
			if ev := rec.Take(); len(ev) != 0 {
				t.Fatalf("a failed ending reported %+v", ev)
			}
			if list, err := f.s.ListSessions(f.ctx, a.ID, now); err != nil || sortedIDs(list) != "a1,a2,a3" {
				t.Fatalf("a's sessions after the failed ending: %s, %v", ids(list), err)
			}
			f.expectGrants(t, "failed ending", now, map[string]string{"g2-rt": "live", "g3-rt": "live"})
		})
	}
}
