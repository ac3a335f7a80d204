package views

// PasskeyNewProps is the first step of adding a passkey: its name and the
// password.
type PasskeyNewProps struct {
	Page
	Name, NameError, PasswordError string
	// FormError says why the last attempt added nothing.
	FormError string
	// Off says why passkeys cannot be added from here ("" when they can);
	// OpenURL is where they can, if anywhere.
	Off, OpenURL string
	// Full says the account has as many passkeys as it may.
	Full string
}

// PasskeyCreateProps is the second step: the browser's ceremony.
type PasskeyCreateProps struct {
	Page
	Name string
	// Options are the ceremony's options (protocol.CredentialCreation),
	// printed as JSON for the script.
	Options any
	// Assets is the passkey script's URL.
	Assets string
}

// PasskeyRemoveProps is the confirm page of removing a passkey.
type PasskeyRemoveProps struct {
	Page
	Heading, Action, CancelURL string
	// EndLabel labels the ticked "also sign out its sessions" box; ""
	// when it opened no live session.
	EndLabel      string
	PasswordError string
}

// PasskeyRow is one passkey on the Security page.
type PasskeyRow struct {
	ID, Name string
	// Provider names who keeps it ("iCloud Keychain"), "" if unknown.
	Provider string
	// Kind is "Synced" or "This device only".
	Kind                string
	Created, CreatedISO string
	// LastUsed is "Last used 5 minutes ago" or "Never used to sign in".
	LastUsed, LastUsedISO string
	// Sessions are the live sessions it signed in; SessionsLabel heads
	// their list ("Signed in 2 sessions:").
	Sessions      []PasskeySession
	SessionsLabel string
	// Warning is the possible-clone warning, "" when there is none.
	Warning                string
	RenameURL, RenameLabel string
	// RenameValue is what the rename field holds (the name, or what was
	// posted); RenameError says why that name will not do, "" when the
	// form is not answering a post (its <details> is then closed).
	RenameValue, RenameError string
	RemoveURL, RemoveLabel   string
}

// PasskeySession is a live session a passkey signed in, as its card lists
// it: Label is the device's name if its owner gave it one, else its
// browser and place ("Chrome on macOS, London"); SignedInAt (exact, UTC),
// SignedInISO and SignedInAgo say when it signed in, for the sessions the
// label alone does not tell apart ("" for a name used once).
type PasskeySession struct {
	Label, URL                           string
	SignedInAt, SignedInISO, SignedInAgo string
}

// PasskeysSection is the Security page's passkeys.
type PasskeysSection struct {
	Rows []PasskeyRow
	// Off says why passkeys cannot be added from this page; OpenURL is
	// where they can.
	Off, OpenURL string
	// ForgetRPID and ForgetCredential name a passkey just removed, for
	// the script to tell the browser (signalUnknownCredential).
	ForgetRPID, ForgetCredential string
	// Script is the passkey script's URL.
	Script string
}

// PasskeySignIn is the sign-in page's passkey part.
type PasskeySignIn struct {
	// On: the button and the browser's autofill are offered.
	On bool
	// Off says why not (an IP address, another origin), OpenURL where.
	Off, OpenURL string
	Script       string
}
