package mailer

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/mail"
	"os"
	"strconv"
	"sync"
	"time"

	"doorman/db"
	"doorman/secretbox"
)

// Store is the part of the store the Worker uses (db.Store has it).
type Store interface {
	ClaimMail(ctx context.Context, worker string, now time.Time, lease time.Duration, limit int) ([]db.OutboxMail, error)
	MarkMailSent(ctx context.Context, id int64, worker string, now time.Time) error
	MarkMailFailed(ctx context.Context, id int64, worker, errText string, retryAt time.Time, giveUp bool, now time.Time) error
}

// Worker defaults (a zero field takes them).
const (
	// DefaultLease is how long a claim holds a mail. Longer than any
	// send (a send is cut at three quarters of it), short enough that a
	// mail a crashed instance held goes out a couple of minutes later.
	DefaultLease = 2 * time.Minute
	// DefaultPoll is how often the outbox is looked at when nothing
	// kicks the worker: what a mail queued by another instance (or due
	// for a retry) waits at most.
	DefaultPoll = 5 * time.Second
	// DefaultBatchSize is how many mails one claim takes.
	DefaultBatchSize = 10
	// DefaultMaxAttempts is how many times a mail is tried before the
	// worker gives up: with DefaultBackoff, about an hour of retries,
	// longer than any link in a mail lives.
	DefaultMaxAttempts = 8
)

// DefaultBackoff is the wait after the attempt-th failed attempt: 30 s
// doubled each time (30 s, 1 min, 2 min, …), capped at an hour, and
// spread by ±20% so that mails that failed together (a server down) are
// not all retried in the same second.
func DefaultBackoff(attempt int) time.Duration {
	d := time.Hour
	if attempt < 1 {
		attempt = 1
	}
	if attempt <= 8 {
		d = min(30*time.Second<<(attempt-1), time.Hour)
	}
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

// Worker sends the outbox: it claims due mails, sends each through
// Transport, and records the outcome, retrying failures with a backoff.
// Several workers (one per instance) may share a store: a claim holds each
// mail for one worker at a time.
//
// Delivery is at least once. A mail whose send succeeded but whose
// MarkMailSent failed (the database went away in between) stays claimed
// until its lease ends and is then sent again, by this worker or another.
// That is the right way round for mail that carries a sign-in or reset
// link (a lost mail is a locked-out user; a duplicate costs nothing), and
// the duplicate is harmless: it has the same Message-ID, so mail servers
// and clients that de-duplicate drop it, and its links are the same,
// single-use links.
//
// Every store call has a deadline (db.CallTimeout), and a failed one is
// logged and tried again at the next poll: a database outage delays mail,
// never stops the worker.
//
// Set the fields, then call Run; Kick may be called at any time, from any
// goroutine. A Worker must not be copied once used.
type Worker struct {
	// Store holds the outbox; Transport sends; From is the From address
	// ("Doorman <noreply@example.com>").
	Store     Store
	Transport Transport
	From      string
	// Box opens the bodies Seal sealed (the key ring the handlers seal
	// with); nil: only mails queued unsealed can be sent.
	Box *secretbox.Box
	// Logger gets one line per attempt (slog.Default if nil): the outbox
	// id, Message-ID, kind, attempt and error, never a body or a link
	// (they hold secrets).
	Logger *slog.Logger
	// Now is the clock (time.Now if nil).
	Now func() time.Time
	// ID names this worker in claims; unique per process (DefaultID if
	// empty).
	ID string
	// Lease, Poll, BatchSize and MaxAttempts: see the Default…
	// constants, used where zero.
	Lease       time.Duration
	Poll        time.Duration
	BatchSize   int
	MaxAttempts int
	// Backoff is the wait after the attempt-th failure (DefaultBackoff if
	// nil).
	Backoff func(attempt int) time.Duration

	once sync.Once
	kick chan struct{}
}

// DefaultID is a worker id unique to this process: host name, process id
// and a random suffix (a restarted process with a recycled pid must not
// take over its predecessor's claims).
func DefaultID() string {
	host, err := os.Hostname()
	if err != nil {
		host = "unknown"
	}
	b := make([]byte, 4)
	crand.Read(b)
	return host + "-" + strconv.Itoa(os.Getpid()) + "-" + hex.EncodeToString(b)
}

func (w *Worker) init() {
	w.once.Do(func() {
		w.kick = make(chan struct{}, 1)
		if w.ID == "" {
			w.ID = DefaultID()
		}
	})
}

// Kick makes a waiting Run look at the outbox now rather than at the next
// poll: handlers call it after queueing mail so that it leaves at once.
// It never blocks.
func (w *Worker) Kick() {
	w.init()
	select {
	case w.kick <- struct{}{}:
	default: // a kick is pending already
	}
}

// Run sends the outbox until ctx ends, then returns ctx's error. A failing
// database is logged and tried again at the next poll: it never stops Run.
func (w *Worker) Run(ctx context.Context) error {
	w.init()
	if err := w.check(); err != nil {
		return err
	}
	poll := w.Poll
	if poll <= 0 {
		poll = DefaultPoll
	}
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		_, claimed, claimErr, markErr := w.runOnce(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if claimErr != nil {
			// The database is down or slow: try again at the next poll.
			// (A failed mark was logged with its mail already.)
			w.logger().Error("mail outbox: claim failed", "worker", w.ID, "error", claimErr)
		}
		// A full batch means more may be due: go on at once.
		if claimErr == nil && markErr == nil && claimed >= w.batchSize() {
			continue
		}
		timer.Reset(poll)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-w.kick:
		case <-timer.C:
		}
	}
}

// RunOnce claims one batch and sends it: sent is how many mails the
// transport took. err reports a failed store call (the claim, or the
// recording of an outcome); send failures are recorded, not returned.
func (w *Worker) RunOnce(ctx context.Context) (sent int, err error) {
	w.init()
	if err := w.check(); err != nil {
		return 0, err
	}
	sent, _, claimErr, markErr := w.runOnce(ctx)
	return sent, errors.Join(claimErr, markErr)
}

func (w *Worker) check() error {
	if w.Store == nil || w.Transport == nil || w.From == "" {
		return errors.New("mailer: Worker needs a Store, a Transport and From")
	}
	// Checked here, once, rather than failing every mail for good.
	if _, err := mail.ParseAddress(w.From); err != nil {
		return fmt.Errorf("mailer: From %q: %w", w.From, err)
	}
	return nil
}

func (w *Worker) runOnce(ctx context.Context) (sent, claimed int, claimErr, markErr error) {
	lease := w.Lease
	if lease <= 0 {
		lease = DefaultLease
	}
	claimedAt := w.now()
	cctx, cancel := context.WithTimeout(ctx, db.CallTimeout)
	mails, err := w.Store.ClaimMail(cctx, w.ID, claimedAt, lease, w.batchSize())
	cancel()
	if err != nil {
		return 0, 0, fmt.Errorf("mailer: claim mail: %w", err), nil
	}
	// The claim lasts until claimedAt+lease. A send must end well before
	// that, or another worker could claim the mail while it is still being
	// sent: sends are cut at three quarters of the lease, and a mail whose
	// turn comes after half of it has gone is left for the next claim.
	sendBy := claimedAt.Add(lease * 3 / 4)
	startBy := claimedAt.Add(lease / 2)
	var errs []error
	for _, m := range mails {
		if ctx.Err() != nil {
			break // the claims lapse; the next worker sends them
		}
		if w.now().After(startBy) {
			w.logger().Warn("mail left for the next claim: the batch took too long",
				w.attrs(m, m.Attempts+1)...)
			continue
		}
		ok, err := w.deliver(ctx, m, sendBy)
		if ok {
			sent++
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	return sent, len(mails), nil, errors.Join(errs...)
}

// deliver sends m and records the outcome. ok reports that the transport
// took it; err, that recording failed.
func (w *Worker) deliver(ctx context.Context, m db.OutboxMail, sendBy time.Time) (ok bool, err error) {
	attempt := m.Attempts + 1
	log := w.logger().With(w.attrs(m, attempt)...)
	// Outcomes are recorded even while ctx ends (shutdown): a mail that
	// went out must be marked sent, or it goes out again.
	store := func() (context.Context, context.CancelFunc) {
		return context.WithTimeout(context.WithoutCancel(ctx), db.CallTimeout)
	}

	now := w.now()
	if !m.NotAfter.IsZero() && !now.Before(m.NotAfter) {
		// Its link is dead: sending it would only confuse. Released as
		// due now, the next claim marks it expired.
		sctx, cancel := store()
		defer cancel()
		if err := w.Store.MarkMailFailed(sctx, m.ID, w.ID, "expired before it could be sent", now, false, now); err != nil {
			return false, w.markErr(log, m.ID, "failed", err)
		}
		log.Info("mail expired before it could be sent")
		return false, nil
	}

	// Opened here, as late as possible: the clear bodies live only in
	// this process's memory, for this send. A body this server cannot open
	// fails the mail for good rather than mailing ciphertext; a retry here
	// would only fail again (another instance with the right key could
	// send it, but instances share one key ring: a mismatch is a mistake
	// to fix, and the error says so).
	open, err := Open(w.Box, m)
	if err != nil {
		sctx, cancel := store()
		defer cancel()
		log.Error("mail cannot be opened: giving up", "error", err)
		if err := w.Store.MarkMailFailed(sctx, m.ID, w.ID, err.Error(), now, true, now); err != nil {
			return false, w.markErr(log, m.ID, "failed", err)
		}
		return false, nil
	}

	// sendBy is on the worker's clock (Now), which need not be the real
	// one: the deadline is what remains of it.
	sendCtx, cancel := context.WithTimeout(ctx, sendBy.Sub(now))
	sendErr := w.Transport.Send(sendCtx, w.From, open)
	cancel()
	now = w.now()

	if sendErr == nil {
		sctx, cancel := store()
		defer cancel()
		if err := w.Store.MarkMailSent(sctx, m.ID, w.ID, now); err != nil {
			// Sent, but not marked: it will be sent again after the lease
			// (see Worker). Said loudly, because that is what happened.
			return true, w.markErr(log, m.ID, "sent", err)
		}
		log.Info("mail sent")
		return true, nil
	}

	var giveUp bool
	retryAt := now
	switch {
	case ctx.Err() != nil:
		// Shutdown cut the send: not the mail's fault, so no giving up;
		// released as due now, another instance can send it at once.
		log.Warn("mail send interrupted by shutdown", "error", sendErr)
	case Permanent(sendErr):
		giveUp = true
		log.Error("mail refused for good: giving up", "error", sendErr)
	case attempt >= w.maxAttempts():
		giveUp = true
		log.Error("mail failed too many times: giving up", "error", sendErr)
	default:
		retryAt = now.Add(w.backoff(attempt))
		log.Warn("mail send failed: will retry", "error", sendErr, "retry_at", retryAt)
	}
	sctx, cancelStore := store()
	defer cancelStore()
	if err := w.Store.MarkMailFailed(sctx, m.ID, w.ID, sendErr.Error(), retryAt, giveUp, now); err != nil {
		return false, w.markErr(log, m.ID, "failed", err)
	}
	return false, nil
}

func (w *Worker) markErr(log *slog.Logger, id int64, outcome string, err error) error {
	if errors.Is(err, db.ErrNotFound) {
		// Our lease ran out and another worker holds the mail now.
		log.Warn("mail claim lost before its outcome was recorded", "outcome", outcome)
		return nil
	}
	log.Error("mail outcome not recorded", "outcome", outcome, "error", err)
	return fmt.Errorf("mailer: record mail %d %s: %w", id, outcome, err)
}

func (w *Worker) attrs(m db.OutboxMail, attempt int) []any {
	return []any{"worker", w.ID, "mail_id", m.ID, "message_id", m.MessageID, "kind", m.Kind, "attempt", attempt}
}

func (w *Worker) logger() *slog.Logger {
	if w.Logger != nil {
		return w.Logger
	}
	return slog.Default()
}

func (w *Worker) now() time.Time {
	if w.Now != nil {
		return w.Now()
	}
	return time.Now()
}

func (w *Worker) batchSize() int {
	if w.BatchSize > 0 {
		return w.BatchSize
	}
	return DefaultBatchSize
}

func (w *Worker) maxAttempts() int {
	if w.MaxAttempts > 0 {
		return w.MaxAttempts
	}
	return DefaultMaxAttempts
}

func (w *Worker) backoff(attempt int) time.Duration {
	if w.Backoff != nil {
		return w.Backoff(attempt)
	}
	return DefaultBackoff(attempt)
}
