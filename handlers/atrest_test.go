package handlers_test

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"doorman/apptest"
	"doorman/db"
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
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
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
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
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
