package authenticators

import (
	"encoding/hex"
	"strings"
	"testing"
)

func mustAAGUID(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, "-", ""))
	if err != nil || len(b) != 16 {
		t.Fatalf("bad AAGUID %q: %v", s, err)
	}
	return b
}

func TestName(t *testing.T) {
	for _, tc := range []struct{ aaguid, want string }{
		{"ea9b8d66-4d01-1d21-3ce4-b6b48cb575d4", "Google Password Manager"},
		{"bada5566-a7aa-401f-bd96-45619a55120d", "1Password"},
		{"d548826e-79b4-db40-a3d8-11116f7e8349", "Bitwarden"},
		{"08987058-cadc-4b81-b6e1-30de50dcbe96", "Windows Hello"},
		{"dd4ec289-e01d-41c9-bb89-70fa845d4bf2", "iCloud Keychain (Managed)"},
	} {
		got, ok := Name(mustAAGUID(t, tc.aaguid))
		if !ok || got != tc.want {
			t.Errorf("Name(%s) = %q, %v; want %q, true", tc.aaguid, got, ok, tc.want)
		}
		got, ok = NameString(strings.ToUpper(tc.aaguid))
		if !ok || got != tc.want {
			t.Errorf("NameString(%s) = %q, %v; want %q, true", strings.ToUpper(tc.aaguid), got, ok, tc.want)
		}
	}
}

func TestNameUnknown(t *testing.T) {
	for name, aaguid := range map[string][]byte{
		"all zero":   make([]byte, 16),
		"nil":        nil,
		"too short":  mustAAGUID(t, "bada5566-a7aa-401f-bd96-45619a55120d")[:15],
		"not listed": mustAAGUID(t, "01020304-0506-0708-090a-0b0c0d0e0f10"),
	} {
		if got, ok := Name(aaguid); ok || got != "" {
			t.Errorf("%s: Name = %q, %v; want unknown", name, got, ok)
		}
	}
	if got, ok := NameString("00000000-0000-0000-0000-000000000000"); ok {
		t.Errorf("NameString(zero) = %q, true; want unknown", got)
	}
}

func TestEmbeddedList(t *testing.T) {
	if len(names) < 40 {
		t.Fatalf("embedded list has %d entries; want the full community list", len(names))
	}
	for k, v := range names {
		if k != strings.ToLower(k) || len(mustAAGUID(t, k)) != 16 || strings.TrimSpace(v) == "" {
			t.Errorf("bad entry %q: %q", k, v)
		}
	}
}
