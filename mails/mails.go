// Package mails writes every email Doorman sends: its subject, its words and
// both its parts (plain text and HTML, from the same content), as a db.Mail
// ready to queue. It does not send anything; the outbox worker does.
//
// Each mail says what happened, where from (device, place, address, time)
// and the one thing to do about it, and its footer says why the reader got
// it. Subjects never hold user text, and every value from outside is put
// on one line, so nothing a request carries can forge a header or a line.
package mails

import (
	"strconv"
	"time"

	"doorman/db"
	"doorman/secretbox"
)

// Where is the device, place, address and time a mail is about: where a
// request came from, or where a change was made. Empty fields are left out
// of the mail.
type Where struct {
	Device   string // "Firefox on Windows"
	Location string // "Berlin, Germany"
	IP       string
	At       time.Time
}

// Builder makes the mails of one Doorman site. It needs no mailer and holds
// no state, so one value serves every request.
type Builder struct {
	// Site is the product's name in subjects and words ("Doorman").
	Site string
	// BaseURL is the site's address ("https://id.example.com"): the
	// footer links it and says its host.
	BaseURL string
	// Host is the right-hand side of Message-IDs (BaseURL's host if empty).
	Host string
	// Box seals each mail's text and HTML bodies (mailer.Seal) before it
	// is queued: they carry links that are credentials, and the database
	// (its files, its backups) must not hold them in clear. nil: the
	// bodies are queued as written (no key on this server).
	Box *secretbox.Box
}

// whyRequested is the footer of a mail someone asked for: it names the
// request so a reader who didn't make it knows it is not about them.
func (b Builder) whyRequested(request, to string) string {
	return "You got this email because someone asked " + request + " " + to + b.at() + "."
}

// whySecurity is the footer of a security notice: it goes to the account's
// address whatever the reader's settings, because these are the changes an
// attacker would hide.
func (b Builder) whySecurity(to string) string {
	return "You got this email because " + to + " is the address of your " + b.site() +
		" account" + b.at() + ", and " + b.site() + " tells you about every change to its security."
}

// PasswordReset is the mail with a link to choose a new password, asked for
// from w. The link works until expires (30 minutes) and once.
func (b Builder) PasswordReset(to string, w Where, link string, expires time.Time) db.Mail {
	to = oneLine(to)
	site := b.site()
	c := content{
		subject:     "Reset your " + site + " password",
		preheader:   "Someone asked to reset your password. If it was you, choose a new one.",
		heading:     "Reset your password",
		paragraphs:  []string{"Someone asked to reset the password of the " + site + " account for " + to + "."},
		detailsLead: "The request came from:",
		details:     whereRows(w),
		action:      hyperlink{label: "Choose a new password", url: link},
		actionNote:  linkNote("This link works", w.At, expires, true),
		closing:     []string{"If you didn't ask, ignore this mail: your password stays as it is."},
		reason:      b.whyRequested("to reset the password of the "+site+" account for", to),
	}
	return b.mail(db.MailPasswordReset, to, w.At, expires, c)
}

// NoAccount answers a request for a link (what: "a password reset", "a
// sign-in link") for an address no account uses. It is sent so the answer
// on the page can be the same whether or not an account exists.
func (b Builder) NoAccount(to string, w Where, what, signupURL string) db.Mail {
	to = oneLine(to)
	what = oneLine(what)
	site := b.site()
	c := content{
		subject:   "No " + site + " account uses this address",
		preheader: "Someone asked for " + what + ", but no account uses this address.",
		heading:   "No account for this address",
		paragraphs: []string{
			"Someone asked for " + what + " for " + to + ", but no " + site + " account uses this address.",
			"If you have an account under another address, ask again with that one.",
		},
		detailsLead: "The request came from:",
		details:     whereRows(w),
		actionLead:  "If you meant to sign up, you can create an account with this address.",
		action:      hyperlink{label: "Create an account", url: signupURL},
		closing:     []string{"If it wasn't you, there is nothing to do: ignore this mail. Nothing was created or changed."},
		reason:      b.whyRequested("for "+what+" for", to),
	}
	return b.mail(db.MailNoAccount, to, w.At, time.Time{}, c)
}

// PasswordChanged tells the account that its password was changed from w;
// endedEverything says every other session and app was signed out with it.
// resetURL is the forgot-password page: a reader who didn't change it no
// longer knows the password.
func (b Builder) PasswordChanged(to string, w Where, endedEverything bool, resetURL string) db.Mail {
	to = oneLine(to)
	site := b.site()
	paragraphs := []string{"The password of the " + site + " account for " + to + " was changed."}
	if endedEverything {
		paragraphs = append(paragraphs, "Every other session and every connected app was signed out at the same time.")
	}
	c := content{
		subject:     "Your " + site + " password was changed",
		preheader:   "If it wasn't you, reset your password now.",
		heading:     "Your password was changed",
		paragraphs:  paragraphs,
		detailsLead: "It was changed from:",
		details:     whereRows(w),
		actionLead:  "If this wasn't you, someone else can get into your account: reset your password now.",
		action:      hyperlink{label: "Reset your password", url: resetURL},
		closing:     []string{"If it was you, there is nothing to do."},
		reason:      b.whySecurity(to),
	}
	return b.mail(db.MailPasswordChanged, to, w.At, time.Time{}, c)
}

// VerifyEmail asks to confirm that the account's address reaches its owner.
// now is when the mail is made; the link works until expires, once.
func (b Builder) VerifyEmail(to string, now time.Time, link string, expires time.Time) db.Mail {
	to = oneLine(to)
	site := b.site()
	c := content{
		subject:   "Confirm your email address for " + site,
		preheader: "Confirm that this address is yours.",
		heading:   "Confirm your email address",
		paragraphs: []string{
			"Confirm that " + to + " is yours. " + site + " uses it to reach you: to reset your password, and to tell you about new sign-ins and changes to your account's security.",
		},
		action:     hyperlink{label: "Confirm this address", url: link},
		actionNote: linkNote("This link works", now, expires, true),
		closing:    []string{"If you don't have a " + site + " account" + b.at() + ", ignore this mail: someone may have typed your address by mistake."},
		reason:     "You got this email because this address was given for a " + site + " account" + b.at() + ".",
	}
	return b.mail(db.MailVerifyEmail, to, now, expires, c)
}

// ChangeEmail goes to the new address (to) of a change asked for from w by
// the account that uses old. Nothing changes until its link is followed.
func (b Builder) ChangeEmail(to, old string, w Where, link string, expires time.Time) db.Mail {
	to, old = oneLine(to), oneLine(old)
	site := b.site()
	c := content{
		subject:   "Confirm your new email address for " + site,
		preheader: "Nothing changes until you confirm it.",
		heading:   "Confirm your new address",
		paragraphs: []string{
			"Someone signed in to the " + site + " account for " + old + " asked to change its address to " + to + ".",
			"Nothing changes until you follow the link below: until then the account keeps " + old + ".",
		},
		detailsLead: "The request came from:",
		details:     whereRows(w),
		action:      hyperlink{label: "Confirm this address", url: link},
		actionNote:  linkNote("This link works", w.At, expires, true),
		closing:     []string{"If you didn't ask, ignore this mail: the account keeps its current address."},
		reason:      "You got this email because someone asked to make " + to + " the address of a " + site + " account" + b.at() + ".",
	}
	return b.mail(db.MailChangeEmail, to, w.At, expires, c)
}

// EmailChanged goes to the old address (to) once the account's address is
// newAddr: its undo link puts the old address back, ends every session, app
// and token, and sets a new password, because whoever made the change may
// hold all of those.
func (b Builder) EmailChanged(to, newAddr string, w Where, undoLink string, expires time.Time) db.Mail {
	to, newAddr = oneLine(to), oneLine(newAddr)
	site := b.site()
	c := content{
		subject:   "Your " + site + " email address was changed",
		preheader: "If it wasn't you, undo the change now.",
		heading:   "Your email address was changed",
		paragraphs: []string{
			"The address of your " + site + " account was changed from " + to + " to " + newAddr + ". Mail about the account now goes to " + newAddr + ".",
		},
		detailsLead: "The change was asked for from:",
		details:     whereRows(w),
		actionLead:  "If this wasn't you, undo it now. Undoing it puts " + to + " back, ends every session, app and token on the account, and lets you choose a new password.",
		action:      hyperlink{label: "Undo this change", url: undoLink},
		actionNote:  linkNote("This link works", w.At, expires, true),
		closing:     []string{"If it was you, there is nothing to do."},
		reason:      "You got this email because " + to + " was the address of your " + site + " account" + b.at() + " until this change.",
	}
	return b.mail(db.MailEmailChanged, to, w.At, expires, c)
}

// NewSignIn alerts the account to a sign-in (by method: "password",
// "password and authenticator app", "emailed link") from a device and place
// it hasn't used in the last 90 days. "This wasn't me" is the button: it is
// the one that matters; "This was me" is a plain link.
func (b Builder) NewSignIn(to string, w Where, method, knownLink, notMeLink, alertsURL string, expires time.Time) db.Mail {
	to = oneLine(to)
	site := b.site()
	c := content{
		subject:    "New sign-in to your " + site + " account",
		preheader:  "From " + whereSummary(w) + ". If it wasn't you, secure your account now.",
		heading:    "New sign-in to your account",
		paragraphs: []string{"Someone signed in to the " + site + " account for " + to + " from a device and place it hasn't used lately."},
		details:    whereRows(w, detail{"Signed in with", method}),
		actionLead: "If this wasn't you, end that session now and choose a new password.",
		action:     hyperlink{label: "This wasn't me", url: notMeLink},
		secondary: []hyperlink{{
			lead:  "If it was you, there is nothing else to do. Saying so makes this device and place count as yours.",
			label: "This was me",
			url:   knownLink,
		}},
		closing: []string{linkNote("These links work", w.At, expires, false)},
		reason:  "You got this email because someone signed in to your " + site + " account" + b.at() + " from a device and place not seen on it in the last 90 days.",
		footerLink: hyperlink{
			lead:  "To stop these emails,",
			label: "turn off new sign-in alerts",
			url:   alertsURL,
		},
	}
	if c.closing[0] == "" {
		c.closing = nil
	}
	return b.mail(db.MailNewSignIn, to, w.At, expires, c)
}

// whereSummary is the device and place of w on one line, for a preview.
func whereSummary(w Where) string {
	d, l := oneLine(w.Device), oneLine(w.Location)
	switch {
	case d != "" && l != "":
		return d + " in " + l
	case d != "":
		return d
	case l != "":
		return l
	}
	return "a new device"
}

// SignInLink is the mail with a link that signs in (15 minutes, once),
// asked for from w.
func (b Builder) SignInLink(to string, w Where, link string, expires time.Time) db.Mail {
	to = oneLine(to)
	site := b.site()
	c := content{
		subject:     "Your " + site + " sign-in link",
		preheader:   "Use it to sign in. It works once.",
		heading:     "Sign in to " + site,
		paragraphs:  []string{"Someone asked for a link to sign in to the " + site + " account for " + to + "."},
		detailsLead: "The request came from:",
		details:     whereRows(w),
		action:      hyperlink{label: "Sign in", url: link},
		actionNote:  linkNote("This link works", w.At, expires, true),
		closing: []string{
			"Don't forward this mail or share the link: it signs in to your account.",
			"If you didn't ask, ignore this mail: nothing happens unless the link is used.",
		},
		reason: b.whyRequested("for a sign-in link for", to),
	}
	return b.mail(db.MailSignInLink, to, w.At, expires, c)
}

// securityNotice is the shape of the notices that something about the
// account's security changed: what happened, where from, and the Security
// page for a reader who didn't do it.
func (b Builder) securityNotice(kind, to string, w Where, subject, heading string, paragraphs []string, detailsLead, ifNotYou, securityURL string) db.Mail {
	c := content{
		subject:     subject,
		preheader:   "If it wasn't you, check your account now.",
		heading:     heading,
		paragraphs:  paragraphs,
		detailsLead: detailsLead,
		details:     whereRows(w),
		actionLead:  ifNotYou,
		action:      hyperlink{label: "Open Security settings", url: securityURL},
		closing:     []string{"If it was you, there is nothing to do."},
		reason:      b.whySecurity(to),
	}
	return b.mail(kind, to, w.At, time.Time{}, c)
}

// TwoFactorOn tells the account that two-factor authentication was turned
// on from w.
func (b Builder) TwoFactorOn(to string, w Where, securityURL string) db.Mail {
	to = oneLine(to)
	site := b.site()
	return b.securityNotice(db.MailTwoFactorOn, to, w,
		"Two-factor authentication is on for your "+site+" account",
		"Two-factor authentication is on",
		[]string{"Two-factor authentication was turned on for the " + site + " account for " + to + ". Signing in now needs a code from an authenticator app after the password."},
		"It was turned on from:",
		"If this wasn't you, someone else is signed in to your account: sign out every session you don't recognise and change your password.",
		securityURL)
}

// TwoFactorCleared tells the account that a password reset from w turned
// two-factor off: it had been turned on before the address was verified,
// perhaps by someone who signed up with an address that isn't theirs.
func (b Builder) TwoFactorCleared(to string, w Where, securityURL string) db.Mail {
	to = oneLine(to)
	site := b.site()
	return b.securityNotice(db.MailTwoFactorOff, to, w,
		"Two-factor authentication is off for your "+site+" account",
		"Two-factor authentication is off",
		[]string{"The password of the " + site + " account for " + to + " was reset with the link we sent to this address, and that turned two-factor authentication off: it had been turned on before this address was verified, so whoever turned it on may not have been you. Signing in now needs only the new password; turn two-factor on again from your Security page."},
		"The password was reset from:",
		"If this wasn't you, someone else can read this mailbox: reset the password again from the link on our sign-in page, and secure your email account.",
		securityURL)
}

// TwoFactorOff tells the account that two-factor authentication was turned
// off from w.
func (b Builder) TwoFactorOff(to string, w Where, securityURL string) db.Mail {
	to = oneLine(to)
	site := b.site()
	return b.securityNotice(db.MailTwoFactorOff, to, w,
		"Two-factor authentication is off for your "+site+" account",
		"Two-factor authentication is off",
		[]string{"Two-factor authentication was turned off for the " + site + " account for " + to + ". Signing in now needs only the password."},
		"It was turned off from:",
		"If this wasn't you, someone else is signed in to your account: sign out every session you don't recognise, change your password and turn two-factor authentication back on.",
		securityURL)
}

// TokenCreated tells the account that an access token called name was
// created from w. A token outlives the session that made it, so the owner
// hears of every one.
func (b Builder) TokenCreated(to, name string, w Where, securityURL string) db.Mail {
	to, name = oneLine(to), oneLine(name)
	site := b.site()
	return b.securityNotice(db.MailTokenCreated, to, w,
		"An access token was created for your "+site+" account",
		"A new access token",
		[]string{"An access token called “" + name + "” was created for the " + site + " account for " + to + ". Whoever holds it can use the account's API until it expires or is revoked."},
		"It was created from:",
		"If this wasn't you, someone has your password: revoke the token on the Access tokens page, then change your password.",
		securityURL)
}

// PasskeyAdded tells the account that a passkey called name was added from
// w. A passkey signs in without the password, so the owner hears of every
// one.
func (b Builder) PasskeyAdded(to, name string, w Where, securityURL string) db.Mail {
	to, name = oneLine(to), oneLine(name)
	site := b.site()
	return b.securityNotice(db.MailPasskeyAdded, to, w,
		"A passkey was added to your "+site+" account",
		"A new passkey",
		[]string{"A passkey called “" + name + "” was added to the " + site + " account for " + to + ". Whoever holds it can sign in without the password until it is removed."},
		"It was added from:",
		"If this wasn't you, someone has your password: remove the passkey on the Security page, then change your password.",
		securityURL)
}

// AppConnected tells the account that the app called app was given access
// from w (the approving browser; requestedFrom is where the app asked from).
func (b Builder) AppConnected(to, app, requestedFrom string, w Where, securityURL string) db.Mail {
	to, app, requestedFrom = oneLine(to), oneLine(app), oneLine(requestedFrom)
	site := b.site()
	paragraphs := []string{"The app “" + app + "” was connected to the " + site + " account for " + to + ". It can use the account's API until it is disconnected."}
	if requestedFrom != "" {
		paragraphs = append(paragraphs, "The app asked from "+requestedFrom+".")
	}
	return b.securityNotice(db.MailAppConnected, to, w,
		"An app was connected to your "+site+" account",
		"A new connected app",
		paragraphs,
		"It was approved from:",
		"If this wasn't you, someone has your password: disconnect the app on the Security page, then change your password.",
		securityURL)
}

// EmailChangeAsked goes to the account's current address (to) when a
// change to newAddr is asked for from w: nothing changes until newAddr
// confirms, and cancelLink stops it before then.
func (b Builder) EmailChangeAsked(to, newAddr string, w Where, cancelLink string, expires time.Time) db.Mail {
	to, newAddr = oneLine(to), oneLine(newAddr)
	site := b.site()
	c := content{
		subject:   "Someone asked to change your " + site + " email address",
		preheader: "Nothing has changed yet. If it wasn't you, cancel it.",
		heading:   "A change of address was asked for",
		paragraphs: []string{
			"Someone signed in to your " + site + " account asked to change its address from " + to + " to " + newAddr + ".",
			"Nothing changes unless the link we sent to " + newAddr + " is followed.",
		},
		detailsLead: "The request came from:",
		details:     whereRows(w),
		actionLead:  "If this wasn't you, cancel it now, then change your password: whoever asked knew it.",
		action:      hyperlink{label: "Cancel this change", url: cancelLink},
		actionNote:  linkNote("This link works", w.At, expires, true),
		closing:     []string{"If it was you, there is nothing to do here."},
		reason:      b.whySecurity(to),
	}
	return b.mail(db.MailEmailChangeAsked, to, w.At, expires, c)
}

// AddressInUse goes to an address (to) that another account asked, from w,
// to move to. The asker is told the same as for any address (a link was
// sent), so the answer reveals nothing; the holder is told instead.
func (b Builder) AddressInUse(to string, w Where, securityURL string) db.Mail {
	to = oneLine(to)
	site := b.site()
	c := content{
		subject:     "Someone tried to move a " + site + " account to your address",
		preheader:   "Nothing changed: your account keeps this address.",
		heading:     "Your address was asked for",
		paragraphs:  []string{"Someone signed in to another " + site + " account asked to make " + to + " its address. Your account already uses it, so nothing changed."},
		detailsLead: "The request came from:",
		details:     whereRows(w),
		actionLead:  "There is nothing you need to do. Your own account's sessions are on its Security page.",
		action:      hyperlink{label: "Open Security settings", url: securityURL},
		reason:      "You got this email because " + to + " is the address of a " + site + " account" + b.at() + ".",
	}
	return b.mail(db.MailAddressInUse, to, w.At, time.Time{}, c)
}

// RecoveryCodeUsed tells the account that a recovery code signed in from w,
// and how many are left.
func (b Builder) RecoveryCodeUsed(to string, w Where, left int, securityURL string) db.Mail {
	to = oneLine(to)
	site := b.site()
	var count string
	switch {
	case left <= 0:
		count = "That was the last one: make new recovery codes now, or you can't sign in without your authenticator app."
	case left == 1:
		count = "Each code works once. You have 1 left."
	default:
		count = "Each code works once. You have " + strconv.Itoa(left) + " left."
	}
	return b.securityNotice(db.MailRecoveryCode, to, w,
		"A recovery code was used to sign in to your "+site+" account",
		"A recovery code was used",
		[]string{
			"Someone signed in to the " + site + " account for " + to + " with a recovery code instead of a code from the authenticator app.",
			count,
		},
		"It was used from:",
		"If this wasn't you, someone has your password and a recovery code: sign that session out and change your password now.",
		securityURL)
}

// AccountRecovered confirms a "take the account back" (what says what was
// done: "You ended the session on Chrome on Android and set a new
// password."), done from w.
func (b Builder) AccountRecovered(to string, w Where, what, securityURL string) db.Mail {
	to = oneLine(to)
	site := b.site()
	c := content{
		subject:     "You secured your " + site + " account",
		preheader:   oneLine(what),
		heading:     "You secured your account",
		paragraphs:  []string{oneLine(what)},
		detailsLead: "This was done from:",
		details:     whereRows(w),
		actionLead:  "Check that every session still signed in is yours.",
		action:      hyperlink{label: "Open Security settings", url: securityURL},
		closing: []string{
			"If this wasn't you, someone can read the mail sent to " + to + ": change that mailbox's password first, then your " + site + " password.",
		},
		reason: b.whySecurity(to),
	}
	return b.mail(db.MailAccountRecovered, to, w.At, time.Time{}, c)
}
