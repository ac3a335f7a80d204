package mailtest_test

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"doorman/mailtest"
)

// message is a minimal multipart message, written by hand so these tests
// do not depend on the mailer they serve.
func message(to, subject, id, text string) string {
	return strings.ReplaceAll(fmt.Sprintf(`From: Doorman <noreply@doorman.test>
To: %s
Subject: %s
Message-ID: <%s>
MIME-Version: 1.0
Content-Type: multipart/alternative; boundary=BOUNDARY

--BOUNDARY
Content-Type: text/plain; charset=UTF-8
Content-Transfer-Encoding: quoted-printable

%s
--BOUNDARY
Content-Type: text/html; charset=UTF-8
Content-Transfer-Encoding: quoted-printable

<p>H=C3=A9llo</p>
--BOUNDARY--
`, to, subject, id, text), "\n", "\r\n")
}

// send delivers one message with go-smtp's own client: c is connected
// (and, as the test wants, secured and authenticated) already.
func send(c *smtp.Client, to, subject, id, text string) error {
	defer c.Close()
	if err := c.SendMail("noreply@doorman.test", []string{to}, strings.NewReader(message(to, subject, id, text))); err != nil {
		return err
	}
	return c.Quit()
}

func TestPlainRecordsAndParses(t *testing.T) {
	s := mailtest.Start(t, mailtest.Options{})
	if !strings.HasPrefix(s.URL(), "smtp://127.0.0.1:") || s.CertPool() != nil {
		t.Fatalf("URL %q, CertPool %v", s.URL(), s.CertPool())
	}
	c, err := smtp.Dial(s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	text := "H=C3=A9llo. Sign in: https://doorman.test/signin/abc?x=3D1.\nOr (https://doorman.test/reset/xyz), or http://127.0.0.1:8080/verify/q=\nrs!"
	if err := send(c, "Bob@Example.com", "=?UTF-8?q?Sign_in_=E2=80=94_now?=", "id-1@doorman.test", text); err != nil {
		t.Fatal(err)
	}
	m := s.WaitFor(t, "bob@example.com", 30*time.Second)
	if m.ParseErr != nil {
		t.Fatal(m.ParseErr)
	}
	if m.From != "noreply@doorman.test" || len(m.To) != 1 || m.To[0] != "Bob@Example.com" {
		t.Errorf("envelope %q -> %q", m.From, m.To)
	}
	if m.Subject != "Sign in — now" || m.MessageID != "id-1@doorman.test" || m.Header.Get("From") != "Doorman <noreply@doorman.test>" {
		t.Errorf("subject %q, id %q, From %q", m.Subject, m.MessageID, m.Header.Get("From"))
	}
	if !strings.HasPrefix(m.Text, "Héllo. Sign in:") || m.HTML != "<p>Héllo</p>" {
		t.Errorf("text %q, html %q", m.Text, m.HTML)
	}
	if m.TLS || m.AuthUser != "" {
		t.Errorf("TLS %v, AuthUser %q on a plain session", m.TLS, m.AuthUser)
	}
	if !strings.Contains(string(m.Raw), "Message-ID: <id-1@doorman.test>\r\n") {
		t.Errorf("raw message:\n%s", m.Raw)
	}
	want := []string{"https://doorman.test/signin/abc?x=1", "https://doorman.test/reset/xyz", "http://127.0.0.1:8080/verify/qrs"}
	if got := m.Links(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("Links() = %q, want %q", got, want)
	}
	for prefix, want := range map[string]string{
		"https://doorman.test/reset/": "https://doorman.test/reset/xyz",
		"/verify/":                    "http://127.0.0.1:8080/verify/qrs",
		"/signin":                     "https://doorman.test/signin/abc?x=1",
		"https://elsewhere/":          "",
		"/nope":                       "",
	} {
		if got := m.Link(prefix); got != want {
			t.Errorf("Link(%q) = %q, want %q", prefix, got, want)
		}
	}
	if n := len(s.Messages()); n != 1 {
		t.Errorf("%d messages, want 1", n)
	}
}

func TestWaitForTakesEachMessageOnce(t *testing.T) {
	s := mailtest.Start(t, mailtest.Options{})
	for i, subj := range []string{"first", "second", "third"} {
		c, err := smtp.Dial(s.Addr())
		if err != nil {
			t.Fatal(err)
		}
		to := "a@x.test"
		if i == 1 {
			to = "b@x.test"
		}
		if err := send(c, to, subj, fmt.Sprintf("%d@x", i), "hi"); err != nil {
			t.Fatal(err)
		}
	}
	if m := s.WaitForSubject(t, "a@x.test", "third", 30*time.Second); m.Subject != "third" {
		t.Errorf("WaitForSubject got %q", m.Subject)
	}
	if m := s.WaitFor(t, "a@x.test", 30*time.Second); m.Subject != "first" {
		t.Errorf("first WaitFor got %q, want the oldest not yet taken", m.Subject)
	}
	if m := s.WaitFor(t, "b@x.test", 30*time.Second); m.Subject != "second" {
		t.Errorf("WaitFor b got %q", m.Subject)
	}

	// Every message to a@ is taken: the next WaitFor fails the test.
	ft := &fakeT{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.WaitFor(ft, "a@x.test", 100*time.Millisecond)
	}()
	<-done
	if !ft.failed || !strings.Contains(ft.msg, "no a message to a@x.test") {
		t.Errorf("WaitFor with nothing to take: failed %v, %q", ft.failed, ft.msg)
	}
}

func TestWaitForWaits(t *testing.T) {
	s := mailtest.Start(t, mailtest.Options{})
	go func() {
		time.Sleep(100 * time.Millisecond)
		c, err := smtp.Dial(s.Addr())
		if err != nil {
			return
		}
		send(c, "late@x.test", "late", "late@x", "hi")
	}()
	if m := s.WaitFor(t, "late@x.test", 30*time.Second); m.Subject != "late" {
		t.Errorf("got %q", m.Subject)
	}
}

// fakeT records a Fatalf instead of ending the goroutine.
type fakeT struct {
	testing.TB
	mu     sync.Mutex
	failed bool
	msg    string
}

func (f *fakeT) Helper() {}
func (f *fakeT) Fatalf(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failed, f.msg = true, fmt.Sprintf(format, args...)
}

func TestStartTLSAndAuth(t *testing.T) {
	s := mailtest.Start(t, mailtest.Options{StartTLS: true, Username: "doorman", Password: "s3cret"})
	if !strings.Contains(s.URL(), "starttls=required") || !strings.HasPrefix(s.URL(), "smtp://doorman@127.0.0.1:") {
		t.Errorf("URL %q", s.URL())
	}
	if strings.Contains(s.URL(), "s3cret") {
		t.Errorf("URL %q holds the password", s.URL())
	}
	tlsConfig := &tls.Config{ServerName: "127.0.0.1", RootCAs: s.CertPool()}

	// Before STARTTLS, AUTH is neither offered nor accepted.
	c, err := smtp.Dial(s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Hello("test"); err != nil {
		t.Fatal(err)
	}
	if ok, _ := c.Extension("STARTTLS"); !ok {
		t.Error("STARTTLS not offered")
	}
	if ok, _ := c.Extension("AUTH"); ok {
		t.Error("AUTH offered before TLS")
	}
	c.Close()

	// The certificate verifies against CertPool only (the handshake
	// happens at the first command after STARTTLS).
	if c, err := smtp.DialStartTLS(s.Addr(), &tls.Config{ServerName: "127.0.0.1"}); err == nil {
		err = c.Hello("test")
		c.Close()
		if err == nil {
			t.Error("STARTTLS verified without the test CA")
		}
	}

	// Without AUTH, MAIL is refused with 530.
	c, err = smtp.DialStartTLS(s.Addr(), tlsConfig)
	if err != nil {
		t.Fatal(err)
	}
	err = send(c, "bob@x.test", "no auth", "1@x", "hi")
	var se *smtp.SMTPError
	if !errors.As(err, &se) || se.Code != 530 {
		t.Errorf("send without AUTH: %v, want 530", err)
	}

	// A wrong password is 535.
	c, err = smtp.DialStartTLS(s.Addr(), tlsConfig)
	if err != nil {
		t.Fatal(err)
	}
	err = c.Auth(sasl.NewPlainClient("", "doorman", "wrong"))
	if !errors.As(err, &se) || se.Code != 535 {
		t.Errorf("AUTH with a wrong password: %v, want 535", err)
	}
	c.Close()

	c, err = smtp.DialStartTLS(s.Addr(), tlsConfig)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Auth(sasl.NewPlainClient("", "doorman", "s3cret")); err != nil {
		t.Fatal(err)
	}
	if err := send(c, "bob@x.test", "authed", "2@x", "hi"); err != nil {
		t.Fatal(err)
	}
	m := s.WaitFor(t, "bob@x.test", 30*time.Second)
	if !m.TLS || m.AuthUser != "doorman" || m.Subject != "authed" {
		t.Errorf("TLS %v, AuthUser %q, subject %q", m.TLS, m.AuthUser, m.Subject)
	}
	if n := len(s.Messages()); n != 1 {
		t.Errorf("%d messages, want 1 (the refused ones are not recorded)", n)
	}
}

func TestImplicitTLS(t *testing.T) {
	s := mailtest.Start(t, mailtest.Options{ImplicitTLS: true})
	if !strings.HasPrefix(s.URL(), "smtps://127.0.0.1:") {
		t.Errorf("URL %q", s.URL())
	}
	// A plain-text client gets no greeting.
	conn, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	pc := smtp.NewClient(conn)
	pc.CommandTimeout = 300 * time.Millisecond
	if err := pc.Hello("test"); err == nil {
		t.Error("plain EHLO answered by an implicit-TLS server")
	}
	conn.Close()
	c, err := smtp.DialTLS(s.Addr(), &tls.Config{ServerName: "127.0.0.1", RootCAs: s.CertPool()})
	if err != nil {
		t.Fatal(err)
	}
	if err := send(c, "bob@x.test", "tls", "1@x", "hi"); err != nil {
		t.Fatal(err)
	}
	if m := s.WaitFor(t, "bob@x.test", 30*time.Second); !m.TLS {
		t.Error("message over implicit TLS not marked TLS")
	}
}

func TestFailNext(t *testing.T) {
	s := mailtest.Start(t, mailtest.Options{})
	s.FailNext(2, 451)
	for i, want := range []int{451, 451, 0} {
		c, err := smtp.Dial(s.Addr())
		if err != nil {
			t.Fatal(err)
		}
		err = send(c, "bob@x.test", "try", fmt.Sprintf("%d@x", i), "hi")
		var se *smtp.SMTPError
		switch {
		case want == 0 && err != nil:
			t.Errorf("attempt %d: %v, want accepted", i, err)
		case want != 0 && (!errors.As(err, &se) || se.Code != want):
			t.Errorf("attempt %d: %v, want %d", i, err, want)
		}
	}
	rejected, accepted := s.Rejected(), s.Messages()
	if len(rejected) != 2 || len(accepted) != 1 {
		t.Fatalf("%d rejected, %d accepted; want 2, 1", len(rejected), len(accepted))
	}
	if rejected[0].MessageID != "0@x" || rejected[1].MessageID != "1@x" || accepted[0].MessageID != "2@x" {
		t.Errorf("ids: %q %q %q", rejected[0].MessageID, rejected[1].MessageID, accepted[0].MessageID)
	}

	s.FailNext(1, 550)
	c, err := smtp.Dial(s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	var se *smtp.SMTPError
	if err := send(c, "bob@x.test", "no", "3@x", "hi"); !errors.As(err, &se) || se.Code != 550 || se.Temporary() {
		t.Errorf("FailNext(1, 550): %v", err)
	}
}

// A server stopped at once (before its goroutine ran) still stops.
func TestStartStop(t *testing.T) {
	for range 200 {
		t.Run("", func(t *testing.T) { mailtest.Start(t, mailtest.Options{}) })
	}
}
