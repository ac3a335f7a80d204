// Package mailer sends Doorman's email: the SMTP settings parsed from the
// -smtp-url flag, the transports that deliver one message (SMTPTransport, and
// DirTransport, the development default that writes .eml files), and the
// Worker that empties the outbox the store keeps (db.MailStore), with
// retries. Mail is queued in the same transaction as what causes it and
// sent later by the Worker, so a slow or dead mail server never holds up a
// request, and a crash between the two loses nothing.
package mailer

import (
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Default ports and timeout (ParseURL fills them in).
const (
	// DefaultSubmissionPort is the port of smtp:// URLs: message submission
	// with STARTTLS (RFC 6409), the port relays and providers take mail on.
	DefaultSubmissionPort = 587
	// DefaultImplicitTLSPort is the port of smtps:// URLs: submission over
	// implicit TLS (RFC 8314).
	DefaultImplicitTLSPort = 465
	// DefaultTimeout bounds connecting and each SMTP command. A mail server
	// that stalls fails the attempt (to be retried) rather than holding the
	// worker.
	DefaultTimeout = 30 * time.Second
)

// Settings say how to reach the SMTP server: what ParseURL makes of the
// -smtp-url flag. The password is kept unexported so that no printing or
// encoding of Settings can show it: String, GoString and LogValue name the
// server and the user only.
type Settings struct {
	// Host is the server's name or address (without brackets for IPv6).
	Host string
	// Port is the server's TCP port.
	Port int
	// ImplicitTLS speaks TLS from the first byte (smtps://).
	ImplicitTLS bool
	// StartTLS requires STARTTLS, with the server's certificate verified,
	// before anything else is said (in particular before AUTH). It is
	// always on for a host that is not loopback: mail holds sign-in and
	// password-reset links, which must never cross a network in clear.
	StartTLS bool
	// Username, if set, authenticates with AUTH PLAIN or LOGIN.
	Username string
	// PasswordInURL reports that the password came from the URL itself,
	// where it shows in process lists and shell history: main warns.
	PasswordInURL bool
	// RootCAs, if set, replaces the system's roots for verifying the
	// server's certificate (tests use mailtest's CertPool).
	RootCAs *x509.CertPool
	// Timeout bounds connecting and each SMTP command (DefaultTimeout if
	// zero).
	Timeout time.Duration

	password string
}

// SetPassword sets the password used with Username (ParseURL sets it from
// its argument; this is for Settings built by hand, as in tests).
func (s *Settings) SetPassword(password string) { s.password = password }

// HasPassword reports whether a password is set.
func (s Settings) HasPassword() bool { return s.password != "" }

// Addr is host:port, as net.Dial wants it.
func (s Settings) Addr() string { return net.JoinHostPort(s.Host, strconv.Itoa(s.Port)) }

// Loopback reports whether the server is on this machine (127.0.0.0/8, ::1
// or "localhost"), the only case where plain text is allowed.
func (s Settings) Loopback() bool { return IsLoopback(s.Host) }

// String is the URL without any password, and how the connection is
// secured, for logs and error messages.
func (s Settings) String() string {
	scheme := "smtp"
	if s.ImplicitTLS {
		scheme = "smtps"
	}
	u := url.URL{Scheme: scheme, Host: s.Addr()}
	if s.Username != "" {
		u.User = url.User(s.Username)
	}
	mode := "plain text"
	switch {
	case s.ImplicitTLS:
		mode = "implicit TLS"
	case s.StartTLS:
		mode = "STARTTLS"
	}
	return u.String() + " (" + mode + ")"
}

// GoString is String, so that %#v does not print the password either.
func (s Settings) GoString() string { return "mailer.Settings(" + s.String() + ")" }

// LogValue is String, so that slog does not print the password either.
func (s Settings) LogValue() slog.Value { return slog.StringValue(s.String()) }

// IsLoopback reports whether host names this machine: an address in
// 127.0.0.0/8 or ::1, or the name "localhost" (which RFC 6761 reserves for
// loopback). Other names are not resolved: what a name resolves to can
// change, and a name that resolves to loopback today is no promise that
// plain text stays on this machine.
func IsLoopback(host string) bool {
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	if host == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Unmap().IsLoopback()
}

// ParseURL parses the -smtp-url flag:
//
//	smtp://[user@]host[:port][?starttls=required]   port 587, STARTTLS
//	smtps://[user@]host[:port]                      port 465, implicit TLS
//
// STARTTLS is mandatory for every host that is not loopback. For a loopback
// host (a relay on this machine, such as a local Postfix) smtp:// is plain
// text unless ?starttls=required: nothing crosses a network, and local
// relays often present a self-signed certificate, with which a verified
// STARTTLS would make every send fail, while an unverified one would be
// theatre. ?starttls=required asks for STARTTLS with a verified certificate
// anyway (tests use it, with RootCAs).
//
// The user comes from the URL, the password from the password argument
// (main reads it from a file or the environment, so it never sits in a
// process list). A password inside the URL is accepted, and PasswordInURL
// says so; giving both is an error. No error names the password.
func ParseURL(raw, password string) (Settings, error) {
	s, err := parseURL(raw, password)
	if err != nil {
		// Defence in depth: whatever a message below was built from, it
		// must not carry the password (from either place) into a log.
		return Settings{}, scrub(err, password, urlPassword(raw))
	}
	return s, nil
}

func parseURL(raw, password string) (Settings, error) {
	if strings.TrimSpace(raw) == "" {
		return Settings{}, errors.New("mailer: the SMTP URL is empty")
	}
	u, err := url.Parse(raw)
	if err != nil {
		// url.Error repeats the whole URL, password included: say what is
		// wrong without it.
		return Settings{}, errors.New("mailer: the SMTP URL does not parse (want smtp://[user@]host[:port] or smtps://[user@]host[:port])")
	}
	var s Settings
	switch u.Scheme {
	case "smtp":
		s.Port = DefaultSubmissionPort
	case "smtps":
		s.ImplicitTLS, s.Port = true, DefaultImplicitTLSPort
	case "":
		return Settings{}, errors.New("mailer: the SMTP URL has no scheme (want smtp:// or smtps://)")
	default:
		return Settings{}, fmt.Errorf("mailer: unknown SMTP URL scheme %q (want smtp or smtps)", u.Scheme)
	}
	if u.Opaque != "" {
		return Settings{}, fmt.Errorf("mailer: the SMTP URL needs // after %s: (%s://host)", u.Scheme, u.Scheme)
	}
	s.Host = u.Hostname()
	if s.Host == "" {
		return Settings{}, errors.New("mailer: the SMTP URL has no host")
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return Settings{}, errors.New("mailer: the SMTP URL's port is not a number from 1 to 65535")
		}
		s.Port = n
	} else if strings.HasSuffix(u.Host, ":") {
		return Settings{}, errors.New("mailer: the SMTP URL has an empty port")
	}
	if u.Path != "" && u.Path != "/" {
		return Settings{}, errors.New("mailer: the SMTP URL has a path; it takes none (smtp://host:port)")
	}
	if u.Fragment != "" || strings.Contains(raw, "#") {
		return Settings{}, errors.New("mailer: the SMTP URL has a #fragment; it takes none")
	}
	if err := s.parseQuery(u); err != nil {
		return Settings{}, err
	}
	if !s.ImplicitTLS && !s.Loopback() {
		s.StartTLS = true
	}

	if u.User != nil {
		s.Username = u.User.Username()
		if p, ok := u.User.Password(); ok && p != "" {
			if password != "" {
				return Settings{}, errors.New("mailer: a password is both in the SMTP URL and given separately: keep only the separate one")
			}
			password, s.PasswordInURL = p, true
		}
	}
	switch {
	case s.Username == "" && password != "":
		return Settings{}, errors.New("mailer: an SMTP password is given but the URL names no user (smtp://user@host)")
	case s.Username != "" && password == "":
		return Settings{}, fmt.Errorf("mailer: the SMTP URL names user %q but no password is given", s.Username)
	}
	s.password = password
	s.Timeout = DefaultTimeout
	return s, nil
}

func (s *Settings) parseQuery(u *url.URL) error {
	if u.RawQuery == "" {
		if u.ForceQuery {
			return errors.New("mailer: the SMTP URL has an empty query")
		}
		return nil
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return errors.New("mailer: the SMTP URL's query does not parse")
	}
	for k, v := range q {
		if k != "starttls" {
			return fmt.Errorf("mailer: unknown SMTP URL parameter %q (the only one is starttls=required)", k)
		}
		if len(v) != 1 || v[0] != "required" {
			return errors.New("mailer: starttls takes one value, required")
		}
		if s.ImplicitTLS {
			return errors.New("mailer: starttls does not apply to smtps:// (it is TLS from the start)")
		}
		s.StartTLS = true
	}
	return nil
}

// urlPassword is the password in raw's user info, if it parses that far.
func urlPassword(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		// A URL that does not parse may still hold user:password@: take
		// what sits between :// and the last @ before the path.
		_, rest, ok := strings.Cut(raw, "://")
		if !ok {
			return ""
		}
		at := strings.LastIndex(rest, "@")
		if at < 0 {
			return ""
		}
		_, p, _ := strings.Cut(rest[:at], ":")
		return p
	}
	p, _ := u.User.Password()
	return p
}

// scrub replaces every secret in err's message.
func scrub(err error, secrets ...string) error {
	msg := err.Error()
	changed := false
	for _, s := range secrets {
		if s != "" && strings.Contains(msg, s) {
			msg, changed = strings.ReplaceAll(msg, s, "[redacted]"), true
		}
	}
	if !changed {
		return err
	}
	return errors.New(msg)
}
