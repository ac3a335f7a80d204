package handlers

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"regexp"
	"strings"

	"github.com/labstack/echo/v4"

	"doorman/mailer"
	"doorman/paths"
	"doorman/views"
)

// The development mail viewer: with no SMTP server set up, every mail is
// written to a folder (mailer.DirTransport); a developer who starts the
// server with -dev-mail gets it listed here, so they can complete every
// email flow on their own machine. It shows secret links (a password reset
// is the whole account) to whoever can reach the page, so it is off unless
// asked for, main refuses it beside -trusted-proxy or -base-url (a
// deployment), and even then it answers only devMailLocal requests.

// devMailLocal lets a request through to the viewer only when it comes
// straight from this machine: a loopback peer, a loopback Host, and no
// proxy's forwarding header. A reverse proxy on the same machine is a
// loopback peer too; nginx passes the public Host (id.example.com) and
// X-Forwarded-For, so such a request is refused. Anything else gets the 404
// of a route that does not exist, so the viewer's presence is not shown.
func devMailLocal(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		if !loopbackPeer(r.RemoteAddr) || !loopbackHost(r.Host) || forwarded(r.Header) {
			return echo.ErrNotFound
		}
		return next(c)
	}
}

// loopbackPeer reports whether the TCP peer address is a loopback one.
func loopbackPeer(remoteAddr string) bool {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		return false
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}

// loopbackHost reports whether a Host header names this machine: localhost
// or a loopback address, with or without a port.
func loopbackHost(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}

// forwarded reports whether a proxy says it passed the request on.
func forwarded(h http.Header) bool {
	for _, name := range []string{"X-Forwarded-For", "X-Forwarded-Host", "X-Real-Ip", "Forwarded", "Via"} {
		if h.Get(name) != "" {
			return true
		}
	}
	return false
}

func (a *app) devMailList(c echo.Context) error {
	list, err := mailer.ListDir(a.mail.DevDir)
	if err != nil {
		return fmt.Errorf("dev mail: %w", err)
	}
	rows := make([]views.DevMailRow, len(list))
	for i, m := range list {
		rows[i] = views.DevMailRow{URL: paths.DevMailMessage(m.Name), To: m.To, Subject: m.Subject, Date: exactTime(m.Date)}
	}
	return a.render(c, http.StatusOK, views.DevMailListPage(views.DevMailListProps{Page: a.page(c, "Development mail", ""), Dir: a.mail.DevDir, Mails: rows}))
}

// mailLink finds the links in a mail's text part.
var mailLink = regexp.MustCompile(`https?://[^\s<>"]+`)

func (a *app) devMailShow(c echo.Context) error {
	m, err := mailer.ReadStored(a.mail.DevDir, c.Param("name"))
	if err != nil {
		return echo.NewHTTPError(http.StatusNotFound, "No such mail.")
	}
	noReferrer(c)
	return a.render(c, http.StatusOK, views.DevMailPage(views.DevMailProps{
		Page: a.page(c, m.Subject, ""), Subject: m.Subject, From: m.From, To: m.To, Date: exactTime(m.Date),
		Text: m.Text, Links: mailLink.FindAllString(m.Text, -1),
	}))
}
