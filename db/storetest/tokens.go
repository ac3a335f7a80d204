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

// Token returns a token row for tests: id, user, kind (an app token's
// client_id is "cli"), made at created and valid for 30 days.
func Token(id string, userID int64, kind string, created time.Time) db.Token {
	t := db.Token{
		ID: id, SecretHash: []byte("token-hash-" + id), UserID: userID, Kind: kind, Name: "name of " + id,
		Scopes: []string{"sessions:read", "sessions:write"}, CreatedAt: created, ExpiresAt: created.Add(30 * 24 * time.Hour),
		CreatedIP: "81.2.69.160", CreatedLocation: "London, United Kingdom",
	}
	if kind == db.TokenApp {
		t.ClientID = "cli"
	}
	return t
}

func (f *fixture) token(t *testing.T, tok db.Token) {
	t.Helper()
	u, err := f.s.UserByID(f.ctx, tok.UserID)
	if err != nil {
		t.Fatalf("CreateToken(%s): its user: %v", tok.ID, err)
	}
	if err := f.s.CreateToken(f.ctx, tok, u.Epoch); err != nil {
		t.Fatalf("CreateToken(%s): %v", tok.ID, err)
	}
}

func (f *fixture) app(t *testing.T, clientID string) {
	t.Helper()
	if err := f.s.CreateApp(f.ctx, db.App{ClientID: clientID, Name: "App " + clientID, CreatedAt: T0}); err != nil {
		t.Fatalf("CreateApp(%s): %v", clientID, err)
	}
}

// Device returns a pending device authorization for tests: its device code
// hash is "device-hash-<code>", made at created, valid for 15 minutes,
// polled every 5 seconds.
func Device(userCode, clientID string, created time.Time) db.DeviceAuthorization {
	return db.DeviceAuthorization{
		DeviceCodeHash: []byte("device-hash-" + userCode), UserCode: userCode, ClientID: clientID,
		Scopes: []string{"sessions:read"}, CreatedAt: created, ExpiresAt: created.Add(15 * time.Minute), Interval: 5,
		IP: "203.0.113.9", Location: "Paris, France", Status: db.DevicePending,
	}
}

func (f *fixture) device(t *testing.T, d db.DeviceAuthorization) {
	t.Helper()
	if err := f.s.CreateDeviceAuthorization(f.ctx, d); err != nil {
		t.Fatalf("CreateDeviceAuthorization(%s): %v", d.UserCode, err)
	}
}

func (f *fixture) tokenRow(t *testing.T, id string) db.Token {
	t.Helper()
	tok, _, err := f.s.TokenWithUser(f.ctx, id)
	if err != nil {
		t.Fatalf("TokenWithUser(%s): %v", id, err)
	}
	return tok
}

func (f *fixture) deviceRow(t *testing.T, userCode string) db.DeviceAuthorization {
	t.Helper()
	d, err := f.s.DeviceAuthorizationByUserCode(f.ctx, userCode)
	if err != nil {
		t.Fatalf("DeviceAuthorizationByUserCode(%s): %v", userCode, err)
	}
	return d
}

func (f *fixture) liveTokens(t *testing.T, userID int64, kind string, now time.Time) string {
	t.Helper()
	list, err := f.s.ListTokens(f.ctx, userID, kind, now)
	if err != nil {
		t.Fatal(err)
	}
	return tokenIDs(list)
}

func tokenIDs(list []db.Token) string {
	out := make([]string, len(list))
	for i, t := range list {
		out[i] = t.ID
	}
	return strings.Join(out, ",")
}

func sortedTokenIDs(list []db.Token) string {
	out := strings.Split(tokenIDs(list), ",")
	slices.Sort(out)
	return strings.Join(out, ",")
}

// sameToken compares every field, times as instants.
func sameToken(a, b db.Token) bool {
	return a.ID == b.ID && bytes.Equal(a.SecretHash, b.SecretHash) && a.UserID == b.UserID && a.Kind == b.Kind &&
		a.Name == b.Name && a.ClientID == b.ClientID && slices.Equal(a.Scopes, b.Scopes) &&
		a.CreatedAt.Equal(b.CreatedAt) && a.ExpiresAt.Equal(b.ExpiresAt) &&
		a.CreatedIP == b.CreatedIP && a.CreatedLocation == b.CreatedLocation &&
		a.LastUsedAt.Equal(b.LastUsedAt) && a.LastUsedIP == b.LastUsedIP && a.LastUsedLocation == b.LastUsedLocation &&
		a.RevokedAt.Equal(b.RevokedAt) && a.RevokedReason == b.RevokedReason && a.RevokedBy == b.RevokedBy
}

// sameDevice compares every field, times as instants.
func sameDevice(a, b db.DeviceAuthorization) bool {
	return bytes.Equal(a.DeviceCodeHash, b.DeviceCodeHash) && a.UserCode == b.UserCode && a.ClientID == b.ClientID &&
		slices.Equal(a.Scopes, b.Scopes) && a.CreatedAt.Equal(b.CreatedAt) && a.ExpiresAt.Equal(b.ExpiresAt) &&
		a.Interval == b.Interval && a.LastPolledAt.Equal(b.LastPolledAt) && a.IP == b.IP && a.Location == b.Location &&
		a.Status == b.Status && a.UserID == b.UserID && a.DecidedAt.Equal(b.DecidedAt)
}

// testTokenRoundTrip: every field of a token survives the store, at second
// precision; an unknown id or user is ErrNotFound; the dump shows the row.
func testTokenRoundTrip(t *testing.T, f *fixture) {
	a := f.user(t, "a@example.com")
	// Sub-second times are kept to the second, as every store time is.
	created := T0.Add(1500 * time.Millisecond)
	want := Token("t1", a.ID, db.TokenApp, created)
	want.Scopes = []string{"sessions:write", "sessions:read", "x:y"} // kept in this order
	want.LastUsedAt, want.LastUsedIP, want.LastUsedLocation = created.Add(time.Minute), "10.0.0.1", "Local network"
	f.token(t, want)
	got, u, err := f.s.TokenWithUser(f.ctx, "t1")
	if err != nil {
		t.Fatal(err)
	}
	want.CreatedAt, want.ExpiresAt, want.LastUsedAt = created.Truncate(time.Second), want.ExpiresAt.Truncate(time.Second), want.LastUsedAt.Truncate(time.Second)
	if !sameToken(got, want) {
		t.Fatalf("TokenWithUser =\n %+v, want\n %+v", got, want)
	}
	if u.ID != a.ID || u.Email != "a@example.com" || !u.CreatedAt.Equal(T0) || u.Disabled() || u.Epoch != a.Epoch {
		t.Fatalf("the token's user = %+v, want %+v", u, a)
	}
	if got.Revoked() || !got.Alive(created.Add(time.Hour)) {
		t.Fatalf("a new token is not alive: %+v", got)
	}

	// A personal token with no scopes and never used: zero times, no scopes.
	pat := Token("t2", a.ID, db.TokenPersonal, T0)
	pat.Scopes = nil
	f.token(t, pat)
	got = f.tokenRow(t, "t2")
	if got.ClientID != "" || got.Kind != db.TokenPersonal || len(got.Scopes) != 0 || !got.LastUsedAt.IsZero() ||
		got.LastUsedIP != "" || !got.RevokedAt.IsZero() || got.RevokedReason != "" || got.RevokedBy != "" {
		t.Fatalf("a fresh personal token = %+v", got)
	}

	d, err := f.s.Dump(f.ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"# tokens (", "# apps (", "# device_authorizations (", fmt.Sprintf("%x", "token-hash-t1"), "sessions:write sessions:read x:y"} {
		if !strings.Contains(d, w) {
			t.Errorf("the dump lacks %q:\n%s", w, d)
		}
	}

	before := d
	f.rec.Take()
	if _, _, err := f.s.TokenWithUser(f.ctx, "nope"); !errors.Is(err, db.ErrNotFound) {
		t.Errorf("an unknown token: %v, want ErrNotFound", err)
	}
	if err := f.s.CreateToken(f.ctx, Token("t-nobody", 99999, db.TokenPersonal, T0), 0); !errors.Is(err, db.ErrNotFound) {
		t.Errorf("a token for no user: %v, want ErrNotFound", err)
	}
	if err := f.s.CreateToken(f.ctx, Token("t1", a.ID, db.TokenPersonal, T0), 0); err == nil {
		t.Error("a second token with the same id was stored")
	}
	f.unchanged(t, before, "a refused CreateToken")
}

// testListTokens: only the user's live tokens of the kind asked, newest
// first; an expired one is not alive and not listed (at its expiry second
// it is already over).
func testListTokens(t *testing.T, f *fixture) {
	a, b := f.user(t, "a@example.com"), f.user(t, "b@example.com")
	f.token(t, Token("p1", a.ID, db.TokenPersonal, T0))
	f.token(t, Token("x1", a.ID, db.TokenApp, T0.Add(time.Second)))
	f.token(t, Token("p2", a.ID, db.TokenPersonal, T0.Add(2*time.Second)))
	f.token(t, Token("p3", a.ID, db.TokenPersonal, T0.Add(3*time.Second)))
	short := Token("p-short", a.ID, db.TokenPersonal, T0.Add(4*time.Second))
	short.ExpiresAt = T0.Add(time.Hour)
	f.token(t, short)
	f.token(t, Token("b1", b.ID, db.TokenPersonal, T0.Add(5*time.Second)))
	now := T0.Add(time.Minute)
	if _, err := f.s.RevokeToken(f.ctx, a.ID, "p2", db.ReasonTokenRevoked, "s1", now); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		kind string
		at   time.Time
		want string
	}{
		{db.TokenPersonal, now, "p-short,p3,p1"},
		{db.TokenApp, now, "x1"},
		{"", now, "p-short,p3,x1,p1"},
		{db.TokenPersonal, T0.Add(time.Hour - time.Second), "p-short,p3,p1"},
		{db.TokenPersonal, T0.Add(time.Hour), "p3,p1"},
		{"", T0.Add(31 * 24 * time.Hour), ""},
	} {
		if got := f.liveTokens(t, a.ID, c.kind, c.at); got != c.want {
			t.Errorf("ListTokens(a, %q, %v) = %q, want %q", c.kind, c.at.Sub(T0), got, c.want)
		}
	}
	if got := f.liveTokens(t, b.ID, "", now); got != "b1" {
		t.Errorf("b's tokens = %q, want b1", got)
	}
	if got := f.liveTokens(t, 99999, "", now); got != "" {
		t.Errorf("nobody's tokens = %q", got)
	}
	// Expired, the row still reads back (the caller tells it apart).
	if tok := f.tokenRow(t, "p-short"); tok.Alive(T0.Add(time.Hour)) || !tok.Alive(T0.Add(time.Hour-time.Second)) || tok.Revoked() {
		t.Errorf("an expired token = %+v", tok)
	}
	// A listed token is the whole row.
	list, _ := f.s.ListTokens(f.ctx, a.ID, db.TokenApp, now)
	if len(list) != 1 || !sameToken(list[0], f.tokenRow(t, "x1")) {
		t.Errorf("listed %+v, want the row of x1", list)
	}
}

// testTouchToken: a use records when and where, and never lands on a
// revoked token.
func testTouchToken(t *testing.T, f *fixture) {
	a := f.user(t, "a@example.com")
	f.token(t, Token("t1", a.ID, db.TokenPersonal, T0))
	f.token(t, Token("t2", a.ID, db.TokenPersonal, T0))
	at := T0.Add(time.Hour)
	if err := f.s.TouchToken(f.ctx, "t1", at, "10.0.0.1", "Local network"); err != nil {
		t.Fatal(err)
	}
	if tok := f.tokenRow(t, "t1"); !tok.LastUsedAt.Equal(at) || tok.LastUsedIP != "10.0.0.1" || tok.LastUsedLocation != "Local network" ||
		!tok.Alive(at) || tok.CreatedIP != "81.2.69.160" {
		t.Fatalf("after a touch: %+v", tok)
	}
	if tok := f.tokenRow(t, "t2"); !tok.LastUsedAt.IsZero() || tok.LastUsedIP != "" {
		t.Fatalf("a touch of t1 reached t2: %+v", tok)
	}
	if _, err := f.s.RevokeToken(f.ctx, a.ID, "t1", db.ReasonTokenRevoked, "s1", at); err != nil {
		t.Fatal(err)
	}
	before, _ := f.s.Dump(f.ctx)
	f.rec.Take()
	if err := f.s.TouchToken(f.ctx, "t1", at.Add(time.Hour), "192.0.2.7", "Elsewhere"); err != nil {
		t.Fatal(err)
	}
	if err := f.s.TouchToken(f.ctx, "nope", at, "192.0.2.7", "Elsewhere"); err != nil {
		t.Fatalf("touching an unknown token: %v", err)
	}
	f.unchanged(t, before, "a touch of a revoked token")
	if tok := f.tokenRow(t, "t1"); !tok.LastUsedAt.Equal(at) || tok.LastUsedIP != "10.0.0.1" || !tok.Revoked() {
		t.Fatalf("a revoked token after a touch: %+v", tok)
	}
}

// testRevokeToken: one live token of the user's own ends, with who and
// why; another user's id, an unknown, expired or ended one is ErrNotFound
// and changes nothing.
func testRevokeToken(t *testing.T, f *fixture) {
	a, b := f.user(t, "a@example.com"), f.user(t, "b@example.com")
	f.token(t, Token("a1", a.ID, db.TokenPersonal, T0))
	f.token(t, Token("a2", a.ID, db.TokenApp, T0))
	old := Token("a-old", a.ID, db.TokenPersonal, T0)
	old.ExpiresAt = T0.Add(time.Minute)
	f.token(t, old)
	f.token(t, Token("b1", b.ID, db.TokenPersonal, T0))
	now := T0.Add(time.Hour)
	before, err := f.s.Dump(f.ctx)
	if err != nil {
		t.Fatal(err)
	}
	f.rec.Take()
	for _, c := range []struct {
		user int64
		id   string
	}{{b.ID, "a1"}, {a.ID, "b1"}, {a.ID, "nope"}, {a.ID, "a-old"}, {99999, "a1"}} {
		if _, err := f.s.RevokeToken(f.ctx, c.user, c.id, db.ReasonTokenRevoked, "x", now); !errors.Is(err, db.ErrNotFound) {
			t.Errorf("RevokeToken(user %d, %s): %v, want ErrNotFound", c.user, c.id, err)
		}
	}
	f.unchanged(t, before, "a refused RevokeToken")

	gone, err := f.s.RevokeToken(f.ctx, a.ID, "a1", db.ReasonTokenRevoked, "s-a", now)
	if err != nil || gone.ID != "a1" || gone.UserID != a.ID || !gone.RevokedAt.Equal(now) || gone.RevokedReason != db.ReasonTokenRevoked ||
		gone.RevokedBy != "s-a" || gone.Alive(now) {
		t.Fatalf("RevokeToken = %+v, %v", gone, err)
	}
	if row := f.tokenRow(t, "a1"); !sameToken(row, gone) {
		t.Fatalf("the revoked row %+v, returned %+v", row, gone)
	}
	before, _ = f.s.Dump(f.ctx)
	if _, err := f.s.RevokeToken(f.ctx, a.ID, "a1", db.ReasonRevokedAll, "other", now.Add(time.Minute)); !errors.Is(err, db.ErrNotFound) {
		t.Fatalf("revoking twice: %v, want ErrNotFound", err)
	}
	f.unchanged(t, before, "revoking twice")
	if got := f.liveTokens(t, a.ID, "", now); got != "a2" {
		t.Fatalf("a's live tokens = %q, want a2", got)
	}
	if got := f.liveTokens(t, b.ID, "", now); got != "b1" {
		t.Fatalf("b's live tokens = %q, want b1", got)
	}
}

// testRevokeTokens: by kind, then all; only the user's, only live ones;
// and an app's tokens of one user only (never a personal token).
func testRevokeTokens(t *testing.T, f *fixture) {
	a, b := f.user(t, "a@example.com"), f.user(t, "b@example.com")
	f.token(t, Token("p1", a.ID, db.TokenPersonal, T0))
	f.token(t, Token("p2", a.ID, db.TokenPersonal, T0.Add(time.Second)))
	x1 := Token("x1", a.ID, db.TokenApp, T0)
	x1.ClientID = "cli"
	f.token(t, x1)
	x2 := Token("x2", a.ID, db.TokenApp, T0.Add(time.Second))
	x2.ClientID = "cli"
	f.token(t, x2)
	y1 := Token("y1", a.ID, db.TokenApp, T0)
	y1.ClientID = "other"
	f.token(t, y1)
	old := Token("x-old", a.ID, db.TokenApp, T0)
	old.ExpiresAt = T0.Add(time.Minute)
	f.token(t, old)
	f.token(t, Token("bp", b.ID, db.TokenPersonal, T0))
	f.token(t, Token("bx", b.ID, db.TokenApp, T0))
	now := T0.Add(time.Hour)

	// Disconnecting an app: only that app's, only a's.
	ended, err := f.s.RevokeAppTokens(f.ctx, a.ID, "cli", db.ReasonTokenRevoked, "s-a", now)
	if err != nil || sortedTokenIDs(ended) != "x1,x2" {
		t.Fatalf("RevokeAppTokens(a, cli) = %s, %v; want x1,x2", tokenIDs(ended), err)
	}
	for _, e := range ended {
		if !e.RevokedAt.Equal(now) || e.RevokedReason != db.ReasonTokenRevoked || e.RevokedBy != "s-a" || e.Alive(now) {
			t.Errorf("ended by RevokeAppTokens: %+v", e)
		}
	}
	if got := f.liveTokens(t, a.ID, "", now); got != "p2,p1,y1" && got != "p2,y1,p1" {
		t.Fatalf("a's live tokens after disconnecting cli = %q", got)
	}
	if got := f.liveTokens(t, b.ID, "", now); got != "bx,bp" && got != "bp,bx" {
		t.Fatalf("b's live tokens after a disconnected cli = %q", got)
	}
	if ended, err := f.s.RevokeAppTokens(f.ctx, a.ID, "cli", db.ReasonTokenRevoked, "s-a", now); err != nil || len(ended) != 0 {
		t.Fatalf("disconnecting again = %s, %v; want none", tokenIDs(ended), err)
	}
	// An empty client_id is no app: personal tokens stay.
	if ended, err := f.s.RevokeAppTokens(f.ctx, a.ID, "", db.ReasonTokenRevoked, "s-a", now); err != nil || len(ended) != 0 {
		t.Fatalf("RevokeAppTokens(a, \"\") = %s, %v; want none", tokenIDs(ended), err)
	}

	// By kind.
	ended, err = f.s.RevokeTokens(f.ctx, a.ID, db.TokenPersonal, db.ReasonRevokedAll, "s-a", now)
	if err != nil || sortedTokenIDs(ended) != "p1,p2" || ended[0].RevokedReason != db.ReasonRevokedAll || ended[0].RevokedBy != "s-a" ||
		!ended[0].RevokedAt.Equal(now) {
		t.Fatalf("RevokeTokens(a, personal) = %+v, %v; want p1,p2", ended, err)
	}
	if got := f.liveTokens(t, a.ID, "", now); got != "y1" {
		t.Fatalf("a's live tokens after ending the personal ones = %q, want y1", got)
	}
	// All kinds.
	f.token(t, Token("p3", a.ID, db.TokenPersonal, now))
	ended, err = f.s.RevokeTokens(f.ctx, a.ID, "", db.ReasonPassword, "s-a", now)
	if err != nil || sortedTokenIDs(ended) != "p3,y1" {
		t.Fatalf("RevokeTokens(a, all) = %s, %v; want p3,y1", tokenIDs(ended), err)
	}
	if got := f.liveTokens(t, a.ID, "", now); got != "" {
		t.Fatalf("a's live tokens after ending all = %q", got)
	}
	// The expired one was not live: never revoked.
	if tok := f.tokenRow(t, "x-old"); tok.Revoked() {
		t.Fatalf("an expired token was revoked: %+v", tok)
	}
	before, _ := f.s.Dump(f.ctx)
	f.rec.Take()
	if ended, err := f.s.RevokeTokens(f.ctx, a.ID, "", db.ReasonPassword, "s-a", now); err != nil || len(ended) != 0 {
		t.Fatalf("RevokeTokens with none left = %s, %v", tokenIDs(ended), err)
	}
	if ended, err := f.s.RevokeTokens(f.ctx, 99999, "", db.ReasonPassword, "s-a", now); err != nil || len(ended) != 0 {
		t.Fatalf("RevokeTokens of nobody = %s, %v", tokenIDs(ended), err)
	}
	f.unchanged(t, before, "RevokeTokens with nothing to end")
	if got := f.liveTokens(t, b.ID, "", now); got != "bx,bp" && got != "bp,bx" {
		t.Fatalf("b's live tokens after a's revocations = %q", got)
	}
}

// testApps: registered once per client_id, read back, listed oldest first;
// removing one ends its live tokens (kept as history) and deletes its
// device authorizations, and nobody else's.
func testApps(t *testing.T, f *fixture) {
	a, b := f.user(t, "a@example.com"), f.user(t, "b@example.com")
	if err := f.s.CreateApp(f.ctx, db.App{ClientID: "cli", Name: "Doorman CLI", CreatedAt: T0.Add(2 * time.Second)}); err != nil {
		t.Fatal(err)
	}
	if err := f.s.CreateApp(f.ctx, db.App{ClientID: "other", Name: "Other", CreatedAt: T0.Add(time.Second)}); err != nil {
		t.Fatal(err)
	}
	before, _ := f.s.Dump(f.ctx)
	if err := f.s.CreateApp(f.ctx, db.App{ClientID: "cli", Name: "Impostor", CreatedAt: T0}); !errors.Is(err, db.ErrConflict) {
		t.Fatalf("a taken client_id: %v, want ErrConflict", err)
	}
	f.unchanged(t, before, "a refused CreateApp")
	if app, err := f.s.App(f.ctx, "cli"); err != nil || app.ClientID != "cli" || app.Name != "Doorman CLI" || !app.CreatedAt.Equal(T0.Add(2*time.Second)) {
		t.Fatalf("App(cli) = %+v, %v", app, err)
	}
	if _, err := f.s.App(f.ctx, "nope"); !errors.Is(err, db.ErrNotFound) {
		t.Fatalf("an unknown app: %v, want ErrNotFound", err)
	}
	if apps, err := f.s.Apps(f.ctx); err != nil || len(apps) != 2 || apps[0].ClientID != "other" || apps[1].ClientID != "cli" {
		t.Fatalf("Apps = %+v, %v; want other, cli", apps, err)
	}

	now := T0.Add(time.Hour)
	f.token(t, Token("a-cli", a.ID, db.TokenApp, T0))
	f.token(t, Token("b-cli", b.ID, db.TokenApp, T0))
	gone := Token("a-cli-ended", a.ID, db.TokenApp, T0)
	f.token(t, gone)
	if _, err := f.s.RevokeToken(f.ctx, a.ID, "a-cli-ended", db.ReasonTokenRevoked, "s-a", T0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	oth := Token("a-other", a.ID, db.TokenApp, T0)
	oth.ClientID = "other"
	f.token(t, oth)
	f.token(t, Token("a-pat", a.ID, db.TokenPersonal, T0))
	f.device(t, Device("CLIPEND1", "cli", now))
	approved := Device("CLIAPPR1", "cli", now)
	f.device(t, approved)
	if err := f.s.DecideDeviceAuthorization(f.ctx, "CLIAPPR1", a.ID, a.Epoch, true, now); err != nil {
		t.Fatal(err)
	}
	f.device(t, Device("OTHPEND1", "other", now))

	f.rec.Take()
	ended, err := f.s.DeleteApp(f.ctx, "cli", now)
	if err != nil || sortedTokenIDs(ended) != "a-cli,b-cli" {
		t.Fatalf("DeleteApp(cli) = %s, %v; want a-cli,b-cli", tokenIDs(ended), err)
	}
	for _, e := range ended {
		if !e.RevokedAt.Equal(now) || e.RevokedReason != db.ReasonAppRemoved || e.RevokedBy != "operator" {
			t.Errorf("ended by DeleteApp: %+v", e)
		}
	}
	if ev := f.rec.Take(); len(ev) != 0 {
		t.Errorf("DeleteApp reported session events %+v", ev)
	}
	// The rows stay, ended, as history; the ended one keeps its own end.
	if tok := f.tokenRow(t, "a-cli"); tok.RevokedReason != db.ReasonAppRemoved || tok.Alive(now) {
		t.Errorf("a-cli after DeleteApp: %+v", tok)
	}
	if tok := f.tokenRow(t, "a-cli-ended"); tok.RevokedReason != db.ReasonTokenRevoked || !tok.RevokedAt.Equal(T0.Add(time.Minute)) {
		t.Errorf("an already ended token was ended again: %+v", tok)
	}
	if got := f.liveTokens(t, a.ID, "", now); got != "a-pat,a-other" && got != "a-other,a-pat" {
		t.Errorf("a's live tokens after DeleteApp(cli) = %q, want a-pat and a-other", got)
	}
	for _, code := range []string{"CLIPEND1", "CLIAPPR1"} {
		if _, err := f.s.DeviceAuthorizationByUserCode(f.ctx, code); !errors.Is(err, db.ErrNotFound) {
			t.Errorf("device authorization %s survived its app: %v", code, err)
		}
	}
	if err := f.s.RedeemDeviceAuthorization(f.ctx, approved.DeviceCodeHash, Token("a-late", a.ID, db.TokenApp, now)); !errors.Is(err, db.ErrNotFound) {
		t.Errorf("redeeming for a removed app: %v, want ErrNotFound", err)
	}
	if d := f.deviceRow(t, "OTHPEND1"); d.Status != db.DevicePending {
		t.Errorf("another app's request: %+v", d)
	}
	if _, err := f.s.App(f.ctx, "cli"); !errors.Is(err, db.ErrNotFound) {
		t.Errorf("App after DeleteApp: %v, want ErrNotFound", err)
	}
	if apps, _ := f.s.Apps(f.ctx); len(apps) != 1 || apps[0].ClientID != "other" {
		t.Errorf("Apps after DeleteApp = %+v", apps)
	}
	if err := f.s.CreateDeviceAuthorization(f.ctx, Device("CLINEW01", "cli", now)); !errors.Is(err, db.ErrNotFound) {
		t.Errorf("a device authorization for a removed app: %v, want ErrNotFound", err)
	}
	before, _ = f.s.Dump(f.ctx)
	if _, err := f.s.DeleteApp(f.ctx, "cli", now); !errors.Is(err, db.ErrNotFound) {
		t.Errorf("DeleteApp twice: %v, want ErrNotFound", err)
	}
	if _, err := f.s.DeleteApp(f.ctx, "nope", now); !errors.Is(err, db.ErrNotFound) {
		t.Errorf("DeleteApp of an unknown app: %v, want ErrNotFound", err)
	}
	f.unchanged(t, before, "a refused DeleteApp")
	// The client_id is free again.
	f.app(t, "cli")
}

// testDeviceAuthorizations: stored and read back whole; a user code is held
// by an unexpired request only; deciding takes a pending, unexpired request
// once.
func testDeviceAuthorizations(t *testing.T, f *fixture) {
	a, b := f.user(t, "a@example.com"), f.user(t, "b@example.com")
	f.app(t, "cli")
	want := Device("ABCDEFGH", "cli", T0)
	want.Scopes = []string{"sessions:write", "sessions:read"}
	want.Status = "" // the store makes it pending
	f.device(t, want)
	want.Status = db.DevicePending
	if got := f.deviceRow(t, "ABCDEFGH"); !sameDevice(got, want) || !got.LastPolledAt.IsZero() || got.UserID != 0 || !got.DecidedAt.IsZero() {
		t.Fatalf("DeviceAuthorizationByUserCode =\n %+v, want\n %+v", got, want)
	}
	if _, err := f.s.DeviceAuthorizationByUserCode(f.ctx, "NOPENOPE"); !errors.Is(err, db.ErrNotFound) {
		t.Fatalf("an unknown user code: %v, want ErrNotFound", err)
	}

	// The code is held until its request expires (at that second it is free).
	before, _ := f.s.Dump(f.ctx)
	f.rec.Take()
	taken := Device("ABCDEFGH", "cli", want.ExpiresAt.Add(-time.Second))
	taken.DeviceCodeHash = []byte("another device")
	if err := f.s.CreateDeviceAuthorization(f.ctx, taken); !errors.Is(err, db.ErrConflict) {
		t.Fatalf("a held user code: %v, want ErrConflict", err)
	}
	if err := f.s.CreateDeviceAuthorization(f.ctx, Device("NOAPPAPP", "nope", T0)); !errors.Is(err, db.ErrNotFound) {
		t.Fatalf("a request for an unknown app: %v, want ErrNotFound", err)
	}
	f.unchanged(t, before, "a refused CreateDeviceAuthorization")
	// Deciding: another code, an expired request, no such user.
	for _, c := range []struct {
		code string
		user int64
		at   time.Time
	}{{"NOPENOPE", a.ID, T0}, {"ABCDEFGH", a.ID, want.ExpiresAt}, {"ABCDEFGH", 99999, T0.Add(time.Minute)}} {
		if err := f.s.DecideDeviceAuthorization(f.ctx, c.code, c.user, 0, true, c.at); !errors.Is(err, db.ErrNotFound) {
			t.Errorf("DecideDeviceAuthorization(%s, user %d, %v): %v, want ErrNotFound", c.code, c.user, c.at.Sub(T0), err)
		}
	}
	f.unchanged(t, before, "a refused decision")

	now := T0.Add(time.Minute)
	if err := f.s.DecideDeviceAuthorization(f.ctx, "ABCDEFGH", a.ID, a.Epoch, true, now); err != nil {
		t.Fatal(err)
	}
	if got := f.deviceRow(t, "ABCDEFGH"); got.Status != db.DeviceApproved || got.UserID != a.ID || !got.DecidedAt.Equal(now) {
		t.Fatalf("approved: %+v", got)
	}
	before, _ = f.s.Dump(f.ctx)
	for _, approve := range []bool{true, false} {
		if err := f.s.DecideDeviceAuthorization(f.ctx, "ABCDEFGH", b.ID, b.Epoch, approve, now); !errors.Is(err, db.ErrNotFound) {
			t.Errorf("deciding an approved request again (approve %v): %v, want ErrNotFound", approve, err)
		}
	}
	f.unchanged(t, before, "a second decision")

	// Denying.
	f.device(t, Device("DENYDENY", "cli", T0))
	if err := f.s.DecideDeviceAuthorization(f.ctx, "DENYDENY", b.ID, b.Epoch, false, now); err != nil {
		t.Fatal(err)
	}
	if got := f.deviceRow(t, "DENYDENY"); got.Status != db.DeviceDenied || got.UserID != b.ID || !got.DecidedAt.Equal(now) {
		t.Fatalf("denied: %+v", got)
	}
	if err := f.s.DecideDeviceAuthorization(f.ctx, "DENYDENY", b.ID, b.Epoch, true, now); !errors.Is(err, db.ErrNotFound) {
		t.Fatalf("approving a denied request: %v, want ErrNotFound", err)
	}

	// Once the holder expired, the code can be drawn again: the new request
	// replaces it.
	fresh := Device("ABCDEFGH", "cli", want.ExpiresAt)
	fresh.DeviceCodeHash = []byte("a newer device")
	if err := f.s.CreateDeviceAuthorization(f.ctx, fresh); err != nil {
		t.Fatalf("a user code whose holder expired: %v", err)
	}
	if got := f.deviceRow(t, "ABCDEFGH"); !sameDevice(got, fresh) {
		t.Fatalf("the code now names %+v, want %+v", got, fresh)
	}
	if _, _, err := f.s.PollDeviceAuthorization(f.ctx, want.DeviceCodeHash, now); !errors.Is(err, db.ErrNotFound) {
		t.Fatalf("the replaced request: %v, want ErrNotFound", err)
	}
}

// testPollDeviceAuthorization: the first poll is never too fast, one
// before Interval has passed is (and Interval grows by 5), and one after it
// is not; every poll records its time.
func testPollDeviceAuthorization(t *testing.T, f *fixture) {
	f.app(t, "cli")
	d := Device("POLLPOLL", "cli", T0)
	f.device(t, d)
	now := T0.Add(time.Second) // sooner than Interval after creation: still the first poll
	got, fast, err := f.s.PollDeviceAuthorization(f.ctx, d.DeviceCodeHash, now)
	if err != nil || fast || got.Interval != 5 || !got.LastPolledAt.Equal(now) || got.Status != db.DevicePending || got.UserCode != "POLLPOLL" {
		t.Fatalf("first poll = %+v, tooFast %v, %v", got, fast, err)
	}
	if row := f.deviceRow(t, "POLLPOLL"); !sameDevice(row, got) {
		t.Fatalf("after a poll the row is %+v, the poll returned %+v", row, got)
	}
	steps := []struct {
		after time.Duration // since the previous poll
		fast  bool
		want  int // Interval afterwards
	}{
		{0, true, 10},                 // at once: too fast
		{9 * time.Second, true, 15},   // 9 < 10
		{15 * time.Second, false, 15}, // exactly Interval: fine
		{20 * time.Second, false, 15},
		{14 * time.Second, true, 20},
	}
	for i, c := range steps {
		now = now.Add(c.after)
		got, fast, err := f.s.PollDeviceAuthorization(f.ctx, d.DeviceCodeHash, now)
		if err != nil || fast != c.fast || got.Interval != c.want || !got.LastPolledAt.Equal(now) {
			t.Fatalf("poll %d (+%v) = Interval %d, LastPolledAt %v, tooFast %v, %v; want Interval %d, tooFast %v",
				i+2, c.after, got.Interval, got.LastPolledAt.Sub(T0), fast, err, c.want, c.fast)
		}
		if row := f.deviceRow(t, "POLLPOLL"); row.Interval != c.want || !row.LastPolledAt.Equal(now) {
			t.Fatalf("poll %d stored Interval %d, LastPolledAt %v", i+2, row.Interval, row.LastPolledAt.Sub(T0))
		}
	}
	before, _ := f.s.Dump(f.ctx)
	if _, _, err := f.s.PollDeviceAuthorization(f.ctx, []byte("unknown"), now); !errors.Is(err, db.ErrNotFound) {
		t.Fatalf("polling an unknown device code: %v, want ErrNotFound", err)
	}
	f.unchanged(t, before, "polling an unknown device code")
}

// race runs fn(0) … fn(racers-1) at once, each in its own goroutine, and
// fails the test if any returns an unexpected error.
func race(t *testing.T, racers int, fn func(i int) error) {
	t.Helper()
	var wg sync.WaitGroup
	start := make(chan struct{})
	errs := make(chan error, racers)
	for i := range racers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			if err := fn(i); err != nil {
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
}

// testConcurrentPolls: of eight first polls at the same instant exactly one
// is not too fast (the check and the write are one step), and every other
// one grew Interval. A few rounds, as a race shows only now and then.
func testConcurrentPolls(t *testing.T, f *fixture) {
	f.app(t, "cli")
	now := T0.Add(time.Minute)
	const racers = 8
	for round := range 5 {
		d := Device(fmt.Sprintf("RACEPOL%d", round), "cli", T0)
		f.device(t, d)
		var mu sync.Mutex
		slow := 0
		race(t, racers, func(int) error {
			_, fast, err := f.s.PollDeviceAuthorization(f.ctx, d.DeviceCodeHash, now)
			if err == nil && !fast {
				mu.Lock()
				slow++
				mu.Unlock()
			}
			return err
		})
		if slow != 1 {
			t.Fatalf("round %d: %d of %d concurrent polls were not too fast, want exactly 1", round, slow, racers)
		}
		if row := f.deviceRow(t, d.UserCode); row.Interval != 5+5*(racers-1) || !row.LastPolledAt.Equal(now) {
			t.Fatalf("round %d: after %d polls, Interval %d, LastPolledAt %v; want %d", round, racers, row.Interval, row.LastPolledAt.Sub(T0), 5+5*(racers-1))
		}
	}
}

// testRedeemDeviceAuthorization: only an approved, unexpired request, by
// its approver, makes a token, once; anything else makes nothing.
func testRedeemDeviceAuthorization(t *testing.T, f *fixture) {
	a, b := f.user(t, "a@example.com"), f.user(t, "b@example.com")
	f.app(t, "cli")
	for _, code := range []string{"PENDPEND", "DENYDENY", "APPROVED", "EXPIRING"} {
		f.device(t, Device(code, "cli", T0))
	}
	now := T0.Add(time.Minute)
	if err := f.s.DecideDeviceAuthorization(f.ctx, "DENYDENY", a.ID, a.Epoch, false, now); err != nil {
		t.Fatal(err)
	}
	for _, code := range []string{"APPROVED", "EXPIRING"} {
		if err := f.s.DecideDeviceAuthorization(f.ctx, code, a.ID, a.Epoch, true, now); err != nil {
			t.Fatal(err)
		}
	}
	hash := func(code string) []byte { return Device(code, "cli", T0).DeviceCodeHash }
	before, _ := f.s.Dump(f.ctx)
	f.rec.Take()
	expiry := T0.Add(15 * time.Minute)
	for _, c := range []struct {
		what, code string
		user       int64
		at         time.Time
	}{
		{"a pending request", "PENDPEND", a.ID, now},
		{"a denied request", "DENYDENY", a.ID, now},
		{"another user's approval", "APPROVED", b.ID, now},
		{"an unknown device code", "UNKNOWN1", a.ID, now},
		{"an expired approval (at its expiry second)", "EXPIRING", a.ID, expiry},
		{"a user who does not exist", "APPROVED", 99999, now},
	} {
		tok := Token("t-"+c.code, c.user, db.TokenApp, c.at)
		if err := f.s.RedeemDeviceAuthorization(f.ctx, hash(c.code), tok); !errors.Is(err, db.ErrNotFound) {
			t.Errorf("redeeming %s: %v, want ErrNotFound", c.what, err)
		}
	}
	f.unchanged(t, before, "a refused redemption")

	tok := Token("t1", a.ID, db.TokenApp, expiry.Add(-time.Second))
	if err := f.s.RedeemDeviceAuthorization(f.ctx, hash("EXPIRING"), tok); err != nil {
		t.Fatalf("redeeming an approval a second before it expires: %v", err)
	}
	if got := f.tokenRow(t, "t1"); !sameToken(got, tok) {
		t.Fatalf("the redeemed token %+v, want %+v", got, tok)
	}
	if d := f.deviceRow(t, "EXPIRING"); d.Status != db.DeviceRedeemed || d.UserID != a.ID {
		t.Fatalf("a redeemed request: %+v", d)
	}
	before, _ = f.s.Dump(f.ctx)
	if err := f.s.RedeemDeviceAuthorization(f.ctx, hash("EXPIRING"), Token("t2", a.ID, db.TokenApp, now)); !errors.Is(err, db.ErrNotFound) {
		t.Fatalf("redeeming twice: %v, want ErrNotFound", err)
	}
	f.unchanged(t, before, "a second redemption")
	if got := f.liveTokens(t, a.ID, "", now); got != "t1" {
		t.Fatalf("a's tokens = %q, want t1", got)
	}
	if got := f.liveTokens(t, b.ID, "", now); got != "" {
		t.Fatalf("b's tokens = %q, want none", got)
	}
}

// testConcurrentRedemption: eight redemptions of one approval at once make
// exactly one token (a few rounds, as a race shows only now and then).
func testConcurrentRedemption(t *testing.T, f *fixture) {
	a := f.user(t, "a@example.com")
	f.app(t, "cli")
	now := T0.Add(time.Minute)
	const racers = 8
	var all []string
	for round := range 5 {
		d := Device(fmt.Sprintf("RACERED%d", round), "cli", T0)
		f.device(t, d)
		if err := f.s.DecideDeviceAuthorization(f.ctx, d.UserCode, a.ID, a.Epoch, true, now); err != nil {
			t.Fatal(err)
		}
		var mu sync.Mutex
		var won []string
		race(t, racers, func(i int) error {
			id := fmt.Sprintf("t%d-%d", round, i)
			err := f.s.RedeemDeviceAuthorization(f.ctx, d.DeviceCodeHash, Token(id, a.ID, db.TokenApp, now))
			if err == nil {
				mu.Lock()
				won = append(won, id)
				mu.Unlock()
			}
			if errors.Is(err, db.ErrNotFound) {
				return nil
			}
			return err
		})
		if len(won) != 1 {
			t.Fatalf("round %d: %d concurrent redemptions succeeded (%s), want exactly 1", round, len(won), strings.Join(won, ","))
		}
		all = append(all, won[0])
		for i := range racers {
			id := fmt.Sprintf("t%d-%d", round, i)
			if _, _, err := f.s.TokenWithUser(f.ctx, id); id != won[0] && !errors.Is(err, db.ErrNotFound) {
				t.Errorf("round %d: a losing redemption left token %s: %v", round, id, err)
			}
		}
	}
	list, err := f.s.ListTokens(f.ctx, a.ID, "", now)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := sortedTokenIDs(list), sortedTokenIDs(tokensNamed(all)); got != want {
		t.Fatalf("tokens %q after the races, want only %q", got, want)
	}
}

// tokensNamed returns tokens with those ids only (to sort ids alike).
func tokensNamed(ids []string) []db.Token {
	out := make([]db.Token, len(ids))
	for i, id := range ids {
		out[i].ID = id
	}
	return out
}

// testDisableEndsTokens: disabling a user ends their live tokens in the same
// call (reason disabled, by the operator), returns only the sessions, and
// re-enabling brings none back; nobody else's tokens change.
func testDisableEndsTokens(t *testing.T, f *fixture) {
	a, b := f.user(t, "a@example.com"), f.user(t, "b@example.com")
	f.session(t, Session("s-a", a.ID, T0))
	f.token(t, Token("pa", a.ID, db.TokenPersonal, T0))
	f.token(t, Token("xa", a.ID, db.TokenApp, T0))
	old := Token("a-old", a.ID, db.TokenPersonal, T0)
	old.ExpiresAt = T0.Add(time.Minute)
	f.token(t, old)
	f.token(t, Token("pb", b.ID, db.TokenPersonal, T0))
	now := T0.Add(time.Hour)
	ended, err := f.s.SetUserDisabled(f.ctx, a.ID, true, now)
	if err != nil || ids(ended) != "s-a" {
		t.Fatalf("SetUserDisabled = %s, %v; want the session s-a only", ids(ended), err)
	}
	for _, id := range []string{"pa", "xa"} {
		if tok := f.tokenRow(t, id); tok.Alive(now) || !tok.RevokedAt.Equal(now) || tok.RevokedReason != db.ReasonDisabled || tok.RevokedBy != "operator" {
			t.Errorf("token %s of a disabled user: %+v", id, tok)
		}
	}
	if tok := f.tokenRow(t, "a-old"); tok.Revoked() {
		t.Errorf("an expired token was revoked: %+v", tok)
	}
	if _, u, _ := f.s.TokenWithUser(f.ctx, "pa"); !u.Disabled() {
		t.Errorf("the token's user is not shown disabled: %+v", u)
	}
	if _, err := f.s.SetUserDisabled(f.ctx, a.ID, false, now); err != nil {
		t.Fatal(err)
	}
	if got := f.liveTokens(t, a.ID, "", now); got != "" {
		t.Fatalf("re-enabling revived tokens %q", got)
	}
	if got := f.liveTokens(t, b.ID, "", now); got != "pb" {
		t.Fatalf("b's tokens after a's disabling = %q, want pb", got)
	}
}

// testDeleteUserRemovesTokens: deleting a user removes their tokens and the
// device authorizations they decided, and nobody else's; pruning removes
// only the requests expired before the cutoff.
func testDeleteUserRemovesTokens(t *testing.T, f *fixture) {
	a, b := f.user(t, "a@example.com"), f.user(t, "b@example.com")
	f.app(t, "cli")
	f.token(t, Token("pa", a.ID, db.TokenPersonal, T0))
	f.token(t, Token("xa", a.ID, db.TokenApp, T0))
	f.token(t, Token("pb", b.ID, db.TokenPersonal, T0))
	for _, code := range []string{"AAPPROVE", "BAPPROVE", "PENDPEND"} {
		f.device(t, Device(code, "cli", T0))
	}
	now := T0.Add(time.Minute)
	if err := f.s.DecideDeviceAuthorization(f.ctx, "AAPPROVE", a.ID, a.Epoch, true, now); err != nil {
		t.Fatal(err)
	}
	if err := f.s.DecideDeviceAuthorization(f.ctx, "BAPPROVE", b.ID, b.Epoch, true, now); err != nil {
		t.Fatal(err)
	}
	if _, err := f.s.DeleteUser(f.ctx, a.ID, now); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"pa", "xa"} {
		if _, _, err := f.s.TokenWithUser(f.ctx, id); !errors.Is(err, db.ErrNotFound) {
			t.Errorf("token %s survived its user: %v", id, err)
		}
	}
	if _, err := f.s.DeviceAuthorizationByUserCode(f.ctx, "AAPPROVE"); !errors.Is(err, db.ErrNotFound) {
		t.Errorf("a request approved by a deleted user survived: %v", err)
	}
	d, _ := f.s.Dump(f.ctx)
	if strings.Contains(d, fmt.Sprintf("%x", "token-hash-pa")) || strings.Contains(d, "AAPPROVE") {
		t.Errorf("the deleted user's token rows are still in the dump:\n%s", d)
	}
	if got := f.liveTokens(t, b.ID, "", now); got != "pb" {
		t.Errorf("b's tokens after a's deletion = %q", got)
	}
	for _, code := range []string{"BAPPROVE", "PENDPEND"} {
		if _, err := f.s.DeviceAuthorizationByUserCode(f.ctx, code); err != nil {
			t.Errorf("request %s after a's deletion: %v", code, err)
		}
	}

	// Pruning: only those expired before the cutoff (T0+15m for these).
	f.device(t, Device("LATERLTR", "cli", T0.Add(10*time.Minute)))
	if n, err := f.s.PruneDeviceAuthorizations(f.ctx, T0.Add(15*time.Minute)); err != nil || n != 0 {
		t.Fatalf("pruning at the expiry second = %d, %v; want 0", n, err)
	}
	if n, err := f.s.PruneDeviceAuthorizations(f.ctx, T0.Add(15*time.Minute+time.Second)); err != nil || n != 2 {
		t.Fatalf("PruneDeviceAuthorizations = %d, %v; want 2", n, err)
	}
	for code, want := range map[string]bool{"BAPPROVE": false, "PENDPEND": false, "LATERLTR": true} {
		_, err := f.s.DeviceAuthorizationByUserCode(f.ctx, code)
		if want && err != nil || !want && !errors.Is(err, db.ErrNotFound) {
			t.Errorf("request %s after pruning: %v (want kept: %v)", code, err, want)
		}
	}
}

// testConcurrentTokenWrites: every write on tokens, apps and device
// authorizations racing at once (deleting and disabling the users, removing
// the app, redeeming and deciding its requests) finishes without an error
// (no deadlock: see the stores' lock order), and a removed app is left with
// no live token, even one redeemed while it was being removed.
func testConcurrentTokenWrites(t *testing.T, f *fixture) {
	now := T0.Add(time.Minute)
	for round := range 30 {
		a, b := f.user(t, fmt.Sprintf("a%d@example.com", round)), f.user(t, fmt.Sprintf("b%d@example.com", round))
		cli := fmt.Sprintf("cli%d", round)
		f.app(t, cli)
		for i := range 6 {
			for _, u := range []int64{a.ID, b.ID} {
				tok := Token(fmt.Sprintf("r%d-u%d-x%d", round, u, i), u, db.TokenApp, T0)
				tok.ClientID = cli
				f.token(t, tok)
				f.token(t, Token(fmt.Sprintf("r%d-u%d-p%d", round, u, i), u, db.TokenPersonal, T0))
			}
		}
		var ds []db.DeviceAuthorization
		for i, u := range []int64{a.ID, b.ID, a.ID, b.ID} {
			d := Device(fmt.Sprintf("R%02dD%d", round, i), cli, T0)
			f.device(t, d)
			if i < 2 {
				if err := f.s.DecideDeviceAuthorization(f.ctx, d.UserCode, u, 0, true, now); err != nil {
					t.Fatal(err)
				}
			}
			ds = append(ds, d)
		}
		redeem := func(d db.DeviceAuthorization, u int64, id string) error {
			tok := Token(id, u, db.TokenApp, now)
			tok.ClientID = cli
			return f.s.RedeemDeviceAuthorization(f.ctx, d.DeviceCodeHash, tok)
		}
		ops := []func() error{
			func() error { _, err := f.s.DeleteUser(f.ctx, a.ID, now); return err },
			func() error { _, err := f.s.SetUserDisabled(f.ctx, b.ID, true, now); return err },
			func() error { _, err := f.s.RevokeTokens(f.ctx, a.ID, "", db.ReasonRevokedAll, "s", now); return err },
			func() error {
				_, err := f.s.RevokeTokens(f.ctx, b.ID, db.TokenApp, db.ReasonRevokedAll, "s", now)
				return err
			},
			func() error {
				_, err := f.s.RevokeAppTokens(f.ctx, b.ID, cli, db.ReasonTokenRevoked, "s", now)
				return err
			},
			func() error { _, err := f.s.DeleteApp(f.ctx, cli, now); return err },
			func() error { return redeem(ds[0], a.ID, fmt.Sprintf("r%d-red-a", round)) },
			func() error { return redeem(ds[1], b.ID, fmt.Sprintf("r%d-red-b", round)) },
			func() error { return f.s.DecideDeviceAuthorization(f.ctx, ds[2].UserCode, a.ID, a.Epoch, true, now) },
			func() error { return f.s.DecideDeviceAuthorization(f.ctx, ds[3].UserCode, b.ID, b.Epoch, false, now) },
			func() error {
				return f.s.CreateDeviceAuthorization(f.ctx, Device(fmt.Sprintf("R%02dNEW", round), cli, now))
			},
			func() error { _, _, err := f.s.PollDeviceAuthorization(f.ctx, ds[0].DeviceCodeHash, now); return err },
			func() error { _, err := f.s.PruneDeviceAuthorizations(f.ctx, now); return err },
		}
		race(t, len(ops), func(i int) error {
			// A redemption racing the disabling of its user is refused
			// as a reset (ErrSignInsReset): the approval died with it.
			if err := ops[i](); err != nil && !errors.Is(err, db.ErrNotFound) && !errors.Is(err, db.ErrSignInsReset) {
				return fmt.Errorf("round %d, op %d: %w", round, i, err)
			}
			return nil
		})
		if _, err := f.s.App(f.ctx, cli); !errors.Is(err, db.ErrNotFound) {
			t.Fatalf("round %d: the app survived DeleteApp: %v", round, err)
		}
		list, err := f.s.ListTokens(f.ctx, b.ID, db.TokenApp, now)
		if err != nil {
			t.Fatal(err)
		}
		if len(list) != 0 {
			t.Fatalf("round %d: live tokens %s of a removed app", round, tokenIDs(list))
		}
	}
}
