package mailer

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"strings"
	"time"

	gomail "github.com/wneessen/go-mail"

	"doorman/db"
)

// newMsg builds the message for m: From, To, Subject, Date (when the mail
// was queued), Message-ID <m.MessageID>, Auto-Submitted, and a
// multipart/alternative body of the text and the HTML part, both UTF-8 and
// quoted-printable. Nothing else: no User-Agent or X-Mailer naming the
// software and its version.
//
// Every field is fixed by the outbox row, so a retry sends the same
// message with the same Message-ID (only the MIME boundary differs), which
// is what lets a receiver drop a duplicate.
func newMsg(from string, m db.OutboxMail) (*gomail.Msg, error) {
	if err := checkMessageID(m.MessageID); err != nil {
		return nil, err
	}
	msg := gomail.NewMsg(gomail.WithNoDefaultUserAgent(), gomail.WithCharset(gomail.CharsetUTF8),
		gomail.WithEncoding(gomail.EncodingQP))
	if err := msg.From(from); err != nil {
		return nil, &PermanentError{Err: fmt.Errorf("mailer: bad From address: %w", err)}
	}
	if err := msg.To(m.To); err != nil {
		// An address that does not parse never will.
		return nil, &PermanentError{Err: fmt.Errorf("mailer: bad To address: %w", err)}
	}
	// Header values are written as given: a line break in a subject would
	// start a header of the subject's choosing.
	msg.Subject(oneLine(m.Subject))
	date := m.CreatedAt
	if date.IsZero() {
		date = time.Now()
	}
	msg.SetDateWithValue(date)
	msg.SetMessageIDWithValue(m.MessageID)
	// RFC 3834: a machine wrote this, so vacation responders and the like
	// should not answer it.
	msg.SetGenHeader("Auto-Submitted", "auto-generated")
	msg.SetBodyString(gomail.TypeTextPlain, m.Text)
	msg.AddAlternativeString(gomail.TypeTextHTML, m.HTML)
	return msg, nil
}

// render is the message for m as an SMTP server receives it (after
// un-stuffing the dots of the DATA transfer): what DirTransport writes.
func render(from string, m db.OutboxMail) ([]byte, error) {
	msg, err := newMsg(from, m)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	if _, err := msg.WriteTo(&b); err != nil {
		return nil, fmt.Errorf("mailer: write message: %w", err)
	}
	return b.Bytes(), nil
}

// checkMessageID refuses a Message-ID that would not make a valid header
// (msg-id, RFC 5322 section 3.6.4: printable ASCII, no brackets or spaces).
func checkMessageID(id string) error {
	if id == "" {
		return &PermanentError{Err: errors.New("mailer: the mail has no Message-ID")}
	}
	for _, r := range id {
		if r <= ' ' || r > '~' || r == '<' || r == '>' {
			return &PermanentError{Err: fmt.Errorf("mailer: Message-ID %q is not printable ASCII without <>", id)}
		}
	}
	return nil
}

func oneLine(s string) string {
	return strings.Join(strings.FieldsFunc(s, func(r rune) bool { return r == '\r' || r == '\n' }), " ")
}

// Parsed is a message read back with the standard library (net/mail,
// mime/multipart, quoted-printable): its headers, decoded, and its text and
// HTML parts. Parts are assumed UTF-8 (the charset Doorman writes).
type Parsed struct {
	// Header is every header as written (encoded words not decoded).
	Header mail.Header
	// From, To and Subject are decoded (RFC 2047).
	From, To, Subject string
	// Date is the Date header (zero if absent or malformed).
	Date time.Time
	// MessageID is the Message-ID without its angle brackets.
	MessageID string
	// Text and HTML are the decoded text/plain and text/html parts (the
	// first of each), with line breaks as "\n" (mail has them as CRLF).
	Text, HTML string
}

// maxParts bounds how many MIME parts Parse reads: a message Doorman wrote
// has two, and a bigger count means something else wrote it.
const maxParts = 100

// Parse parses raw, an RFC 5322 message: the headers, and the first
// text/plain and text/html parts at any depth of multipart nesting, with
// their transfer encoding (quoted-printable or base64) undone.
func Parse(raw []byte) (Parsed, error) {
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return Parsed{}, fmt.Errorf("mailer: parse message: %w", err)
	}
	p := Parsed{Header: msg.Header}
	p.decodeHeaders()
	parts := 0
	err = p.readPart(msg.Header.Get("Content-Type"), msg.Header.Get("Content-Transfer-Encoding"), msg.Body, &parts)
	return p, err
}

// decodeHeaders fills From, To, Subject, Date and MessageID from Header.
func (p *Parsed) decodeHeaders() {
	var dec mime.WordDecoder
	decode := func(name string) string {
		v := p.Header.Get(name)
		if d, err := dec.DecodeHeader(v); err == nil {
			return d
		}
		return v
	}
	p.From, p.To, p.Subject = decode("From"), decode("To"), decode("Subject")
	p.MessageID = strings.Trim(strings.TrimSpace(p.Header.Get("Message-ID")), "<>")
	if d, err := p.Header.Date(); err == nil {
		p.Date = d
	}
}

func (p *Parsed) readPart(contentType, encoding string, body io.Reader, parts *int) error {
	*parts++
	if *parts > maxParts {
		return errors.New("mailer: parse message: too many MIME parts")
	}
	mediaType, params, err := mime.ParseMediaType(contentType)
	if contentType == "" {
		mediaType, err = "text/plain", nil // RFC 2045's default
	}
	if err != nil {
		return fmt.Errorf("mailer: parse message: Content-Type: %w", err)
	}
	if strings.HasPrefix(mediaType, "multipart/") {
		mr := multipart.NewReader(body, params["boundary"])
		for {
			// NextPart undoes quoted-printable itself (and then drops the
			// Content-Transfer-Encoding header); base64 is left to us.
			part, err := mr.NextPart()
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return fmt.Errorf("mailer: parse message: %w", err)
			}
			err = p.readPart(part.Header.Get("Content-Type"), part.Header.Get("Content-Transfer-Encoding"), part, parts)
			if err != nil {
				return err
			}
		}
	}
	var r io.Reader = body
	switch strings.ToLower(strings.TrimSpace(encoding)) {
	case "quoted-printable":
		r = quotedprintable.NewReader(body)
	case "base64":
		r = base64.NewDecoder(base64.StdEncoding, body) // skips line breaks
	}
	switch mediaType {
	case "text/plain":
		if p.Text != "" {
			return nil
		}
		b, err := io.ReadAll(r)
		if err != nil {
			return fmt.Errorf("mailer: parse message: text part: %w", err)
		}
		p.Text = lf(b)
	case "text/html":
		if p.HTML != "" {
			return nil
		}
		b, err := io.ReadAll(r)
		if err != nil {
			return fmt.Errorf("mailer: parse message: HTML part: %w", err)
		}
		p.HTML = lf(b)
	}
	return nil
}

// lf turns the CRLF line breaks of mail into the "\n" the rest of the
// program (and every test) writes.
func lf(b []byte) string { return strings.ReplaceAll(string(b), "\r\n", "\n") }
