package views

// The pages of the email flows: asking for a link, what an emailed link
// opens, and the development mail viewer.

// ForgotProps is the "Forgot your password?" page.
type ForgotProps struct {
	Page
	Email      string
	EmailError string
	FormError  string // throttled
}

// MessageProps is a page that only tells something (an address verified, a
// sign-in remembered, a link that can no longer be used) and offers one way on.
type MessageProps struct {
	Page
	Heading   string
	Message   string
	LinkURL   string
	LinkLabel string
	// Problem marks a link that could not be used (styled as an error).
	Problem bool
}

// NewPasswordProps is the one form that takes an account back: a password
// reset, "This wasn't me", undoing an email change, and "Not you?".
type NewPasswordProps struct {
	Page
	Heading string
	Intro   string
	Action  string // the form's action
	Token   string // the emailed link's token, posted back hidden ("" for "Not you?")
	Email   string // the account, for the password manager (autocomplete=username)
	// About is the sign-in the form is about (device, place, address, time).
	About      []DetailRow
	AboutLabel string
	// EndOthers: offer "Sign out of every other session" (checked when
	// EndOthersOn); EndTokens likewise for apps and tokens.
	EndOthers, EndOthersOn bool
	EndOthersLabel         string
	EndTokens, EndTokensOn bool
	EndTokensLabel         string
	// NeedCurrent asks for the current password ("Not you?": the one
	// thing a stolen session must not be able to replace).
	NeedCurrent  bool
	CurrentError string
	// NeedCode asks for a code (two-factor is on).
	NeedCode  bool
	CodeError string
	NewError  string
	FormError string
	Button    string
	CancelURL string
	// Passkeys (issue 24): PasskeysNote says what a new password does not
	// change; PasskeysGoing are removed whatever is ticked (added from the
	// disowned session); Passkeys are the account's others, each with an
	// unticked "Also remove" box (posted as remove_passkey=ID).
	PasskeysNote  string
	PasskeysGoing []string
	Passkeys      []PasskeyChoice
}

// PasskeyChoice is a passkey a recovery form offers to remove too.
type PasskeyChoice struct {
	ID      string
	Name    string
	Detail  string // e.g. "Synced, added 3 March 2026"
	Checked bool
}

// SignInLinkProps is an emailed sign-in link opened where it must ask first:
// another browser than the one that asked for it, or an account with
// two-factor on.
type SignInLinkProps struct {
	Page
	Token        string
	Email        string
	Requested    []DetailRow // where and when the link was asked for
	OtherBrowser bool
	NeedCode     bool
	CodeError    string
}

// LinkActionProps is the page an emailed link that acts opens.
type LinkActionProps struct {
	Page
	Heading string
	Message []string    // paragraphs
	About   []DetailRow // what the link is about, if anything
	Action  string      // where the button posts
	Token   string
	Button  string
}

// EmailConfirmProps confirms a new address for the account.
type EmailConfirmProps struct {
	Page
	Token    string
	NewEmail string
	OldEmail string
}

// DevMailRow is one stored mail in the development viewer.
type DevMailRow struct {
	URL, To, Subject, Date string
}

// DevMailListProps is the development mail viewer.
type DevMailListProps struct {
	Page
	Dir   string
	Mails []DevMailRow
}

// DevMailProps is one mail in the development viewer.
type DevMailProps struct {
	Page
	Subject, From, To, Date string
	Text                    string
	Links                   []string
}
