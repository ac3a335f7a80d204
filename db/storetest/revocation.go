package storetest

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"doorman/db"
)

// The revocation rule's store half (SECURITY.md, "One rule"): whatever can
// later act for the account is minted under the epoch its request read, and
// is checked against the account's epoch (and address) in the transaction
// that uses it.

// testPendingEmailChanges: one change of address is pending at a time (a new
// one voids the earlier), the list shows only changes that could still
// complete, and cancelling (by the cancel link or from a session) voids them,
// refusing another user's cancel link.
func testPendingEmailChanges(t *testing.T, f *fixture) {
	a, b := f.user(t, "a@example.com"), f.user(t, "b@example.com")
	change := func(id, to string, at time.Time) {
		l := Link(id, a.ID, db.LinkChangeEmail, f.userRow(t, a.ID).Epoch, at, 24*time.Hour)
		l.Email, l.AccountEmail = to, "a@example.com"
		if err := f.s.QueueMail(f.ctx, Mail("m-"+id, a.ID, db.MailChangeEmail, at, l)); err != nil {
			t.Fatalf("QueueMail(%s): %v", id, err)
		}
	}
	change("c1", "one@example.net", T0)
	change("c2", "two@example.net", T0.Add(time.Minute))
	now := T0.Add(2 * time.Minute)
	list, err := f.s.PendingEmailChanges(f.ctx, a.ID, now)
	if err != nil || len(list) != 1 || list[0].ID != "c2" || list[0].Email != "two@example.net" {
		t.Fatalf("PendingEmailChanges = %+v, %v; want only the newest, c2", list, err)
	}
	if _, err := f.s.ConfirmEmail(f.ctx, "c1", now); !errors.Is(err, db.ErrLinkUsed) {
		t.Errorf("confirming a change replaced by a newer one: %v, want ErrLinkUsed", err)
	}
	if list, err := f.s.PendingEmailChanges(f.ctx, b.ID, now); err != nil || len(list) != 0 {
		t.Errorf("b's pending changes = %+v, %v; want none", list, err)
	}
	if o, err := f.s.SecurityOverview(f.ctx, a.ID, now, T0, 5); err != nil || len(o.EmailChanges) != 1 || o.EmailChanges[0].ID != "c2" {
		t.Errorf("SecurityOverview's EmailChanges = %+v, %v", o.EmailChanges, err)
	}

	// Another user's cancel link cancels nothing of a's.
	bCancel := Link("b-cancel", b.ID, db.LinkCancelEmailChange, b.Epoch, T0, 24*time.Hour)
	bCancel.AccountEmail = "b@example.com"
	f.link(t, bCancel)
	before := f.dump(t)
	if n, err := f.s.CancelEmailChanges(f.ctx, a.ID, "b-cancel", now); !errors.Is(err, db.ErrNotFound) && !errors.Is(err, db.ErrLinkUsed) {
		t.Errorf("cancelling a's change with b's link: %d, %v; want ErrNotFound or ErrLinkUsed", n, err)
	}
	f.unchanged(t, before, "a cancel with another user's link")

	// a's own cancel link: used once, voids the pending change.
	aCancel := Link("a-cancel", a.ID, db.LinkCancelEmailChange, f.userRow(t, a.ID).Epoch, T0, 24*time.Hour)
	aCancel.AccountEmail = "a@example.com"
	f.link(t, aCancel)
	if n, err := f.s.CancelEmailChanges(f.ctx, a.ID, "a-cancel", now); err != nil || n != 1 {
		t.Fatalf("CancelEmailChanges by link = %d, %v; want 1", n, err)
	}
	if _, err := f.s.ConfirmEmail(f.ctx, "c2", now); !errors.Is(err, db.ErrLinkUsed) {
		t.Errorf("confirming a cancelled change: %v, want ErrLinkUsed", err)
	}
	if n, err := f.s.CancelEmailChanges(f.ctx, a.ID, "a-cancel", now); !errors.Is(err, db.ErrLinkUsed) {
		t.Errorf("a cancel link used twice: %d, %v; want ErrLinkUsed", n, err)
	}

	// From a session (no link): every pending change of the user's only.
	change("c3", "three@example.net", now)
	bl := Link("b-change", b.ID, db.LinkChangeEmail, b.Epoch, now, 24*time.Hour)
	bl.Email, bl.AccountEmail = "b-new@example.net", "b@example.com"
	f.link(t, bl)
	if n, err := f.s.CancelEmailChanges(f.ctx, a.ID, "", now); err != nil || n != 1 {
		t.Fatalf("CancelEmailChanges = %d, %v; want 1", n, err)
	}
	if list, err := f.s.PendingEmailChanges(f.ctx, b.ID, now); err != nil || len(list) != 1 {
		t.Errorf("a's cancel touched b's change: %+v, %v", list, err)
	}

	// A reset voids a pending change: it is no longer listed, and its
	// link no longer confirms.
	change("c4", "four@example.net", now)
	if _, err := f.s.RevokeAllSessions(f.ctx, a.ID, db.ReasonRevokedAll, "", now); err != nil {
		t.Fatal(err)
	}
	if list, err := f.s.PendingEmailChanges(f.ctx, a.ID, now); err != nil || len(list) != 0 {
		t.Errorf("pending changes after a reset = %+v, %v; want none", list, err)
	}
	if _, err := f.s.ConfirmEmail(f.ctx, "c4", now); !errors.Is(err, db.ErrLinkUsed) {
		t.Errorf("confirming a change asked before a reset: %v, want ErrLinkUsed", err)
	}
	if u := f.userRow(t, a.ID); u.Email != "a@example.com" {
		t.Errorf("a's address = %s, want unchanged", u.Email)
	}
}

// testApprovalsDieWithReset: a device code approved before a reset (sign out
// everywhere, a password change, disabling) redeems nothing: no token, the
// request is denied, and the error is ErrSignInsReset. Approvals waiting are
// listed and can be withdrawn by their approver only.
func testApprovalsDieWithReset(t *testing.T, f *fixture) {
	a, b := f.user(t, "a@example.com"), f.user(t, "b@example.com")
	f.app(t, "cli")
	now := T0.Add(time.Minute)
	redeem := func(code string, userID int64, tokenID string) error {
		tok := Token(tokenID, userID, db.TokenApp, now)
		tok.ClientID = "cli"
		return f.s.RedeemDeviceAuthorization(f.ctx, f.deviceRow(t, code).DeviceCodeHash, tok)
	}
	resets := []struct {
		name  string
		reset func() error
	}{
		{"sign out everywhere", func() error {
			_, err := f.s.RevokeAllSessions(f.ctx, a.ID, db.ReasonRevokedAll, "", now)
			return err
		}},
		{"sign out all other sessions", func() error {
			_, err := f.s.RevokeOtherSessions(f.ctx, a.ID, "none", db.ReasonRevokedOthers, now)
			return err
		}},
		{"disable and enable", func() error {
			if _, err := f.s.SetUserDisabled(f.ctx, a.ID, true, now); err != nil {
				return err
			}
			_, err := f.s.SetUserDisabled(f.ctx, a.ID, false, now)
			return err
		}},
		{"an account recovery", func() error {
			_, err := f.s.RecoverAccount(f.ctx, db.Recovery{UserID: a.ID, PasswordHash: "new", Reason: db.ReasonPasswordReset, Now: now})
			return err
		}},
	}
	for i, r := range resets {
		code := fmt.Sprintf("RESET%03d", i)
		f.device(t, Device(code, "cli", T0))
		if err := f.s.DecideDeviceAuthorization(f.ctx, code, a.ID, f.userRow(t, a.ID).Epoch, true, now); err != nil {
			t.Fatalf("%s: approve: %v", r.name, err)
		}
		if list, err := f.s.PendingApprovals(f.ctx, a.ID, now); err != nil || len(list) != 1 || list[0].UserCode != code {
			t.Fatalf("%s: PendingApprovals before = %+v, %v", r.name, list, err)
		}
		if err := r.reset(); err != nil {
			t.Fatalf("%s: %v", r.name, err)
		}
		if list, err := f.s.PendingApprovals(f.ctx, a.ID, now); err != nil || len(list) != 0 {
			t.Errorf("%s: PendingApprovals after = %+v, %v; want none", r.name, list, err)
		}
		if err := redeem(code, a.ID, "t-"+code); !errors.Is(err, db.ErrSignInsReset) {
			t.Errorf("%s: redeeming an approval from before it: %v, want ErrSignInsReset", r.name, err)
		}
		if _, _, err := f.s.TokenWithUser(f.ctx, "t-"+code); !errors.Is(err, db.ErrNotFound) {
			t.Errorf("%s: a void approval made a token: %v", r.name, err)
		}
		if d := f.deviceRow(t, code); d.Status != db.DeviceDenied {
			t.Errorf("%s: the void request's status = %s, want denied", r.name, d.Status)
		}
		if err := redeem(code, a.ID, "t2-"+code); !errors.Is(err, db.ErrNotFound) {
			t.Errorf("%s: redeeming it again: %v, want ErrNotFound", r.name, err)
		}
	}

	// An approval made with an epoch read before a reset is born void.
	stale := f.userRow(t, a.ID).Epoch
	if _, err := f.s.RevokeAllSessions(f.ctx, a.ID, db.ReasonRevokedAll, "", now); err != nil {
		t.Fatal(err)
	}
	f.device(t, Device("STALEAPP", "cli", T0))
	if err := f.s.DecideDeviceAuthorization(f.ctx, "STALEAPP", a.ID, stale, true, now); err != nil {
		t.Fatal(err)
	}
	if err := redeem("STALEAPP", a.ID, "t-stale"); !errors.Is(err, db.ErrSignInsReset) {
		t.Errorf("redeeming an approval made in flight across a reset: %v, want ErrSignInsReset", err)
	}

	// Withdrawing: the approver's own waiting approval only.
	f.device(t, Device("WITHDRAW", "cli", T0))
	if err := f.s.DecideDeviceAuthorization(f.ctx, "WITHDRAW", a.ID, f.userRow(t, a.ID).Epoch, true, now); err != nil {
		t.Fatal(err)
	}
	before := f.dump(t)
	for _, c := range []struct {
		user int64
		code string
	}{{b.ID, "WITHDRAW"}, {a.ID, "NOSUCHAP"}, {a.ID, "STALEAPP"}} {
		if err := f.s.CancelApproval(f.ctx, c.user, c.code, now); !errors.Is(err, db.ErrNotFound) {
			t.Errorf("CancelApproval(user %d, %s): %v, want ErrNotFound", c.user, c.code, err)
		}
	}
	f.unchanged(t, before, "refused withdrawals")
	if err := f.s.CancelApproval(f.ctx, a.ID, "WITHDRAW", now); err != nil {
		t.Fatalf("CancelApproval: %v", err)
	}
	if err := redeem("WITHDRAW", a.ID, "t-withdrawn"); !errors.Is(err, db.ErrNotFound) {
		t.Errorf("redeeming a withdrawn approval: %v, want ErrNotFound", err)
	}

	// An approval of the current epoch redeems as before.
	f.device(t, Device("GOODCODE", "cli", T0))
	if err := f.s.DecideDeviceAuthorization(f.ctx, "GOODCODE", a.ID, f.userRow(t, a.ID).Epoch, true, now); err != nil {
		t.Fatal(err)
	}
	if err := redeem("GOODCODE", a.ID, "t-good"); err != nil {
		t.Errorf("redeeming a current approval: %v", err)
	}
}

// testCreateTokenChecksEpoch: a token made by a request that read the
// account before a reset is refused (ErrSignInsReset) and nothing is written;
// so is one for a disabled account.
func testCreateTokenChecksEpoch(t *testing.T, f *fixture) {
	a := f.user(t, "a@example.com")
	stale := a.Epoch
	f.session(t, Session("keep", a.ID, T0))
	if _, err := f.s.RevokeOtherSessions(f.ctx, a.ID, "keep", db.ReasonRevokedOthers, T0); err != nil {
		t.Fatal(err)
	}
	// The session check reads the epoch a request mints under.
	if _, u, err := f.s.SessionWithUser(f.ctx, "keep"); err != nil || u.Epoch != f.userRow(t, a.ID).Epoch || u.Epoch == stale {
		t.Fatalf("SessionWithUser's user epoch = %d, %v; want the current %d", u.Epoch, err, f.userRow(t, a.ID).Epoch)
	}
	before := f.dump(t)
	if err := f.s.CreateToken(f.ctx, Token("t-stale", a.ID, db.TokenPersonal, T0), stale, Mail("m-stale", a.ID, db.MailTokenCreated, T0)); !errors.Is(err, db.ErrSignInsReset) {
		t.Errorf("CreateToken with the epoch from before a reset: %v, want ErrSignInsReset", err)
	}
	f.unchanged(t, before, "a CreateToken from before a reset")
	if _, err := f.s.SetUserDisabled(f.ctx, a.ID, true, T0); err != nil {
		t.Fatal(err)
	}
	before = f.dump(t)
	if err := f.s.CreateToken(f.ctx, Token("t-disabled", a.ID, db.TokenPersonal, T0), f.userRow(t, a.ID).Epoch); !errors.Is(err, db.ErrSignInsReset) {
		t.Errorf("CreateToken for a disabled user: %v, want ErrSignInsReset", err)
	}
	f.unchanged(t, before, "a refused CreateToken")
	if _, err := f.s.SetUserDisabled(f.ctx, a.ID, false, T0); err != nil {
		t.Fatal(err)
	}
	if err := f.s.CreateToken(f.ctx, Token("t-ok", a.ID, db.TokenPersonal, T0), f.userRow(t, a.ID).Epoch, Mail("m-ok", a.ID, db.MailTokenCreated, T0)); err != nil {
		t.Fatalf("CreateToken: %v", err)
	}
	if _, err := f.s.OutboxMail(f.ctx, messageID("m-ok")); err != nil {
		t.Errorf("the token's mail was not queued with it: %v", err)
	}
}

// testUndoDropsLaterTwoFactor: undoing an email change turns off a second
// factor turned on at or after DropTwoFactorSince, and keeps one from before.
func testUndoDropsLaterTwoFactor(t *testing.T, f *fixture) {
	a, b := f.user(t, "a@example.com"), f.user(t, "b@example.com")
	f.enableTwoFactor(t, a.ID, 100, "1", "2") // enabled at T0
	f.enableTwoFactor(t, b.ID, 100, "1", "2")
	now := T0.Add(time.Hour)
	if _, err := f.s.RecoverAccount(f.ctx, db.Recovery{UserID: a.ID, PasswordHash: "new", DropTwoFactorSince: T0, Reason: db.ReasonEmailUndone, Now: now}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.s.TwoFactor(f.ctx, a.ID); !errors.Is(err, db.ErrNotFound) {
		t.Errorf("two-factor turned on at the change survived its undo: %v", err)
	}
	if _, err := f.s.RecoverAccount(f.ctx, db.Recovery{UserID: b.ID, PasswordHash: "new", DropTwoFactorSince: T0.Add(time.Second), Reason: db.ReasonEmailUndone, Now: now}); err != nil {
		t.Fatal(err)
	}
	if tf := f.twoFactor(t, b.ID); !tf.Enabled() {
		t.Error("two-factor turned on before the change was dropped by its undo")
	}
}
