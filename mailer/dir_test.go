package mailer_test

import (
	"context"
	"mime"
	"net/mail"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"doorman/db"
	"doorman/mailer"
	"doorman/mailtest"
)

func TestDirTransportRoundTrip(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "mail")
	tr := mailer.DirTransport{Dir: dir}
	older := testMail("older@doorman.test")
	older.ID, older.Kind, older.Subject, older.To = 1, db.MailVerifyEmail, "Confirm your address", "ann@example.com"
	older.CreatedAt = older.CreatedAt.Add(-time.Hour)
	newer := testMail("newer@doorman.test")
	newer.ID = 2
	ctx := context.Background()
	for _, m := range []db.OutboxMail{older, newer, older} { // the retry replaces its file
		if err := tr.Send(ctx, from, m); err != nil {
			t.Fatal(err)
		}
	}

	// Secrets inside: 0700 and 0600, and no temporary file left.
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("dir: %v, %v", fi.Mode(), err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 2 {
		t.Errorf("%d files, want 2: %v", len(entries), entries)
	}
	name := regexp.MustCompile(`^\d{8}T\d{6}\.\d{6}Z-[a-z_]+-\d+\.eml$`)
	for _, e := range entries {
		fi, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 || !name.MatchString(e.Name()) {
			t.Errorf("%s: mode %v", e.Name(), fi.Mode())
		}
	}

	list, err := mailer.ListDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 {
		t.Fatalf("ListDir: %+v", list)
	}
	wantNames := []string{"20260304T050607.000000Z-password_reset-2.eml", "20260304T040607.000000Z-verify_email-1.eml"}
	for i, want := range []db.OutboxMail{newer, older} {
		s := list[i]
		if s.Name != wantNames[i] || s.Kind != want.Kind || s.Subject != want.Subject ||
			s.To != want.To || !s.Date.Equal(want.CreatedAt) {
			t.Errorf("ListDir[%d] = %+v, want %s %s %q %s %v", i, s, wantNames[i], want.Kind, want.Subject, want.To, want.CreatedAt)
		}
	}

	p, err := mailer.ReadStored(dir, list[0].Name)
	if err != nil {
		t.Fatal(err)
	}
	if p.MessageID != "newer@doorman.test" || p.Subject != newer.Subject || p.HTML != newer.HTML ||
		strings.TrimSuffix(p.Text, "\n") != strings.TrimSuffix(newer.Text, "\n") || p.Header.Get("Auto-Submitted") != "auto-generated" {
		t.Errorf("ReadStored: %+v", p)
	}
}

// The file holds the bytes an SMTP server gets (but the random MIME
// boundary).
func TestDirTransportWritesWhatSMTPSends(t *testing.T) {
	dir := t.TempDir()
	m := testMail("same@doorman.test")
	if err := (mailer.DirTransport{Dir: dir}).Send(context.Background(), from, m); err != nil {
		t.Fatal(err)
	}
	list, err := mailer.ListDir(dir)
	if err != nil || len(list) != 1 {
		t.Fatalf("ListDir: %v, %v", list, err)
	}
	file, err := os.ReadFile(filepath.Join(dir, list[0].Name))
	if err != nil {
		t.Fatal(err)
	}
	srv := mailtest.Start(t, mailtest.Options{})
	sendOK(t, transport(t, srv.Settings(t)), m)
	wire := srv.WaitFor(t, m.To, 30*time.Second).Raw
	if a, b := unboundary(t, file), unboundary(t, wire); a != b {
		t.Errorf("file:\n%s\nSMTP:\n%s", a, b)
	}
}

func unboundary(t *testing.T, raw []byte) string {
	t.Helper()
	msg, err := mail.ReadMessage(strings.NewReader(string(raw)))
	if err != nil {
		t.Fatal(err)
	}
	_, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil || params["boundary"] == "" {
		t.Fatalf("Content-Type %q: %v", msg.Header.Get("Content-Type"), err)
	}
	return strings.ReplaceAll(string(raw), params["boundary"], "BOUNDARY")
}

func TestReadStoredRefusesOtherFiles(t *testing.T) {
	base := t.TempDir()
	dir := filepath.Join(base, "mail")
	if err := (mailer.DirTransport{Dir: dir}).Send(context.Background(), from, testMail("x@doorman.test")); err != nil {
		t.Fatal(err)
	}
	// A secret outside the directory, reachable by name or by link.
	outside := filepath.Join(base, "20260101T000000.000000Z-secret-1.eml")
	if err := os.WriteFile(outside, []byte("Subject: secret\r\n\r\nsecret"), 0o600); err != nil {
		t.Fatal(err)
	}
	link := "20260101T000000.000000Z-link-1.eml"
	if err := os.Symlink(outside, filepath.Join(dir, link)); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{
		"../20260101T000000.000000Z-secret-1.eml",
		outside,
		"./20260101T000000.000000Z-secret-1.eml",
		"sub/20260101T000000.000000Z-x-1.eml",
		"..",
		"",
		".tmp-123.eml",
		"20260101T000000.000000Z-x-1.eml/",
		"20260101T000000.000000Z-x-1.txt",
		link, // the name is fine, but it leads out of dir
	} {
		if p, err := mailer.ReadStored(dir, name); err == nil {
			t.Errorf("ReadStored(%q) = %+v", name, p)
		}
	}
	list, err := mailer.ListDir(dir)
	if err != nil || len(list) != 1 || list[0].Name == link {
		t.Errorf("ListDir: %+v, %v (want the one mail, not the link)", list, err)
	}
	if list, err := mailer.ListDir(filepath.Join(base, "none")); err != nil || len(list) != 0 {
		t.Errorf("ListDir of a missing dir: %v, %v", list, err)
	}
}
