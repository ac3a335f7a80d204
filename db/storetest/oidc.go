package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"doorman/db"
)

// The OpenID Connect provider's store: apps with redirect URIs, subjects,
// signing keys, authorization requests and codes, grants and their
// families, consents and connected apps, and the back-channel logouts the
// revocation rule owes the apps.

// oidcApp registers an OIDC app; logoutURI "" for one that takes no
// back-channel logout.
func (f *fixture) oidcApp(t *testing.T, clientID, logoutURI string) db.App {
	t.Helper()
	a := db.App{ClientID: clientID, Name: "App " + clientID, CreatedAt: T0,
		RedirectURIs: []string{"https://" + clientID + ".example/cb"}, BackchannelLogoutURI: logoutURI}
	if err := f.s.CreateApp(f.ctx, a); err != nil {
		t.Fatalf("CreateApp(%s): %v", clientID, err)
	}
	return a
}

// AuthRequest returns an authorization request of clientID for tests,
// made at created, 10 minutes to complete.
func AuthRequest(id, clientID string, created time.Time) db.AuthRequest {
	return db.AuthRequest{ID: id, ClientID: clientID, RedirectURI: "https://" + clientID + ".example/cb",
		Scopes: []string{"openid", "email"}, State: "state-" + id, Nonce: "nonce-" + id, ResponseMode: "query",
		CodeChallenge: "challenge-" + id, CodeChallengeMethod: "S256", Prompt: []string{"login", "consent"}, MaxAge: -1,
		LoginHint: "a@example.com", CreatedAt: created, ExpiresAt: created.Add(10 * time.Minute)}
}

// Grant returns a grant for tests (a refresh token's secret hash is
// "secret-<id>"; an access token lives an hour, a refresh token 30 days).
func Grant(id, kind, family string, userID int64, clientID, sessionID string, offline bool, now time.Time) db.Grant {
	g := db.Grant{ID: id, Kind: kind, FamilyID: family, UserID: userID, ClientID: clientID, SessionID: sessionID,
		Offline: offline, Scopes: []string{"openid", "email"}, AuthTime: now, AMR: []string{"pwd", "otp"}, CreatedAt: now,
		ExpiresAt: now.Add(time.Hour)}
	if kind == db.GrantRefresh {
		g.SecretHash, g.ExpiresAt = []byte("secret-"+id), now.Add(30*24*time.Hour)
	}
	return g
}

func codeHash(reqID string) []byte { return []byte("code-hash-" + reqID) }

// oidcSignIn runs a code flow to its end at now: request reqID of the app
// completed by session sessionID of u, its code redeemed, and an access
// token (reqID-at) and a refresh token (reqID-rt, offline if offline)
// issued in family reqID.
func (f *fixture) oidcSignIn(t *testing.T, u db.User, sessionID, clientID, reqID string, offline bool, now time.Time) {
	t.Helper()
	if err := f.s.CreateAuthRequest(f.ctx, AuthRequest(reqID, clientID, now)); err != nil {
		t.Fatalf("CreateAuthRequest(%s): %v", reqID, err)
	}
	epoch := f.userRow(t, u.ID).Epoch
	if err := f.s.CompleteAuthRequest(f.ctx, reqID, u.ID, sessionID, now, []string{"pwd"}, epoch, now); err != nil {
		t.Fatalf("CompleteAuthRequest(%s): %v", reqID, err)
	}
	if err := f.s.SaveAuthCode(f.ctx, reqID, codeHash(reqID), now.Add(time.Minute)); err != nil {
		t.Fatalf("SaveAuthCode(%s): %v", reqID, err)
	}
	r, err := f.s.RedeemAuthCode(f.ctx, codeHash(reqID), now)
	if err != nil {
		t.Fatalf("RedeemAuthCode(%s): %v", reqID, err)
	}
	if err := f.s.IssueGrants(f.ctx, []db.Grant{
		Grant(reqID+"-at", db.GrantAccess, reqID, u.ID, clientID, sessionID, offline, now),
		Grant(reqID+"-rt", db.GrantRefresh, reqID, u.ID, clientID, sessionID, offline, now),
	}, "", r.Epoch, now); err != nil {
		t.Fatalf("IssueGrants(%s): %v", reqID, err)
	}
}

// grantState is "live", "unusable" or the reason the grant ended.
func (f *fixture) grantState(t *testing.T, id string, now time.Time) string {
	t.Helper()
	g, _, usable, err := f.s.GrantWithUser(f.ctx, id, now)
	if err != nil {
		t.Fatalf("GrantWithUser(%s): %v", id, err)
	}
	switch {
	case !g.RevokedAt.IsZero():
		return g.RevokedReason
	case usable:
		return "live"
	}
	return "unusable"
}

func (f *fixture) expectGrants(t *testing.T, what string, now time.Time, want map[string]string) {
	t.Helper()
	for id, w := range want {
		if got := f.grantState(t, id, now); got != w {
			t.Errorf("%s: grant %s is %q, want %q", what, id, got, w)
		}
	}
}

// deliveries lists the user's logout deliveries made since T0 as
// "client/sid" ("client/" for sub only), sorted.
func (f *fixture) deliveries(t *testing.T, userID int64) string {
	t.Helper()
	list, err := f.s.LogoutDeliveries(f.ctx, userID, T0)
	if err != nil {
		t.Fatalf("LogoutDeliveries: %v", err)
	}
	out := make([]string, len(list))
	for i, d := range list {
		if d.State != db.LogoutPending || d.UserID != userID {
			t.Errorf("delivery %+v: want pending, of user %d", d, userID)
		}
		out[i] = d.ClientID + "/" + d.SessionID
	}
	slices.Sort(out)
	return strings.Join(out, ",")
}

func testOIDCApps(t *testing.T, f *fixture) {
	a := db.App{ClientID: "grafana", Name: "Grafana", CreatedAt: T0, SecretHash: []byte("secret-hash"),
		RedirectURIs:           []string{"https://grafana.example/login/generic_oauth", "https://grafana.example/alt"},
		PostLogoutRedirectURIs: []string{"https://grafana.example/"}, BackchannelLogoutURI: "https://grafana.example/bcl",
		FirstParty: true}
	if err := f.s.CreateApp(f.ctx, a); err != nil {
		t.Fatal(err)
	}
	if err := f.s.CreateApp(f.ctx, db.App{ClientID: "grafana", Name: "Again", CreatedAt: T0}); !errors.Is(err, db.ErrConflict) {
		t.Fatalf("taken client_id: %v", err)
	}
	f.app(t, "cli")
	got, err := f.s.App(f.ctx, "grafana")
	slices.Sort(a.RedirectURIs)
	if err != nil || got.Name != "Grafana" || !bytes.Equal(got.SecretHash, a.SecretHash) || !got.FirstParty ||
		got.BackchannelLogoutURI != a.BackchannelLogoutURI || !slices.Equal(got.RedirectURIs, a.RedirectURIs) ||
		!slices.Equal(got.PostLogoutRedirectURIs, a.PostLogoutRedirectURIs) || !got.CreatedAt.Equal(T0) || !got.OIDC() {
		t.Fatalf("App = %+v, %v", got, err)
	}
	if cli, err := f.s.App(f.ctx, "cli"); err != nil || cli.SecretHash != nil || cli.OIDC() || cli.FirstParty || cli.BackchannelLogoutURI != "" {
		t.Fatalf("device app = %+v, %v", cli, err)
	}
	all, err := f.s.Apps(f.ctx)
	if err != nil || len(all) != 2 || all[0].ClientID != "cli" || all[1].ClientID != "grafana" || len(all[1].RedirectURIs) != 2 ||
		len(all[1].PostLogoutRedirectURIs) != 1 || len(all[0].RedirectURIs) != 0 {
		t.Fatalf("Apps = %+v, %v", all, err)
	}
}

func testOIDCSubjects(t *testing.T, f *fixture) {
	a, b := f.user(t, "a@example.com"), f.user(t, "b@example.com")
	sa, err := f.s.Subject(f.ctx, a.ID)
	if err != nil || len(sa) < 22 || strings.Contains(sa, "example") || sa == fmt.Sprint(a.ID) {
		t.Fatalf("Subject(a) = %q, %v", sa, err)
	}
	if again, err := f.s.Subject(f.ctx, a.ID); err != nil || again != sa {
		t.Fatalf("Subject(a) again = %q, %v; want %q", again, err, sa)
	}
	// Two callers at once agree.
	var wg sync.WaitGroup
	subs := make([]string, 4)
	for i := range subs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			subs[i], _ = f.s.Subject(f.ctx, b.ID)
		}()
	}
	wg.Wait()
	for _, s := range subs {
		if s == "" || s != subs[0] || s == sa {
			t.Fatalf("concurrent subjects of b = %q (a's %q)", subs, sa)
		}
	}
	if u, err := f.s.UserBySubject(f.ctx, subs[0]); err != nil || u.ID != b.ID || u.Email != "b@example.com" {
		t.Fatalf("UserBySubject = %+v, %v", u, err)
	}
	if _, err := f.s.UserBySubject(f.ctx, "nobody"); !errors.Is(err, db.ErrNotFound) {
		t.Fatalf("unknown subject: %v", err)
	}
	if _, err := f.s.Subject(f.ctx, b.ID+1000); !errors.Is(err, db.ErrNotFound) {
		t.Fatalf("subject of nobody: %v", err)
	}
	// An address change keeps the subject.
	if err := f.s.UpdateEmail(f.ctx, a.ID, "new@example.com"); err != nil {
		t.Fatal(err)
	}
	if again, _ := f.s.Subject(f.ctx, a.ID); again != sa {
		t.Fatalf("subject after an address change = %q, want %q", again, sa)
	}
}

func signingKey(id string, created time.Time) db.SigningKey {
	return db.SigningKey{ID: id, Algorithm: "RS256", PrivateSealed: []byte("sealed-" + id), PublicJWK: []byte(`{"kid":"` + id + `"}`),
		CreatedAt: created}
}

func keyIDs(keys []db.SigningKey) string {
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = k.ID
	}
	return strings.Join(out, ",")
}

func testOIDCSigningKeys(t *testing.T, f *fixture) {
	if keys, err := f.s.SigningKeys(f.ctx, T0); err != nil || len(keys) != 0 {
		t.Fatalf("SigningKeys before any = %v, %v", keys, err)
	}
	// Instances starting at once make one.
	var wg sync.WaitGroup
	got := make([]db.SigningKey, 4)
	errs := make([]error, 4)
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i], errs[i] = f.s.EnsureSigningKey(f.ctx, signingKey(fmt.Sprintf("k%d", i), T0))
		}()
	}
	wg.Wait()
	for i := range got {
		if errs[i] != nil || got[i].ID != got[0].ID {
			t.Fatalf("EnsureSigningKey at once = %v, %v", keyIDs(got), errs)
		}
	}
	first := got[0]
	if !bytes.Equal(first.PrivateSealed, []byte("sealed-"+first.ID)) || first.Algorithm != "RS256" || !first.RetiredAt.IsZero() ||
		!first.CreatedAt.Equal(T0) || !strings.Contains(string(first.PublicJWK), first.ID) {
		t.Fatalf("signing key = %+v", first)
	}
	if k, err := f.s.EnsureSigningKey(f.ctx, signingKey("later", T0.Add(time.Hour))); err != nil || k.ID != first.ID {
		t.Fatalf("EnsureSigningKey with one = %+v, %v", k, err)
	}
	rotated := T0.Add(24 * time.Hour)
	if err := f.s.RotateSigningKey(f.ctx, signingKey("k-new", rotated), rotated.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	keys, err := f.s.SigningKeys(f.ctx, rotated)
	if err != nil || keyIDs(keys) != "k-new,"+first.ID || !keys[0].RetiredAt.IsZero() || !keys[1].RetiredAt.Equal(rotated) ||
		!keys[1].ExpiresAt.Equal(rotated.Add(time.Hour)) {
		t.Fatalf("after rotation = %+v, %v", keys, err)
	}
	if k, _ := f.s.EnsureSigningKey(f.ctx, signingKey("another", rotated)); k.ID != "k-new" {
		t.Fatalf("EnsureSigningKey after rotation = %s", k.ID)
	}
	if err := f.s.RotateSigningKey(f.ctx, signingKey("k-third", rotated.Add(time.Minute)), rotated.Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if keys, _ := f.s.SigningKeys(f.ctx, rotated.Add(time.Hour)); keyIDs(keys) != "k-third,k-new" {
		t.Fatalf("past the first key's publication = %s, want k-third,k-new", keyIDs(keys))
	}
}

func testOIDCAuthRequests(t *testing.T, f *fixture) {
	a, b := f.user(t, "a@example.com"), f.user(t, "b@example.com")
	f.session(t, Session("a1", a.ID, T0))
	f.session(t, Session("b1", b.ID, T0))
	f.oidcApp(t, "wiki", "")
	if err := f.s.CreateAuthRequest(f.ctx, AuthRequest("r-none", "nope", T0)); !errors.Is(err, db.ErrNotFound) {
		t.Fatalf("request of an unknown app: %v", err)
	}
	want := AuthRequest("r1", "wiki", T0)
	if err := f.s.CreateAuthRequest(f.ctx, want); err != nil {
		t.Fatal(err)
	}
	if err := f.s.CreateAuthRequest(f.ctx, want); !errors.Is(err, db.ErrConflict) {
		t.Fatalf("taken id: %v", err)
	}
	got, err := f.s.AuthRequest(f.ctx, "r1", T0)
	if err != nil || got.ClientID != "wiki" || got.RedirectURI != want.RedirectURI || !slices.Equal(got.Scopes, want.Scopes) ||
		got.State != want.State || got.Nonce != want.Nonce || got.ResponseMode != "query" || got.CodeChallenge != want.CodeChallenge ||
		got.CodeChallengeMethod != "S256" || !slices.Equal(got.Prompt, want.Prompt) || got.MaxAge != -1 || got.LoginHint != want.LoginHint ||
		!got.CreatedAt.Equal(T0) || !got.ExpiresAt.Equal(want.ExpiresAt) || got.Done() || got.UserID != 0 {
		t.Fatalf("AuthRequest = %+v, %v", got, err)
	}
	if _, err := f.s.AuthRequest(f.ctx, "r1", want.ExpiresAt); !errors.Is(err, db.ErrNotFound) {
		t.Fatalf("expired request: %v", err)
	}
	if _, err := f.s.AuthRequest(f.ctx, "nope", T0); !errors.Is(err, db.ErrNotFound) {
		t.Fatalf("unknown request: %v", err)
	}
	now := T0.Add(time.Minute)
	// Refusals change nothing.
	before := f.dump(t)
	if err := f.s.SaveAuthCode(f.ctx, "r1", codeHash("r1"), now.Add(time.Minute)); !errors.Is(err, db.ErrNotFound) {
		t.Fatalf("code for a request not completed: %v", err)
	}
	if err := f.s.CompleteAuthRequest(f.ctx, "r1", a.ID, "b1", now, []string{"pwd"}, a.Epoch, now); !errors.Is(err, db.ErrNotFound) {
		t.Fatalf("completed with another user's session: %v", err)
	}
	if err := f.s.CompleteAuthRequest(f.ctx, "r1", a.ID, "a1", now, []string{"pwd"}, a.Epoch+1, now); !errors.Is(err, db.ErrSignInsReset) {
		t.Fatalf("completed at another epoch: %v", err)
	}
	if err := f.s.CompleteAuthRequest(f.ctx, "r1", a.ID, "a1", want.ExpiresAt, []string{"pwd"}, a.Epoch, want.ExpiresAt); !errors.Is(err, db.ErrNotFound) {
		t.Fatalf("completed after expiry: %v", err)
	}
	if err := f.s.CompleteAuthRequest(f.ctx, "nope", a.ID, "a1", now, []string{"pwd"}, a.Epoch, now); !errors.Is(err, db.ErrNotFound) {
		t.Fatalf("unknown request completed: %v", err)
	}
	if _, err := f.s.RedeemAuthCode(f.ctx, codeHash("r1"), now); !errors.Is(err, db.ErrNotFound) {
		t.Fatalf("unknown code: %v", err)
	}
	if after := f.dump(t); after != before {
		t.Fatalf("refusals changed the store:\n%s\n---\n%s", before, after)
	}
	if err := f.s.CompleteAuthRequest(f.ctx, "r1", a.ID, "a1", T0, []string{"pwd", "otp"}, a.Epoch, now); err != nil {
		t.Fatal(err)
	}
	if err := f.s.CompleteAuthRequest(f.ctx, "r1", a.ID, "a1", T0, []string{"pwd"}, a.Epoch, now); !errors.Is(err, db.ErrNotFound) {
		t.Fatalf("completed twice: %v", err)
	}
	got, err = f.s.AuthRequest(f.ctx, "r1", now)
	if err != nil || !got.Done() || got.UserID != a.ID || got.SessionID != "a1" || !got.AuthTime.Equal(T0) ||
		!slices.Equal(got.AMR, []string{"pwd", "otp"}) || got.Epoch != a.Epoch || !got.DoneAt.Equal(now) {
		t.Fatalf("completed request = %+v, %v", got, err)
	}
	if _, err := f.s.Subject(f.ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	if err := f.s.SaveAuthCode(f.ctx, "r1", codeHash("r1"), now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := f.s.SaveAuthCode(f.ctx, "r1", []byte("another"), now.Add(time.Minute)); !errors.Is(err, db.ErrNotFound) {
		t.Fatalf("a second code: %v", err)
	}
	if _, err := f.s.RedeemAuthCode(f.ctx, codeHash("r1"), now.Add(time.Minute)); !errors.Is(err, db.ErrNotFound) {
		t.Fatalf("expired code: %v", err)
	}
	r, err := f.s.RedeemAuthCode(f.ctx, codeHash("r1"), now)
	if err != nil || r.ID != "r1" || r.UserID != a.ID || r.SessionID != "a1" || r.Nonce != want.Nonce || !r.CodeUsedAt.Equal(now) {
		t.Fatalf("RedeemAuthCode = %+v, %v", r, err)
	}
	if err := f.s.IssueGrants(f.ctx, []db.Grant{Grant("r1-at", db.GrantAccess, "r1", a.ID, "wiki", "a1", false, now),
		Grant("r1-rt", db.GrantRefresh, "r1", a.ID, "wiki", "a1", false, now)}, "", r.Epoch, now); err != nil {
		t.Fatal(err)
	}
	// The provider deletes the request once its tokens are issued: its
	// spent code is kept, so a second use still ends what the first
	// issued.
	if err := f.s.DeleteAuthRequest(f.ctx, "r1"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.s.RedeemAuthCode(f.ctx, codeHash("r1"), now); !errors.Is(err, db.ErrCodeUsed) {
		t.Fatalf("second use of a code: %v, want ErrCodeUsed", err)
	}
	f.expectGrants(t, "code reused", now, map[string]string{"r1-at": db.ReasonCodeReused, "r1-rt": db.ReasonCodeReused})
	// A request never given a code goes when deleted; pruning takes the rest.
	if err := f.s.CreateAuthRequest(f.ctx, AuthRequest("r2", "wiki", T0)); err != nil {
		t.Fatal(err)
	}
	if err := f.s.DeleteAuthRequest(f.ctx, "r2"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.s.AuthRequest(f.ctx, "r2", T0); !errors.Is(err, db.ErrNotFound) {
		t.Fatalf("deleted request: %v", err)
	}
	if err := f.s.CreateAuthRequest(f.ctx, AuthRequest("r3", "wiki", T0.Add(time.Hour))); err != nil {
		t.Fatal(err)
	}
	if n, err := f.s.PruneAuthRequests(f.ctx, T0.Add(30*time.Minute)); err != nil || n != 1 {
		t.Fatalf("PruneAuthRequests = %d, %v; want 1 (r1)", n, err)
	}
	if _, err := f.s.RedeemAuthCode(f.ctx, codeHash("r1"), now); !errors.Is(err, db.ErrNotFound) {
		t.Fatalf("pruned code: %v", err)
	}
	if _, err := f.s.AuthRequest(f.ctx, "r3", T0.Add(time.Hour)); err != nil {
		t.Fatalf("unexpired request pruned: %v", err)
	}
	// A disabled user completes nothing.
	if _, err := f.s.SetUserDisabled(f.ctx, b.ID, true, now); err != nil {
		t.Fatal(err)
	}
	if err := f.s.CreateAuthRequest(f.ctx, AuthRequest("rb", "wiki", now)); err != nil {
		t.Fatal(err)
	}
	bu := f.userRow(t, b.ID)
	if err := f.s.CompleteAuthRequest(f.ctx, "rb", b.ID, "b1", now, []string{"pwd"}, bu.Epoch, now); !errors.Is(err, db.ErrSignInsReset) {
		t.Fatalf("disabled user completed a request: %v", err)
	}
}

func testOIDCCodeAfterReset(t *testing.T, f *fixture) {
	a := f.user(t, "a@example.com")
	f.session(t, Session("a1", a.ID, T0))
	f.session(t, Session("a2", a.ID, T0))
	f.oidcApp(t, "wiki", "")
	now := T0.Add(time.Minute)
	if err := f.s.CreateAuthRequest(f.ctx, AuthRequest("r1", "wiki", T0)); err != nil {
		t.Fatal(err)
	}
	if err := f.s.CompleteAuthRequest(f.ctx, "r1", a.ID, "a1", now, []string{"pwd"}, a.Epoch, now); err != nil {
		t.Fatal(err)
	}
	if err := f.s.SaveAuthCode(f.ctx, "r1", codeHash("r1"), now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	// "Sign out all other sessions" from a2 resets the sign-ins (and ends
	// a1) between the sign-in and the code's redemption.
	if _, err := f.s.RevokeOtherSessions(f.ctx, a.ID, "a2", db.ReasonRevokedOthers, now); err != nil {
		t.Fatal(err)
	}
	r, err := f.s.RedeemAuthCode(f.ctx, codeHash("r1"), now)
	if err != nil {
		t.Fatal(err)
	}
	before := f.dump(t)
	err = f.s.IssueGrants(f.ctx, []db.Grant{Grant("r1-rt", db.GrantRefresh, "r1", a.ID, "wiki", "a1", true, now)}, "", r.Epoch, now)
	if !errors.Is(err, db.ErrSignInsReset) {
		t.Fatalf("grants of a code from before a reset: %v, want ErrSignInsReset", err)
	}
	// At the current epoch, the ended session still refuses them, even
	// offline.
	cur := f.userRow(t, a.ID)
	err = f.s.IssueGrants(f.ctx, []db.Grant{Grant("r1-rt", db.GrantRefresh, "r1", a.ID, "wiki", "a1", true, now)}, "", cur.Epoch, now)
	if !errors.Is(err, db.ErrNotFound) {
		t.Fatalf("grants for an ended session: %v, want ErrNotFound", err)
	}
	if after := f.dump(t); after != before {
		t.Fatalf("refused grants changed the store:\n%s\n---\n%s", before, after)
	}
}

func testOIDCRefreshRotation(t *testing.T, f *fixture) {
	a, b := f.user(t, "a@example.com"), f.user(t, "b@example.com")
	f.session(t, Session("a1", a.ID, T0))
	f.session(t, Session("b1", b.ID, T0))
	f.oidcApp(t, "wiki", "")
	f.oidcApp(t, "other", "")
	f.oidcSignIn(t, a, "a1", "wiki", "f1", false, T0)
	f.oidcSignIn(t, b, "b1", "wiki", "fb", false, T0)
	h := newHistory(f)
	h.skip(t, a.ID)
	now := T0.Add(time.Hour)
	g, u, usable, err := f.s.GrantWithUser(f.ctx, "f1-rt", T0)
	if err != nil || !usable || u.ID != a.ID || u.Email != "a@example.com" || g.Kind != db.GrantRefresh || g.FamilyID != "f1" ||
		!bytes.Equal(g.SecretHash, []byte("secret-f1-rt")) || g.SessionID != "a1" || g.Offline || !slices.Equal(g.AMR, []string{"pwd", "otp"}) ||
		!g.Alive(T0) {
		t.Fatalf("GrantWithUser = %+v %+v %v %v", g, u, usable, err)
	}
	if _, _, _, err := f.s.GrantWithUser(f.ctx, "nope", T0); !errors.Is(err, db.ErrNotFound) {
		t.Fatalf("unknown grant: %v", err)
	}
	if f.grantState(t, "f1-at", now) != "unusable" {
		t.Fatal("an expired access token is usable")
	}
	next := []db.Grant{Grant("f1-at2", db.GrantAccess, "f1", a.ID, "wiki", "a1", false, now),
		Grant("f1-rt2", db.GrantRefresh, "f1", a.ID, "wiki", "a1", false, now)}
	// Refusals: another user's token, another app's, an access token, an
	// unknown one; nothing changes.
	before := f.dump(t)
	for _, spend := range []string{"fb-rt", "f1-at", "nope"} {
		if err := f.s.IssueGrants(f.ctx, next, spend, -1, now); !errors.Is(err, db.ErrNotFound) {
			t.Fatalf("spending %s: %v, want ErrNotFound", spend, err)
		}
	}
	other := []db.Grant{Grant("o-rt", db.GrantRefresh, "f1", a.ID, "other", "a1", false, now)}
	if err := f.s.IssueGrants(f.ctx, other, "f1-rt", -1, now); !errors.Is(err, db.ErrNotFound) {
		t.Fatalf("another app spending wiki's token: %v", err)
	}
	if after := f.dump(t); after != before {
		t.Fatalf("refused refreshes changed the store")
	}
	if err := f.s.IssueGrants(f.ctx, next, "f1-rt", -1, now); err != nil {
		t.Fatal(err)
	}
	if g, _, usable, _ := f.s.GrantWithUser(f.ctx, "f1-rt", now); usable || !g.UsedAt.Equal(now) || !g.RevokedAt.IsZero() {
		t.Fatalf("spent token = %+v usable %v", g, usable)
	}
	f.expectGrants(t, "rotated", now, map[string]string{"f1-rt2": "live", "f1-at2": "live"})
	h.expect(t, "rotation", a.ID)
	// The spent one comes back: the family ends, and the history says so.
	later := now.Add(time.Minute)
	third := []db.Grant{Grant("f1-rt3", db.GrantRefresh, "f1", a.ID, "wiki", "a1", false, later)}
	if err := f.s.IssueGrants(f.ctx, third, "f1-rt", -1, later); !errors.Is(err, db.ErrCodeUsed) {
		t.Fatalf("a spent refresh token again: %v, want ErrCodeUsed", err)
	}
	f.expectGrants(t, "reused", later, map[string]string{"f1-rt2": db.ReasonRefreshReused, "f1-at2": db.ReasonRefreshReused,
		"fb-rt": "live"})
	if _, _, _, err := f.s.GrantWithUser(f.ctx, "f1-rt3", later); !errors.Is(err, db.ErrNotFound) {
		t.Fatalf("a grant issued with a reused token: %v", err)
	}
	h.expect(t, "reuse", a.ID, db.SecurityEvent{UserID: a.ID, Kind: db.EventRefreshReused, At: later, SessionID: "a1",
		TokenID: "f1-rt", Detail: "App wiki", Reason: db.ReasonRefreshReused})
	// The revoked successor is refused, without another event.
	if err := f.s.IssueGrants(f.ctx, third, "f1-rt2", -1, later); !errors.Is(err, db.ErrNotFound) {
		t.Fatalf("a revoked refresh token: %v", err)
	}
	h.expect(t, "revoked token", a.ID)

	// The app revokes (RFC 7009): a refresh token ends its family, an
	// access token itself; another app's ids are not found.
	if err := f.s.RevokeGrant(f.ctx, "other", "fb-rt", now); !errors.Is(err, db.ErrNotFound) {
		t.Fatalf("another app revoking: %v", err)
	}
	if err := f.s.RevokeGrant(f.ctx, "wiki", "fb-at", T0); err != nil {
		t.Fatal(err)
	}
	f.expectGrants(t, "access revoked", T0, map[string]string{"fb-at": db.ReasonRevokedByApp, "fb-rt": "live"})
	if err := f.s.RevokeGrant(f.ctx, "wiki", "fb-rt", T0); err != nil {
		t.Fatal(err)
	}
	f.expectGrants(t, "refresh revoked", T0, map[string]string{"fb-rt": db.ReasonRevokedByApp})
	if err := f.s.RevokeGrant(f.ctx, "wiki", "fb-rt", T0); err != nil {
		t.Fatalf("revoking twice: %v", err)
	}
	// A disabled user's grants are not usable, and none are issued.
	f.oidcSignIn(t, b, "b1", "wiki", "fb2", true, T0)
	if _, err := f.s.SetUserDisabled(f.ctx, b.ID, true, now); err != nil {
		t.Fatal(err)
	}
	f.expectGrants(t, "disabled", now, map[string]string{"fb2-rt": db.ReasonDisabled, "fb2-at": db.ReasonDisabled})
	refresh := []db.Grant{Grant("fb2-rt2", db.GrantRefresh, "fb2", b.ID, "wiki", "b1", true, now)}
	if err := f.s.IssueGrants(f.ctx, refresh, "fb2-rt", -1, now); !errors.Is(err, db.ErrSignInsReset) {
		t.Fatalf("refresh of a disabled user: %v, want ErrSignInsReset", err)
	}
}

// testOIDCPruneGrants: grants expired or ended before the cutoff go, but a
// spent refresh token stays until it expires, family ended or not, so that
// presented again it is still recognised as reuse.
func testOIDCPruneGrants(t *testing.T, f *fixture) {
	a, b := f.user(t, "a@example.com"), f.user(t, "b@example.com")
	f.session(t, Session("a1", a.ID, T0))
	f.session(t, Session("b1", b.ID, T0))
	f.oidcApp(t, "wiki", "")
	f.oidcSignIn(t, a, "a1", "wiki", "f1", true, T0)
	rotated := T0.Add(time.Hour)
	if err := f.s.IssueGrants(f.ctx, []db.Grant{Grant("f1-at2", db.GrantAccess, "f1", a.ID, "wiki", "a1", true, rotated),
		Grant("f1-rt2", db.GrantRefresh, "f1", a.ID, "wiki", "a1", true, rotated)}, "f1-rt", -1, rotated); err != nil {
		t.Fatal(err)
	}
	// The app ends the family: every grant of it is ended, the spent f1-rt too.
	if err := f.s.RevokeGrant(f.ctx, "wiki", "f1-rt2", rotated); err != nil {
		t.Fatal(err)
	}
	f.oidcSignIn(t, b, "b1", "wiki", "fb", true, T0.Add(10*24*time.Hour))
	// Three days on: both access tokens expired, f1-rt2 ended unspent; the
	// spent f1-rt (alive until T0+30 days) and b's grants stay.
	later := T0.Add(3 * 24 * time.Hour)
	if n, err := f.s.PruneGrants(f.ctx, later); err != nil || n != 3 {
		t.Fatalf("PruneGrants(+3 days) = %d, %v; want 3", n, err)
	}
	for _, id := range []string{"f1-at", "f1-at2", "f1-rt2"} {
		if _, _, _, err := f.s.GrantWithUser(f.ctx, id, later); !errors.Is(err, db.ErrNotFound) {
			t.Errorf("pruned grant %s: %v", id, err)
		}
	}
	f.expectGrants(t, "after pruning", later, map[string]string{"f1-rt": db.ReasonRevokedByApp, "fb-rt": "live"})
	h := newHistory(f)
	h.skip(t, a.ID)
	next := []db.Grant{Grant("f1-rt3", db.GrantRefresh, "f1", a.ID, "wiki", "a1", true, later)}
	if err := f.s.IssueGrants(f.ctx, next, "f1-rt", -1, later); !errors.Is(err, db.ErrCodeUsed) {
		t.Fatalf("the spent token again after pruning: %v, want ErrCodeUsed", err)
	}
	h.expect(t, "reuse after pruning", a.ID, db.SecurityEvent{UserID: a.ID, Kind: db.EventRefreshReused, At: later,
		SessionID: "a1", TokenID: "f1-rt", Detail: "App wiki", Reason: db.ReasonRefreshReused})
	// Once f1-rt has expired it goes too; b's live grants stay.
	if n, err := f.s.PruneGrants(f.ctx, T0.Add(30*24*time.Hour+time.Second)); err != nil || n != 2 {
		t.Fatalf("PruneGrants(+30 days) = %d, %v; want 2 (f1-rt, fb-at)", n, err)
	}
	f.expectGrants(t, "b's", T0.Add(30*24*time.Hour), map[string]string{"fb-rt": "live"})
}

func testOIDCRevocationRule(t *testing.T, f *fixture) {
	a, b := f.user(t, "a@example.com"), f.user(t, "b@example.com")
	for _, id := range []string{"a1", "a2", "a3"} {
		f.session(t, Session(id, a.ID, T0))
	}
	f.session(t, Session("b1", b.ID, T0))
	f.oidcApp(t, "grafana", "https://grafana.example/bcl")
	f.oidcApp(t, "gitea", "https://gitea.example/bcl")
	f.oidcApp(t, "wiki", "") // takes no back-channel logout
	f.oidcSignIn(t, a, "a1", "grafana", "g1", false, T0)
	f.oidcSignIn(t, a, "a1", "wiki", "w1", false, T0)
	f.oidcSignIn(t, a, "a2", "gitea", "t2", true, T0) // offline
	f.oidcSignIn(t, a, "a2", "grafana", "g2", false, T0)
	f.oidcSignIn(t, b, "b1", "grafana", "gb", true, T0)
	now := T0.Add(time.Minute)
	if got := f.deliveries(t, a.ID); got != "" {
		t.Fatalf("deliveries before any ending: %s", got)
	}
	// Ending a session ends its grants that are not offline, and owes
	// each app it signed in to that takes them a logout naming it.
	if _, err := f.s.RevokeSession(f.ctx, a.ID, "a1", db.ReasonRevoked, "a3", now); err != nil {
		t.Fatal(err)
	}
	f.expectGrants(t, "a1 ended", now, map[string]string{"g1-at": db.ReasonSessionEnded, "g1-rt": db.ReasonSessionEnded,
		"w1-rt": db.ReasonSessionEnded, "t2-rt": "live", "g2-rt": "live", "gb-rt": "live"})
	if got := f.deliveries(t, a.ID); got != "grafana/a1" {
		t.Fatalf("deliveries after a1 ended = %s, want grafana/a1", got)
	}
	list, _ := f.s.LogoutDeliveries(f.ctx, a.ID, T0)
	sub, _ := f.s.Subject(f.ctx, a.ID)
	if d := list[0]; d.Subject != sub || d.AppName != "App grafana" || d.URI != "https://grafana.example/bcl" || !d.CreatedAt.Equal(now) ||
		!d.NextAt.Equal(now) || d.Attempts != 0 || d.ID == 0 {
		t.Fatalf("delivery = %+v", d)
	}
	// "Sign out all other sessions" ends a2: its offline grant lives on.
	if _, err := f.s.RevokeOtherSessions(f.ctx, a.ID, "a3", db.ReasonRevokedOthers, now); err != nil {
		t.Fatal(err)
	}
	f.expectGrants(t, "others ended", now, map[string]string{"g2-rt": db.ReasonSessionEnded, "t2-rt": "live", "t2-at": "live"})
	if got := f.deliveries(t, a.ID); got != "gitea/a2,grafana/a1,grafana/a2" {
		t.Fatalf("deliveries after others ended = %s", got)
	}
	// Ending every token ("sign out everywhere") ends the offline grants
	// too and owes every connected app a logout of every session.
	if _, err := f.s.RevokeTokens(f.ctx, a.ID, "", db.ReasonRevokedAll, "a3", now); err != nil {
		t.Fatal(err)
	}
	f.expectGrants(t, "everything ended", now, map[string]string{"t2-rt": db.ReasonRevokedAll, "t2-at": db.ReasonRevokedAll,
		"gb-rt": "live"})
	if got := f.deliveries(t, a.ID); got != "gitea/,gitea/a2,grafana/,grafana/a1,grafana/a2" {
		t.Fatalf("deliveries after everything ended = %s", got)
	}
	if got := f.deliveries(t, b.ID); got != "" {
		t.Fatalf("b owed deliveries: %s", got)
	}
	// Only personal tokens: no grant, no delivery.
	f.oidcSignIn(t, a, "a3", "gitea", "t3", true, now)
	if _, err := f.s.RevokeTokens(f.ctx, a.ID, db.TokenPersonal, db.ReasonRevoked, "a3", now); err != nil {
		t.Fatal(err)
	}
	f.expectGrants(t, "personal tokens ended", now, map[string]string{"t3-rt": "live"})
	// Every app's tokens: as everything.
	if _, err := f.s.RevokeTokens(f.ctx, a.ID, db.TokenApp, db.ReasonRevoked, "a3", now); err != nil {
		t.Fatal(err)
	}
	f.expectGrants(t, "apps ended", now, map[string]string{"t3-rt": db.ReasonRevoked})

	// Disabling b ends their offline grant and owes grafana a logout of
	// the session and one of every session.
	if _, err := f.s.SetUserDisabled(f.ctx, b.ID, true, now); err != nil {
		t.Fatal(err)
	}
	f.expectGrants(t, "b disabled", now, map[string]string{"gb-rt": db.ReasonDisabled})
	if got := f.deliveries(t, b.ID); got != "grafana/,grafana/b1" {
		t.Fatalf("deliveries after b disabled = %s", got)
	}
}

func testOIDCRecoverAndDelete(t *testing.T, f *fixture) {
	a, b := f.user(t, "a@example.com"), f.user(t, "b@example.com")
	f.session(t, Session("a1", a.ID, T0))
	f.session(t, Session("b1", b.ID, T0))
	f.oidcApp(t, "grafana", "https://grafana.example/bcl")
	f.oidcSignIn(t, a, "a1", "grafana", "g1", true, T0)
	f.oidcSignIn(t, b, "b1", "grafana", "gb", true, T0)
	now := T0.Add(time.Minute)
	// A reset that keeps the tokens ends the session's links but not the
	// offline grant; one that ends them ends it.
	if _, err := f.s.RecoverAccount(f.ctx, db.Recovery{UserID: a.ID, EndOthers: true, Reason: db.ReasonPasswordReset, Now: now}); err != nil {
		t.Fatal(err)
	}
	f.expectGrants(t, "reset keeping tokens", now, map[string]string{"g1-rt": "live"})
	if got := f.deliveries(t, a.ID); got != "grafana/a1" {
		t.Fatalf("deliveries after the reset = %s", got)
	}
	if _, err := f.s.RecoverAccount(f.ctx, db.Recovery{UserID: a.ID, EndTokens: true, Reason: db.ReasonPasswordReset, Now: now}); err != nil {
		t.Fatal(err)
	}
	f.expectGrants(t, "reset ending tokens", now, map[string]string{"g1-rt": db.ReasonPasswordReset})
	if got := f.deliveries(t, a.ID); got != "grafana/,grafana/a1" {
		t.Fatalf("deliveries after the reset ending tokens = %s", got)
	}
	// Deleting b removes their rows and still owes grafana a logout of
	// every session, about no account but with b's subject.
	sub, _ := f.s.Subject(f.ctx, b.ID)
	if _, err := f.s.DeleteUser(f.ctx, b.ID, now); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := f.s.GrantWithUser(f.ctx, "gb-rt", now); !errors.Is(err, db.ErrNotFound) {
		t.Fatalf("a deleted user's grant: %v", err)
	}
	if _, err := f.s.UserBySubject(f.ctx, sub); !errors.Is(err, db.ErrNotFound) {
		t.Fatalf("a deleted user's subject: %v", err)
	}
	claimed, err := f.s.ClaimLogoutDeliveries(f.ctx, now, time.Minute, 10)
	if err != nil {
		t.Fatal(err)
	}
	var forB []string
	for _, d := range claimed {
		if d.Subject == sub {
			forB = append(forB, fmt.Sprintf("%d/%s/%s", d.UserID, d.ClientID, d.SessionID))
		}
	}
	if strings.Join(forB, ",") != "0/grafana/" {
		t.Fatalf("deleted user's deliveries = %v, want 0/grafana/", forB)
	}
}

func testOIDCLogoutDeliveries(t *testing.T, f *fixture) {
	a := f.user(t, "a@example.com")
	f.oidcApp(t, "grafana", "https://grafana.example/bcl")
	f.oidcApp(t, "gitea", "https://gitea.example/bcl")
	for i := range 6 {
		id := fmt.Sprintf("a%d", i)
		f.session(t, Session(id, a.ID, T0))
		f.oidcSignIn(t, a, id, "grafana", "g"+id, false, T0)
		f.oidcSignIn(t, a, id, "gitea", "t"+id, false, T0)
	}
	now := T0.Add(time.Minute)
	if _, err := f.s.RevokeAllSessions(f.ctx, a.ID, db.ReasonRevokedAll, "a0", now); err != nil {
		t.Fatal(err)
	}
	if got := strings.Count(f.deliveries(t, a.ID), "/a"); got != 12 {
		t.Fatalf("%d deliveries owed, want 12", got)
	}
	if got, err := f.s.ClaimLogoutDeliveries(f.ctx, now.Add(-time.Second), time.Minute, 10); err != nil || len(got) != 0 {
		t.Fatalf("claimed before due: %v, %v", got, err)
	}
	// Two claims at once take disjoint deliveries.
	var wg sync.WaitGroup
	var mu sync.Mutex
	seen := map[int64]int{}
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got, err := f.s.ClaimLogoutDeliveries(f.ctx, now, time.Minute, 5)
			if err != nil {
				t.Error(err)
			}
			mu.Lock()
			defer mu.Unlock()
			for _, d := range got {
				seen[d.ID]++
				if d.Attempts != 1 || d.URI == "" || d.AppName == "" || d.SessionID == "" {
					t.Errorf("claimed %+v", d)
				}
			}
		}()
	}
	wg.Wait()
	if len(seen) != 12 {
		t.Fatalf("claimed %d distinct deliveries, want 12", len(seen))
	}
	for id, n := range seen {
		if n != 1 {
			t.Fatalf("delivery %d claimed %d times", id, n)
		}
	}
	if got, _ := f.s.ClaimLogoutDeliveries(f.ctx, now, time.Minute, 10); len(got) != 0 {
		t.Fatalf("claimed again while leased: %d", len(got))
	}
	// The lease runs out: claimable again, a second attempt.
	again, err := f.s.ClaimLogoutDeliveries(f.ctx, now.Add(time.Minute), time.Minute, 3)
	if err != nil || len(again) != 3 || again[0].Attempts != 2 {
		t.Fatalf("after the lease = %+v, %v", again, err)
	}
	d0, d1, d2 := again[0], again[1], again[2]
	at := now.Add(time.Minute)
	if err := f.s.LogoutDelivered(f.ctx, d0.ID, at); err != nil {
		t.Fatal(err)
	}
	if err := f.s.LogoutDelivered(f.ctx, d0.ID, at); !errors.Is(err, db.ErrNotFound) {
		t.Fatalf("delivered twice: %v", err)
	}
	if err := f.s.LogoutFailed(f.ctx, d1.ID, "503 Service Unavailable", at.Add(time.Hour), false, at); err != nil {
		t.Fatal(err)
	}
	if err := f.s.LogoutFailed(f.ctx, d2.ID, "connection refused", at, true, at); err != nil {
		t.Fatal(err)
	}
	if err := f.s.LogoutFailed(f.ctx, d2.ID, "again", at, true, at); !errors.Is(err, db.ErrNotFound) {
		t.Fatalf("failed after giving up: %v", err)
	}
	if err := f.s.LogoutDelivered(f.ctx, 999999, at); !errors.Is(err, db.ErrNotFound) {
		t.Fatalf("unknown delivery: %v", err)
	}
	list, err := f.s.LogoutDeliveries(f.ctx, a.ID, T0)
	if err != nil || len(list) != 12 {
		t.Fatalf("LogoutDeliveries = %d, %v", len(list), err)
	}
	byID := map[int64]db.LogoutDelivery{}
	for _, d := range list {
		byID[d.ID] = d
	}
	if d := byID[d0.ID]; d.State != db.LogoutDelivered || !d.DoneAt.Equal(at) {
		t.Fatalf("delivered = %+v", d)
	}
	if d := byID[d1.ID]; d.State != db.LogoutPending || d.LastError != "503 Service Unavailable" || !d.NextAt.Equal(at.Add(time.Hour)) || !d.DoneAt.IsZero() {
		t.Fatalf("failed = %+v", d)
	}
	if d := byID[d2.ID]; d.State != db.LogoutGaveUp || d.LastError != "connection refused" || !d.DoneAt.Equal(at) {
		t.Fatalf("gave up = %+v", d)
	}
	// The one retried later is due then, not before; released at once.
	if got, _ := f.s.ClaimLogoutDeliveries(f.ctx, at.Add(2*time.Minute), 2*time.Hour, 20); len(got) != 9 {
		t.Fatalf("claimed %d after the leases, want the 9 not retried later", len(got))
	}
	if got, _ := f.s.ClaimLogoutDeliveries(f.ctx, at.Add(time.Hour), time.Minute, 20); len(got) != 1 || got[0].ID != d1.ID {
		t.Fatalf("claimed at its retry = %+v", got)
	}
	if list, _ := f.s.LogoutDeliveries(f.ctx, a.ID, at.Add(time.Second)); len(list) != 0 {
		t.Fatalf("deliveries since later = %d", len(list))
	}
	// Pruning takes those done before the cutoff.
	if n, err := f.s.PruneLogoutDeliveries(f.ctx, at.Add(time.Second)); err != nil || n != 2 {
		t.Fatalf("PruneLogoutDeliveries = %d, %v; want 2", n, err)
	}
}

// appSignedIn is the history's entry of session s signing in to app name
// at at.
func appSignedIn(s db.Session, name string, at time.Time) db.SecurityEvent {
	return db.SecurityEvent{UserID: s.UserID, Kind: db.EventAppSignIn, At: at, SessionID: s.ID, Device: s.DeviceLabel,
		Location: s.Location, IP: s.IP, Detail: name}
}

func testOIDCConnectedApps(t *testing.T, f *fixture) {
	a, b := f.user(t, "a@example.com"), f.user(t, "b@example.com")
	a1, a2, b1 := device("a1", a.ID, T0), device("a2", a.ID, T0), device("b1", b.ID, T0)
	for _, s := range []db.Session{a1, a2, b1} {
		f.session(t, s)
	}
	h := newHistory(f)
	h.skip(t, a.ID)
	h.skip(t, b.ID)
	f.oidcApp(t, "grafana", "https://grafana.example/bcl")
	f.oidcApp(t, "wiki", "")
	if got, err := f.s.Consent(f.ctx, a.ID, "grafana"); err != nil || got != nil {
		t.Fatalf("Consent before = %v, %v", got, err)
	}
	if err := f.s.GrantConsent(f.ctx, a.ID, "grafana", []string{"openid", "email"}, T0); err != nil {
		t.Fatal(err)
	}
	if err := f.s.GrantConsent(f.ctx, a.ID, "grafana", []string{"email", "offline_access"}, T0); err != nil {
		t.Fatal(err)
	}
	if got, _ := f.s.Consent(f.ctx, a.ID, "grafana"); !slices.Equal(got, []string{"openid", "email", "offline_access"}) {
		t.Fatalf("merged consent = %v", got)
	}
	if got, _ := f.s.Consent(f.ctx, b.ID, "grafana"); got != nil {
		t.Fatalf("b's consent = %v", got)
	}
	for _, bad := range []struct {
		user   int64
		client string
	}{{a.ID, "nope"}, {b.ID + 1000, "grafana"}} {
		if err := f.s.GrantConsent(f.ctx, bad.user, bad.client, []string{"openid"}, T0); !errors.Is(err, db.ErrNotFound) {
			t.Fatalf("GrantConsent(%d, %s): %v", bad.user, bad.client, err)
		}
	}
	later := T0.Add(time.Hour)
	// Every sign-in to an app is in the person's history, with the
	// session (and so the device) it came from; nothing in another's.
	f.oidcSignIn(t, a, "a1", "grafana", "g1", false, T0)
	h.expect(t, "a sign-in to grafana", a.ID, appSignedIn(a1, "App grafana", T0))
	f.oidcSignIn(t, a, "a2", "grafana", "g2", true, later)
	h.expect(t, "a second session's sign-in to grafana", a.ID, appSignedIn(a2, "App grafana", later))
	f.oidcSignIn(t, a, "a1", "wiki", "w1", false, T0)
	h.expect(t, "a sign-in to wiki", a.ID, appSignedIn(a1, "App wiki", T0))
	h.expect(t, "a's sign-ins, in b's history", b.ID)
	f.oidcSignIn(t, b, "b1", "wiki", "wb", false, T0)
	h.expect(t, "b's sign-in", b.ID, appSignedIn(b1, "App wiki", T0))
	h.expect(t, "b's sign-in, in a's history", a.ID)
	apps, err := f.s.ConnectedApps(f.ctx, a.ID, later)
	if err != nil || len(apps) != 2 {
		t.Fatalf("ConnectedApps = %+v, %v", apps, err)
	}
	g, w := apps[0], apps[1]
	if g.ClientID != "grafana" || g.Name != "App grafana" || !g.Offline || !slices.Equal(g.Scopes, []string{"openid", "email", "offline_access"}) ||
		!g.FirstAt.Equal(T0) || !g.LastUsedAt.Equal(later) || strings.Join(g.SessionIDs, ",") != "a1,a2" {
		t.Fatalf("grafana = %+v", g)
	}
	// wiki was never consented to (a first-party app is not asked): its
	// scopes are what its live grants hold, never less than it gets.
	if w.ClientID != "wiki" || w.Offline || !slices.Equal(w.Scopes, []string{"openid", "email"}) || strings.Join(w.SessionIDs, ",") != "a1" {
		t.Fatalf("wiki = %+v", w)
	}
	if got, err := f.s.SessionApps(f.ctx, a.ID, "a1"); err != nil || len(got) != 2 || got[0].ClientID == got[1].ClientID {
		t.Fatalf("SessionApps(a1) = %+v, %v", got, err)
	}
	if got, _ := f.s.SessionApps(f.ctx, b.ID, "a1"); len(got) != 0 {
		t.Fatalf("another user's session's apps = %+v", got)
	}
	// a1 ends: wiki is no longer connected (no consent, no live grant, no
	// live session); grafana is, by its consent and a2.
	if _, err := f.s.RevokeSession(f.ctx, a.ID, "a1", db.ReasonRevoked, "a2", later); err != nil {
		t.Fatal(err)
	}
	if apps, _ := f.s.ConnectedApps(f.ctx, a.ID, later); len(apps) != 1 || apps[0].ClientID != "grafana" || strings.Join(apps[0].SessionIDs, ",") != "a2" {
		t.Fatalf("after a1 ended = %+v", apps)
	}
	// Disconnecting: not connected, another user's, unknown app are not found.
	before := f.dump(t)
	for _, bad := range []struct {
		user   int64
		client string
	}{{a.ID, "wiki"}, {b.ID, "grafana"}, {a.ID, "nope"}} {
		if _, err := f.s.DisconnectApp(f.ctx, bad.user, bad.client, later); !errors.Is(err, db.ErrNotFound) {
			t.Fatalf("DisconnectApp(%d, %s): %v", bad.user, bad.client, err)
		}
	}
	if after := f.dump(t); after != before {
		t.Fatal("refused disconnects changed the store")
	}
	h.skip(t, a.ID) // a1's ending
	h.expect(t, "refused disconnects", b.ID)
	sub, _ := f.s.Subject(f.ctx, a.ID)
	d, err := f.s.DisconnectApp(f.ctx, a.ID, "grafana", later)
	if err != nil || d.ID == 0 || d.ClientID != "grafana" || d.SessionID != "" || d.Subject != sub || d.UserID != a.ID ||
		d.AppName != "App grafana" || d.URI != "https://grafana.example/bcl" || d.State != db.LogoutPending {
		t.Fatalf("DisconnectApp = %+v, %v", d, err)
	}
	f.expectGrants(t, "disconnected", later, map[string]string{"g2-rt": db.ReasonDisconnected, "g2-at": db.ReasonDisconnected,
		"wb-rt": "live"})
	if got, _ := f.s.Consent(f.ctx, a.ID, "grafana"); got != nil {
		t.Fatalf("consent after disconnect = %v", got)
	}
	if apps, _ := f.s.ConnectedApps(f.ctx, a.ID, later); len(apps) != 0 {
		t.Fatalf("connected after disconnect = %+v", apps)
	}
	disconnected := func(u db.User, name string) db.SecurityEvent {
		return db.SecurityEvent{UserID: u.ID, Kind: db.EventAppDisconnected, At: later, Detail: name, Reason: db.ReasonDisconnected}
	}
	h.expect(t, "a disconnect", a.ID, disconnected(a, "App grafana"))
	h.expect(t, "a's disconnect, in b's history", b.ID)
	if _, err := f.s.DisconnectApp(f.ctx, a.ID, "grafana", later); !errors.Is(err, db.ErrNotFound) {
		t.Fatalf("disconnecting twice: %v", err)
	}
	// An app that takes no logouts: disconnected, no delivery.
	if d, err := f.s.DisconnectApp(f.ctx, b.ID, "wiki", later); err != nil || d.ID != 0 {
		t.Fatalf("DisconnectApp(wiki) = %+v, %v", d, err)
	}
	h.expect(t, "a disconnect with no delivery", b.ID, disconnected(b, "App wiki"))
	h.expect(t, "refused disconnects", a.ID)
}

func testOIDCDeleteApp(t *testing.T, f *fixture) {
	a := f.user(t, "a@example.com")
	f.session(t, Session("a1", a.ID, T0))
	f.oidcApp(t, "grafana", "https://grafana.example/bcl")
	f.oidcApp(t, "wiki", "https://wiki.example/bcl")
	f.oidcSignIn(t, a, "a1", "grafana", "g1", true, T0)
	f.oidcSignIn(t, a, "a1", "wiki", "w1", true, T0)
	if err := f.s.GrantConsent(f.ctx, a.ID, "grafana", []string{"openid"}, T0); err != nil {
		t.Fatal(err)
	}
	if err := f.s.CreateAuthRequest(f.ctx, AuthRequest("pending", "grafana", T0)); err != nil {
		t.Fatal(err)
	}
	now := T0.Add(time.Minute)
	if _, err := f.s.RevokeTokens(f.ctx, a.ID, "", db.ReasonRevokedAll, "a1", now); err != nil {
		t.Fatal(err)
	}
	if got := f.deliveries(t, a.ID); got != "grafana/,wiki/" {
		t.Fatalf("deliveries = %s", got)
	}
	f.oidcSignIn(t, a, "a1", "grafana", "g2", true, now)
	if _, err := f.s.DeleteApp(f.ctx, "grafana", now); err != nil {
		t.Fatal(err)
	}
	f.expectGrants(t, "app removed", now, map[string]string{"g2-rt": db.ReasonAppRemoved, "g2-at": db.ReasonAppRemoved,
		"g1-rt": db.ReasonRevokedAll})
	if _, err := f.s.AuthRequest(f.ctx, "pending", T0); !errors.Is(err, db.ErrNotFound) {
		t.Fatalf("removed app's request: %v", err)
	}
	if got, _ := f.s.Consent(f.ctx, a.ID, "grafana"); got != nil {
		t.Fatalf("removed app's consent = %v", got)
	}
	if apps, _ := f.s.SessionApps(f.ctx, a.ID, "a1"); len(apps) != 1 || apps[0].ClientID != "wiki" {
		t.Fatalf("session apps after removal = %+v", apps)
	}
	if got := f.deliveries(t, a.ID); got != "wiki/" {
		t.Fatalf("deliveries after removal = %s, want wiki/", got)
	}
	// Ending the session now owes only wiki.
	if _, err := f.s.RevokeSession(f.ctx, a.ID, "a1", db.ReasonRevoked, "", now); err != nil {
		t.Fatal(err)
	}
	if got := f.deliveries(t, a.ID); got != "wiki/,wiki/a1" {
		t.Fatalf("deliveries after the session ended = %s", got)
	}
	// A removed app's grants and sign-ins are refused.
	if err := f.s.CreateAuthRequest(f.ctx, AuthRequest("late", "grafana", now)); !errors.Is(err, db.ErrNotFound) {
		t.Fatalf("request of a removed app: %v", err)
	}
}

// testOIDCConcurrentWrites races the writes that lock a user's OIDC rows
// (issuing, refreshing, ending sessions and tokens, disconnecting,
// removing the app): none may deadlock or fail, and afterwards no grant
// is usable whose session ended or whose app is gone.
func testOIDCConcurrentWrites(t *testing.T, f *fixture) {
	users := []db.User{f.user(t, "a@example.com"), f.user(t, "b@example.com")}
	f.oidcApp(t, "grafana", "https://grafana.example/bcl")
	f.oidcApp(t, "wiki", "https://wiki.example/bcl")
	for _, u := range users {
		for i := range 3 {
			id := fmt.Sprintf("s%d-%d", u.ID, i)
			f.session(t, Session(id, u.ID, T0))
			f.oidcSignIn(t, u, id, "grafana", "g"+id, i == 0, T0)
			f.oidcSignIn(t, u, id, "wiki", "w"+id, i == 1, T0)
		}
	}
	now := T0.Add(time.Minute)
	var wg sync.WaitGroup
	run := func(what string, fn func() error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := fn(); err != nil && !errors.Is(err, db.ErrNotFound) && !errors.Is(err, db.ErrSignInsReset) &&
				!errors.Is(err, db.ErrCodeUsed) {
				t.Errorf("%s: %v", what, err)
			}
		}()
	}
	for _, u := range users {
		s0, s1, s2 := fmt.Sprintf("s%d-0", u.ID), fmt.Sprintf("s%d-1", u.ID), fmt.Sprintf("s%d-2", u.ID)
		run("refresh", func() error {
			return f.s.IssueGrants(f.ctx, []db.Grant{Grant("gn"+s0, db.GrantRefresh, "g"+s0, u.ID, "grafana", s0, true, now)},
				"g"+s0+"-rt", -1, now)
		})
		run("refresh wiki", func() error {
			return f.s.IssueGrants(f.ctx, []db.Grant{Grant("wn"+s2, db.GrantRefresh, "w"+s2, u.ID, "wiki", s2, false, now)},
				"w"+s2+"-rt", -1, now)
		})
		run("revoke session", func() error {
			_, err := f.s.RevokeSession(f.ctx, u.ID, s2, db.ReasonRevoked, s1, now)
			return err
		})
		run("disconnect", func() error { _, err := f.s.DisconnectApp(f.ctx, u.ID, "wiki", now); return err })
		run("consent", func() error { return f.s.GrantConsent(f.ctx, u.ID, "grafana", []string{"openid"}, now) })
		run("revoke all", func() error {
			_, err := f.s.RevokeAllSessions(f.ctx, u.ID, db.ReasonRevokedAll, s1, now)
			return err
		})
		run("revoke tokens", func() error {
			_, err := f.s.RevokeTokens(f.ctx, u.ID, "", db.ReasonRevokedAll, s1, now)
			return err
		})
		run("revoke grant", func() error { return f.s.RevokeGrant(f.ctx, "wiki", "w"+s1+"-rt", now) })
	}
	run("delete app", func() error { _, err := f.s.DeleteApp(f.ctx, "grafana", now); return err })
	run("claim", func() error { _, err := f.s.ClaimLogoutDeliveries(f.ctx, now, time.Minute, 5); return err })
	wg.Wait()
	for _, u := range users {
		for _, id := range []string{"gn", "wn", "g", "w"} {
			for i := range 3 {
				gid := fmt.Sprintf("%ss%d-%d", id, u.ID, i)
				if len(id) == 1 {
					gid += "-rt"
				}
				g, _, usable, err := f.s.GrantWithUser(f.ctx, gid, now)
				if errors.Is(err, db.ErrNotFound) {
					continue
				}
				if err != nil {
					t.Fatal(err)
				}
				if usable {
					t.Errorf("grant %+v still usable after every session and token of its user ended", g)
				}
			}
		}
	}
}

// testOIDCDeletedUserDeliveries: deleting an account leaves every logout
// its apps are owed, those pending from before (a session's sid, an
// earlier "sign out everywhere") and the deletion's own (sub only), all
// with the account's subject, claimable and sent; once done they are
// pruned at once (no history shows them), while a living user's are kept
// until the cutoff.
func testOIDCDeletedUserDeliveries(t *testing.T, f *fixture) {
	a, b := f.user(t, "a@example.com"), f.user(t, "b@example.com")
	f.oidcApp(t, "wiki", "https://wiki.example/bcl")
	for _, id := range []string{"a1", "b1", "b2"} {
		u := a
		if id[0] == 'b' {
			u = b
		}
		f.session(t, Session(id, u.ID, T0))
		f.oidcSignIn(t, u, id, "wiki", "r"+id, false, T0)
	}
	now := T0.Add(time.Minute)
	if _, err := f.s.RevokeSession(f.ctx, a.ID, "a1", db.ReasonRevoked, "a1", now); err != nil {
		t.Fatal(err)
	}
	if _, err := f.s.RevokeSession(f.ctx, b.ID, "b1", db.ReasonRevoked, "b2", now); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.s.RevokeSessionsAndTokens(f.ctx, b.ID, "b2", db.ReasonRevokedOthers, "b2", now); err != nil {
		t.Fatal(err)
	}
	sub, err := f.s.Subject(f.ctx, b.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.s.DeleteUser(f.ctx, b.ID, now); err != nil {
		t.Fatal(err)
	}
	if list, err := f.s.LogoutDeliveries(f.ctx, b.ID, T0); err != nil || len(list) != 0 {
		t.Fatalf("deliveries left under the deleted user's id: %d, %v", len(list), err)
	}
	claimed, err := f.s.ClaimLogoutDeliveries(f.ctx, now, time.Minute, 10)
	if err != nil {
		t.Fatal(err)
	}
	var forB []string
	for _, d := range claimed {
		if d.UserID == 0 {
			if d.Subject != sub {
				t.Errorf("a deleted user's delivery %+v: subject %q, want %q", d, d.Subject, sub)
			}
			forB = append(forB, d.ClientID+"/"+d.SessionID)
		}
		if err := f.s.LogoutDelivered(f.ctx, d.ID, now); err != nil {
			t.Fatal(err)
		}
	}
	slices.Sort(forB)
	if got := strings.Join(forB, ","); got != "wiki/,wiki/,wiki/b1" {
		t.Fatalf("the deleted user's deliveries sent: %q, want wiki/ twice and wiki/b1", got)
	}
	// Done: b's go at the next pruning, a's stay until the cutoff passes.
	if n, err := f.s.PruneLogoutDeliveries(f.ctx, now); err != nil || n != 3 {
		t.Fatalf("PruneLogoutDeliveries(before they were done) = %d, %v; want 3 (the deleted user's)", n, err)
	}
	if list, err := f.s.LogoutDeliveries(f.ctx, a.ID, T0); err != nil || len(list) != 1 || list[0].State != db.LogoutDelivered {
		t.Fatalf("a's deliveries after pruning: %+v, %v", list, err)
	}
	if n, err := f.s.PruneLogoutDeliveries(f.ctx, now.Add(time.Second)); err != nil || n != 1 {
		t.Fatalf("PruneLogoutDeliveries(after) = %d, %v; want 1 (a's)", n, err)
	}
}
