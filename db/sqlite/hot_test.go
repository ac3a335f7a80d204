package sqlite

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	zsqlite "zombiezen.com/go/sqlite"

	"doorman/db"
	"doorman/db/sqlstore"
	"doorman/db/storetest"
	"doorman/sessiontoken"
)

// TestHotReadsReuseTheirConnections: the store opens the hot reads' pool
// whole, and the reads take a connection per read and give it back: reads
// one after another or at once open none more, and every taken connection
// is back when they are done (nothing leaks, rows closed or read to their
// end).
func TestHotReadsReuseTheirConnections(t *testing.T) {
	s := openTest(t, db.Options{})
	ctx, now := context.Background(), storetest.T0
	u, err := s.CreateUser(ctx, "a@example.com", "h", false, now)
	if err != nil {
		t.Fatal(err)
	}
	uid := u.ID
	tok := sessiontoken.New()
	if _, err := s.CreateSession(ctx, db.Session{ID: tok.ID, SecretHash: tok.Hash, UserID: uid, CreatedAt: now, LastSeenAt: now,
		IdleExpiresAt: now.Add(time.Hour), AbsoluteExpiresAt: now.Add(2 * time.Hour), AuthMethod: "password"}, 0, u.Epoch); err != nil {
		t.Fatal(err)
	}
	if d := dialed(s); d != readers {
		t.Fatalf("the store opened %d hot connections, want %d", d, readers)
	}
	for range 50 {
		if _, _, err := s.SessionWithUser(ctx, tok.ID); err != nil {
			t.Fatal(err)
		}
		if list, err := s.ListSessionSummaries(ctx, uid, now); err != nil || len(list) != 1 {
			t.Fatal(len(list), err)
		}
		if _, _, err := s.SessionWithUser(ctx, "nosuchsession000"); !errors.Is(err, db.ErrNotFound) {
			t.Fatalf("unknown session: %v, want ErrNotFound", err)
		}
	}
	if d := dialed(s); d != readers {
		t.Errorf("after 150 reads one after another %d connections were opened, want %d", d, readers)
	}
	var wg sync.WaitGroup
	for range 4 * readers {
		wg.Go(func() {
			for range 20 {
				if _, _, err := s.SessionWithUser(ctx, tok.ID); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	s.hot.mu.Lock()
	open, d := s.hot.open, s.hot.dialed
	s.hot.mu.Unlock()
	if d != readers || open != readers {
		t.Errorf("reads at once: %d connections opened (%d open), want %d", d, open, readers)
	}
	if idle := len(s.hot.idle); idle != open {
		t.Errorf("%d connections open, %d back in the pool", open, idle)
	}
}

func dialed(s *Store) int {
	s.hot.mu.Lock()
	defer s.hot.mu.Unlock()
	return s.hot.dialed
}

// TestHotReadsNestAndSeeWrites: a hot read while another's rows are open
// takes a second connection, and a hot read sees what the writer has just
// committed (the store decides: nothing is cached but statements).
func TestHotReadsNestAndSeeWrites(t *testing.T) {
	s := openTest(t, db.Options{})
	ctx := context.Background()
	for _, e := range []string{"a@example.com", "b@example.com"} {
		if _, err := s.CreateUser(ctx, e, "h", false, storetest.T0); err != nil {
			t.Fatal(err)
		}
	}
	hq := s.dialect.Hot()
	rows, err := hq.Query(ctx, `SELECT id, email FROM users ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	var emails []string
	for rows.Next() {
		var id int64
		var email string
		if err := rows.Scan(&id, &email); err != nil {
			t.Fatal(err)
		}
		var again string
		if err := hq.QueryRow(ctx, `SELECT email FROM users WHERE id = ?`, id).Scan(&again); err != nil || again != email {
			t.Fatalf("nested read: %q, %v; want %q", again, err, email)
		}
		emails = append(emails, email)
	}
	if err := rows.Err(); err != nil || len(emails) != 2 {
		t.Fatal(emails, err)
	}
	rows.Close()
	if _, err := s.CreateUser(ctx, "c@example.com", "h", false, storetest.T0); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := hq.QueryRow(ctx, `SELECT COUNT(*) FROM users`).Scan(&n); err != nil || n != 3 {
		t.Errorf("after a third user: %d, %v", n, err)
	}
}

// TestHotReadsConvertAsDatabaseSQL: the hot reads give the store's scanners
// what database/sql gives them: a NULL into a pointer is nil and into a
// string an error, an empty BLOB is empty and not nil (TestZeroLengthBlobs),
// integers into bools only as 0 and 1, a named string type, arguments of
// every kind the store passes.
func TestHotReadsConvertAsDatabaseSQL(t *testing.T) {
	s := openTest(t, db.Options{})
	ctx := context.Background()
	hq := s.dialect.Hot()
	var empty, null []byte
	var text string
	var yes bool
	var none, some *int64
	type named string
	var kind named
	var small uint32
	var any1 any
	err := hq.QueryRow(ctx, `SELECT x'', NULL, 'café', 1, NULL, 7, 'pat', 4294967295, ?`, []byte("b")).
		Scan(&empty, &null, &text, &yes, &none, &some, &kind, &small, &any1)
	if err != nil {
		t.Fatal(err)
	}
	if empty == nil || len(empty) != 0 || null != nil || text != "café" || !yes || none != nil || some == nil || *some != 7 ||
		kind != "pat" || small != 4294967295 || string(any1.([]byte)) != "b" {
		t.Errorf("read %#v %#v %q %v %v %v %q %d %#v", empty, null, text, yes, none, some, kind, small, any1)
	}
	if err := hq.QueryRow(ctx, `SELECT NULL`).Scan(&text); err == nil {
		t.Error("NULL into a string: no error")
	}
	if err := hq.QueryRow(ctx, `SELECT 2`).Scan(&yes); err == nil {
		t.Error("2 into a bool: no error")
	}
	if err := hq.QueryRow(ctx, `SELECT 1, 2`).Scan(&text); err == nil {
		t.Error("two columns into one destination: no error")
	}
	var n int64
	var b *string
	if err := hq.QueryRow(ctx, `SELECT ?1 + ?2, ?3`, int64(40), 2, (*string)(nil)).Scan(&n, &b); err != nil || n != 42 || b != nil {
		t.Errorf("numbered arguments: %d %v %v", n, b, err)
	}
	if err := hq.QueryRow(ctx, `SELECT 1 WHERE 0`).Scan(&n); !errors.Is(err, sqlstore.ErrNoRows) {
		t.Errorf("no row: %v, want ErrNoRows", err)
	}
}

// TestHotReadsCannotWrite: the hot connections are query_only, as the
// database/sql readers are, with a small page cache; a bad statement is the caller's bug (not a
// 503), and the connection it broke is replaced.
func TestHotReadsCannotWrite(t *testing.T) {
	s := openTest(t, db.Options{})
	ctx := context.Background()
	hq := s.dialect.Hot()
	rows, err := hq.Query(ctx, `DELETE FROM users`)
	if err == nil {
		rows.Next()
		err = rows.Err()
		rows.Close()
	}
	if err == nil {
		t.Fatal("a hot connection ran a DELETE")
	}
	if _, err := hq.Query(ctx, `SELEC 1`); err == nil || IsUnavailable(err) {
		t.Errorf("a syntax error: %v; want an error that is not 'unavailable'", err)
	}
	var one int
	if err := hq.QueryRow(ctx, `SELECT 1`).Scan(&one); err != nil || one != 1 {
		t.Errorf("after the failures: %d, %v", one, err)
	}
	// Each hot connection's page cache is 512 KiB (hot.go's dial).
	var cache int
	if err := hq.QueryRow(ctx, `SELECT cache_size FROM pragma_cache_size`).Scan(&cache); err != nil || cache != -512 {
		t.Errorf("cache_size %d, %v; want -512", cache, err)
	}
	s.hot.mu.Lock()
	open := s.hot.open
	s.hot.mu.Unlock()
	if idle := len(s.hot.idle); idle != open {
		t.Errorf("%d open, %d idle: a failed read kept its connection", open, idle)
	}
}

// TestHotReadErrorsAreClassified: SQLite's result codes from a hot read
// are what IsUnavailable classifies for the driver's errors: a database
// that cannot be opened is unavailable (503); so is a closed store.
func TestHotReadErrorsAreClassified(t *testing.T) {
	p := newHotPool("file:"+filepath.Join(t.TempDir(), "no", "such", "dir.db"), zsqlite.OpenReadWrite, 2)
	_, err := p.start(context.Background(), `SELECT 1`, nil)
	if err == nil || !IsUnavailable(err) {
		t.Errorf("open in a missing directory: %v; IsUnavailable %v", err, IsUnavailable(err))
	}
	s := openTest(t, db.Options{})
	s.Close()
	if _, _, err := s.SessionWithUser(context.Background(), "aaaaaaaaaaaaaaaa"); !IsUnavailable(err) {
		t.Errorf("a closed store: %v, want unavailable", err)
	}
}

// TestHotReadsOnAReadOnlyStore: a ReadOnly store's hot reads open the file
// read-only and read it.
func TestHotReadsOnAReadOnlyStore(t *testing.T) {
	ctx, path := context.Background(), filepath.Join(t.TempDir(), "ro.db")
	w, err := Open(ctx, path, db.Options{})
	if err != nil {
		t.Fatal(err)
	}
	u, err := w.CreateUser(ctx, "a@example.com", "h", false, storetest.T0)
	if err != nil {
		t.Fatal(err)
	}
	uid := u.ID
	w.Close()
	s, err := Open(ctx, path, db.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.ListSessionSummaries(ctx, uid, storetest.T0); err != nil {
		t.Fatal(err)
	}
	var email string
	if err := s.dialect.Hot().QueryRow(ctx, `SELECT email FROM users WHERE id = ?`, uid).Scan(&email); err != nil || email != "a@example.com" {
		t.Errorf("%q, %v", email, err)
	}
}

// TestHotBatchIsOneSnapshot: a batch's reads (the Security page's lists)
// run in one read transaction, so they agree with each other: a commit
// made between two of them is seen by neither the second nor, of course,
// the first, and by the next read after the batch. A failed read in a
// batch is its error, and its connection comes back.
func TestHotBatchIsOneSnapshot(t *testing.T) {
	s := openTest(t, db.Options{})
	ctx := context.Background()
	if _, err := s.CreateUser(ctx, "a@example.com", "h", false, storetest.T0); err != nil {
		t.Fatal(err)
	}
	var first, second int
	err := s.dialect.Batch(ctx,
		sqlstore.Read{SQL: `SELECT COUNT(*) FROM users`, Scan: func(r sqlstore.Rows) error {
			if !r.Next() {
				return r.Err()
			}
			if err := r.Scan(&first); err != nil {
				return err
			}
			// Another request signs up while the page is being read.
			_, err := s.CreateUser(ctx, "b@example.com", "h", false, storetest.T0)
			return err
		}},
		sqlstore.Read{SQL: `SELECT COUNT(*) FROM users WHERE id > ?`, Args: []any{0}, Scan: func(r sqlstore.Rows) error {
			if !r.Next() {
				return r.Err()
			}
			return r.Scan(&second)
		}})
	if err != nil {
		t.Fatal(err)
	}
	if first != 1 || second != 1 {
		t.Errorf("within the batch: %d then %d users, want 1 and 1 (one snapshot)", first, second)
	}
	var after int
	if err := s.dialect.Hot().QueryRow(ctx, `SELECT COUNT(*) FROM users`).Scan(&after); err != nil || after != 2 {
		t.Errorf("after the batch: %d, %v; want 2", after, err)
	}
	err = s.dialect.Batch(ctx,
		sqlstore.Read{SQL: `SELECT 1`, Scan: func(r sqlstore.Rows) error { return nil }},
		sqlstore.Read{SQL: `SELECT nosuchcolumn FROM users`, Scan: func(r sqlstore.Rows) error { return nil }})
	if err == nil || IsUnavailable(err) {
		t.Errorf("a bad read in a batch: %v; want its error, not 'unavailable'", err)
	}
	s.hot.mu.Lock()
	open := s.hot.open
	s.hot.mu.Unlock()
	if idle := len(s.hot.idle); idle != open || open != readers {
		t.Errorf("after the batches: %d open, %d idle, want %d", open, idle, readers)
	}
}
