package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"doorman/db"
)

// Mail returns a mail for tests: its Message-ID is "<id>@doorman.test", it
// goes to "to-<id>@example.com", made at created, carrying links.
func Mail(id string, userID int64, kind string, created time.Time, links ...db.LinkToken) db.Mail {
	return db.Mail{MessageID: id + "@doorman.test", UserID: userID, To: "to-" + id + "@example.com", Kind: kind,
		Subject: "Subject of " + id, Text: "text of " + id, HTML: "<p>html of " + id + "</p>", CreatedAt: created, Links: links}
}

// Link returns an unused emailed link for tests: its secret hash is
// "link-hash-<id>", of the user's epoch, made at created and valid for ttl.
func Link(id string, userID int64, purpose string, epoch int64, created time.Time, ttl time.Duration) db.LinkToken {
	return db.LinkToken{ID: id, SecretHash: []byte("link-hash-" + id), UserID: userID, Purpose: purpose, Epoch: epoch,
		CreatedAt: created, ExpiresAt: created.Add(ttl), IP: "81.2.69.160", Device: "Firefox on Linux", Location: "London, United Kingdom"}
}

// messageID is the Message-ID Mail gives id.
func messageID(id string) string { return id + "@doorman.test" }

func (f *fixture) queue(t *testing.T, m db.Mail) {
	t.Helper()
	if err := f.s.QueueMail(f.ctx, m); err != nil {
		t.Fatalf("QueueMail(%s): %v", m.MessageID, err)
	}
}

// link stores l, sent in a mail of its own ("mail-<id>").
func (f *fixture) link(t *testing.T, l db.LinkToken) db.LinkToken {
	t.Helper()
	f.queue(t, Mail("mail-"+l.ID, l.UserID, l.Purpose, l.CreatedAt, l))
	return l
}

// userLink is Link of the user's current epoch, made at T0 and valid for
// an hour, stored.
func (f *fixture) userLink(t *testing.T, id string, userID int64, purpose string) db.LinkToken {
	t.Helper()
	return f.link(t, Link(id, userID, purpose, f.userRow(t, userID).Epoch, T0, time.Hour))
}

func (f *fixture) userRow(t *testing.T, id int64) db.User {
	t.Helper()
	u, err := f.s.UserByID(f.ctx, id)
	if err != nil {
		t.Fatalf("UserByID(%d): %v", id, err)
	}
	return u
}

func (f *fixture) outbox(t *testing.T, id string) db.OutboxMail {
	t.Helper()
	m, err := f.s.OutboxMail(f.ctx, messageID(id))
	if err != nil {
		t.Fatalf("OutboxMail(%s): %v", id, err)
	}
	return m
}

// queued fails the test unless mail id is in the outbox, queued, for
// userID.
func (f *fixture) queued(t *testing.T, id string, userID int64, what string) {
	t.Helper()
	m, err := f.s.OutboxMail(f.ctx, messageID(id))
	if err != nil || m.Status != db.MailQueued || m.UserID != userID {
		t.Errorf("%s: mail %s is %+v, %v; want queued for user %d", what, id, m, err, userID)
	}
}

// notQueued fails the test if mail id is in the outbox.
func (f *fixture) notQueued(t *testing.T, id, what string) {
	t.Helper()
	if m, err := f.s.OutboxMail(f.ctx, messageID(id)); !errors.Is(err, db.ErrNotFound) {
		t.Errorf("%s queued mail %s: %+v, %v", what, id, m, err)
	}
}

func (f *fixture) linkRow(t *testing.T, id string) db.LinkToken {
	t.Helper()
	l, err := f.s.LinkToken(f.ctx, id)
	if err != nil {
		t.Fatalf("LinkToken(%s): %v", id, err)
	}
	return l
}

// unused fails the test if link id was used.
func (f *fixture) unused(t *testing.T, id, what string) {
	t.Helper()
	if l := f.linkRow(t, id); !l.UsedAt.IsZero() {
		t.Errorf("%s used link %s (at %v)", what, id, l.UsedAt)
	}
}

func (f *fixture) seen(t *testing.T, userID int64, device, network string, since time.Time) bool {
	t.Helper()
	ok, err := f.s.SignInPlaceSeen(f.ctx, userID, device, network, since)
	if err != nil {
		t.Fatalf("SignInPlaceSeen: %v", err)
	}
	return ok
}

// dump is the store's dump now, after taking the events reported so far
// (for unchanged).
func (f *fixture) dump(t *testing.T) string {
	t.Helper()
	f.rec.Take()
	d, err := f.s.Dump(f.ctx)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// skip marks the user's history so far as checked.
func (h *history) skip(t *testing.T, userID int64) {
	t.Helper()
	if all := h.all(t, userID); len(all) > 0 {
		h.seen[userID] = all[0].ID
	}
}

// sameLink compares every field, times as instants.
func sameLink(a, b db.LinkToken) bool {
	return a.ID == b.ID && bytes.Equal(a.SecretHash, b.SecretHash) && a.UserID == b.UserID && a.Purpose == b.Purpose &&
		a.Email == b.Email && a.SessionID == b.SessionID && bytes.Equal(a.BindingHash, b.BindingHash) && a.Epoch == b.Epoch &&
		a.CreatedAt.Equal(b.CreatedAt) && a.ExpiresAt.Equal(b.ExpiresAt) && a.UsedAt.Equal(b.UsedAt) &&
		a.IP == b.IP && a.Device == b.Device && a.Location == b.Location
}

// mailIDs lists the Message-IDs of mails, in order, without the domain.
func mailIDs(list []db.OutboxMail) string {
	out := make([]string, len(list))
	for i, m := range list {
		out[i] = strings.TrimSuffix(m.MessageID, "@doorman.test")
	}
	return strings.Join(out, ",")
}

// testQueueMail: a mail and its links are stored as given, every field
// read back; the dump shows the new tables.
func testQueueMail(t *testing.T, f *fixture) {
	a := f.user(t, "a@example.com")
	verify := Link("lv", a.ID, db.LinkVerifyEmail, a.Epoch, T0, 24*time.Hour)
	verify.Email = "a@example.com"
	signIn := Link("ls", a.ID, db.LinkSignIn, a.Epoch, T0, 15*time.Minute)
	signIn.BindingHash, signIn.SessionID, signIn.Email = []byte("binding-hash"), "sess-1", "a@example.com"
	m := Mail("m1", a.ID, db.MailVerifyEmail, T0, verify, signIn)
	m.NotAfter = T0.Add(15 * time.Minute)
	f.queue(t, m)

	got := f.outbox(t, "m1")
	if got.ID <= 0 || got.MessageID != m.MessageID || got.UserID != a.ID || got.To != m.To || got.Kind != m.Kind ||
		got.Subject != m.Subject || got.Text != m.Text || got.HTML != m.HTML || !got.CreatedAt.Equal(T0) ||
		!got.NotAfter.Equal(m.NotAfter) || got.Status != db.MailQueued || got.Attempts != 0 || got.ClaimedBy != "" ||
		!got.ClaimedUntil.IsZero() || !got.SentAt.IsZero() || got.LastError != "" || got.NextAttemptAt.After(T0) {
		t.Fatalf("OutboxMail = %+v, want %+v queued and due", got, m)
	}
	for _, want := range []db.LinkToken{verify, signIn} {
		if l := f.linkRow(t, want.ID); !sameLink(l, want) || !l.Usable(T0) {
			t.Errorf("LinkToken(%s) = %+v, want %+v", want.ID, l, want)
		}
	}
	// A mail about no account (someone asked for a link for an unknown
	// address), without NotAfter.
	f.queue(t, Mail("m-nobody", 0, db.MailNoAccount, T0))
	if got := f.outbox(t, "m-nobody"); got.UserID != 0 || !got.NotAfter.IsZero() || got.Kind != db.MailNoAccount {
		t.Errorf("a mail about no account: %+v", got)
	}
	if _, err := f.s.OutboxMail(f.ctx, "unknown@doorman.test"); !errors.Is(err, db.ErrNotFound) {
		t.Errorf("OutboxMail of an unknown id: %v, want ErrNotFound", err)
	}
	if _, err := f.s.LinkToken(f.ctx, "unknown"); !errors.Is(err, db.ErrNotFound) {
		t.Errorf("LinkToken of an unknown id: %v, want ErrNotFound", err)
	}
	// A link of no user: refused, and the mail carrying it with it.
	before := f.dump(t)
	if err := f.s.QueueMail(f.ctx, Mail("m-ghost", 99999, db.MailSignInLink, T0, Link("l-ghost", 99999, db.LinkSignIn, 0, T0, time.Hour))); err == nil {
		t.Error("a link of no user was stored")
	}
	f.unchanged(t, before, "a refused link of no user")

	// The dump shows the outbox, the links and the places (else a refused
	// write that queued mail would pass for one that changed nothing).
	f.session(t, Session("a1", a.ID, T0))
	d := f.dump(t)
	for _, want := range []string{m.MessageID, "lv", fmt.Sprintf("%x", "link-hash-ls"), db.Network("81.2.69.160")} {
		if !strings.Contains(d, want) {
			t.Errorf("the dump lacks %q", want)
		}
	}
}

// testQueueMailConflicts: a second mail with a Message-ID or a link id
// already stored is ErrConflict, and nothing of it is stored.
func testQueueMailConflicts(t *testing.T, f *fixture) {
	a := f.user(t, "a@example.com")
	f.queue(t, Mail("m1", a.ID, db.MailPasswordReset, T0, Link("l1", a.ID, db.LinkPasswordReset, a.Epoch, T0, time.Hour)))
	before := f.dump(t)
	again := Mail("m1", a.ID, db.MailSignInLink, T0.Add(time.Minute), Link("l2", a.ID, db.LinkSignIn, a.Epoch, T0, time.Hour))
	if err := f.s.QueueMail(f.ctx, again); !errors.Is(err, db.ErrConflict) {
		t.Fatalf("a second mail m1: %v, want ErrConflict", err)
	}
	f.unchanged(t, before, "a mail with a taken Message-ID")
	if _, err := f.s.LinkToken(f.ctx, "l2"); !errors.Is(err, db.ErrNotFound) {
		t.Errorf("the refused mail's link was stored: %v", err)
	}
	// A link id taken: the mail is not stored either.
	if err := f.s.QueueMail(f.ctx, Mail("m2", a.ID, db.MailPasswordReset, T0, Link("l1", a.ID, db.LinkPasswordReset, a.Epoch, T0, time.Hour))); !errors.Is(err, db.ErrConflict) {
		t.Fatalf("a second link l1: %v, want ErrConflict", err)
	}
	f.unchanged(t, before, "a mail with a taken link id")
	f.notQueued(t, "m2", "a refused link")
	if m := f.outbox(t, "m1"); m.Kind != db.MailPasswordReset {
		t.Errorf("the first m1 was replaced: %+v", m)
	}
}

// testClaimMail: due mails only, oldest first, up to the limit, and a
// claimed mail is held until its lease ends (at that very second it is
// free again).
func testClaimMail(t *testing.T, f *fixture) {
	a := f.user(t, "a@example.com")
	// Queued out of order: oldest means made first.
	f.queue(t, Mail("m3", a.ID, db.MailNewSignIn, T0.Add(2*time.Second)))
	f.queue(t, Mail("m1", a.ID, db.MailNewSignIn, T0))
	f.queue(t, Mail("later", a.ID, db.MailNewSignIn, T0.Add(10*time.Minute)))
	f.queue(t, Mail("m2", a.ID, db.MailNewSignIn, T0.Add(time.Second)))
	now := T0.Add(time.Minute)
	lease := 5 * time.Minute
	claim := func(worker string, at time.Time, limit int) []db.OutboxMail {
		t.Helper()
		got, err := f.s.ClaimMail(f.ctx, worker, at, lease, limit)
		if err != nil {
			t.Fatalf("ClaimMail(%s): %v", worker, err)
		}
		return got
	}
	got := claim("w1", now, 2)
	if mailIDs(got) != "m1,m2" {
		t.Fatalf("claimed %s, want the two oldest m1,m2", mailIDs(got))
	}
	if m := got[0]; m.ClaimedBy != "w1" || !m.ClaimedUntil.Equal(now.Add(lease)) || m.Text != "text of m1" || m.HTML == "" ||
		m.To != "to-m1@example.com" || m.Subject != "Subject of m1" || m.Status != db.MailQueued {
		t.Errorf("a claimed mail: %+v", m)
	}
	if m := f.outbox(t, "m2"); m.ClaimedBy != "w1" || !m.ClaimedUntil.Equal(now.Add(lease)) {
		t.Errorf("m2 after the claim: %+v", m)
	}
	if got := claim("w2", now, 10); mailIDs(got) != "m3" {
		t.Fatalf("a second worker claimed %s, want m3 (m1, m2 held; later not due)", mailIDs(got))
	}
	if got := claim("w2", now.Add(lease-time.Second), 10); len(got) != 0 {
		t.Fatalf("claimed %s while every due mail is held", mailIDs(got))
	}
	if got := claim("w2", now.Add(lease), 10); mailIDs(got) != "m1,m2,m3" {
		t.Fatalf("claims whose lease ended: claimed %s, want m1,m2,m3", mailIDs(got))
	}
	if got := claim("w3", T0.Add(10*time.Minute), 10); mailIDs(got) != "later" {
		t.Fatalf("at its time: claimed %s, want later", mailIDs(got))
	}
	if got := claim("w3", T0.Add(time.Hour), 0); len(got) != 0 {
		t.Fatalf("a limit of 0 claimed %s", mailIDs(got))
	}
}

// testClaimMailConcurrently: eight workers claiming at once from forty
// mails claim each exactly once.
func testClaimMailConcurrently(t *testing.T, f *fixture) {
	a := f.user(t, "a@example.com")
	const mails, workers = 40, 8
	for i := range mails {
		f.queue(t, Mail(fmt.Sprintf("m%02d", i), a.ID, db.MailNewSignIn, T0.Add(time.Duration(i)*time.Second)))
	}
	now := T0.Add(time.Hour)
	var mu sync.Mutex
	claimed := map[string][]string{} // Message-ID → workers
	race(t, workers, func(i int) error {
		worker := fmt.Sprintf("w%d", i)
		// Bounded: a store that hands out held mails again would loop.
		for range mails {
			got, err := f.s.ClaimMail(f.ctx, worker, now, time.Minute, 3)
			if err != nil {
				return err
			}
			if len(got) == 0 {
				return nil
			}
			mu.Lock()
			for _, m := range got {
				if m.ClaimedBy != worker {
					mu.Unlock()
					return fmt.Errorf("%s got %s claimed by %q", worker, m.MessageID, m.ClaimedBy)
				}
				claimed[m.MessageID] = append(claimed[m.MessageID], worker)
			}
			mu.Unlock()
		}
		return fmt.Errorf("%s is still claiming after %d rounds", worker, mails)
	})
	if len(claimed) != mails {
		t.Errorf("%d of %d mails claimed", len(claimed), mails)
	}
	for id, by := range claimed {
		if len(by) != 1 {
			t.Errorf("%s claimed %d times, by %v", id, len(by), by)
		} else if m := f.outbox(t, strings.TrimSuffix(id, "@doorman.test")); m.ClaimedBy != by[0] {
			t.Errorf("%s is held by %q, claimed by %s", id, m.ClaimedBy, by[0])
		}
	}
}

// testClaimMailExpires: a queued mail past its NotAfter (at that second
// already) is marked expired, its bodies erased, and never handed out.
func testClaimMailExpires(t *testing.T, f *fixture) {
	a := f.user(t, "a@example.com")
	dead := Mail("dead", a.ID, db.MailSignInLink, T0)
	dead.NotAfter = T0.Add(10 * time.Minute)
	alive := Mail("alive", a.ID, db.MailSignInLink, T0.Add(time.Second))
	alive.NotAfter = T0.Add(10*time.Minute + time.Second)
	f.queue(t, dead)
	f.queue(t, alive)
	f.queue(t, Mail("plain", a.ID, db.MailNewSignIn, T0.Add(2*time.Second)))
	at := func(d time.Duration) time.Time { return T0.Add(10*time.Minute + d) }
	claim := func(worker string, now time.Time, want, what string) {
		t.Helper()
		got, err := f.s.ClaimMail(f.ctx, worker, now, time.Minute, 10)
		if err != nil || mailIDs(got) != want {
			t.Fatalf("ClaimMail %s = %s, %v; want %q", what, mailIDs(got), err, want)
		}
	}
	claim("w1", at(0), "alive,plain", "at dead's NotAfter")
	m := f.outbox(t, "dead")
	if m.Status != db.MailExpired || m.Text != "" || m.HTML != "" || !m.SentAt.IsZero() {
		t.Fatalf("the expired mail: %+v; want expired, bodies erased", m)
	}
	// A mail held by a worker is left to it (it may be sending it right
	// now), past its NotAfter too; once the claim is released, it expires.
	claim("w2", at(30*time.Second), "", "while w1 holds both")
	if m := f.outbox(t, "alive"); m.Status != db.MailQueued || m.Text == "" {
		t.Fatalf("a held mail past its NotAfter: %+v; want left queued", m)
	}
	if err := f.s.MarkMailFailed(f.ctx, f.outbox(t, "alive").ID, "w1", "timeout", at(40*time.Second), false, at(30*time.Second)); err != nil {
		t.Fatal(err)
	}
	claim("w3", at(40*time.Second), "", "once alive is released past its NotAfter")
	if m := f.outbox(t, "alive"); m.Status != db.MailExpired || m.Text != "" || m.HTML != "" {
		t.Fatalf("a released mail past its NotAfter: %+v; want expired, bodies erased", m)
	}
	claim("w4", at(time.Hour), "plain", "later (w1's lease over)")
}

// testMarkMailSent: only the worker holding a mail marks it sent; sending
// erases the bodies and records when.
func testMarkMailSent(t *testing.T, f *fixture) {
	a := f.user(t, "a@example.com")
	f.queue(t, Mail("m1", a.ID, db.MailPasswordReset, T0))
	now := T0.Add(time.Minute)
	got, err := f.s.ClaimMail(f.ctx, "w1", now, time.Minute, 10)
	if err != nil || len(got) != 1 {
		t.Fatalf("ClaimMail = %s, %v", mailIDs(got), err)
	}
	id := got[0].ID
	before := f.dump(t)
	for _, c := range []struct {
		what   string
		id     int64
		worker string
	}{{"another worker", id, "w2"}, {"no worker", id, ""}, {"an unknown mail", id + 1000, "w1"}} {
		if err := f.s.MarkMailSent(f.ctx, c.id, c.worker, now); !errors.Is(err, db.ErrNotFound) {
			t.Errorf("MarkMailSent by %s: %v, want ErrNotFound", c.what, err)
		}
	}
	f.unchanged(t, before, "refused MarkMailSent")
	sentAt := now.Add(2 * time.Second)
	if err := f.s.MarkMailSent(f.ctx, id, "w1", sentAt); err != nil {
		t.Fatal(err)
	}
	m := f.outbox(t, "m1")
	if m.Status != db.MailSent || !m.SentAt.Equal(sentAt) || m.Text != "" || m.HTML != "" || m.Subject != "Subject of m1" || m.To != "to-m1@example.com" {
		t.Fatalf("a sent mail: %+v; want sent at %v, bodies erased", m, sentAt)
	}
	if err := f.s.MarkMailSent(f.ctx, id, "w1", sentAt); !errors.Is(err, db.ErrNotFound) {
		t.Errorf("marking a sent mail sent again: %v, want ErrNotFound", err)
	}
	if got, _ := f.s.ClaimMail(f.ctx, "w2", now.Add(time.Hour), time.Minute, 10); len(got) != 0 {
		t.Fatalf("a sent mail was claimed again: %s", mailIDs(got))
	}

	// A worker whose lease ran out and whose mail another worker took
	// holds it no more.
	f.queue(t, Mail("m2", a.ID, db.MailPasswordReset, T0))
	got, _ = f.s.ClaimMail(f.ctx, "slow", now, time.Minute, 10)
	if mailIDs(got) != "m2" {
		t.Fatalf("claimed %s, want m2", mailIDs(got))
	}
	if got, _ := f.s.ClaimMail(f.ctx, "fast", now.Add(time.Minute), time.Minute, 10); mailIDs(got) != "m2" {
		t.Fatalf("after the lease: claimed %s, want m2", mailIDs(got))
	}
	if err := f.s.MarkMailSent(f.ctx, got[0].ID, "slow", now.Add(time.Minute)); !errors.Is(err, db.ErrNotFound) {
		t.Errorf("the worker that lost its claim marked it sent: %v, want ErrNotFound", err)
	}
	if err := f.s.MarkMailFailed(f.ctx, got[0].ID, "slow", "x", now, true, now.Add(time.Minute)); !errors.Is(err, db.ErrNotFound) {
		t.Errorf("the worker that lost its claim marked it failed: %v, want ErrNotFound", err)
	}
	if err := f.s.MarkMailSent(f.ctx, got[0].ID, "fast", now.Add(time.Minute)); err != nil {
		t.Errorf("the worker holding it: %v", err)
	}
}

// testMarkMailFailed: a failed attempt counts and either releases the mail
// for a later attempt or gives up on it (bodies erased).
func testMarkMailFailed(t *testing.T, f *fixture) {
	a := f.user(t, "a@example.com")
	f.queue(t, Mail("m1", a.ID, db.MailNewSignIn, T0))
	now := T0.Add(time.Minute)
	got, err := f.s.ClaimMail(f.ctx, "w1", now, 5*time.Minute, 10)
	if err != nil || len(got) != 1 {
		t.Fatalf("ClaimMail = %s, %v", mailIDs(got), err)
	}
	id := got[0].ID
	before := f.dump(t)
	if err := f.s.MarkMailFailed(f.ctx, id, "w2", "421 later", now.Add(time.Hour), false, now); !errors.Is(err, db.ErrNotFound) {
		t.Errorf("MarkMailFailed by another worker: %v, want ErrNotFound", err)
	}
	if err := f.s.MarkMailFailed(f.ctx, id+1000, "w1", "421 later", now.Add(time.Hour), false, now); !errors.Is(err, db.ErrNotFound) {
		t.Errorf("MarkMailFailed of an unknown mail: %v, want ErrNotFound", err)
	}
	f.unchanged(t, before, "refused MarkMailFailed")

	retryAt := now.Add(10 * time.Minute)
	if err := f.s.MarkMailFailed(f.ctx, id, "w1", "421 try later", retryAt, false, now); err != nil {
		t.Fatal(err)
	}
	m := f.outbox(t, "m1")
	if m.Status != db.MailQueued || m.Attempts != 1 || m.LastError != "421 try later" || !m.NextAttemptAt.Equal(retryAt) ||
		m.Text != "text of m1" || m.HTML == "" || !m.SentAt.IsZero() {
		t.Fatalf("after a failed attempt: %+v", m)
	}
	if err := f.s.MarkMailSent(f.ctx, id, "w1", now); !errors.Is(err, db.ErrNotFound) {
		t.Errorf("the released claim still marked it sent: %v, want ErrNotFound", err)
	}
	if got, _ := f.s.ClaimMail(f.ctx, "w2", retryAt.Add(-time.Second), time.Minute, 10); len(got) != 0 {
		t.Fatalf("claimed %s before its next attempt", mailIDs(got))
	}
	got, _ = f.s.ClaimMail(f.ctx, "w2", retryAt, time.Minute, 10)
	if mailIDs(got) != "m1" || got[0].Attempts != 1 || got[0].Text != "text of m1" {
		t.Fatalf("at its next attempt: %+v", got)
	}
	if err := f.s.MarkMailFailed(f.ctx, id, "w2", "550 no such user", retryAt.Add(time.Hour), true, retryAt); err != nil {
		t.Fatal(err)
	}
	m = f.outbox(t, "m1")
	if m.Status != db.MailFailed || m.Attempts != 2 || m.LastError != "550 no such user" || m.Text != "" || m.HTML != "" {
		t.Fatalf("given up: %+v; want failed after 2 attempts, bodies erased", m)
	}
	if got, _ := f.s.ClaimMail(f.ctx, "w3", retryAt.Add(2*time.Hour), time.Minute, 10); len(got) != 0 {
		t.Fatalf("a mail given up on was claimed: %s", mailIDs(got))
	}
	if err := f.s.MarkMailFailed(f.ctx, id, "w2", "again", retryAt, true, retryAt); !errors.Is(err, db.ErrNotFound) {
		t.Errorf("failing a failed mail: %v, want ErrNotFound", err)
	}
}

// testPruneMail: mails sent, given up or expired before the cutoff go,
// counted from when that happened; queued mails stay however old.
func testPruneMail(t *testing.T, f *fixture) {
	a := f.user(t, "a@example.com")
	at := func(h int) time.Time { return T0.Add(time.Duration(h) * time.Hour) }
	f.queue(t, Mail("sent", a.ID, db.MailNewSignIn, T0))
	f.queue(t, Mail("failed", a.ID, db.MailNewSignIn, T0.Add(time.Second)))
	expired := Mail("expired", a.ID, db.MailSignInLink, T0.Add(2*time.Second))
	expired.NotAfter = at(3)
	f.queue(t, expired)
	f.queue(t, Mail("queued", a.ID, db.MailNewSignIn, at(5)))
	claimOne := func(now time.Time, want string) int64 {
		t.Helper()
		got, err := f.s.ClaimMail(f.ctx, "w", now, time.Minute, 1)
		if err != nil || mailIDs(got) != want {
			t.Fatalf("ClaimMail at %v = %s, %v; want %s", now.Sub(T0), mailIDs(got), err, want)
		}
		return got[0].ID
	}
	if err := f.s.MarkMailSent(f.ctx, claimOne(at(1), "sent"), "w", at(1)); err != nil {
		t.Fatal(err)
	}
	if err := f.s.MarkMailFailed(f.ctx, claimOne(at(2), "failed"), "w", "550", at(3), true, at(2)); err != nil {
		t.Fatal(err)
	}
	if got, err := f.s.ClaimMail(f.ctx, "w", at(3), time.Minute, 1); err != nil || len(got) != 0 {
		t.Fatalf("ClaimMail at +3h = %s, %v; want none (expired expires)", mailIDs(got), err)
	}
	for _, c := range []struct {
		cutoff time.Time
		want   int64
		gone   string
	}{
		{at(1), 0, ""}, // sent at the cutoff second: not before it
		{at(1).Add(time.Second), 1, "sent"},
		{at(3), 1, "failed"},
		{at(4), 1, "expired"},
		{at(100), 0, ""},
	} {
		n, err := f.s.PruneMail(f.ctx, c.cutoff)
		if err != nil || n != c.want {
			t.Fatalf("PruneMail(+%v) = %d, %v; want %d", c.cutoff.Sub(T0), n, err, c.want)
		}
		if c.gone != "" {
			f.notQueued(t, c.gone, "pruning")
		}
	}
	f.queued(t, "queued", a.ID, "pruning")
}

// testMailWithCreateUser: a sign-up's mail is queued with the user, the
// new user's id filled in the mail and its links; a refused sign-up
// queues nothing, and a refused mail creates no user.
func testMailWithCreateUser(t *testing.T, f *fixture) {
	l := Link("lv", 0, db.LinkVerifyEmail, 0, T0, 24*time.Hour)
	l.Email = "a@example.com"
	u, err := f.s.CreateUser(f.ctx, "a@example.com", "hash", false, T0, Mail("welcome", 0, db.MailVerifyEmail, T0, l))
	if err != nil {
		t.Fatal(err)
	}
	f.queued(t, "welcome", u.ID, "CreateUser")
	if got := f.linkRow(t, "lv"); got.UserID != u.ID || got.Email != "a@example.com" || got.Purpose != db.LinkVerifyEmail {
		t.Fatalf("the sign-up's link: %+v, want user %d", got, u.ID)
	}
	if u.EmailVerified() || u.SignInAlertsOff {
		t.Errorf("a new user: %+v; want unverified, alerts on", u)
	}
	before := f.dump(t)
	if _, err := f.s.CreateUser(f.ctx, "a@example.com", "hash", false, T0, Mail("welcome-2", 0, db.MailVerifyEmail, T0)); !errors.Is(err, db.ErrEmailTaken) {
		t.Fatalf("a taken address: %v, want ErrEmailTaken", err)
	}
	f.unchanged(t, before, "a refused sign-up")
	if _, err := f.s.CreateUser(f.ctx, "b@example.com", "hash", false, T0, Mail("welcome", 0, db.MailVerifyEmail, T0)); !errors.Is(err, db.ErrConflict) {
		t.Fatalf("a sign-up whose mail's Message-ID is taken: %v, want ErrConflict", err)
	}
	f.unchanged(t, before, "a sign-up with a refused mail")
	if _, err := f.s.UserByEmail(f.ctx, "b@example.com"); !errors.Is(err, db.ErrNotFound) {
		t.Fatalf("the user of a refused mail was created: %v", err)
	}
	// A mail about an existing user keeps its id.
	b, err := f.s.CreateUser(f.ctx, "b@example.com", "hash", false, T0, Mail("about-a", u.ID, db.MailNewSignIn, T0))
	if err != nil {
		t.Fatal(err)
	}
	f.queued(t, "about-a", u.ID, "CreateUser with a mail about another user")
	if b.ID == u.ID {
		t.Fatal("two users share an id")
	}
}

// testMailWithSignIns: a sign-in's alert is queued in the sign-in's
// transaction (CreateSession, CompletePendingSignIn), with its place; a
// refused sign-in queues and remembers nothing, and a refused mail refuses
// the sign-in.
func testMailWithSignIns(t *testing.T, f *fixture) {
	a := f.user(t, "a@example.com")
	now := T0.Add(time.Minute)
	s1 := Session("s1", a.ID, now)
	if _, err := f.s.CreateSession(f.ctx, s1, 0, a.Epoch, Mail("alert-1", a.ID, db.MailNewSignIn, now)); err != nil {
		t.Fatal(err)
	}
	f.queued(t, "alert-1", a.ID, "CreateSession")
	if !f.seen(t, a.ID, s1.DeviceLabel, db.Network(s1.IP), now) {
		t.Error("CreateSession did not remember its place")
	}
	if _, err := f.s.RevokeAllSessions(f.ctx, a.ID, db.ReasonRevokedAll, "", now); err != nil {
		t.Fatal(err)
	}
	before := f.dump(t)
	stale := Session("stale", a.ID, now)
	stale.DeviceLabel = "Safari on iOS"
	if _, err := f.s.CreateSession(f.ctx, stale, 0, a.Epoch, Mail("alert-stale", a.ID, db.MailNewSignIn, now)); !errors.Is(err, db.ErrSignInsReset) {
		t.Fatalf("a stale sign-in: %v, want ErrSignInsReset", err)
	}
	f.unchanged(t, before, "a stale sign-in with mail")
	if f.seen(t, a.ID, "Safari on iOS", db.Network(stale.IP), T0) {
		t.Error("a refused sign-in remembered its place")
	}
	epoch := f.userRow(t, a.ID).Epoch
	if _, err := f.s.CreateSession(f.ctx, Session("s2", a.ID, now), 0, epoch, Mail("alert-1", a.ID, db.MailNewSignIn, now)); !errors.Is(err, db.ErrConflict) {
		t.Fatalf("a sign-in whose mail's Message-ID is taken: %v, want ErrConflict", err)
	}
	f.unchanged(t, before, "a sign-in with a refused mail")

	// Completing a two-factor sign-in.
	f.pending(t, "p1", a.ID, now.Add(5*time.Minute))
	s3 := Session("s3", a.ID, now)
	s3.AuthMethod = db.MethodPasswordTOTP
	if _, err := f.s.CompletePendingSignIn(f.ctx, "p1", s3, 0, Mail("alert-3", a.ID, db.MailNewSignIn, now)); err != nil {
		t.Fatal(err)
	}
	f.queued(t, "alert-3", a.ID, "CompletePendingSignIn")
	f.pending(t, "p2", a.ID, now.Add(5*time.Minute))
	if _, err := f.s.RevokeAllSessions(f.ctx, a.ID, db.ReasonRevokedAll, "", now); err != nil {
		t.Fatal(err)
	}
	before = f.dump(t)
	if _, err := f.s.CompletePendingSignIn(f.ctx, "p2", Session("s4", a.ID, now), 0, Mail("alert-4", a.ID, db.MailNewSignIn, now)); !errors.Is(err, db.ErrSignInsReset) {
		t.Fatalf("a completion across a reset: %v, want ErrSignInsReset", err)
	}
	if _, err := f.s.CompletePendingSignIn(f.ctx, "p1", Session("s5", a.ID, now), 0, Mail("alert-5", a.ID, db.MailNewSignIn, now)); !errors.Is(err, db.ErrNotFound) {
		t.Fatalf("a second completion: %v, want ErrNotFound", err)
	}
	f.unchanged(t, before, "refused completions with mail")
}

// testMailWithChangePassword: the notice is queued with the change, and
// not at all when the change is refused.
func testMailWithChangePassword(t *testing.T, f *fixture) {
	a := f.user(t, "a@example.com")
	f.session(t, Session("a1", a.ID, T0))
	now := T0.Add(time.Minute)
	if _, _, err := f.s.ChangePassword(f.ctx, a.ID, "a1", "hash-2", []byte("secret-2"), true, false, now, Mail("changed-1", a.ID, db.MailPasswordChanged, now)); err != nil {
		t.Fatal(err)
	}
	f.queued(t, "changed-1", a.ID, "ChangePassword")
	if _, err := f.s.RevokeSession(f.ctx, a.ID, "a1", db.ReasonSignedOut, "a1", now); err != nil {
		t.Fatal(err)
	}
	before := f.dump(t)
	if _, _, err := f.s.ChangePassword(f.ctx, a.ID, "a1", "hash-3", []byte("secret-3"), true, false, now, Mail("changed-2", a.ID, db.MailPasswordChanged, now)); !errors.Is(err, db.ErrNotFound) {
		t.Fatalf("a change from an ended session: %v, want ErrNotFound", err)
	}
	f.unchanged(t, before, "a refused password change with mail")
}

// testMailWithTwoFactor: turning two-factor on or off and using a recovery
// code queue their notice only when they changed something.
func testMailWithTwoFactor(t *testing.T, f *fixture) {
	a := f.user(t, "a@example.com")
	now := T0.Add(time.Minute)
	if err := f.s.StartTwoFactor(f.ctx, a.ID, "sealed", now); err != nil {
		t.Fatal(err)
	}
	before := f.dump(t)
	if err := f.s.EnableTwoFactor(f.ctx, a.ID, "sealed-other", 1, codes("1"), now, Mail("on-0", a.ID, db.MailTwoFactorOn, now)); !errors.Is(err, db.ErrNotFound) {
		t.Fatalf("enabling another setup: %v, want ErrNotFound", err)
	}
	f.unchanged(t, before, "a refused enable with mail")
	if err := f.s.EnableTwoFactor(f.ctx, a.ID, "sealed", 1, codes("1", "2"), now, Mail("on-1", a.ID, db.MailTwoFactorOn, now)); err != nil {
		t.Fatal(err)
	}
	f.queued(t, "on-1", a.ID, "EnableTwoFactor")
	before = f.dump(t)
	if err := f.s.EnableTwoFactor(f.ctx, a.ID, "sealed", 2, codes("3"), now, Mail("on-2", a.ID, db.MailTwoFactorOn, now)); !errors.Is(err, db.ErrTwoFactorEnabled) {
		t.Fatalf("enabling twice: %v, want ErrTwoFactorEnabled", err)
	}
	if _, ok, err := f.s.UseRecoveryCode(f.ctx, a.ID, [][]byte{[]byte("wrong")}, now, Mail("code-0", a.ID, db.MailRecoveryCode, now)); err != nil || ok {
		t.Fatalf("a wrong recovery code: ok %v, %v", ok, err)
	}
	f.unchanged(t, before, "a second enable and a wrong code, with mail")
	if left, ok, err := f.s.UseRecoveryCode(f.ctx, a.ID, [][]byte{codes("1")[0]}, now, Mail("code-1", a.ID, db.MailRecoveryCode, now)); err != nil || !ok || left != 1 {
		t.Fatalf("a recovery code: left %d, ok %v, %v", left, ok, err)
	}
	f.queued(t, "code-1", a.ID, "UseRecoveryCode")
	before = f.dump(t)
	if _, ok, err := f.s.UseRecoveryCode(f.ctx, a.ID, [][]byte{codes("1")[0]}, now, Mail("code-2", a.ID, db.MailRecoveryCode, now)); err != nil || ok {
		t.Fatalf("a used recovery code: ok %v, %v", ok, err)
	}
	f.unchanged(t, before, "a used recovery code with mail")
	if err := f.s.DisableTwoFactor(f.ctx, a.ID, Mail("off-1", a.ID, db.MailTwoFactorOff, now)); err != nil {
		t.Fatal(err)
	}
	f.queued(t, "off-1", a.ID, "DisableTwoFactor")
	before = f.dump(t)
	if err := f.s.DisableTwoFactor(f.ctx, a.ID, Mail("off-2", a.ID, db.MailTwoFactorOff, now)); err != nil {
		t.Fatal(err)
	}
	f.unchanged(t, before, "disabling two-factor that is off, with mail")
}

// testUseLinkToken: a link works once, until its expiry second, for its
// own purpose only; eight uses at once: exactly one succeeds.
func testUseLinkToken(t *testing.T, f *fixture) {
	a := f.user(t, "a@example.com")
	l := f.userLink(t, "l1", a.ID, db.LinkSignInKnown)
	now := T0.Add(time.Minute)
	before := f.dump(t)
	for _, c := range []struct{ what, id, purpose string }{{"another purpose", "l1", db.LinkPasswordReset}, {"an unknown id", "zz", db.LinkSignInKnown}} {
		if _, err := f.s.UseLinkToken(f.ctx, c.id, c.purpose, now); !errors.Is(err, db.ErrNotFound) {
			t.Errorf("using %s: %v, want ErrNotFound", c.what, err)
		}
	}
	f.unchanged(t, before, "refused link uses")
	got, err := f.s.UseLinkToken(f.ctx, "l1", db.LinkSignInKnown, now)
	l.UsedAt = now
	if err != nil || !sameLink(got, l) {
		t.Fatalf("UseLinkToken = %+v, %v; want %+v", got, err, l)
	}
	if row := f.linkRow(t, "l1"); !row.UsedAt.Equal(now) || row.Usable(now) {
		t.Fatalf("a used link: %+v", row)
	}
	before = f.dump(t)
	if _, err := f.s.UseLinkToken(f.ctx, "l1", db.LinkSignInKnown, now.Add(time.Second)); !errors.Is(err, db.ErrLinkUsed) {
		t.Fatalf("a second use: %v, want ErrLinkUsed", err)
	}
	f.unchanged(t, before, "a second use")

	// Expired: at the very second it expires.
	f.userLink(t, "l2", a.ID, db.LinkVerifyEmail)
	before = f.dump(t)
	if _, err := f.s.UseLinkToken(f.ctx, "l2", db.LinkVerifyEmail, T0.Add(time.Hour)); !errors.Is(err, db.ErrLinkUsed) {
		t.Fatalf("a link at its expiry: %v, want ErrLinkUsed", err)
	}
	f.unchanged(t, before, "using an expired link")
	if _, err := f.s.UseLinkToken(f.ctx, "l2", db.LinkVerifyEmail, T0.Add(time.Hour-time.Second)); err != nil {
		t.Fatalf("a link a second before its expiry: %v", err)
	}

	// Eight at once.
	f.userLink(t, "l3", a.ID, db.LinkPasswordReset)
	var mu sync.Mutex
	ok, used := 0, 0
	race(t, 8, func(int) error {
		_, err := f.s.UseLinkToken(f.ctx, "l3", db.LinkPasswordReset, now)
		mu.Lock()
		defer mu.Unlock()
		switch {
		case err == nil:
			ok++
		case errors.Is(err, db.ErrLinkUsed):
			used++
		default:
			return err
		}
		return nil
	})
	if ok != 1 || used != 7 {
		t.Fatalf("8 concurrent uses of one link: %d succeeded, %d ErrLinkUsed; want 1, 7", ok, used)
	}
}

// testLinksVoidAfterReset: the revocation rule. A reset of the user's
// sign-ins voids every emailed link that can act for the account (reset,
// sign-in, "This wasn't me", "This was me", a change of address and its
// cancel link), and only two survive it: a verify link (it proves only that
// an address reaches its owner) and the undo of an address change (itself
// the owner's reset, which whoever moved the account must not void).
func testLinksVoidAfterReset(t *testing.T, f *fixture) {
	a, b := f.user(t, "a@example.com"), f.user(t, "b@example.com")
	die := []string{db.LinkPasswordReset, db.LinkSignIn, db.LinkSignInNotMe, db.LinkSignInKnown, db.LinkChangeEmail, db.LinkCancelEmailChange}
	survive := []string{db.LinkVerifyEmail, db.LinkUndoEmail}
	for _, p := range append(slices.Clone(die), survive...) {
		l := Link("a-"+p, a.ID, p, a.Epoch, T0, time.Hour)
		l.AccountEmail = a.Email
		if p == db.LinkChangeEmail {
			l.Email = "a-new@example.com"
		}
		f.link(t, l)
	}
	f.userLink(t, "b-reset", b.ID, db.LinkPasswordReset)
	if _, err := f.s.RevokeAllSessions(f.ctx, a.ID, db.ReasonRevokedAll, "", T0); err != nil {
		t.Fatal(err)
	}
	now := T0.Add(time.Minute)
	before := f.dump(t)
	for _, p := range die {
		if _, err := f.s.UseLinkToken(f.ctx, "a-"+p, p, now); !errors.Is(err, db.ErrLinkUsed) {
			t.Errorf("a %s link from before a reset: %v, want ErrLinkUsed", p, err)
		}
	}
	if _, err := f.s.ConfirmEmail(f.ctx, "a-"+db.LinkChangeEmail, now); !errors.Is(err, db.ErrLinkUsed) {
		t.Errorf("confirming a change of address asked before a reset: %v, want ErrLinkUsed", err)
	}
	if n, err := f.s.CancelEmailChanges(f.ctx, a.ID, "a-"+db.LinkCancelEmailChange, now); !errors.Is(err, db.ErrLinkUsed) {
		t.Errorf("a cancel link from before a reset: %d, %v, want ErrLinkUsed", n, err)
	}
	f.unchanged(t, before, "using void links")
	for _, p := range survive {
		if _, err := f.s.UseLinkToken(f.ctx, "a-"+p, p, now); err != nil {
			t.Errorf("a %s link from before a reset: %v, want it usable", p, err)
		}
	}
	if _, err := f.s.UseLinkToken(f.ctx, "b-reset", db.LinkPasswordReset, now); err != nil {
		t.Errorf("another user's reset voided b's link: %v", err)
	}
	// A link of the new epoch works.
	f.userLink(t, "a-new", a.ID, db.LinkPasswordReset)
	if _, err := f.s.UseLinkToken(f.ctx, "a-new", db.LinkPasswordReset, now); err != nil {
		t.Errorf("a reset link of the current epoch: %v", err)
	}
}

// testLinksVoidAfterAddressChange: a password reset or sign-in link is
// void once the account's address is no longer the one it was sent to
// (the mailbox a user moves away from may be someone else's); links of
// other purposes, links sent to the new address, and links from before
// links carried their address are not.
func testLinksVoidAfterAddressChange(t *testing.T, f *fixture) {
	a, b := f.user(t, "a@example.com"), f.user(t, "b@example.com")
	sentTo := func(id string, userID int64, purpose, email string) {
		l := Link(id, userID, purpose, f.userRow(t, userID).Epoch, T0, time.Hour)
		l.Email, l.AccountEmail = email, email
		f.link(t, l)
	}
	sentTo("old-reset", a.ID, db.LinkPasswordReset, "a@example.com")
	sentTo("old-signin", a.ID, db.LinkSignIn, "a@example.com")
	sentTo("old-notme", a.ID, db.LinkSignInNotMe, "a@example.com")
	sentTo("old-known", a.ID, db.LinkSignInKnown, "a@example.com")
	sentTo("unaddressed", a.ID, db.LinkPasswordReset, "")
	f.userLink(t, "known", a.ID, db.LinkSignInKnown)
	sentTo("b-reset", b.ID, db.LinkPasswordReset, "b@example.com")
	change := Link("change", a.ID, db.LinkChangeEmail, f.userRow(t, a.ID).Epoch, T0, time.Hour)
	change.Email, change.AccountEmail = "a-new@example.com", "a@example.com"
	f.link(t, change)
	now := T0.Add(time.Minute)
	if u, err := f.s.ConfirmEmail(f.ctx, "change", now); err != nil || u.Email != "a-new@example.com" {
		t.Fatalf("ConfirmEmail = %+v, %v", u, err)
	}
	before := f.dump(t)
	for id, p := range map[string]string{"old-reset": db.LinkPasswordReset, "old-signin": db.LinkSignIn,
		"old-notme": db.LinkSignInNotMe, "old-known": db.LinkSignInKnown} {
		if _, err := f.s.UseLinkToken(f.ctx, id, p, now); !errors.Is(err, db.ErrLinkUsed) {
			t.Errorf("a %s link to the old address after the change: %v, want ErrLinkUsed", p, err)
		}
	}
	f.unchanged(t, before, "using links to the old address")
	for id, p := range map[string]string{"unaddressed": db.LinkPasswordReset, "known": db.LinkSignInKnown, "b-reset": db.LinkPasswordReset} {
		if _, err := f.s.UseLinkToken(f.ctx, id, p, now); err != nil {
			t.Errorf("link %s after a's change of address: %v, want it usable", id, err)
		}
	}
	sentTo("new-reset", a.ID, db.LinkPasswordReset, "a-new@example.com")
	if _, err := f.s.UseLinkToken(f.ctx, "new-reset", db.LinkPasswordReset, now); err != nil {
		t.Errorf("a reset link to the new address: %v", err)
	}
}

// testPruneLinkTokens: links that expired before the cutoff go, used or
// not.
func testPruneLinkTokens(t *testing.T, f *fixture) {
	a := f.user(t, "a@example.com")
	f.link(t, Link("l10", a.ID, db.LinkSignIn, a.Epoch, T0, 10*time.Minute))
	f.link(t, Link("l20", a.ID, db.LinkSignIn, a.Epoch, T0, 20*time.Minute))
	f.link(t, Link("l30", a.ID, db.LinkSignIn, a.Epoch, T0, 30*time.Minute))
	if _, err := f.s.UseLinkToken(f.ctx, "l20", db.LinkSignIn, T0); err != nil {
		t.Fatal(err)
	}
	if n, err := f.s.PruneLinkTokens(f.ctx, T0.Add(10*time.Minute)); err != nil || n != 0 {
		t.Fatalf("pruning at the expiry second = %d, %v; want 0", n, err)
	}
	if n, err := f.s.PruneLinkTokens(f.ctx, T0.Add(20*time.Minute+time.Second)); err != nil || n != 2 {
		t.Fatalf("PruneLinkTokens = %d, %v; want 2", n, err)
	}
	for id, kept := range map[string]bool{"l10": false, "l20": false, "l30": true} {
		if _, err := f.s.LinkToken(f.ctx, id); kept != (err == nil) || !kept && !errors.Is(err, db.ErrNotFound) {
			t.Errorf("link %s after pruning: %v (want kept: %v)", id, err, kept)
		}
	}
}

// testConfirmEmail: verify and change links, each once; a verify link for
// an address the account no longer has, or a change to a taken address,
// changes nothing (the latter leaves the link usable).
func testConfirmEmail(t *testing.T, f *fixture) {
	h := newHistory(f)
	a, b, c := f.user(t, "a@example.com"), f.user(t, "b@example.com"), f.user(t, "c@example.com")
	now := T0.Add(time.Minute)
	verify := Link("va", a.ID, db.LinkVerifyEmail, a.Epoch, T0, time.Hour)
	verify.Email = "a@example.com"
	f.link(t, verify)
	u, err := f.s.ConfirmEmail(f.ctx, "va", now)
	if err != nil || !u.EmailVerifiedAt.Equal(now) || u.Email != "a@example.com" || u.ID != a.ID {
		t.Fatalf("ConfirmEmail(verify) = %+v, %v", u, err)
	}
	if got := f.userRow(t, a.ID); !got.EmailVerifiedAt.Equal(now) {
		t.Fatalf("after verifying: %+v", got)
	}
	h.expect(t, "verifying the address", a.ID, db.SecurityEvent{UserID: a.ID, Kind: db.EventEmailVerified, At: now, Detail: "a@example.com"})
	before := f.dump(t)
	if _, err := f.s.ConfirmEmail(f.ctx, "va", now); !errors.Is(err, db.ErrLinkUsed) {
		t.Fatalf("a second use: %v, want ErrLinkUsed", err)
	}
	f.unchanged(t, before, "a verify link used twice")
	f.userLink(t, "not-email", a.ID, db.LinkSignIn)
	before = f.dump(t)
	for _, id := range []string{"not-email", "zz"} {
		if _, err := f.s.ConfirmEmail(f.ctx, id, now); !errors.Is(err, db.ErrNotFound) {
			t.Errorf("ConfirmEmail(%s): %v, want ErrNotFound", id, err)
		}
	}
	f.unchanged(t, before, "ConfirmEmail of other links")

	// The address changed since the verify link was sent.
	old := Link("vb", b.ID, db.LinkVerifyEmail, b.Epoch, T0, time.Hour)
	old.Email = "b@example.com"
	f.link(t, old)
	if err := f.s.UpdateEmail(f.ctx, b.ID, "b2@example.com"); err != nil {
		t.Fatal(err)
	}
	h.skip(t, b.ID)
	before = f.dump(t)
	if _, err := f.s.ConfirmEmail(f.ctx, "vb", now); !errors.Is(err, db.ErrLinkUsed) {
		t.Fatalf("a verify link for the old address: %v, want ErrLinkUsed", err)
	}
	f.unchanged(t, before, "a verify link for the old address")
	if f.userRow(t, b.ID).EmailVerified() {
		t.Fatal("a link to the old address verified the new one")
	}

	// A change, with the notice to the old address and its undo link.
	change := Link("cc", c.ID, db.LinkChangeEmail, c.Epoch, T0, time.Hour)
	change.Email = "c-new@example.com"
	f.link(t, change)
	undo := Link("undo-c", c.ID, db.LinkUndoEmail, c.Epoch, now, 7*24*time.Hour)
	undo.Email = "c@example.com"
	notice := Mail("changed-c", c.ID, db.MailEmailChanged, now, undo)
	u, err = f.s.ConfirmEmail(f.ctx, "cc", now, notice)
	if err != nil || u.Email != "c-new@example.com" || !u.EmailVerifiedAt.Equal(now) {
		t.Fatalf("ConfirmEmail(change) = %+v, %v", u, err)
	}
	if got, err := f.s.UserByEmail(f.ctx, "c-new@example.com"); err != nil || got.ID != c.ID || !got.EmailVerifiedAt.Equal(now) {
		t.Fatalf("after the change: %+v, %v", got, err)
	}
	h.expect(t, "a change of address", c.ID, db.SecurityEvent{UserID: c.ID, Kind: db.EventEmailChanged, At: now, Detail: "c-new@example.com"})
	f.queued(t, "changed-c", c.ID, "ConfirmEmail(change)")
	if got := f.linkRow(t, "undo-c"); got.Email != "c@example.com" || !got.UsedAt.IsZero() {
		t.Fatalf("the undo link: %+v", got)
	}
	if _, err := f.s.ConfirmEmail(f.ctx, "cc", now); !errors.Is(err, db.ErrLinkUsed) {
		t.Fatalf("a change link used twice: %v, want ErrLinkUsed", err)
	}
	// A second link to the address the account has now (two requests for
	// one change): nothing would change, so no "your address changed".
	same := Link("cc2", c.ID, db.LinkChangeEmail, c.Epoch, T0, time.Hour)
	same.Email = "c-new@example.com"
	f.link(t, same)
	h.skip(t, c.ID)
	before = f.dump(t)
	if _, err := f.s.ConfirmEmail(f.ctx, "cc2", now, Mail("changed-c-again", c.ID, db.MailEmailChanged, now)); !errors.Is(err, db.ErrLinkUsed) {
		t.Fatalf("a change link to the current address: %v, want ErrLinkUsed", err)
	}
	f.unchanged(t, before, "a change link to the current address")

	// A change to an address another account took meanwhile: refused,
	// and the link still works once the address is free.
	taken := Link("ct", c.ID, db.LinkChangeEmail, c.Epoch, T0, time.Hour)
	taken.Email = "a@example.com"
	f.link(t, taken)
	before = f.dump(t)
	if _, err := f.s.ConfirmEmail(f.ctx, "ct", now, Mail("changed-c2", c.ID, db.MailEmailChanged, now)); !errors.Is(err, db.ErrEmailTaken) {
		t.Fatalf("a change to a taken address: %v, want ErrEmailTaken", err)
	}
	f.unchanged(t, before, "a change to a taken address")
	f.unused(t, "ct", "a change to a taken address")
	h.expect(t, "a refused change", c.ID)
	if err := f.s.UpdateEmail(f.ctx, a.ID, "a2@example.com"); err != nil {
		t.Fatal(err)
	}
	if u, err := f.s.ConfirmEmail(f.ctx, "ct", now.Add(time.Second)); err != nil || u.Email != "a@example.com" {
		t.Fatalf("the change once the address is free: %+v, %v", u, err)
	}
}

// testSignInWithLink: a sign-in link makes its session once, remembers the
// place and verifies the address; after a reset, for a disabled user or
// for another user's session it writes nothing.
func testSignInWithLink(t *testing.T, f *fixture) {
	h := newHistory(f)
	a, b := f.user(t, "a@example.com"), f.user(t, "b@example.com")
	now := T0.Add(time.Minute)
	l := Link("la", a.ID, db.LinkSignIn, a.Epoch, T0, 15*time.Minute)
	l.Email = "a@example.com"
	f.link(t, l)
	f.rec.Take()
	s1 := device("s1", a.ID, now)
	s1.IP, s1.AuthMethod = "2001:db8:1:2::7", db.MethodEmailLink
	evicted, err := f.s.SignInWithLink(f.ctx, "la", s1, 0, Mail("alert-s1", a.ID, db.MailNewSignIn, now))
	if err != nil || len(evicted) != 0 {
		t.Fatalf("SignInWithLink = %s, %v", ids(evicted), err)
	}
	sess, u, err := f.s.SessionWithUser(f.ctx, "s1")
	if err != nil || !sess.Alive(now) || sess.AuthMethod != db.MethodEmailLink || u.ID != a.ID || !u.EmailVerifiedAt.Equal(now) {
		t.Fatalf("the link's session: %+v %+v %v", sess, u, err)
	}
	if ev := f.rec.Take(); len(ev) != 1 || !sameEvent(ev[0], db.Event{Kind: db.SessionStarted, UserID: a.ID, SessionID: "s1", At: now}) {
		t.Fatalf("SignInWithLink reported %+v", ev)
	}
	if !f.linkRow(t, "la").UsedAt.Equal(now) {
		t.Error("the link is not used")
	}
	if !f.seen(t, a.ID, s1.DeviceLabel, "2001:db8:1:2::/64", now) {
		t.Error("SignInWithLink did not remember its place")
	}
	f.queued(t, "alert-s1", a.ID, "SignInWithLink")
	h.expect(t, "a sign-in by link", a.ID, signedIn(s1), db.SecurityEvent{UserID: a.ID, Kind: db.EventEmailVerified, At: now, Detail: "a@example.com"})

	before := f.dump(t)
	if _, err := f.s.SignInWithLink(f.ctx, "la", device("s2", a.ID, now), 0, Mail("alert-s2", a.ID, db.MailNewSignIn, now)); !errors.Is(err, db.ErrLinkUsed) {
		t.Fatalf("a second use: %v, want ErrLinkUsed", err)
	}
	f.unchanged(t, before, "a second use of a sign-in link")

	// Another user's link, for a's session: refused, and b's link unused.
	f.userLink(t, "lb", b.ID, db.LinkSignIn)
	f.userLink(t, "reset-a", a.ID, db.LinkPasswordReset)
	before = f.dump(t)
	if _, err := f.s.SignInWithLink(f.ctx, "lb", device("s3", a.ID, now), 0); !errors.Is(err, db.ErrNotFound) && !errors.Is(err, db.ErrLinkUsed) {
		t.Fatalf("b's link for a's session: %v, want ErrNotFound or ErrLinkUsed", err)
	}
	if _, err := f.s.SignInWithLink(f.ctx, "reset-a", device("s3", a.ID, now), 0); !errors.Is(err, db.ErrNotFound) {
		t.Fatalf("a reset link used to sign in: %v, want ErrNotFound", err)
	}
	f.unchanged(t, before, "refused sign-ins by link")

	// A link sent before "sign out everywhere".
	f.userLink(t, "la2", a.ID, db.LinkSignIn)
	if _, err := f.s.RevokeAllSessions(f.ctx, a.ID, db.ReasonRevokedAll, "", now); err != nil {
		t.Fatal(err)
	}
	before = f.dump(t)
	if _, err := f.s.SignInWithLink(f.ctx, "la2", device("s4", a.ID, now), 0, Mail("alert-s4", a.ID, db.MailNewSignIn, now)); !errors.Is(err, db.ErrLinkUsed) {
		t.Fatalf("a link from before a reset: %v, want ErrLinkUsed", err)
	}
	f.unchanged(t, before, "a sign-in by a void link")

	// At the cap, the link's sign-in evicts like any other.
	f.session(t, Session("a-old", a.ID, now))
	f.userLink(t, "la3", a.ID, db.LinkSignIn)
	if evicted, err := f.s.SignInWithLink(f.ctx, "la3", device("s5", a.ID, now), 1); err != nil || ids(evicted) != "a-old" {
		t.Fatalf("a sign-in by link at the cap evicted %s, %v; want a-old", ids(evicted), err)
	}

	// A disabled user: a link made even after the disabling signs no one in.
	if _, err := f.s.SetUserDisabled(f.ctx, b.ID, true, now); err != nil {
		t.Fatal(err)
	}
	f.userLink(t, "lb2", b.ID, db.LinkSignIn)
	before = f.dump(t)
	if _, err := f.s.SignInWithLink(f.ctx, "lb2", device("s6", b.ID, now), 0, Mail("alert-s6", b.ID, db.MailNewSignIn, now)); !errors.Is(err, db.ErrSignInsReset) && !errors.Is(err, db.ErrLinkUsed) {
		t.Fatalf("a disabled user's link: %v, want ErrSignInsReset or ErrLinkUsed", err)
	}
	f.unchanged(t, before, "a disabled user's sign-in by link")
	if f.userRow(t, b.ID).EmailVerified() {
		t.Error("a refused sign-in by link verified the address")
	}

	// A link sent to the address the account had before (here changed by
	// the operator): it is void, signs no one in and verifies nothing.
	c := f.user(t, "c@example.com")
	lc := Link("lc", c.ID, db.LinkSignIn, c.Epoch, T0, 15*time.Minute)
	lc.Email, lc.AccountEmail = "c@example.com", "c@example.com"
	f.link(t, lc)
	if err := f.s.UpdateEmail(f.ctx, c.ID, "c2@example.com"); err != nil {
		t.Fatal(err)
	}
	before = f.dump(t)
	if _, err := f.s.SignInWithLink(f.ctx, "lc", device("s7", c.ID, now), 0); !errors.Is(err, db.ErrLinkUsed) {
		t.Fatalf("a sign-in link sent to the old address: %v, want ErrLinkUsed", err)
	}
	f.unchanged(t, before, "a sign-in by a link to the old address")
	if f.userRow(t, c.ID).EmailVerified() {
		t.Error("a sign-in link sent to the old address verified the new one")
	}
}

// recoverySetup is an account to take back: user a with sessions a1, a2,
// a personal token, an unverified address, and a password-reset link
// "reset" of its epoch; user b with a session.
func recoverySetup(t *testing.T, f *fixture) (a, b db.User, s map[string]db.Session) {
	a, b = f.user(t, "a@example.com"), f.user(t, "b@example.com")
	s = map[string]db.Session{}
	for _, id := range []string{"a1", "a2"} {
		s[id] = device(id, a.ID, T0)
		f.session(t, s[id])
	}
	s["b1"] = device("b1", b.ID, T0)
	f.session(t, s["b1"])
	f.token(t, Token("ta", a.ID, db.TokenPersonal, T0))
	f.token(t, Token("tb", b.ID, db.TokenPersonal, T0))
	f.link(t, Link("reset", a.ID, db.LinkPasswordReset, f.userRow(t, a.ID).Epoch, T0, 30*time.Minute))
	return a, b, s
}

// testRecoverAccountReset: a password reset by link, all in one write: the
// link used, the password set, every session and token ended, the epoch
// moved, a new session for this browser; its history and events once; a
// second use of the link changes nothing.
func testRecoverAccountReset(t *testing.T, f *fixture) {
	h := newHistory(f)
	a, b, s := recoverySetup(t, f)
	h.skip(t, a.ID)
	h.skip(t, b.ID)
	now := T0.Add(5 * time.Minute)
	start := device("start", a.ID, now)
	start.AuthMethod = db.MethodPasswordReset
	epoch := f.userRow(t, a.ID).Epoch
	f.rec.Take()
	r := db.Recovery{UserID: a.ID, LinkID: "reset", LinkPurpose: db.LinkPasswordReset, EndOthers: true, EndTokens: true,
		PasswordHash: "hash-new", VerifyEmail: true, Start: &start, Reason: db.ReasonPasswordReset, Now: now,
		Mail: []db.Mail{Mail("recovered", a.ID, db.MailPasswordChanged, now)}}
	got, err := f.s.RecoverAccount(f.ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	if sortedIDs(got.Ended) != "a1,a2" || tokenIDs(got.Tokens) != "ta" || len(got.Evicted) != 0 {
		t.Fatalf("Recovered: ended %s, tokens %s, evicted %s; want a1,a2 / ta / none", ids(got.Ended), tokenIDs(got.Tokens), ids(got.Evicted))
	}
	for _, e := range got.Ended {
		if e.RevokedReason != db.ReasonPasswordReset || !e.RevokedAt.Equal(now) {
			t.Errorf("ended %+v", e)
		}
	}
	u := f.userRow(t, a.ID)
	if u.PasswordHash != "hash-new" || u.Epoch == epoch || !u.EmailVerifiedAt.Equal(now) {
		t.Fatalf("the user after the reset: %+v (epoch was %d)", u, epoch)
	}
	if got.User.ID != a.ID || got.User.PasswordHash != "hash-new" || got.User.Epoch != u.Epoch || !got.User.EmailVerifiedAt.Equal(now) {
		t.Errorf("Recovered.User = %+v, want %+v", got.User, u)
	}
	if live := f.live(t, a.ID, now); live != "start" {
		t.Fatalf("a's live sessions: %s, want only start", live)
	}
	if tok := f.tokenRow(t, "ta"); tok.Alive(now) || tok.RevokedReason != db.ReasonPasswordReset {
		t.Fatalf("a's token: %+v", tok)
	}
	if !f.linkRow(t, "reset").UsedAt.Equal(now) {
		t.Error("the link is not used")
	}
	f.queued(t, "recovered", a.ID, "RecoverAccount")
	if f.live(t, b.ID, now) != "b1" || !f.tokenRow(t, "tb").Alive(now) || f.userRow(t, b.ID).PasswordHash != b.PasswordHash {
		t.Error("a's reset changed b")
	}
	h.expect(t, "a password reset", a.ID,
		db.SecurityEvent{UserID: a.ID, Kind: db.EventPasswordChanged, At: now, Reason: db.ReasonPasswordReset},
		db.SecurityEvent{UserID: a.ID, Kind: db.EventEmailVerified, At: now, Detail: "a@example.com"},
		endedEvent(s["a1"], db.ReasonPasswordReset, "", now), endedEvent(s["a2"], db.ReasonPasswordReset, "", now),
		tokenEnded(Token("ta", a.ID, db.TokenPersonal, T0), db.ReasonPasswordReset, "", now), signedIn(start))
	h.expect(t, "a's reset, in b's history", b.ID)
	ended, started := map[string]int{}, map[string]int{}
	for _, e := range f.rec.Take() {
		switch e.Kind {
		case db.SessionEnded:
			ended[e.SessionID]++
			if e.Reason != db.ReasonPasswordReset || e.UserID != a.ID {
				t.Errorf("reported %+v", e)
			}
		case db.SessionStarted:
			started[e.SessionID]++
		}
	}
	if len(ended) != 2 || ended["a1"] != 1 || ended["a2"] != 1 || len(started) != 1 || started["start"] != 1 {
		t.Errorf("reported ended %v, started %v; want a1, a2 and start once each", ended, started)
	}

	// The same link again: nothing at all.
	before := f.dump(t)
	again := r
	again2 := device("start-2", a.ID, now.Add(time.Minute))
	again.Start, again.Now, again.PasswordHash = &again2, now.Add(time.Minute), "hash-other"
	again.Mail = []db.Mail{Mail("recovered-2", a.ID, db.MailPasswordChanged, now)}
	if _, err := f.s.RecoverAccount(f.ctx, again); !errors.Is(err, db.ErrLinkUsed) {
		t.Fatalf("a reset link used twice: %v, want ErrLinkUsed", err)
	}
	f.unchanged(t, before, "a second reset with one link")
	h.expect(t, "a refused reset", a.ID)
}

// testRecoverAccountRefusals: whatever part of a recovery is refused,
// nothing of it happens.
func testRecoverAccountRefusals(t *testing.T, f *fixture) {
	a, b, _ := recoverySetup(t, f)
	now := T0.Add(5 * time.Minute)
	f.link(t, Link("reset-b", b.ID, db.LinkPasswordReset, f.userRow(t, b.ID).Epoch, T0, 30*time.Minute))
	f.link(t, Link("known-a", a.ID, db.LinkSignInKnown, f.userRow(t, a.ID).Epoch, T0, 30*time.Minute))
	f.link(t, Link("late", a.ID, db.LinkPasswordReset, f.userRow(t, a.ID).Epoch, T0, time.Minute))
	if _, err := f.s.RevokeSession(f.ctx, a.ID, "a2", db.ReasonSignedOut, "a2", T0); err != nil {
		t.Fatal(err)
	}
	base := func() db.Recovery {
		start := device("start", a.ID, now)
		return db.Recovery{UserID: a.ID, LinkID: "reset", LinkPurpose: db.LinkPasswordReset, EndOthers: true, EndTokens: true,
			PasswordHash: "hash-new", Start: &start, Reason: db.ReasonPasswordReset, Now: now,
			Mail: []db.Mail{Mail("recovered", a.ID, db.MailPasswordChanged, now)}}
	}
	before := f.dump(t)
	for _, c := range []struct {
		what   string
		change func(*db.Recovery)
		want   error // nil: any error
	}{
		{"another user's link", func(r *db.Recovery) { r.LinkID = "reset-b" }, db.ErrLinkUsed},
		{"a link of another purpose", func(r *db.Recovery) { r.LinkID = "known-a" }, db.ErrLinkUsed},
		{"an unknown link", func(r *db.Recovery) { r.LinkID = "zz" }, db.ErrLinkUsed},
		{"an expired link", func(r *db.Recovery) { r.LinkID = "late" }, db.ErrLinkUsed},
		{"an ended session to keep", func(r *db.Recovery) { r.KeepSessionID, r.KeepSecretHash = "a2", []byte("k") }, db.ErrNotFound},
		{"b's session to keep", func(r *db.Recovery) { r.KeepSessionID, r.KeepSecretHash = "b1", []byte("k") }, db.ErrNotFound},
		{"an unknown session to keep", func(r *db.Recovery) { r.KeepSessionID, r.KeepSecretHash = "zz", []byte("k") }, db.ErrNotFound},
		{"a taken address to restore", func(r *db.Recovery) { r.RestoreEmail = "b@example.com" }, db.ErrEmailTaken},
		{"a taken Message-ID", func(r *db.Recovery) { r.Mail = append(r.Mail, Mail("mail-reset", a.ID, db.MailPasswordChanged, now)) }, db.ErrConflict},
		{"another user's id", func(r *db.Recovery) { r.UserID = b.ID }, nil},
		{"no such user", func(r *db.Recovery) { r.UserID, r.LinkID, r.Start = 99999, "", nil }, nil},
	} {
		r := base()
		c.change(&r)
		_, err := f.s.RecoverAccount(f.ctx, r)
		if err == nil || c.want != nil && !errors.Is(err, c.want) {
			t.Errorf("a recovery with %s: %v, want %v", c.what, err, c.want)
		}
		f.unchanged(t, before, "a recovery with "+c.what)
	}
	// The reset link was never used up by those.
	f.unused(t, "reset", "refused recoveries")

	// A reset link sent before a reset of the sign-ins.
	if _, err := f.s.RevokeAllSessions(f.ctx, a.ID, db.ReasonRevokedAll, "", now); err != nil {
		t.Fatal(err)
	}
	before = f.dump(t)
	if _, err := f.s.RecoverAccount(f.ctx, base()); !errors.Is(err, db.ErrLinkUsed) {
		t.Fatalf("a reset link from before a reset: %v, want ErrLinkUsed", err)
	}
	f.unchanged(t, before, "a recovery with a void link")

	// A disabled user gets no session.
	if _, err := f.s.SetUserDisabled(f.ctx, a.ID, true, now); err != nil {
		t.Fatal(err)
	}
	f.link(t, Link("reset-2", a.ID, db.LinkPasswordReset, f.userRow(t, a.ID).Epoch, now, 30*time.Minute))
	before = f.dump(t)
	r := base()
	r.LinkID = "reset-2"
	if _, err := f.s.RecoverAccount(f.ctx, r); err == nil {
		t.Fatal("a recovery started a disabled user's session")
	}
	f.unchanged(t, before, "a recovery of a disabled user")
}

// testRecoverAccountNotMe: "This wasn't me": ends the disowned session
// only (EndOthers false), keeps this browser with a new secret, forgets the
// disowned place; an already ended session is no error.
func testRecoverAccountNotMe(t *testing.T, f *fixture) {
	h := newHistory(f)
	a := f.user(t, "a@example.com")
	mine, other := device("mine", a.ID, T0), device("other", a.ID, T0)
	mine.IP, other.IP = "81.2.69.160", "81.2.70.1"
	intruder := device("intruder", a.ID, T0)
	intruder.IP, intruder.DeviceLabel = "203.0.113.9", "Edge on Windows"
	for _, s := range []db.Session{mine, other, intruder} {
		f.session(t, s)
	}
	notMe := Link("not-me", a.ID, db.LinkSignInNotMe, f.userRow(t, a.ID).Epoch, T0, 24*time.Hour)
	notMe.SessionID = "intruder"
	f.link(t, notMe)
	h.skip(t, a.ID)
	epoch := f.userRow(t, a.ID).Epoch
	now := T0.Add(time.Hour)
	f.rec.Take()
	got, err := f.s.RecoverAccount(f.ctx, db.Recovery{UserID: a.ID, LinkID: "not-me", LinkPurpose: db.LinkSignInNotMe,
		KeepSessionID: "mine", KeepSecretHash: []byte("new-secret"), EndSessionID: "intruder", PasswordHash: "hash-new",
		ForgetDevice: intruder.DeviceLabel, ForgetNetwork: db.Network(intruder.IP), Reason: db.ReasonNotMe, By: "mine", Now: now})
	if err != nil || ids(got.Ended) != "intruder" || len(got.Tokens) != 0 {
		t.Fatalf("RecoverAccount = ended %s, tokens %d, %v; want intruder", ids(got.Ended), len(got.Tokens), err)
	}
	if live := f.live(t, a.ID, now); live != "mine,other" && live != "other,mine" {
		t.Fatalf("live after disowning one: %s, want mine and other", live)
	}
	kept, _, _ := f.s.SessionWithUser(f.ctx, "mine")
	if !bytes.Equal(kept.SecretHash, []byte("new-secret")) || !kept.ReauthAt.Equal(now) {
		t.Fatalf("the kept session: %+v", kept)
	}
	if u := f.userRow(t, a.ID); u.Epoch == epoch || u.PasswordHash != "hash-new" {
		t.Fatalf("the user: %+v (epoch was %d)", u, epoch)
	}
	if f.seen(t, a.ID, intruder.DeviceLabel, db.Network(intruder.IP), T0) {
		t.Error("the disowned place is still known")
	}
	if !f.seen(t, a.ID, mine.DeviceLabel, db.Network(mine.IP), T0) {
		t.Error("this browser's place was forgotten")
	}
	if ev := f.rec.Take(); len(ev) != 1 || !sameEvent(ev[0], db.Event{Kind: db.SessionEnded, UserID: a.ID, SessionID: "intruder", Reason: db.ReasonNotMe, By: "mine", At: now}) {
		t.Errorf("reported %+v", ev)
	}
	h.expect(t, "This wasn't me", a.ID, db.SecurityEvent{UserID: a.ID, Kind: db.EventPasswordChanged, At: now, Reason: db.ReasonNotMe},
		endedEvent(intruder, db.ReasonNotMe, "mine", now))

	// The disowned session ended already ("Not you?" after it expired):
	// fine; and ending the others keeps this browser.
	got, err = f.s.RecoverAccount(f.ctx, db.Recovery{UserID: a.ID, KeepSessionID: "mine", KeepSecretHash: []byte("newer"),
		EndSessionID: "intruder", EndOthers: true, Reason: db.ReasonNotMe, By: "mine", Now: now})
	if err != nil || ids(got.Ended) != "other" {
		t.Fatalf("a second recovery = ended %s, %v; want other", ids(got.Ended), err)
	}
	if live := f.live(t, a.ID, now); live != "mine" {
		t.Fatalf("live after ending the others: %s, want mine", live)
	}
	h.expect(t, "ending the others", a.ID, endedEvent(other, db.ReasonNotMe, "mine", now))
}

// testRecoverAccountUndoEmail: undoing a change of address puts the old
// one back, verified, and ends everything; if another account took it
// meanwhile, nothing happens.
func testRecoverAccountUndoEmail(t *testing.T, f *fixture) {
	h := newHistory(f)
	a := f.user(t, "a@example.com")
	f.session(t, Session("a1", a.ID, T0))
	f.token(t, Token("ta", a.ID, db.TokenApp, T0))
	if err := f.s.UpdateEmail(f.ctx, a.ID, "thief@example.com"); err != nil {
		t.Fatal(err)
	}
	undo := Link("undo", a.ID, db.LinkUndoEmail, f.userRow(t, a.ID).Epoch, T0, 7*24*time.Hour)
	undo.Email = "a@example.com"
	f.link(t, undo)
	other := f.user(t, "a@example.com")
	h.skip(t, a.ID)
	now := T0.Add(time.Hour)
	r := db.Recovery{UserID: a.ID, LinkID: "undo", LinkPurpose: db.LinkUndoEmail, RestoreEmail: "a@example.com",
		EndOthers: true, EndTokens: true, Reason: db.ReasonEmailUndone, Now: now}
	before := f.dump(t)
	if _, err := f.s.RecoverAccount(f.ctx, r); !errors.Is(err, db.ErrEmailTaken) {
		t.Fatalf("restoring an address taken meanwhile: %v, want ErrEmailTaken", err)
	}
	f.unchanged(t, before, "restoring a taken address")
	if _, err := f.s.DeleteUser(f.ctx, other.ID, now); err != nil {
		t.Fatal(err)
	}
	got, err := f.s.RecoverAccount(f.ctx, r)
	if err != nil || got.User.Email != "a@example.com" || !got.User.EmailVerifiedAt.Equal(now) || ids(got.Ended) != "a1" || tokenIDs(got.Tokens) != "ta" {
		t.Fatalf("RecoverAccount = %+v, %v", got, err)
	}
	if u, err := f.s.UserByEmail(f.ctx, "a@example.com"); err != nil || u.ID != a.ID {
		t.Fatalf("the restored address: %+v, %v", u, err)
	}
	h.expect(t, "an undone change", a.ID,
		db.SecurityEvent{UserID: a.ID, Kind: db.EventEmailChanged, At: now, Detail: "a@example.com", Reason: db.ReasonEmailUndone},
		endedEvent(Session("a1", a.ID, T0), db.ReasonEmailUndone, "", now),
		tokenEnded(Token("ta", a.ID, db.TokenApp, T0), db.ReasonEmailUndone, "", now))
}

// testSignInPlaces: a place is seen since a time if a sign-in from it was
// recorded then or later; it is the user's own, and the network counts,
// not the address.
func testSignInPlaces(t *testing.T, f *fixture) {
	a, b := f.user(t, "a@example.com"), f.user(t, "b@example.com")
	const dev, net = "Chrome on macOS", "81.2.0.0/16"
	at := T0.Add(time.Hour)
	if f.seen(t, a.ID, dev, net, time.Time{}) {
		t.Fatal("a place seen before any sign-in")
	}
	if err := f.s.RememberSignInPlace(f.ctx, a.ID, dev, net, at); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		what         string
		user         int64
		device, netw string
		since        time.Time
		want         bool
	}{
		{"since then", a.ID, dev, net, at, true},
		{"since earlier", a.ID, dev, net, T0, true},
		{"since a second later", a.ID, dev, net, at.Add(time.Second), false},
		{"another device", a.ID, "Firefox on Linux", net, T0, false},
		{"another network", a.ID, dev, "81.3.0.0/16", T0, false},
		{"another user", b.ID, dev, net, T0, false},
	} {
		if got := f.seen(t, c.user, c.device, c.netw, c.since); got != c.want {
			t.Errorf("SignInPlaceSeen %s = %v, want %v", c.what, got, c.want)
		}
	}
	// An older sighting never moves it back; a newer one moves it on.
	if err := f.s.RememberSignInPlace(f.ctx, a.ID, dev, net, T0); err != nil {
		t.Fatal(err)
	}
	if !f.seen(t, a.ID, dev, net, at) {
		t.Error("an older sighting moved the place back")
	}
	if err := f.s.RememberSignInPlace(f.ctx, a.ID, dev, net, at.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if !f.seen(t, a.ID, dev, net, at.Add(time.Hour)) {
		t.Error("a newer sighting did not move the place on")
	}
	if err := f.s.RememberSignInPlace(f.ctx, 99999, dev, net, at); err == nil {
		t.Error("a place remembered for no user")
	}
	// A sign-in records its own place: another address in the same /16.
	s := Session("b1", b.ID, at)
	s.IP = "81.2.200.7"
	f.session(t, s)
	if !f.seen(t, b.ID, s.DeviceLabel, net, at) {
		t.Error("CreateSession did not record its place")
	}
}

// testMailUserSettings: sign-in alerts on and off, and a verified address,
// on every read of the user.
func testMailUserSettings(t *testing.T, f *fixture) {
	a, b := f.user(t, "a@example.com"), f.user(t, "b@example.com")
	f.session(t, Session("a1", a.ID, T0))
	f.token(t, Token("ta", a.ID, db.TokenPersonal, T0))
	reads := func(what string, check func(db.User) bool) {
		t.Helper()
		u1, err1 := f.s.UserByID(f.ctx, a.ID)
		u2, err2 := f.s.UserByEmail(f.ctx, "a@example.com")
		_, u3, err3 := f.s.SessionWithUser(f.ctx, "a1")
		_, u4, err4 := f.s.TokenWithUser(f.ctx, "ta")
		if err := errors.Join(err1, err2, err3, err4); err != nil {
			t.Fatal(err)
		}
		for i, u := range []db.User{u1, u2, u3, u4} {
			if !check(u) {
				t.Errorf("%s: read %d gives %+v", what, i+1, u)
			}
		}
	}
	reads("a new user", func(u db.User) bool { return !u.SignInAlertsOff && !u.EmailVerified() })
	if err := f.s.SetSignInAlerts(f.ctx, a.ID, false); err != nil {
		t.Fatal(err)
	}
	reads("alerts off", func(u db.User) bool { return u.SignInAlertsOff })
	if f.userRow(t, b.ID).SignInAlertsOff {
		t.Error("a's choice changed b")
	}
	if err := f.s.SetSignInAlerts(f.ctx, a.ID, true); err != nil {
		t.Fatal(err)
	}
	reads("alerts on again", func(u db.User) bool { return !u.SignInAlertsOff })
	if err := f.s.SetSignInAlerts(f.ctx, 99999, false); !errors.Is(err, db.ErrNotFound) {
		t.Errorf("SetSignInAlerts of nobody: %v, want ErrNotFound", err)
	}

	h := newHistory(f)
	h.skip(t, a.ID)
	now := T0.Add(time.Minute)
	// A verify link proves the address once; a second one, later, keeps
	// when it was first proved and records nothing.
	for i, at := range []time.Time{now, now.Add(time.Hour)} {
		l := Link(fmt.Sprintf("verify%d", i), a.ID, db.LinkVerifyEmail, f.userRow(t, a.ID).Epoch, T0, 2*time.Hour)
		l.Email = "a@example.com"
		f.link(t, l)
		if _, err := f.s.ConfirmEmail(f.ctx, l.ID, at); err != nil {
			t.Fatalf("ConfirmEmail(%s): %v", l.ID, err)
		}
		if i == 0 {
			reads("verified", func(u db.User) bool { return u.EmailVerifiedAt.Equal(now) })
			h.expect(t, "the first verify link", a.ID, db.SecurityEvent{UserID: a.ID, Kind: db.EventEmailVerified, At: now, Detail: "a@example.com"})
		}
	}
	reads("verified twice", func(u db.User) bool { return u.EmailVerifiedAt.Equal(now) })
	h.expect(t, "verifying what is verified", a.ID)
	if f.userRow(t, b.ID).EmailVerified() {
		t.Error("a's verification changed b")
	}
}

// testMailDeleteUser: deleting a user removes their links, places and mails
// (the outbox's addresses and subjects are about them); another user's
// stay.
func testMailDeleteUser(t *testing.T, f *fixture) {
	a, b := f.user(t, "a@example.com"), f.user(t, "b@example.com")
	f.session(t, Session("a1", a.ID, T0))
	f.session(t, Session("b1", b.ID, T0))
	f.userLink(t, "la", a.ID, db.LinkPasswordReset)
	f.userLink(t, "lb", b.ID, db.LinkPasswordReset)
	if _, err := f.s.DeleteUser(f.ctx, a.ID, T0); err != nil {
		t.Fatal(err)
	}
	if _, err := f.s.LinkToken(f.ctx, "la"); !errors.Is(err, db.ErrNotFound) {
		t.Errorf("a link survived its user: %v", err)
	}
	if f.seen(t, a.ID, "Chrome on macOS", db.Network("81.2.69.160"), T0) {
		t.Error("a place survived its user")
	}
	if d := f.dump(t); strings.Contains(d, fmt.Sprintf("%x", "link-hash-la")) {
		t.Error("the deleted user's link is still in the dump")
	}
	f.notQueued(t, "mail-la", "deleting the user")
	f.queued(t, "mail-lb", b.ID, "deleting another user")
	f.linkRow(t, "lb")
	if !f.seen(t, b.ID, "Chrome on macOS", db.Network("81.2.69.160"), T0) {
		t.Error("deleting a removed b's place")
	}
}

// testMailNetwork: what counts as one place for new sign-in alerts.
func testMailNetwork(t *testing.T, _ *fixture) {
	for _, c := range []struct{ ip, want string }{
		{"81.2.69.160", "81.2.0.0/16"},
		{"81.2.255.255", "81.2.0.0/16"},
		{"10.0.0.1", "10.0.0.0/16"},
		{"2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"},
		{"2001:db8:1:2::", "2001:db8:1:2::/64"},
		{"2001:db8:1:3::1", "2001:db8:1:3::/64"},
		{"::ffff:81.2.69.160", "81.2.0.0/16"},
		{"", ""},
		{"not an address", ""},
		{"81.2.69", ""},
		{"81.2.69.160:443", ""},
	} {
		if got := db.Network(c.ip); got != c.want {
			t.Errorf("Network(%q) = %q, want %q", c.ip, got, c.want)
		}
	}
	if db.Network("81.2.69.160") == db.Network("81.3.69.160") || db.Network("2001:db8:1:2::1") == db.Network("2001:db8:1:3::1") {
		t.Error("two networks are one")
	}
}
