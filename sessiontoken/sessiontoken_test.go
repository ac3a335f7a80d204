package sessiontoken

import (
	"strings"
	"testing"
)

func TestNewParseRoundTrip(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		tok := New()
		if seen[tok.ID] {
			t.Fatal("duplicate id")
		}
		seen[tok.ID] = true
		id, secret, ok := Parse(tok.CookieValue)
		if !ok || id != tok.ID {
			t.Fatalf("Parse(%q) = %q, %v", tok.CookieValue, id, ok)
		}
		if !Matches(secret, tok.Hash) {
			t.Fatal("secret does not match its own hash")
		}
		if strings.Contains(tok.CookieValue, string(tok.Hash)) || len(secret) != 32 {
			t.Fatal("unexpected token shape")
		}
	}
}

func TestParseRejects(t *testing.T) {
	good := New().CookieValue
	id, sec, _ := strings.Cut(good, ".")
	for _, v := range []string{
		"", ".", id, id + ".", "." + sec, id + "." + sec + "A", id + "." + sec[:len(sec)-1],
		strings.ToUpper(id) + "." + sec, id[:15] + "!." + sec, id + "." + strings.ToLower(sec),
		"x" + good, good + "x", id + "." + sec + "." + sec,
	} {
		if _, _, ok := Parse(v); ok {
			t.Errorf("Parse(%q) accepted", v)
		}
	}
	// The last character holds 1 bit of the secret and 4 the decoder
	// ignores: of its 32 values only the 2 canonical ones (that bit 0 or
	// 1, "A" or "Q") are accepted, each a different secret; the other 30
	// would be second spellings of those two.
	secrets, accepted := map[string]bool{}, 0
	for _, c := range "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567" {
		if _, s, ok := Parse(id + "." + sec[:len(sec)-1] + string(c)); ok {
			secrets[string(s)] = true
			accepted++
		} else if c == 'A' || c == 'Q' {
			t.Errorf("canonical last character %c refused", c)
		}
	}
	if accepted != 2 || len(secrets) != 2 {
		t.Errorf("%d spellings of the last character accepted (%d distinct secrets), want 2 (2)", accepted, len(secrets))
	}
}

func TestMatchesRejectsOtherSecrets(t *testing.T) {
	a, b := New(), New()
	_, secretB, _ := Parse(b.CookieValue)
	if Matches(secretB, a.Hash) {
		t.Fatal("b's secret matched a's hash")
	}
}

func FuzzParse(f *testing.F) {
	f.Add(New().CookieValue)
	f.Add("")
	f.Add("aaaaaaaaaaaaaaaa.")
	f.Fuzz(func(t *testing.T, v string) {
		id, secret, ok := Parse(v)
		if ok && (!ValidID(id) || len(secret) != secretBytes) {
			t.Fatalf("Parse(%q) accepted a malformed value", v)
		}
	})
}

func TestIDLenMatchesEncoding(t *testing.T) {
	if got := enc.EncodedLen(idBytes); got != IDLen {
		t.Fatalf("IDLen = %d, encoding gives %d", IDLen, got)
	}
}
