package twofactor

import (
	"bytes"
	"crypto/sha256"
	"testing"
	"time"

	"github.com/pquerna/otp"

	"doorman/secretbox"
)

func TestMatch(t *testing.T) {
	secret := NewSecret()
	now := time.Unix(1_800_000_015, 0)
	at := Step(now)
	for d := int64(-3); d <= 3; d++ {
		code, err := Code(secret, at+d)
		if err != nil {
			t.Fatal(err)
		}
		step, ok := Match(secret, code[:3]+" "+code[3:], now)
		if want := d >= -Skew && d <= Skew; ok != want || (ok && step != at+d) {
			// Two steps can share a code by chance (1 in a million).
			if other, _ := Code(secret, step); ok && other == code {
				continue
			}
			t.Fatalf("step %+d: ok=%v step=%d", d, ok, step)
		}
	}
	for _, bad := range []string{"", "12345", "1234567", "abcdef"} {
		if _, ok := Match(secret, bad, now); ok {
			t.Fatalf("%q matched", bad)
		}
	}
}

func TestURI(t *testing.T) {
	secret := NewSecret()
	k, err := otp.NewKeyFromURL(URI(secret, "alice+x@example.com"))
	if err != nil {
		t.Fatal(err)
	}
	if k.Issuer() != "Doorman" || k.AccountName() != "alice+x@example.com" || k.Secret() != secret ||
		k.Period() != 30 || k.Digits() != otp.DigitsSix || k.Algorithm() != otp.AlgorithmSHA1 {
		t.Fatalf("%s: issuer %q account %q", k.URL(), k.Issuer(), k.AccountName())
	}
	if len(secret) != 32 || Grouped("ABCDEFGHIJ") != "ABCD EFGH IJ" {
		t.Fatalf("secret %q, grouped %q", secret, Grouped("ABCDEFGHIJ"))
	}
	png, err := QR(URI(secret, "a@example.com"), 256)
	if err != nil || string(png[1:4]) != "PNG" {
		t.Fatalf("QR: %v", err)
	}
}

func TestRecoveryCodes(t *testing.T) {
	oldKey, newKey := bytes.Repeat([]byte{1}, secretbox.KeySize), bytes.Repeat([]byte{2}, secretbox.KeySize)
	box, _ := secretbox.New(oldKey)
	codes, hashes := NewRecoveryCodes(box, 7)
	seen := map[string]bool{}
	for i, c := range codes {
		if !IsRecoveryCode(c) || seen[c] || len(c) != 11 {
			t.Fatalf("code %q", c)
		}
		seen[c] = true
		// Stored keyed: not the code's SHA-256, and the code (typed with
		// spaces, without its dash) finds it first.
		sum := sha256.Sum256([]byte(c[:5] + c[6:]))
		if len(hashes[i]) != 33 || hashes[i][0] != 1 || bytes.Contains(hashes[i], sum[:]) || bytes.Equal(hashes[i], LegacyRecoveryHash(c)) {
			t.Fatalf("code %d stored as %x", i, hashes[i])
		}
		got := RecoveryHashes(box, 7, " "+c[:5]+c[6:]+" ")
		if len(got) != 2 || !bytes.Equal(got[0], hashes[i]) || !bytes.Equal(got[1], sum[:]) {
			t.Fatal("the candidates do not normalise, or lack the keyed or the legacy hash")
		}
		// Another user's, another code's: different.
		if bytes.Equal(RecoveryHashes(box, 8, c)[0], hashes[i]) || bytes.Equal(RecoveryHashes(box, 7, codes[(i+1)%len(codes)])[0], hashes[i]) {
			t.Fatal("a code hashes the same for two users, or two codes collide")
		}
	}
	// After a key rotation the old key's hash is still a candidate.
	ring, _ := secretbox.New(newKey, oldKey)
	if got := RecoveryHashes(ring, 7, codes[0]); len(got) != 3 || bytes.Equal(got[0], hashes[0]) || !bytes.Equal(got[1], hashes[0]) {
		t.Fatal("after a rotation, the old key's hash is not a candidate")
	}
	if len(codes) != RecoveryCodes || IsRecoveryCode("123456") || IsRecoveryCode("00000-00000") {
		t.Fatal("shape check")
	}
}
