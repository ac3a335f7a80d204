package storetest

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"doorman/db"
)

// history checks a user's security history write by write: each expect
// compares the events recorded since the previous one with what the write
// should have recorded, exactly (none missing, none extra).
type history struct {
	f    *fixture
	seen map[int64]int64 // user id → the newest event id already checked
}

func newHistory(f *fixture) *history { return &history{f: f, seen: map[int64]int64{}} }

// all returns every event of the user, newest first.
func (h *history) all(t *testing.T, userID int64) []db.SecurityEvent {
	t.Helper()
	list, err := h.f.s.ListSecurityEvents(h.f.ctx, userID, 0, time.Time{}, 10_000)
	if err != nil {
		t.Fatalf("ListSecurityEvents(%d): %v", userID, err)
	}
	return list
}

// expect fails the test unless the user's events since the last expect are
// exactly want (in any order: the order of several endings of one write is
// not specified), their IDs aside.
func (h *history) expect(t *testing.T, what string, userID int64, want ...db.SecurityEvent) {
	t.Helper()
	var got []db.SecurityEvent
	for _, e := range h.all(t, userID) {
		if e.ID > h.seen[userID] {
			got = append(got, e)
		}
	}
	if len(got) > 0 {
		h.seen[userID] = got[0].ID
	}
	for i := range got {
		if got[i].ID <= 0 {
			t.Errorf("%s: an event without an id: %+v", what, got[i])
		}
		got[i].ID = 0
	}
	order := func(a, b db.SecurityEvent) int {
		return cmp.Or(strings.Compare(a.Kind, b.Kind), strings.Compare(a.SessionID, b.SessionID), strings.Compare(a.TokenID, b.TokenID))
	}
	slices.SortFunc(got, order)
	want = slices.Clone(want)
	slices.SortFunc(want, order)
	if !slices.EqualFunc(got, want, sameSecurityEvent) {
		t.Errorf("%s recorded\n %s\nwant\n %s", what, eventList(got), eventList(want))
	}
}

// sameSecurityEvent compares every field, times as instants.
func sameSecurityEvent(a, b db.SecurityEvent) bool {
	same := a.At.Equal(b.At)
	a.At, b.At = time.Time{}, time.Time{}
	return same && a == b
}

func eventList(list []db.SecurityEvent) string {
	if len(list) == 0 {
		return "(none)"
	}
	out := make([]string, len(list))
	for i, e := range list {
		out[i] = fmt.Sprintf("%+v", e)
	}
	return strings.Join(out, "\n ")
}

// device is Session with a device, place and address of its own, so an
// event naming the wrong session shows.
func device(id string, userID int64, at time.Time) db.Session {
	s := Session(id, userID, at)
	s.DeviceLabel, s.Location, s.IP = "Device "+id, "Place "+id, "address of "+id
	return s
}

// signedIn is the event of s starting.
func signedIn(s db.Session) db.SecurityEvent {
	return db.SecurityEvent{UserID: s.UserID, Kind: db.EventSignIn, At: s.CreatedAt, SessionID: s.ID,
		Device: s.DeviceLabel, Location: s.Location, IP: s.IP, Method: s.AuthMethod}
}

// endedEvent is the event of s ended at at for reason, by by.
func endedEvent(s db.Session, reason, by string, at time.Time) db.SecurityEvent {
	return db.SecurityEvent{UserID: s.UserID, Kind: db.EventSessionEnded, At: at, SessionID: s.ID,
		Device: s.DeviceLabel, Location: s.Location, IP: s.IP, Reason: reason, By: by}
}

// tokenEnded is the event of tok ended at at for reason, by by.
func tokenEnded(tok db.Token, reason, by string, at time.Time) db.SecurityEvent {
	return db.SecurityEvent{UserID: tok.UserID, Kind: db.EventTokenRevoked, At: at, TokenID: tok.ID,
		Method: tok.Kind, Detail: tok.Name, Reason: reason, By: by}
}

// testHistoryOfSessions: every write that starts or ends sessions records
// exactly that, in the user's own history, with the session's device, place
// and address, the reason and who; a refused write records nothing.
func testHistoryOfSessions(t *testing.T, f *fixture) {
	h := newHistory(f)
	a, b := f.user(t, "a@example.com"), f.user(t, "b@example.com")
	h.expect(t, "creating users", a.ID)
	s := map[string]db.Session{}
	at := func(m int) time.Time { return T0.Add(time.Duration(m) * time.Minute) }
	signIn := func(id string, userID int64, when time.Time, maxPerUser int) []db.Session {
		t.Helper()
		s[id] = device(id, userID, when)
		evicted, err := f.create(t, s[id], maxPerUser)
		if err != nil {
			t.Fatalf("CreateSession(%s): %v", id, err)
		}
		return evicted
	}
	signIn("a1", a.ID, at(0), 0)
	h.expect(t, "a sign-in", a.ID, signedIn(s["a1"]))
	signIn("a2", a.ID, at(1), 0)
	h.expect(t, "a second sign-in", a.ID, signedIn(s["a2"]))
	// Past the cap: a1, the least recently active, is ended by a3.
	if evicted := signIn("a3", a.ID, at(2), 2); ids(evicted) != "a1" {
		t.Fatalf("evicted %s, want a1", ids(evicted))
	}
	h.expect(t, "a sign-in at the cap", a.ID, signedIn(s["a3"]), endedEvent(s["a1"], db.ReasonSessionLimit, "a3", at(2)))
	h.expect(t, "a's sign-ins, in b's history", b.ID)

	// Refused sign-ins record nothing.
	f.rec.Take()
	before, _ := f.s.Dump(f.ctx)
	u, _ := f.s.UserByID(f.ctx, a.ID)
	if _, err := f.s.CreateSession(f.ctx, device("ax", a.ID, at(3)), 1, u.Epoch+1); !errors.Is(err, db.ErrSignInsReset) {
		t.Fatalf("a sign-in with a stale epoch: %v, want ErrSignInsReset", err)
	}
	if _, err := f.s.CreateSession(f.ctx, device("ay", 99999, at(3)), 1, 0); !errors.Is(err, db.ErrNotFound) {
		t.Fatalf("a sign-in of nobody: %v, want ErrNotFound", err)
	}
	f.unchanged(t, before, "a refused sign-in")
	h.expect(t, "a refused sign-in", a.ID)

	// Ending one: another user's, an unknown or an ended one is refused.
	signIn("b1", b.ID, at(3), 0)
	h.expect(t, "b's sign-in", b.ID, signedIn(s["b1"]))
	for _, c := range []struct{ what, id string }{{"b's session", "b1"}, {"an unknown session", "zz"}, {"an ended session", "a1"}} {
		if _, err := f.s.RevokeSession(f.ctx, a.ID, c.id, db.ReasonRevoked, "a2", at(4)); !errors.Is(err, db.ErrNotFound) {
			t.Fatalf("revoking %s: %v, want ErrNotFound", c.what, err)
		}
	}
	h.expect(t, "refused revocations", a.ID)
	h.expect(t, "refused revocations", b.ID)
	if _, err := f.s.RevokeSession(f.ctx, a.ID, "a2", db.ReasonRevoked, "a3", at(4)); err != nil {
		t.Fatal(err)
	}
	h.expect(t, "a revocation", a.ID, endedEvent(s["a2"], db.ReasonRevoked, "a3", at(4)))
	// Signing out is an ending too.
	if _, err := f.s.RevokeSession(f.ctx, a.ID, "a3", db.ReasonSignedOut, "a3", at(5)); err != nil {
		t.Fatal(err)
	}
	h.expect(t, "a sign-out", a.ID, endedEvent(s["a3"], db.ReasonSignedOut, "a3", at(5)))

	// Sign out the others, and everywhere.
	for _, id := range []string{"a4", "a5", "a6"} {
		signIn(id, a.ID, at(6), 0)
	}
	h.expect(t, "three sign-ins", a.ID, signedIn(s["a4"]), signedIn(s["a5"]), signedIn(s["a6"]))
	if _, err := f.s.RevokeOtherSessions(f.ctx, a.ID, "a4", db.ReasonRevokedOthers, at(7)); err != nil {
		t.Fatal(err)
	}
	h.expect(t, "sign out the others", a.ID,
		endedEvent(s["a5"], db.ReasonRevokedOthers, "a4", at(7)), endedEvent(s["a6"], db.ReasonRevokedOthers, "a4", at(7)))
	if _, err := f.s.RevokeOtherSessions(f.ctx, a.ID, "a4", db.ReasonRevokedOthers, at(7)); err != nil {
		t.Fatal(err)
	}
	h.expect(t, "sign out the others, with none left", a.ID)
	signIn("a7", a.ID, at(8), 0)
	h.expect(t, "a sign-in", a.ID, signedIn(s["a7"]))
	if _, err := f.s.RevokeAllSessions(f.ctx, a.ID, db.ReasonRevokedAll, "a7", at(9)); err != nil {
		t.Fatal(err)
	}
	h.expect(t, "sign out everywhere", a.ID,
		endedEvent(s["a4"], db.ReasonRevokedAll, "a7", at(9)), endedEvent(s["a7"], db.ReasonRevokedAll, "a7", at(9)))

	// A password change records itself (from the session that made it,
	// with its device) and the others it ends.
	for _, id := range []string{"a8", "a9"} {
		signIn(id, a.ID, at(10), 0)
	}
	h.expect(t, "two sign-ins", a.ID, signedIn(s["a8"]), signedIn(s["a9"]))
	changed := db.SecurityEvent{UserID: a.ID, Kind: db.EventPasswordChanged, At: at(11), SessionID: "a8",
		Device: s["a8"].DeviceLabel, Location: s["a8"].Location, IP: s["a8"].IP}
	if _, _, err := f.s.ChangePassword(f.ctx, a.ID, "a8", "hash-2", []byte("secret-2"), true, false, at(11)); err != nil {
		t.Fatal(err)
	}
	h.expect(t, "a password change", a.ID, changed, endedEvent(s["a9"], db.ReasonPassword, "a8", at(11)))
	changed.At = at(12)
	if _, _, err := f.s.ChangePassword(f.ctx, a.ID, "a8", "hash-3", []byte("secret-3"), false, false, at(12)); err != nil {
		t.Fatal(err)
	}
	h.expect(t, "a password change keeping the others", a.ID, changed)
	for _, id := range []string{"a9", "b1", "zz"} {
		if _, _, err := f.s.ChangePassword(f.ctx, a.ID, id, "hash-4", []byte("secret-4"), true, false, at(13)); !errors.Is(err, db.ErrNotFound) {
			t.Fatalf("a password change from %s: %v, want ErrNotFound", id, err)
		}
	}
	h.expect(t, "refused password changes", a.ID)
	h.expect(t, "a's password changes, in b's history", b.ID)

	// Disabling ends the sessions left, as the operator.
	signIn("a10", a.ID, at(14), 0)
	h.expect(t, "a sign-in", a.ID, signedIn(s["a10"]))
	if _, err := f.s.SetUserDisabled(f.ctx, a.ID, true, at(15)); err != nil {
		t.Fatal(err)
	}
	h.expect(t, "disabling", a.ID,
		endedEvent(s["a8"], db.ReasonDisabled, "operator", at(15)), endedEvent(s["a10"], db.ReasonDisabled, "operator", at(15)))
	if _, err := f.s.SetUserDisabled(f.ctx, a.ID, false, at(16)); err != nil {
		t.Fatal(err)
	}
	h.expect(t, "enabling", a.ID)
	h.expect(t, "a's endings, in b's history", b.ID)
	// Rotation and touches are no security events.
	if err := f.s.RotateSession(f.ctx, "b1", []byte("rotated"), at(16)); err != nil {
		t.Fatal(err)
	}
	if err := f.s.TouchSession(f.ctx, "b1", db.Touch{LastSeenAt: at(16), IdleExpiresAt: at(60)}); err != nil {
		t.Fatal(err)
	}
	h.expect(t, "a rotation and a touch", b.ID)
}

// testHistoryOfCompletion: completing a two-factor sign-in records the
// sign-in (its method) and its evictions, like CreateSession; a completion
// that fails records nothing.
func testHistoryOfCompletion(t *testing.T, f *fixture) {
	h := newHistory(f)
	a := f.user(t, "a@example.com")
	s1 := device("a1", a.ID, T0)
	f.session(t, s1)
	h.expect(t, "a sign-in", a.ID, signedIn(s1))
	now := T0.Add(time.Minute)
	f.pending(t, "p1", a.ID, T0.Add(5*time.Minute))
	s2 := device("a2", a.ID, now)
	s2.AuthMethod = db.MethodPasswordTOTP
	if _, err := f.s.CompletePendingSignIn(f.ctx, "p1", s2, 1); err != nil {
		t.Fatal(err)
	}
	h.expect(t, "a completed sign-in at the cap", a.ID, signedIn(s2), endedEvent(s1, db.ReasonSessionLimit, "a2", now))

	before, _ := f.s.Dump(f.ctx)
	f.rec.Take()
	if _, err := f.s.CompletePendingSignIn(f.ctx, "p1", device("a3", a.ID, now), 0); !errors.Is(err, db.ErrNotFound) {
		t.Fatalf("a second completion: %v, want ErrNotFound", err)
	}
	f.unchanged(t, before, "a second completion")
	f.pending(t, "p-exp", a.ID, T0.Add(5*time.Minute))
	before, _ = f.s.Dump(f.ctx)
	if _, err := f.s.CompletePendingSignIn(f.ctx, "p-exp", device("a4", a.ID, T0.Add(5*time.Minute)), 0); !errors.Is(err, db.ErrNotFound) {
		t.Fatalf("an expired completion: %v, want ErrNotFound", err)
	}
	f.unchanged(t, before, "an expired completion")
	f.pending(t, "p-reset", a.ID, T0.Add(5*time.Minute))
	if _, err := f.s.RevokeOtherSessions(f.ctx, a.ID, "a2", db.ReasonRevokedOthers, now); err != nil {
		t.Fatal(err)
	}
	h.expect(t, "sign out the others, with none", a.ID)
	before, _ = f.s.Dump(f.ctx)
	if _, err := f.s.CompletePendingSignIn(f.ctx, "p-reset", device("a5", a.ID, now), 0); !errors.Is(err, db.ErrSignInsReset) {
		t.Fatalf("a completion after a reset: %v, want ErrSignInsReset", err)
	}
	f.unchanged(t, before, "a refused completion")
	h.expect(t, "failed completions", a.ID)
}

// testHistoryOfAccount: password, email and two-factor changes record
// themselves; refused ones, and turning off what was not on, do not.
func testHistoryOfAccount(t *testing.T, f *fixture) {
	h := newHistory(f)
	a, b := f.user(t, "a@example.com"), f.user(t, "b@example.com")
	// The operator's (and seed's) password reset, at the store's clock.
	if err := f.s.UpdatePassword(f.ctx, a.ID, "hash-2"); err != nil {
		t.Fatal(err)
	}
	h.expect(t, "UpdatePassword", a.ID, db.SecurityEvent{UserID: a.ID, Kind: db.EventPasswordChanged, At: T0})
	if err := f.s.UpdatePassword(f.ctx, 99999, "hash-3"); !errors.Is(err, db.ErrNotFound) {
		t.Fatalf("UpdatePassword of nobody: %v", err)
	}
	if err := f.s.UpdateEmail(f.ctx, a.ID, "new@example.com"); err != nil {
		t.Fatal(err)
	}
	h.expect(t, "UpdateEmail", a.ID, db.SecurityEvent{UserID: a.ID, Kind: db.EventEmailChanged, At: T0, Detail: "new@example.com"})
	before, _ := f.s.Dump(f.ctx)
	if err := f.s.UpdateEmail(f.ctx, a.ID, "b@example.com"); !errors.Is(err, db.ErrEmailTaken) {
		t.Fatalf("UpdateEmail to b's address: %v, want ErrEmailTaken", err)
	}
	if err := f.s.UpdateEmail(f.ctx, 99999, "c@example.com"); !errors.Is(err, db.ErrNotFound) {
		t.Fatalf("UpdateEmail of nobody: %v", err)
	}
	f.unchanged(t, before, "a refused email change")
	h.expect(t, "refused email changes", a.ID)
	h.expect(t, "a's changes, in b's history", b.ID)

	// Two-factor: on when confirmed, off when it was on.
	now := T0.Add(time.Minute)
	if err := f.s.StartTwoFactor(f.ctx, a.ID, "sealed-1", now); err != nil {
		t.Fatal(err)
	}
	h.expect(t, "starting a setup", a.ID)
	if err := f.s.EnableTwoFactor(f.ctx, a.ID, "sealed-other", 1, codes("x"), now); !errors.Is(err, db.ErrNotFound) {
		t.Fatalf("enabling another setup's secret: %v, want ErrNotFound", err)
	}
	h.expect(t, "a refused enable", a.ID)
	if err := f.s.DisableTwoFactor(f.ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	h.expect(t, "removing a setup never confirmed", a.ID)
	if err := f.s.StartTwoFactor(f.ctx, a.ID, "sealed-2", now); err != nil {
		t.Fatal(err)
	}
	if err := f.s.EnableTwoFactor(f.ctx, a.ID, "sealed-2", 1, codes("x", "y"), now); err != nil {
		t.Fatal(err)
	}
	h.expect(t, "EnableTwoFactor", a.ID, db.SecurityEvent{UserID: a.ID, Kind: db.EventTwoFactorOn, At: now})
	if err := f.s.EnableTwoFactor(f.ctx, a.ID, "sealed-2", 2, codes("z"), now); !errors.Is(err, db.ErrTwoFactorEnabled) {
		t.Fatalf("enabling twice: %v, want ErrTwoFactorEnabled", err)
	}
	if err := f.s.ReplaceRecoveryCodes(f.ctx, a.ID, codes("z"), now); err != nil {
		t.Fatal(err)
	}
	h.expect(t, "a second enable and new recovery codes", a.ID)
	if err := f.s.DisableTwoFactor(f.ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	h.expect(t, "DisableTwoFactor", a.ID, db.SecurityEvent{UserID: a.ID, Kind: db.EventTwoFactorOff, At: T0})
	if err := f.s.DisableTwoFactor(f.ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	if err := f.s.DisableTwoFactor(f.ctx, 99999); err != nil {
		t.Fatalf("DisableTwoFactor of nobody: %v, want no error", err)
	}
	h.expect(t, "disabling what is off", a.ID)
	h.expect(t, "a's two-factor, in b's history", b.ID)
}

// testHistoryOfTokens: a personal token's creation, an app's connection and
// every token ending record themselves, in the token owner's history; a
// refused write records nothing.
func testHistoryOfTokens(t *testing.T, f *fixture) {
	h := newHistory(f)
	a, b := f.user(t, "a@example.com"), f.user(t, "b@example.com")
	now := T0.Add(time.Minute)
	t1 := Token("t1", a.ID, db.TokenPersonal, now)
	f.token(t, t1)
	h.expect(t, "a personal token", a.ID, db.SecurityEvent{UserID: a.ID, Kind: db.EventTokenCreated, At: now, TokenID: "t1",
		Detail: t1.Name, IP: t1.CreatedIP, Location: t1.CreatedLocation})
	// An app's token is recorded by the redemption that makes it, not here.
	f.token(t, Token("t-app", a.ID, db.TokenApp, now))
	h.expect(t, "an app token made directly", a.ID)
	if err := f.s.CreateToken(f.ctx, Token("t-nobody", 99999, db.TokenPersonal, now), 0); !errors.Is(err, db.ErrNotFound) {
		t.Fatalf("a token of nobody: %v", err)
	}

	// Redeeming an approved device code: the app connected, named by the
	// token, from where the request came.
	f.app(t, "cli")
	f.app(t, "other")
	f.device(t, Device("APPROVED", "cli", T0))
	f.device(t, Device("PENDPEND", "cli", T0))
	if err := f.s.DecideDeviceAuthorization(f.ctx, "APPROVED", a.ID, a.Epoch, true, now); err != nil {
		t.Fatal(err)
	}
	hash := func(code string) []byte { return Device(code, "cli", T0).DeviceCodeHash }
	before, _ := f.s.Dump(f.ctx)
	f.rec.Take()
	for _, c := range []struct {
		code string
		user int64
	}{{"PENDPEND", a.ID}, {"APPROVED", b.ID}, {"UNKNOWN1", a.ID}} {
		if err := f.s.RedeemDeviceAuthorization(f.ctx, hash(c.code), Token("t-x", c.user, db.TokenApp, now)); !errors.Is(err, db.ErrNotFound) {
			t.Fatalf("redeeming %s as %d: %v, want ErrNotFound", c.code, c.user, err)
		}
	}
	f.unchanged(t, before, "a refused redemption")
	t2 := Token("t2", a.ID, db.TokenApp, now)
	t2.Name = "Doorman CLI"
	if err := f.s.RedeemDeviceAuthorization(f.ctx, hash("APPROVED"), t2); err != nil {
		t.Fatal(err)
	}
	d := Device("APPROVED", "cli", T0)
	h.expect(t, "a redemption", a.ID, db.SecurityEvent{UserID: a.ID, Kind: db.EventAppApproved, At: now, TokenID: "t2",
		Detail: "Doorman CLI", IP: d.IP, Location: d.Location})
	if err := f.s.RedeemDeviceAuthorization(f.ctx, hash("APPROVED"), Token("t3", a.ID, db.TokenApp, now)); !errors.Is(err, db.ErrNotFound) {
		t.Fatalf("a second redemption: %v", err)
	}
	h.expect(t, "refused redemptions", a.ID)
	h.expect(t, "a's tokens, in b's history", b.ID)

	// Endings: one, some, an app's, the app removed, the user disabled.
	later := now.Add(time.Minute)
	for _, id := range []string{"t1", "zz"} {
		if _, err := f.s.RevokeToken(f.ctx, b.ID, id, db.ReasonTokenRevoked, "b1", later); !errors.Is(err, db.ErrNotFound) {
			t.Fatalf("b revoking %s: %v, want ErrNotFound", id, err)
		}
	}
	h.expect(t, "b revoking a's token", a.ID)
	h.expect(t, "b revoking a's token", b.ID)
	if _, err := f.s.RevokeToken(f.ctx, a.ID, "t1", db.ReasonTokenRevoked, "a1", later); err != nil {
		t.Fatal(err)
	}
	h.expect(t, "RevokeToken", a.ID, tokenEnded(t1, db.ReasonTokenRevoked, "a1", later))
	if _, err := f.s.RevokeToken(f.ctx, a.ID, "t1", db.ReasonTokenRevoked, "a1", later); !errors.Is(err, db.ErrNotFound) {
		t.Fatalf("revoking twice: %v", err)
	}
	h.expect(t, "revoking twice", a.ID)

	tp, ta := Token("tp", a.ID, db.TokenPersonal, now), Token("ta", a.ID, db.TokenApp, now)
	f.token(t, tp)
	f.token(t, ta)
	h.expect(t, "two more tokens", a.ID, db.SecurityEvent{UserID: a.ID, Kind: db.EventTokenCreated, At: now, TokenID: "tp",
		Detail: tp.Name, IP: tp.CreatedIP, Location: tp.CreatedLocation})
	if _, err := f.s.RevokeTokens(f.ctx, a.ID, db.TokenPersonal, db.ReasonPassword, "a1", later); err != nil {
		t.Fatal(err)
	}
	h.expect(t, "RevokeTokens of one kind", a.ID, tokenEnded(tp, db.ReasonPassword, "a1", later))
	appTok := Token("t-app", a.ID, db.TokenApp, now)
	if _, err := f.s.RevokeAppTokens(f.ctx, a.ID, "cli", db.ReasonTokenRevoked, "a1", later); err != nil {
		t.Fatal(err)
	}
	h.expect(t, "RevokeAppTokens", a.ID, tokenEnded(t2, db.ReasonTokenRevoked, "a1", later),
		tokenEnded(appTok, db.ReasonTokenRevoked, "a1", later), tokenEnded(ta, db.ReasonTokenRevoked, "a1", later))
	if _, err := f.s.RevokeAppTokens(f.ctx, a.ID, "cli", db.ReasonTokenRevoked, "a1", later); err != nil {
		t.Fatal(err)
	}
	h.expect(t, "RevokeAppTokens with none left", a.ID)

	// Removing an app ends its tokens of every user, each in its owner's
	// history.
	ua, ub := Token("ua", a.ID, db.TokenApp, now), Token("ub", b.ID, db.TokenApp, now)
	ua.ClientID, ub.ClientID = "other", "other"
	f.token(t, ua)
	f.token(t, ub)
	if _, err := f.s.DeleteApp(f.ctx, "other", later); err != nil {
		t.Fatal(err)
	}
	h.expect(t, "DeleteApp", a.ID, tokenEnded(ua, db.ReasonAppRemoved, "operator", later))
	h.expect(t, "DeleteApp", b.ID, tokenEnded(ub, db.ReasonAppRemoved, "operator", later))
	if _, err := f.s.DeleteApp(f.ctx, "other", later); !errors.Is(err, db.ErrNotFound) {
		t.Fatalf("deleting an app twice: %v", err)
	}

	// Disabling ends sessions and tokens alike.
	s1 := device("a1", a.ID, now)
	f.session(t, s1)
	t4 := Token("t4", a.ID, db.TokenPersonal, now)
	f.token(t, t4)
	h.expect(t, "a sign-in and a token", a.ID, signedIn(s1), db.SecurityEvent{UserID: a.ID, Kind: db.EventTokenCreated, At: now,
		TokenID: "t4", Detail: t4.Name, IP: t4.CreatedIP, Location: t4.CreatedLocation})
	if _, err := f.s.SetUserDisabled(f.ctx, a.ID, true, later); err != nil {
		t.Fatal(err)
	}
	h.expect(t, "disabling", a.ID, endedEvent(s1, db.ReasonDisabled, "operator", later),
		tokenEnded(t4, db.ReasonDisabled, "operator", later))
	h.expect(t, "a's endings, in b's history", b.ID)
}

// testHistoryListing: events recorded directly come back field for field,
// per user, newest first, in pages before an id and since a time; pruning
// removes the old ones; deleting a user removes theirs.
func testHistoryListing(t *testing.T, f *fixture) {
	a, b := f.user(t, "a@example.com"), f.user(t, "b@example.com")
	full := db.SecurityEvent{UserID: a.ID, Kind: db.EventSignInFailed, At: T0, SessionID: "s", TokenID: "t",
		Device: "Firefox on Linux", Location: "Paris, France", IP: "203.0.113.9", Method: "password",
		Reason: "r", By: "b", Detail: "d"}
	if err := f.s.RecordSecurityEvent(f.ctx, full); err != nil {
		t.Fatal(err)
	}
	list, err := f.s.ListSecurityEvents(f.ctx, a.ID, 0, time.Time{}, 10)
	if err != nil || len(list) != 1 || list[0].ID <= 0 {
		t.Fatalf("ListSecurityEvents = %+v, %v", list, err)
	}
	got := list[0]
	got.ID = 0
	if !sameSecurityEvent(got, full) {
		t.Fatalf("the event came back as\n %+v, want\n %+v", got, full)
	}
	if err := f.s.RecordSecurityEvent(f.ctx, db.SecurityEvent{UserID: 99999, Kind: db.EventSignInFailed, At: T0}); !errors.Is(err, db.ErrNotFound) {
		t.Fatalf("an event of nobody: %v, want ErrNotFound", err)
	}
	if list, err := f.s.ListSecurityEvents(f.ctx, b.ID, 0, time.Time{}, 10); err != nil || len(list) != 0 {
		t.Fatalf("b's history holds a's event: %+v, %v", list, err)
	}

	// Nine more, one a minute (and b's in between); several at once share
	// a second, so pages go by id.
	for i := 1; i <= 9; i++ {
		at := T0.Add(time.Duration(i) * time.Minute)
		if err := f.s.RecordSecurityEvent(f.ctx, db.SecurityEvent{UserID: a.ID, Kind: db.EventTwoFactorFailed, At: at, Detail: fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
		if err := f.s.RecordSecurityEvent(f.ctx, db.SecurityEvent{UserID: b.ID, Kind: db.EventTwoFactorFailed, At: at, Detail: fmt.Sprint("b", i)}); err != nil {
			t.Fatal(err)
		}
	}
	details := func(list []db.SecurityEvent) string {
		out := make([]string, len(list))
		for i, e := range list {
			out[i] = e.Detail
		}
		return strings.Join(out, ",")
	}
	page := func(before int64, since time.Time, limit int) []db.SecurityEvent {
		t.Helper()
		list, err := f.s.ListSecurityEvents(f.ctx, a.ID, before, since, limit)
		if err != nil {
			t.Fatal(err)
		}
		for i := 1; i < len(list); i++ {
			if list[i].ID >= list[i-1].ID {
				t.Fatalf("not newest first: %+v", list)
			}
		}
		for _, e := range list {
			if e.UserID != a.ID {
				t.Fatalf("a's history holds %+v", e)
			}
		}
		return list
	}
	p1 := page(0, time.Time{}, 4)
	if got := details(p1); got != "9,8,7,6" {
		t.Fatalf("the first page: %s", got)
	}
	p2 := page(p1[len(p1)-1].ID, time.Time{}, 4)
	if got := details(p2); got != "5,4,3,2" {
		t.Fatalf("the page before %d: %s", p1[len(p1)-1].ID, got)
	}
	p3 := page(p2[len(p2)-1].ID, time.Time{}, 4)
	if got := details(p3); got != "1,d" {
		t.Fatalf("the last page: %s", got)
	}
	if got := details(page(p3[len(p3)-1].ID, time.Time{}, 4)); got != "" {
		t.Fatalf("before the oldest: %s", got)
	}
	// since is inclusive: at >= since.
	if got := details(page(0, T0.Add(7*time.Minute), 10)); got != "9,8,7" {
		t.Fatalf("since minute 7: %s", got)
	}
	if got := details(page(p1[1].ID, T0.Add(3*time.Minute), 3)); got != "7,6,5" {
		t.Fatalf("before 8, since minute 3, three: %s", got)
	}
	for _, limit := range []int{0, -1} {
		if got := details(page(0, time.Time{}, limit)); got != "" {
			t.Fatalf("a limit of %d: %s", limit, got)
		}
	}

	// Pruning: strictly older than the cutoff, of every user.
	n, err := f.s.PruneSecurityEvents(f.ctx, T0.Add(5*time.Minute))
	if err != nil || n != 5+4 {
		t.Fatalf("PruneSecurityEvents = %d, %v; want 9 (a's 5, b's 4)", n, err)
	}
	if got := details(page(0, time.Time{}, 100)); got != "9,8,7,6,5" {
		t.Fatalf("after pruning: %s", got)
	}
	if n, err := f.s.PruneSecurityEvents(f.ctx, T0.Add(5*time.Minute)); err != nil || n != 0 {
		t.Fatalf("pruning again = %d, %v", n, err)
	}
	// An event recorded after pruning still comes first: ids only grow.
	if err := f.s.RecordSecurityEvent(f.ctx, db.SecurityEvent{UserID: a.ID, Kind: db.EventSignInFailed, At: T0, Detail: "late-event"}); err != nil {
		t.Fatal(err)
	}
	if got := details(page(0, time.Time{}, 2)); got != "late-event,9" {
		t.Fatalf("after a late event: %s", got)
	}

	// Deleting the user removes their history, and only theirs.
	if _, err := f.s.DeleteUser(f.ctx, a.ID, T0); err != nil {
		t.Fatal(err)
	}
	if list, err := f.s.ListSecurityEvents(f.ctx, a.ID, 0, time.Time{}, 100); err != nil || len(list) != 0 {
		t.Fatalf("a deleted user's history: %+v, %v", list, err)
	}
	if d, _ := f.s.Dump(f.ctx); strings.Contains(d, "late-event") {
		t.Fatalf("the dump still holds a deleted user's events:\n%s", d)
	}
	if list, err := f.s.ListSecurityEvents(f.ctx, b.ID, 0, time.Time{}, 100); err != nil || details(list) != "b9,b8,b7,b6,b5" {
		t.Fatalf("b's history after a's deletion: %s, %v", details(list), err)
	}
}

// testDeleteUserWithHistory: a user with sessions, tokens and their history
// can be deleted (the history does not hold the rows back), and the dump
// shows the history.
func testDeleteUserWithHistory(t *testing.T, f *fixture) {
	a := f.user(t, "a@example.com")
	f.session(t, device("a1", a.ID, T0))
	f.token(t, Token("t1", a.ID, db.TokenPersonal, T0))
	if _, err := f.s.RevokeSession(f.ctx, a.ID, "a1", db.ReasonSignedOut, "a1", T0); err != nil {
		t.Fatal(err)
	}
	f.session(t, device("a2", a.ID, T0))
	if d, _ := f.s.Dump(f.ctx); !strings.Contains(d, "# security_events") || !strings.Contains(d, db.EventTokenCreated) {
		t.Fatalf("the dump lacks the history:\n%s", d)
	}
	ended, err := f.s.DeleteUser(f.ctx, a.ID, T0)
	if err != nil || ids(ended) != "a2" {
		t.Fatalf("DeleteUser = %s, %v", ids(ended), err)
	}
	// (Not "sign_in": the dump names the table pending_sign_ins.)
	if d, _ := f.s.Dump(f.ctx); strings.Contains(d, db.EventSessionEnded) || strings.Contains(d, db.EventTokenCreated) {
		t.Fatalf("the dump still holds a deleted user's history:\n%s", d)
	}
}

// testNoteRefusedUse: a refused use is counted on a revoked session only,
// and SessionWithUser returns the count and the last time.
func testNoteRefusedUse(t *testing.T, f *fixture) {
	a := f.user(t, "a@example.com")
	f.session(t, Session("a1", a.ID, T0))
	f.session(t, Session("a2", a.ID, T0))
	row, _, err := f.s.SessionWithUser(f.ctx, "a1")
	if err != nil || row.RefusedCount != 0 || !row.LastRefusedAt.IsZero() {
		t.Fatalf("a new session: %+v, %v", row, err)
	}
	f.rec.Take()
	before, _ := f.s.Dump(f.ctx)
	for _, id := range []string{"a1", "zz"} {
		if err := f.s.NoteRefusedUse(f.ctx, id, T0.Add(time.Minute)); err != nil {
			t.Fatalf("NoteRefusedUse(%s): %v, want no error", id, err)
		}
	}
	f.unchanged(t, before, "noting a refused use of a live or unknown session")
	if _, err := f.s.RevokeSession(f.ctx, a.ID, "a1", db.ReasonRevoked, "a2", T0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	first, second := T0.Add(2*time.Minute), T0.Add(3*time.Minute)
	if err := f.s.NoteRefusedUse(f.ctx, "a1", first); err != nil {
		t.Fatal(err)
	}
	if row, _, err := f.s.SessionWithUser(f.ctx, "a1"); err != nil || row.RefusedCount != 1 || !row.LastRefusedAt.Equal(first) {
		t.Fatalf("after one refused use: count %d, last %v, %v", row.RefusedCount, row.LastRefusedAt, err)
	}
	if err := f.s.NoteRefusedUse(f.ctx, "a1", second); err != nil {
		t.Fatal(err)
	}
	row, _, err = f.s.SessionWithUser(f.ctx, "a1")
	if err != nil || row.RefusedCount != 2 || !row.LastRefusedAt.Equal(second) || row.RevokedReason != db.ReasonRevoked {
		t.Fatalf("after two refused uses: %+v, %v", row, err)
	}
	if row, _, _ := f.s.SessionWithUser(f.ctx, "a2"); row.RefusedCount != 0 || !row.LastRefusedAt.IsZero() {
		t.Fatalf("the other session was counted: %+v", row)
	}
	// Nothing else counts, and it is no security event.
	if list, _ := f.s.ListSecurityEvents(f.ctx, a.ID, 0, time.Time{}, 100); len(list) != 3 {
		t.Fatalf("history after refused uses: %s, want two sign-ins and one ending", eventList(list))
	}
}

// testConcurrentHistoryWrites: the writes that record security events,
// racing a deletion of their user and each other, finish without an error
// but "not found" or "sign-ins reset" (no deadlock: each history row takes
// the user's row lock, which the stores take first; see their lock order).
func testConcurrentHistoryWrites(t *testing.T, f *fixture) {
	now := T0.Add(time.Minute)
	for round := range 30 {
		a := f.user(t, fmt.Sprintf("a%d@example.com", round))
		sid := func(i int) string { return fmt.Sprintf("r%d-s%d", round, i) }
		for i := range 6 {
			f.session(t, device(sid(i), a.ID, T0))
		}
		for i := range 3 {
			f.token(t, Token(fmt.Sprintf("r%d-t%d", round, i), a.ID, db.TokenPersonal, T0))
		}
		f.enableTwoFactor(t, a.ID, 1, "x")
		u, _ := f.s.UserByID(f.ctx, a.ID)
		ops := []func() error{
			func() error { _, err := f.s.DeleteUser(f.ctx, a.ID, now); return err },
			func() error {
				_, err := f.s.RevokeSession(f.ctx, a.ID, sid(0), db.ReasonSignedOut, sid(0), now)
				return err
			},
			func() error {
				_, err := f.s.RevokeSession(f.ctx, a.ID, sid(1), db.ReasonRevoked, sid(2), now)
				return err
			},
			func() error {
				_, _, err := f.s.ChangePassword(f.ctx, a.ID, sid(2), "hash-2", []byte("secret-2"), true, false, now)
				return err
			},
			func() error {
				_, err := f.s.RevokeOtherSessions(f.ctx, a.ID, sid(3), db.ReasonRevokedOthers, now)
				return err
			},
			func() error { _, err := f.s.CreateSession(f.ctx, device(sid(9), a.ID, now), 3, u.Epoch); return err },
			func() error {
				_, err := f.s.RevokeToken(f.ctx, a.ID, fmt.Sprintf("r%d-t0", round), db.ReasonTokenRevoked, sid(4), now)
				return err
			},
			func() error {
				_, err := f.s.RevokeTokens(f.ctx, a.ID, "", db.ReasonRevokedAll, sid(4), now)
				return err
			},
			func() error {
				return f.s.CreateToken(f.ctx, Token(fmt.Sprintf("r%d-t9", round), a.ID, db.TokenPersonal, now), u.Epoch)
			},
			func() error { return f.s.DisableTwoFactor(f.ctx, a.ID) },
			func() error { return f.s.UpdateEmail(f.ctx, a.ID, fmt.Sprintf("new%d@example.com", round)) },
			func() error { return f.s.UpdatePassword(f.ctx, a.ID, "hash-3") },
			func() error {
				return f.s.RecordSecurityEvent(f.ctx, db.SecurityEvent{UserID: a.ID, Kind: db.EventSignInFailed, At: now})
			},
			func() error { return f.s.NoteRefusedUse(f.ctx, sid(0), now) },
		}
		race(t, len(ops), func(i int) error {
			if err := ops[i](); err != nil && !errors.Is(err, db.ErrNotFound) && !errors.Is(err, db.ErrSignInsReset) {
				return fmt.Errorf("round %d, op %d: %w", round, i, err)
			}
			return nil
		})
		if list, err := f.s.ListSecurityEvents(f.ctx, a.ID, 0, time.Time{}, 100); err != nil || len(list) != 0 {
			t.Fatalf("round %d: a deleted user's history: %s, %v", round, eventList(list), err)
		}
	}
}

// testHistoryActor: a write made with an acting browser in its context
// (db.WithActor) records that browser's device, place and address on the
// entries that name none of their own; without one (an operator's
// command) it records none; an entry about a session keeps that session's.
func testHistoryActor(t *testing.T, f *fixture) {
	h := newHistory(f)
	a, b := f.user(t, "a@example.com"), f.user(t, "b@example.com")
	actor := db.Actor{Device: "Firefox on Linux", Location: "Paris, France", IP: "203.0.113.9"}
	ctx := db.WithActor(f.ctx, actor)
	acted := func(e db.SecurityEvent) db.SecurityEvent {
		e.Device, e.Location, e.IP = actor.Device, actor.Location, actor.IP
		return e
	}
	if err := f.s.UpdateEmail(ctx, a.ID, "a2@example.com"); err != nil {
		t.Fatal(err)
	}
	h.expect(t, "UpdateEmail with an actor", a.ID, acted(db.SecurityEvent{UserID: a.ID, Kind: db.EventEmailChanged, At: T0, Detail: "a2@example.com"}))
	if err := f.s.UpdatePassword(f.ctx, a.ID, "hash-2"); err != nil {
		t.Fatal(err)
	}
	h.expect(t, "UpdatePassword without one", a.ID, db.SecurityEvent{UserID: a.ID, Kind: db.EventPasswordChanged, At: T0})
	now := T0.Add(time.Minute)
	if err := f.s.StartTwoFactor(ctx, a.ID, "sealed", now); err != nil {
		t.Fatal(err)
	}
	if err := f.s.EnableTwoFactor(ctx, a.ID, "sealed", 1, codes("x"), now); err != nil {
		t.Fatal(err)
	}
	h.expect(t, "EnableTwoFactor with an actor", a.ID, acted(db.SecurityEvent{UserID: a.ID, Kind: db.EventTwoFactorOn, At: now}))
	if err := f.s.DisableTwoFactor(ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	h.expect(t, "DisableTwoFactor with an actor", a.ID, acted(db.SecurityEvent{UserID: a.ID, Kind: db.EventTwoFactorOff, At: T0}))

	// A reset by emailed link: the new password from the browser that
	// used the link; the session it ended keeps its own device.
	s1 := Session("a1", a.ID, now)
	f.session(t, s1)
	h.expect(t, "a sign-in", a.ID, signedIn(s1))
	f.link(t, Link("reset-a", a.ID, db.LinkPasswordReset, f.userRow(t, a.ID).Epoch, now, 30*time.Minute))
	later := now.Add(time.Minute)
	if _, err := f.s.RecoverAccount(ctx, db.Recovery{UserID: a.ID, LinkID: "reset-a", LinkPurpose: db.LinkPasswordReset,
		EndOthers: true, PasswordHash: "hash-3", Reason: db.ReasonPasswordReset, Now: later}); err != nil {
		t.Fatal(err)
	}
	h.expect(t, "a reset by emailed link", a.ID,
		acted(db.SecurityEvent{UserID: a.ID, Kind: db.EventPasswordChanged, At: later, Reason: db.ReasonPasswordReset}),
		endedEvent(s1, db.ReasonPasswordReset, "", later))
	// An operator's reset: no browser acted.
	if _, err := f.s.RecoverAccount(f.ctx, db.Recovery{UserID: a.ID, EndOthers: true, EndTokens: true, RecordReset: true,
		Reason: db.ReasonOperator, By: "operator", Now: later}); err != nil {
		t.Fatal(err)
	}
	h.expect(t, "an operator's reset", a.ID, db.SecurityEvent{UserID: a.ID, Kind: db.EventAccountReset, At: later, Reason: db.ReasonOperator, By: "operator"})
	h.expect(t, "a's changes, in b's history", b.ID)
}

// testHistoryFilter: FilterSecurityEvents narrows a user's history by
// kinds and a time range, pages by id under the filter, and never returns
// another user's entries.
func testHistoryFilter(t *testing.T, f *fixture) {
	a, b := f.user(t, "a@example.com"), f.user(t, "b@example.com")
	kinds := []string{db.EventSignInFailed, db.EventTwoFactorOn, db.EventPasswordChanged}
	// a: 12 events, one a minute, the kinds in turn (i%3); b: the same.
	for i := range 12 {
		at := T0.Add(time.Duration(i) * time.Minute)
		for _, u := range []db.User{a, b} {
			e := db.SecurityEvent{UserID: u.ID, Kind: kinds[i%3], At: at, Detail: fmt.Sprint(i)}
			if err := f.s.RecordSecurityEvent(f.ctx, e); err != nil {
				t.Fatal(err)
			}
		}
	}
	got := func(before int64, fl db.EventFilter, limit int) ([]db.SecurityEvent, string) {
		t.Helper()
		list, err := f.s.FilterSecurityEvents(f.ctx, a.ID, before, fl, limit)
		if err != nil {
			t.Fatal(err)
		}
		out := make([]string, len(list))
		for i, e := range list {
			if e.UserID != a.ID {
				t.Fatalf("a's history holds %+v", e)
			}
			if i > 0 && e.ID >= list[i-1].ID {
				t.Fatalf("not newest first: %+v", list)
			}
			out[i] = e.Detail
		}
		return list, strings.Join(out, ",")
	}
	minute := func(i int) time.Time { return T0.Add(time.Duration(i) * time.Minute) }
	for _, c := range []struct {
		name string
		f    db.EventFilter
		want string
	}{
		{"no filter", db.EventFilter{}, "11,10,9,8,7,6,5,4,3,2,1,0"},
		{"one kind", db.EventFilter{Kinds: kinds[:1]}, "9,6,3,0"},
		{"two kinds", db.EventFilter{Kinds: kinds[1:]}, "11,10,8,7,5,4,2,1"},
		{"a kind with none", db.EventFilter{Kinds: []string{db.EventSignIn}}, ""},
		{"since", db.EventFilter{Since: minute(9)}, "11,10,9"},
		{"until (excluded)", db.EventFilter{Until: minute(3)}, "2,1,0"},
		{"a range and a kind", db.EventFilter{Kinds: kinds[:1], Since: minute(3), Until: minute(9)}, "6,3"},
		{"an empty range", db.EventFilter{Since: minute(5), Until: minute(5)}, ""},
	} {
		if _, s := got(0, c.f, 100); s != c.want {
			t.Errorf("%s: %q, want %q", c.name, s, c.want)
		}
	}
	// Pages under a filter: by id, each the next of the filtered list.
	fl := db.EventFilter{Kinds: kinds[1:], Since: minute(2)}
	p1, s1 := got(0, fl, 3)
	if s1 != "11,10,8" {
		t.Fatalf("page 1: %q", s1)
	}
	p2, s2 := got(p1[2].ID, fl, 3)
	if s2 != "7,5,4" {
		t.Fatalf("page 2: %q", s2)
	}
	if _, s3 := got(p2[2].ID, fl, 3); s3 != "2" {
		t.Fatalf("page 3: %q", s3)
	}
	if list, err := f.s.FilterSecurityEvents(f.ctx, a.ID, 0, db.EventFilter{}, 0); err != nil || len(list) != 0 {
		t.Fatalf("a limit of 0: %+v, %v", list, err)
	}
	if list, err := f.s.FilterSecurityEvents(f.ctx, 99999, 0, db.EventFilter{}, 10); err != nil || len(list) != 0 {
		t.Fatalf("nobody's history: %+v, %v", list, err)
	}
}
