package storetest

import (
	"errors"
	"slices"
	"testing"
	"time"

	"doorman/db"
)

// verify marks the user's address verified at at, through a verify link.
func (f *fixture) verify(t *testing.T, u db.User, at time.Time) {
	t.Helper()
	l := Link("verify-"+u.Email, u.ID, db.LinkVerifyEmail, f.userRow(t, u.ID).Epoch, at, time.Hour)
	l.Email = u.Email
	f.link(t, l)
	if _, err := f.s.ConfirmEmail(f.ctx, l.ID, at); err != nil {
		t.Fatalf("ConfirmEmail(%s): %v", l.ID, err)
	}
}

// testUserIDs: every user's id, in order, and nothing else.
func testUserIDs(t *testing.T, f *fixture) {
	if ids, err := f.s.UserIDs(f.ctx); err != nil || len(ids) != 0 {
		t.Fatalf("UserIDs of an empty store = %v, %v", ids, err)
	}
	a, b, c := f.user(t, "a@example.com"), f.user(t, "b@example.com"), f.user(t, "c@example.com")
	if _, err := f.s.DeleteUser(f.ctx, b.ID, T0); err != nil {
		t.Fatal(err)
	}
	ids, err := f.s.UserIDs(f.ctx)
	if err != nil || !slices.Equal(ids, []int64{a.ID, c.ID}) {
		t.Fatalf("UserIDs = %v, %v; want [%d %d]", ids, err, a.ID, c.ID)
	}
}

// testRecoverAccountOperatorReset: the operator's reset (`doorman users
// reset`, `users reset-2fa`) in one write: every session and token ended,
// two-factor off, the sign-ins reset (a pending second-factor sign-in and a
// reset link die), each recorded with the operator's reason, and the reset
// itself recorded; another user untouched. Without two-factor, nothing
// says it was turned off.
func testRecoverAccountOperatorReset(t *testing.T, f *fixture) {
	h := newHistory(f)
	a, b, s := recoverySetup(t, f)
	f.enableTwoFactor(t, a.ID, 100, "1", "2")
	f.enableTwoFactor(t, b.ID, 100, "1")
	f.pending(t, "p-a", a.ID, T0.Add(time.Hour))
	h.skip(t, a.ID)
	h.skip(t, b.ID)
	epoch := f.userRow(t, a.ID).Epoch
	now := T0.Add(5 * time.Minute)
	f.rec.Take()
	got, err := f.s.RecoverAccount(f.ctx, db.Recovery{UserID: a.ID, EndOthers: true, EndTokens: true, DisableTwoFactor: true,
		RecordReset: true, Reason: db.ReasonOperator, By: "operator", Now: now})
	if err != nil {
		t.Fatal(err)
	}
	if sortedIDs(got.Ended) != "a1,a2" || tokenIDs(got.Tokens) != "ta" || !got.TwoFactorOff {
		t.Fatalf("Recovered: ended %s, tokens %s, two-factor off %v; want a1,a2 / ta / true", ids(got.Ended), tokenIDs(got.Tokens), got.TwoFactorOff)
	}
	if live := f.live(t, a.ID, now); live != "" {
		t.Fatalf("a's live sessions after the reset: %s", live)
	}
	if tok := f.tokenRow(t, "ta"); tok.Alive(now) || tok.RevokedReason != db.ReasonOperator || tok.RevokedBy != "operator" {
		t.Fatalf("a's token: %+v", tok)
	}
	if _, err := f.s.TwoFactor(f.ctx, a.ID); !errors.Is(err, db.ErrNotFound) {
		t.Fatalf("a's two-factor after the reset: %v, want ErrNotFound", err)
	}
	if u := f.userRow(t, a.ID); u.Epoch == epoch || u.PasswordHash != a.PasswordHash {
		t.Fatalf("a after the reset: %+v (epoch was %d)", u, epoch)
	}
	if _, err := f.s.UseLinkToken(f.ctx, "reset", db.LinkPasswordReset, now); !errors.Is(err, db.ErrLinkUsed) {
		t.Errorf("a reset link from before the reset: %v, want ErrLinkUsed", err)
	}
	if _, err := f.s.CompletePendingSignIn(f.ctx, "p-a", Session("s-p", a.ID, now), 0); !errors.Is(err, db.ErrSignInsReset) {
		t.Errorf("a pending sign-in from before the reset: %v, want ErrSignInsReset", err)
	}
	h.expect(t, "the operator's reset", a.ID,
		endedEvent(s["a1"], db.ReasonOperator, "operator", now), endedEvent(s["a2"], db.ReasonOperator, "operator", now),
		tokenEnded(Token("ta", a.ID, db.TokenPersonal, T0), db.ReasonOperator, "operator", now),
		db.SecurityEvent{UserID: a.ID, Kind: db.EventTwoFactorOff, At: now, Reason: db.ReasonOperator},
		db.SecurityEvent{UserID: a.ID, Kind: db.EventAccountReset, At: now, Reason: db.ReasonOperator, By: "operator"})
	if f.live(t, b.ID, now) != "b1" || !f.tokenRow(t, "tb").Alive(now) || !f.twoFactor(t, b.ID).Enabled() {
		t.Error("a's reset changed b")
	}
	h.expect(t, "a's reset, in b's history", b.ID)
	ended := map[string]int{}
	for _, e := range f.rec.Take() {
		if e.Kind == db.SessionEnded && e.Reason == db.ReasonOperator && e.By == "operator" {
			ended[e.SessionID]++
		} else {
			t.Errorf("reported %+v", e)
		}
	}
	if len(ended) != 2 || ended["a1"] != 1 || ended["a2"] != 1 {
		t.Errorf("reported %v; want a1 and a2 once each", ended)
	}

	// Again, with nothing left to end: the reset is still recorded (and
	// the epoch moves), but nothing says two-factor was turned off.
	later := now.Add(time.Minute)
	got, err = f.s.RecoverAccount(f.ctx, db.Recovery{UserID: a.ID, EndOthers: true, EndTokens: true, DisableTwoFactor: true,
		RecordReset: true, Reason: db.ReasonOperator, By: "operator", Now: later})
	if err != nil || len(got.Ended) != 0 || len(got.Tokens) != 0 || got.TwoFactorOff {
		t.Fatalf("a second reset: %+v, %v", got, err)
	}
	h.expect(t, "a second reset", a.ID, db.SecurityEvent{UserID: a.ID, Kind: db.EventAccountReset, At: later, Reason: db.ReasonOperator, By: "operator"})
}

// testRecoverAccountUnverifiedTwoFactor: two-factor records whether the
// address was verified when it was turned on; a recovery that clears only
// a second factor set up with an unverified address clears that one (and
// records it), and refuses, changing nothing, when the second factor was
// set up with a verified address.
func testRecoverAccountUnverifiedTwoFactor(t *testing.T, f *fixture) {
	h := newHistory(f)
	a, b := f.user(t, "a@example.com"), f.user(t, "b@example.com")
	f.enableTwoFactor(t, a.ID, 100, "1")
	f.verify(t, b, T0)
	f.enableTwoFactor(t, b.ID, 100, "1")
	if tf := f.twoFactor(t, a.ID); !tf.UnverifiedAddress {
		t.Fatalf("turned on with an unverified address: %+v", tf)
	}
	if tf := f.twoFactor(t, b.ID); tf.UnverifiedAddress {
		t.Fatalf("turned on with a verified address: %+v", tf)
	}
	// Verifying later does not make a's second factor one set up by the
	// address's owner.
	f.verify(t, a, T0.Add(time.Minute))
	if tf := f.twoFactor(t, a.ID); !tf.UnverifiedAddress {
		t.Fatalf("after verifying: %+v", tf)
	}
	h.skip(t, a.ID)
	h.skip(t, b.ID)
	now := T0.Add(5 * time.Minute)
	for _, u := range []db.User{a, b} {
		f.link(t, Link("reset-"+u.Email, u.ID, db.LinkPasswordReset, f.userRow(t, u.ID).Epoch, T0, 30*time.Minute))
	}
	reset := func(u db.User) db.Recovery {
		return db.Recovery{UserID: u.ID, LinkID: "reset-" + u.Email, LinkPurpose: db.LinkPasswordReset, EndOthers: true, EndTokens: true,
			PasswordHash: "hash-new", VerifyEmail: true, ClearUnverifiedTwoFactor: true, Reason: db.ReasonPasswordReset, Now: now,
			Mail: []db.Mail{Mail("off-"+u.Email, u.ID, db.MailTwoFactorOff, now)}}
	}
	f.rec.Take()
	before := f.dump(t)
	if _, err := f.s.RecoverAccount(f.ctx, reset(b)); !errors.Is(err, db.ErrTwoFactorEnabled) {
		t.Fatalf("clearing a second factor set up with a verified address: %v, want ErrTwoFactorEnabled", err)
	}
	f.unchanged(t, before, "a refused clearing")
	got, err := f.s.RecoverAccount(f.ctx, reset(a))
	if err != nil || !got.TwoFactorOff {
		t.Fatalf("clearing a's second factor: %+v, %v", got, err)
	}
	if _, err := f.s.TwoFactor(f.ctx, a.ID); !errors.Is(err, db.ErrNotFound) {
		t.Fatalf("a's two-factor after the reset: %v, want ErrNotFound", err)
	}
	f.queued(t, "off-a@example.com", a.ID, "RecoverAccount")
	h.expect(t, "a reset clearing two-factor", a.ID,
		db.SecurityEvent{UserID: a.ID, Kind: db.EventPasswordChanged, At: now, Reason: db.ReasonPasswordReset},
		db.SecurityEvent{UserID: a.ID, Kind: db.EventTwoFactorOff, At: now, Reason: db.ReasonPasswordReset})
	if !f.twoFactor(t, b.ID).Enabled() {
		t.Error("a's reset changed b's two-factor")
	}
	h.expect(t, "a's reset, in b's history", b.ID)

	// Without two-factor there is nothing to clear, and no error.
	f.link(t, Link("reset-again", a.ID, db.LinkPasswordReset, f.userRow(t, a.ID).Epoch, now, 30*time.Minute))
	r := reset(a)
	r.LinkID, r.Mail, r.Now = "reset-again", nil, now.Add(time.Minute)
	if got, err := f.s.RecoverAccount(f.ctx, r); err != nil || got.TwoFactorOff {
		t.Fatalf("a reset without two-factor: %+v, %v", got, err)
	}
}
