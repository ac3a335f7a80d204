package mailer_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net"
	"net/mail"
	"strings"
	"testing"
	"time"

	"doorman/db"
	"doorman/mailer"
	"doorman/mailtest"
)

const from = "Doorman <noreply@doorman.test>"

// testMail is a mail as the handlers queue one, with what makes encoding
// matter: non-ASCII, a long line, a link with = and &.
func testMail(id string) db.OutboxMail {
	return db.OutboxMail{ID: 7, Mail: db.Mail{
		MessageID: id,
		To:        "bob@example.com",
		Kind:      db.MailPasswordReset,
		Subject:   "Réinitialiser — reset your Doorman password",
		Text: "Hello Bob,\n\nReset your password: https://doorman.test/reset/abc?t=x1&u=y2\n\n" +
			"This link works for 30 minutes, and only once. If you did not ask for it, ignore this mail; nothing changes.\n",
		HTML:      `<p>Hello Bob,</p><p><a href="https://doorman.test/reset/abc?t=x1&amp;u=y2">Reset your password</a> — ça marche.</p>`,
		CreatedAt: time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC),
	}}
}

func transport(t *testing.T, s mailer.Settings) *mailer.SMTPTransport {
	t.Helper()
	tr, err := mailer.NewSMTPTransport(s)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

func parse(t *testing.T, raw, password string) mailer.Settings {
	t.Helper()
	s, err := mailer.ParseURL(raw, password)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func sendOK(t *testing.T, tr mailer.Transport, m db.OutboxMail) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := tr.Send(ctx, from, m); err != nil {
		t.Fatalf("Send: %v", err)
	}
}

func TestSMTPPlainOnLoopback(t *testing.T) {
	srv := mailtest.Start(t, mailtest.Options{})
	sendOK(t, transport(t, srv.Settings(t)), testMail("plain@doorman.test"))
	m := srv.WaitFor(t, "bob@example.com", 30*time.Second)
	if m.TLS || m.MessageID != "plain@doorman.test" || m.From != "noreply@doorman.test" {
		t.Errorf("TLS %v, Message-ID %q, envelope from %q", m.TLS, m.MessageID, m.From)
	}
}

// A loopback relay that offers STARTTLS with a certificate nobody trusts
// (as local relays do) must not make sending fail: smtp:// to loopback is
// plain text unless ?starttls=required.
func TestSMTPLoopbackIgnoresUntrustedStartTLS(t *testing.T) {
	srv := mailtest.Start(t, mailtest.Options{StartTLS: true})
	sendOK(t, transport(t, parse(t, "smtp://"+srv.Addr(), "")), testMail("loop@doorman.test"))
	if m := srv.WaitFor(t, "bob@example.com", 30*time.Second); m.TLS {
		t.Error("TLS used on loopback without ?starttls=required")
	}
}

func TestSMTPStartTLS(t *testing.T) {
	srv := mailtest.Start(t, mailtest.Options{StartTLS: true})
	s := srv.Settings(t)
	if !s.StartTLS {
		t.Fatalf("Settings %v: no STARTTLS", s)
	}
	sendOK(t, transport(t, s), testMail("starttls@doorman.test"))
	if m := srv.WaitFor(t, "bob@example.com", 30*time.Second); !m.TLS {
		t.Error("STARTTLS required but the message came in plain text")
	}

	// Without the test CA the certificate does not verify: nothing is
	// sent, and the error is temporary (a certificate can be fixed).
	s.RootCAs = nil
	err := transport(t, s).Send(context.Background(), from, testMail("untrusted@doorman.test"))
	if err == nil || mailer.Permanent(err) {
		t.Errorf("Send to an untrusted certificate: %v (permanent %v), want a temporary error", err, mailer.Permanent(err))
	}
	if n := len(srv.Messages()); n != 1 {
		t.Errorf("%d messages, want 1", n)
	}
}

func TestSMTPStartTLSRequiredButNotOffered(t *testing.T) {
	srv := mailtest.Start(t, mailtest.Options{})
	tr := transport(t, parse(t, srv.URL()+"?starttls=required", ""))
	err := tr.Send(context.Background(), from, testMail("downgrade@doorman.test"))
	if err == nil || !strings.Contains(err.Error(), "STARTTLS") {
		t.Errorf("Send to a server without STARTTLS: %v", err)
	}
	if n := len(srv.Messages()); n != 0 {
		t.Errorf("%d messages sent in plain text", n)
	}
}

// A failed STARTTLS must not leave the connection open (go-mail does, on
// its own): a hand-written server that offers no STARTTLS sees the client
// hang up.
func TestSMTPClosesTheConnectionOnFailure(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	closed := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			closed <- err
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(3 * time.Second))
		io.WriteString(c, "220 localhost ESMTP\r\n")
		buf := make([]byte, 512)
		for {
			n, err := c.Read(buf)
			if err != nil {
				closed <- err
				return
			}
			if strings.HasPrefix(strings.ToUpper(string(buf[:n])), "EHLO") {
				io.WriteString(c, "250-localhost\r\n250 8BITMIME\r\n")
			}
		}
	}()
	tr := transport(t, parse(t, "smtp://"+ln.Addr().String()+"?starttls=required", ""))
	if err := tr.Send(context.Background(), from, testMail("leak@doorman.test")); err == nil {
		t.Fatal("sent without STARTTLS")
	}
	if err := <-closed; err != io.EOF {
		t.Errorf("server side: %v, want EOF (the client hung up)", err)
	}
}

func TestSMTPImplicitTLS(t *testing.T) {
	srv := mailtest.Start(t, mailtest.Options{ImplicitTLS: true})
	s := srv.Settings(t)
	if !s.ImplicitTLS {
		t.Fatalf("Settings %v", s)
	}
	sendOK(t, transport(t, s), testMail("smtps@doorman.test"))
	if m := srv.WaitFor(t, "bob@example.com", 30*time.Second); !m.TLS {
		t.Error("smtps message not over TLS")
	}
}

func TestSMTPAuth(t *testing.T) {
	for _, opts := range []mailtest.Options{
		{StartTLS: true, Username: "doorman", Password: "s3cret"},
		{ImplicitTLS: true, Username: "doorman", Password: "s3cret"},
		{Username: "doorman", Password: "s3cret"}, // plain text, loopback only
	} {
		srv := mailtest.Start(t, opts)
		s := srv.Settings(t)
		sendOK(t, transport(t, s), testMail("auth@doorman.test"))
		if m := srv.WaitFor(t, "bob@example.com", 30*time.Second); m.AuthUser != "doorman" || m.TLS != (opts.StartTLS || opts.ImplicitTLS) {
			t.Errorf("%+v: AuthUser %q, TLS %v", opts, m.AuthUser, m.TLS)
		}

		wrong := parse(t, srv.URL(), "Pa55-zq9")
		wrong.RootCAs = srv.CertPool()
		err := transport(t, wrong).Send(context.Background(), from, testMail("wrong@doorman.test"))
		if !mailer.Permanent(err) || !strings.Contains(err.Error(), "535") {
			t.Errorf("%+v: wrong password: %v, want a permanent 535", opts, err)
		}
		if err != nil && strings.Contains(err.Error(), "Pa55-zq9") {
			t.Errorf("error shows the password: %v", err)
		}

		// No credentials at all: the server wants them (530, permanent).
		none := parse(t, strings.Replace(srv.URL(), "doorman@", "", 1), "")
		none.RootCAs = srv.CertPool()
		if err := transport(t, none).Send(context.Background(), from, testMail("none@doorman.test")); !mailer.Permanent(err) {
			t.Errorf("%+v: no credentials: %v, want permanent", opts, err)
		}
		if n := len(srv.Messages()); n != 1 {
			t.Errorf("%+v: %d messages, want 1", opts, n)
		}
	}
}

func TestSMTPReplyCodes(t *testing.T) {
	srv := mailtest.Start(t, mailtest.Options{})
	tr := transport(t, srv.Settings(t))
	for _, tt := range []struct {
		code      int
		permanent bool
	}{{421, false}, {451, false}, {452, false}, {550, true}, {554, true}} {
		srv.FailNext(1, tt.code)
		err := tr.Send(context.Background(), from, testMail("codes@doorman.test"))
		if err == nil {
			t.Errorf("%d: accepted", tt.code)
			continue
		}
		if mailer.Permanent(err) != tt.permanent {
			t.Errorf("%d: Permanent(%v) = %v, want %v", tt.code, err, mailer.Permanent(err), tt.permanent)
		}
		var pe *mailer.PermanentError
		if errors.As(err, &pe) != tt.permanent {
			t.Errorf("%d: PermanentError in chain %v", tt.code, !tt.permanent)
		}
	}
	sendOK(t, tr, testMail("codes@doorman.test"))
	if r, m := len(srv.Rejected()), len(srv.Messages()); r != 5 || m != 1 {
		t.Errorf("%d rejected, %d accepted", r, m)
	}
}

func TestSMTPConnectionFailuresAreTemporary(t *testing.T) {
	// Refused: a port nothing listens on.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	err = transport(t, parse(t, "smtp://"+addr, "")).Send(context.Background(), from, testMail("refused@doorman.test"))
	if err == nil || mailer.Permanent(err) {
		t.Errorf("connection refused: %v, want temporary", err)
	}

	// A server that accepts and never speaks: the timeout ends it, and so
	// does the context, whichever comes first.
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	go func() {
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	s := parse(t, "smtp://"+silent.Addr().String(), "")
	// Each limit is 200 ms; the check allows 30 s (a busy machine), far
	// from the hang (Timeout ignored) or the minute (context ignored) it
	// would be otherwise.
	s.Timeout = 200 * time.Millisecond
	start := time.Now()
	err = transport(t, s).Send(context.Background(), from, testMail("silent@doorman.test"))
	if err == nil || mailer.Permanent(err) || time.Since(start) > 30*time.Second {
		t.Errorf("silent server, Timeout: %v after %v", err, time.Since(start))
	}
	s.Timeout = time.Minute
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start = time.Now()
	err = transport(t, s).Send(ctx, from, testMail("silent@doorman.test"))
	if err == nil || mailer.Permanent(err) || time.Since(start) > 30*time.Second {
		t.Errorf("silent server, context: %v after %v", err, time.Since(start))
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("context deadline not in the error: %v", err)
	}
}

func TestSMTPMessageAsReceived(t *testing.T) {
	srv := mailtest.Start(t, mailtest.Options{})
	want := testMail("abc.123@doorman.test")
	sendOK(t, transport(t, srv.Settings(t)), want)
	m := srv.WaitFor(t, "bob@example.com", 30*time.Second)

	// Read it with the standard library alone.
	msg, err := mail.ReadMessage(bytes.NewReader(m.Raw))
	if err != nil {
		t.Fatal(err)
	}
	h := msg.Header
	var dec mime.WordDecoder
	subject, _ := dec.DecodeHeader(h.Get("Subject"))
	fromAddr, _ := mail.ParseAddress(h.Get("From"))
	toAddr, _ := mail.ParseAddress(h.Get("To"))
	date, _ := h.Date()
	checks := map[string][2]string{
		"Message-ID":     {h.Get("Message-ID"), "<abc.123@doorman.test>"},
		"Subject":        {subject, want.Subject},
		"From":           {fromAddr.String(), `"Doorman" <noreply@doorman.test>`},
		"To":             {toAddr.Address, "bob@example.com"},
		"Date":           {date.UTC().String(), want.CreatedAt.String()},
		"Auto-Submitted": {h.Get("Auto-Submitted"), "auto-generated"},
		"MIME-Version":   {h.Get("MIME-Version"), "1.0"},
	}
	for name, c := range checks {
		if c[0] != c[1] {
			t.Errorf("%s: %q, want %q", name, c[0], c[1])
		}
	}
	for name := range h {
		switch name {
		case "Message-Id", "Subject", "From", "To", "Date", "Auto-Submitted", "Mime-Version", "Content-Type":
		default:
			t.Errorf("unexpected header %s: %q", name, h.Get(name))
		}
	}
	mediaType, params, err := mime.ParseMediaType(h.Get("Content-Type"))
	if err != nil || mediaType != "multipart/alternative" {
		t.Fatalf("Content-Type %q: %v", h.Get("Content-Type"), err)
	}
	mr := multipart.NewReader(msg.Body, params["boundary"])
	var types []string
	for {
		p, err := mr.NextRawPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		ct, cp, _ := mime.ParseMediaType(p.Header.Get("Content-Type"))
		types = append(types, ct)
		if cp["charset"] != "UTF-8" || p.Header.Get("Content-Transfer-Encoding") != "quoted-printable" {
			t.Errorf("%s part: charset %q, encoding %q", ct, cp["charset"], p.Header.Get("Content-Transfer-Encoding"))
		}
		raw, _ := io.ReadAll(p)
		for _, line := range strings.Split(string(raw), "\r\n") {
			if len(line) > 76 {
				t.Errorf("%s part: line of %d characters", ct, len(line))
			}
		}
	}
	// Text first: clients show the last alternative they understand.
	if strings.Join(types, ",") != "text/plain,text/html" {
		t.Errorf("parts %v", types)
	}

	if strings.TrimSuffix(m.Text, "\n") != strings.TrimSuffix(want.Text, "\n") {
		t.Errorf("text part:\n%q\nwant\n%q", m.Text, want.Text)
	}
	if m.HTML != want.HTML {
		t.Errorf("HTML part:\n%q\nwant\n%q", m.HTML, want.HTML)
	}
	if got := m.Link("https://doorman.test/reset/"); got != "https://doorman.test/reset/abc?t=x1&u=y2" {
		t.Errorf("link %q", got)
	}
}

func TestSMTPRefusesBadMail(t *testing.T) {
	srv := mailtest.Start(t, mailtest.Options{})
	tr := transport(t, srv.Settings(t))

	// A subject cannot add a header.
	m := testMail("inject@doorman.test")
	m.Subject = "Hi\r\nBcc: eve@example.com"
	sendOK(t, tr, m)
	got := srv.WaitFor(t, "bob@example.com", 30*time.Second)
	if got.Header.Get("Bcc") != "" || got.Subject != "Hi Bcc: eve@example.com" || len(got.To) != 1 {
		t.Errorf("subject %q, Bcc %q, rcpts %v", got.Subject, got.Header.Get("Bcc"), got.To)
	}

	for name, bad := range map[string]func(*db.OutboxMail){
		"bad To":           func(m *db.OutboxMail) { m.To = "not an address" },
		"two To":           func(m *db.OutboxMail) { m.To = "bob@example.com, eve@example.com" },
		"bracketed id":     func(m *db.OutboxMail) { m.MessageID = "<x@doorman.test>" },
		"id with a space":  func(m *db.OutboxMail) { m.MessageID = "x y@doorman.test" },
		"id with a CRLF":   func(m *db.OutboxMail) { m.MessageID = "x@doorman.test\r\nBcc: eve@example.com" },
		"no id":            func(m *db.OutboxMail) { m.MessageID = "" },
		"To with a header": func(m *db.OutboxMail) { m.To = "bob@example.com\r\nBcc: eve@example.com" },
	} {
		m := testMail("bad@doorman.test")
		bad(&m)
		if err := tr.Send(context.Background(), from, m); !mailer.Permanent(err) {
			t.Errorf("%s: %v, want a permanent error", name, err)
		}
	}
	if n := len(srv.Messages()); n != 1 {
		t.Errorf("%d messages, want 1", n)
	}
}
