// Package backchannel sends the back-channel logouts Doorman owes apps
// (OpenID Connect Back-Channel Logout 1.0): when a Doorman session ends,
// every app it signed in to is told, server to server, with a signed
// logout token, so that the app ends its own session too.
//
// The deliveries are an outbox (the store's logout_deliveries, written in
// the transaction that ended what they report); the Worker here is its
// sender, shaped like the mail outbox's (package mailer): it claims due
// deliveries with a lease, so that with several instances on one database
// each is sent by one of them, POSTs a fresh logout token for every
// attempt, and records the outcome, retrying failures with a backoff until
// the app answers 2xx or the delivery is days old.
package backchannel

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"doorman/db"
)

// Store is the part of the store the Worker uses (db.OIDCStore has it).
type Store interface {
	ClaimLogoutDeliveries(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]db.LogoutDelivery, error)
	LogoutDelivered(ctx context.Context, id int64, now time.Time) error
	LogoutFailed(ctx context.Context, id int64, errText string, next time.Time, giveUp bool, now time.Time) error
}

// Signer makes the logout token of one attempt (oidcprovider.Provider
// does: signed with its current signing key).
type Signer interface {
	LogoutToken(ctx context.Context, d db.LogoutDelivery) (string, error)
}

// Worker defaults (a zero field takes them).
const (
	// DefaultTimeout bounds one POST to an app, connection included. A
	// logout endpoint does a lookup and answers; an app that takes longer
	// is treated as down and tried again later, so that one slow app
	// holds nothing up (the batch is sent in parallel, see runOnce).
	DefaultTimeout = 5 * time.Second
	// DefaultLease is how long a claim holds a delivery: far longer than
	// a send (DefaultTimeout), short enough that a delivery a crashed
	// instance held is sent by another a minute later.
	DefaultLease = time.Minute
	// DefaultPoll is how often the outbox is looked at when nothing kicks
	// the worker: what a delivery owed by another instance's revocation
	// (or due for a retry) waits at most. Cheap: one indexed query.
	DefaultPoll = 2 * time.Second
	// DefaultBatchSize is how many deliveries one claim takes (and sends
	// at once).
	DefaultBatchSize = 16
	// DefaultGiveUpAfter is how long a delivery is retried: three days
	// covers an app down over a weekend. Past that, whatever the app still
	// holds has long expired on its own terms, or its operator has a
	// bigger problem than one logout.
	DefaultGiveUpAfter = 72 * time.Hour
	// maxBody is how much of an app's answer is read: nothing in it is
	// used, and an app must not make Doorman read megabytes.
	maxBody = 4 << 10
	// maxErrText bounds the error text kept with a delivery.
	maxErrText = 200
)

// backoffSteps are the waits after the first, second, … failed attempt;
// the last repeats.
var backoffSteps = []time.Duration{10 * time.Second, 30 * time.Second, time.Minute, 5 * time.Minute,
	15 * time.Minute, 30 * time.Minute, time.Hour}

// DefaultBackoff is the wait after the attempt-th failed attempt: 10 s,
// 30 s, 1 min, 5 min, 15 min, 30 min, then hourly, spread by ±20% so that
// the deliveries that failed together (an app down) are not all retried
// in the same second.
func DefaultBackoff(attempt int) time.Duration {
	d := backoffSteps[min(max(attempt, 1), len(backoffSteps))-1]
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

// NewClient returns the HTTP client deliveries are sent with.
//
//   - No redirects are followed: a logout token is for the URI the
//     operator registered, and a redirect would carry it (in a POST body
//     replayed by the client) wherever the answer says. A 3xx counts as a
//     failure, retried like any other.
//   - No cookie jar: the POST is not a browser's and carries nothing but
//     the token.
//   - A timeout for the whole exchange (DefaultTimeout).
//   - Private and loopback addresses are allowed, on purpose: the URIs
//     are registered by the operator (doorman apps add), not by users or
//     apps, and an app on the same host or network (http://127.0.0.1:3000,
//     an internal service name) is the ordinary case. There is no
//     server-side request forgery to guard against when the only person
//     who can name a URI is the one who runs the server.
func NewClient(timeout time.Duration) *http.Client {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.ResponseHeaderTimeout = timeout
	return &http.Client{
		Transport:     t,
		Timeout:       timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// Worker sends the back-channel logout outbox. Several workers (one per
// instance) may share a store: a claim holds each delivery for one worker
// at a time. Delivery is at least once: an app answered 2xx but the
// outcome was not recorded (the database went away in between) gets the
// logout again after the lease, with a new token and jti; ending a session
// twice is harmless for an app.
//
// Set the fields, then call Run; Kick and Notify may be called at any
// time, from any goroutine, even before Run. A Worker must not be copied
// once used.
type Worker struct {
	Store  Store
	Signer Signer
	// Client posts the tokens (NewClient(DefaultTimeout) if nil).
	Client *http.Client
	// Logger gets one line per outcome: app, delivery id, user id,
	// attempt, never a token (slog.Default if nil).
	Logger *slog.Logger
	// Now is the clock (time.Now if nil).
	Now func() time.Time
	// Lease, Poll, BatchSize and GiveUpAfter: see the Default…
	// constants, used where zero.
	Lease       time.Duration
	Poll        time.Duration
	BatchSize   int
	GiveUpAfter time.Duration
	// Backoff is the wait after the attempt-th failure (DefaultBackoff if
	// nil).
	Backoff func(attempt int) time.Duration

	once   sync.Once
	kick   chan struct{}
	client *http.Client
}

func (w *Worker) init() {
	w.once.Do(func() {
		w.kick = make(chan struct{}, 1)
		w.client = w.Client
		if w.client == nil {
			w.client = NewClient(DefaultTimeout)
		}
	})
}

// Kick makes a waiting Run look at the outbox now rather than at the next
// poll. It never blocks.
func (w *Worker) Kick() {
	w.init()
	select {
	case w.kick <- struct{}{}:
	default: // a kick is pending already
	}
}

// Notify is the store's event sink (db.EventSink): a session ended in
// this process has just committed, with whatever logouts it owes, so the
// worker looks now instead of at the next poll. Endings in other
// instances are found by polling.
func (w *Worker) Notify(events []db.Event) {
	for _, e := range events {
		if e.Kind == db.SessionEnded {
			w.Kick()
			return
		}
	}
}

// Run sends the outbox until ctx ends, then returns ctx's error. A failing
// database is logged and tried again at the next poll: it never stops Run.
func (w *Worker) Run(ctx context.Context) error {
	w.init()
	if w.Store == nil || w.Signer == nil {
		return errors.New("backchannel: Worker needs a Store and a Signer")
	}
	poll := w.Poll
	if poll <= 0 {
		poll = DefaultPoll
	}
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		claimed, err := w.runOnce(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil {
			w.logger().Error("back-channel logout: claim failed", "error", err)
		}
		// A full batch means more may be due: go on at once.
		if err == nil && claimed >= w.batchSize() {
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

// RunOnce claims one batch and sends it, returning how many deliveries it
// claimed; err reports a failed claim (outcomes are recorded and logged,
// not returned).
func (w *Worker) RunOnce(ctx context.Context) (int, error) {
	w.init()
	if w.Store == nil || w.Signer == nil {
		return 0, errors.New("backchannel: Worker needs a Store and a Signer")
	}
	return w.runOnce(ctx)
}

func (w *Worker) runOnce(ctx context.Context) (int, error) {
	lease := w.Lease
	if lease <= 0 {
		lease = DefaultLease
	}
	cctx, cancel := context.WithTimeout(ctx, db.CallTimeout)
	ds, err := w.Store.ClaimLogoutDeliveries(cctx, w.now(), lease, w.batchSize())
	cancel()
	if err != nil {
		return 0, fmt.Errorf("backchannel: claim deliveries: %w", err)
	}
	// In parallel: each send is bounded by the client's timeout, so the
	// whole batch ends well within the lease, and an app that does not
	// answer delays nobody else's logout.
	var wg sync.WaitGroup
	for _, d := range ds {
		wg.Go(func() { w.deliver(ctx, d) })
	}
	wg.Wait()
	return len(ds), nil
}

// deliver sends d once and records the outcome.
func (w *Worker) deliver(ctx context.Context, d db.LogoutDelivery) {
	log := w.logger().With("app", d.ClientID, "delivery_id", d.ID, "user_id", d.UserID, "attempt", d.Attempts)
	// Outcomes are recorded even while ctx ends (shutdown): a logout the
	// app took must be marked delivered, or it is sent again.
	store := func() (context.Context, context.CancelFunc) {
		return context.WithTimeout(context.WithoutCancel(ctx), db.CallTimeout)
	}
	sendErr := w.send(ctx, d)
	now := w.now()
	if sendErr == nil {
		sctx, cancel := store()
		defer cancel()
		if err := w.Store.LogoutDelivered(sctx, d.ID, now); err != nil {
			w.recordErr(log, "delivered", err)
			return
		}
		log.Info("back-channel logout delivered")
		return
	}
	errText := sendErr.Error()
	if len(errText) > maxErrText {
		errText = errText[:maxErrText]
	}
	next, giveUp := now, false
	switch {
	case ctx.Err() != nil:
		// Shutdown cut the send: not the app's fault; released as due now,
		// another instance can send it at once.
		log.Warn("back-channel logout interrupted by shutdown", "error", errText)
	case now.Sub(d.CreatedAt) >= w.giveUpAfter():
		giveUp = true
		log.Error("back-channel logout failed for too long: giving up", "error", errText, "since", d.CreatedAt)
	default:
		next = now.Add(w.backoff(d.Attempts))
		log.Warn("back-channel logout failed: will retry", "error", errText, "retry_at", next)
	}
	sctx, cancel := store()
	defer cancel()
	if err := w.Store.LogoutFailed(sctx, d.ID, errText, next, giveUp, now); err != nil {
		w.recordErr(log, "failed", err)
	}
}

// send POSTs a fresh logout token for d to its app: nil when the app
// answered 2xx. The error's text is short and names no token; it is kept
// with the delivery and may be shown to the person.
func (w *Worker) send(ctx context.Context, d db.LogoutDelivery) error {
	if d.URI == "" {
		return errors.New("the app takes no back-channel logout any more")
	}
	token, err := w.Signer.LogoutToken(ctx, d)
	if err != nil {
		w.logger().Error("back-channel logout: cannot sign a logout token", "app", d.ClientID, "delivery_id", d.ID, "error", err)
		return errors.New("the logout token could not be signed")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.URI, strings.NewReader(url.Values{"logout_token": {token}}.Encode()))
	if err != nil {
		return errors.New("the app's back-channel logout URI is not a valid URL")
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("User-Agent", "Doorman back-channel logout")
	res, err := w.client.Do(req)
	if err != nil {
		return shortError(err)
	}
	defer res.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, maxBody))
	switch {
	case res.StatusCode >= 200 && res.StatusCode < 300:
		return nil
	case res.StatusCode >= 300 && res.StatusCode < 400:
		return fmt.Errorf("the app answered %s (a redirect, not followed)", res.Status)
	default:
		return fmt.Errorf("the app answered %s", res.Status)
	}
}

// shortError says why a request got no answer, without the URL (and so
// without anything an operator put in its query) that net/http's errors
// repeat.
func shortError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout():
		return errors.New("no answer from the app in time")
	case strings.Contains(err.Error(), "connection refused"):
		return errors.New("the app refused the connection")
	}
	return fmt.Errorf("no answer from the app: %v", err)
}

func (w *Worker) recordErr(log *slog.Logger, outcome string, err error) {
	if errors.Is(err, db.ErrNotFound) {
		// Our lease ran out and another worker finished it meanwhile.
		log.Warn("back-channel logout: claim lost before its outcome was recorded", "outcome", outcome)
		return
	}
	// Not recorded: the delivery is claimable again when the lease ends,
	// and sent again then (at least once).
	log.Error("back-channel logout: outcome not recorded", "outcome", outcome, "error", err)
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

func (w *Worker) giveUpAfter() time.Duration {
	if w.GiveUpAfter > 0 {
		return w.GiveUpAfter
	}
	return DefaultGiveUpAfter
}

func (w *Worker) backoff(attempt int) time.Duration {
	if w.Backoff != nil {
		return w.Backoff(attempt)
	}
	return DefaultBackoff(attempt)
}
