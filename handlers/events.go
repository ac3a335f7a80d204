package handlers

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"doorman/db"
	"doorman/live"
)

// events is GET /settings/security/events: a text/event-stream for this
// browser session (the auth group already refused an ended or unknown one,
// exactly like any other signed-out request). It sends
//   - "event: signed-out" with the reason in words when this session ends
//     (from another device, a password change, an operator, the session cap,
//     expiry), then closes;
//   - "event: sessions" when the account's list of sessions changes;
//   - a comment at least every StreamHeartbeat, so proxies keep it open.
//
// Each heartbeat also rereads this session from the store: a missed push
// is made good within one heartbeat, and expiry is noticed even if no one
// writes.
func (a *app) events(c echo.Context) error {
	if a.live == nil {
		return echo.NewHTTPError(http.StatusNotFound)
	}
	au := authOf(c)
	st, err := a.subscribe(c, au)
	if err != nil {
		return err
	}
	defer st.Close()
	send := openEventStream(c)
	if !send("retry: 3000\n: stream open\n\n") {
		return nil
	}
	a.streamEvents(streamContext(c), st, au.Session.ID, send)
	return nil
}

// subscribe gives this tab its place among au's streams, or says why not.
func (a *app) subscribe(c echo.Context, au *authInfo) (*live.Stream, error) {
	st, err := a.live.Subscribe(au.User.ID, au.Session.ID)
	switch {
	// Refused streams say when to try again, though a browser's
	// EventSource cannot read it: the tab's script asks whether it is still
	// signed in (a 429 or 503 here is no sign-out) and retries with its own
	// backoff. A place frees only when a tab closes, so no time is exact.
	case errors.Is(err, live.ErrTooManyStreams):
		c.Response().Header().Set("Retry-After", streamRetryAfter)
		return nil, echo.NewHTTPError(http.StatusTooManyRequests, "Too many open tabs are watching this session.")
	case errors.Is(err, live.ErrTooManyForUser):
		c.Response().Header().Set("Retry-After", streamRetryAfter)
		return nil, echo.NewHTTPError(http.StatusTooManyRequests, "Too many open tabs are watching this account.")
	case errors.Is(err, live.ErrFull):
		// The instance's limit, not this account's doing: 503, as for any
		// overload.
		c.Response().Header().Set("Retry-After", streamRetryAfter)
		return nil, echo.NewHTTPError(http.StatusServiceUnavailable, "Doorman is watching too many open tabs right now. This page still works; it will update itself again later.").SetInternal(err)
	case errors.Is(err, live.ErrClosed):
		return nil, echo.NewHTTPError(http.StatusServiceUnavailable, "The server is restarting. Please try again in a moment.")
	case err != nil:
		return nil, err
	}
	return st, nil
}

// openEventStream starts the response as an event stream and returns how
// to send on it: send writes s and flushes it, and reports whether the tab
// is still there to read it.
func openEventStream(c echo.Context) (send func(s string) bool) {
	w := c.Response()
	// The server's write timeout is for pages; a stream lives until the tab
	// or the session ends.
	rc := http.NewResponseController(w)
	_ = rc.SetWriteDeadline(time.Time{})
	h := w.Header()
	h.Set(echo.HeaderContentType, "text/event-stream")
	h.Set("X-Accel-Buffering", "no") // nginx: pass each event on at once
	w.WriteHeader(http.StatusOK)
	return func(s string) bool {
		if _, err := fmt.Fprint(w, s); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
}

// streamEvents sends st's events for session until the session ends, the
// tab goes or the broker stops it, checking the session every heartbeat
// and when it is due to expire.
func (a *app) streamEvents(ctx context.Context, st *live.Stream, session string, send func(string) bool) {
	// The session may have ended between the session check and Subscribe.
	expires, err := a.live.CheckOne(ctx, session)
	if err != nil {
		expires = a.now().Add(a.cfg.StreamHeartbeat)
	}
	heartbeat := time.NewTicker(a.cfg.StreamHeartbeat)
	defer heartbeat.Stop()
	expiry := time.NewTimer(max(expires.Sub(a.now()), time.Second))
	defer expiry.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-st.Stopped():
			return
		case <-st.Ended():
			send("event: signed-out\ndata: " + a.liveSignedOutText(ctx, session, st.Reason()) + "\n\n")
			return
		case <-st.Refresh:
			if !send("event: sessions\ndata: changed\n\n") {
				return
			}
		case <-heartbeat.C:
			if !send(": ping\n\n") {
				return
			}
			a.live.CheckOne(ctx, session)
		case <-expiry.C:
			if next, err := a.live.CheckOne(ctx, session); err == nil {
				expiry.Reset(max(next.Sub(a.now()), time.Second))
			} else {
				expiry.Reset(a.cfg.StreamHeartbeat)
			}
		}
	}
}

// streamRetryAfter is the Retry-After (seconds) of a refused stream.
const streamRetryAfter = "30"

// signedOutText is what the ended tab says, by why its session ended, when
// its row can't be read (liveSignedOutText says more).
func signedOutText(reason string) string {
	switch reason {
	case db.ReasonSessionLimit:
		return "You were signed out of this device because your account signed in on too many others."
	case live.ReasonExpired:
		return "Your session expired. Please sign in again."
	case db.ReasonSignedOut:
		return "You signed out of this device."
	default:
		return "You were signed out of this device."
	}
}
