package mailer

import (
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

func TestParseURL(t *testing.T) {
	tests := []struct {
		raw, password string
		want          Settings // password and Timeout checked apart
		wantPassword  string
	}{
		{raw: "smtp://mail.example.com", want: Settings{Host: "mail.example.com", Port: 587, StartTLS: true}},
		{raw: "SMTP://mail.example.com:2525/", want: Settings{Host: "mail.example.com", Port: 2525, StartTLS: true}},
		{raw: "smtp://mail.example.com?starttls=required", want: Settings{Host: "mail.example.com", Port: 587, StartTLS: true}},
		{raw: "smtps://mail.example.com", want: Settings{Host: "mail.example.com", Port: 465, ImplicitTLS: true}},
		{raw: "smtps://mail.example.com:1465", want: Settings{Host: "mail.example.com", Port: 1465, ImplicitTLS: true}},
		// A name that resolves to loopback is not trusted to: only these.
		{raw: "smtp://localhost", want: Settings{Host: "localhost", Port: 587}},
		{raw: "smtp://LocalHost.:25", want: Settings{Host: "LocalHost.", Port: 25}},
		{raw: "smtp://127.0.0.1:25", want: Settings{Host: "127.0.0.1", Port: 25}},
		{raw: "smtp://127.8.9.10:25", want: Settings{Host: "127.8.9.10", Port: 25}},
		{raw: "smtp://[::1]:25", want: Settings{Host: "::1", Port: 25}},
		{raw: "smtp://[::ffff:127.0.0.1]:25", want: Settings{Host: "::ffff:127.0.0.1", Port: 25}},
		{raw: "smtp://127.0.0.1:25?starttls=required", want: Settings{Host: "127.0.0.1", Port: 25, StartTLS: true}},
		{raw: "smtp://localhost.example.com", want: Settings{Host: "localhost.example.com", Port: 587, StartTLS: true}},
		{raw: "smtp://128.0.0.1", want: Settings{Host: "128.0.0.1", Port: 587, StartTLS: true}},
		{raw: "smtp://[2001:db8::1]:587", want: Settings{Host: "2001:db8::1", Port: 587, StartTLS: true}},
		{raw: "smtp://10.0.0.1", want: Settings{Host: "10.0.0.1", Port: 587, StartTLS: true}},
		// Credentials.
		{raw: "smtp://apikey@smtp.example.com", password: "hunter2",
			want: Settings{Host: "smtp.example.com", Port: 587, StartTLS: true, Username: "apikey"}, wantPassword: "hunter2"},
		{raw: "smtps://me%40example.com@smtp.example.com", password: "hunter2",
			want: Settings{Host: "smtp.example.com", Port: 465, ImplicitTLS: true, Username: "me@example.com"}, wantPassword: "hunter2"},
		{raw: "smtp://apikey:hunter2@smtp.example.com",
			want:         Settings{Host: "smtp.example.com", Port: 587, StartTLS: true, Username: "apikey", PasswordInURL: true},
			wantPassword: "hunter2"},
		{raw: "smtp://apikey:p%40ss%2Fw@smtp.example.com",
			want:         Settings{Host: "smtp.example.com", Port: 587, StartTLS: true, Username: "apikey", PasswordInURL: true},
			wantPassword: "p@ss/w"},
	}
	for _, tt := range tests {
		got, err := ParseURL(tt.raw, tt.password)
		if err != nil {
			t.Errorf("ParseURL(%q): %v", tt.raw, err)
			continue
		}
		if got.password != tt.wantPassword {
			t.Errorf("ParseURL(%q): password %q, want %q", tt.raw, got.password, tt.wantPassword)
		}
		if got.Timeout != DefaultTimeout {
			t.Errorf("ParseURL(%q): Timeout %v", tt.raw, got.Timeout)
		}
		got.password, got.Timeout = "", 0
		if got != tt.want {
			t.Errorf("ParseURL(%q) =\n %#v\nwant\n %#v", tt.raw, got, tt.want)
		}
		if got.Loopback() == (got.StartTLS || got.ImplicitTLS) && !strings.Contains(tt.raw, "starttls") {
			t.Errorf("ParseURL(%q): loopback %v but StartTLS %v", tt.raw, got.Loopback(), got.StartTLS)
		}
	}
}

func TestParseURLErrors(t *testing.T) {
	const secret = "hunter2"
	tests := []struct{ raw, password, want string }{
		{"", "", "empty"},
		{"mail.example.com", "", "no scheme"},
		{"mail.example.com:587", "", "unknown SMTP URL scheme"},
		{"http://mail.example.com", "", `unknown SMTP URL scheme "http"`},
		{"smtp+starttls://mail.example.com", "", "unknown SMTP URL scheme"},
		{"smtp:mail.example.com", "", "needs //"},
		{"smtp://", "", "no host"},
		{"smtp://:587", "", "no host"},
		{"smtp://user@", secret, "no host"},
		{"smtp://mail.example.com:", "", "empty port"},
		{"smtp://mail.example.com:0", "", "port"},
		{"smtp://mail.example.com:70000", "", "port"},
		{"smtp://mail.example.com:smtp", "", "does not parse"},
		{"smtp://mail.example.com/inbox", "", "path"},
		{"smtp://mail.example.com#x", "", "fragment"},
		{"smtp://mail.example.com?", "", "empty query"},
		{"smtp://mail.example.com?tls=no", "", `unknown SMTP URL parameter "tls"`},
		{"smtp://mail.example.com?starttls=no", "", "starttls takes one value"},
		{"smtp://mail.example.com?starttls=required&starttls=required", "", "starttls takes one value"},
		{"smtp://mail.example.com?starttls=required&x=1", "", `parameter "x"`},
		{"smtp://mail.example.com?%zz", "", "query does not parse"},
		{"smtps://mail.example.com?starttls=required", "", "does not apply to smtps"},
		{"smtp://mail.example.com", secret, "names no user"},
		{"smtp://user@mail.example.com", "", `user "user" but no password`},
		{"smtp://user:" + secret + "@mail.example.com", secret, "both in the SMTP URL and given separately"},
		{"smtp://user:" + secret + "@mail.example.com", "other", "both in the SMTP URL and given separately"},
		// Passwords that break the URL: still not in the error.
		{"smtp://user:hun/ter2@mail.example.com", "", ""},
		{"smtp://user:" + secret + "@mail.example.com:99999", "", "port"},
		{"smtp://user:" + secret + "@mail.example.com/x", "", "path"},
		{"smtp://user:" + secret + "@mail.example.com?" + secret + "=1", "", "parameter"},
		{"smtp://user:hunter2:x@mail.example.com:bad", "", "does not parse"},
		{"smtp://user:" + secret + "@[::1", "", "does not parse"},
	}
	for _, tt := range tests {
		s, err := ParseURL(tt.raw, tt.password)
		if err == nil {
			t.Errorf("ParseURL(%q, %q) = %v, want an error", tt.raw, tt.password, s)
			continue
		}
		msg := err.Error()
		if !strings.Contains(msg, tt.want) {
			t.Errorf("ParseURL(%q): %q, want it to say %q", tt.raw, msg, tt.want)
		}
		for _, leak := range []string{secret, "hun/ter2", "ter2", "other"} {
			if strings.Contains(msg, leak) {
				t.Errorf("ParseURL(%q, %q): error %q shows the password", tt.raw, tt.password, msg)
			}
		}
		if !strings.HasPrefix(msg, "mailer: ") {
			t.Errorf("ParseURL(%q): error %q without the package prefix", tt.raw, msg)
		}
	}
}

func TestSettingsNeverPrintThePassword(t *testing.T) {
	s, err := ParseURL("smtps://apikey@smtp.example.com", "hunter2")
	if err != nil {
		t.Fatal(err)
	}
	if !s.HasPassword() {
		t.Fatal("no password")
	}
	var log strings.Builder
	slog.New(slog.NewTextHandler(&log, nil)).Info("smtp", "settings", s, "ptr", &s)
	slog.New(slog.NewJSONHandler(&log, nil)).Info("smtp", "settings", s)
	for _, out := range []string{s.String(), fmt.Sprint(s), fmt.Sprintf("%v %+v %#v %s", s, s, s, s), fmt.Sprintf("%+v", &s), log.String()} {
		if strings.Contains(out, "hunter2") {
			t.Errorf("password printed: %s", out)
		}
	}
	if want := "smtps://apikey@smtp.example.com:465 (implicit TLS)"; s.String() != want {
		t.Errorf("String() = %q, want %q", s.String(), want)
	}
}

func TestNewSMTPTransportRefusesPlainTextToARemoteHost(t *testing.T) {
	for _, s := range []Settings{
		{Host: "mail.example.com", Port: 25},
		{Host: "10.0.0.1", Port: 25},
		{Host: "", Port: 25},
		{Host: "localhost", Port: 0},
	} {
		if _, err := NewSMTPTransport(s); err == nil {
			t.Errorf("NewSMTPTransport(%v) accepted", s)
		}
	}
	for _, s := range []Settings{
		{Host: "localhost", Port: 25},
		{Host: "mail.example.com", Port: 587, StartTLS: true},
		{Host: "mail.example.com", Port: 465, ImplicitTLS: true},
	} {
		if _, err := NewSMTPTransport(s); err != nil {
			t.Errorf("NewSMTPTransport(%v): %v", s, err)
		}
	}
}

func TestDefaultBackoff(t *testing.T) {
	for attempt, base := range map[int]float64{0: 30, 1: 30, 2: 60, 3: 120, 5: 480, 7: 1920, 8: 3600, 9: 3600, 60: 3600} {
		for range 50 {
			d := DefaultBackoff(attempt).Seconds()
			if d < base*0.8 || d > base*1.2 {
				t.Fatalf("DefaultBackoff(%d) = %vs, want %vs ±20%%", attempt, d, base)
			}
		}
	}
	seen := map[float64]bool{}
	for range 20 {
		seen[DefaultBackoff(3).Seconds()] = true
	}
	if len(seen) < 10 {
		t.Errorf("DefaultBackoff has no jitter: %v", seen)
	}
}
