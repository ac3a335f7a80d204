package mailer_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"doorman/db"
	"doorman/mailer"
	"doorman/secretbox"
)

func newBox(t *testing.T, fill byte) *secretbox.Box {
	t.Helper()
	b, err := secretbox.New(bytes.Repeat([]byte{fill}, secretbox.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSealOpen(t *testing.T) {
	box := newBox(t, 1)
	plain := testMail("s@doorman.test")
	sealed := mailer.Seal(box, plain.Mail)
	for _, body := range []string{sealed.Text, sealed.HTML} {
		if !strings.HasPrefix(body, "sealed:") || strings.Contains(body, linkSecret) || strings.Contains(body, bodyPhrase) {
			t.Fatalf("not sealed: %.60q", body)
		}
	}
	if sealed.Subject != plain.Subject || sealed.To != plain.To || sealed.MessageID != plain.MessageID {
		t.Fatal("Seal changed more than the bodies")
	}
	got, err := mailer.Open(box, db.OutboxMail{ID: 7, Mail: sealed})
	if err != nil || got.Text != plain.Text || got.HTML != plain.HTML {
		t.Fatalf("Open = %v, %q", err, got.Text)
	}
	// Without a key nothing is sealed; an unsealed body (queued before
	// sealing) opens as it is.
	if m := mailer.Seal(nil, plain.Mail); m.Text != plain.Text || m.HTML != plain.HTML {
		t.Fatal("Seal without a key changed the bodies")
	}
	if got, err := mailer.Open(box, plain); err != nil || got.Text != plain.Text || got.HTML != plain.HTML {
		t.Fatalf("an unsealed mail: %v", err)
	}
	// Another key, no key, another mail's body, text and HTML swapped,
	// an altered byte: ErrSealedBody, never ciphertext.
	other := sealed
	other.MessageID = "other@doorman.test"
	swapped := sealed
	swapped.Text, swapped.HTML = sealed.HTML, sealed.Text
	altered := sealed
	altered.Text = altered.Text[:len(altered.Text)-2] + "AA"
	for name, c := range map[string]struct {
		box *secretbox.Box
		m   db.Mail
	}{"another key": {newBox(t, 2), sealed}, "no key": {nil, sealed}, "another mail": {box, other},
		"parts swapped": {box, swapped}, "altered": {box, altered}} {
		if _, err := mailer.Open(c.box, db.OutboxMail{Mail: c.m}); !errors.Is(err, mailer.ErrSealedBody) {
			t.Errorf("%s: %v, want ErrSealedBody", name, err)
		}
	}
}

// TestWorkerOpensSealedMail: the worker sends the opened bodies; a mail
// queued unsealed (before the upgrade) goes out as it is; a mail sealed
// with a key this worker lacks fails at once with a clear error, and
// nothing is sent.
func TestWorkerOpensSealedMail(t *testing.T) {
	f := newFixture(t)
	box := newBox(t, 1)
	f.w.Box = box
	ctx := context.Background()
	plain := testMail("sealed@doorman.test").Mail
	plain.CreatedAt = f.clk.Now()
	if err := f.st.QueueMail(ctx, mailer.Seal(box, plain)); err != nil {
		t.Fatal(err)
	}
	old := queue(t, f.st, "unsealed@doorman.test", f.clk.Now())
	lost := testMail("lost-key@doorman.test").Mail
	lost.CreatedAt = f.clk.Now()
	if err := f.st.QueueMail(ctx, mailer.Seal(newBox(t, 2), lost)); err != nil {
		t.Fatal(err)
	}
	f.runOnce(t, 2)
	msgs := f.srv.Messages()
	if len(msgs) != 2 {
		t.Fatalf("%d messages sent, want 2", len(msgs))
	}
	for _, m := range msgs {
		if m.MessageID == lost.MessageID {
			t.Fatal("the mail sealed with another key was sent")
		}
		if strings.Contains(m.Text, "sealed:") || strings.TrimSuffix(m.Text, "\n") != strings.TrimSuffix(plain.Text, "\n") {
			t.Fatalf("%s: text part %q", m.MessageID, m.Text)
		}
	}
	if m := outbox(t, f.st, old.MessageID); m.Status != db.MailSent {
		t.Fatalf("the unsealed mail is %s", m.Status)
	}
	m := outbox(t, f.st, lost.MessageID)
	if m.Status != db.MailFailed || !strings.Contains(m.LastError, "key this server does not have") || m.Text != "" || m.HTML != "" {
		t.Fatalf("the mail sealed with another key: %s, %q, bodies %d+%d bytes", m.Status, m.LastError, len(m.Text), len(m.HTML))
	}
	if !strings.Contains(f.log.String(), "mail cannot be opened") {
		t.Fatalf("not logged:\n%s", f.log.String())
	}
}
