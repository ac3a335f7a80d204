// Package twofactor is the arithmetic of the second factor: authenticator
// app (TOTP, RFC 6238) secrets and codes, recovery codes, and the QR code
// an authenticator app scans. It stores nothing; the replay guard (the last
// accepted time step) is the store's, so that it holds across instances.
package twofactor

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
	qrcode "github.com/skip2/go-qrcode"

	"doorman/secretbox"
)

// What every authenticator app reads: SHA1, 6 digits, 30 s.
const (
	Issuer = "Doorman"
	Period = 30
	Digits = 6
	// Skew is how many steps either side of now a code may be from (a
	// phone clock a little off, a code typed as it changed).
	Skew = 1
	// RecoveryCodes is how many recovery codes a user gets at a time.
	RecoveryCodes = 10
)

// NewSecret returns a random 160-bit secret, base32 without padding (what
// RFC 4226 recommends and apps expect).
func NewSecret() string {
	b := make([]byte, 20)
	rand.Read(b)
	return base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b)
}

// URI is the otpauth:// URI of secret for account (the user's email).
func URI(secret, account string) string {
	v := url.Values{}
	v.Set("secret", secret)
	v.Set("issuer", Issuer)
	v.Set("algorithm", "SHA1")
	v.Set("digits", fmt.Sprint(Digits))
	v.Set("period", fmt.Sprint(Period))
	return "otpauth://totp/" + url.PathEscape(Issuer) + ":" + url.PathEscape(account) + "?" + v.Encode()
}

// Grouped is secret in groups of four, for typing by hand.
func Grouped(secret string) string {
	var b strings.Builder
	for i, r := range secret {
		if i > 0 && i%4 == 0 {
			b.WriteByte(' ')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// QR is a PNG of uri, about size pixels square.
func QR(uri string, size int) ([]byte, error) {
	return qrcode.Encode(uri, qrcode.Medium, size)
}

// Step is the TOTP time step of t.
func Step(t time.Time) int64 { return t.Unix() / Period }

// Code is the code of secret at step (what the app shows then).
func Code(secret string, step int64) (string, error) {
	return totp.GenerateCodeCustom(secret, time.Unix(step*Period, 0), totp.ValidateOpts{
		Period: Period, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1,
	})
}

// Match finds which step within Skew of now code belongs to; ok is false
// when none. Each candidate is compared in constant time. The caller must
// still refuse a step not later than the last accepted one.
func Match(secret, code string, now time.Time) (step int64, ok bool) {
	code = NormaliseCode(code)
	if len(code) != Digits {
		return 0, false
	}
	at := Step(now)
	found := false
	for s := at - Skew; s <= at+Skew; s++ {
		want, err := Code(secret, s)
		if err != nil {
			return 0, false
		}
		if subtle.ConstantTimeCompare([]byte(want), []byte(code)) == 1 && !found {
			step, found = s, true
		}
	}
	return step, found
}

// NormaliseCode drops the spaces and dashes people type or paste.
func NormaliseCode(s string) string {
	return strings.Map(func(r rune) rune {
		if r == ' ' || r == '-' || r == '\t' {
			return -1
		}
		return r
	}, strings.TrimSpace(s))
}

// recoveryAlphabet has no 0/O, 1/l/I: codes are read off paper.
const recoveryAlphabet = "abcdefghjkmnpqrstuvwxyz23456789"

// NewRecoveryCodes returns RecoveryCodes fresh codes ("xxxxx-xxxxx", about
// 49 bits each) for the user userID and the values to store: each code's
// keyed hash (RecoveryHashes) under box's current key.
func NewRecoveryCodes(box *secretbox.Box, userID int64) (codes []string, hashes [][]byte) {
	for range RecoveryCodes {
		b := make([]byte, 10)
		rand.Read(b)
		var c strings.Builder
		for i, x := range b {
			if i == 5 {
				c.WriteByte('-')
			}
			c.WriteByte(recoveryAlphabet[int(x)%len(recoveryAlphabet)])
		}
		codes = append(codes, c.String())
		hashes = append(hashes, keyedRecoveryHash(box.MAC(recoveryPurpose, recoveryInput(userID, c.String()))))
	}
	return codes, hashes
}

// IsRecoveryCode reports whether s, normalised, has a recovery code's shape.
func IsRecoveryCode(s string) bool {
	s = strings.ToLower(NormaliseCode(s))
	if len(s) != 10 {
		return false
	}
	for _, r := range s {
		if !strings.ContainsRune(recoveryAlphabet, r) {
			return false
		}
	}
	return true
}

// What is stored of a recovery code. 49 random bits need no slow hash
// against online guessing (throttled), but a plain hash of them can be
// checked against every possible code offline, all users at once, in a GPU
// pass: so the stored value is keyed, with a key a copy of the database
// does not hold (package secretbox, the key ring kept beside it), and the
// user's id is in the input, so one code hashes differently for two users
// and nothing computed for one user serves another.
//
// A stored value is either 33 bytes, recoveryKeyed then HMAC-SHA-256
// (secretbox.Box.MAC, purpose recoveryPurpose) of recoveryInput, or 32
// bytes, the plain SHA-256 of the normalised code: codes made before keyed
// hashes, which keep working until used or replaced (the user's next "new
// recovery codes" stores keyed ones only).
const (
	recoveryPurpose = "recovery code"
	recoveryKeyed   = 0x01
)

// recoveryInput is what the MAC covers: the user's id and the normalised
// code (digits, then a byte no code has, then the code: unambiguous).
func recoveryInput(userID int64, code string) []byte {
	return []byte(strconv.FormatInt(userID, 10) + ":" + strings.ToLower(NormaliseCode(code)))
}

func keyedRecoveryHash(mac []byte) []byte { return append([]byte{recoveryKeyed}, mac...) }

// RecoveryHashes are the values the user userID's code may be stored as:
// its keyed hash under each key of box's ring (the current key first; the
// older ones for codes made before a key rotation), then its plain SHA-256
// (codes made before keyed hashes). The store marks used the unused code
// that has any of them.
func RecoveryHashes(box *secretbox.Box, userID int64, code string) [][]byte {
	var out [][]byte
	for _, mac := range box.MACs(recoveryPurpose, recoveryInput(userID, code)) {
		out = append(out, keyedRecoveryHash(mac))
	}
	return append(out, LegacyRecoveryHash(code))
}

// LegacyRecoveryHash is how codes were stored before keyed hashes: SHA-256
// of the normalised code. Only RecoveryHashes (to accept such a code) and
// tests (to store one) use it; nothing new is stored this way.
func LegacyRecoveryHash(code string) []byte {
	sum := sha256.Sum256([]byte(strings.ToLower(NormaliseCode(code))))
	return sum[:]
}
