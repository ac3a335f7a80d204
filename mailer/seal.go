package mailer

import (
	"errors"
	"fmt"
	"strings"

	"doorman/db"
	"doorman/secretbox"
)

// A queued mail's bodies hold the links it carries (a password reset, a
// sign-in, an undo, "This wasn't me"): live credentials until the mail is
// sent and its link used. The outbox erases them once the mail is sent, but
// an erased row lingers in a database's files (SQLite's write-ahead log and
// free pages, PostgreSQL's dead tuples and WAL segments) and in every
// backup taken while the mail waited. So the bodies are sealed before they
// are queued (Seal, with the key kept outside the database, package
// secretbox) and opened only by the worker that sends them (Open): a copy
// of the database, whenever taken, holds no usable link.
//
// The subject and the recipient are not sealed: subjects are fixed words
// per kind of mail (package mails puts no user text and no link in them),
// and the address is the account's, which the users table holds anyway.

// sealedPrefix starts a sealed body. A body without it was queued by a
// Doorman from before sealing (or by one with no key): it is sent as it is.
const sealedPrefix = "sealed:"

// ErrSealedBody means a queued mail's body was sealed with a key this
// server does not have (the key file was replaced without keeping the old
// key), or was altered: it cannot be sent, and it never will be here.
var ErrSealedBody = errors.New("mailer: the mail's body is sealed with a key this server does not have, or was altered: not sent")

// bodyPurpose binds a sealed body to its mail and part: a body copied to
// another mail, or the text part put in the HTML one, does not open.
func bodyPurpose(messageID, part string) string {
	return "outbox " + part + " <" + messageID + ">"
}

// Seal returns m with its text and HTML bodies sealed under box's sealing
// key, bound to m.MessageID; with a nil box, m as it is (no key: nothing to
// seal with; main warns about it).
func Seal(box *secretbox.Box, m db.Mail) db.Mail {
	if box == nil {
		return m
	}
	m.Text = sealedPrefix + box.Seal([]byte(m.Text), bodyPurpose(m.MessageID, "text"))
	m.HTML = sealedPrefix + box.Seal([]byte(m.HTML), bodyPurpose(m.MessageID, "html"))
	return m
}

// Open returns m with its sealed bodies opened. A body that is not sealed
// (queued before sealing) is left as it is. A sealed body that box cannot
// open (no box, a key no longer in the ring, altered) is ErrSealedBody,
// wrapped with why: the mail must fail, never go out as ciphertext.
func Open(box *secretbox.Box, m db.OutboxMail) (db.OutboxMail, error) {
	for _, part := range []struct {
		name string
		body *string
	}{{"text", &m.Text}, {"html", &m.HTML}} {
		sealed, ok := strings.CutPrefix(*part.body, sealedPrefix)
		if !ok {
			continue
		}
		if box == nil {
			return m, fmt.Errorf("%w (this server has no secret key)", ErrSealedBody)
		}
		plain, err := box.Open(sealed, bodyPurpose(m.MessageID, part.name))
		if err != nil {
			return m, fmt.Errorf("%w (%v)", ErrSealedBody, err)
		}
		*part.body = string(plain)
	}
	return m, nil
}
