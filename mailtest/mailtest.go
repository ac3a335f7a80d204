// Package mailtest runs a real SMTP server inside a test process, for tests
// that send mail through mailer.SMTPTransport (the mailer's own tests,
// handler tests, the browser end-to-end tests): it speaks SMTP over TCP on
// 127.0.0.1 (github.com/emersion/go-smtp), optionally with STARTTLS or
// implicit TLS on a certificate it makes, and AUTH PLAIN, records every
// message it accepts, parsed, and can refuse the next deliveries with a
// chosen reply code.
package mailtest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/mail"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"doorman/mailer"
)

// Options configure a Server. The zero value is plain SMTP without AUTH.
type Options struct {
	// StartTLS offers STARTTLS. AUTH is then refused until the client
	// has started TLS, as a real submission server does, so a client that
	// would send its password in clear fails the test.
	StartTLS bool
	// ImplicitTLS speaks TLS from the first byte (smtps).
	ImplicitTLS bool
	// Username and Password, if Username is set, make AUTH PLAIN required
	// before MAIL (530 otherwise); a wrong password gets 535.
	Username, Password string
	// Domain is the name the server greets with ("localhost" if empty).
	Domain string
}

// Message is one message the server accepted (or, in Rejected, refused
// after reading it), parsed.
type Message struct {
	// From and To are the envelope: MAIL FROM and every RCPT TO.
	From string
	To   []string
	// Subject is the decoded Subject header; Header holds them all.
	Subject string
	Header  mail.Header
	// MessageID is the Message-ID without its angle brackets.
	MessageID string
	// Text and HTML are the decoded parts.
	Text, HTML string
	// Raw is the message as received (after DATA's dot-unstuffing).
	Raw []byte
	// TLS reports whether the session was encrypted when the message was
	// sent (STARTTLS or implicit), AuthUser who authenticated ("" if no
	// one).
	TLS      bool
	AuthUser string
	// ParseErr is why the message did not parse, if it did not (the
	// fields above but Raw and the envelope are then empty).
	ParseErr error
}

// linkRE finds absolute http(s) URLs: up to whitespace, or a character
// that cannot be in one and often ends one in prose (quotes, brackets).
var linkRE = regexp.MustCompile(`https?://[^\s<>"'()\[\]]+`)

// Links returns the absolute http and https URLs in the text part, in
// order, without trailing sentence punctuation.
func (m Message) Links() []string {
	var links []string
	for _, l := range linkRE.FindAllString(m.Text, -1) {
		links = append(links, strings.TrimRight(l, ".,;:!?"))
	}
	return links
}

// Link returns the first link (see Links) that starts with prefix, or,
// when prefix starts with "/", whose path does; "" if none does.
func (m Message) Link(prefix string) string {
	for _, l := range m.Links() {
		if strings.HasPrefix(l, prefix) {
			return l
		}
		if strings.HasPrefix(prefix, "/") {
			if u, err := url.Parse(l); err == nil && strings.HasPrefix(u.Path, prefix) {
				return l
			}
		}
	}
	return ""
}

// Server is a running SMTP server. Its methods are safe for concurrent use.
type Server struct {
	opts   Options
	srv    *smtp.Server
	ln     net.Listener
	pool   *x509.CertPool
	closed chan struct{}

	mu       sync.Mutex
	messages []Message
	rejected []Message
	taken    []bool        // messages[i] was returned by a WaitFor
	changed  chan struct{} // closed (and replaced) when a message arrives
	failN    int
	failCode int
	logOff   bool
}

// Start starts a server on 127.0.0.1 at a free port; t.Cleanup stops it.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	if opts.StartTLS && opts.ImplicitTLS {
		t.Fatal("mailtest: StartTLS and ImplicitTLS exclude each other")
	}
	s := &Server{opts: opts, changed: make(chan struct{}), closed: make(chan struct{})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("mailtest: listen: %v", err)
	}
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &session{s: s, conn: c}, nil
	}))
	srv.Domain = opts.Domain
	if srv.Domain == "" {
		srv.Domain = "localhost"
	}
	srv.ReadTimeout, srv.WriteTimeout = 30*time.Second, 30*time.Second
	srv.MaxMessageBytes = 10 << 20
	srv.MaxRecipients = 50
	srv.ErrorLog = logger{s: s, t: t}
	if opts.StartTLS || opts.ImplicitTLS {
		cert, pool, err := selfSigned()
		if err != nil {
			ln.Close()
			t.Fatalf("mailtest: certificate: %v", err)
		}
		s.pool = pool
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		if opts.ImplicitTLS {
			ln = tls.NewListener(ln, srv.TLSConfig)
		}
	}
	// Plain-text AUTH only where there is no TLS to wait for: with
	// STARTTLS offered, AUTH before it is refused.
	srv.AllowInsecureAuth = !opts.StartTLS
	s.srv, s.ln = srv, ln
	go func() {
		defer close(s.closed)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, smtp.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
			s.logf(t, "mailtest: serve: %v", err)
		}
	}()
	t.Cleanup(func() {
		// The listener is closed here, not only by Shutdown: go-smtp
		// closes the listeners Serve has registered, and a test that ends
		// before the goroutine above got that far would leave Serve
		// blocked in Accept for ever.
		ln.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			srv.Close()
		}
		<-s.closed
		s.mu.Lock()
		s.logOff = true // t.Log after the test ends panics
		s.mu.Unlock()
	})
	return s
}

// Addr is the server's host:port.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// URL is an -smtp-url for the server, for mailer.ParseURL: smtps:// with
// ImplicitTLS, smtp:// with ?starttls=required with StartTLS (a loopback
// smtp:// URL is plain text otherwise), and the user if there is one (the
// password goes separately, as in production). With TLS, also set
// Settings.RootCAs to CertPool.
func (s *Server) URL() string {
	u := url.URL{Scheme: "smtp", Host: s.Addr()}
	if s.opts.ImplicitTLS {
		u.Scheme = "smtps"
	}
	if s.opts.StartTLS {
		u.RawQuery = "starttls=required"
	}
	if s.opts.Username != "" {
		u.User = url.User(s.opts.Username)
	}
	return u.String()
}

// Settings is mailer.ParseURL(URL(), Password) with RootCAs set to
// CertPool: what a test passes to mailer.NewSMTPTransport.
func (s *Server) Settings(t testing.TB) mailer.Settings {
	t.Helper()
	st, err := mailer.ParseURL(s.URL(), s.opts.Password)
	if err != nil {
		t.Fatalf("mailtest: ParseURL(%s): %v", s.URL(), err)
	}
	st.RootCAs = s.pool
	return st
}

// CertPool holds the server's self-signed certificate (nil without TLS):
// the RootCAs a client trusts it with.
func (s *Server) CertPool() *x509.CertPool { return s.pool }

// FailNext makes the next n deliveries fail with code (4xx: try again
// later, 5xx: never), given as the reply to the end of DATA: the message is
// read, recorded in Rejected, and refused. A code outside 400–599 panics:
// it would be no refusal.
func (s *Server) FailNext(n, code int) {
	if code < 400 || code > 599 {
		panic(fmt.Sprintf("mailtest: FailNext(%d, %d): the code must be 4xx or 5xx", n, code))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failN, s.failCode = n, code
}

// Messages returns every message accepted so far, oldest first.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.messages...)
}

// Rejected returns every message FailNext refused, oldest first.
func (s *Server) Rejected() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.rejected...)
}

// WaitFor returns the oldest message to the address to (an envelope
// recipient, compared without case) that no WaitFor or WaitForSubject
// returned before, waiting up to timeout for it; the test fails if none
// comes. Each call takes one message, so two calls wait for two messages.
func (s *Server) WaitFor(t testing.TB, to string, timeout time.Duration) Message {
	t.Helper()
	return s.wait(t, timeout, fmt.Sprintf("a message to %s", to), func(m Message) bool {
		return hasRcpt(m, to)
	})
}

// WaitForSubject is WaitFor for a message to to whose subject contains
// subject.
func (s *Server) WaitForSubject(t testing.TB, to, subject string, timeout time.Duration) Message {
	t.Helper()
	return s.wait(t, timeout, fmt.Sprintf("a message to %s with subject %q", to, subject), func(m Message) bool {
		return hasRcpt(m, to) && strings.Contains(m.Subject, subject)
	})
}

func hasRcpt(m Message, to string) bool {
	for _, r := range m.To {
		if strings.EqualFold(r, to) {
			return true
		}
	}
	return false
}

func (s *Server) wait(t testing.TB, timeout time.Duration, what string, match func(Message) bool) Message {
	t.Helper()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		s.mu.Lock()
		for i, m := range s.messages {
			if !s.taken[i] && match(m) {
				s.taken[i] = true
				s.mu.Unlock()
				return m
			}
		}
		changed, n := s.changed, len(s.messages)
		s.mu.Unlock()
		select {
		case <-changed:
		case <-timer.C:
			t.Fatalf("mailtest: no %s within %v (%d messages received)", what, timeout, n)
			return Message{}
		}
	}
}

func (s *Server) record(m Message) (refuse *smtp.SMTPError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failN > 0 {
		s.failN--
		s.rejected = append(s.rejected, m)
		return &smtp.SMTPError{
			Code:         s.failCode,
			EnhancedCode: smtp.EnhancedCode{s.failCode / 100, 0, 0},
			Message:      "mailtest: refused as asked (FailNext)",
		}
	}
	s.messages = append(s.messages, m)
	s.taken = append(s.taken, false)
	close(s.changed)
	s.changed = make(chan struct{})
	return nil
}

func (s *Server) logf(t testing.TB, format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.logOff {
		t.Logf(format, args...)
	}
}

// logger sends go-smtp's error log to the test's log.
type logger struct {
	s *Server
	t testing.TB
}

func (l logger) Printf(format string, v ...any) { l.s.logf(l.t, "mailtest: "+format, v...) }
func (l logger) Println(v ...any)               { l.s.logf(l.t, "mailtest: %s", fmt.Sprint(v...)) }

// session is one SMTP connection's state.
type session struct {
	s    *Server
	conn *smtp.Conn
	user string
	from string
	to   []string
}

var errAuthRequired = &smtp.SMTPError{Code: 530, EnhancedCode: smtp.EnhancedCode{5, 7, 0}, Message: "Authentication required"}

func (se *session) AuthMechanisms() []string {
	if se.s.opts.Username == "" {
		return nil
	}
	return []string{sasl.Plain}
}

func (se *session) Auth(mech string) (sasl.Server, error) {
	if se.s.opts.Username == "" || mech != sasl.Plain {
		return nil, smtp.ErrAuthUnknownMechanism
	}
	return sasl.NewPlainServer(func(identity, username, password string) error {
		if (identity != "" && identity != username) || username != se.s.opts.Username || password != se.s.opts.Password {
			return smtp.ErrAuthFailed
		}
		se.user = username
		return nil
	}), nil
}

func (se *session) Mail(from string, _ *smtp.MailOptions) error {
	if se.s.opts.Username != "" && se.user == "" {
		return errAuthRequired
	}
	se.from, se.to = from, nil
	return nil
}

func (se *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	se.to = append(se.to, to)
	return nil
}

func (se *session) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	_, tlsOn := se.conn.TLSConnectionState()
	m := Message{From: se.from, To: append([]string(nil), se.to...), Raw: raw, TLS: tlsOn, AuthUser: se.user}
	if p, err := mailer.Parse(raw); err != nil {
		m.ParseErr = err
	} else {
		m.Subject, m.Header, m.MessageID, m.Text, m.HTML = p.Subject, p.Header, p.MessageID, p.Text, p.HTML
	}
	if refuse := se.s.record(m); refuse != nil {
		return refuse
	}
	return nil
}

func (se *session) Reset() { se.from, se.to = "", nil }

func (se *session) Logout() error { return nil }

// selfSigned makes a certificate for 127.0.0.1, ::1 and localhost, valid
// for a day, that is its own CA: the pool it returns trusts it.
func selfSigned() (tls.Certificate, *x509.CertPool, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "mailtest"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool, nil
}

var _ smtp.AuthSession = (*session)(nil)
