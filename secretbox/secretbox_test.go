package secretbox

import (
	"bytes"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSealOpen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "k")
	b, created, err := LoadOrCreate(path)
	if err != nil || !created {
		t.Fatalf("create: %v %v", created, err)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v", st.Mode().Perm())
	}
	sealed := b.Seal([]byte("JBSWY3DPEHPK3PXP"), "two-factor user 1")
	if strings.Contains(sealed, "JBSWY3DP") {
		t.Fatal("sealed text shows the secret")
	}
	again, created, err := LoadOrCreate(path)
	if err != nil || created {
		t.Fatalf("reload: %v %v", created, err)
	}
	if got, err := again.Open(sealed, "two-factor user 1"); err != nil || string(got) != "JBSWY3DPEHPK3PXP" {
		t.Fatalf("open after reload: %q %v", got, err)
	}
	// Another row's purpose, an altered byte, garbage: refused.
	if _, err := again.Open(sealed, "two-factor user 2"); !errors.Is(err, ErrOpen) {
		t.Fatalf("other purpose: %v", err)
	}
	flipped := []byte(sealed)
	flipped[len(flipped)-3] ^= 1
	if _, err := again.Open(string(flipped), "two-factor user 1"); err == nil {
		t.Fatal("an altered sealed text opened")
	}
	for _, bad := range []string{"", "v1", "v2.x.y", "v1.00000000.!!", "v1." + strings.Repeat("a", 8) + ".AA"} {
		if _, err := again.Open(bad, "p"); err == nil {
			t.Fatalf("%q opened", bad)
		}
	}
}

func TestRotation(t *testing.T) {
	oldKey, newKey := bytes.Repeat([]byte{1}, KeySize), bytes.Repeat([]byte{2}, KeySize)
	old, _ := New(oldKey)
	sealed := old.Seal([]byte("s"), "p")
	enc := base64.StdEncoding.EncodeToString
	ring, err := Parse("# comment\n" + enc(newKey) + "\n" + enc(oldKey) + "\n")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := ring.Open(sealed, "p"); err != nil || string(got) != "s" {
		t.Fatalf("an old key's secret after rotation: %v", err)
	}
	if resealed := ring.Seal([]byte("s"), "p"); !strings.HasPrefix(resealed, "v1."+ring.keys[0].id+".") {
		t.Fatalf("sealed with the old key: %s", resealed)
	}
	onlyNew, _ := New(newKey)
	if _, err := onlyNew.Open(sealed, "p"); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("without the old key: %v", err)
	}
	if _, err := Parse(enc([]byte("short"))); err == nil {
		t.Fatal("a short key was accepted")
	}
	if _, err := Parse(""); err == nil {
		t.Fatal("an empty ring was accepted")
	}
}

func TestSharedFileRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "k")
	if _, _, err := LoadOrCreate(path); err != nil {
		t.Fatal(err)
	}
	os.Chmod(path, 0o644)
	if _, _, err := LoadOrCreate(path); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("a world-readable key file: %v", err)
	}
}

func TestMAC(t *testing.T) {
	oldKey, newKey := bytes.Repeat([]byte{1}, KeySize), bytes.Repeat([]byte{2}, KeySize)
	old, _ := New(oldKey)
	ring, _ := New(newKey, oldKey)
	m := old.MAC("recovery code", []byte("data"))
	if len(m) != 32 || !bytes.Equal(m, old.MAC("recovery code", []byte("data"))) {
		t.Fatalf("MAC is not a stable 32-byte value: %x", m)
	}
	for name, other := range map[string][]byte{
		"other data":    old.MAC("recovery code", []byte("datb")),
		"other purpose": old.MAC("something else", []byte("data")),
		"other key":     ring.MAC("recovery code", []byte("data")),
	} {
		if bytes.Equal(m, other) {
			t.Fatalf("%s: same MAC", name)
		}
	}
	// After a rotation the old key's MAC is still among the candidates,
	// after the new key's.
	all := ring.MACs("recovery code", []byte("data"))
	if len(all) != 2 || !bytes.Equal(all[0], ring.MAC("recovery code", []byte("data"))) || !bytes.Equal(all[1], m) {
		t.Fatalf("MACs = %x", all)
	}
}
