package handlers_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"doorman/apptest"
	"doorman/db"
	"doorman/twofactor"
)

// TestQueuedMailHoldsNoLinkAtRest: while a mail with a link waits in the
// outbox (here: the SMTP server refused it once, so it waits for its
// retry), nothing a copy of the database holds gives the link away: not
// the SQLite file, not its -wal, not a dump, not the outbox row on either
// store (its bodies are sealed with the key kept outside the database).
// The worker still delivers the right mail, whose link works.
func TestQueuedMailHoldsNoLinkAtRest(t *testing.T) {
	app := newTestApp(t)
	c := app.client(uaWindowsChrome, ipBerlin)
	c.signup("alice@example.com", pw)
	app.mail("alice@example.com", "Confirm your email")

	// The next delivery is refused (451: try later): the mail stays
	// queued, and the stopped clock keeps its retry from coming due.
	app.smtp.FailNext(1, 451)
	laptop := app.client(uaMacFirefox, ipTokyo)
	expectRedirect(t, laptop.post("/password/forgot", url.Values{"email": {"alice@example.com"}}), "/password/forgot")
	var refused []string
	for deadline := time.Now().Add(waitTimeout); ; time.Sleep(10 * time.Millisecond) {
		if r := app.smtp.Rejected(); len(r) == 1 {
			refused = []string{r[0].MessageID, app.link(r[0], "/password/reset")}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the reset mail never reached the SMTP server")
		}
	}
	messageID, link := refused[0], refused[1]
	var queued db.OutboxMail
	for deadline := time.Now().Add(waitTimeout); ; time.Sleep(10 * time.Millisecond) {
		m, err := app.store.OutboxMail(context.Background(), messageID)
		if err != nil {
			t.Fatal(err)
		}
		if m.Attempts == 1 {
			queued = m
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the refused attempt was not recorded: %+v", m)
		}
	}
	if queued.Status != db.MailQueued {
		t.Fatalf("the refused mail is %s, want it queued for a retry", queued.Status)
	}

	token := linkToken(t, link)
	_, secret, ok := strings.Cut(token, ".")
	if !ok || len(secret) < 40 {
		t.Fatalf("link token %q has no secret part", token)
	}
	// What a copy of the database holds: the outbox row as the store
	// returns it, a dump of every table, and (SQLite) the raw bytes of the
	// files, write-ahead log included.
	for _, part := range []struct{ name, body string }{{"text", queued.Text}, {"html", queued.HTML}} {
		if !strings.HasPrefix(part.body, "sealed:") || strings.Contains(part.body, secret) || strings.Contains(part.body, "/password/reset") {
			t.Fatalf("the queued mail's %s body is not sealed: %.80q", part.name, part.body)
		}
	}
	d, err := app.store.Dump(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(d, messageID) {
		t.Fatal("the dump has no outbox row for the queued mail")
	}
	if strings.Contains(d, secret) || strings.Contains(d, "/password/reset") {
		t.Fatal("the database dump holds the queued mail's link")
	}
	if !apptest.UsePostgres() {
		files := 0
		for _, path := range []string{app.dbPath, app.dbPath + "-wal"} {
			raw, err := os.ReadFile(path)
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			files++
			if bytes.Contains(raw, []byte(secret)) || bytes.Contains(raw, []byte("/password/reset?token=")) {
				t.Fatalf("%s holds the queued mail's link", path)
			}
		}
		if files < 2 {
			t.Fatalf("read %d of the database's files, want the file and its -wal", files)
		}
	}

	// The retry comes due: the worker opens the bodies and delivers the
	// same mail, whose link works.
	app.advance(time.Second)
	m := app.mail("alice@example.com", "Reset your Doorman password")
	if m.MessageID != messageID || app.link(m, "/password/reset") != link || !strings.Contains(m.HTML, "/password/reset?token=") {
		t.Fatalf("the delivered mail is not the one refused:\n%s", m.Text)
	}
	if strings.Contains(m.Text, "sealed:") || strings.Contains(m.HTML, "sealed:") {
		t.Fatal("the delivered mail carries sealed text")
	}
	res := laptop.follow(link)
	expectStatus(t, res, http.StatusOK)
	expectBody(t, res, "Choose a new password for alice@example.com")
}

// storedRecoveryCodes are the user's rows of recovery_codes in a dump:
// each stored value, in hex.
func storedRecoveryCodes(t *testing.T, app *testApp, userID int64) []string {
	t.Helper()
	d, err := app.store.Dump(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	_, table, ok := strings.Cut(d, "# recovery_codes (")
	if !ok {
		t.Fatal("no recovery_codes in the dump")
	}
	table, _, _ = strings.Cut(table, "\n# ")
	var out []string
	for _, line := range strings.Split(table, "\n")[1:] {
		f := strings.Split(line, " | ")
		if len(f) >= 2 && f[0] == strconv.FormatInt(userID, 10) {
			out = append(out, f[1])
		}
	}
	return out
}

// TestRecoveryCodesAreKeyedAtRest: a recovery code is stored as a keyed
// hash (HMAC-SHA-256 under the key kept outside the database) of the
// user's id and the code, never as its plain SHA-256, so a copy of the
// database cannot be checked against guesses, and one user's stored value
// is no use for another. Codes stored as plain SHA-256 before the upgrade
// still work, once, until new codes replace them.
func TestRecoveryCodesAreKeyedAtRest(t *testing.T) {
	app := newTestApp(t)
	ctx := context.Background()
	alice, bob := app.client(uaWindowsChrome, ipBerlin), app.client(uaIPhone, ipLondon)
	alice.signup("alice@example.com", pw)
	bob.signup("bob@example.com", pw)
	aliceSecret, aliceCodes := turnOnTwoFactor(t, alice, false)
	turnOnTwoFactor(t, bob, false)
	aliceUser, err := app.store.UserByEmail(ctx, "alice@example.com")
	if err != nil {
		t.Fatal(err)
	}
	bobUser, err := app.store.UserByEmail(ctx, "bob@example.com")
	if err != nil {
		t.Fatal(err)
	}

	stored := storedRecoveryCodes(t, app, aliceUser.ID)
	if len(stored) != 10 {
		t.Fatalf("%d recovery codes stored for alice, want 10", len(stored))
	}
	d := app.dump()
	for _, code := range aliceCodes {
		for _, form := range []string{code, strings.ReplaceAll(code, "-", "")} {
			sum := sha256.Sum256([]byte(form))
			if strings.Contains(d, hex.EncodeToString(sum[:])) || strings.Contains(d, form) {
				t.Fatalf("the database holds recovery code %q or its SHA-256", code)
			}
		}
	}
	for _, s := range stored {
		if len(s) != 66 || !strings.HasPrefix(s, "01") {
			t.Fatalf("a recovery code stored as %s, want the keyed form (01, then 32 bytes)", s)
		}
	}
	// The same code for two users hashes to two values (the user's id is
	// in the MAC): alice's stored value, put in bob's rows, does not let
	// her code sign bob in.
	box := app.app.SecretBox
	forAlice, forBob := twofactor.RecoveryHashes(box, aliceUser.ID, aliceCodes[0])[0], twofactor.RecoveryHashes(box, bobUser.ID, aliceCodes[0])[0]
	if bytes.Equal(forAlice, forBob) || !slices.Contains(stored, hex.EncodeToString(forAlice)) {
		t.Fatal("one code gives the same stored value for two users, or alice's is not what is stored")
	}
	if err := app.store.ReplaceRecoveryCodes(ctx, bobUser.ID, [][]byte{forAlice}, app.clock()); err != nil {
		t.Fatal(err)
	}
	thief := app.client(uaMacFirefox, ipTokyo)
	thief.passwordStep("bob@example.com")
	expectStatus(t, thief.post("/login/two-factor", url.Values{"code": {aliceCodes[0]}}), http.StatusUnauthorized)

	// A keyed code works once and only once.
	phone := app.client(uaIPhone, ipLondon)
	phone.passwordStep("alice@example.com")
	expectRedirect(t, phone.post("/login/two-factor", url.Values{"code": {aliceCodes[0]}}), "/settings/security")
	again := app.client(uaMacFirefox, ipTokyo)
	again.passwordStep("alice@example.com")
	expectStatus(t, again.post("/login/two-factor", url.Values{"code": {aliceCodes[0]}}), http.StatusUnauthorized)

	// Codes from before the upgrade: plain SHA-256 of the code. They still
	// sign in, once.
	const oldCode = "abcde-fghjk"
	if err := app.store.ReplaceRecoveryCodes(ctx, aliceUser.ID, [][]byte{twofactor.LegacyRecoveryHash(oldCode), twofactor.LegacyRecoveryHash("mnpqr-stuvw")}, app.clock()); err != nil {
		t.Fatal(err)
	}
	old := app.client(uaWindowsChrome, ipTokyo)
	old.passwordStep("alice@example.com")
	expectRedirect(t, old.post("/login/two-factor", url.Values{"code": {"ABCDE FGHJK"}}), "/settings/security")
	expectBody(t, old.get("/settings/security/sessions/"+old.currentID()), "Password and recovery code")
	replay := app.client(uaIPhone, ipBerlin)
	replay.passwordStep("alice@example.com")
	expectStatus(t, replay.post("/login/two-factor", url.Values{"code": {oldCode}}), http.StatusUnauthorized)
	// New codes replace them, all keyed: the other old code is dead.
	app.advance(30 * time.Second)
	res := alice.post("/settings/security/two-factor/recovery-codes", url.Values{"password": {pw}, "code": {codeAt(t, aliceSecret, app.clock())}})
	expectStatus(t, res, http.StatusOK)
	for _, s := range storedRecoveryCodes(t, app, aliceUser.ID) {
		if len(s) != 66 || !strings.HasPrefix(s, "01") {
			t.Fatalf("after new codes, one is stored as %s", s)
		}
	}
	expectStatus(t, replay.post("/login/two-factor", url.Values{"code": {"mnpqr-stuvw"}}), http.StatusUnauthorized)
}
