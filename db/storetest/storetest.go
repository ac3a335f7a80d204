// Package storetest is the black-box conformance suite of db.Store: every
// behaviour the app relies on, checked through the interface only. Each
// implementation runs it unchanged:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T, opts db.Options) db.Store { ... })
//	}
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"doorman/db"
)

// NewStore opens a fresh, empty, migrated store with opts for one test and
// arranges for it to be closed (t.Cleanup).
type NewStore func(t *testing.T, opts db.Options) db.Store

// Run runs the whole suite against stores made by newStore.
func Run(t *testing.T, newStore NewStore) {
	tests := []struct {
		name string
		fn   func(*testing.T, *fixture)
	}{
		{"Users", testUsers},
		{"SessionLifecycle", testSessionLifecycle},
		{"ExpiryEdges", testExpiryEdges},
		{"Prune", testPrune},
		{"Rotate", testRotate},
		{"EvictionAtTheCap", testEviction},
		{"CrossUserIsolation", testCrossUser},
		{"SummariesMatchSessions", testSummaries},
		{"SecurityOverview", testSecurityOverview},
		{"AcknowledgeSignIns", testAcknowledgeSignIns},
		{"TouchNeverRevivesAnExpiredSession", testTouchNeverRevivesAnExpiredSession},
		{"DisableEnableDeleteCascade", testUserCascades},
		{"LoginFailures", testLoginFailures},
		{"ReserveLoginAttempts", testReserveLoginAttempts},
		{"ConcurrentReservationsStayUnderTheLimit", testConcurrentReservations},
		{"AppSecret", testAppSecret},
		{"Bulk", testBulk},
		{"EndingVeryManySessions", testEndingVeryManySessions},
		{"Dump", testDump},
		{"EventsReportEachEndOnce", testEvents},
		{"ConcurrentRevokeVersusCreate", testConcurrentRevokeCreate},
		{"SignInsReset", testSignInsReset},
		{"ChangePasswordIsOneTransaction", testChangePassword},
		{"EndingSessionsAndTokensTogether", testEndingsTogether},
		{"TwoFactorSetup", testTwoFactorSetup},
		{"TOTPStepsAreUsedOnce", testTOTPSteps},
		{"RecoveryCodesAreSingleUse", testRecoveryCodes},
		{"TwoFactorCrossUserIsolation", testTwoFactorCrossUser},
		{"PendingSignIns", testPendingSignIns},
		{"CompletePendingSignIn", testCompletePendingSignIn},
		{"ConcurrentCompletionRedeemsOnce", testConcurrentCompletion},
		{"CompletionEvictsLikeCreateSession", testCompletionEvicts},
		{"DeleteUserRemovesTwoFactor", testTwoFactorDeleteUser},
		{"TokenRoundTrip", testTokenRoundTrip},
		{"ListTokens", testListTokens},
		{"TouchToken", testTouchToken},
		{"RevokeToken", testRevokeToken},
		{"RevokeTokens", testRevokeTokens},
		{"Apps", testApps},
		{"DeviceAuthorizations", testDeviceAuthorizations},
		{"PollDeviceAuthorization", testPollDeviceAuthorization},
		{"ConcurrentPollsSlowDown", testConcurrentPolls},
		{"RedeemDeviceAuthorization", testRedeemDeviceAuthorization},
		{"ConcurrentRedemptionMakesOneToken", testConcurrentRedemption},
		{"DisableEndsTokens", testDisableEndsTokens},
		{"DeleteUserRemovesTokens", testDeleteUserRemovesTokens},
		{"ConcurrentTokenWritesDoNotDeadlock", testConcurrentTokenWrites},
		{"HistoryOfSessions", testHistoryOfSessions},
		{"HistoryOfCompletion", testHistoryOfCompletion},
		{"HistoryOfAccount", testHistoryOfAccount},
		{"HistoryOfTokens", testHistoryOfTokens},
		{"HistoryListing", testHistoryListing},
		{"HistoryActor", testHistoryActor},
		{"HistoryFilter", testHistoryFilter},
		{"HistorySearch", testHistorySearch},
		{"RenameSession", testRenameSession},
		{"DeleteUserWithHistory", testDeleteUserWithHistory},
		{"NoteRefusedUse", testNoteRefusedUse},
		{"ExpiredSessionsRecordedOnce", testExpiredSessionsRecorded},
		{"ExpiryOwesAppsALogout", testExpiryOwesLogouts},
		{"ConcurrentHistoryWritesDoNotDeadlock", testConcurrentHistoryWrites},
		{"OutboxQueueMailWithLinks", testQueueMail},
		{"OutboxDuplicatesAreConflicts", testQueueMailConflicts},
		{"ClaimMailDueOldestFirst", testClaimMail},
		{"ClaimMailConcurrentlyOnce", testClaimMailConcurrently},
		{"ClaimMailExpiresDeadLinks", testClaimMailExpires},
		{"OutboxMarkMailSent", testMarkMailSent},
		{"OutboxMarkMailFailed", testMarkMailFailed},
		{"OutboxPruneMail", testPruneMail},
		{"MailWithCreateUser", testMailWithCreateUser},
		{"MailWithSignIns", testMailWithSignIns},
		{"MailWithChangePassword", testMailWithChangePassword},
		{"MailWithTwoFactor", testMailWithTwoFactor},
		{"LinkUsedOnce", testUseLinkToken},
		{"LinksVoidAfterReset", testLinksVoidAfterReset},
		{"LinksVoidAfterAddressChange", testLinksVoidAfterAddressChange},
		{"PendingEmailChanges", testPendingEmailChanges},
		{"ApprovalsDieWithReset", testApprovalsDieWithReset},
		{"CreateTokenChecksEpoch", testCreateTokenChecksEpoch},
		{"UndoDropsLaterTwoFactor", testUndoDropsLaterTwoFactor},
		{"LinkPrune", testPruneLinkTokens},
		{"LinkConfirmEmail", testConfirmEmail},
		{"SignInWithLink", testSignInWithLink},
		{"RecoverAccountReset", testRecoverAccountReset},
		{"RecoverAccountRefusals", testRecoverAccountRefusals},
		{"RecoverAccountNotMe", testRecoverAccountNotMe},
		{"RecoverAccountUndoEmail", testRecoverAccountUndoEmail},
		{"RecoverAccountOperatorReset", testRecoverAccountOperatorReset},
		{"RecoverAccountUnverifiedTwoFactor", testRecoverAccountUnverifiedTwoFactor},
		{"UserIDs", testUserIDs},
		{"SignInPlaces", testSignInPlaces},
		{"MailUserSettings", testMailUserSettings},
		{"MailDeleteUser", testMailDeleteUser},
		{"MailNetwork", testMailNetwork},
		{"OIDCApps", testOIDCApps},
		{"OIDCSubjects", testOIDCSubjects},
		{"OIDCSigningKeys", testOIDCSigningKeys},
		{"OIDCAuthRequests", testOIDCAuthRequests},
		{"OIDCCodeAfterReset", testOIDCCodeAfterReset},
		{"OIDCRefreshRotation", testOIDCRefreshRotation},
		{"OIDCPruneGrants", testOIDCPruneGrants},
		{"OIDCRevocationRule", testOIDCRevocationRule},
		{"OIDCRecoverAndDelete", testOIDCRecoverAndDelete},
		{"OIDCDeletedUserDeliveries", testOIDCDeletedUserDeliveries},
		{"OIDCLogoutDeliveries", testOIDCLogoutDeliveries},
		{"OIDCConnectedApps", testOIDCConnectedApps},
		{"OIDCDeleteApp", testOIDCDeleteApp},
		{"OIDCConcurrentWritesDoNotDeadlock", testOIDCConcurrentWrites},
		{"PasskeyHandles", testPasskeyHandles},
		{"AddPasskey", testAddPasskey},
		{"RenameRemovePasskey", testRenameRemovePasskey},
		{"SignInWithPasskey", testSignInWithPasskey},
		{"PasskeyCeremonies", testPasskeyCeremonies},
		{"PasskeyInventory", testPasskeyInventory},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := &Recorder{}
			s := newStore(t, db.Options{Events: rec, Now: func() time.Time { return T0 }})
			tc.fn(t, &fixture{s: s, rec: rec, ctx: context.Background()})
		})
	}
}

// T0 is the suite's present: the real one, in whole seconds as stores keep
// time, so no expiry in the suite depends on the date it runs.
var T0 = time.Now().UTC().Truncate(time.Second)

type fixture struct {
	s   db.Store
	rec *Recorder
	ctx context.Context
}

// Recorder is an EventSink that keeps every event, for tests.
type Recorder struct {
	mu     sync.Mutex
	events []db.Event
}

// Notify records events.
func (r *Recorder) Notify(events []db.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, events...)
}

// Take returns the events recorded since the last Take.
func (r *Recorder) Take() []db.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.events
	r.events = nil
	return out
}

// Session returns a live session row for tests: id, user, signed in at now,
// idle expiry 28 days and absolute expiry 90 days later.
func Session(id string, userID int64, now time.Time) db.Session {
	return db.Session{
		ID: id, SecretHash: []byte("hash-" + id), UserID: userID,
		CreatedAt: now, LastSeenAt: now,
		IdleExpiresAt: now.Add(28 * 24 * time.Hour), AbsoluteExpiresAt: now.Add(90 * 24 * time.Hour),
		IP: "81.2.69.160", UserAgent: "ua", DeviceLabel: "Chrome on macOS", DeviceKind: "desktop",
		Location: "London, United Kingdom", LocationShort: "London", AuthMethod: "password",
	}
}

func (f *fixture) user(t *testing.T, email string) db.User {
	t.Helper()
	u, err := f.s.CreateUser(f.ctx, email, "hash-of-"+email, false, T0)
	if err != nil {
		t.Fatalf("CreateUser(%s): %v", email, err)
	}
	return u
}

func (f *fixture) session(t *testing.T, sess db.Session) {
	t.Helper()
	if _, err := f.create(t, sess, 0); err != nil {
		t.Fatalf("CreateSession(%s): %v", sess.ID, err)
	}
}

// create is a sign-in: it reads the user's epoch, then creates the session.
func (f *fixture) create(t *testing.T, sess db.Session, maxPerUser int) ([]db.Session, error) {
	t.Helper()
	u, err := f.s.UserByID(f.ctx, sess.UserID)
	if err != nil {
		return nil, err
	}
	return f.s.CreateSession(f.ctx, sess, maxPerUser, u.Epoch)
}

func (f *fixture) live(t *testing.T, userID int64, now time.Time) string {
	t.Helper()
	list, err := f.s.ListSessions(f.ctx, userID, now)
	if err != nil {
		t.Fatal(err)
	}
	return ids(list)
}

func ids(list []db.Session) string {
	out := make([]string, len(list))
	for i, s := range list {
		out[i] = s.ID
	}
	return strings.Join(out, ",")
}

func sortedIDs(list []db.Session) string {
	out := make([]string, len(list))
	for i, s := range list {
		out[i] = s.ID
	}
	slices.Sort(out)
	return strings.Join(out, ",")
}

func testUsers(t *testing.T, f *fixture) {
	if err := f.s.Ping(f.ctx); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	u, err := f.s.CreateUser(f.ctx, "a@example.com", "hash", false, T0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.s.CreateUser(f.ctx, "a@example.com", "hash2", false, T0); !errors.Is(err, db.ErrEmailTaken) {
		t.Fatalf("duplicate email: got %v, want ErrEmailTaken", err)
	}
	got, err := f.s.UserByEmail(f.ctx, "a@example.com")
	if err != nil || got.ID != u.ID || got.PasswordHash != "hash" || !got.CreatedAt.Equal(T0) || got.Disabled() || got.IsDemo {
		t.Fatalf("UserByEmail = %+v, %v", got, err)
	}
	if _, err := f.s.UserByEmail(f.ctx, "nobody@example.com"); !errors.Is(err, db.ErrNotFound) {
		t.Fatalf("unknown email: %v", err)
	}
	if got, err := f.s.UserByID(f.ctx, u.ID); err != nil || got.Email != "a@example.com" {
		t.Fatalf("UserByID = %+v, %v", got, err)
	}
	if _, err := f.s.UserByID(f.ctx, u.ID+1000); !errors.Is(err, db.ErrNotFound) {
		t.Fatalf("unknown id: %v", err)
	}
	b := f.user(t, "b@example.com")
	if err := f.s.UpdateEmail(f.ctx, u.ID, "b@example.com"); !errors.Is(err, db.ErrEmailTaken) {
		t.Fatalf("taking b's email: %v", err)
	}
	if err := f.s.UpdateEmail(f.ctx, u.ID, "new@example.com"); err != nil {
		t.Fatal(err)
	}
	if err := f.s.UpdatePassword(f.ctx, u.ID, "h2"); err != nil {
		t.Fatal(err)
	}
	if got, _ := f.s.UserByID(f.ctx, u.ID); got.Email != "new@example.com" || got.PasswordHash != "h2" {
		t.Fatalf("after updates: %+v", got)
	}
	if got, _ := f.s.UserByID(f.ctx, b.ID); got.Email != "b@example.com" || got.PasswordHash != "hash-of-b@example.com" {
		t.Fatalf("b changed: %+v", got)
	}
	if err := f.s.UpdatePassword(f.ctx, 99999, "h"); !errors.Is(err, db.ErrNotFound) {
		t.Fatalf("password of nobody: %v", err)
	}
	if err := f.s.UpdateEmail(f.ctx, 99999, "x@example.com"); !errors.Is(err, db.ErrNotFound) {
		t.Fatalf("email of nobody: %v", err)
	}
	demo, err := f.s.CreateUser(f.ctx, "demo@example.com", "h", true, T0)
	if err != nil || !demo.IsDemo {
		t.Fatalf("demo user: %+v %v", demo, err)
	}
}

func testSessionLifecycle(t *testing.T, f *fixture) {
	a, b := f.user(t, "a@example.com"), f.user(t, "b@example.com")
	for i, id := range []string{"a1", "a2", "a3"} {
		f.session(t, Session(id, a.ID, T0.Add(time.Duration(i)*time.Minute)))
	}
	f.session(t, Session("b1", b.ID, T0))
	now := T0.Add(time.Hour)
	if got := f.live(t, a.ID, now); got != "a3,a2,a1" {
		t.Fatalf("list = %s, want most recent first a3,a2,a1", got)
	}
	sess, u, err := f.s.SessionWithUser(f.ctx, "a1")
	if err != nil || u.Email != "a@example.com" || u.ID != a.ID || !bytes.Equal(sess.SecretHash, []byte("hash-a1")) || !sess.Alive(now) ||
		sess.DeviceLabel != "Chrome on macOS" || sess.AuthMethod != "password" || !sess.ReauthAt.Equal(T0) {
		t.Fatalf("SessionWithUser = %+v %+v %v", sess, u, err)
	}
	if _, _, err := f.s.SessionWithUser(f.ctx, "nope"); !errors.Is(err, db.ErrNotFound) {
		t.Fatalf("unknown session: %v", err)
	}

	// Touch moves last activity and location.
	if err := f.s.TouchSession(f.ctx, "a1", db.Touch{LastSeenAt: now, IdleExpiresAt: now.Add(28 * 24 * time.Hour), IP: "10.0.0.1", Location: "Local network", LocationShort: "Local network"}); err != nil {
		t.Fatal(err)
	}
	if got, _ := f.s.UserSession(f.ctx, a.ID, "a1", now); !got.LastSeenAt.Equal(now) || got.IP != "10.0.0.1" || got.Location != "Local network" {
		t.Fatalf("after touch: %+v", got)
	}
	if got := f.live(t, a.ID, now); got != "a1,a3,a2" {
		t.Fatalf("after touch, list = %s, want a1 first", got)
	}

	// Revoke one, with who and why.
	gone, err := f.s.RevokeSession(f.ctx, a.ID, "a2", db.ReasonRevoked, "a1", now)
	if err != nil || gone.ID != "a2" || gone.RevokedReason != db.ReasonRevoked || gone.RevokedBy != "a1" || !gone.RevokedAt.Equal(now) {
		t.Fatalf("RevokeSession = %+v, %v", gone, err)
	}
	if _, err := f.s.RevokeSession(f.ctx, a.ID, "a2", db.ReasonRevoked, "a1", now); !errors.Is(err, db.ErrNotFound) {
		t.Fatalf("revoking twice: %v, want ErrNotFound", err)
	}
	if sess, _, _ := f.s.SessionWithUser(f.ctx, "a2"); sess.Alive(now) || !sess.Revoked() || sess.RevokedReason != db.ReasonRevoked || sess.RevokedBy != "a1" {
		t.Fatalf("revoked row = %+v", sess)
	}
	// A touch racing a revocation loses: it never revives the row.
	if err := f.s.TouchSession(f.ctx, "a2", db.Touch{LastSeenAt: now, IdleExpiresAt: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if sess, _, _ := f.s.SessionWithUser(f.ctx, "a2"); sess.Alive(now) {
		t.Fatal("a touch revived a revoked session")
	}
	if _, err := f.s.UserSession(f.ctx, a.ID, "a2", now); !errors.Is(err, db.ErrNotFound) {
		t.Fatalf("revoked session details: %v", err)
	}

	// Revoke others keeps the current one and returns what it ended.
	f.session(t, Session("a4", a.ID, now))
	ended, err := f.s.RevokeOtherSessions(f.ctx, a.ID, "a1", db.ReasonRevokedOthers, now)
	if err != nil || sortedIDs(ended) != "a3,a4" {
		t.Fatalf("RevokeOtherSessions = %s, %v; want a3,a4", ids(ended), err)
	}
	for _, e := range ended {
		if e.RevokedReason != db.ReasonRevokedOthers || e.RevokedBy != "a1" || e.UserID != a.ID {
			t.Errorf("ended by revoke-others: %+v", e)
		}
	}
	if got := f.live(t, a.ID, now); got != "a1" {
		t.Fatalf("after revoke-others: %s", got)
	}
	// Nothing left to end: an empty list, no error.
	if ended, err := f.s.RevokeOtherSessions(f.ctx, a.ID, "a1", db.ReasonRevokedOthers, now); err != nil || len(ended) != 0 {
		t.Fatalf("second revoke-others = %s, %v", ids(ended), err)
	}

	// Revoke all.
	ended, err = f.s.RevokeAllSessions(f.ctx, a.ID, db.ReasonRevokedAll, "a1", now)
	if err != nil || ids(ended) != "a1" || ended[0].RevokedBy != "a1" || ended[0].RevokedReason != db.ReasonRevokedAll {
		t.Fatalf("RevokeAllSessions = %+v, %v", ended, err)
	}
	if got := f.live(t, a.ID, now); got != "" {
		t.Fatalf("after revoke-all: %s", got)
	}
	if got := f.live(t, b.ID, now); got != "b1" {
		t.Fatalf("user B's sessions changed: %s", got)
	}

	// The demo seeder's replacement of its sample sessions.
	demo := Session("d1", b.ID, now)
	demo.AuthMethod = "demo"
	f.session(t, demo)
	if err := f.s.DeleteSessionsByMethod(f.ctx, b.ID, "demo", now); err != nil {
		t.Fatal(err)
	}
	if got := f.live(t, b.ID, now); got != "b1" {
		t.Fatalf("after deleting demo sessions: %s", got)
	}
}

// testExpiryEdges: a session is alive strictly before each expiry and dead
// at the very second of it, for every read that decides liveness.
func testExpiryEdges(t *testing.T, f *fixture) {
	a := f.user(t, "a@example.com")
	idle := Session("idle", a.ID, T0)
	idle.IdleExpiresAt = T0.Add(time.Hour)
	abs := Session("abs", a.ID, T0)
	abs.AbsoluteExpiresAt = T0.Add(2 * time.Hour)
	f.session(t, idle)
	f.session(t, abs)
	for _, c := range []struct {
		at   time.Duration
		want string
	}{
		{30 * time.Minute, "abs,idle"},
		{time.Hour - time.Second, "abs,idle"},
		{time.Hour, "abs"}, // at the instant of its idle expiry it is over
		{90 * time.Minute, "abs"},
		{2*time.Hour - time.Second, "abs"},
		{2 * time.Hour, ""}, // absolute expiry, the same
	} {
		now := T0.Add(c.at)
		list, err := f.s.ListSessions(f.ctx, a.ID, now)
		if err != nil {
			t.Fatal(err)
		}
		if got := sortedIDs(list); got != c.want {
			t.Errorf("ListSessions at +%v: %q, want %q", c.at, got, c.want)
		}
		sums, err := f.s.ListSessionSummaries(f.ctx, a.ID, now)
		if err != nil || len(sums) != len(list) {
			t.Errorf("ListSessionSummaries at +%v: %d rows, %v; want %d", c.at, len(sums), err, len(list))
		}
		for _, id := range []string{"idle", "abs"} {
			_, err := f.s.UserSession(f.ctx, a.ID, id, now)
			row, _, _ := f.s.SessionWithUser(f.ctx, id)
			want := strings.Contains(c.want, id)
			if (err == nil) != want || row.Alive(now) != want {
				t.Errorf("%s at +%v: UserSession err %v, Alive %v; want alive %v", id, c.at, err, row.Alive(now), want)
			}
		}
	}
	// Ended by expiry means nothing left to revoke or rotate.
	if _, err := f.s.RevokeSession(f.ctx, a.ID, "idle", db.ReasonRevoked, "", T0.Add(time.Hour)); !errors.Is(err, db.ErrNotFound) {
		t.Errorf("revoking an expired session: %v, want ErrNotFound", err)
	}
	if err := f.s.RotateSession(f.ctx, "idle", []byte("x"), T0.Add(time.Hour)); !errors.Is(err, db.ErrNotFound) {
		t.Errorf("rotating an expired session: %v, want ErrNotFound", err)
	}
	if ended, err := f.s.RevokeAllSessions(f.ctx, a.ID, db.ReasonRevokedAll, "", T0.Add(2*time.Hour)); err != nil || len(ended) != 0 {
		t.Errorf("revoke-all after both expired = %s, %v", ids(ended), err)
	}
	// At the cap, expired sessions do not count.
	if evicted, err := f.create(t, Session("new", a.ID, T0.Add(2*time.Hour)), 1); err != nil || len(evicted) != 0 {
		t.Errorf("cap of 1 with only expired sessions evicted %s, %v", ids(evicted), err)
	}
}

func testPrune(t *testing.T, f *fixture) {
	a := f.user(t, "a@example.com")
	idle := Session("idle", a.ID, T0)
	idle.IdleExpiresAt = T0.Add(time.Hour)
	f.session(t, idle)
	f.session(t, Session("revoked", a.ID, T0))
	f.session(t, Session("live", a.ID, T0))
	if _, err := f.s.RevokeSession(f.ctx, a.ID, "revoked", db.ReasonRevoked, "", T0.Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	// Only rows that ended before the cutoff go.
	n, err := f.s.PruneSessions(f.ctx, T0.Add(90*time.Minute))
	if err != nil || n != 1 {
		t.Fatalf("PruneSessions = %d, %v; want 1 (idle)", n, err)
	}
	if _, _, err := f.s.SessionWithUser(f.ctx, "idle"); !errors.Is(err, db.ErrNotFound) {
		t.Fatalf("pruned row still there: %v", err)
	}
	if _, _, err := f.s.SessionWithUser(f.ctx, "revoked"); err != nil {
		t.Fatalf("a row revoked after the cutoff was pruned: %v", err)
	}
	if n, err := f.s.PruneSessions(f.ctx, T0.Add(3*time.Hour)); err != nil || n != 1 {
		t.Fatalf("second prune = %d, %v; want 1 (revoked)", n, err)
	}
	if got := f.live(t, a.ID, T0.Add(3*time.Hour)); got != "live" {
		t.Fatalf("live sessions after prune: %s", got)
	}
}

func testRotate(t *testing.T, f *fixture) {
	a := f.user(t, "a@example.com")
	f.session(t, Session("a1", a.ID, T0))
	f.session(t, Session("a2", a.ID, T0))
	now := T0.Add(time.Hour)
	if err := f.s.RotateSession(f.ctx, "a1", []byte("new-hash"), now); err != nil {
		t.Fatal(err)
	}
	row, _, _ := f.s.SessionWithUser(f.ctx, "a1")
	if !bytes.Equal(row.SecretHash, []byte("new-hash")) || !row.ReauthAt.Equal(now) || !row.Alive(now) || row.ID != "a1" || !row.CreatedAt.Equal(T0) {
		t.Fatalf("rotated row = %+v", row)
	}
	if other, _, _ := f.s.SessionWithUser(f.ctx, "a2"); !bytes.Equal(other.SecretHash, []byte("hash-a2")) {
		t.Fatal("rotation touched another session")
	}
	if _, err := f.s.RevokeSession(f.ctx, a.ID, "a1", db.ReasonRevoked, "", now); err != nil {
		t.Fatal(err)
	}
	if err := f.s.RotateSession(f.ctx, "a1", []byte("again"), now); !errors.Is(err, db.ErrNotFound) {
		t.Fatalf("rotating a revoked session: %v", err)
	}
	if err := f.s.RotateSession(f.ctx, "nope", []byte("again"), now); !errors.Is(err, db.ErrNotFound) {
		t.Fatalf("rotating an unknown session: %v", err)
	}
}

func testEviction(t *testing.T, f *fixture) {
	a, b := f.user(t, "a@example.com"), f.user(t, "b@example.com")
	if _, err := f.create(t, Session("b1", b.ID, T0), 3); err != nil {
		t.Fatal(err)
	}
	// a1 is the oldest by creation but the most recently active.
	for i, id := range []string{"a1", "a2", "a3"} {
		sess := Session(id, a.ID, T0.Add(time.Duration(i)*time.Minute))
		if id == "a1" {
			sess.LastSeenAt = T0.Add(time.Hour)
		}
		evicted, err := f.create(t, sess, 3)
		if err != nil || len(evicted) != 0 {
			t.Fatalf("under the limit: evicted %v, %v", evicted, err)
		}
	}
	f.rec.Take()
	evicted, err := f.create(t, Session("a4", a.ID, T0.Add(2*time.Hour)), 3)
	if err != nil || ids(evicted) != "a2" || evicted[0].RevokedReason != db.ReasonSessionLimit || evicted[0].RevokedBy != "a4" {
		t.Fatalf("at the limit: evicted %+v, %v; want a2", evicted, err)
	}
	row, _, _ := f.s.SessionWithUser(f.ctx, "a2")
	if row.RevokedReason != db.ReasonSessionLimit || row.RevokedBy != "a4" {
		t.Fatalf("evicted row = %+v", row)
	}
	if got := f.live(t, a.ID, T0.Add(2*time.Hour)); got != "a4,a1,a3" {
		t.Fatalf("live after eviction: %s", got)
	}
	if got := f.live(t, b.ID, T0.Add(2*time.Hour)); got != "b1" {
		t.Fatal("another user's session was evicted")
	}
	ev := f.rec.Take()
	if len(ev) != 2 || ev[0].Kind != db.SessionEnded || ev[0].SessionID != "a2" || ev[0].Reason != db.ReasonSessionLimit ||
		ev[1].Kind != db.SessionStarted || ev[1].SessionID != "a4" || ev[1].UserID != a.ID {
		t.Fatalf("events of an eviction: %+v", ev)
	}
	// Several over the cap (the cap was lowered): all the excess goes at once.
	evicted, err = f.create(t, Session("a5", a.ID, T0.Add(3*time.Hour)), 1)
	if err != nil || sortedIDs(evicted) != "a1,a3,a4" {
		t.Fatalf("cap lowered to 1: evicted %s, %v", ids(evicted), err)
	}
}

// testCrossUser: user B can never read, change or end user A's sessions
// through any user-scoped method, and nothing is changed by trying.
func testCrossUser(t *testing.T, f *fixture) {
	a, b := f.user(t, "a@example.com"), f.user(t, "b@example.com")
	f.session(t, Session("a1", a.ID, T0))
	f.session(t, Session("a2", a.ID, T0.Add(time.Second)))
	f.session(t, Session("b1", b.ID, T0))
	now := T0.Add(time.Minute)
	before, err := f.s.Dump(f.ctx)
	if err != nil {
		t.Fatal(err)
	}
	f.rec.Take()
	if _, err := f.s.UserSession(f.ctx, b.ID, "a1", now); !errors.Is(err, db.ErrNotFound) {
		t.Errorf("B read A's session: %v", err)
	}
	if _, err := f.s.RevokeSession(f.ctx, b.ID, "a1", db.ReasonRevoked, "b1", now); !errors.Is(err, db.ErrNotFound) {
		t.Errorf("B revoked A's session: %v", err)
	}
	if sums, _ := f.s.ListSessionSummaries(f.ctx, b.ID, now); len(sums) != 1 || sums[0].ID != "b1" {
		t.Errorf("B's list shows %+v", sums)
	}
	if d, _ := f.s.Dump(f.ctx); d != before {
		t.Fatal("a refused cross-user call changed the store")
	}
	if ev := f.rec.Take(); len(ev) != 0 {
		t.Errorf("refused calls reported events: %+v", ev)
	}
	// B's "all others" and "all" reach only B's sessions, even when told
	// to keep one of A's.
	if ended, err := f.s.RevokeOtherSessions(f.ctx, b.ID, "a1", db.ReasonRevokedOthers, now); err != nil || ids(ended) != "b1" {
		t.Errorf("B's revoke-others = %s, %v; want only b1", ids(ended), err)
	}
	if ended, _ := f.s.RevokeAllSessions(f.ctx, b.ID, db.ReasonRevokedAll, "", now); len(ended) != 0 {
		t.Errorf("B's revoke-all ended %s, want nothing", ids(ended))
	}
	if _, err := f.s.SetUserDisabled(f.ctx, b.ID, true, now); err != nil {
		t.Fatal(err)
	}
	if _, err := f.s.DeleteUser(f.ctx, b.ID, now); err != nil {
		t.Fatal(err)
	}
	if got := f.live(t, a.ID, now); got != "a2,a1" {
		t.Errorf("A's sessions changed: %s", got)
	}
	if u, _ := f.s.UserByID(f.ctx, a.ID); u.Disabled() {
		t.Error("disabling B disabled A")
	}
}

func testSummaries(t *testing.T, f *fixture) {
	a, b := f.user(t, "a@example.com"), f.user(t, "b@example.com")
	for i, id := range []string{"a1", "a2", "a3"} {
		f.session(t, Session(id, a.ID, T0.Add(time.Duration(i)*time.Minute)))
	}
	f.session(t, Session("b1", b.ID, T0))
	now := T0.Add(time.Hour)
	if _, err := f.s.RevokeSession(f.ctx, a.ID, "a2", db.ReasonRevoked, "", now); err != nil {
		t.Fatal(err)
	}
	full, err := f.s.ListSessions(f.ctx, a.ID, now)
	if err != nil {
		t.Fatal(err)
	}
	sums, err := f.s.ListSessionSummaries(f.ctx, a.ID, now)
	if err != nil {
		t.Fatal(err)
	}
	if len(sums) != 2 || len(full) != 2 {
		t.Fatalf("summaries %v, full %d: want the 2 live sessions of a", sums, len(full))
	}
	for i := range full {
		if full[i].Summary() != sums[i] {
			t.Errorf("row %d: %+v vs %+v", i, full[i].Summary(), sums[i])
		}
	}
}

func testUserCascades(t *testing.T, f *fixture) {
	a, b := f.user(t, "a@example.com"), f.user(t, "b@example.com")
	f.session(t, Session("a1", a.ID, T0))
	f.session(t, Session("a2", a.ID, T0))
	f.session(t, Session("b1", b.ID, T0))
	now := T0.Add(time.Minute)

	f.rec.Take()
	ended, err := f.s.SetUserDisabled(f.ctx, a.ID, true, now)
	if err != nil || sortedIDs(ended) != "a1,a2" {
		t.Fatalf("disable: %s, %v", ids(ended), err)
	}
	if ev := f.rec.Take(); len(ev) != 2 || ev[0].Reason != db.ReasonDisabled || ev[1].Reason != db.ReasonDisabled {
		t.Fatalf("events of a disable: %+v", ev)
	}
	if u, _ := f.s.UserByID(f.ctx, a.ID); !u.Disabled() || !u.DisabledAt.Equal(now) {
		t.Fatalf("not disabled: %+v", u)
	}
	if row, u, _ := f.s.SessionWithUser(f.ctx, "a1"); row.Alive(now) || row.RevokedReason != db.ReasonDisabled || !u.Disabled() {
		t.Fatalf("disabled user's session: %+v %+v", row, u)
	}
	// Enabling brings no session back.
	if ended, err := f.s.SetUserDisabled(f.ctx, a.ID, false, now); err != nil || len(ended) != 0 {
		t.Fatalf("enable: %s, %v", ids(ended), err)
	}
	if u, _ := f.s.UserByID(f.ctx, a.ID); u.Disabled() {
		t.Fatal("still disabled")
	}
	if got := f.live(t, a.ID, now); got != "" {
		t.Fatalf("enabling revived %s", got)
	}
	if _, err := f.s.SetUserDisabled(f.ctx, 99999, true, now); !errors.Is(err, db.ErrNotFound) {
		t.Fatalf("disabling nobody: %v", err)
	}

	// Deleting removes the rows and reports the sessions that were alive.
	f.session(t, Session("a3", a.ID, now))
	f.rec.Take()
	ended, err = f.s.DeleteUser(f.ctx, a.ID, now)
	if err != nil || ids(ended) != "a3" || ended[0].RevokedReason != db.ReasonDeleted {
		t.Fatalf("DeleteUser = %+v, %v; want a3 ended as deleted", ended, err)
	}
	if ev := f.rec.Take(); len(ev) != 1 || ev[0].SessionID != "a3" || ev[0].Kind != db.SessionEnded || ev[0].Reason != db.ReasonDeleted {
		t.Fatalf("events of a deletion: %+v", ev)
	}
	for _, id := range []string{"a1", "a2", "a3"} {
		if _, _, err := f.s.SessionWithUser(f.ctx, id); !errors.Is(err, db.ErrNotFound) {
			t.Fatalf("session %s survived its user: %v", id, err)
		}
	}
	if _, err := f.s.UserByEmail(f.ctx, "a@example.com"); !errors.Is(err, db.ErrNotFound) {
		t.Fatalf("user survived: %v", err)
	}
	if _, _, err := f.s.SessionWithUser(f.ctx, "b1"); err != nil {
		t.Fatalf("b's session: %v", err)
	}
	if _, err := f.s.DeleteUser(f.ctx, a.ID, now); !errors.Is(err, db.ErrNotFound) {
		t.Fatalf("deleting twice: %v", err)
	}
	// The address is free again.
	if _, err := f.s.CreateUser(f.ctx, "a@example.com", "h", false, now); err != nil {
		t.Fatalf("re-using a deleted account's email: %v", err)
	}
}

func testReserveLoginAttempts(t *testing.T, f *fixture) {
	reserve := func(scope string, at time.Time, limits ...db.AttemptLimit) db.Reservation {
		t.Helper()
		r, err := f.s.ReserveLoginAttempt(f.ctx, db.LoginAttempt{Account: "key-r", Scope: scope, IP: "192.0.2.4", At: at, Since: at.Add(-15 * time.Minute), Limits: limits})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	own := func(scope string) db.AttemptLimit { return db.AttemptLimit{Scope: scope, Max: 3} }
	devices := db.AttemptLimit{Scope: "device:", Prefix: true, Max: 4}
	ids := map[int64]bool{}
	for i := range 3 {
		r := reserve("device:1", T0.Add(time.Duration(i)*time.Minute), own("device:1"), devices)
		if r.ID == 0 || ids[r.ID] {
			t.Fatalf("reservation %d: id %d (seen: %v)", i, r.ID, ids)
		}
		ids[r.ID] = true
	}
	// The scope's own limit is full: refused, nothing recorded, and told
	// which limit and since when.
	r := reserve("device:1", T0.Add(5*time.Minute), own("device:1"), devices)
	if r.ID != 0 || r.Full != 0 || !r.First.Equal(T0) {
		t.Fatalf("over the scope's limit: %+v", r)
	}
	if n, _, _ := f.s.LoginFailuresSince(f.ctx, "key-r", "device:1", T0); n != 3 {
		t.Fatalf("device:1 holds %d attempts, want 3", n)
	}
	// The group of device scopes: one more fits, then the group is full.
	if r := reserve("device:2", T0.Add(6*time.Minute), own("device:2"), devices); r.ID == 0 {
		t.Fatal("device:2 refused under the group's limit")
	}
	if r := reserve("device:3", T0.Add(7*time.Minute), own("device:3"), devices); r.ID != 0 || r.Full != 1 || !r.First.Equal(T0) {
		t.Fatalf("over the group's limit: %+v", r)
	}
	// Other scopes and accounts are not in the group.
	if r := reserve("anon", T0.Add(7*time.Minute), own("anon")); r.ID == 0 {
		t.Fatal("anon refused")
	}
	// Releasing one attempt makes room for one; releasing twice is fine.
	var some int64
	for id := range ids {
		some = id
		break
	}
	for range 2 {
		if err := f.s.ReleaseLoginAttempt(f.ctx, some); err != nil {
			t.Fatal(err)
		}
	}
	if r := reserve("device:1", T0.Add(8*time.Minute), own("device:1"), devices); r.ID == 0 || ids[r.ID] {
		t.Fatalf("no room after a release, or an id used again: %+v", r)
	}
	// The window: attempts before Since are not counted.
	if r := reserve("device:1", T0.Add(20*time.Minute), own("device:1"), devices); r.ID == 0 {
		t.Fatalf("attempts outside the window still counted: %+v", r)
	}
}

// testConcurrentReservations: many callers at once for one account's scope
// get exactly the limit's reservations, never more.
func testConcurrentReservations(t *testing.T, f *fixture) {
	const callers, limit = 40, 10
	var wg sync.WaitGroup
	ids := make(chan int64, callers)
	errs := make(chan error, callers)
	start := make(chan struct{})
	for i := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			scope := "device:" + strconv.Itoa(i%4)
			r, err := f.s.ReserveLoginAttempt(f.ctx, db.LoginAttempt{Account: "key-c", Scope: scope, IP: "192.0.2.4", At: T0, Since: T0.Add(-time.Hour),
				Limits: []db.AttemptLimit{{Scope: scope, Max: limit}, {Scope: "device:", Prefix: true, Max: limit}}})
			if err != nil {
				errs <- err
				return
			}
			if r.ID != 0 {
				ids <- r.ID
			}
		}()
	}
	close(start)
	wg.Wait()
	close(ids)
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	seen := map[int64]bool{}
	for id := range ids {
		seen[id] = true
	}
	if len(seen) != limit {
		t.Fatalf("%d concurrent callers reserved %d attempts, want exactly %d", callers, len(seen), limit)
	}
	n := 0
	for i := range 4 {
		k, _, err := f.s.LoginFailuresSince(f.ctx, "key-c", "device:"+strconv.Itoa(i), T0)
		if err != nil {
			t.Fatal(err)
		}
		n += k
	}
	if n != limit {
		t.Fatalf("the store holds %d attempts, want %d", n, limit)
	}
}

func testLoginFailures(t *testing.T, f *fixture) {
	for i := range 5 {
		if err := f.s.RecordLoginFailure(f.ctx, "key-a", "anon", "192.0.2.4", T0.Add(time.Duration(i)*time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	for _, k := range [][2]string{{"key-b", "anon"}, {"key-a", "device:1"}, {"key-a", "device:2"}} {
		if err := f.s.RecordLoginFailure(f.ctx, k[0], k[1], "192.0.2.4", T0); err != nil {
			t.Fatal(err)
		}
	}
	n, first, err := f.s.LoginFailuresSince(f.ctx, "key-a", "anon", T0.Add(2*time.Minute))
	if err != nil || n != 3 || !first.Equal(T0.Add(2*time.Minute)) {
		t.Fatalf("since +2m: %d %v %v", n, first, err)
	}
	if n, _, _ := f.s.LoginFailuresSince(f.ctx, "key-a", "device:1", T0); n != 1 {
		t.Fatalf("scopes are not counted apart: device:1 has %d", n)
	}
	if n, first, _ := f.s.LoginFailuresSince(f.ctx, "key-nobody", "anon", T0); n != 0 || !first.IsZero() {
		t.Fatalf("nobody: %d %v", n, first)
	}
	// Clearing one scope leaves the others.
	if err := f.s.ClearLoginFailures(f.ctx, "key-a", "device:1"); err != nil {
		t.Fatal(err)
	}
	if n, _, _ := f.s.LoginFailuresSince(f.ctx, "key-a", "device:1", T0); n != 0 {
		t.Fatal("scope not cleared")
	}
	if n, _, _ := f.s.LoginFailuresSince(f.ctx, "key-a", "anon", T0); n != 5 {
		t.Fatal("clearing a device cleared the anonymous count")
	}
	// No scope: every scope of that account, and no other account.
	if err := f.s.ClearLoginFailures(f.ctx, "key-a"); err != nil {
		t.Fatal(err)
	}
	for _, sc := range []string{"anon", "device:2"} {
		if n, _, _ := f.s.LoginFailuresSince(f.ctx, "key-a", sc, T0); n != 0 {
			t.Fatalf("%s not cleared", sc)
		}
	}
	if n, _, _ := f.s.LoginFailuresSince(f.ctx, "key-b", "anon", T0); n != 1 {
		t.Fatal("cleared someone else's")
	}
	if n, err := f.s.PruneLoginFailures(f.ctx, T0.Add(time.Second)); err != nil || n != 1 {
		t.Fatalf("prune: %d %v", n, err)
	}
}

func testAppSecret(t *testing.T, f *fixture) {
	k1, err := f.s.AppSecret(f.ctx, "flash", 32, T0)
	if err != nil || len(k1) != 32 || bytes.Equal(k1, make([]byte, 32)) {
		t.Fatalf("AppSecret = %x, %v", k1, err)
	}
	k2, _ := f.s.AppSecret(f.ctx, "flash", 32, T0.Add(time.Hour))
	if !bytes.Equal(k1, k2) {
		t.Fatal("AppSecret changed between calls")
	}
	if k3, _ := f.s.AppSecret(f.ctx, "other", 32, T0); bytes.Equal(k1, k3) {
		t.Fatal("two secrets share a value")
	}
}

func testBulk(t *testing.T, f *fixture) {
	b, err := f.s.BeginBulk(f.ctx)
	if err != nil {
		t.Fatal(err)
	}
	uid, err := b.AddUser(f.ctx, "bulk@example.com", "h", T0)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := b.AddSession(f.ctx, Session(fmt.Sprintf("bulk%d", i), uid, T0.Add(time.Duration(i)*time.Second))); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Commit(f.ctx); err != nil {
		t.Fatal(err)
	}
	if u, err := f.s.UserByEmail(f.ctx, "bulk@example.com"); err != nil || u.ID != uid {
		t.Fatalf("bulk user: %+v %v", u, err)
	}
	if got := f.live(t, uid, T0.Add(time.Minute)); got != "bulk2,bulk1,bulk0" {
		t.Fatalf("bulk sessions: %s", got)
	}
	// Their sign-in place is recorded as CreateSession records it, seen
	// last at the latest of them.
	sess := Session("", uid, T0)
	if net := db.Network(sess.IP); !f.seen(t, uid, sess.DeviceLabel, net, T0.Add(2*time.Second)) ||
		f.seen(t, uid, sess.DeviceLabel, net, T0.Add(3*time.Second)) {
		t.Fatal("bulk sessions' sign-in place not recorded as last seen at the latest")
	}
	if err := b.Commit(f.ctx); err == nil {
		t.Fatal("a second Commit succeeded")
	}
}

// testEndingVeryManySessions: one revocation ending more sessions than a
// statement may have parameters (SQLite's bound is 32,766) still ends them
// all, with everything the revocation rule does for each in the same
// transaction. (The session cap keeps a user's sessions far fewer; a
// database restored from elsewhere, or seeded, need not.)
func testEndingVeryManySessions(t *testing.T, f *fixture) {
	const n = 33_000
	b, err := f.s.BeginBulk(f.ctx)
	if err != nil {
		t.Fatal(err)
	}
	uid, err := b.AddUser(f.ctx, "many@example.com", "h", T0)
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if err := b.AddSession(f.ctx, Session(fmt.Sprintf("many%05d", i), uid, T0)); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Commit(f.ctx); err != nil {
		t.Fatal(err)
	}
	ended, err := f.s.RevokeAllSessions(f.ctx, uid, db.ReasonRevokedAll, "many00000", T0.Add(time.Minute))
	if err != nil {
		t.Fatalf("ending %d sessions at once: %v", n, err)
	}
	if len(ended) != n {
		t.Fatalf("ended %d sessions, want %d", len(ended), n)
	}
	if got := f.live(t, uid, T0.Add(time.Minute)); got != "" {
		t.Fatalf("still alive after ending them all: %.60s…", got)
	}
}

func testDump(t *testing.T, f *fixture) {
	a := f.user(t, "a@example.com")
	f.session(t, Session("a1", a.ID, T0))
	d1, err := f.s.Dump(f.ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"a@example.com", "a1", fmt.Sprintf("%x", "hash-a1")} {
		if !strings.Contains(d1, want) {
			t.Errorf("dump lacks %q:\n%s", want, d1)
		}
	}
	if d, _ := f.s.Dump(f.ctx); d != d1 {
		t.Fatal("two dumps of the same data differ")
	}
	if err := f.s.TouchSession(f.ctx, "a1", db.Touch{LastSeenAt: T0.Add(time.Hour), IdleExpiresAt: T0.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if d2, _ := f.s.Dump(f.ctx); d2 == d1 {
		t.Fatal("dump did not change with the data")
	}
	if err := f.s.RecordLoginFailure(f.ctx, "key-x", "anon", "192.0.2.1", T0); err != nil {
		t.Fatal(err)
	}
	if d3, _ := f.s.Dump(f.ctx); !strings.Contains(d3, "key-x") {
		t.Fatal("dump lacks the failure table")
	}
}

// testEvents: every write that starts or ends sessions reports exactly what
// it did, once, and a write that changes nothing reports nothing.
func testEvents(t *testing.T, f *fixture) {
	a := f.user(t, "a@example.com")
	if ev := f.rec.Take(); len(ev) != 0 {
		t.Fatalf("creating a user reported %+v", ev)
	}
	f.session(t, Session("a1", a.ID, T0))
	f.session(t, Session("a2", a.ID, T0))
	f.session(t, Session("a3", a.ID, T0))
	if ev := f.rec.Take(); len(ev) != 3 || ev[0].Kind != db.SessionStarted || ev[0].SessionID != "a1" || ev[0].UserID != a.ID || !ev[0].At.Equal(T0) {
		t.Fatalf("sign-ins reported %+v", ev)
	}
	now := T0.Add(time.Minute)
	if err := f.s.TouchSession(f.ctx, "a1", db.Touch{LastSeenAt: now, IdleExpiresAt: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if err := f.s.RotateSession(f.ctx, "a1", []byte("h"), now); err != nil {
		t.Fatal(err)
	}
	if ev := f.rec.Take(); len(ev) != 0 {
		t.Fatalf("touch and rotate reported %+v", ev)
	}
	if _, err := f.s.RevokeSession(f.ctx, a.ID, "a2", db.ReasonRevoked, "a1", now); err != nil {
		t.Fatal(err)
	}
	want := db.Event{Kind: db.SessionEnded, UserID: a.ID, SessionID: "a2", Reason: db.ReasonRevoked, By: "a1", At: now}
	if ev := f.rec.Take(); len(ev) != 1 || !sameEvent(ev[0], want) {
		t.Fatalf("revoke reported %+v, want %+v", ev, want)
	}
	if _, err := f.s.RevokeSession(f.ctx, a.ID, "a2", db.ReasonRevoked, "a1", now); !errors.Is(err, db.ErrNotFound) {
		t.Fatal(err)
	}
	if ev := f.rec.Take(); len(ev) != 0 {
		t.Fatalf("a refused revoke reported %+v", ev)
	}
	if _, err := f.s.RevokeOtherSessions(f.ctx, a.ID, "a1", db.ReasonPassword, now); err != nil {
		t.Fatal(err)
	}
	if ev := f.rec.Take(); len(ev) != 1 || ev[0].SessionID != "a3" || ev[0].Reason != db.ReasonPassword || ev[0].By != "a1" {
		t.Fatalf("revoke-others reported %+v", ev)
	}
	if _, err := f.s.RevokeAllSessions(f.ctx, a.ID, db.ReasonOperator, "operator", now); err != nil {
		t.Fatal(err)
	}
	if ev := f.rec.Take(); len(ev) != 1 || ev[0].SessionID != "a1" || ev[0].Reason != db.ReasonOperator || ev[0].By != "operator" {
		t.Fatalf("revoke-all reported %+v", ev)
	}
	if _, err := f.s.RevokeAllSessions(f.ctx, a.ID, db.ReasonOperator, "operator", now); err != nil {
		t.Fatal(err)
	}
	if ev := f.rec.Take(); len(ev) != 0 {
		t.Fatalf("a revoke-all with nothing to end reported %+v", ev)
	}
	if _, err := f.s.PruneSessions(f.ctx, now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if ev := f.rec.Take(); len(ev) != 0 {
		t.Fatalf("pruning ended rows reported %+v", ev)
	}
}

// sameEvent compares events, their times as instants.
func sameEvent(a, b db.Event) bool {
	at := a.At.Equal(b.At)
	a.At, b.At = time.Time{}, time.Time{}
	return at && a == b
}

// testConcurrentRevokeCreate races sign-ins against "sign out everywhere":
// each sign-in either creates a session or is refused because a reset
// committed after it read the user; each created session is either alive at
// the end or reported ended exactly once, never both, never twice; and the
// events say the same as the return values.
func testConcurrentRevokeCreate(t *testing.T, f *fixture) {
	a := f.user(t, "a@example.com")
	const creators, perCreator, revokers, rounds = 4, 25, 2, 15
	var wg sync.WaitGroup
	errs := make(chan error, creators*perCreator+revokers*rounds)
	var mu sync.Mutex
	endedBy := map[string]int{}
	created := map[string]bool{}
	refused := 0
	for c := range creators {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perCreator {
				id := fmt.Sprintf("c%d-%d", c, i)
				_, err := f.create(t, Session(id, a.ID, T0), 0)
				mu.Lock()
				switch {
				case err == nil:
					created[id] = true
				case errors.Is(err, db.ErrSignInsReset):
					refused++
				default:
					errs <- err
				}
				mu.Unlock()
			}
		}()
	}
	for range revokers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range rounds {
				ended, err := f.s.RevokeAllSessions(f.ctx, a.ID, db.ReasonRevokedAll, "", T0)
				if err != nil {
					errs <- err
					continue
				}
				mu.Lock()
				for _, e := range ended {
					endedBy[e.ID]++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("under concurrency: %v", err)
	}
	live, err := f.s.ListSessions(f.ctx, a.ID, T0)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range live {
		if endedBy[s.ID] > 0 {
			t.Errorf("%s is alive but was reported ended", s.ID)
		}
		if !created[s.ID] {
			t.Errorf("%s is alive but its sign-in was refused", s.ID)
		}
	}
	for id, n := range endedBy {
		if n != 1 || !created[id] {
			t.Errorf("%s reported ended %d times (created: %v)", id, n, created[id])
		}
	}
	if len(live)+len(endedBy) != len(created) || len(created)+refused != creators*perCreator {
		t.Errorf("%d alive + %d ended, %d created + %d refused; want %d sign-ins in all", len(live), len(endedBy), len(created), refused, creators*perCreator)
	}
	started, ended := 0, map[string]int{}
	for _, e := range f.rec.Take() {
		switch e.Kind {
		case db.SessionStarted:
			started++
		case db.SessionEnded:
			ended[e.SessionID]++
		}
	}
	if started != len(created) || len(ended) != len(endedBy) {
		t.Errorf("events: %d started, %d ended; want %d, %d", started, len(ended), len(created), len(endedBy))
	}
	for id, n := range ended {
		if n != 1 || endedBy[id] != 1 {
			t.Errorf("events: %s ended %d times (returned %d)", id, n, endedBy[id])
		}
	}
	// What the list called alive is exactly what is left to end.
	if ended, err := f.s.RevokeAllSessions(f.ctx, a.ID, db.ReasonRevokedAll, "", T0); err != nil || len(ended) != len(live) {
		t.Fatalf("final revoke-all: %d, %v; want %d", len(ended), err, len(live))
	}
}

// testSignInsReset: every reset of a user's sign-ins moves their epoch, and
// a sign-in holding an older epoch (or for a disabled user) creates nothing.
func testSignInsReset(t *testing.T, f *fixture) {
	a, b := f.user(t, "a@example.com"), f.user(t, "b@example.com")
	f.session(t, Session("a1", a.ID, T0))
	f.session(t, Session("b1", b.ID, T0))
	now := T0.Add(time.Minute)
	epoch := func(id int64) int64 {
		u, err := f.s.UserByID(f.ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return u.Epoch
	}
	bEpoch := epoch(b.ID)
	for _, reset := range []struct {
		name string
		do   func() error
	}{
		{"revoke others", func() error {
			_, err := f.s.RevokeOtherSessions(f.ctx, a.ID, "a1", db.ReasonRevokedOthers, now)
			return err
		}},
		{"revoke all", func() error {
			_, err := f.s.RevokeAllSessions(f.ctx, a.ID, db.ReasonRevokedAll, "", now)
			return err
		}},
		{"password change", func() error {
			f.session(t, Session("a-cur", a.ID, now))
			_, _, err := f.s.ChangePassword(f.ctx, a.ID, "a-cur", "new-hash", []byte("new-secret"), false, false, now)
			return err
		}},
	} {
		before := epoch(a.ID)
		if err := reset.do(); err != nil {
			t.Fatalf("%s: %v", reset.name, err)
		}
		if epoch(a.ID) == before {
			t.Fatalf("%s did not move the epoch", reset.name)
		}
		dump, _ := f.s.Dump(f.ctx)
		stale := Session("stale-"+strings.ReplaceAll(reset.name, " ", "-"), a.ID, now)
		if _, err := f.s.CreateSession(f.ctx, stale, 0, before); !errors.Is(err, db.ErrSignInsReset) {
			t.Fatalf("a sign-in from before %s: %v, want ErrSignInsReset", reset.name, err)
		}
		if d, _ := f.s.Dump(f.ctx); d != dump {
			t.Fatalf("a refused sign-in after %s changed the store", reset.name)
		}
	}
	if epoch(b.ID) != bEpoch {
		t.Fatal("another user's epoch moved")
	}
	// With the current epoch a sign-in works.
	f.session(t, Session("a-new", a.ID, now))
	// Disabling moves it too, and a disabled user gets no session even
	// with the current value.
	if _, err := f.s.SetUserDisabled(f.ctx, a.ID, true, now); err != nil {
		t.Fatal(err)
	}
	if _, err := f.s.CreateSession(f.ctx, Session("a-disabled", a.ID, now), 0, epoch(a.ID)); !errors.Is(err, db.ErrSignInsReset) {
		t.Fatalf("a sign-in of a disabled user: %v, want ErrSignInsReset", err)
	}
	if _, err := f.s.CreateSession(f.ctx, Session("nobody", 99999, now), 0, 0); !errors.Is(err, db.ErrNotFound) {
		t.Fatalf("a session for no user: %v, want ErrNotFound", err)
	}
}

// testChangePassword: one transaction that keeps the current session (with
// its new secret), ends the others if asked, and changes nothing at all
// when the current session is no longer alive.
func testChangePassword(t *testing.T, f *fixture) {
	a, b := f.user(t, "a@example.com"), f.user(t, "b@example.com")
	for _, id := range []string{"a1", "a2", "a3"} {
		f.session(t, Session(id, a.ID, T0))
	}
	f.session(t, Session("b1", b.ID, T0))
	now := T0.Add(time.Minute)
	f.rec.Take()
	ended, _, err := f.s.ChangePassword(f.ctx, a.ID, "a1", "hash-2", []byte("secret-2"), true, false, now)
	if err != nil || sortedIDs(ended) != "a2,a3" || ended[0].RevokedReason != db.ReasonPassword || ended[0].RevokedBy != "a1" {
		t.Fatalf("ChangePassword = %+v, %v", ended, err)
	}
	if ev := f.rec.Take(); len(ev) != 2 || ev[0].Reason != db.ReasonPassword {
		t.Fatalf("events of a password change: %+v", ev)
	}
	if u, _ := f.s.UserByID(f.ctx, a.ID); u.PasswordHash != "hash-2" {
		t.Fatalf("hash = %q", u.PasswordHash)
	}
	row, _, _ := f.s.SessionWithUser(f.ctx, "a1")
	if !row.Alive(now) || !bytes.Equal(row.SecretHash, []byte("secret-2")) || !row.ReauthAt.Equal(now) {
		t.Fatalf("current session after the change: %+v", row)
	}
	if got := f.live(t, b.ID, now); got != "b1" {
		t.Fatalf("b's sessions: %s", got)
	}
	// Keeping the others.
	f.session(t, Session("a4", a.ID, now))
	if ended, _, err := f.s.ChangePassword(f.ctx, a.ID, "a1", "hash-3", []byte("secret-3"), false, false, now); err != nil || len(ended) != 0 {
		t.Fatalf("keeping the others: %s, %v", ids(ended), err)
	}
	if got := f.live(t, a.ID, now); got != "a4,a1" && got != "a1,a4" {
		t.Fatalf("after a change that keeps others: %s", got)
	}
	// The current session was ended elsewhere meanwhile: nothing at all.
	if _, err := f.s.RevokeSession(f.ctx, a.ID, "a1", db.ReasonRevoked, "a4", now); err != nil {
		t.Fatal(err)
	}
	before, _ := f.s.Dump(f.ctx)
	f.rec.Take()
	if _, _, err := f.s.ChangePassword(f.ctx, a.ID, "a1", "hash-4", []byte("secret-4"), true, false, now); !errors.Is(err, db.ErrNotFound) {
		t.Fatalf("change from an ended session: %v, want ErrNotFound", err)
	}
	if after, _ := f.s.Dump(f.ctx); after != before {
		t.Fatal("a refused password change changed the store")
	}
	if ev := f.rec.Take(); len(ev) != 0 {
		t.Fatalf("a refused password change reported %+v", ev)
	}
	// Another user's session, or an unknown one: the same.
	if _, _, err := f.s.ChangePassword(f.ctx, a.ID, "b1", "hash-5", []byte("x"), true, false, now); !errors.Is(err, db.ErrNotFound) {
		t.Fatalf("change through b's session: %v", err)
	}
	if u, _ := f.s.UserByID(f.ctx, a.ID); u.PasswordHash != "hash-3" {
		t.Fatalf("hash after refused changes = %q", u.PasswordHash)
	}
}
