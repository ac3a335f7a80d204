package twofactor

import (
	"testing"
	"time"

	"github.com/pquerna/otp"
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
	codes, hashes := NewRecoveryCodes()
	seen := map[string]bool{}
	for i, c := range codes {
		if !IsRecoveryCode(c) || seen[c] || len(c) != 11 {
			t.Fatalf("code %q", c)
		}
		seen[c] = true
		if string(RecoveryHash(" "+c[:5]+c[6:]+" ")) != string(hashes[i]) || string(RecoveryHash(c)) == string(RecoveryHash(codes[(i+1)%len(codes)])) {
			t.Fatal("hash does not normalise, or collides")
		}
	}
	if len(codes) != RecoveryCodes || IsRecoveryCode("123456") || IsRecoveryCode("00000-00000") {
		t.Fatal("shape check")
	}
}
