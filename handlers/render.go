package handlers

import (
	"bytes"
	"context"
	"fmt"
	"net/http"

	"github.com/a-h/templ"
	"github.com/gorilla/sessions"
	"github.com/labstack/echo/v4"

	"doorman/views"
)

// render renders a page into a buffer first, so a template error yields a
// clean error page instead of half a page.
func (a *app) render(c echo.Context, status int, page templ.Component) error {
	buf, _ := a.bufs.Get().(*bytes.Buffer)
	if buf == nil {
		buf = new(bytes.Buffer)
	}
	buf.Reset()
	defer a.bufs.Put(buf)
	// Rendering is CPU only, and an error page must render even when the
	// request's deadline (or database call) was what failed.
	if err := page.Render(context.WithoutCancel(c.Request().Context()), buf); err != nil {
		return fmt.Errorf("render: %w", err)
	}
	if src := a.formActionFor(c); src != "" {
		c.Response().Header().Set("Content-Security-Policy", cspWithFormAction(src))
	}
	return c.HTMLBlob(status, buf.Bytes())
}

// page builds the layout's props for this request. It consumes the flash
// messages, so call it once, for the page actually rendered.
func (a *app) page(c echo.Context, title, nav string) views.Page {
	p := views.Page{Title: title, Nav: nav, Assets: a.assets}
	// The script's in-place refresh of a list (after a push) re-reads the
	// page in the background: it must not take the one-time messages that
	// the tab's next real page is to show. Signed out, it shows them
	// without taking them: the script reads its sign-out notice there.
	if c.Request().Header.Get(refreshHeader) == "" {
		p.Flashes = a.takeFlashes(c)
	} else if authOf(c) == nil {
		p.Flashes = a.peekFlashes(c)
	}
	p.CSRF, _ = c.Get(ctxCSRF).(string)
	if au := authOf(c); au != nil {
		p.UserEmail, p.IsDemo = au.User.Email, au.User.IsDemo
	}
	return p
}

// refreshHeader marks the script's background re-read of a page.
const refreshHeader = "X-Doorman-Refresh"

// Flash messages travel to the next page in a cookie signed with a key from
// the database (gorilla/sessions' CookieStore), so they cannot be forged and
// work across instances. A message added while rendering a page is shown on
// that page; one added before a redirect rides the cookie to the next page.
const (
	flashSuccess = views.FlashSuccess
	flashNotice  = views.FlashNotice
)

// maxFlashesPerKind bounds the messages of one kind waiting in the cookie.
const maxFlashesPerKind = 3

type flashState struct {
	pending []views.Flash
	hooked  bool
}

func (a *app) flashState(c echo.Context) *flashState {
	st, _ := c.Get(ctxFlash).(*flashState)
	if st == nil {
		st = &flashState{}
		c.Set(ctxFlash, st)
	}
	return st
}

// addFlash queues a message for the page this request shows, or, if it ends
// in a redirect, for the next page.
func (a *app) addFlash(c echo.Context, kind, text string) {
	st := a.flashState(c)
	st.pending = append(st.pending, views.Flash{Kind: kind, Text: text})
	if st.hooked {
		return
	}
	st.hooked = true
	c.Response().Before(func() {
		if len(st.pending) == 0 {
			return
		}
		fs := a.flashSession(c)
		for _, f := range st.pending {
			fs.AddFlash(f.Text, f.Kind)
			// A client that posts again and again without loading a page
			// (a script) would grow the cookie past what a browser keeps:
			// only the latest few messages of each kind ride along.
			if v, ok := fs.Values[f.Kind].([]any); ok && len(v) > maxFlashesPerKind {
				fs.Values[f.Kind] = v[len(v)-maxFlashesPerKind:]
			}
		}
		if err := fs.Save(c.Request(), c.Response()); err != nil {
			a.log.Error("save flash", "err", err)
		}
	})
}

// takeFlashes returns the messages for the page being rendered: those that
// came with the request's cookie, then those added during this request.
func (a *app) takeFlashes(c echo.Context) []views.Flash {
	st := a.flashState(c)
	var out []views.Flash
	if _, err := c.Request().Cookie(a.cookieName(c.Request(), flashCookie)); err == nil {
		fs := a.flashSession(c)
		for _, kind := range [...]string{flashNotice, flashSuccess} {
			for _, v := range fs.Flashes(kind) {
				if text, ok := v.(string); ok {
					out = append(out, views.Flash{Kind: kind, Text: text})
				}
			}
		}
		fs.Options.MaxAge = -1
		if err := fs.Save(c.Request(), c.Response()); err != nil {
			a.log.Error("clear flash", "err", err)
		}
	}
	out = append(out, st.pending...)
	st.pending = nil
	return out
}

// peekFlashes is the messages waiting in the request's cookie, left there
// for the tab's next real page. A background re-read shows them only to
// the script: a tab that finds itself signed out that way (its stream was
// refused) reads its notice, when and from where, from the page.
func (a *app) peekFlashes(c echo.Context) []views.Flash {
	if _, err := c.Request().Cookie(a.cookieName(c.Request(), flashCookie)); err != nil {
		return nil
	}
	// Values, not Flashes(): that would delete them from the request's
	// session, and a later save in this request would drop them.
	fs := a.flashSession(c)
	var out []views.Flash
	for _, kind := range [...]string{flashNotice, flashSuccess} {
		v, _ := fs.Values[kind].([]any)
		for _, x := range v {
			if text, ok := x.(string); ok {
				out = append(out, views.Flash{Kind: kind, Text: text})
			}
		}
	}
	return out
}

func (a *app) flashSession(c echo.Context) *sessions.Session {
	// A cookie with a bad signature yields an empty session and an error we
	// can ignore: the message is simply dropped.
	fs, _ := a.flashes.Get(c.Request(), a.cookieName(c.Request(), flashCookie))
	fs.Options = &sessions.Options{Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: a.isHTTPS(c.Request())}
	return fs
}
