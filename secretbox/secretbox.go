// Package secretbox seals small secrets (two-factor seeds, the bodies of
// queued mail) with AES-256-GCM, and keys hashes (recovery codes) with
// HMAC-SHA-256, under keys that live outside the database: a stolen
// database file or dump alone does not give away anyone's second factor or
// a usable emailed link.
//
// A key ring is one or more 32-byte keys, base64, one per line (in a file)
// or comma-separated (in an environment variable). The first key seals; any
// of them opens, found by the key id in the sealed text. To rotate: put a
// new key first and keep the old ones after it until every secret has been
// sealed again (a secret is re-sealed when its owner sets two-factor up
// anew); then drop the old key.
package secretbox

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
)

// KeySize is the size of each key: AES-256.
const KeySize = 32

// ErrUnknownKey means the sealed text names a key the ring does not hold
// (the instance was started with another key file).
var ErrUnknownKey = errors.New("secretbox: sealed with a key this server does not have")

// ErrOpen means the sealed text is malformed or was altered (or sealed for
// another purpose: the additional data differs).
var ErrOpen = errors.New("secretbox: cannot open: altered, or not sealed for this")

type key struct {
	id   string // first 8 hex digits of SHA-256 of the key
	aead cipher.AEAD
	raw  []byte // for MAC keys derived from it
}

// Box is a key ring. Safe for concurrent use.
type Box struct {
	keys []key
}

// New makes a ring from raw keys, the first sealing.
func New(raw ...[]byte) (*Box, error) {
	if len(raw) == 0 {
		return nil, errors.New("secretbox: no key")
	}
	b := &Box{}
	for i, k := range raw {
		if len(k) != KeySize {
			return nil, fmt.Errorf("secretbox: key %d is %d bytes, want %d", i+1, len(k), KeySize)
		}
		block, err := aes.NewCipher(k)
		if err != nil {
			return nil, err
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, err
		}
		sum := sha256.Sum256(k)
		b.keys = append(b.keys, key{id: hex.EncodeToString(sum[:4]), aead: aead, raw: append([]byte(nil), k...)})
	}
	return b, nil
}

// Parse reads a ring from text: base64 keys separated by newlines or
// commas; blank lines and lines starting with # are ignored.
func Parse(text string) (*Box, error) {
	var raw [][]byte
	for _, line := range strings.Split(text, "\n") {
		if line = strings.TrimSpace(line); strings.HasPrefix(line, "#") {
			continue
		}
		for _, field := range strings.Split(line, ",") {
			if field = strings.TrimSpace(field); field == "" {
				continue
			}
			k, err := base64.StdEncoding.DecodeString(field)
			if err != nil {
				return nil, fmt.Errorf("secretbox: a key is not base64: %w", err)
			}
			raw = append(raw, k)
		}
	}
	return New(raw...)
}

// LoadOrCreate reads the ring in path, or creates the file (mode 0600, one
// new random key) when there is none; created says which. A file that
// others may read is refused, as the database is.
func LoadOrCreate(path string) (b *Box, created bool, err error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		k := make([]byte, KeySize)
		rand.Read(k)
		text := "# Doorman's secret key: seals two-factor secrets and queued mail, keys recovery codes. Keep it apart from the database, back it up.\n" +
			base64.StdEncoding.EncodeToString(k) + "\n"
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return nil, false, fmt.Errorf("secretbox: create %s: %w", path, err)
		}
		if _, err := f.WriteString(text); err != nil {
			f.Close()
			return nil, false, fmt.Errorf("secretbox: write %s: %w", path, err)
		}
		if err := f.Close(); err != nil {
			return nil, false, fmt.Errorf("secretbox: write %s: %w", path, err)
		}
		b, err := New(k)
		return b, true, err
	}
	if err != nil {
		return nil, false, fmt.Errorf("secretbox: %w", err)
	}
	b, err = parseFile(path, data)
	return b, false, err
}

// Load reads the ring in path, which must exist: for the operator's
// commands, which must never make up a key the server does not have.
func Load(path string) (*Box, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("secretbox: %w", err)
	}
	return parseFile(path, data)
}

// parseFile parses the ring read from path, refusing a file that others
// may read, as the database is.
func parseFile(path string, data []byte) (*Box, error) {
	if st, err := os.Stat(path); err == nil && st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("secretbox: %s may be read by other users (mode %v): chmod 600 it", path, st.Mode().Perm())
	}
	b, err := Parse(string(data))
	if err != nil {
		return nil, fmt.Errorf("%w (in %s)", err, path)
	}
	return b, nil
}

// Seal encrypts plain for purpose (additional data binding the sealed text
// to where it is stored, e.g. "two-factor user 42": a sealed secret copied
// to another row does not open there).
func (b *Box) Seal(plain []byte, purpose string) string {
	k := b.keys[0]
	nonce := make([]byte, k.aead.NonceSize())
	rand.Read(nonce)
	out := k.aead.Seal(nonce, nonce, plain, []byte(purpose))
	return "v1." + k.id + "." + base64.RawURLEncoding.EncodeToString(out)
}

// Open decrypts what Seal made for the same purpose.
func (b *Box) Open(sealed, purpose string) ([]byte, error) {
	parts := strings.Split(sealed, ".")
	if len(parts) != 3 || parts[0] != "v1" {
		return nil, ErrOpen
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return nil, ErrOpen
	}
	for _, k := range b.keys {
		if k.id != parts[1] {
			continue
		}
		n := k.aead.NonceSize()
		if len(raw) < n {
			return nil, ErrOpen
		}
		plain, err := k.aead.Open(nil, raw[:n], raw[n:], []byte(purpose))
		if err != nil {
			return nil, ErrOpen
		}
		return plain, nil
	}
	return nil, ErrUnknownKey
}

// MAC is a keyed hash (HMAC-SHA-256) of data for purpose, under a key
// derived from the sealing key for that purpose alone (the AES key itself
// is never used as an HMAC key, and two purposes never share one). Stored
// instead of a plain hash of a short secret (a recovery code), it cannot be
// checked against guesses without the key, which a copy of the database
// does not hold.
func (b *Box) MAC(purpose string, data []byte) []byte {
	return b.keys[0].mac(purpose, data)
}

// MACs is MAC under every key of the ring, the sealing key's first: what a
// MAC stored before a key rotation may be.
func (b *Box) MACs(purpose string, data []byte) [][]byte {
	out := make([][]byte, len(b.keys))
	for i, k := range b.keys {
		out[i] = k.mac(purpose, data)
	}
	return out
}

func (k key) mac(purpose string, data []byte) []byte {
	derive := hmac.New(sha256.New, k.raw)
	derive.Write([]byte("doorman secretbox mac key: " + purpose))
	m := hmac.New(sha256.New, derive.Sum(nil))
	m.Write(data)
	return m.Sum(nil)
}
