package handlers

import (
	"fmt"
	"net/http"
	"regexp"

	"github.com/labstack/echo/v4"

	"doorman/mailer"
	"doorman/paths"
	"doorman/views"
)

// The development mail viewer: with no SMTP server set up and the server on
// loopback, every mail is written to a folder (mailer.DirTransport) and
// listed here, so a newcomer can complete every email flow on their own
// machine. main registers it only then: it shows secret links to whoever
// can reach the page, which on loopback is the machine's owner.

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
