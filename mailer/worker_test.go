package mailer_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"doorman/db"
	"doorman/mailer"
	"doorman/mailtest"
	"doorman/storage"
)

func newStore(t *testing.T) db.Store {
	t.Helper()
	st, err := storage.Open(context.Background(), filepath.Join(t.TempDir(), "t.db"), db.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// clock is a settable clock (the store keeps whole seconds).
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// logBuffer collects a worker's log lines.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// The secret part of every test mail's link and a phrase of its body:
// neither may be logged.
const linkSecret, bodyPhrase = "abc?t=x1", "only once"

func queue(t *testing.T, st db.Store, id string, at time.Time) db.Mail {
	t.Helper()
	m := testMail(id).Mail
	m.CreatedAt = at
	if err := st.QueueMail(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	return m
}

func outbox(t *testing.T, st db.Store, id string) db.OutboxMail {
	t.Helper()
	m, err := st.OutboxMail(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

type fixture struct {
	st  db.Store
	srv *mailtest.Server
	clk *clock
	log *logBuffer
	w   *mailer.Worker
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{st: newStore(t), srv: mailtest.Start(t, mailtest.Options{}), clk: newClock(), log: &logBuffer{}}
	f.w = &mailer.Worker{
		Store:     f.st,
		Transport: transport(t, f.srv.Settings(t)),
		From:      from,
		Logger:    slog.New(slog.NewTextHandler(f.log, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Now:       f.clk.Now,
		ID:        "w1",
		Backoff:   func(int) time.Duration { return time.Minute },
	}
	t.Cleanup(func() {
		if l := f.log.String(); strings.Contains(l, linkSecret) || strings.Contains(l, bodyPhrase) {
			t.Errorf("the log shows a mail's body:\n%s", l)
		}
	})
	return f
}

func (f *fixture) runOnce(t *testing.T, wantSent int) {
	t.Helper()
	sent, err := f.w.RunOnce(context.Background())
	if err != nil || sent != wantSent {
		t.Fatalf("RunOnce = %d, %v; want %d, nil", sent, err, wantSent)
	}
}

func TestWorkerSendsAndMarksSent(t *testing.T) {
	f := newFixture(t)
	ids := []string{"a@doorman.test", "b@doorman.test", "c@doorman.test"}
	for i, id := range ids {
		queue(t, f.st, id, f.clk.Now().Add(time.Duration(i-3)*time.Second))
	}
	f.runOnce(t, 3)
	msgs := f.srv.Messages()
	if len(msgs) != 3 {
		t.Fatalf("%d messages", len(msgs))
	}
	for i, id := range ids {
		if msgs[i].MessageID != id { // oldest first
			t.Errorf("message %d: %q, want %q", i, msgs[i].MessageID, id)
		}
		m := outbox(t, f.st, id)
		if m.Status != db.MailSent || m.Text != "" || m.HTML != "" || !m.SentAt.Equal(f.clk.Now()) {
			t.Errorf("%s: status %q, sent at %v, bodies %q %q", id, m.Status, m.SentAt, m.Text, m.HTML)
		}
	}
	f.runOnce(t, 0)
	if !strings.Contains(f.log.String(), "message_id=a@doorman.test") || !strings.Contains(f.log.String(), "kind=password_reset") {
		t.Errorf("log:\n%s", f.log)
	}
}

func TestWorkerRetriesATemporaryFailure(t *testing.T) {
	f := newFixture(t)
	queue(t, f.st, "retry@doorman.test", f.clk.Now())
	f.srv.FailNext(1, 451)
	f.runOnce(t, 0)
	m := outbox(t, f.st, "retry@doorman.test")
	if m.Status != db.MailQueued || m.Attempts != 1 || !strings.Contains(m.LastError, "451") ||
		!m.NextAttemptAt.Equal(f.clk.Now().Add(time.Minute)) || m.ClaimedBy != "" || m.Text == "" {
		t.Fatalf("after a 451: %+v", m)
	}
	if !strings.Contains(f.log.String(), "attempt=1") {
		t.Errorf("log:\n%s", f.log)
	}

	f.clk.Advance(59 * time.Second)
	f.runOnce(t, 0) // not due yet
	f.clk.Advance(time.Second)
	f.runOnce(t, 1)

	rejected, accepted := f.srv.Rejected(), f.srv.Messages()
	if len(rejected) != 1 || len(accepted) != 1 {
		t.Fatalf("%d rejected, %d accepted", len(rejected), len(accepted))
	}
	a, b := rejected[0].Header.Get("Message-ID"), accepted[0].Header.Get("Message-ID")
	if a != "<retry@doorman.test>" || a != b || rejected[0].Header.Get("Date") != accepted[0].Header.Get("Date") {
		t.Errorf("Message-ID %q then %q, Date %q then %q", a, b, rejected[0].Header.Get("Date"), accepted[0].Header.Get("Date"))
	}
	if m := outbox(t, f.st, "retry@doorman.test"); m.Status != db.MailSent || m.Text != "" {
		t.Errorf("after the retry: %+v", m)
	}
}

func TestWorkerGivesUpOnAPermanentFailure(t *testing.T) {
	f := newFixture(t)
	queue(t, f.st, "bounce@doorman.test", f.clk.Now())
	f.srv.FailNext(1, 550)
	f.runOnce(t, 0)
	m := outbox(t, f.st, "bounce@doorman.test")
	if m.Status != db.MailFailed || m.Attempts != 1 || !strings.Contains(m.LastError, "550") || m.Text != "" || m.HTML != "" {
		t.Fatalf("after a 550: %+v", m)
	}
	f.clk.Advance(2 * time.Hour)
	f.runOnce(t, 0)
	if n := len(f.srv.Rejected()) + len(f.srv.Messages()); n != 1 {
		t.Errorf("%d attempts, want 1", n)
	}
}

func TestWorkerGivesUpAfterMaxAttempts(t *testing.T) {
	f := newFixture(t)
	f.w.MaxAttempts = 3
	queue(t, f.st, "flaky@doorman.test", f.clk.Now())
	f.srv.FailNext(100, 421)
	for range 5 {
		f.runOnce(t, 0)
		f.clk.Advance(time.Minute)
	}
	m := outbox(t, f.st, "flaky@doorman.test")
	if m.Status != db.MailFailed || m.Attempts != 3 || m.Text != "" {
		t.Errorf("after 5 passes: %+v", m)
	}
	if n := len(f.srv.Rejected()); n != 3 {
		t.Errorf("%d attempts, want 3", n)
	}
}

func TestWorkerDropsExpiredMail(t *testing.T) {
	f := newFixture(t)
	m := testMail("late@doorman.test").Mail
	m.CreatedAt, m.NotAfter = f.clk.Now().Add(-time.Hour), f.clk.Now().Add(-time.Minute)
	if err := f.st.QueueMail(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	f.runOnce(t, 0)
	if got := outbox(t, f.st, "late@doorman.test"); got.Status != db.MailExpired || got.Text != "" {
		t.Errorf("%+v", got)
	}
	if n := len(f.srv.Messages()); n != 0 {
		t.Errorf("%d messages sent", n)
	}
}

// transportFunc is a Transport made of a function.
type transportFunc func(ctx context.Context, from string, m db.OutboxMail) error

func (f transportFunc) Send(ctx context.Context, from string, m db.OutboxMail) error {
	return f(ctx, from, m)
}

// A mail whose link dies while the batch before it is being sent is not
// sent late: released, the next claim marks it expired.
func TestWorkerDropsMailThatExpiresInTheBatch(t *testing.T) {
	f := newFixture(t)
	real := f.w.Transport
	f.w.Transport = transportFunc(func(ctx context.Context, from string, m db.OutboxMail) error {
		f.clk.Advance(10 * time.Second) // a slow server
		return real.Send(ctx, from, m)
	})
	queue(t, f.st, "first@doorman.test", f.clk.Now().Add(-time.Second))
	m := testMail("second@doorman.test").Mail
	m.CreatedAt, m.NotAfter = f.clk.Now(), f.clk.Now().Add(5*time.Second)
	if err := f.st.QueueMail(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	f.runOnce(t, 1)
	f.runOnce(t, 0)
	if got := outbox(t, f.st, "second@doorman.test"); got.Status != db.MailExpired {
		t.Errorf("second: %+v", got)
	}
	if msgs := f.srv.Messages(); len(msgs) != 1 || msgs[0].MessageID != "first@doorman.test" {
		t.Errorf("messages: %v", msgs)
	}
}

// A batch that takes too long leaves the rest of its mails to the next
// claim rather than send them after their lease is over.
func TestWorkerLeavesTheRestOfASlowBatch(t *testing.T) {
	f := newFixture(t)
	f.w.Lease = 2 * time.Minute
	real := f.w.Transport
	f.w.Transport = transportFunc(func(ctx context.Context, from string, m db.OutboxMail) error {
		f.clk.Advance(61 * time.Second)
		return real.Send(ctx, from, m)
	})
	queue(t, f.st, "one@doorman.test", f.clk.Now().Add(-time.Second))
	queue(t, f.st, "two@doorman.test", f.clk.Now())
	f.runOnce(t, 1)
	if m := outbox(t, f.st, "two@doorman.test"); m.Status != db.MailQueued || m.Attempts != 0 {
		t.Errorf("two: %+v", m)
	}
	f.clk.Advance(time.Minute) // the lease ends
	f.runOnce(t, 1)
	if msgs := f.srv.Messages(); len(msgs) != 2 || msgs[1].MessageID != "two@doorman.test" {
		t.Errorf("messages: %v", msgs)
	}
}

// flakyStore fails as told, and checks that every call has a deadline.
type flakyStore struct {
	db.Store
	t          *testing.T
	failClaims int
	failMarks  int
}

func (s *flakyStore) deadline(ctx context.Context) {
	d, ok := ctx.Deadline()
	if !ok || time.Until(d) > db.CallTimeout {
		s.t.Errorf("store call without a deadline of at most db.CallTimeout (%v, %v)", d, ok)
	}
}

func (s *flakyStore) ClaimMail(ctx context.Context, worker string, now time.Time, lease time.Duration, limit int) ([]db.OutboxMail, error) {
	s.deadline(ctx)
	if s.failClaims > 0 {
		s.failClaims--
		return nil, errors.New("database is down")
	}
	return s.Store.ClaimMail(ctx, worker, now, lease, limit)
}

func (s *flakyStore) MarkMailSent(ctx context.Context, id int64, worker string, now time.Time) error {
	s.deadline(ctx)
	if s.failMarks > 0 {
		s.failMarks--
		return errors.New("database is down")
	}
	return s.Store.MarkMailSent(ctx, id, worker, now)
}

func (s *flakyStore) MarkMailFailed(ctx context.Context, id int64, worker, errText string, retryAt time.Time, giveUp bool, now time.Time) error {
	s.deadline(ctx)
	return s.Store.MarkMailFailed(ctx, id, worker, errText, retryAt, giveUp, now)
}

// A mail sent but not marked sent (the database went away) is sent again
// once its lease is over: at least once, with the same Message-ID.
func TestWorkerSendsAgainWhenMarkSentFails(t *testing.T) {
	f := newFixture(t)
	fs := &flakyStore{Store: f.st, t: t, failMarks: 1}
	f.w.Store = fs
	queue(t, f.st, "twice@doorman.test", f.clk.Now())
	sent, err := f.w.RunOnce(context.Background())
	if sent != 1 || err == nil {
		t.Fatalf("RunOnce = %d, %v; want 1 and the store's error", sent, err)
	}
	f.runOnce(t, 0) // still claimed
	f.clk.Advance(mailer.DefaultLease)
	f.runOnce(t, 1)
	msgs := f.srv.Messages()
	if len(msgs) != 2 || msgs[0].MessageID != "twice@doorman.test" || msgs[1].MessageID != msgs[0].MessageID {
		t.Errorf("messages: %v", msgs)
	}
	if m := outbox(t, f.st, "twice@doorman.test"); m.Status != db.MailSent {
		t.Errorf("%+v", m)
	}
}

// A database that fails is logged and tried again: Run goes on.
func TestWorkerRunSurvivesDatabaseErrors(t *testing.T) {
	f := newFixture(t)
	f.w.Store = &flakyStore{Store: f.st, t: t, failClaims: 3}
	f.w.Now = nil // the real clock, for Run
	f.w.Poll = 10 * time.Millisecond
	queue(t, f.st, "later@doorman.test", time.Now().Add(-time.Second))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.w.Run(ctx) }()
	f.srv.WaitFor(t, "bob@example.com", 30*time.Second)
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Run: %v", err)
	}
	if n := strings.Count(f.log.String(), "database is down"); n != 3 {
		t.Errorf("%d database errors logged, want 3:\n%s", n, f.log)
	}
}

// Kick sends at once, without waiting for the poll.
func TestWorkerKick(t *testing.T) {
	f := newFixture(t)
	f.w.Now = nil
	f.w.Poll = time.Hour
	f.w.Kick() // before Run: must neither block nor break anything
	f.w.Kick()
	queue(t, f.st, "first@doorman.test", time.Now().Add(-time.Second))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- f.w.Run(ctx) }()
	f.srv.WaitFor(t, "bob@example.com", 30*time.Second)
	// Run is now asleep for an hour (or about to be): only Kick wakes it.
	time.Sleep(50 * time.Millisecond)
	queue(t, f.st, "second@doorman.test", time.Now().Add(-time.Second))
	f.w.Kick()
	if m := f.srv.WaitFor(t, "bob@example.com", 30*time.Second); m.MessageID != "second@doorman.test" {
		t.Errorf("got %q", m.MessageID)
	}
	cancel()
	<-done
}

// A send cut by shutdown is released at once, for another instance, and
// never given up for it.
func TestWorkerShutdownReleasesTheMail(t *testing.T) {
	f := newFixture(t)
	f.w.MaxAttempts = 1
	started := make(chan struct{})
	f.w.Transport = transportFunc(func(ctx context.Context, _ string, _ db.OutboxMail) error {
		close(started)
		<-ctx.Done()
		return ctx.Err()
	})
	queue(t, f.st, "cut@doorman.test", f.clk.Now())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := f.w.RunOnce(ctx)
		done <- err
	}()
	select {
	case <-started:
	case err := <-done:
		t.Fatalf("RunOnce returned without sending: %v", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("RunOnce: %v", err)
	}
	m := outbox(t, f.st, "cut@doorman.test")
	if m.Status != db.MailQueued || m.ClaimedBy != "" || m.NextAttemptAt.After(f.clk.Now()) || m.Text == "" {
		t.Errorf("after shutdown: %+v", m)
	}
}

func TestWorkerChecksItsFields(t *testing.T) {
	st := newStore(t)
	for _, w := range []*mailer.Worker{
		{Transport: mailer.DirTransport{Dir: t.TempDir()}, From: from},
		{Store: st, From: from},
		{Store: st, Transport: mailer.DirTransport{Dir: t.TempDir()}},
		{Store: st, Transport: mailer.DirTransport{Dir: t.TempDir()}, From: "not an address"},
	} {
		if _, err := w.RunOnce(context.Background()); err == nil {
			t.Errorf("RunOnce with %+v: no error", w)
		}
		if err := w.Run(context.Background()); err == nil {
			t.Errorf("Run with %+v: no error", w)
		}
	}
	if a, b := mailer.DefaultID(), mailer.DefaultID(); a == b || a == "" {
		t.Errorf("DefaultID: %q, %q", a, b)
	}
}

// Two workers on one store (two instances): each of 30 mails goes out
// exactly once.
func TestTwoWorkersSendEachMailOnce(t *testing.T) {
	st := newStore(t)
	srv := mailtest.Start(t, mailtest.Options{})
	const n = 30
	for i := range n {
		queue(t, st, fmt.Sprintf("m%02d@doorman.test", i), time.Now().Add(-time.Minute))
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var sentBy sync.Map
	for _, id := range []string{"w1", "w2"} {
		real := transport(t, srv.Settings(t))
		w := &mailer.Worker{
			Store: st,
			Transport: transportFunc(func(ctx context.Context, from string, m db.OutboxMail) error {
				sentBy.Store(m.MessageID+"/"+id, true)
				return real.Send(ctx, from, m)
			}),
			From:      from,
			Logger:    slog.New(slog.DiscardHandler),
			ID:        id,
			Poll:      5 * time.Millisecond,
			BatchSize: 3,
		}
		wg.Go(func() { w.Run(ctx) })
	}
	deadline := time.Now().Add(time.Minute) // waited for: a busy machine is slower
	for len(srv.Messages()) < n && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond) // room for a duplicate to show
	cancel()
	wg.Wait()

	seen := map[string]int{}
	for _, m := range srv.Messages() {
		seen[m.MessageID]++
	}
	for i := range n {
		id := fmt.Sprintf("m%02d@doorman.test", i)
		if seen[id] != 1 {
			t.Errorf("%s delivered %d times", id, seen[id])
		}
		if m := outbox(t, st, id); m.Status != db.MailSent {
			t.Errorf("%s: %s", id, m.Status)
		}
	}
	if len(seen) != n {
		t.Errorf("%d distinct messages, want %d", len(seen), n)
	}
	var w1, w2 int
	sentBy.Range(func(k, _ any) bool {
		if strings.HasSuffix(k.(string), "/w1") {
			w1++
		} else {
			w2++
		}
		return true
	})
	t.Logf("w1 sent %d, w2 sent %d", w1, w2)
}

// Each send is cut well before the claim's lease ends, so that no other
// worker can claim a mail still being sent.
func TestWorkerBoundsEachSend(t *testing.T) {
	f := newFixture(t)
	f.w.Lease = 2 * time.Minute
	var left time.Duration
	f.w.Transport = transportFunc(func(ctx context.Context, _ string, _ db.OutboxMail) error {
		d, ok := ctx.Deadline()
		if !ok {
			t.Error("send without a deadline")
		}
		left = time.Until(d)
		return nil
	})
	queue(t, f.st, "bounded@doorman.test", f.clk.Now())
	f.runOnce(t, 1)
	if left > 90*time.Second || left < 80*time.Second {
		t.Errorf("send deadline %v away, want three quarters of the 2 min lease", left)
	}
}

// A full batch is followed by the next at once, not after the poll.
func TestWorkerDrainsFullBatches(t *testing.T) {
	f := newFixture(t)
	f.w.Now = nil
	f.w.Poll = time.Hour
	f.w.BatchSize = 2
	for i := range 5 {
		queue(t, f.st, fmt.Sprintf("d%d@doorman.test", i), time.Now().Add(-time.Minute))
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.w.Run(ctx) }()
	for range 5 {
		f.srv.WaitFor(t, "bob@example.com", 30*time.Second)
	}
	cancel()
	<-done
}
