package storetest

import (
	"bytes"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"doorman/db"
)

// Passkey returns a passkey of user's for tests, named name, made at now,
// its credential id "cred-"+name.
func Passkey(name string, userID int64, now time.Time) db.Passkey {
	return db.Passkey{UserID: userID, Name: name, CredentialID: []byte("cred-" + name), PublicKey: []byte("pk-" + name),
		AAGUID: bytes.Repeat([]byte{7}, 16), AttestationType: "none", BackupEligible: true, BackupState: true,
		UserVerified: true, Transports: []string{"hybrid", "internal"}, CreatedAt: now}
}

// addPasskey adds p under its user's current epoch, with a cap of 20.
func (f *fixture) addPasskey(t *testing.T, p db.Passkey) db.Passkey {
	t.Helper()
	got, err := f.s.AddPasskey(f.ctx, p, 20, f.userRow(t, p.UserID).Epoch)
	if err != nil {
		t.Fatalf("AddPasskey(%s): %v", p.Name, err)
	}
	if got.ID <= 0 {
		t.Fatalf("AddPasskey(%s) gave no id: %+v", p.Name, got)
	}
	return got
}

// passkeys lists the user's passkeys.
func (f *fixture) passkeys(t *testing.T, userID int64) []db.Passkey {
	t.Helper()
	list, err := f.s.ListPasskeys(f.ctx, userID)
	if err != nil {
		t.Fatalf("ListPasskeys(%d): %v", userID, err)
	}
	return list
}

func samePasskey(a, b db.Passkey) bool {
	return a.ID == b.ID && a.UserID == b.UserID && a.Name == b.Name && bytes.Equal(a.CredentialID, b.CredentialID) &&
		bytes.Equal(a.PublicKey, b.PublicKey) && bytes.Equal(a.AAGUID, b.AAGUID) && a.AttestationType == b.AttestationType &&
		a.SignCount == b.SignCount && a.BackupEligible == b.BackupEligible && a.BackupState == b.BackupState &&
		a.UserVerified == b.UserVerified && len(a.Transports) == len(b.Transports) &&
		(len(a.Transports) == 0 || a.Transports[0] == b.Transports[0] && a.Transports[len(a.Transports)-1] == b.Transports[len(b.Transports)-1]) &&
		a.CreatedAt.Equal(b.CreatedAt) && a.LastUsedAt.Equal(b.LastUsedAt) && a.CloneWarnings == b.CloneWarnings &&
		a.CloneWarnedAt.Equal(b.CloneWarnedAt) && a.AddedBySession == b.AddedBySession
}

// testPasskeyHandles: a user's handle is made once, random, and leads back
// to the user; another user's differs; no user, no handle.
func testPasskeyHandles(t *testing.T, f *fixture) {
	a, b := f.user(t, "a@example.com"), f.user(t, "b@example.com")
	ha, err := f.s.PasskeyUserHandle(f.ctx, a.ID, T0)
	if err != nil || len(ha) != 32 {
		t.Fatalf("PasskeyUserHandle(a) = %x, %v; want 32 bytes", ha, err)
	}
	if again, err := f.s.PasskeyUserHandle(f.ctx, a.ID, T0.Add(time.Hour)); err != nil || !bytes.Equal(again, ha) {
		t.Errorf("a second PasskeyUserHandle(a) = %x, %v; want the first, %x", again, err, ha)
	}
	hb, err := f.s.PasskeyUserHandle(f.ctx, b.ID, T0)
	if err != nil || bytes.Equal(hb, ha) {
		t.Errorf("PasskeyUserHandle(b) = %x, %v; want one of b's own", hb, err)
	}
	if u, err := f.s.UserByPasskeyHandle(f.ctx, ha); err != nil || u.ID != a.ID || u.Email != a.Email {
		t.Errorf("UserByPasskeyHandle(a's) = %+v, %v; want a", u, err)
	}
	if _, err := f.s.UserByPasskeyHandle(f.ctx, []byte("nobody's")); !errors.Is(err, db.ErrNotFound) {
		t.Errorf("UserByPasskeyHandle(unknown) = %v, want ErrNotFound", err)
	}
	if _, err := f.s.PasskeyUserHandle(f.ctx, 9999, T0); !errors.Is(err, db.ErrNotFound) {
		t.Errorf("PasskeyUserHandle(no such user) = %v, want ErrNotFound", err)
	}
	if _, err := f.s.DeleteUser(f.ctx, a.ID, T0); err != nil {
		t.Fatal(err)
	}
	if _, err := f.s.UserByPasskeyHandle(f.ctx, ha); !errors.Is(err, db.ErrNotFound) {
		t.Errorf("a deleted user's handle still leads somewhere: %v", err)
	}
}

// testAddPasskey: a passkey is stored whole, recorded and mailed with its
// addition; a credential id is stored once, across accounts; the cap, a
// reset in flight and a disabled account refuse, changing nothing.
func testAddPasskey(t *testing.T, f *fixture) {
	a, b := f.user(t, "a@example.com"), f.user(t, "b@example.com")
	h := newHistory(f)
	p := Passkey("MacBook", a.ID, T0)
	p.SignCount = 3
	got, err := f.s.AddPasskey(f.ctx, p, 20, a.Epoch, Mail("m-added", a.ID, db.MailPasskeyAdded, T0))
	if err != nil {
		t.Fatalf("AddPasskey: %v", err)
	}
	p.ID = got.ID
	list := f.passkeys(t, a.ID)
	if len(list) != 1 || !samePasskey(list[0], p) {
		t.Fatalf("ListPasskeys = %+v\nwant %+v", list, p)
	}
	if byCred, err := f.s.PasskeyByCredentialID(f.ctx, []byte("cred-MacBook")); err != nil || !samePasskey(byCred, p) {
		t.Errorf("PasskeyByCredentialID = %+v, %v", byCred, err)
	}
	if _, err := f.s.PasskeyByCredentialID(f.ctx, []byte("cred-unknown")); !errors.Is(err, db.ErrNotFound) {
		t.Errorf("PasskeyByCredentialID(unknown) = %v, want ErrNotFound", err)
	}
	f.queued(t, "m-added", a.ID, "AddPasskey")
	h.expect(t, "AddPasskey", a.ID, db.SecurityEvent{UserID: a.ID, Kind: db.EventPasskeyAdded, At: T0, Detail: "MacBook"})
	if len(f.passkeys(t, b.ID)) != 0 {
		t.Error("b lists a's passkey")
	}

	before := f.dump(t)
	dup := Passkey("MacBook", b.ID, T0)
	if _, err := f.s.AddPasskey(f.ctx, dup, 20, b.Epoch, Mail("m-dup", b.ID, db.MailPasskeyAdded, T0)); !errors.Is(err, db.ErrConflict) {
		t.Errorf("AddPasskey of a credential id another account has: %v, want ErrConflict", err)
	}
	f.unchanged(t, before, "a duplicate credential id")

	// The cap: two allowed, the third refused.
	f.addPasskey(t, Passkey("Phone", a.ID, T0))
	before = f.dump(t)
	if _, err := f.s.AddPasskey(f.ctx, Passkey("Third", a.ID, T0), 2, a.Epoch, Mail("m-third", a.ID, db.MailPasskeyAdded, T0)); !errors.Is(err, db.ErrPasskeyLimit) {
		t.Errorf("AddPasskey past the cap: %v, want ErrPasskeyLimit", err)
	}
	f.unchanged(t, before, "an addition past the cap")

	// A reset of the user's sign-ins while the addition was in flight.
	stale := a.Epoch
	f.session(t, Session("keep", a.ID, T0))
	if _, err := f.s.RevokeOtherSessions(f.ctx, a.ID, "keep", db.ReasonRevokedOthers, T0); err != nil {
		t.Fatal(err)
	}
	before = f.dump(t)
	if _, err := f.s.AddPasskey(f.ctx, Passkey("Stale", a.ID, T0), 20, stale); !errors.Is(err, db.ErrSignInsReset) {
		t.Errorf("AddPasskey with the epoch from before a reset: %v, want ErrSignInsReset", err)
	}
	f.unchanged(t, before, "an addition from before a reset")
	if _, err := f.s.SetUserDisabled(f.ctx, b.ID, true, T0); err != nil {
		t.Fatal(err)
	}
	before = f.dump(t)
	if _, err := f.s.AddPasskey(f.ctx, Passkey("Disabled", b.ID, T0), 20, f.userRow(t, b.ID).Epoch); !errors.Is(err, db.ErrSignInsReset) {
		t.Errorf("AddPasskey for a disabled user: %v, want ErrSignInsReset", err)
	}
	f.unchanged(t, before, "an addition for a disabled user")
	if _, err := f.s.AddPasskey(f.ctx, Passkey("Ghost", 9999, T0), 20, 0); !errors.Is(err, db.ErrNotFound) {
		t.Errorf("AddPasskey for no such user: %v, want ErrNotFound", err)
	}
}

// testRenameRemovePasskey: only the owner renames or removes a passkey;
// removing it ends the sessions it opened only when asked, and records it.
func testRenameRemovePasskey(t *testing.T, f *fixture) {
	a, b := f.user(t, "a@example.com"), f.user(t, "b@example.com")
	pa := f.addPasskey(t, Passkey("Laptop", a.ID, T0))
	pa2 := f.addPasskey(t, Passkey("Phone", a.ID, T0))
	pb := f.addPasskey(t, Passkey("Other", b.ID, T0))

	before := f.dump(t)
	if err := f.s.RenamePasskey(f.ctx, b.ID, pa.ID, "Mine now"); !errors.Is(err, db.ErrNotFound) {
		t.Errorf("RenamePasskey of another user's: %v, want ErrNotFound", err)
	}
	if _, _, err := f.s.RemovePasskey(f.ctx, b.ID, pa.ID, true, "", T0); !errors.Is(err, db.ErrNotFound) {
		t.Errorf("RemovePasskey of another user's: %v, want ErrNotFound", err)
	}
	if _, _, err := f.s.RemovePasskey(f.ctx, a.ID, 99999, true, "", T0); !errors.Is(err, db.ErrNotFound) {
		t.Errorf("RemovePasskey of an unknown id: %v, want ErrNotFound", err)
	}
	f.unchanged(t, before, "another user's rename and removal")

	if err := f.s.RenamePasskey(f.ctx, a.ID, pa.ID, "Work laptop"); err != nil {
		t.Fatal(err)
	}
	if list := f.passkeys(t, a.ID); len(list) != 2 || list[0].Name != "Work laptop" || list[1].Name != "Phone" {
		t.Errorf("after the rename: %+v", list)
	}

	// Sessions opened with each passkey, one with a password.
	s1, s2, s3, pw := device("k1", a.ID, T0), device("k2", a.ID, T0), device("k3", a.ID, T0), device("pw", a.ID, T0)
	for _, s := range []db.Session{s1, s2} {
		f.passkeySignIn(t, pa.ID, 0, s)
	}
	f.passkeySignIn(t, pa2.ID, 0, s3)
	f.session(t, pw)
	f.passkeySignIn(t, pb.ID, 0, device("b1", b.ID, T0))
	h := newHistory(f)
	h.skip(t, a.ID)
	f.rec.Take()

	now := T0.Add(time.Minute)
	removed, ended, err := f.s.RemovePasskey(f.ctx, a.ID, pa.ID, true, "pw", now)
	if err != nil || removed.Name != "Work laptop" || sortedIDs(ended) != "k1,k2" {
		t.Fatalf("RemovePasskey(end sessions) = %+v, %s, %v; want Work laptop, k1,k2", removed, sortedIDs(ended), err)
	}
	if sortedIDs(f.liveList(t, a.ID, now)) != "k3,pw" {
		t.Errorf("live after the removal: %s, want k3,pw", sortedIDs(f.liveList(t, a.ID, now)))
	}
	if ev := f.rec.Take(); len(ev) != 2 || ev[0].Kind != db.SessionEnded || ev[0].Reason != db.ReasonPasskeyRemoved {
		t.Errorf("events of the removal: %+v", ev)
	}
	h.expect(t, "RemovePasskey", a.ID,
		db.SecurityEvent{UserID: a.ID, Kind: db.EventPasskeyRemoved, At: now, Detail: "Work laptop", By: "pw"},
		endedEvent(s1, db.ReasonPasskeyRemoved, "pw", now), endedEvent(s2, db.ReasonPasskeyRemoved, "pw", now))
	if list := f.passkeys(t, a.ID); len(list) != 1 || list[0].ID != pa2.ID {
		t.Errorf("passkeys after the removal: %+v", list)
	}

	// Removed without ending its sessions: they go on, and still name it.
	if _, ended, err := f.s.RemovePasskey(f.ctx, a.ID, pa2.ID, false, "pw", now); err != nil || len(ended) != 0 {
		t.Fatalf("RemovePasskey(keep sessions) = %v, %v", ended, err)
	}
	if s, err := f.s.UserSession(f.ctx, a.ID, "k3", now); err != nil || s.PasskeyID != pa2.ID {
		t.Errorf("k3 after its passkey went: %+v, %v; want alive, naming passkey %d", s, err, pa2.ID)
	}
	if list := f.passkeys(t, b.ID); len(list) != 1 {
		t.Errorf("b's passkeys changed: %+v", list)
	}
	if s, err := f.s.UserSession(f.ctx, b.ID, "b1", now); err != nil {
		t.Errorf("b's session ended: %+v, %v", s, err)
	}
}

func (f *fixture) liveList(t *testing.T, userID int64, now time.Time) []db.Session {
	t.Helper()
	list, err := f.s.ListSessions(f.ctx, userID, now)
	if err != nil {
		t.Fatal(err)
	}
	return list
}

// passkeySignIn signs in with passkey id, its counter now count.
func (f *fixture) passkeySignIn(t *testing.T, id int64, count uint32, s db.Session) bool {
	t.Helper()
	_, cloned, err := f.s.SignInWithPasskey(f.ctx, db.PasskeyUse{PasskeyID: id, SignCount: count, BackupState: true, At: s.CreatedAt},
		s, 0, f.userRow(t, s.UserID).Epoch)
	if err != nil {
		t.Fatalf("SignInWithPasskey(%d, %s): %v", id, s.ID, err)
	}
	return cloned
}

// testSignInWithPasskey: the session names its passkey; the passkey's use
// is recorded; a counter that does not go forward is a warning recorded on
// the passkey and in the history, and the stored counter never goes back;
// another user's passkey and a reset in flight refuse, changing nothing.
func testSignInWithPasskey(t *testing.T, f *fixture) {
	a, b := f.user(t, "a@example.com"), f.user(t, "b@example.com")
	p := Passkey("Key", a.ID, T0)
	p.BackupState = false
	p = f.addPasskey(t, p)
	h := newHistory(f)
	h.skip(t, a.ID)

	s1 := device("s1", a.ID, T0.Add(time.Minute))
	s1.AuthMethod = db.MethodPasskey
	if f.passkeySignIn(t, p.ID, 5, s1) {
		t.Error("a counter going forward from 0 was taken for a clone")
	}
	sess, err := f.s.UserSession(f.ctx, a.ID, "s1", s1.CreatedAt)
	if err != nil || sess.PasskeyID != p.ID || sess.AuthMethod != db.MethodPasskey {
		t.Errorf("the session = %+v, %v; want passkey %d", sess, err, p.ID)
	}
	sums, err := f.s.ListSessionSummaries(f.ctx, a.ID, s1.CreatedAt)
	if err != nil || len(sums) != 1 || sums[0].PasskeyID != p.ID {
		t.Errorf("the summaries = %+v, %v; want one naming passkey %d", sums, err, p.ID)
	}
	got := f.passkeys(t, a.ID)[0]
	if got.SignCount != 5 || !got.LastUsedAt.Equal(s1.CreatedAt) || !got.BackupState || got.CloneWarnings != 0 {
		t.Errorf("after a sign-in: %+v; want counter 5, used at %v, backed up now", got, s1.CreatedAt)
	}
	h.expect(t, "a passkey sign-in", a.ID, signedIn(s1))

	// The counter goes back: a possible clone. The sign-in goes on.
	s2 := device("s2", a.ID, T0.Add(2*time.Minute))
	if !f.passkeySignIn(t, p.ID, 3, s2) {
		t.Error("a counter going back was not reported")
	}
	got = f.passkeys(t, a.ID)[0]
	if got.SignCount != 5 || got.CloneWarnings != 1 || !got.CloneWarnedAt.Equal(s2.CreatedAt) || !got.LastUsedAt.Equal(s2.CreatedAt) {
		t.Errorf("after a counter went back: %+v; want counter kept at 5, one warning at %v", got, s2.CreatedAt)
	}
	h.expect(t, "a counter going back", a.ID, signedIn(s2), db.SecurityEvent{UserID: a.ID, Kind: db.EventPasskeyCloned,
		At: s2.CreatedAt, SessionID: "s2", Device: s2.DeviceLabel, Location: s2.Location, IP: s2.IP, Detail: "Key"})
	// The same counter again is no step forward either.
	if !f.passkeySignIn(t, p.ID, 5, device("s3", a.ID, T0.Add(3*time.Minute))) {
		t.Error("a counter standing still was not reported")
	}
	if got = f.passkeys(t, a.ID)[0]; got.CloneWarnings != 2 {
		t.Errorf("warnings = %d, want 2", got.CloneWarnings)
	}
	h.skip(t, a.ID)

	// A passkey that keeps no counter (0 and 0) is never a clone.
	q := f.addPasskey(t, Passkey("Synced", a.ID, T0))
	if f.passkeySignIn(t, q.ID, 0, device("s4", a.ID, T0)) || f.passkeySignIn(t, q.ID, 0, device("s5", a.ID, T0)) {
		t.Error("a passkey without a counter was taken for a clone")
	}

	// Refusals.
	before := f.dump(t)
	if _, _, err := f.s.SignInWithPasskey(f.ctx, db.PasskeyUse{PasskeyID: p.ID, SignCount: 9, At: T0}, device("x1", b.ID, T0), 0, b.Epoch); !errors.Is(err, db.ErrNotFound) {
		t.Errorf("a sign-in of b's with a's passkey: %v, want ErrNotFound", err)
	}
	if _, _, err := f.s.SignInWithPasskey(f.ctx, db.PasskeyUse{PasskeyID: 99999, SignCount: 9, At: T0}, device("x2", a.ID, T0), 0, f.userRow(t, a.ID).Epoch); !errors.Is(err, db.ErrNotFound) {
		t.Errorf("a sign-in with an unknown passkey: %v, want ErrNotFound", err)
	}
	stale := f.userRow(t, a.ID).Epoch
	f.unchanged(t, before, "refused passkey sign-ins")
	if _, err := f.s.RevokeAllSessions(f.ctx, a.ID, db.ReasonRevokedAll, "", T0); err != nil {
		t.Fatal(err)
	}
	before = f.dump(t)
	if _, _, err := f.s.SignInWithPasskey(f.ctx, db.PasskeyUse{PasskeyID: p.ID, SignCount: 9, At: T0}, device("x3", a.ID, T0), 0, stale); !errors.Is(err, db.ErrSignInsReset) {
		t.Errorf("a passkey sign-in from before a reset: %v, want ErrSignInsReset", err)
	}
	f.unchanged(t, before, "a passkey sign-in from before a reset")
}

// testPasskeyCeremonies: a ceremony is taken once, only as the kind and
// by the session it was begun for, only before it expires; pruning drops
// the expired ones; two takers at once: one gets it.
func testPasskeyCeremonies(t *testing.T, f *fixture) {
	a := f.user(t, "a@example.com")
	reg := db.PasskeyCeremony{ID: "reg-1", Kind: db.CeremonyRegister, UserID: a.ID, SessionID: "sess-a", Name: "MacBook",
		Data: []byte(`{"challenge":"x"}`), CreatedAt: T0, ExpiresAt: T0.Add(5 * time.Minute)}
	login := db.PasskeyCeremony{ID: "login-1", Kind: db.CeremonyLogin, Data: []byte(`{"challenge":"y"}`), CreatedAt: T0, ExpiresAt: T0.Add(5 * time.Minute)}
	for _, c := range []db.PasskeyCeremony{reg, login} {
		if err := f.s.CreatePasskeyCeremony(f.ctx, c); err != nil {
			t.Fatalf("CreatePasskeyCeremony(%s): %v", c.ID, err)
		}
	}
	if err := f.s.CreatePasskeyCeremony(f.ctx, reg); !errors.Is(err, db.ErrConflict) {
		t.Errorf("a ceremony id twice: %v, want ErrConflict", err)
	}
	if err := f.s.CreatePasskeyCeremony(f.ctx, db.PasskeyCeremony{ID: "ghost", Kind: db.CeremonyRegister, UserID: 9999, Data: []byte("{}"), CreatedAt: T0, ExpiresAt: T0}); !errors.Is(err, db.ErrNotFound) {
		t.Errorf("a ceremony of no such user: %v, want ErrNotFound", err)
	}
	before := f.dump(t)
	for _, tc := range []struct{ what, id, kind, session string }{
		{"another session's", "reg-1", db.CeremonyRegister, "sess-b"},
		{"the wrong kind", "reg-1", db.CeremonyLogin, "sess-a"},
		{"a sign-in's, taken as a registration", "login-1", db.CeremonyRegister, ""},
		{"an unknown one", "nope", db.CeremonyLogin, ""},
	} {
		if _, err := f.s.TakePasskeyCeremony(f.ctx, tc.id, tc.kind, tc.session, T0); !errors.Is(err, db.ErrNotFound) {
			t.Errorf("taking %s: %v, want ErrNotFound", tc.what, err)
		}
	}
	f.unchanged(t, before, "refused takes")
	got, err := f.s.TakePasskeyCeremony(f.ctx, "reg-1", db.CeremonyRegister, "sess-a", T0.Add(time.Minute))
	if err != nil || got.UserID != a.ID || got.Name != "MacBook" || string(got.Data) != `{"challenge":"x"}` || !got.ExpiresAt.Equal(reg.ExpiresAt) || !got.CreatedAt.Equal(T0) {
		t.Fatalf("TakePasskeyCeremony = %+v, %v", got, err)
	}
	if _, err := f.s.TakePasskeyCeremony(f.ctx, "reg-1", db.CeremonyRegister, "sess-a", T0.Add(time.Minute)); !errors.Is(err, db.ErrNotFound) {
		t.Errorf("a ceremony taken twice: %v, want ErrNotFound", err)
	}
	// Expired: refused, and gone.
	if _, err := f.s.TakePasskeyCeremony(f.ctx, "login-1", db.CeremonyLogin, "", login.ExpiresAt); !errors.Is(err, db.ErrNotFound) {
		t.Errorf("an expired ceremony: %v, want ErrNotFound", err)
	}
	if _, err := f.s.TakePasskeyCeremony(f.ctx, "login-1", db.CeremonyLogin, "", T0); !errors.Is(err, db.ErrNotFound) {
		t.Errorf("an expired ceremony was kept: %v", err)
	}

	// Pruning: expired before the cutoff only.
	for i, exp := range []time.Time{T0.Add(-time.Minute), T0.Add(time.Minute)} {
		c := login
		c.ID, c.ExpiresAt = []string{"old", "new"}[i], exp
		if err := f.s.CreatePasskeyCeremony(f.ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := f.s.PrunePasskeyCeremonies(f.ctx, T0); err != nil || n != 1 {
		t.Errorf("PrunePasskeyCeremonies = %d, %v; want 1", n, err)
	}
	if _, err := f.s.TakePasskeyCeremony(f.ctx, "new", db.CeremonyLogin, "", T0); err != nil {
		t.Errorf("pruning took a live ceremony: %v", err)
	}

	// Two at once: exactly one takes it.
	if err := f.s.CreatePasskeyCeremony(f.ctx, db.PasskeyCeremony{ID: "race", Kind: db.CeremonyLogin, Data: []byte("{}"), CreatedAt: T0, ExpiresAt: T0.Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	took := 0
	for range 8 {
		wg.Go(func() {
			_, err := f.s.TakePasskeyCeremony(f.ctx, "race", db.CeremonyLogin, "", T0)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				took++
			case !errors.Is(err, db.ErrNotFound):
				t.Errorf("a racing take: %v", err)
			}
		})
	}
	wg.Wait()
	if took != 1 {
		t.Errorf("%d racing takes got the ceremony, want 1", took)
	}

	// A deleted user's ceremonies and passkeys go with it.
	f.addPasskey(t, Passkey("Gone", a.ID, T0))
	if err := f.s.CreatePasskeyCeremony(f.ctx, reg); err != nil {
		t.Fatal(err)
	}
	if _, err := f.s.DeleteUser(f.ctx, a.ID, T0); err != nil {
		t.Fatal(err)
	}
	if _, err := f.s.TakePasskeyCeremony(f.ctx, "reg-1", db.CeremonyRegister, "sess-a", T0); !errors.Is(err, db.ErrNotFound) {
		t.Errorf("a deleted user's ceremony was kept: %v", err)
	}
	if _, err := f.s.PasskeyByCredentialID(f.ctx, []byte("cred-Gone")); !errors.Is(err, db.ErrNotFound) {
		t.Errorf("a deleted user's passkey was kept: %v", err)
	}
}

// names is the passkeys' names, in order, joined by commas.
func names(list []db.Passkey) string {
	out := make([]string, len(list))
	for i, p := range list {
		out[i] = p.Name
	}
	return strings.Join(out, ",")
}

// testPasskeyInventory: disowning a session (a recovery with
// RemovePasskeysAddedBy) removes the passkeys added from it and, in turn,
// from the sessions they opened, ending those sessions, in the recovery's
// transaction; RemovePasskeys removes more of the user's (another user's
// id is skipped); the kept session is never ended; a refused recovery
// removes nothing.
func testPasskeyInventory(t *testing.T, f *fixture) {
	a, b := f.user(t, "a@example.com"), f.user(t, "b@example.com")
	own, thief := device("own", a.ID, T0), device("thief", a.ID, T0)
	f.session(t, own)
	f.session(t, thief)
	mine := Passkey("Mine", a.ID, T0)
	mine.AddedBySession = "own"
	mine = f.addPasskey(t, mine)
	t1 := Passkey("Thief1", a.ID, T0.Add(time.Minute))
	t1.AddedBySession = "thief"
	t1 = f.addPasskey(t, t1)
	// The thief signs in with it elsewhere and adds another from there.
	f.passkeySignIn(t, t1.ID, 0, device("t2", a.ID, T0.Add(2*time.Minute)))
	t2 := Passkey("Thief2", a.ID, T0.Add(3*time.Minute))
	t2.AddedBySession = "t2"
	t2 = f.addPasskey(t, t2)
	f.passkeySignIn(t, mine.ID, 0, device("m1", a.ID, T0.Add(4*time.Minute)))
	// Another user's passkey, added from a session with the same id.
	other := Passkey("Other", b.ID, T0)
	other.AddedBySession = "thief"
	other = f.addPasskey(t, other)

	if list := f.passkeys(t, a.ID); len(list) != 3 || list[1].AddedBySession != "thief" || list[1].ID != t1.ID {
		t.Errorf("a's passkeys = %+v; want Thief1 added by thief", list)
	}
	for _, c := range []struct {
		user    int64
		session string
		want    string
	}{{a.ID, "thief", "Thief1,Thief2"}, {a.ID, "t2", "Thief2"}, {a.ID, "own", "Mine"}, {a.ID, "", ""}, {a.ID, "nobody", ""}, {b.ID, "own", ""}} {
		got, err := f.s.PasskeysAddedFrom(f.ctx, c.user, c.session)
		if err != nil || names(got) != c.want {
			t.Errorf("PasskeysAddedFrom(%d, %q) = %s, %v; want %s", c.user, c.session, names(got), err, c.want)
		}
	}

	// Refused (the kept session is not alive): nothing is removed.
	before := f.dump(t)
	_, err := f.s.RecoverAccount(f.ctx, db.Recovery{UserID: a.ID, KeepSessionID: "gone", KeepSecretHash: []byte("x"),
		EndSessionID: "thief", RemovePasskeysAddedBy: "thief", Reason: db.ReasonNotMe, By: "gone", Now: T0.Add(time.Hour)})
	if !errors.Is(err, db.ErrNotFound) {
		t.Errorf("a recovery from an ended session: %v, want ErrNotFound", err)
	}
	f.unchanged(t, before, "a refused recovery")

	h := newHistory(f)
	h.skip(t, a.ID)
	now := T0.Add(time.Hour)
	done, err := f.s.RecoverAccount(f.ctx, db.Recovery{UserID: a.ID, KeepSessionID: "own", KeepSecretHash: []byte("new"),
		EndSessionID: "thief", RemovePasskeysAddedBy: "thief", RemovePasskeys: []int64{other.ID, 99999},
		PasswordHash: "new-hash", Reason: db.ReasonNotMe, By: "own", Now: now})
	if err != nil {
		t.Fatal(err)
	}
	if names(done.Passkeys) != "Thief1,Thief2" || sortedIDs(done.Ended) != "t2,thief" {
		t.Errorf("recovery removed %s, ended %s; want Thief1,Thief2 and t2,thief", names(done.Passkeys), sortedIDs(done.Ended))
	}
	if list := f.passkeys(t, a.ID); names(list) != "Mine" {
		t.Errorf("a's passkeys after: %s, want Mine", names(list))
	}
	if list := f.passkeys(t, b.ID); len(list) != 1 || !samePasskey(list[0], other) {
		t.Errorf("b's passkeys after: %+v, want Other unchanged", list)
	}
	if live := sortedIDs(f.liveList(t, a.ID, now)); live != "m1,own" {
		t.Errorf("live after: %s, want m1,own", live)
	}
	t2s := device("t2", a.ID, T0.Add(2*time.Minute))
	t2s.AuthMethod = db.MethodPasskey
	h.expect(t, "the recovery", a.ID,
		db.SecurityEvent{UserID: a.ID, Kind: db.EventPasswordChanged, At: now, Reason: db.ReasonNotMe},
		db.SecurityEvent{UserID: a.ID, Kind: db.EventPasskeyRemoved, At: now, Detail: "Thief2", Reason: db.ReasonNotMe, By: "own"},
		db.SecurityEvent{UserID: a.ID, Kind: db.EventPasskeyRemoved, At: now, Detail: "Thief1", Reason: db.ReasonNotMe, By: "own"},
		endedEvent(thief, db.ReasonNotMe, "own", now), endedEvent(t2s, db.ReasonPasskeyRemoved, "own", now))

	// The owner's own passkey, ticked, from the session it opened: that
	// session stays (it is this browser); its other sessions would end.
	done, err = f.s.RecoverAccount(f.ctx, db.Recovery{UserID: a.ID, KeepSessionID: "m1", KeepSecretHash: []byte("new2"),
		RemovePasskeys: []int64{mine.ID}, Reason: db.ReasonPasswordReset, By: "m1", Now: now})
	if err != nil || names(done.Passkeys) != "Mine" || len(done.Ended) != 0 {
		t.Errorf("removing the kept session's passkey: %s, ended %s, %v; want Mine, nothing ended", names(done.Passkeys), sortedIDs(done.Ended), err)
	}
	if live := sortedIDs(f.liveList(t, a.ID, now)); live != "m1,own" {
		t.Errorf("live after: %s, want m1,own", live)
	}
}
