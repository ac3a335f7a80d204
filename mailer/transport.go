package mailer

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/textproto"

	gomail "github.com/wneessen/go-mail"

	"doorman/db"
)

// Transport delivers one message. Send returns nil once the server took
// the message; an error for which Permanent is true means it never will
// (the worker gives up), any other error is worth retrying.
type Transport interface {
	Send(ctx context.Context, from string, m db.OutboxMail) error
}

// PermanentError marks an error as final: retrying cannot help (a 5xx
// reply, an address that does not parse). Transports other than
// SMTPTransport (fakes in tests) return it to make the worker give up.
type PermanentError struct{ Err error }

// Error is the underlying error's message.
func (e *PermanentError) Error() string { return e.Err.Error() }

// Unwrap returns the underlying error.
func (e *PermanentError) Unwrap() error { return e.Err }

// Permanent reports whether err says the message will never be accepted:
// a PermanentError, or an SMTP reply 5xx. Everything else is temporary: a
// 4xx reply (greylisting, a full queue, a rate limit), a refused or timed
// out connection, a TLS handshake that failed (a certificate can be
// fixed), a cancelled context.
func Permanent(err error) bool {
	if err == nil {
		return false
	}
	var pe *PermanentError
	if errors.As(err, &pe) {
		return true
	}
	return smtpCode(err)/100 == 5
}

// smtpCode is the SMTP reply code in err's chain, 0 if none.
func smtpCode(err error) int {
	// go-mail's SendError has no Unwrap, but knows the code of the reply
	// it wraps.
	var se *gomail.SendError
	if errors.As(err, &se) {
		if c := se.ErrorCode(); c != 0 {
			return c
		}
	}
	// A reply to EHLO, STARTTLS or AUTH comes as a bare textproto.Error.
	var te *textproto.Error
	if errors.As(err, &te) {
		return te.Code
	}
	return 0
}

// SMTPTransport sends each message over its own SMTP connection. Doorman
// sends a few mails a minute at most, so a connection per message costs
// nothing worth saving, and nothing (a half-closed connection, a server
// that timed out an idle session) carries over from one message to the
// next.
type SMTPTransport struct {
	s Settings
}

// NewSMTPTransport returns the transport for s. It refuses Settings (made
// by hand rather than by ParseURL) that would talk to a remote host in
// plain text.
func NewSMTPTransport(s Settings) (*SMTPTransport, error) {
	if s.Host == "" || s.Port < 1 || s.Port > 65535 {
		return nil, errors.New("mailer: SMTP settings need a host and a port")
	}
	if !s.ImplicitTLS && !s.StartTLS && !s.Loopback() {
		return nil, fmt.Errorf("mailer: %s: plain text is allowed to a loopback host only", s)
	}
	if s.Timeout <= 0 {
		s.Timeout = DefaultTimeout
	}
	return &SMTPTransport{s: s}, nil
}

// Settings returns the transport's settings.
func (t *SMTPTransport) Settings() Settings { return t.s }

// Send delivers m: connect (TLS as the settings say), AUTH if a user is
// set, MAIL, RCPT, DATA, QUIT. ctx bounds the whole exchange: when it ends
// the connection is closed, whatever command is in flight.
func (t *SMTPTransport) Send(ctx context.Context, from string, m db.OutboxMail) error {
	msg, err := newMsg(from, m)
	if err != nil {
		return err
	}
	tlsConfig := &tls.Config{
		ServerName: t.s.Host,
		RootCAs:    t.s.RootCAs,
		MinVersion: tls.VersionTLS12,
	}
	// The dialler is ours so that ctx, not only go-mail's per-command
	// deadline, can cut the connection, and so that the connection is
	// closed whatever happens: go-mail leaves it open when STARTTLS or AUTH
	// fails. go-mail skips its own TLS dial when given a dialler, so
	// implicit TLS is done here too.
	var conn net.Conn
	var stop func() bool
	dial := func(dctx context.Context, network, addr string) (net.Conn, error) {
		var d interface {
			DialContext(context.Context, string, string) (net.Conn, error)
		} = &net.Dialer{}
		if t.s.ImplicitTLS {
			d = &tls.Dialer{Config: tlsConfig}
		}
		c, err := d.DialContext(dctx, network, addr)
		if err != nil {
			return nil, err
		}
		conn, stop = c, context.AfterFunc(ctx, func() { c.Close() })
		return c, nil
	}
	defer func() {
		if conn != nil {
			stop()
			conn.Close() // after QUIT, a no-op
		}
	}()
	opts := []gomail.Option{
		gomail.WithPort(t.s.Port),
		gomail.WithTimeout(t.s.Timeout),
		gomail.WithDialContextFunc(dial),
		gomail.WithTLSConfig(tlsConfig),
		gomail.WithTLSPolicy(gomail.NoTLS),
	}
	switch {
	case t.s.ImplicitTLS:
		opts = append(opts, gomail.WithSSL())
	case t.s.StartTLS:
		// Mandatory: a server (or a man in the middle) that does not offer
		// STARTTLS gets nothing, least of all the password.
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSMandatory))
	}
	if t.s.Username != "" {
		// PLAIN, else LOGIN: over TLS, or to a loopback relay (ParseURL
		// and NewSMTPTransport allow plain text nowhere else), where the
		// password does not leave the machine. go-mail's NOENC variants
		// are what let it send them on a loopback connection without TLS;
		// over TLS they are the same mechanisms.
		mechs := []gomail.SMTPAuthType{gomail.SMTPAuthPlain, gomail.SMTPAuthLogin}
		if !t.s.ImplicitTLS && !t.s.StartTLS {
			mechs = []gomail.SMTPAuthType{gomail.SMTPAuthPlainNoEnc, gomail.SMTPAuthLoginNoEnc}
		}
		opts = append(opts, gomail.WithOpportunisticSMTPAuth(mechs...),
			gomail.WithUsername(t.s.Username), gomail.WithPassword(t.s.password))
	}
	c, err := gomail.NewClient(t.s.Host, opts...)
	if err != nil {
		return fmt.Errorf("mailer: SMTP client: %w", err)
	}
	if err := c.DialAndSendWithContext(ctx, msg); err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (%w)", ctx.Err(), err)
		}
		err = fmt.Errorf("mailer: send to %s: %w", t.s.Host, err)
		if Permanent(err) {
			return &PermanentError{Err: err}
		}
		return err
	}
	return nil
}
