package handlers

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/labstack/echo/v4"

	"doorman/live"
	"doorman/views"
)

// errorTexts are the headings and default explanations of error pages.
var errorTexts = map[int][2]string{
	http.StatusBadRequest:            {"That request didn't make sense", "Something in the request was malformed. Go back and try again."},
	http.StatusUnauthorized:          {"Please sign in", "You need to sign in to see this page."},
	http.StatusForbidden:             {"Not allowed", "This request was refused."},
	http.StatusNotFound:              {"Page not found", "There is nothing here. It may have been removed, or the link may be wrong."},
	http.StatusMethodNotAllowed:      {"Not allowed", "This address does not accept that kind of request."},
	http.StatusRequestEntityTooLarge: {"Too much data", "The request was larger than this site accepts."},
	http.StatusTooManyRequests:       {"Too many attempts", "Please wait a little and try again."},
	http.StatusInternalServerError:   {"Something went wrong", "The problem is on our side and has been logged. Please try again in a moment."},
	http.StatusServiceUnavailable:    {"Temporarily unavailable", "Doorman can't serve this right now. Please try again in a moment."},
}

// clientGone reports whether err is the request's own context ended
// because the client went away (closed the tab, a load test stopped):
// not a server fault, so logged at Debug, as handleError does.
func clientGone(c echo.Context, err error) bool {
	return errors.Is(err, context.Canceled) && c.Request().Context().Err() != nil
}

// handleError is the one HTTPErrorHandler. Expected outcomes arrive as
// *echo.HTTPError with text meant for the user; anything else is a 500 whose
// details go to the log, never to the page.
func (a *app) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	// The browser went away mid-request (closed the tab, or a load test
	// stopped): nobody is there to read an error page, and it is not a
	// server fault. Noted as 499, as nginx does, and logged at Debug.
	if clientGone(c, err) {
		c.Response().Status = 499
		a.log.Debug("client went away", "method", c.Request().Method, "path", c.Request().URL.Path)
		return
	}
	code, message := http.StatusInternalServerError, ""
	if a.unavailable != nil && a.unavailable(err) {
		// The database cannot serve now (down, full, read-only, too slow):
		// say so, and when to try again. Nothing was half done: every
		// write is one transaction.
		code = http.StatusServiceUnavailable
		message = "Doorman can't reach its database right now. Please try again in a moment."
		if m := c.Request().Method; m != http.MethodGet && m != http.MethodHead {
			message = "Doorman can't save changes right now, so nothing was changed. Please try again in a moment."
		}
		c.Response().Header().Set("Retry-After", "5")
	}
	var he *echo.HTTPError
	if a.kindOf(c) == programRoute {
		// API clients get problem+json, never an HTML page.
		a.writeAPIError(c, err, code, message)
		return
	}
	if errors.As(err, &he) {
		code = he.Code
		// Echo's own errors carry the bare status text; ours carry a sentence.
		if m, ok := he.Message.(string); ok && m != http.StatusText(code) {
			message = m
		}
	}
	texts, ok := errorTexts[code]
	if !ok {
		texts = errorTexts[http.StatusInternalServerError]
		if code < 500 {
			texts = errorTexts[http.StatusBadRequest]
		}
	}
	if message == "" {
		message = texts[1]
	}
	r := c.Request()
	reqID := c.Response().Header().Get(echo.HeaderXRequestID)
	switch {
	case errors.Is(err, errBusy):
		a.log.Debug("request shed", "method", r.Method, "path", r.URL.Path, "request_id", reqID)
	case errors.Is(err, live.ErrFull):
		// Expected at the configured limit, not a fault: a warning, like
		// any refusal.
		a.log.Warn("event stream refused: the instance holds its most streams", "path", r.URL.Path, "status", code, "request_id", reqID)
	case code >= 500:
		a.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "status", code, "request_id", reqID, "err", err)
	default:
		a.log.Warn("request refused", "method", r.Method, "path", r.URL.Path, "status", code, "request_id", reqID, "reason", fmt.Sprint(err))
	}
	if r.Method == http.MethodHead {
		_ = c.NoContent(code)
		return
	}
	p := views.ErrorProps{Page: a.page(c, texts[0], ""), Status: code, Heading: texts[0], Message: message}
	if rerr := a.render(c, code, views.ErrorPage(p)); rerr != nil {
		a.log.Error("render error page", "err", rerr, "request_id", reqID)
		_ = c.String(code, texts[0]+"\n")
	}
}

// errSignInsReset answers a write that would have made a credential (a
// token, a device approval) when the account was reset while the request
// was in flight: nothing was made, and this session has ended with the rest.
func errSignInsReset() error {
	return echo.NewHTTPError(http.StatusConflict, "Your account's sessions were just reset (for example, someone chose \"Sign out everywhere\"), so nothing was created. Please sign in again.")
}
