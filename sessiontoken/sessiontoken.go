// Package sessiontoken makes and reads the value of the session cookie:
// "<public id>.<secret>", both random.
//
//   - The public id (80 bits) finds the session row and is safe to show in
//     URLs and HTML.
//   - The secret (256 bits from crypto/rand) is never stored: the row keeps
//     its SHA-256 hash, compared in constant time. A leaked copy of the
//     database therefore cannot be turned into live cookies.
package sessiontoken

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"strings"
)

const (
	idBytes     = 10 // 80 bits: unguessable, but only a lookup key
	secretBytes = 32 // 256 bits
)

var enc = base32.StdEncoding.WithPadding(base32.NoPadding)

// IDLen is the length of a public id: 16 lower-case base32 characters
// (idBytes·8 bits, 5 bits a character, no padding).
const IDLen = (idBytes*8 + 4) / 5

// Token is a freshly made session credential.
type Token struct {
	ID          string // public id
	Hash        []byte // SHA-256 of the secret, for the database
	CookieValue string // what the browser keeps
}

// New makes a new session id and secret.
func New() Token {
	id := make([]byte, idBytes)
	rand.Read(id) // crypto/rand.Read never fails (Go 1.24+)
	return Rotate(strings.ToLower(enc.EncodeToString(id)))
}

// Rotate makes a new secret for the existing public id: the session keeps its
// identity in lists and URLs while every earlier cookie stops working.
func Rotate(id string) Token {
	secret := make([]byte, secretBytes)
	rand.Read(secret)
	return Token{ID: id, Hash: hash(secret), CookieValue: id + "." + enc.EncodeToString(secret)}
}

// Parse splits a cookie value into its public id and secret, checking the
// shape of both before anything touches the database, so garbage costs
// nothing.
func Parse(value string) (id string, secret []byte, ok bool) {
	id, sec, found := strings.Cut(value, ".")
	if !found || !ValidID(id) || len(sec) != enc.EncodedLen(secretBytes) {
		return "", nil, false
	}
	// Every character must be upper-case base32: the decoder alone accepts
	// some malformed input (the fuzzer found one that decoded to 29 bytes).
	for i := 0; i < len(sec); i++ {
		if c := sec[i]; (c < 'A' || c > 'Z') && (c < '2' || c > '7') {
			return "", nil, false
		}
	}
	secret, err := enc.DecodeString(sec)
	if err != nil || len(secret) != secretBytes {
		return "", nil, false
	}
	// 52 characters carry 260 bits for 256: the decoder ignores the last
	// character's low 4 bits, so 16 spellings would name one secret. Only
	// the canonical one is accepted: a value is the credential, exactly.
	if enc.EncodeToString(secret) != sec {
		return "", nil, false
	}
	return id, secret, true
}

// Matches reports, in constant time, whether secret hashes to storedHash.
func Matches(secret, storedHash []byte) bool {
	return subtle.ConstantTimeCompare(hash(secret), storedHash) == 1
}

// ValidID reports whether s has the shape of a public id. Anything else
// cannot be a session and is refused before a query.
func ValidID(s string) bool {
	if len(s) != IDLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < 'a' || c > 'z') && (c < '2' || c > '7') {
			return false
		}
	}
	return true
}

func hash(secret []byte) []byte {
	sum := sha256.Sum256(secret)
	return sum[:]
}
