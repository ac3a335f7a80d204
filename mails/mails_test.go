package mails

import (
	"html"
	"regexp"
	"strings"
	"testing"
	"time"

	xhtml "golang.org/x/net/html"
	"golang.org/x/net/html/atom"

	"doorman/db"
)

var (
	builder = Builder{Site: "Doorman", BaseURL: "https://id.example.com", Host: "mail.example.com"}
	at      = time.Date(2026, 12, 1, 18, 20, 0, 0, time.UTC)
	where   = Where{Device: "Firefox on Windows", Location: "Berlin, Germany", IP: "203.0.113.5", At: at}
	// Every link has an & so that its escaping is tested: &amp; in the
	// HTML part, as it is in the text part.
	link      = "https://id.example.com/l/abc?s=sec&ret=1"
	known     = "https://id.example.com/l/known?s=k&ret=2"
	notMe     = "https://id.example.com/l/notme?s=n&ret=3"
	alertsURL = "https://id.example.com/settings/security?x=1&y=2#alerts"
	pageURL   = "https://id.example.com/settings/security?from=mail&z=3"
)

var messageIDPattern = regexp.MustCompile(`^[0-9a-f]{32}@mail\.example\.com$`)

// whereRows are the detail rows every mail with a Where shows.
var whereLines = []string{
	"Device: Firefox on Windows",
	"Location: Berlin, Germany",
	"IP address: 203.0.113.5",
	"Time: 1 Dec 2026, 18:20 UTC",
}

type mailCase struct {
	name     string
	build    func(Where) db.Mail
	kind     string
	subject  string
	to       string
	notAfter time.Time
	created  time.Time
	primary  string   // the button's link
	links    []string // every other link the mail must carry
	hasWhere bool
	words    []string // sentences both parts must say
	textOnly []string // lines only the text part has
}

func cases() []mailCase {
	return []mailCase{
		{
			name:  "PasswordReset",
			build: func(w Where) db.Mail { return builder.PasswordReset("a@example.com", w, link, at.Add(30*time.Minute)) },
			kind:  db.MailPasswordReset, subject: "Reset your Doorman password", to: "a@example.com",
			notAfter: at.Add(30 * time.Minute), created: at, primary: link, hasWhere: true,
			words: []string{
				"This link works for 30 minutes, and only once.",
				"If you didn't ask, ignore this mail: your password stays as it is.",
				"You got this email because someone asked to reset the password of the Doorman account for a@example.com at id.example.com.",
			},
		},
		{
			name:  "NoAccount",
			build: func(w Where) db.Mail { return builder.NoAccount("a@example.com", w, "a sign-in link", link) },
			kind:  db.MailNoAccount, subject: "No Doorman account uses this address", to: "a@example.com",
			created: at, primary: link, hasWhere: true,
			words: []string{
				"Someone asked for a sign-in link for a@example.com, but no Doorman account uses this address.",
				"If it wasn't you, there is nothing to do",
			},
		},
		{
			name:  "PasswordChanged",
			build: func(w Where) db.Mail { return builder.PasswordChanged("a@example.com", w, true, link) },
			kind:  db.MailPasswordChanged, subject: "Your Doorman password was changed", to: "a@example.com",
			created: at, primary: link, hasWhere: true,
			words: []string{
				"Every other session and every connected app was signed out at the same time.",
				"If this wasn't you",
				"You got this email because a@example.com is the address of your Doorman account at id.example.com, and Doorman tells you about every change to its security.",
			},
		},
		{
			name:  "VerifyEmail",
			build: func(Where) db.Mail { return builder.VerifyEmail("a@example.com", at, link, at.Add(24*time.Hour)) },
			kind:  db.MailVerifyEmail, subject: "Confirm your email address for Doorman", to: "a@example.com",
			notAfter: at.Add(24 * time.Hour), created: at, primary: link,
			words: []string{"This link works for 24 hours, and only once."},
		},
		{
			name: "ChangeEmail",
			build: func(w Where) db.Mail {
				return builder.ChangeEmail("new@example.com", "old@example.com", w, link, at.Add(24*time.Hour))
			},
			kind: db.MailChangeEmail, subject: "Confirm your new email address for Doorman", to: "new@example.com",
			notAfter: at.Add(24 * time.Hour), created: at, primary: link, hasWhere: true,
			words: []string{
				"asked to change its address to new@example.com.",
				"Nothing changes until you follow the link below: until then the account keeps old@example.com.",
			},
		},
		{
			name: "EmailChanged",
			build: func(w Where) db.Mail {
				return builder.EmailChanged("old@example.com", "new@example.com", w, link, at.Add(7*24*time.Hour))
			},
			kind: db.MailEmailChanged, subject: "Your Doorman email address was changed", to: "old@example.com",
			notAfter: at.Add(7 * 24 * time.Hour), created: at, primary: link, hasWhere: true,
			words: []string{
				"changed from old@example.com to new@example.com.",
				"ends every session, app and token on the account, and lets you choose a new password.",
				"This link works for 7 days, and only once.",
			},
		},
		{
			name: "NewSignIn",
			build: func(w Where) db.Mail {
				return builder.NewSignIn("a@example.com", w, "password and authenticator app", known, notMe, alertsURL, at.Add(7*24*time.Hour))
			},
			kind: db.MailNewSignIn, subject: "New sign-in to your Doorman account", to: "a@example.com",
			notAfter: at.Add(7 * 24 * time.Hour), created: at, primary: notMe, links: []string{known, alertsURL}, hasWhere: true,
			words:    []string{"not seen on it in the last 90 days.", "turn off new sign-in alerts", "This wasn't me", "This was me"},
			textOnly: []string{"Signed in with: password and authenticator app", "This wasn't me:", "This was me:"},
		},
		{
			name:  "SignInLink",
			build: func(w Where) db.Mail { return builder.SignInLink("a@example.com", w, link, at.Add(15*time.Minute)) },
			kind:  db.MailSignInLink, subject: "Your Doorman sign-in link", to: "a@example.com",
			notAfter: at.Add(15 * time.Minute), created: at, primary: link, hasWhere: true,
			words: []string{"This link works for 15 minutes, and only once.", "If you didn't ask, ignore this mail"},
		},
		{
			name:  "TwoFactorOn",
			build: func(w Where) db.Mail { return builder.TwoFactorOn("a@example.com", w, pageURL) },
			kind:  db.MailTwoFactorOn, subject: "Two-factor authentication is on for your Doorman account", to: "a@example.com",
			created: at, primary: pageURL, hasWhere: true,
			words: []string{"Two-factor authentication was turned on"},
		},
		{
			name:  "TokenCreated",
			build: func(w Where) db.Mail { return builder.TokenCreated("a@example.com", "laptop script", w, pageURL) },
			kind:  db.MailTokenCreated, subject: "An access token was created for your Doorman account", to: "a@example.com",
			created: at, primary: pageURL, hasWhere: true,
			words: []string{"An access token called “laptop script” was created", "revoke the token on the Access tokens page"},
		},
		{
			name:  "PasskeyAdded",
			build: func(w Where) db.Mail { return builder.PasskeyAdded("a@example.com", "MacBook", w, pageURL) },
			kind:  db.MailPasskeyAdded, subject: "A passkey was added to your Doorman account", to: "a@example.com",
			created: at, primary: pageURL, hasWhere: true,
			words: []string{"A passkey called “MacBook” was added", "remove the passkey"},
		},
		{
			name: "AppConnected",
			build: func(w Where) db.Mail {
				return builder.AppConnected("a@example.com", "Doorman CLI", "Paris, France (198.51.100.7)", w, pageURL)
			},
			kind: db.MailAppConnected, subject: "An app was connected to your Doorman account", to: "a@example.com",
			created: at, primary: pageURL, hasWhere: true,
			words: []string{"The app “Doorman CLI” was connected", "The app asked from Paris, France (198.51.100.7)."},
		},
		{
			name: "EmailChangeAsked",
			build: func(w Where) db.Mail {
				return builder.EmailChangeAsked("a@example.com", "new@example.net", w, link, at.Add(24*time.Hour))
			},
			kind: db.MailEmailChangeAsked, subject: "Someone asked to change your Doorman email address", to: "a@example.com",
			notAfter: at.Add(24 * time.Hour), created: at, primary: link, hasWhere: true,
			words: []string{"asked to change its address from a@example.com to new@example.net", "cancel it now"},
		},
		{
			name:  "AddressInUse",
			build: func(w Where) db.Mail { return builder.AddressInUse("a@example.com", w, pageURL) },
			kind:  db.MailAddressInUse, subject: "Someone tried to move a Doorman account to your address", to: "a@example.com",
			created: at, primary: pageURL, hasWhere: true,
			words: []string{"asked to make a@example.com its address", "nothing changed"},
		},
		{
			name:  "TwoFactorOff",
			build: func(w Where) db.Mail { return builder.TwoFactorOff("a@example.com", w, pageURL) },
			kind:  db.MailTwoFactorOff, subject: "Two-factor authentication is off for your Doorman account", to: "a@example.com",
			created: at, primary: pageURL, hasWhere: true,
			words: []string{"Two-factor authentication was turned off"},
		},
		{
			name:  "TwoFactorCleared",
			build: func(w Where) db.Mail { return builder.TwoFactorCleared("a@example.com", w, pageURL) },
			kind:  db.MailTwoFactorOff, subject: "Two-factor authentication is off for your Doorman account", to: "a@example.com",
			created: at, primary: pageURL, hasWhere: true,
			words: []string{"that turned two-factor authentication off", "before this address was verified"},
		},
		{
			name:  "RecoveryCodeUsed",
			build: func(w Where) db.Mail { return builder.RecoveryCodeUsed("a@example.com", w, 3, pageURL) },
			kind:  db.MailRecoveryCode, subject: "A recovery code was used to sign in to your Doorman account", to: "a@example.com",
			created: at, primary: pageURL, hasWhere: true,
			words: []string{"You have 3 left."},
		},
		{
			name: "AccountRecovered",
			build: func(w Where) db.Mail {
				return builder.AccountRecovered("a@example.com", w, "You ended the session on Chrome on Android and set a new password.", pageURL)
			},
			kind: db.MailAccountRecovered, subject: "You secured your Doorman account", to: "a@example.com",
			created: at, primary: pageURL, hasWhere: true,
			words: []string{"You ended the session on Chrome on Android and set a new password."},
		},
	}
}

func TestMails(t *testing.T) {
	for _, tc := range cases() {
		t.Run(tc.name, func(t *testing.T) {
			m := tc.build(where)
			if m.Kind != tc.kind {
				t.Errorf("Kind = %q, want %q", m.Kind, tc.kind)
			}
			if m.Subject != tc.subject {
				t.Errorf("Subject = %q, want %q", m.Subject, tc.subject)
			}
			if m.To != tc.to {
				t.Errorf("To = %q, want %q", m.To, tc.to)
			}
			if !messageIDPattern.MatchString(m.MessageID) {
				t.Errorf("MessageID = %q, want 32 hex digits @mail.example.com", m.MessageID)
			}
			if !m.CreatedAt.Equal(tc.created) {
				t.Errorf("CreatedAt = %v, want %v", m.CreatedAt, tc.created)
			}
			if !m.NotAfter.Equal(tc.notAfter) {
				t.Errorf("NotAfter = %v, want %v", m.NotAfter, tc.notAfter)
			}
			if m.UserID != 0 || m.Links != nil {
				t.Errorf("UserID, Links = %d, %v: they are the caller's", m.UserID, m.Links)
			}
			checkText(t, m.Text)
			doc := checkHTML(t, m.HTML, tc.subject)

			for _, l := range append([]string{tc.primary}, tc.links...) {
				checkLink(t, m, doc, l)
			}
			if got := buttons(doc); len(got) != 1 || got[0] != tc.primary {
				t.Errorf("buttons = %q, want exactly one, to %q", got, tc.primary)
			}
			if i, j := strings.Index(m.Text, tc.primary), strings.Index(m.Text, "\n-- \n"); i < 0 || j < 0 || i > j {
				t.Errorf("text: the action's link is not in the body above the footer")
			}
			for _, w := range tc.words {
				if !strings.Contains(m.Text, w) {
					t.Errorf("text does not say %q:\n%s", w, m.Text)
				}
				if !strings.Contains(textOf(doc), w) {
					t.Errorf("HTML does not say %q", w)
				}
			}
			for _, l := range tc.textOnly {
				if !hasLine(m.Text, l) {
					t.Errorf("text has no line %q:\n%s", l, m.Text)
				}
			}
			if !strings.Contains(m.Text, "\n-- \nYou got this email because ") {
				t.Errorf("text has no footer saying why:\n%s", m.Text)
			}
			if !strings.Contains(textOf(doc), "You got this email because ") {
				t.Error("HTML has no footer saying why")
			}

			rows := detailRows(doc)
			for _, l := range whereLines {
				label, value, _ := strings.Cut(l, ": ")
				if tc.hasWhere {
					if !hasLine(m.Text, l) {
						t.Errorf("text has no line %q:\n%s", l, m.Text)
					}
					if rows[label] != value {
						t.Errorf("HTML row %q = %q, want %q", label, rows[label], value)
					}
				} else if _, ok := rows[label]; ok || strings.Contains(m.Text, l) {
					t.Errorf("row %q shown with no Where", label)
				}
			}
		})
	}
}

// TestEmptyIP: a row whose value is unknown is left out, in both parts.
func TestEmptyIP(t *testing.T) {
	w := where
	w.IP = ""
	for _, tc := range cases() {
		if !tc.hasWhere {
			continue
		}
		m := tc.build(w)
		if strings.Contains(m.Text, "IP address") {
			t.Errorf("%s: text has an IP address row:\n%s", tc.name, m.Text)
		}
		doc := parse(t, m.HTML)
		rows := detailRows(doc)
		if _, ok := rows["IP address"]; ok {
			t.Errorf("%s: HTML has an IP address row", tc.name)
		}
		if rows["Device"] != "Firefox on Windows" || rows["Location"] != "Berlin, Germany" {
			t.Errorf("%s: the other rows went too: %v", tc.name, rows)
		}
	}

	m := builder.SignInLink("a@example.com", Where{}, link, time.Time{})
	if strings.Contains(m.Text, "The request came from") || len(detailRows(parse(t, m.HTML))) != 0 {
		t.Errorf("an empty Where shows details:\n%s", m.Text)
	}
}

// TestEscaping: a device label is request data (User-Agent); in the HTML
// part it is text, never markup, and in the text part it can't start a
// line of its own.
func TestEscaping(t *testing.T) {
	w := where
	w.Device = `<script>alert("x")</script><img src=x onerror=alert(1)>`
	w.Location = "Berlin\r\nReset your password here: https://evil.example\u202e"
	for _, tc := range cases() {
		if !tc.hasWhere {
			continue
		}
		m := tc.build(w)
		if strings.Contains(m.HTML, "<script") || strings.Contains(m.HTML, "<img") {
			t.Errorf("%s: device label printed as markup", tc.name)
		}
		if !strings.Contains(m.HTML, "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;") {
			t.Errorf("%s: device label not escaped as text in the HTML", tc.name)
		}
		doc := parse(t, m.HTML)
		if n := find(doc, func(n *xhtml.Node) bool { return n.DataAtom == atom.Script || n.DataAtom == atom.Img }); len(n) > 0 {
			t.Errorf("%s: HTML has a script or img element", tc.name)
		}
		if got := detailRows(doc)["Device"]; got != w.Device {
			t.Errorf("%s: Device row = %q, want it as given %q", tc.name, got, w.Device)
		}
		if !hasLine(m.Text, "Device: "+w.Device) {
			t.Errorf("%s: text has no Device line", tc.name)
		}
		if !hasLine(m.Text, "Location: Berlin Reset your password here: https://evil.example") {
			t.Errorf("%s: line break in the location not flattened:\n%s", tc.name, m.Text)
		}
		if strings.ContainsRune(m.Text, '\u202e') || strings.ContainsRune(m.HTML, '\u202e') {
			t.Errorf("%s: bidi override kept", tc.name)
		}
		if strings.ContainsAny(m.Subject, "\r\n") {
			t.Errorf("%s: subject has a line break", tc.name)
		}
	}
}

func TestMessageIDUnique(t *testing.T) {
	seen := map[string]bool{}
	for range 500 {
		for _, tc := range cases() {
			id := tc.build(where).MessageID
			if seen[id] {
				t.Fatalf("Message-ID %q made twice", id)
			}
			seen[id] = true
		}
	}
}

func TestMessageIDHost(t *testing.T) {
	for _, tc := range []struct {
		b    Builder
		want string
	}{
		{Builder{Host: "mx.example.org", BaseURL: "https://id.example.com"}, "@mx.example.org"},
		{Builder{BaseURL: "https://id.example.com:8443/"}, "@id.example.com:8443"},
		{Builder{}, "@localhost"},
	} {
		if id := tc.b.SignInLink("a@example.com", where, link, at).MessageID; !strings.HasSuffix(id, tc.want) || strings.ContainsAny(id, "<> ") {
			t.Errorf("%+v: MessageID = %q, want …%s", tc.b, id, tc.want)
		}
	}
}

// TestNoBaseURL: without a BaseURL the mails still read, just without
// naming the host.
func TestNoBaseURL(t *testing.T) {
	m := Builder{}.PasswordReset("a@example.com", where, link, at.Add(30*time.Minute))
	if m.Subject != "Reset your Doorman password" {
		t.Errorf("Subject = %q", m.Subject)
	}
	if strings.Contains(m.Text, " at .") || strings.Contains(m.Text, "Doorman: \n") {
		t.Errorf("text reads badly without a BaseURL:\n%s", m.Text)
	}
	checkHTML(t, m.HTML, m.Subject)
}

func TestPasswordChangedEndedEverything(t *testing.T) {
	const ended = "Every other session and every connected app was signed out"
	if m := builder.PasswordChanged("a@example.com", where, false, link); strings.Contains(m.Text, ended) || strings.Contains(m.HTML, ended) {
		t.Error("says everything was signed out when it wasn't")
	}
	if m := builder.PasswordChanged("a@example.com", where, true, link); !strings.Contains(m.Text, ended) || !strings.Contains(m.HTML, ended) {
		t.Error("doesn't say everything was signed out")
	}
}

func TestRecoveryCodesLeft(t *testing.T) {
	for left, want := range map[int]string{0: "That was the last one: make new recovery codes now", 1: "You have 1 left.", 9: "You have 9 left."} {
		if m := builder.RecoveryCodeUsed("a@example.com", where, left, pageURL); !strings.Contains(m.Text, want) {
			t.Errorf("left %d: text doesn't say %q:\n%s", left, want, m.Text)
		}
	}
}

func TestNewSignInButtonIsNotMe(t *testing.T) {
	m := builder.NewSignIn("a@example.com", where, "emailed link", known, notMe, alertsURL, at.Add(time.Hour))
	doc := parse(t, m.HTML)
	if got := buttons(doc); len(got) != 1 || got[0] != notMe {
		t.Errorf("button goes to %q, want only %q", got, notMe)
	}
	var labels []string
	for _, a := range find(doc, func(n *xhtml.Node) bool { return n.DataAtom == atom.A && attr(n, "href") == notMe }) {
		labels = append(labels, textOf(a))
	}
	if len(labels) == 0 || labels[0] != "This wasn't me" {
		t.Errorf("button label = %q", labels)
	}
	if !strings.Contains(m.Text, "These links work for 1 hour.") {
		t.Errorf("no expiry:\n%s", m.Text)
	}
	if i, j := strings.Index(m.Text, alertsURL), strings.Index(m.Text, "\n-- \n"); i < j {
		t.Error("the alerts setting is not in the footer")
	}
}

func TestLinkNote(t *testing.T) {
	for _, tc := range []struct {
		created, expires time.Time
		once             bool
		want             string
	}{
		{at, at.Add(30 * time.Minute), true, "This link works for 30 minutes, and only once."},
		{at, at.Add(30*time.Minute - 2*time.Second), true, "This link works for 30 minutes, and only once."},
		{at, at.Add(time.Minute), true, "This link works for 1 minute, and only once."},
		{at, at.Add(90 * time.Minute), false, "This link works for 90 minutes."},
		{at, at.Add(time.Hour), false, "This link works for 1 hour."},
		{at, at.Add(48 * time.Hour), false, "This link works for 2 days."},
		{at, at.Add(36 * time.Hour), false, "This link works for 36 hours."},
		{time.Time{}, at, true, "This link works until 1 Dec 2026, 18:20 UTC, and only once."},
		{at, at.Add(-time.Minute), false, "This link works until 1 Dec 2026, 18:19 UTC."},
		{at, time.Time{}, true, "This link works only once."},
		{at, time.Time{}, false, ""},
	} {
		if got := linkNote("This link works", tc.created, tc.expires, tc.once); got != tc.want {
			t.Errorf("linkNote(%v, %v, %v) = %q, want %q", tc.created, tc.expires, tc.once, got, tc.want)
		}
	}
}

func TestFormatTime(t *testing.T) {
	berlin := time.FixedZone("CET", 3600)
	if got := formatTime(time.Date(2026, 12, 1, 19, 20, 0, 0, berlin)); got != "1 Dec 2026, 18:20 UTC" {
		t.Errorf("formatTime = %q", got)
	}
	if got := formatTime(time.Time{}); got != "" {
		t.Errorf("formatTime(zero) = %q", got)
	}
}

func TestOneLine(t *testing.T) {
	for in, want := range map[string]string{
		"  Safari  on\tiPhone ":  "Safari on iPhone",
		"a\r\nb":                 "a b",
		"a\x00b":                 "a b",
		"\u202eevil\u2066":       "evil",
		strings.Repeat("x", 300): strings.Repeat("x", maxValue) + "…",
		strings.Repeat("x", 200): strings.Repeat("x", 200),
	} {
		if got := oneLine(in); got != want {
			t.Errorf("oneLine(%q) = %q, want %q", in, got, want)
		}
	}
}

// checkText: the text part is plain text that stands alone.
func checkText(t *testing.T, text string) {
	t.Helper()
	if regexp.MustCompile(`<[a-zA-Z/!]`).MatchString(text) {
		t.Errorf("text part has markup:\n%s", text)
	}
	if strings.Contains(text, "&amp;") || strings.Contains(text, "&#") {
		t.Errorf("text part has HTML escapes:\n%s", text)
	}
	if strings.Contains(text, "\r") {
		t.Error("text part has a CR (the mailer chooses line endings)")
	}
}

// checkHTML: the HTML part parses, is English, has no images or outside
// resources, lays out with presentation tables and keeps to 560px.
func checkHTML(t *testing.T, s, subject string) *xhtml.Node {
	t.Helper()
	doc := parse(t, s)
	if !strings.HasPrefix(strings.ToLower(s), "<!doctype html>") {
		t.Error("no doctype")
	}
	htmlEl := find(doc, func(n *xhtml.Node) bool { return n.DataAtom == atom.Html })
	if len(htmlEl) != 1 || attr(htmlEl[0], "lang") != "en" {
		t.Error(`no <html lang="en">`)
	}
	if titles := find(doc, func(n *xhtml.Node) bool { return n.DataAtom == atom.Title }); len(titles) != 1 || textOf(titles[0]) != subject {
		t.Error("title is not the subject")
	}
	for _, n := range find(doc, func(n *xhtml.Node) bool { return n.Type == xhtml.ElementNode }) {
		switch n.DataAtom {
		case atom.Img, atom.Script, atom.Link, atom.Iframe, atom.Object, atom.Embed, atom.Picture, atom.Video, atom.Audio, atom.Svg, atom.Form:
			t.Errorf("HTML has a <%s>", n.Data)
		}
		for _, a := range n.Attr {
			if a.Key == "src" || a.Key == "srcset" || a.Key == "background" || strings.HasPrefix(a.Key, "on") {
				t.Errorf("<%s %s=%q>", n.Data, a.Key, a.Val)
			}
			if a.Key == "style" && strings.Contains(a.Val, "url(") {
				t.Errorf("<%s> style loads %q", n.Data, a.Val)
			}
		}
	}
	if strings.Contains(s, "@import") || strings.Contains(s, "url(") {
		t.Error("HTML loads a resource from CSS")
	}
	var maxWidth bool
	for _, tbl := range find(doc, func(n *xhtml.Node) bool { return n.DataAtom == atom.Table }) {
		details := len(find(tbl, func(n *xhtml.Node) bool { return n.DataAtom == atom.Th && attr(n, "scope") == "row" })) > 0
		if !details && attr(tbl, "role") != "presentation" {
			t.Error(`a layout table has no role="presentation"`)
		}
		if strings.Contains(attr(tbl, "style"), "max-width:560px") {
			maxWidth = true
		}
	}
	if !maxWidth {
		t.Error("no 560px table")
	}
	return doc
}

// checkLink: l is in both parts as given: a line of its own in the text,
// an href (escaped as &amp;) and copyable text in the HTML.
func checkLink(t *testing.T, m db.Mail, doc *xhtml.Node, l string) {
	t.Helper()
	if !hasLine(m.Text, l) {
		t.Errorf("text has no line %q:\n%s", l, m.Text)
	}
	if !strings.Contains(m.HTML, `href="`+html.EscapeString(l)+`"`) {
		t.Errorf("HTML has no href %q", html.EscapeString(l))
	}
	if strings.Contains(m.HTML, l) {
		t.Errorf("HTML has %q unescaped", l)
	}
	hrefs := find(doc, func(n *xhtml.Node) bool { return n.DataAtom == atom.A && attr(n, "href") == l })
	if len(hrefs) == 0 {
		t.Errorf("HTML has no link to %q", l)
	}
	if !strings.Contains(textOf(doc), l) && l != alertsURL {
		t.Errorf("HTML doesn't print %q for copying", l)
	}
}

func parse(t *testing.T, s string) *xhtml.Node {
	t.Helper()
	doc, err := xhtml.Parse(strings.NewReader(s))
	if err != nil {
		t.Fatalf("HTML doesn't parse: %v", err)
	}
	return doc
}

// buttons are the links inside the button cell.
func buttons(doc *xhtml.Node) []string {
	var urls []string
	for _, td := range find(doc, func(n *xhtml.Node) bool { return n.DataAtom == atom.Td && attr(n, "class") == "mail-button" }) {
		for _, a := range find(td, func(n *xhtml.Node) bool { return n.DataAtom == atom.A }) {
			urls = append(urls, attr(a, "href"))
		}
	}
	return urls
}

// detailRows are the details table's rows, label to value.
func detailRows(doc *xhtml.Node) map[string]string {
	rows := map[string]string{}
	for _, tr := range find(doc, func(n *xhtml.Node) bool { return n.DataAtom == atom.Tr }) {
		th := find(tr, func(n *xhtml.Node) bool { return n.DataAtom == atom.Th })
		td := find(tr, func(n *xhtml.Node) bool { return n.DataAtom == atom.Td })
		if len(th) == 1 && len(td) == 1 {
			rows[textOf(th[0])] = textOf(td[0])
		}
	}
	return rows
}

func find(n *xhtml.Node, match func(*xhtml.Node) bool) []*xhtml.Node {
	var out []*xhtml.Node
	for d := range n.Descendants() {
		if match(d) {
			out = append(out, d)
		}
	}
	return out
}

func attr(n *xhtml.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

// textOf is the text a reader sees in n (no <style>), spaces collapsed.
func textOf(n *xhtml.Node) string {
	var b strings.Builder
	var walk func(*xhtml.Node)
	walk = func(n *xhtml.Node) {
		switch {
		case n.Type == xhtml.TextNode:
			b.WriteString(n.Data)
		case n.DataAtom == atom.Style || n.DataAtom == atom.Head:
			return
		case n.DataAtom == atom.Br:
			b.WriteString(" ")
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(n)
	if n.DataAtom == atom.Title {
		b.Reset()
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			b.WriteString(c.Data)
		}
	}
	return strings.Join(strings.Fields(b.String()), " ")
}

func hasLine(text, line string) bool {
	for l := range strings.SplitSeq(text, "\n") {
		if l == line {
			return true
		}
	}
	return false
}
