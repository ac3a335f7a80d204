package password

import (
	"context"
	"errors"
	"regexp"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fast keeps most tests quick: argon2's minimum memory for one lane, one pass.
var fast = Params{Memory: 64, Time: 1, Threads: 1}

// Reference vectors made with the argon2 reference implementation (the
// Debian argon2 CLI), not with the code under test, e.g.:
//
//	echo -n "correct horse battery staple" | argon2 somesaltSOMESALT -id -m 6 -t 2 -p 1 -l 32 -e
var vectors = []struct {
	name, password, encoded string
}{
	{"small", "correct horse battery staple",
		"$argon2id$v=19$m=64,t=2,p=1$c29tZXNhbHRTT01FU0FMVA$yl7RTbf/gxH9bo4hWiuC/gg9s7GA3P89BqgQ6oypODk"},
	// Memory not a multiple of 4×lanes, two lanes, 12-byte salt, 24-byte key.
	{"odd params", "pässwörd🔑",
		"$argon2id$v=19$m=100,t=3,p=2$c2FsdHNhbHRzYWx0$wEqeyLYymZ6FMnwngTBeOnirpVovenCt"},
	{"default params", "hunter2",
		"$argon2id$v=19$m=19456,t=2,p=1$MDEyMzQ1Njc4OWFiY2RlZg$nUxirfVK2I/vOT6f2ly2wSgjwZ1oqwTLCmrcpDyjicA"},
}

func TestVerifyReferenceVectors(t *testing.T) {
	// The Hasher's own params differ from every vector's: Verify must
	// take them from the string.
	h := NewHasher(fast, 2)
	ctx := context.Background()
	for _, v := range vectors {
		t.Run(v.name, func(t *testing.T) {
			ok, err := h.Verify(ctx, v.encoded, v.password)
			if err != nil || !ok {
				t.Errorf("Verify(right password) = %v, %v; want true, nil", ok, err)
			}
			ok, err = h.Verify(ctx, v.encoded, v.password+"x")
			if err != nil || ok {
				t.Errorf("Verify(wrong password) = %v, %v; want false, nil", ok, err)
			}
		})
	}
}

func TestParseParams(t *testing.T) {
	tests := []struct {
		encoded         string
		want            Params
		saltLen, keyLen int
	}{
		{vectors[0].encoded, Params{Memory: 64, Time: 2, Threads: 1}, 16, 32},
		{vectors[1].encoded, Params{Memory: 100, Time: 3, Threads: 2}, 12, 24},
		{vectors[2].encoded, DefaultParams(), 16, 32},
	}
	for _, tt := range tests {
		ph, err := parse(tt.encoded)
		if err != nil {
			t.Fatalf("parse(%q): %v", tt.encoded, err)
		}
		if ph.params != tt.want || len(ph.salt) != tt.saltLen || len(ph.key) != tt.keyLen {
			t.Errorf("parse(%q) = %+v, salt %d, key %d bytes; want %+v, %d, %d",
				tt.encoded, ph.params, len(ph.salt), len(ph.key), tt.want, tt.saltLen, tt.keyLen)
		}
	}
}

func TestHashVerify(t *testing.T) {
	h := NewHasher(fast, 2)
	ctx := context.Background()
	format := regexp.MustCompile(`^\$argon2id\$v=19\$m=64,t=1,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$`)
	tests := []struct {
		name, password, wrong string
	}{
		{"ascii", "correct horse battery staple", "correct horse battery stapl"},
		{"empty", "", " "},
		{"unicode", "pässwörd🔑", "passwörd🔑"},
		{"NUL inside", "a\x00b", "a\x00c"},
		{"case differs", "Secret", "secret"},
		{"long", strings.Repeat("long password ", 100), strings.Repeat("long password ", 99)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			encoded, err := h.Hash(ctx, tt.password)
			if err != nil {
				t.Fatalf("Hash: %v", err)
			}
			if !format.MatchString(encoded) {
				t.Errorf("Hash = %q, want it to match %s", encoded, format)
			}
			if ok, err := h.Verify(ctx, encoded, tt.password); err != nil || !ok {
				t.Errorf("Verify(right password) = %v, %v; want true, nil", ok, err)
			}
			if ok, err := h.Verify(ctx, encoded, tt.wrong); err != nil || ok {
				t.Errorf("Verify(%q) = %v, %v; want false, nil", tt.wrong, ok, err)
			}
			again, err := h.Hash(ctx, tt.password)
			if err != nil {
				t.Fatalf("Hash: %v", err)
			}
			if again == encoded {
				t.Errorf("two hashes of the same password are equal (%q): the salt is not random", encoded)
			}
			if NeedsRehash(encoded, fast) {
				t.Errorf("NeedsRehash(fresh hash, same params) = true")
			}
		})
	}
}

func TestDefaultParams(t *testing.T) {
	h := NewHasher(DefaultParams(), 1)
	ctx := context.Background()
	encoded, err := h.Hash(ctx, "hunter2")
	if err != nil {
		t.Fatal(err)
	}
	if want := "$argon2id$v=19$m=19456,t=2,p=1$"; !strings.HasPrefix(encoded, want) {
		t.Errorf("Hash = %q, want prefix %q", encoded, want)
	}
	if ok, err := h.Verify(ctx, encoded, "hunter2"); err != nil || !ok {
		t.Errorf("Verify = %v, %v; want true, nil", ok, err)
	}
	if NeedsRehash(encoded, DefaultParams()) {
		t.Error("NeedsRehash(fresh default hash, DefaultParams()) = true")
	}
}

func TestVerifyMalformed(t *testing.T) {
	const (
		salt = "c29tZXNhbHRTT01FU0FMVA"                      // 16 bytes
		key  = "yl7RTbf/gxH9bo4hWiuC/gg9s7GA3P89BqgQ6oypODk" // 32 bytes
		ok   = "$argon2id$v=19$m=64,t=2,p=1$" + salt + "$" + key
	)
	with := func(params string) string { return "$argon2id$v=19$" + params + "$" + salt + "$" + key }
	tests := []struct {
		name, encoded string
	}{
		{"empty", ""},
		{"plain text", "hunter2"},
		{"bcrypt", "$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy"},
		{"argon2i", strings.Replace(ok, "argon2id", "argon2i", 1)},
		{"argon2d", strings.Replace(ok, "argon2id", "argon2d", 1)},
		{"version 16", strings.Replace(ok, "v=19", "v=16", 1)},
		{"no version", "$argon2id$m=64,t=2,p=1$" + salt + "$" + key},
		{"no leading $", ok[1:]},
		{"trailing $", ok + "$"},
		{"missing key", "$argon2id$v=19$m=64,t=2,p=1$" + salt},
		{"params out of order", with("t=2,m=64,p=1")},
		{"missing param", with("m=64,t=2")},
		{"extra param", with("m=64,t=2,p=1,k=1")},
		{"spaces", with("m=64, t=2, p=1")},
		{"memory 0", with("m=0,t=2,p=1")},
		{"memory below 8 KiB per lane", with("m=15,t=2,p=2")},
		{"memory above 1 GiB", with("m=1048577,t=2,p=1")},
		{"memory overflows uint32", with("m=4294967296,t=2,p=1")},
		{"memory huge", with("m=99999999999999999999999,t=2,p=1")},
		{"time 0", with("m=64,t=0,p=1")},
		{"time 17", with("m=64,t=17,p=1")},
		{"threads 0", with("m=64,t=2,p=0")},
		{"threads 17", with("m=1024,t=2,p=17")},
		{"threads above uint8", with("m=4096,t=2,p=257")},
		{"leading zero", with("m=064,t=2,p=1")},
		{"plus sign", with("m=+64,t=2,p=1")},
		{"negative", with("m=-64,t=2,p=1")},
		{"hex", with("m=0x40,t=2,p=1")},
		{"empty value", with("m=,t=2,p=1")},
		{"salt not base64", "$argon2id$v=19$m=64,t=2,p=1$!!!!$" + key},
		{"salt padded", "$argon2id$v=19$m=64,t=2,p=1$" + salt + "==$" + key},
		{"key in URL alphabet", "$argon2id$v=19$m=64,t=2,p=1$" + salt + "$" + strings.ReplaceAll(key, "/", "_")},
		{"salt too short", "$argon2id$v=19$m=64,t=2,p=1$c2FsdA$" + key},
		{"salt too long", "$argon2id$v=19$m=64,t=2,p=1$" + strings.Repeat("A", 88) + "$" + key},
		{"key too short", "$argon2id$v=19$m=64,t=2,p=1$" + salt + "$c2FsdHNhbHQ"},
		{"key too long", "$argon2id$v=19$m=64,t=2,p=1$" + salt + "$" + strings.Repeat("A", 88)},
		{"key empty", "$argon2id$v=19$m=64,t=2,p=1$" + salt + "$"},
		// 43 characters carry 258 bits for a 256-bit key: the last two bits
		// of the last character must be zero. It is 'k' (100100); 'l'
		// (100101) decodes to the same key, so a strict decoder must refuse it.
		{"key non-canonical", ok[:len(ok)-1] + "l"},
		{"newline in key", ok[:len(ok)-10] + "\n" + ok[len(ok)-10:]},
		{"CR in salt", strings.Replace(ok, salt, salt[:4]+"\r"+salt[4:], 1)},
		{"too long", ok + strings.Repeat("A", 300)},
	}
	h := NewHasher(fast, 2)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var calls atomic.Int32
			h.inSlot = func() { calls.Add(1) }
			defer func() { h.inSlot = nil }()

			ok, err := h.Verify(context.Background(), tt.encoded, "correct horse battery staple")
			if !errors.Is(err, ErrMalformedHash) {
				t.Errorf("Verify(%q) error = %v, want ErrMalformedHash", tt.encoded, err)
			}
			if ok {
				t.Errorf("Verify(%q) = true", tt.encoded)
			}
			if n := calls.Load(); n != 0 {
				t.Errorf("Verify(%q) hashed %d times before rejecting", tt.encoded, n)
			}
			if err != nil && len(tt.encoded) > 8 && strings.Contains(err.Error(), tt.encoded) {
				t.Errorf("error %q quotes the stored hash", err)
			}
			if !NeedsRehash(tt.encoded, fast) {
				t.Errorf("NeedsRehash(%q) = false", tt.encoded)
			}
		})
	}
	// The control: the valid string the cases above break.
	if ok, err := h.Verify(context.Background(), ok, "correct horse battery staple"); err != nil || !ok {
		t.Fatalf("Verify(valid control) = %v, %v", ok, err)
	}
}

func TestNeedsRehash(t *testing.T) {
	h := NewHasher(fast, 1)
	current, err := h.Hash(context.Background(), "pw")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		encoded string
		p       Params
		want    bool
	}{
		{"same params", current, fast, false},
		{"memory raised", current, Params{Memory: 128, Time: 1, Threads: 1}, true},
		{"time raised", current, Params{Memory: 64, Time: 2, Threads: 1}, true},
		{"threads raised", current, Params{Memory: 64, Time: 1, Threads: 2}, true},
		{"lowered", vectors[2].encoded, fast, true},
		{"default hash, default params", vectors[2].encoded, DefaultParams(), false},
		{"12-byte salt, 24-byte key", vectors[1].encoded, Params{Memory: 100, Time: 3, Threads: 2}, true},
		{"malformed", "not a hash", fast, true},
	}
	for _, tt := range tests {
		if got := NeedsRehash(tt.encoded, tt.p); got != tt.want {
			t.Errorf("%s: NeedsRehash(%q, %+v) = %v, want %v", tt.name, tt.encoded, tt.p, got, tt.want)
		}
	}
}

func TestNewHasherRejectsBadParams(t *testing.T) {
	tests := []Params{
		{Memory: 64, Time: 0, Threads: 1},
		{Memory: 64, Time: 1, Threads: 0},
		{Memory: 4, Time: 1, Threads: 1},
		{Memory: 64, Time: 1, Threads: 9}, // below 8 KiB per lane
		{Memory: 2 << 20, Time: 1, Threads: 1},
		{Memory: 64, Time: 100, Threads: 1},
		{},
	}
	for _, p := range tests {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("NewHasher(%+v) did not panic", p)
				}
			}()
			NewHasher(p, 1)
		}()
	}
	// Below 1 means 1, never unbounded.
	for _, n := range []int{0, -5} {
		if got := cap(NewHasher(fast, n).sem); got != 1 {
			t.Errorf("NewHasher(_, %d) allows %d at once, want 1", n, got)
		}
	}
}

// TestConcurrencyBound runs more hashes than slots and records how many
// were inside a slot at once.
func TestConcurrencyBound(t *testing.T) {
	const slots, callers = 2, 8
	h := NewHasher(fast, slots)
	var inFlight, most atomic.Int32
	h.inSlot = func() {
		n := inFlight.Add(1)
		for {
			m := most.Load()
			if n <= m || most.CompareAndSwap(m, n) {
				break
			}
		}
		// Stay a while, so the other callers pile up at the semaphore.
		time.Sleep(20 * time.Millisecond)
		inFlight.Add(-1)
	}
	encoded, err := h.Hash(context.Background(), "pw")
	if err != nil {
		t.Fatal(err)
	}
	most.Store(0)

	var wg sync.WaitGroup
	results := make([]bool, callers)
	for i := range callers {
		wg.Go(func() {
			var err error
			switch i % 3 {
			case 0:
				results[i], err = h.Verify(context.Background(), encoded, "pw")
			case 1:
				h.VerifyDummy(context.Background(), "pw")
				results[i] = true
			case 2:
				_, err = h.Hash(context.Background(), "pw")
				results[i] = err == nil
			}
			if err != nil {
				t.Errorf("caller %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	if got := most.Load(); got != slots {
		t.Errorf("at most %d hashes ran at once, want exactly %d (the bound, reached)", got, slots)
	}
	if slices.Contains(results, false) {
		t.Errorf("results = %v, want all true", results)
	}
	if n := len(h.sem); n != 0 {
		t.Errorf("%d slots still held after all calls returned", n)
	}
}

// TestContextWhileWaiting fills every slot, then checks that each
// operation gives up when its context ends instead of waiting forever.
func TestContextWhileWaiting(t *testing.T) {
	h := NewHasher(fast, 1)
	encoded, err := h.Hash(context.Background(), "pw")
	if err != nil {
		t.Fatal(err)
	}
	var hashed atomic.Int32
	h.inSlot = func() { hashed.Add(1) }

	h.sem <- struct{}{} // someone else's hash is running
	ops := []struct {
		name string
		run  func(ctx context.Context) error
	}{
		{"Verify", func(ctx context.Context) error {
			ok, err := h.Verify(ctx, encoded, "pw")
			if ok {
				t.Error("Verify = true without hashing")
			}
			return err
		}},
		{"Hash", func(ctx context.Context) error {
			s, err := h.Hash(ctx, "pw")
			if s != "" {
				t.Errorf("Hash = %q without hashing", s)
			}
			return err
		}},
		{"VerifyDummy", func(ctx context.Context) error {
			h.VerifyDummy(ctx, "pw")
			return ctx.Err()
		}},
	}
	for _, op := range ops {
		t.Run(op.name+" cancelled", func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- op.run(ctx) }()
			select {
			case err := <-done:
				t.Fatalf("returned %v while every slot was taken", err)
			case <-time.After(30 * time.Millisecond):
			}
			cancel()
			select {
			case err := <-done:
				if !errors.Is(err, context.Canceled) {
					t.Errorf("error = %v, want context.Canceled", err)
				}
			case <-time.After(30 * time.Second): // a hang, not a slow machine
				t.Fatal("still waiting 30 s after cancel")
			}
		})
		t.Run(op.name+" deadline", func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
			defer cancel()
			if err := op.run(ctx); !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("error = %v, want context.DeadlineExceeded", err)
			}
		})
	}
	<-h.sem // the other hash finishes

	// A context that has already ended must not take a free slot.
	t.Run("already cancelled, free slot", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		for _, op := range ops {
			if err := op.run(ctx); !errors.Is(err, context.Canceled) {
				t.Errorf("%s: error = %v, want context.Canceled", op.name, err)
			}
		}
	})
	if n := hashed.Load(); n != 0 {
		t.Errorf("%d hashes ran for callers that gave up", n)
	}
}

// TestVerifyDummyDoesTheSameWork: an unknown email must cost what a known
// one costs. argon2id's time and memory depend only on its parameters and
// the salt and key lengths, so VerifyDummy must hash with exactly those of
// a Verify of a hash this Hasher made. (Checked by inputs, not by a clock:
// a timing test is flaky on a shared machine; BenchmarkVerify and
// BenchmarkVerifyDummy show the times.)
func TestVerifyDummyDoesTheSameWork(t *testing.T) {
	h := NewHasher(Params{Memory: 64, Time: 2, Threads: 1}, 1)
	type work struct {
		p    Params
		salt int
		key  uint32
	}
	var seen []work
	h.derived = func(p Params, salt int, key uint32) { seen = append(seen, work{p, salt, key}) }
	ctx := context.Background()
	encoded, err := h.Hash(ctx, "pw")
	if err != nil {
		t.Fatal(err)
	}
	seen = nil
	if _, err := h.Verify(ctx, encoded, "wrong"); err != nil {
		t.Fatal(err)
	}
	h.VerifyDummy(ctx, "wrong")
	if len(seen) != 2 || seen[0] != seen[1] {
		t.Fatalf("Verify and VerifyDummy hashed with %+v", seen)
	}
}

func BenchmarkVerify(b *testing.B) {
	h := NewHasher(DefaultParams(), 1)
	encoded, _ := h.Hash(context.Background(), "pw")
	for b.Loop() {
		h.Verify(context.Background(), encoded, "wrong")
	}
}

func BenchmarkVerifyDummy(b *testing.B) {
	h := NewHasher(DefaultParams(), 1)
	for b.Loop() {
		h.VerifyDummy(context.Background(), "wrong")
	}
}

func FuzzVerify(f *testing.F) {
	for _, v := range vectors {
		f.Add(v.encoded, v.password)
	}
	for _, s := range []string{
		"", "$", "$$$$$", "$argon2id$v=19$m=64,t=1,p=1$$", "$argon2id$v=19$m=64,t=1,p=1$AAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAA",
		"$argon2id$v=19$m=4294967295,t=4294967295,p=255$c29tZXNhbHQ$c29tZXNhbHQ",
	} {
		f.Add(s, "pw")
	}
	h := NewHasher(fast, 2)
	f.Fuzz(func(t *testing.T, encoded, password string) {
		ph, parseErr := parse(encoded)
		// Parsing accepts up to 1 GiB × 16 passes, which is fine for one
		// sign-in but not for thousands of fuzz runs a second: hash only
		// the cheap ones.
		if parseErr == nil && uint64(ph.params.Memory)*uint64(ph.params.Time) > 1024 {
			return
		}
		ok, err := h.Verify(context.Background(), encoded, password)
		switch {
		case parseErr != nil && !errors.Is(err, ErrMalformedHash):
			t.Fatalf("Verify(%q): error %v, want ErrMalformedHash (parse: %v)", encoded, err, parseErr)
		case parseErr == nil && err != nil:
			t.Fatalf("Verify(%q): %v after a successful parse", encoded, err)
		case err != nil && ok:
			t.Fatalf("Verify(%q) = true with error %v", encoded, err)
		}
		NeedsRehash(encoded, fast)
	})
}

func BenchmarkVerifyDefault(b *testing.B) {
	h := NewHasher(DefaultParams(), 1)
	ctx := context.Background()
	encoded, err := h.Hash(ctx, "pw")
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := h.Verify(ctx, encoded, "pw"); err != nil {
			b.Fatal(err)
		}
	}
}

func TestQueuedCountsWaitingAndRunningHashes(t *testing.T) {
	h := NewHasher(Params{Memory: 64, Time: 1, Threads: 1}, 1)
	release := make(chan struct{})
	h.inSlot = func() { <-release }
	var wg sync.WaitGroup
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := h.Hash(context.Background(), "pw"); err != nil {
				t.Error(err)
			}
		}()
	}
	deadline := time.Now().Add(30 * time.Second) // waited for: a busy machine is slower
	for h.Queued() != 3 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if got := h.Queued(); got != 3 {
		t.Fatalf("Queued() = %d with one hashing and two waiting, want 3", got)
	}
	close(release)
	wg.Wait()
	if got := h.Queued(); got != 0 {
		t.Fatalf("Queued() = %d after all finished", got)
	}
}

// TestCollectAfterHash: with CollectAfterHash, each hash ends with a
// collection, so its memory is free before the next hash starts.
func TestCollectAfterHash(t *testing.T) {
	gcs := func() uint32 {
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.NumGC
	}
	p := Params{Memory: 1024, Time: 1, Threads: 1}
	plain, collecting := NewHasher(p, 1), NewHasher(p, 1).CollectAfterHash()
	debug.SetGCPercent(-1) // no collection but the ones asked for
	defer debug.SetGCPercent(100)
	before := gcs()
	for range 3 {
		if _, err := plain.Hash(context.Background(), "a password"); err != nil {
			t.Fatal(err)
		}
	}
	if n := gcs() - before; n != 0 {
		t.Fatalf("%d collections without CollectAfterHash", n)
	}
	before = gcs()
	for range 3 {
		if _, err := collecting.Hash(context.Background(), "a password"); err != nil {
			t.Fatal(err)
		}
	}
	if n := gcs() - before; n < 3 {
		t.Fatalf("%d collections for 3 hashes with CollectAfterHash, want 3", n)
	}
}
