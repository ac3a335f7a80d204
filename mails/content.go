package mails

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"strings"
	"time"
	"unicode"

	"doorman/db"
	"doorman/mailer"
	"doorman/timefmt"
	"doorman/views"
)

// content is one mail's words, from which both parts are made: the text
// part (text) and the HTML part (views.Mail). Everything in it is plain
// text; the HTML part is escaped by templ.
type content struct {
	subject, preheader, heading string
	paragraphs                  []string // before the details
	detailsLead                 string
	details                     []detail
	actionLead                  string
	action                      hyperlink // the one thing to do
	actionNote                  string
	secondary                   []hyperlink
	closing                     []string
	reason                      string    // why the user got this mail
	footerLink                  hyperlink // how to stop this kind of mail, if one can
}

type detail struct{ label, value string }

type hyperlink struct{ lead, label, url string }

// formatTime writes t as every page, mail and command does: in UTC and
// saying so, since the reader's zone is unknown ("1 Dec 2026, 18:20 UTC");
// "" for the zero time.
func formatTime(t time.Time) string { return timefmt.Exact(t) }

// whereRows are the detail rows of w, each only if it is known.
func whereRows(w Where, extra ...detail) []detail {
	var rows []detail
	add := func(label, value string) {
		if value = oneLine(value); value != "" {
			rows = append(rows, detail{label, value})
		}
	}
	add("Device", w.Device)
	add("Location", w.Location)
	add("IP address", w.IP)
	for _, e := range extra {
		add(e.label, e.value)
	}
	add("Time", formatTime(w.At))
	return rows
}

// maxValue caps what a mail prints of one value from outside (a device
// label, a location): enough for any real one, and a bound on a hostile
// User-Agent.
const maxValue = 200

// oneLine makes s safe to print on one line of the text part: the device
// label and location come from the request (User-Agent, GeoIP), so a line
// break in them could forge a line of the mail ("Reset here: https://…")
// and a bidirectional override could reorder what is shown. Both are
// dropped, runs of space collapse, and it is cut at maxValue runes.
func oneLine(s string) string {
	var b strings.Builder
	n := 0
	space := false
	for _, r := range strings.TrimSpace(s) {
		switch {
		case unicode.IsControl(r) || unicode.IsSpace(r):
			space = true
			continue
		case isBidiControl(r):
			continue
		}
		if n == maxValue {
			b.WriteString("…")
			break
		}
		if space && b.Len() > 0 {
			b.WriteByte(' ')
			n++
		}
		space = false
		b.WriteRune(r)
		n++
	}
	return b.String()
}

func isBidiControl(r rune) bool {
	return (r >= '\u202a' && r <= '\u202e') || (r >= '\u2066' && r <= '\u2069') ||
		r == '\u200e' || r == '\u200f' || r == '\u061c'
}

// linkNote says how long a link works, as a duration from when the mail is
// made ("This link works for 30 minutes, and only once."); if that can't be
// worked out, until when. works is the start: "This link works".
func linkNote(works string, created, expires time.Time, once bool) string {
	var when string
	switch d := expires.Sub(created); {
	case expires.IsZero():
	case !created.IsZero() && d > 0:
		when = " for " + duration(d)
	default:
		when = " until " + formatTime(expires)
	}
	switch {
	case once && when != "":
		return works + when + ", and only once."
	case once:
		return works + " only once."
	case when != "":
		return works + when + "."
	}
	return ""
}

// duration writes d, rounded to the minute, in the largest whole unit:
// "15 minutes", "1 hour", "24 hours", "7 days".
func duration(d time.Duration) string {
	d = d.Round(time.Minute)
	if d < time.Minute {
		d = time.Minute
	}
	const day = 24 * time.Hour
	switch {
	case d >= 2*day && d%day == 0:
		return plural(int(d/day), "day")
	case d >= time.Hour && d%time.Hour == 0:
		return plural(int(d/time.Hour), "hour")
	default:
		return plural(int(d/time.Minute), "minute")
	}
}

func plural(n int, unit string) string {
	if n == 1 {
		return "1 " + unit
	}
	return fmt.Sprintf("%d %ss", n, unit)
}

// text is the plain-text part. It stands alone: every link is written out
// in full on its own line (so no client can wrap or hide it), the details
// are "Label: value" lines, and the footer follows the usual "-- " line.
func (c content) text(site, homeURL string) string {
	var b strings.Builder
	para := func(lines ...string) {
		if b.Len() > 0 {
			b.WriteString("\n")
		}
		for _, l := range lines {
			b.WriteString(l)
			b.WriteString("\n")
		}
	}
	linkLines := func(l hyperlink) {
		var lines []string
		if l.lead != "" {
			lines = append(lines, l.lead)
		}
		para(append(lines, l.label+":", l.url)...)
	}
	para(c.heading)
	for _, p := range c.paragraphs {
		para(p)
	}
	if len(c.details) > 0 {
		var lines []string
		if c.detailsLead != "" {
			lines = append(lines, c.detailsLead)
		}
		for _, d := range c.details {
			lines = append(lines, d.label+": "+d.value)
		}
		para(lines...)
	}
	if c.action.url != "" {
		linkLines(hyperlink{lead: c.actionLead, label: c.action.label, url: c.action.url})
	}
	if c.actionNote != "" {
		para(c.actionNote)
	}
	for _, l := range c.secondary {
		linkLines(l)
	}
	for _, p := range c.closing {
		para(p)
	}
	b.WriteString("\n-- \n")
	if c.reason != "" {
		b.WriteString(c.reason + "\n")
	}
	if c.footerLink.url != "" {
		lead := c.footerLink.label
		if c.footerLink.lead != "" {
			lead = c.footerLink.lead + " " + lead
		}
		b.WriteString(lead + ":\n" + c.footerLink.url + "\n")
	}
	if homeURL != "" {
		b.WriteString(site + ": " + homeURL + "\n")
	}
	return b.String()
}

// props is the HTML part's view model: the same content.
func (c content) props(site, homeURL, homeLabel string) views.MailProps {
	p := views.MailProps{
		Subject:     c.subject,
		Preheader:   c.preheader,
		Site:        site,
		Heading:     c.heading,
		Paragraphs:  c.paragraphs,
		DetailsLead: c.detailsLead,
		ActionLead:  c.actionLead,
		Action:      views.MailLink{Label: c.action.label, URL: c.action.url},
		ActionNote:  c.actionNote,
		Closing:     c.closing,
		Reason:      c.reason,
		FooterLink:  views.MailLink{Lead: c.footerLink.lead, Label: c.footerLink.label, URL: c.footerLink.url},
		HomeURL:     homeURL,
		HomeLabel:   homeLabel,
	}
	for _, d := range c.details {
		p.Details = append(p.Details, views.MailDetail{Label: d.label, Value: d.value})
	}
	for _, l := range c.secondary {
		p.Secondary = append(p.Secondary, views.MailLink{Lead: l.lead, Label: l.label, URL: l.url})
	}
	return p
}

// mail makes the db.Mail of c: both parts, sealed with Box, a new
// Message-ID, and the subject on one line (it holds no user text, but a
// header must never take a line break from anywhere). The subject is never
// sealed, so it must never hold a link or a secret.
func (b Builder) mail(kind, to string, created, notAfter time.Time, c content) db.Mail {
	site := b.site()
	home, homeLabel := b.home()
	var buf bytes.Buffer
	// Rendering into a buffer fails only on a bug in the template (the
	// props are plain strings), so it is not an error a caller could
	// handle.
	if err := views.Mail(c.props(site, home, homeLabel)).Render(context.Background(), &buf); err != nil {
		panic(fmt.Sprintf("mails: render %s: %v", kind, err))
	}
	return mailer.Seal(b.Box, db.Mail{
		MessageID: b.messageID(),
		To:        to,
		Kind:      kind,
		Subject:   oneLine(c.subject),
		Text:      c.text(site, home),
		HTML:      buf.String(),
		CreatedAt: created,
		NotAfter:  notAfter,
	})
}

// messageID is a new Message-ID: 128 random bits, so two never collide
// (the outbox refuses a duplicate), at Host.
func (b Builder) messageID() string {
	var r [16]byte
	rand.Read(r[:]) // never fails (crypto/rand since Go 1.24)
	host := b.Host
	if host == "" {
		host = b.host()
	}
	if host == "" {
		host = "localhost"
	}
	return hex.EncodeToString(r[:]) + "@" + host
}

func (b Builder) site() string {
	if s := oneLine(b.Site); s != "" {
		return s
	}
	return "Doorman"
}

// host is BaseURL's host ("id.example.com"), "" without a BaseURL.
func (b Builder) host() string {
	u, err := url.Parse(b.BaseURL)
	if err != nil {
		return ""
	}
	return u.Host
}

// home is the footer's link to the site and its label (the host).
func (b Builder) home() (string, string) {
	h := b.host()
	if h == "" {
		return "", ""
	}
	return b.BaseURL, h
}

// at is " at id.example.com", to say which Doorman a mail is from; "" if
// there is no BaseURL.
func (b Builder) at() string {
	if h := b.host(); h != "" {
		return " at " + h
	}
	return ""
}
