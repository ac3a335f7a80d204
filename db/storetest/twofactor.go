package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"doorman/db"
)

// codes returns recovery code hashes for tests, one per name.
func codes(names ...string) [][]byte {
	out := make([][]byte, len(names))
	for i, n := range names {
		out[i] = []byte("code-hash-" + n)
	}
	return out
}

// enableTwoFactor starts and confirms two-factor for the user: step is the
// last accepted step, and the recovery codes are those names.
func (f *fixture) enableTwoFactor(t *testing.T, userID, step int64, names ...string) {
	t.Helper()
	if err := f.s.StartTwoFactor(f.ctx, userID, fmt.Sprintf("sealed-%d", userID), T0); err != nil {
		t.Fatalf("StartTwoFactor(%d): %v", userID, err)
	}
	if err := f.s.EnableTwoFactor(f.ctx, userID, fmt.Sprintf("sealed-%d", userID), step, codes(names...), T0); err != nil {
		t.Fatalf("EnableTwoFactor(%d): %v", userID, err)
	}
}

// pending stores a pending sign-in of the user, made at T0, holding the
// user's current epoch (the password was checked just now).
func (f *fixture) pending(t *testing.T, id string, userID int64, expires time.Time) db.PendingSignIn {
	t.Helper()
	u, err := f.s.UserByID(f.ctx, userID)
	if err != nil {
		t.Fatal(err)
	}
	p := db.PendingSignIn{ID: id, SecretHash: []byte("pending-hash-" + id), UserID: userID, Epoch: u.Epoch,
		CreatedAt: T0, ExpiresAt: expires}
	if err := f.s.CreatePendingSignIn(f.ctx, p); err != nil {
		t.Fatalf("CreatePendingSignIn(%s): %v", id, err)
	}
	return p
}

// unchanged fails the test if the store's dump is no longer before, or if
// events were reported since the last Take.
func (f *fixture) unchanged(t *testing.T, before, what string) {
	t.Helper()
	if d, _ := f.s.Dump(f.ctx); d != before {
		t.Errorf("%s changed the store", what)
	}
	if ev := f.rec.Take(); len(ev) != 0 {
		t.Errorf("%s reported %+v", what, ev)
	}
}

func (f *fixture) twoFactor(t *testing.T, userID int64) db.TwoFactor {
	t.Helper()
	tf, err := f.s.TwoFactor(f.ctx, userID)
	if err != nil {
		t.Fatalf("TwoFactor(%d): %v", userID, err)
	}
	return tf
}

// testTwoFactorSetup: a setup is pending until confirmed, a pending one can
// be replaced, an enabled one never (its secret is in the user's app), and
// disabling removes everything.
func testTwoFactorSetup(t *testing.T, f *fixture) {
	a := f.user(t, "a@example.com")
	now := T0.Add(time.Minute)
	if _, err := f.s.TwoFactor(f.ctx, a.ID); !errors.Is(err, db.ErrNotFound) {
		t.Fatalf("TwoFactor before any setup: %v, want ErrNotFound", err)
	}
	if err := f.s.EnableTwoFactor(f.ctx, a.ID, "sealed-1", 100, codes("1"), now); !errors.Is(err, db.ErrNotFound) {
		t.Fatalf("enable without a pending setup: %v, want ErrNotFound", err)
	}
	if err := f.s.StartTwoFactor(f.ctx, a.ID, "sealed-1", T0); err != nil {
		t.Fatal(err)
	}
	if tf := f.twoFactor(t, a.ID); tf.UserID != a.ID || tf.SecretSealed != "sealed-1" || tf.Enabled() || tf.LastStep != 0 || tf.RecoveryLeft != 0 {
		t.Fatalf("pending setup: %+v", tf)
	}
	// A new setup (the page reloaded) replaces a pending one.
	if err := f.s.StartTwoFactor(f.ctx, a.ID, "sealed-2", T0); err != nil {
		t.Fatalf("replacing a pending setup: %v", err)
	}
	if tf := f.twoFactor(t, a.ID); tf.SecretSealed != "sealed-2" || tf.Enabled() {
		t.Fatalf("replaced setup: %+v", tf)
	}
	// While pending, no code counts and there are no recovery codes.
	if ok, err := f.s.AcceptTOTPStep(f.ctx, a.ID, 100); err != nil || ok {
		t.Fatalf("a step accepted while only pending: %v, %v", ok, err)
	}
	if err := f.s.ReplaceRecoveryCodes(f.ctx, a.ID, codes("x"), now); !errors.Is(err, db.ErrNotFound) {
		t.Fatalf("recovery codes while only pending: %v, want ErrNotFound", err)
	}
	if _, ok, err := f.s.UseRecoveryCode(f.ctx, a.ID, [][]byte{codes("x")[0]}, now); err != nil || ok {
		t.Fatalf("a recovery code used while only pending: %v, %v", ok, err)
	}

	// A code checked against the replaced setup's secret enables nothing.
	if err := f.s.EnableTwoFactor(f.ctx, a.ID, "sealed-1", 100, codes("1", "2", "3"), now); !errors.Is(err, db.ErrNotFound) {
		t.Fatalf("enabling a replaced setup: %v, want ErrNotFound", err)
	}
	if err := f.s.EnableTwoFactor(f.ctx, a.ID, "sealed-2", 100, codes("1", "2", "3"), now); err != nil {
		t.Fatal(err)
	}
	tf := f.twoFactor(t, a.ID)
	if !tf.Enabled() || !tf.EnabledAt.Equal(now) || tf.SecretSealed != "sealed-2" || tf.LastStep != 100 || tf.RecoveryLeft != 3 {
		t.Fatalf("enabled: %+v", tf)
	}
	before, _ := f.s.Dump(f.ctx)
	f.rec.Take()
	if err := f.s.EnableTwoFactor(f.ctx, a.ID, "sealed-2", 200, codes("4"), now); !errors.Is(err, db.ErrTwoFactorEnabled) {
		t.Fatalf("enabling twice: %v, want ErrTwoFactorEnabled", err)
	}
	if err := f.s.StartTwoFactor(f.ctx, a.ID, "sealed-3", now); !errors.Is(err, db.ErrTwoFactorEnabled) {
		t.Fatalf("a new setup while on: %v, want ErrTwoFactorEnabled", err)
	}
	f.unchanged(t, before, "a refused setup")
	if tf := f.twoFactor(t, a.ID); tf.SecretSealed != "sealed-2" || tf.LastStep != 100 || tf.RecoveryLeft != 3 {
		t.Fatalf("after refused setups: %+v", tf)
	}

	if err := f.s.DisableTwoFactor(f.ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := f.s.TwoFactor(f.ctx, a.ID); !errors.Is(err, db.ErrNotFound) {
		t.Fatalf("TwoFactor after disabling: %v, want ErrNotFound", err)
	}
	if _, ok, err := f.s.UseRecoveryCode(f.ctx, a.ID, [][]byte{codes("1")[0]}, now); err != nil || ok {
		t.Fatalf("a recovery code survived disabling: %v, %v", ok, err)
	}
	if err := f.s.DisableTwoFactor(f.ctx, a.ID); err != nil {
		t.Fatalf("disabling twice: %v", err)
	}
	// Off again, a new setup starts from nothing.
	if err := f.s.StartTwoFactor(f.ctx, a.ID, "sealed-4", now); err != nil {
		t.Fatal(err)
	}
	if tf := f.twoFactor(t, a.ID); tf.Enabled() || tf.SecretSealed != "sealed-4" || tf.LastStep != 0 || tf.RecoveryLeft != 0 {
		t.Fatalf("a setup after disabling: %+v", tf)
	}
	// No such user.
	if err := f.s.StartTwoFactor(f.ctx, 99999, "sealed", now); !errors.Is(err, db.ErrNotFound) {
		t.Fatalf("a setup for no user: %v, want ErrNotFound", err)
	}
}

// testTOTPSteps: a code's step is accepted once and only if later than the
// last one, and of eight requests racing with the same code exactly one
// wins.
func testTOTPSteps(t *testing.T, f *fixture) {
	a := f.user(t, "a@example.com")
	f.enableTwoFactor(t, a.ID, 100)
	for _, c := range []struct {
		step int64
		want bool
	}{{100, false}, {99, false}, {101, true}, {101, false}, {105, true}, {103, false}, {105, false}, {106, true}} {
		if ok, err := f.s.AcceptTOTPStep(f.ctx, a.ID, c.step); err != nil || ok != c.want {
			t.Fatalf("AcceptTOTPStep(%d) = %v, %v; want %v", c.step, ok, err, c.want)
		}
	}
	if tf := f.twoFactor(t, a.ID); tf.LastStep != 106 {
		t.Fatalf("LastStep = %d, want 106", tf.LastStep)
	}

	const racers = 8
	var wg sync.WaitGroup
	start := make(chan struct{})
	results := make(chan error, racers)
	var mu sync.Mutex
	accepted := 0
	for range racers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			ok, err := f.s.AcceptTOTPStep(f.ctx, a.ID, 200)
			if err != nil {
				results <- err
				return
			}
			if ok {
				mu.Lock()
				accepted++
				mu.Unlock()
			}
		}()
	}
	close(start)
	wg.Wait()
	close(results)
	for err := range results {
		t.Fatalf("under concurrency: %v", err)
	}
	if accepted != 1 {
		t.Fatalf("%d of %d concurrent uses of one code were accepted, want exactly 1", accepted, racers)
	}
	if tf := f.twoFactor(t, a.ID); tf.LastStep != 200 {
		t.Fatalf("LastStep = %d, want 200", tf.LastStep)
	}
}

// testRecoveryCodes: each code works once (even when raced), the count
// left goes down, and a new set replaces the old one entirely.
func testRecoveryCodes(t *testing.T, f *fixture) {
	a := f.user(t, "a@example.com")
	f.enableTwoFactor(t, a.ID, 100, "1", "2", "3")
	now := T0.Add(time.Minute)
	h := codes("1", "2", "3", "4", "5")
	if left, ok, err := f.s.UseRecoveryCode(f.ctx, a.ID, [][]byte{h[1]}, now); err != nil || !ok || left != 2 {
		t.Fatalf("first use: left %d, ok %v, %v; want 2, true", left, ok, err)
	}
	before, _ := f.s.Dump(f.ctx)
	f.rec.Take()
	if _, ok, err := f.s.UseRecoveryCode(f.ctx, a.ID, [][]byte{h[1]}, now.Add(time.Second)); err != nil || ok {
		t.Fatalf("second use of one code: ok %v, %v; want false", ok, err)
	}
	if _, ok, err := f.s.UseRecoveryCode(f.ctx, a.ID, [][]byte{[]byte("not a code")}, now); err != nil || ok {
		t.Fatalf("an unknown code: ok %v, %v; want false", ok, err)
	}
	f.unchanged(t, before, "a refused recovery code")
	if tf := f.twoFactor(t, a.ID); tf.RecoveryLeft != 2 {
		t.Fatalf("RecoveryLeft = %d, want 2", tf.RecoveryLeft)
	}

	// Eight requests racing with one code: exactly one succeeds.
	const racers = 8
	var wg sync.WaitGroup
	start := make(chan struct{})
	errs := make(chan error, racers)
	var mu sync.Mutex
	used, lefts := 0, []int{}
	for range racers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			left, ok, err := f.s.UseRecoveryCode(f.ctx, a.ID, [][]byte{h[0]}, now)
			if err != nil {
				errs <- err
				return
			}
			if ok {
				mu.Lock()
				used++
				lefts = append(lefts, left)
				mu.Unlock()
			}
		}()
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("under concurrency: %v", err)
	}
	if used != 1 || lefts[0] != 1 {
		t.Fatalf("%d of %d concurrent uses of one code succeeded (left %v), want exactly 1 (left 1)", used, racers, lefts)
	}

	// A new set replaces every old code, used or not; a code used before
	// can come back as a fresh one.
	if err := f.s.ReplaceRecoveryCodes(f.ctx, a.ID, [][]byte{h[3], h[4], h[1]}, now); err != nil {
		t.Fatal(err)
	}
	if tf := f.twoFactor(t, a.ID); tf.RecoveryLeft != 3 {
		t.Fatalf("RecoveryLeft after replacing = %d, want 3", tf.RecoveryLeft)
	}
	if _, ok, err := f.s.UseRecoveryCode(f.ctx, a.ID, [][]byte{h[2]}, now); err != nil || ok {
		t.Fatalf("an old unused code after replacing: ok %v, %v; want false", ok, err)
	}
	if left, ok, err := f.s.UseRecoveryCode(f.ctx, a.ID, [][]byte{h[3]}, now); err != nil || !ok || left != 2 {
		t.Fatalf("a new code: left %d, ok %v, %v; want 2, true", left, ok, err)
	}
	if left, ok, err := f.s.UseRecoveryCode(f.ctx, a.ID, [][]byte{h[1]}, now); err != nil || !ok || left != 1 {
		t.Fatalf("a re-issued code: left %d, ok %v, %v; want 1, true", left, ok, err)
	}

	// One typed code comes in several forms (its keyed hash under each key
	// of the ring, its plain hash from before keyed hashes): whichever of
	// them is stored is used, once; forms of used codes find nothing.
	before, _ = f.s.Dump(f.ctx)
	if _, ok, err := f.s.UseRecoveryCode(f.ctx, a.ID, [][]byte{[]byte("keyed form"), h[1], h[3], []byte("plain form")}, now); err != nil || ok {
		t.Fatalf("the forms of used codes: ok %v, %v; want false", ok, err)
	}
	if _, _, err := f.s.UseRecoveryCode(f.ctx, a.ID, nil, now); err == nil {
		t.Fatal("no hash at all: no error")
	}
	f.unchanged(t, before, "recovery codes already used")
	if left, ok, err := f.s.UseRecoveryCode(f.ctx, a.ID, [][]byte{[]byte("keyed form"), h[4], []byte("plain form")}, now); err != nil || !ok || left != 0 {
		t.Fatalf("a code given in several forms: left %d, ok %v, %v; want 0, true", left, ok, err)
	}
	if _, ok, err := f.s.UseRecoveryCode(f.ctx, a.ID, [][]byte{[]byte("keyed form"), h[4]}, now); err != nil || ok {
		t.Fatalf("that code again: ok %v, %v; want false", ok, err)
	}
}

// testTwoFactorCrossUser: no two-factor method lets one user's id reach
// another user's state, and nothing changes by trying.
func testTwoFactorCrossUser(t *testing.T, f *fixture) {
	a, b, c := f.user(t, "a@example.com"), f.user(t, "b@example.com"), f.user(t, "c@example.com")
	f.enableTwoFactor(t, a.ID, 100, "a1", "a2")
	f.enableTwoFactor(t, b.ID, 100, "b1")
	f.pending(t, "pa", a.ID, T0.Add(5*time.Minute))
	now := T0.Add(time.Minute)
	before, err := f.s.Dump(f.ctx)
	if err != nil {
		t.Fatal(err)
	}
	f.rec.Take()
	ha := codes("a1")[0]
	if _, err := f.s.TwoFactor(f.ctx, c.ID); !errors.Is(err, db.ErrNotFound) {
		t.Errorf("c's two-factor: %v, want ErrNotFound", err)
	}
	if err := f.s.EnableTwoFactor(f.ctx, c.ID, "sealed", 100, codes("c1"), now); !errors.Is(err, db.ErrNotFound) {
		t.Errorf("enabling c's (no setup): %v, want ErrNotFound", err)
	}
	if ok, err := f.s.AcceptTOTPStep(f.ctx, c.ID, 500); err != nil || ok {
		t.Errorf("c's step accepted: %v, %v", ok, err)
	}
	for _, id := range []int64{b.ID, c.ID} {
		if _, ok, err := f.s.UseRecoveryCode(f.ctx, id, [][]byte{ha}, now); err != nil || ok {
			t.Errorf("user %d used a's recovery code: %v, %v", id, ok, err)
		}
	}
	if err := f.s.ReplaceRecoveryCodes(f.ctx, c.ID, codes("c1"), now); !errors.Is(err, db.ErrNotFound) {
		t.Errorf("c's recovery codes (two-factor off): %v, want ErrNotFound", err)
	}
	if err := f.s.DisableTwoFactor(f.ctx, c.ID); err != nil {
		t.Errorf("disabling c's (none): %v", err)
	}
	if _, err := f.s.CompletePendingSignIn(f.ctx, "pa", Session("b-via-pa", b.ID, now), 0); !errors.Is(err, db.ErrNotFound) {
		t.Errorf("b completed a's pending sign-in: %v, want ErrNotFound", err)
	}
	if _, err := f.s.CompletePendingSignIn(f.ctx, "nope", Session("a-via-nope", a.ID, now), 0); !errors.Is(err, db.ErrNotFound) {
		t.Errorf("completing an unknown pending sign-in: %v, want ErrNotFound", err)
	}
	if _, err := f.s.FailPendingSignIn(f.ctx, "nope", 5); !errors.Is(err, db.ErrNotFound) {
		t.Errorf("failing an unknown pending sign-in: %v, want ErrNotFound", err)
	}
	if _, err := f.s.PendingSignIn(f.ctx, "nope"); !errors.Is(err, db.ErrNotFound) {
		t.Errorf("an unknown pending sign-in: %v, want ErrNotFound", err)
	}
	if err := f.s.DeletePendingSignIn(f.ctx, "nope"); err != nil {
		t.Errorf("deleting an unknown pending sign-in: %v", err)
	}
	if err := f.s.StartTwoFactor(f.ctx, 99999, "sealed", now); !errors.Is(err, db.ErrNotFound) {
		t.Errorf("a setup for no user: %v, want ErrNotFound", err)
	}
	if err := f.s.CreatePendingSignIn(f.ctx, db.PendingSignIn{ID: "p-nobody", SecretHash: []byte("h"), UserID: 99999,
		CreatedAt: now, ExpiresAt: now.Add(time.Minute)}); !errors.Is(err, db.ErrNotFound) {
		t.Errorf("a pending sign-in for no user: %v, want ErrNotFound", err)
	}
	f.unchanged(t, before, "a refused cross-user call")
	for _, id := range []string{"b-via-pa", "a-via-nope"} {
		if _, _, err := f.s.SessionWithUser(f.ctx, id); !errors.Is(err, db.ErrNotFound) {
			t.Errorf("session %s exists: %v", id, err)
		}
	}

	// What b does to b's own reaches only b's.
	if ok, err := f.s.AcceptTOTPStep(f.ctx, b.ID, 500); err != nil || !ok {
		t.Fatalf("b's own step: %v, %v", ok, err)
	}
	if err := f.s.ReplaceRecoveryCodes(f.ctx, b.ID, codes("b2", "b3", "b4"), now); err != nil {
		t.Fatal(err)
	}
	if err := f.s.DisableTwoFactor(f.ctx, b.ID); err != nil {
		t.Fatal(err)
	}
	if tf := f.twoFactor(t, a.ID); !tf.Enabled() || tf.LastStep != 100 || tf.RecoveryLeft != 2 || tf.SecretSealed != fmt.Sprintf("sealed-%d", a.ID) {
		t.Fatalf("a's two-factor changed by b's calls: %+v", tf)
	}
	if p, err := f.s.PendingSignIn(f.ctx, "pa"); err != nil || p.UserID != a.ID || p.Failures != 0 {
		t.Fatalf("a's pending sign-in: %+v, %v", p, err)
	}
}

// testPendingSignIns: stored and read back whole, wrong codes counted until
// the limit deletes it, and pruning removes only the expired.
func testPendingSignIns(t *testing.T, f *fixture) {
	a := f.user(t, "a@example.com")
	want := f.pending(t, "p1", a.ID, T0.Add(5*time.Minute))
	got, err := f.s.PendingSignIn(f.ctx, "p1")
	if err != nil || got.ID != "p1" || !bytes.Equal(got.SecretHash, want.SecretHash) || got.UserID != a.ID || got.Epoch != a.Epoch ||
		!got.CreatedAt.Equal(T0) || !got.ExpiresAt.Equal(want.ExpiresAt) || got.Failures != 0 {
		t.Fatalf("PendingSignIn = %+v, %v; want %+v", got, err, want)
	}
	if err := f.s.CreatePendingSignIn(f.ctx, want); err == nil {
		t.Fatal("a second pending sign-in with the same id was stored")
	}
	if ev := f.rec.Take(); len(ev) != 0 {
		t.Fatalf("pending sign-ins reported %+v", ev)
	}
	for i := 1; i <= 2; i++ {
		if n, err := f.s.FailPendingSignIn(f.ctx, "p1", 3); err != nil || n != i {
			t.Fatalf("failure %d: %d, %v", i, n, err)
		}
	}
	if got, _ := f.s.PendingSignIn(f.ctx, "p1"); got.Failures != 2 {
		t.Fatalf("Failures = %d, want 2", got.Failures)
	}
	if n, err := f.s.FailPendingSignIn(f.ctx, "p1", 3); err != nil || n != 3 {
		t.Fatalf("the failure at the limit: %d, %v; want 3", n, err)
	}
	if _, err := f.s.PendingSignIn(f.ctx, "p1"); !errors.Is(err, db.ErrNotFound) {
		t.Fatalf("a pending sign-in at its limit survived: %v", err)
	}
	if _, err := f.s.FailPendingSignIn(f.ctx, "p1", 3); !errors.Is(err, db.ErrNotFound) {
		t.Fatalf("failing a deleted pending sign-in: %v, want ErrNotFound", err)
	}
	// A limit already passed (it was lowered) deletes at once.
	f.pending(t, "p-low", a.ID, T0.Add(5*time.Minute))
	for range 2 {
		if _, err := f.s.FailPendingSignIn(f.ctx, "p-low", 5); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := f.s.FailPendingSignIn(f.ctx, "p-low", 1); err != nil || n != 3 {
		t.Fatalf("past a lowered limit: %d, %v", n, err)
	}
	if _, err := f.s.PendingSignIn(f.ctx, "p-low"); !errors.Is(err, db.ErrNotFound) {
		t.Fatalf("a pending sign-in past its limit survived: %v", err)
	}

	f.pending(t, "p-del", a.ID, T0.Add(5*time.Minute))
	if err := f.s.DeletePendingSignIn(f.ctx, "p-del"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.s.PendingSignIn(f.ctx, "p-del"); !errors.Is(err, db.ErrNotFound) {
		t.Fatalf("a deleted pending sign-in: %v", err)
	}
	if err := f.s.DeletePendingSignIn(f.ctx, "p-del"); err != nil {
		t.Fatalf("deleting twice: %v", err)
	}

	// Expired rows stay readable until pruned; pruning takes only those
	// expired before the cutoff.
	f.pending(t, "p-old", a.ID, T0.Add(time.Minute))
	f.pending(t, "p-edge", a.ID, T0.Add(5*time.Minute))
	f.pending(t, "p-new", a.ID, T0.Add(10*time.Minute))
	if p, err := f.s.PendingSignIn(f.ctx, "p-old"); err != nil || p.ID != "p-old" {
		t.Fatalf("an expired pending sign-in before pruning: %+v, %v", p, err)
	}
	if n, err := f.s.PrunePendingSignIns(f.ctx, T0.Add(5*time.Minute)); err != nil || n != 1 {
		t.Fatalf("PrunePendingSignIns = %d, %v; want 1", n, err)
	}
	if _, err := f.s.PendingSignIn(f.ctx, "p-old"); !errors.Is(err, db.ErrNotFound) {
		t.Fatalf("p-old survived pruning: %v", err)
	}
	for _, id := range []string{"p-edge", "p-new"} {
		if _, err := f.s.PendingSignIn(f.ctx, id); err != nil {
			t.Fatalf("%s was pruned: %v", id, err)
		}
	}
}

// testCompletePendingSignIn: completing creates the session and redeems
// the pending sign-in once; an expired one, or one whose user reset their
// sign-ins or was disabled since the password was checked, creates nothing
// and changes nothing.
func testCompletePendingSignIn(t *testing.T, f *fixture) {
	a := f.user(t, "a@example.com")
	f.pending(t, "p1", a.ID, T0.Add(5*time.Minute))
	now := T0.Add(time.Minute)
	s1 := Session("s1", a.ID, now)
	s1.AuthMethod = db.MethodPasswordTOTP
	f.rec.Take()
	if evicted, err := f.s.CompletePendingSignIn(f.ctx, "p1", s1, 0); err != nil || len(evicted) != 0 {
		t.Fatalf("CompletePendingSignIn = %v, %v", ids(evicted), err)
	}
	sess, u, err := f.s.SessionWithUser(f.ctx, "s1")
	if err != nil || u.ID != a.ID || !sess.Alive(now) || sess.AuthMethod != db.MethodPasswordTOTP || !sess.ReauthAt.Equal(now) ||
		!bytes.Equal(sess.SecretHash, s1.SecretHash) {
		t.Fatalf("the completed session: %+v %+v %v", sess, u, err)
	}
	want := db.Event{Kind: db.SessionStarted, UserID: a.ID, SessionID: "s1", At: now}
	if ev := f.rec.Take(); len(ev) != 1 || !sameEvent(ev[0], want) {
		t.Fatalf("completion reported %+v, want %+v", ev, want)
	}
	if _, err := f.s.PendingSignIn(f.ctx, "p1"); !errors.Is(err, db.ErrNotFound) {
		t.Fatalf("the pending sign-in survived its completion: %v", err)
	}
	before, _ := f.s.Dump(f.ctx)
	if _, err := f.s.CompletePendingSignIn(f.ctx, "p1", Session("s2", a.ID, now), 0); !errors.Is(err, db.ErrNotFound) {
		t.Fatalf("a second completion: %v, want ErrNotFound", err)
	}
	f.unchanged(t, before, "a second completion")

	// Expired: at its expiry second it is already too late.
	f.pending(t, "p-exp", a.ID, T0.Add(5*time.Minute))
	before, _ = f.s.Dump(f.ctx)
	if _, err := f.s.CompletePendingSignIn(f.ctx, "p-exp", Session("s-exp", a.ID, T0.Add(5*time.Minute)), 0); !errors.Is(err, db.ErrNotFound) {
		t.Fatalf("completing an expired pending sign-in: %v, want ErrNotFound", err)
	}
	f.unchanged(t, before, "completing an expired pending sign-in")
	if _, _, err := f.s.SessionWithUser(f.ctx, "s-exp"); !errors.Is(err, db.ErrNotFound) {
		t.Fatalf("an expired pending sign-in made a session: %v", err)
	}

	// The user signed out everywhere after the password was checked.
	f.pending(t, "p-reset", a.ID, T0.Add(5*time.Minute))
	if _, err := f.s.RevokeAllSessions(f.ctx, a.ID, db.ReasonRevokedAll, "s1", now); err != nil {
		t.Fatal(err)
	}
	before, _ = f.s.Dump(f.ctx)
	f.rec.Take()
	if _, err := f.s.CompletePendingSignIn(f.ctx, "p-reset", Session("s-reset", a.ID, now), 0); !errors.Is(err, db.ErrSignInsReset) {
		t.Fatalf("completing across a reset: %v, want ErrSignInsReset", err)
	}
	f.unchanged(t, before, "a completion refused by a reset")
	if _, _, err := f.s.SessionWithUser(f.ctx, "s-reset"); !errors.Is(err, db.ErrNotFound) {
		t.Fatalf("a completion across a reset made a session: %v", err)
	}

	// The user was disabled (and even re-enabled) meanwhile.
	f.pending(t, "p-dis", a.ID, T0.Add(5*time.Minute))
	if _, err := f.s.SetUserDisabled(f.ctx, a.ID, true, now); err != nil {
		t.Fatal(err)
	}
	before, _ = f.s.Dump(f.ctx)
	f.rec.Take()
	if _, err := f.s.CompletePendingSignIn(f.ctx, "p-dis", Session("s-dis", a.ID, now), 0); !errors.Is(err, db.ErrSignInsReset) {
		t.Fatalf("completing for a disabled user: %v, want ErrSignInsReset", err)
	}
	f.unchanged(t, before, "a completion for a disabled user")
	if _, err := f.s.SetUserDisabled(f.ctx, a.ID, false, now); err != nil {
		t.Fatal(err)
	}
	if _, err := f.s.CompletePendingSignIn(f.ctx, "p-dis", Session("s-dis", a.ID, now), 0); !errors.Is(err, db.ErrSignInsReset) {
		t.Fatalf("completing after a disable and re-enable: %v, want ErrSignInsReset", err)
	}
	if _, _, err := f.s.SessionWithUser(f.ctx, "s-dis"); !errors.Is(err, db.ErrNotFound) {
		t.Fatalf("a disabled user's pending sign-in made a session: %v", err)
	}
}

// testConcurrentCompletion: eight requests completing one pending sign-in
// at once make exactly one session.
func testConcurrentCompletion(t *testing.T, f *fixture) {
	a := f.user(t, "a@example.com")
	f.pending(t, "p1", a.ID, T0.Add(5*time.Minute))
	now := T0.Add(time.Minute)
	const racers = 8
	var wg sync.WaitGroup
	start := make(chan struct{})
	errs := make(chan error, racers)
	var mu sync.Mutex
	var won []string
	for i := range racers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			id := fmt.Sprintf("s%d", i)
			_, err := f.s.CompletePendingSignIn(f.ctx, "p1", Session(id, a.ID, now), 0)
			switch {
			case err == nil:
				mu.Lock()
				won = append(won, id)
				mu.Unlock()
			case !errors.Is(err, db.ErrNotFound):
				errs <- err
			}
		}()
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("under concurrency: %v", err)
	}
	if len(won) != 1 {
		t.Fatalf("%d concurrent completions succeeded (%s), want exactly 1", len(won), strings.Join(won, ","))
	}
	if got := f.live(t, a.ID, now); got != won[0] {
		t.Fatalf("live sessions %q, want only %s", got, won[0])
	}
	started := 0
	for _, e := range f.rec.Take() {
		if e.Kind == db.SessionStarted {
			started++
		}
	}
	if started != 1 {
		t.Fatalf("%d sessions reported started, want 1", started)
	}
}

// testCompletionEvicts: completing past the cap ends the least recently
// active sessions and reports them, exactly as CreateSession does.
func testCompletionEvicts(t *testing.T, f *fixture) {
	a, b := f.user(t, "a@example.com"), f.user(t, "b@example.com")
	f.session(t, Session("b1", b.ID, T0))
	for i, id := range []string{"a1", "a2", "a3"} {
		f.session(t, Session(id, a.ID, T0.Add(time.Duration(i)*time.Minute)))
	}
	f.pending(t, "p1", a.ID, T0.Add(time.Hour))
	now := T0.Add(10 * time.Minute)
	f.rec.Take()
	evicted, err := f.s.CompletePendingSignIn(f.ctx, "p1", Session("a4", a.ID, now), 2)
	if err != nil || sortedIDs(evicted) != "a1,a2" || evicted[0].RevokedReason != db.ReasonSessionLimit || evicted[0].RevokedBy != "a4" ||
		!evicted[0].RevokedAt.Equal(now) {
		t.Fatalf("completion at the cap: evicted %+v, %v; want a1, a2", evicted, err)
	}
	if got := f.live(t, a.ID, now); got != "a4,a3" {
		t.Fatalf("live after the completion: %s, want a4,a3", got)
	}
	if got := f.live(t, b.ID, now); got != "b1" {
		t.Fatal("another user's session was evicted")
	}
	ev := f.rec.Take()
	if len(ev) != 3 {
		t.Fatalf("events of a completion that evicts: %+v", ev)
	}
	for i, id := range []string{"a1", "a2"} {
		w := db.Event{Kind: db.SessionEnded, UserID: a.ID, SessionID: id, Reason: db.ReasonSessionLimit, By: "a4", At: now}
		if !sameEvent(ev[i], w) && !sameEvent(ev[1-i], w) {
			t.Errorf("events %+v lack %+v", ev, w)
		}
	}
	if w := (db.Event{Kind: db.SessionStarted, UserID: a.ID, SessionID: "a4", At: now}); !sameEvent(ev[2], w) {
		t.Errorf("last event %+v, want %+v", ev[2], w)
	}
	if row, _, _ := f.s.SessionWithUser(f.ctx, "a1"); row.RevokedReason != db.ReasonSessionLimit || row.RevokedBy != "a4" {
		t.Fatalf("evicted row = %+v", row)
	}
}

// testTwoFactorDeleteUser: deleting a user removes their two-factor state,
// recovery codes and pending sign-ins (and the dump shows those tables),
// and leaves everyone else's.
func testTwoFactorDeleteUser(t *testing.T, f *fixture) {
	a, b := f.user(t, "a@example.com"), f.user(t, "b@example.com")
	f.enableTwoFactor(t, a.ID, 100, "a1", "a2")
	f.enableTwoFactor(t, b.ID, 100, "b1")
	f.pending(t, "pa", a.ID, T0.Add(5*time.Minute))
	f.pending(t, "pb", b.ID, T0.Add(5*time.Minute))
	hexA, hexB := fmt.Sprintf("%x", codes("a1")[0]), fmt.Sprintf("%x", codes("b1")[0])
	d, err := f.s.Dump(f.ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{hexA, hexB, fmt.Sprintf("sealed-%d", a.ID), fmt.Sprintf("%x", "pending-hash-pa"),
		"# two_factor (", "# recovery_codes (", "# pending_sign_ins ("} {
		if !strings.Contains(d, w) {
			t.Errorf("the dump lacks %q:\n%s", w, d)
		}
	}
	if _, err := f.s.DeleteUser(f.ctx, a.ID, T0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if _, err := f.s.TwoFactor(f.ctx, a.ID); !errors.Is(err, db.ErrNotFound) {
		t.Errorf("two-factor survived its user: %v", err)
	}
	if _, err := f.s.PendingSignIn(f.ctx, "pa"); !errors.Is(err, db.ErrNotFound) {
		t.Errorf("a pending sign-in survived its user: %v", err)
	}
	if _, ok, err := f.s.UseRecoveryCode(f.ctx, a.ID, [][]byte{codes("a1")[0]}, T0.Add(time.Minute)); err != nil || ok {
		t.Errorf("a recovery code survived its user: %v, %v", ok, err)
	}
	d, _ = f.s.Dump(f.ctx)
	if strings.Contains(d, hexA) || strings.Contains(d, fmt.Sprintf("sealed-%d", a.ID)) || strings.Contains(d, fmt.Sprintf("%x", "pending-hash-pa")) {
		t.Errorf("the deleted user's two-factor rows are still in the dump:\n%s", d)
	}
	if tf := f.twoFactor(t, b.ID); !tf.Enabled() || tf.RecoveryLeft != 1 {
		t.Errorf("b's two-factor after a's deletion: %+v", tf)
	}
	if _, err := f.s.PendingSignIn(f.ctx, "pb"); err != nil {
		t.Errorf("b's pending sign-in after a's deletion: %v", err)
	}
}
