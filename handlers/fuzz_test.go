package handlers

import (
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzSafeNext: whatever comes in, what comes out is "" or a path on this
// site.
func FuzzSafeNext(f *testing.F) {
	for _, s := range []string{"/settings", "//evil.example", "/\\evil", "https://evil.example", "/%2f%2fevil", "/\t/evil", "javascript:alert(1)"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, next string) {
		got := safeNext(next)
		if got == "" {
			return
		}
		if got != next || got[0] != '/' || (len(got) > 1 && (got[1] == '/' || got[1] == '\\')) {
			t.Fatalf("safeNext(%q) = %q", next, got)
		}
		u, err := url.Parse(got)
		if err != nil || u.Host != "" || u.Scheme != "" {
			t.Fatalf("safeNext(%q) = %q leaves the site", next, got)
		}
		for _, r := range got {
			if r < ' ' || r == 0x7f {
				t.Fatalf("safeNext(%q) kept a control character", next)
			}
		}
	})
}

// FuzzEmail: a normalised email that passes validation is plain printable
// ASCII with one @, short enough, and normalising it again changes nothing.
func FuzzEmail(f *testing.F) {
	for _, s := range []string{"alice@example.com", " Alice@Example.COM ", "аlice@example.com", "a@b", "\"a b\"@example.com", "a@b.c@d.e", "<a@b.c>"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		email := normaliseEmail(raw)
		if emailError(email) != "" {
			return
		}
		if !utf8.ValidString(email) || len(email) > maxEmailBytes || strings.Count(email, "@") < 1 || normaliseEmail(email) != email {
			t.Fatalf("accepted %q as %q", raw, email)
		}
		for i := 0; i < len(email); i++ {
			if email[i] <= ' ' || email[i] >= 0x7f {
				t.Fatalf("accepted %q with byte %#x", email, email[i])
			}
		}
	})
}
