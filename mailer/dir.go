package mailer

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/mail"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"doorman/db"
)

// DirTransport is the development default, used when no SMTP server is
// configured: it writes each message, byte for byte what an SMTP server
// would receive, into Dir as <time>-<kind>-<id>.eml, where a developer (or
// the development mail viewer, through ListDir and ReadStored) reads it.
//
// The messages hold live secrets (sign-in and password-reset links), so
// Dir is created 0700 and each file 0600.
type DirTransport struct {
	Dir string
}

// fileTime is the time in a file's name: UTC, fixed width, so names sort
// by time.
const fileTime = "20060102T150405.000000Z"

// Send writes m to a temporary file in Dir and renames it into place, so a
// reader never sees half a message. The name depends on the mail only, so
// a retry of a mail already written replaces it instead of adding a copy.
func (d DirTransport) Send(ctx context.Context, from string, m db.OutboxMail) error {
	if d.Dir == "" {
		return errors.New("mailer: DirTransport has no Dir")
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	raw, err := render(from, m)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(d.Dir, 0o700); err != nil {
		return fmt.Errorf("mailer: mail directory: %w", err)
	}
	// CreateTemp makes the file 0600. The leading dot keeps it out of
	// ListDir until it is complete.
	f, err := os.CreateTemp(d.Dir, ".tmp-*.eml")
	if err != nil {
		return fmt.Errorf("mailer: write mail: %w", err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // a no-op once renamed
	if _, err := f.Write(raw); err != nil {
		f.Close()
		return fmt.Errorf("mailer: write mail: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("mailer: write mail: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(d.Dir, fileName(m))); err != nil {
		return fmt.Errorf("mailer: write mail: %w", err)
	}
	return nil
}

// fileName is <time>-<kind>-<id>.eml: the time the mail was queued, its
// kind, and its outbox id (or, for a mail not from the outbox, a hash of
// its Message-ID).
func fileName(m db.OutboxMail) string {
	t := m.CreatedAt
	if t.IsZero() {
		t = time.Now()
	}
	kind := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' {
			return r
		}
		if r >= 'A' && r <= 'Z' {
			return r + 'a' - 'A'
		}
		return '_'
	}, m.Kind)
	if kind == "" {
		kind = "mail"
	}
	id := strconv.FormatInt(m.ID, 10)
	if m.ID == 0 {
		h := sha256.Sum256([]byte(m.MessageID))
		id = hex.EncodeToString(h[:6])
	}
	return t.UTC().Format(fileTime) + "-" + kind + "-" + id + ".eml"
}

// storedName is a name fileName makes: nothing else in Dir is read, and no
// name that could leave Dir (no separator, no "..") is accepted.
var storedName = regexp.MustCompile(`^[0-9]{8}T[0-9]{6}\.[0-9]{6}Z-[a-z0-9_]+-[0-9a-f]+\.eml$`)

// Stored describes a message in a DirTransport directory.
type Stored struct {
	// Name is the file's name in the directory (what ReadStored takes).
	Name string
	// Kind is the mail's kind (a db.Mail… constant), from the name.
	Kind string
	// To is the recipient ("Name <a@b>" or "a@b"), Subject and Date are
	// decoded from the headers.
	To      string
	Subject string
	Date    time.Time
}

// maxStored bounds how much of a stored file is read. Doorman's mails are
// a few kilobytes; a huge file in the directory was not written by it.
const maxStored = 10 << 20

// ListDir lists the messages in dir, newest first. A directory that does
// not exist yet (no mail was sent) is an empty list; a file that does not
// parse is left out.
func ListDir(dir string) ([]Stored, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("mailer: list mail: %w", err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("mailer: list mail: %w", err)
	}
	defer root.Close()
	var list []Stored
	for _, e := range entries {
		if !e.Type().IsRegular() || !storedName.MatchString(e.Name()) {
			continue
		}
		s, err := readHeader(root, e.Name())
		if err != nil {
			continue
		}
		list = append(list, s)
	}
	slices.SortFunc(list, func(a, b Stored) int {
		if c := b.Date.Compare(a.Date); c != 0 {
			return c
		}
		return strings.Compare(b.Name, a.Name)
	})
	return list, nil
}

func readHeader(root *os.Root, name string) (Stored, error) {
	f, err := root.Open(name)
	if err != nil {
		return Stored{}, err
	}
	defer f.Close()
	msg, err := mail.ReadMessage(io.LimitReader(f, maxStored))
	if err != nil {
		return Stored{}, err
	}
	p := Parsed{Header: msg.Header}
	p.decodeHeaders()
	return Stored{Name: name, Kind: kindOf(name), To: addresses(p.To), Subject: p.Subject, Date: p.Date}, nil
}

// addresses is an address header for display: "Name <a@b>" or plain "a@b".
func addresses(h string) string {
	list, err := mail.ParseAddressList(h)
	if err != nil {
		return h
	}
	out := make([]string, len(list))
	for i, a := range list {
		out[i] = a.Address
		if a.Name != "" {
			out[i] = a.Name + " <" + a.Address + ">"
		}
	}
	return strings.Join(out, ", ")
}

func kindOf(name string) string {
	_, rest, _ := strings.Cut(name, "-")
	if i := strings.LastIndex(rest, "-"); i >= 0 {
		return rest[:i]
	}
	return ""
}

// ReadStored reads and parses the message name in dir. The name must be one
// ListDir returns: anything else, in particular a path, is refused, and the
// file is opened through os.Root, so not even a symbolic link leads out of
// dir.
func ReadStored(dir, name string) (Parsed, error) {
	if !storedName.MatchString(name) || !filepath.IsLocal(name) {
		return Parsed{}, fmt.Errorf("mailer: %q is not the name of a stored mail", name)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return Parsed{}, fmt.Errorf("mailer: read mail: %w", err)
	}
	defer root.Close()
	f, err := root.Open(name)
	if err != nil {
		return Parsed{}, fmt.Errorf("mailer: read mail: %w", err)
	}
	defer f.Close()
	raw, err := io.ReadAll(io.LimitReader(f, maxStored+1))
	if err != nil {
		return Parsed{}, fmt.Errorf("mailer: read mail: %w", err)
	}
	if len(raw) > maxStored {
		return Parsed{}, fmt.Errorf("mailer: read mail: %s is too big", name)
	}
	return Parse(raw)
}
