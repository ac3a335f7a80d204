// Package password hashes and verifies passwords with argon2id, stored as
// PHC strings ("$argon2id$v=19$m=19456,t=2,p=1$<salt>$<key>").
//
// Every hash costs real memory (19 MiB with DefaultParams()) and CPU time
// (~0.1 s), so a Hasher runs only a bounded number at once: without the
// bound, a flood of sign-in attempts would exhaust the server's memory.
package password

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync/atomic"

	"golang.org/x/crypto/argon2"
)

// Params are the argon2id cost parameters.
type Params struct {
	Memory  uint32 // in KiB
	Time    uint32 // passes over the memory
	Threads uint8  // lanes; also how many goroutines one hash uses
}

// DefaultParams returns OWASP's minimum recommendation for argon2id (19 MiB,
// two passes, one lane): ~115 ms per hash on the machines we measured.
func DefaultParams() Params { return Params{Memory: 19456, Time: 2, Threads: 1} }

// ErrMalformedHash is wrapped by every error about an encoded hash that
// cannot be used: not argon2id, not PHC syntax, or parameters outside the
// bounds below.
var ErrMalformedHash = errors.New("password: malformed hash")

const (
	saltLen = 16 // bytes; RFC 9106 recommends 16
	keyLen  = 32 // bytes

	// Bounds for parameters read back from a stored hash. A row in the
	// database is input too: a tampered or corrupted hash with m=4 GiB or
	// t=1e9 would make one sign-in attempt take the server down, so
	// anything beyond what we would ever configure is rejected before any
	// work is done.
	maxMemory  = 1 << 20 // KiB: 1 GiB
	maxTime    = 16
	maxThreads = 16
	minSaltLen = 8 // the argon2 spec's minimum
	maxSaltLen = 64
	minKeyLen  = 16
	maxKeyLen  = 64

	// maxEncodedLen bounds the string parsed: the longest valid hash under
	// the bounds above is about 220 bytes.
	maxEncodedLen = 256
)

// Hasher hashes and verifies passwords with argon2id, bounding how many
// hashes run at once. Peak memory is about maxConcurrent × Params.Memory.
// It is safe for concurrent use.
type Hasher struct {
	params Params
	// sem holds one token per running hash. Callers beyond its capacity
	// wait (or give up when their context ends) instead of allocating.
	sem chan struct{}
	// queued counts the calls waiting for a slot or hashing.
	queued atomic.Int64
	// inSlot, when set, runs while a slot is held, just before hashing.
	// Tests use it to count how many hashes run at once.
	inSlot func()
	// derived, when set, is told the cost inputs of every hash: tests use
	// it to prove VerifyDummy does exactly the work of a Verify.
	derived func(p Params, saltLen int, keyLen uint32)
	// collect runs the garbage collector after each hash (see
	// CollectAfterHash).
	collect bool
}

// CollectAfterHash makes the Hasher run the garbage collector after each
// hash, before its slot is free for the next: the Params.Memory an argon2id
// hash allocated (19 MiB by default) is reclaimed at once and the next hash
// reuses it, instead of the heap growing to twice its live size with dead
// hash memory before the collector runs on its own. Peak memory under a
// flood of sign-ins is then about maxConcurrent × Params.Memory above the
// rest of the program (make bench, "page views while sign-ins saturate").
// A collection of a small heap costs about a millisecond, against ~100 ms
// for the hash.
func (h *Hasher) CollectAfterHash() *Hasher {
	h.collect = true
	return h
}

// NewHasher returns a Hasher that hashes with p and runs at most
// maxConcurrent hashes at once (values below 1 mean 1: there is no
// unbounded mode).
//
// It panics if p is outside the bounds Verify accepts (for example Time 0
// or Memory above 1 GiB): that is a configuration bug, and hashes made with
// such parameters could never be verified.
func NewHasher(p Params, maxConcurrent int) *Hasher {
	if err := p.check(); err != nil {
		panic(fmt.Sprintf("password: NewHasher: %v", err))
	}
	return &Hasher{params: p, sem: make(chan struct{}, max(maxConcurrent, 1))}
}

// check reports whether p is within the bounds we accept.
func (p Params) check() error {
	switch {
	case p.Time < 1 || p.Time > maxTime:
		return fmt.Errorf("time %d not in [1, %d]", p.Time, maxTime)
	case p.Threads < 1 || p.Threads > maxThreads:
		return fmt.Errorf("threads %d not in [1, %d]", p.Threads, maxThreads)
	case p.Memory < 8*uint32(p.Threads) || p.Memory > maxMemory:
		// argon2 needs at least 8 KiB per lane.
		return fmt.Errorf("memory %d KiB not in [%d, %d]", p.Memory, 8*uint32(p.Threads), maxMemory)
	}
	return nil
}

// Hash returns a PHC string for password with the Hasher's parameters and
// a fresh 16-byte random salt. It waits for a free slot; if ctx ends first
// it returns ctx's error.
func (h *Hasher) Hash(ctx context.Context, password string) (string, error) {
	salt := make([]byte, saltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("password: salt: %w", err)
	}
	key, err := h.derive(ctx, password, salt, h.params, keyLen)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, h.params.Memory, h.params.Time, h.params.Threads,
		base64.RawStdEncoding.EncodeToString(salt),
		base64.RawStdEncoding.EncodeToString(key)), nil
}

// Verify reports whether password matches encoded. The parameters, salt
// and key length come from encoded, not from the Hasher, so hashes made
// before the parameters were raised keep working (see NeedsRehash).
//
// A malformed encoded is an error wrapping ErrMalformedHash, returned
// before any hashing. Otherwise Verify waits for a free slot; if ctx ends
// first it returns ctx's error. A wrong password is (false, nil).
func (h *Hasher) Verify(ctx context.Context, encoded, password string) (bool, error) {
	ph, err := parse(encoded)
	if err != nil {
		return false, err
	}
	key, err := h.derive(ctx, password, ph.salt, ph.params, uint32(len(ph.key)))
	if err != nil {
		return false, err
	}
	// Constant time, so response timing says nothing about how much of
	// the key matched.
	return subtle.ConstantTimeCompare(key, ph.key) == 1, nil
}

// dummySalt and dummyKey stand in for a stored hash in VerifyDummy. Their
// values do not matter, only their lengths, which match what Hash makes.
var (
	dummySalt = make([]byte, saltLen)
	dummyKey  = make([]byte, keyLen)
)

// VerifyDummy spends the same time and memory as a Verify of a hash made
// with the Hasher's parameters, and then discards the result. Call it when
// the email is unknown, so the response time does not reveal whether an
// account exists. Like Verify, it takes a slot (a flood of unknown emails
// is still bounded) and returns early if ctx ends while waiting.
//
// Hashes with older parameters take a different time; NeedsRehash lets
// sign-in upgrade them, so that difference fades.
func (h *Hasher) VerifyDummy(ctx context.Context, password string) {
	key, err := h.derive(ctx, password, dummySalt, h.params, keyLen)
	if err != nil {
		return
	}
	// Do the comparison too, so nothing measurable is skipped.
	subtle.ConstantTimeCompare(key, dummyKey)
}

// derive runs argon2id in a semaphore slot.
func (h *Hasher) derive(ctx context.Context, password string, salt []byte, p Params, keyLen uint32) ([]byte, error) {
	// Checked first because select picks at random among ready cases: a
	// request that is already gone must not take a free slot and burn
	// 100 ms of CPU for nobody.
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	h.queued.Add(1)
	defer h.queued.Add(-1)
	select {
	case h.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-h.sem }()
	if h.inSlot != nil {
		h.inSlot()
	}
	if h.derived != nil {
		h.derived(p, len(salt), keyLen)
	}
	key := argon2.IDKey([]byte(password), salt, p.Time, p.Memory, p.Threads, keyLen)
	if h.collect {
		runtime.GC()
	}
	return key, nil
}

// Queued returns how many hashes are running or waiting for a slot: the
// depth of the hashing queue (for monitoring, and for tests that need to
// know a sign-in is checking its password).
func (h *Hasher) Queued() int { return int(h.queued.Load()) }

// NeedsRehash reports whether encoded should be replaced by a new Hash with
// p: its parameters, salt or key length differ from what Hash makes now, or
// it cannot be parsed at all. Call it after a successful Verify, while the
// plain password is at hand. Any difference counts, not just weaker
// parameters, so lowering them (say, to save memory) also converges.
func NeedsRehash(encoded string, p Params) bool {
	ph, err := parse(encoded)
	if err != nil {
		return true
	}
	return ph.params != p || len(ph.salt) != saltLen || len(ph.key) != keyLen
}

// phc is a parsed argon2id PHC string.
type phc struct {
	params    Params
	salt, key []byte
}

// parse reads "$argon2id$v=19$m=<m>,t=<t>,p=<p>$<salt>$<key>" strictly:
// one version, fields in this order, canonical decimals and base64 without
// padding, every value within bounds. Strict parsing means one hash has
// exactly one spelling, and nothing odd reaches argon2.
//
// Errors never quote the input: a hash is a secret worth keeping out of logs.
func parse(encoded string) (phc, error) {
	malformed := func(what string) (phc, error) {
		return phc{}, fmt.Errorf("%w: %s", ErrMalformedHash, what)
	}
	if len(encoded) > maxEncodedLen {
		return malformed("too long")
	}
	// The base64 decoder skips newlines; refuse them so they cannot hide
	// inside an otherwise valid hash.
	if strings.ContainsAny(encoded, "\r\n") {
		return malformed("contains a line break")
	}
	fields := strings.Split(encoded, "$")
	if len(fields) != 6 || fields[0] != "" {
		return malformed("not a PHC string")
	}
	if fields[1] != "argon2id" {
		return malformed("not argon2id")
	}
	if fields[2] != fmt.Sprintf("v=%d", argon2.Version) {
		return malformed("unsupported version")
	}

	params := strings.Split(fields[3], ",")
	if len(params) != 3 {
		return malformed("want parameters m, t, p")
	}
	m, err := decimal(params[0], "m=", maxMemory)
	if err != nil {
		return malformed("memory: " + err.Error())
	}
	t, err := decimal(params[1], "t=", maxTime)
	if err != nil {
		return malformed("time: " + err.Error())
	}
	p, err := decimal(params[2], "p=", maxThreads)
	if err != nil {
		return malformed("threads: " + err.Error())
	}
	ph := phc{params: Params{Memory: uint32(m), Time: uint32(t), Threads: uint8(p)}}
	if err := ph.params.check(); err != nil {
		return malformed(err.Error())
	}

	if ph.salt, err = decodeBase64(fields[4], minSaltLen, maxSaltLen); err != nil {
		return malformed("salt: " + err.Error())
	}
	if ph.key, err = decodeBase64(fields[5], minKeyLen, maxKeyLen); err != nil {
		return malformed("key: " + err.Error())
	}
	return ph, nil
}

// decimal parses "<prefix><digits>" as a canonical decimal (no sign, no
// leading zero) no larger than limit.
func decimal(s, prefix string, limit uint64) (uint64, error) {
	digits, ok := strings.CutPrefix(s, prefix)
	switch {
	case !ok:
		return 0, fmt.Errorf("want %q", prefix)
	case digits == "":
		return 0, errors.New("no value")
	case len(digits) > 1 && digits[0] == '0':
		return 0, errors.New("leading zero")
	}
	var n uint64
	for _, c := range []byte(digits) {
		if c < '0' || c > '9' {
			return 0, errors.New("not a decimal")
		}
		n = n*10 + uint64(c-'0')
		if n > limit {
			return 0, fmt.Errorf("above %d", limit)
		}
	}
	return n, nil
}

// decodeBase64 decodes unpadded standard base64, rejecting non-canonical
// trailing bits, and checks the decoded length.
func decodeBase64(s string, minLen, maxLen int) ([]byte, error) {
	b, err := base64.RawStdEncoding.Strict().DecodeString(s)
	switch {
	case err != nil:
		return nil, errors.New("bad base64")
	case len(b) < minLen || len(b) > maxLen:
		return nil, fmt.Errorf("length %d not in [%d, %d]", len(b), minLen, maxLen)
	}
	return b, nil
}
