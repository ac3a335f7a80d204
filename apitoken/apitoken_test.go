package apitoken

import (
	"strings"
	"testing"

	"doorman/sessiontoken"
)

func TestRoundTrip(t *testing.T) {
	for _, prefix := range []string{PersonalPrefix, AppPrefix} {
		tok := New(prefix)
		if !strings.HasPrefix(tok.Value, prefix) || strings.Count(tok.Value, "_") != 3 {
			t.Fatalf("token %q", tok.Value)
		}
		p, id, secret, ok := Parse(tok.Value)
		if !ok || p != prefix || id != tok.ID || !sessiontoken.Matches(secret, tok.Hash) {
			t.Fatalf("parse %q: %v %q %q", tok.Value, ok, p, id)
		}
		if New(prefix).Value == tok.Value {
			t.Fatal("two tokens alike")
		}
	}
	good := New(PersonalPrefix).Value
	for _, bad := range []string{"", "doorman_pat_", "doorman_pat_abc", good[:len(good)-1], strings.Replace(good, "doorman_pat_", "doorman_xyz_", 1),
		strings.ToLower(good), good + "A", "Bearer " + good, strings.Replace(good, "_", ".", 3)} {
		if _, _, _, ok := Parse(bad); ok {
			t.Errorf("%q parsed", bad)
		}
	}
}
