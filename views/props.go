// Package views holds Doorman's templ components and the view models they
// print. Props are ready to show: strings and booleans, no formatting logic.
package views

import "doorman/paths"

// Flash kinds.
const (
	FlashSuccess = "success"
	FlashNotice  = "notice"
)

// Flash is a one-time message shown at the top of the next page.
type Flash struct {
	Kind string
	Text string
}

// Page is what the layout needs on every page.
type Page struct {
	Title     string
	UserEmail string // empty when signed out
	IsDemo    bool   // the signed-in user is the demo account
	CSRF      string
	Flashes   []Flash
	Nav       string // "account" or "security": the settings tab to mark current
	Assets    Assets
}

// Assets are the cache-busting URLs of the files every page links.
type Assets struct {
	CSS, JS, Icon string
	// Passkeys is the script of the pages that use passkeys.
	Passkeys string
}

// SignedIn reports whether the page is shown to a signed-in user.
func (p Page) SignedIn() bool { return p.UserEmail != "" }

// AuthFormProps is the sign-in or sign-up page.
type AuthFormProps struct {
	Page
	Signup        bool
	Email         string
	Next          string
	EmailError    string
	PasswordError string
	FormError     string // shown above the form: "Incorrect email or password"
	DemoEmail     string // set when the server runs with -demo
	DemoPassword  string
	// MailOn offers "Forgot your password?" and "Email me a sign-in link".
	MailOn bool
	// ContinueTo is the name of the app the sign-in continues to (an
	// OpenID Connect sign-in sent the browser here); "" otherwise.
	ContinueTo string
	// Passkey is the sign-in page's passkey button (and autofill).
	Passkey PasskeySignIn
}

// Action is the form's target.
func (p AuthFormProps) Action() string {
	if p.Signup {
		return paths.Signup
	}
	return paths.Login
}

// EmailAutocomplete tells password managers what the email field is.
func (p AuthFormProps) EmailAutocomplete() string {
	if p.Signup {
		return "email"
	}
	if p.Passkey.On {
		// The browser offers the site's passkeys in the field's
		// autofill (conditional mediation).
		return "username webauthn"
	}
	return "username"
}

// PasswordAutocomplete tells password managers whether to suggest a new one.
func (p AuthFormProps) PasswordAutocomplete() string {
	if p.Signup {
		return "new-password"
	}
	return "current-password"
}

// EmailDescribedBy links the email field to the message that explains it, so
// a screen reader reads the error with the field.
func (p AuthFormProps) EmailDescribedBy() string {
	switch {
	case p.EmailError != "":
		return "email-error"
	case p.FormError != "":
		return "form-error"
	}
	return ""
}

// PasswordDescribedBy links the password field to its error or hint.
func (p AuthFormProps) PasswordDescribedBy() string {
	switch {
	case p.PasswordError != "":
		return "password-error"
	case p.FormError != "":
		return "form-error"
	case p.Signup:
		return "password-hint"
	}
	return ""
}

// SettingsProps is the settings home.
type SettingsProps struct {
	Page
	Email        string
	MemberSince  string
	SessionCount string // "3 signed-in sessions"
	// EmailVerified: an emailed link proved the address; MailOff: this
	// server sends no mail (nothing to verify or alert with).
	EmailVerified bool
	MailOff       bool
	// AlertsOn: new sign-in alerts are mailed.
	AlertsOn bool
}

// SessionRow is one session in the list, ready to print.
type SessionRow struct {
	ID            string
	Device        string // "Chrome on Windows"
	DeviceKind    string // desktop | phone | tablet
	Location      string // "Berlin, Germany"
	LastActive    string // "5 minutes ago" or "Active now"
	LastActiveISO string // for <time datetime>
	LastActiveAt  string // exact, "22 Nov 2026, 11:32 UTC"
	SignedInAgo   string // "5 minutes ago"
	SignedInISO   string
	SignedInAt    string // exact, as LastActiveAt: the row prints it (a title is out of reach on touch)
	Current       bool
	DetailsURL    string
	RevokeURL     string
	RevokeLabel   string // accessible name of the X button: "Sign out Chrome on Windows, Berlin"
	// Method says how it signed in, when that is worth showing in a list
	// (an emailed link, a second factor); "" for a plain password.
	Method      string
	NotYouURL   string // "Not you?": end it and take the account back
	NotYouLabel string // its accessible name: "Not you? Chrome on Windows, Berlin"
}

// SecurityProps is Settings → Security.
type SecurityProps struct {
	Page
	// Passkeys is the passkeys card.
	Passkeys    PasskeysSection
	Current     SessionRow
	Others      []SessionRow
	OthersCount string // "2 other sessions"
	// OthersMessage is what "Sign out all other sessions" asks about: the
	// sessions named (the first few), and what stays.
	OthersMessage string
	NeedPassword  bool // outside the sudo window: confirmations ask for the password
	NewSignIns    []SessionRow
	TwoFactorOn   bool
	// The rest of the inventory: connected apps and access tokens.
	Apps, Tokens []TokenRow
	// EverywhereMessage is what "Sign out everywhere" ends, counted.
	EverywhereMessage string
	// AlsoTokens labels the "also disconnect apps and tokens" box of "Log
	// out all other sessions"; empty when there are none.
	AlsoTokens string
	// Activity is the latest few entries of the history.
	Activity []EventRow
	// What was asked for and can still act for the account once
	// completed: a change of address waiting for its link, device codes
	// approved that no app has redeemed yet. Each can be cancelled.
	EmailChanges []EmailChangeRow
	Approvals    []ApprovalRow
	// SignInApps are the apps the person signed in to with Doorman
	// (OpenID Connect), listed under Connected apps.
	SignInApps []SignInAppRow
	// Map shows the sessions' places above the list (no places: no map).
	Map SignInMap
	// Others lists the most recent few other sessions, or all of them
	// (OthersCount counts all). MoreLabel and MoreURL link to every
	// session ("Show all 61 sessions") when some are not listed, or back
	// to the short list; empty when the list is short.
	MoreLabel, MoreURL string
}

// SignInAppRow is an app the person signed in to with Doorman, as the
// Security page lists it.
type SignInAppRow struct {
	ClientID, Name string
	// Gets says what it gets, in plain words ("Your email address").
	Gets []string
	// LastUsedLabel is "Last used" (or "Connected" when only its first
	// sign-in's time is known), LastUsed "5 minutes ago", LastUsedISO and
	// LastUsedAt the same time in RFC 3339 and exact.
	LastUsedLabel, LastUsed, LastUsedISO, LastUsedAt string
	// Sessions are the live sessions that signed in to it.
	Sessions []AppSessionLink
	// The trash icon (a GET form to the confirm page) and its dialog.
	DisconnectURL, DisconnectLabel string
	DialogID, DialogHeading        string
	DialogMessage                  string // what disconnecting does
}

// AppSessionLink names a session that signed in to an app, linking to its
// details.
type AppSessionLink struct {
	Label, URL string // "Chrome on Windows, Berlin", or "this device"
	Sep        string // "," after every one but the last
}

// SessionAppRow is an app a session signed in to, on its details page.
type SessionAppRow struct {
	Name                              string
	LastUsed, LastUsedISO, LastUsedAt string
}

// EmailChangeRow is a change of address waiting for the link sent to the
// new address.
type EmailChangeRow struct {
	NewEmail           string
	Asked, AskedISO    string // "5 minutes ago"
	Where              string // "Chrome on Windows, Berlin, Germany"
	Expires, ExpiresAt string // "in 23 hours", RFC 3339
}

// ApprovalRow is a device code approved that no app has redeemed yet.
type ApprovalRow struct {
	AppName               string
	Approved, ApprovedISO string
	Where                 string // where the app asked from
	CancelURL             string
	CancelLabel           string // "Withdraw the approval of Doorman CLI"
}

// DetailRow is one label/value pair on the session details page.
type DetailRow struct {
	Label    string
	Value    string
	ISO      string // when set, the value is a time
	Mono     bool   // print in a monospace font (IP, user agent)
	Subtitle string
}

// SessionDetailsProps is one session's details page.
type SessionDetailsProps struct {
	Page
	Row     SessionRow
	Details []DetailRow
	// Ended: the session is over (reached from the history); no button.
	Ended bool
	// Apps are the apps this session signed in to with Doorman.
	Apps []SessionAppRow
}

// ConfirmProps is a confirm page for a destructive action, the no-JavaScript
// twin of a confirm dialog.
type ConfirmProps struct {
	Page
	Heading   string
	Message   string
	Sessions  []SessionRow // the sessions that will end
	Action    string       // form action
	Button    string       // "Sign out"
	CancelURL string
	Nothing   bool // nothing to confirm: show Message and a way back only
	// NeedPassword puts a password field in the form (outside the sudo
	// window); PasswordError is shown next to it.
	NeedPassword  bool
	PasswordError string
	// AlsoTokens, when set, is the label of an unchecked checkbox
	// (also_tokens) that extends the action to apps and tokens.
	AlsoTokens string
}

// ErrorProps is an error page.
type ErrorProps struct {
	Page
	Status  int
	Heading string
	Message string
}

// PasswordProps is the change-password page.
type PasswordProps struct {
	Page
	Others        []SessionRow // what "Sign out of all other sessions" would end
	OthersCount   string       // "2 sessions"
	SignOutOthers bool
	// TokensCount is "1 connected app and 2 access tokens"; empty: none.
	TokensCount      string
	DisconnectTokens bool
	CurrentError     string
	NewError         string
}

// EmailProps is the change-email page.
type EmailProps struct {
	Page
	CurrentEmail  string
	Email         string
	EmailError    string
	NeedPassword  bool
	PasswordError string
}

// TwoFactorProps is the authenticator-app page, in one of three states:
// off (a password form to start), setting up (the secret and a code form),
// on (recovery codes left, forms to regenerate them or turn it off).
type TwoFactorProps struct {
	Page
	On, SettingUp bool
	// Setting up: the QR image's URL, the secret in groups, the URI.
	QRURL, SecretGrouped, URI string
	OthersCount               string // "2 other sessions"; empty when none
	RecoveryLeft              string // "7 of 10 recovery codes left"
	// Unavailable says two-factor cannot be turned on on this server (no
	// secret key configured), and why.
	Unavailable string
	// VerifyFirst: the account's address (Email) is not verified, so
	// two-factor cannot be turned on yet; the page offers to send the
	// verification link again. VerifyError says a refused setup why.
	VerifyFirst   bool
	Email         string
	VerifyError   string
	PasswordError string
	CodeError     string
	// Form says which form the errors belong to: "setup", "enable",
	// "disable" or "recovery".
	Form string
}

// RecoveryCodesProps shows freshly made recovery codes, once.
type RecoveryCodesProps struct {
	Page
	Codes []string
	// Enabled: two-factor was just turned on (rather than codes replaced).
	Enabled   bool
	SignedOut string // "2 other sessions were signed out."; may be empty
}

// LoginTwoFactorProps is a sign-in's second step.
type LoginTwoFactorProps struct {
	Page
	Email     string
	Next      string // where to go after signing in (a safe path), or ""
	CodeError string
}

// TokenRow is one access token (or connected app) in a list.
type TokenRow struct {
	ID, Name, Scopes        string
	Created, CreatedISO     string
	Expires, ExpiresISO     string
	LastUsed, LastUsedISO   string // LastUsed "Never used" when never
	LastUsedWhere           string
	RevokeURL, RevokeLabel  string
	DialogID, DialogHeading string
}

// TokensProps is the personal access tokens page.
type TokensProps struct {
	Page
	// NewToken is the token just made, shown this once.
	NewToken, NewTokenName string
	Tokens                 []TokenRow
	NeedPassword           bool // revoking asks for the password (outside the sudo window)
	// The create form, and its errors.
	Name, NameError       string
	ExpiresInDays         string // "7", "30", "90" or "365"
	ExpiresError          string
	ScopeRead, ScopeWrite bool
	ScopeError            string
	PasswordError         string
}

// DeviceProps is /device: enter the code a command-line tool shows.
type DeviceProps struct {
	Page
	Code, CodeError string
}

// DeviceApproveProps asks whether to connect the app that showed the code.
type DeviceApproveProps struct {
	Page
	AppName, Code              string
	Access                     []string // what it may do, in words
	Where                      string   // where the request came from
	Elsewhere                  string   // a warning when that is not where this browser is; "" when it is
	RequestedAgo, RequestedISO string
	PasswordError              string // the password is always asked: approving makes a credential
}

// ConsentProps asks whether an app that signs in through Doorman may
// have what it asks for.
type ConsentProps struct {
	Page
	AppName string
	Email   string   // the account signed in ("Signed in as …")
	Access  []string // what the app will get, one item per scope, in words
	// More: the person allowed the app some scopes before and it asks for
	// more; Access then names only the new ones.
	More bool
	// RequestID and SessionID go back in the form: the request it is
	// about, and the session that was asked (the answer counts only from
	// that session).
	RequestID, SessionID string
	// ContinueURL is the step the app's sign-in comes back to after
	// "Not you? Use another account" has signed this browser out.
	ContinueURL string
}

// Heading is the page's question.
func (p ConsentProps) Heading() string {
	if p.More {
		return "Allow " + p.AppName + " more?"
	}
	return "Sign in to " + p.AppName + "?"
}

// EventRow is one entry of the security history.
type EventRow struct {
	Kind          string // data-event
	Title, Detail string
	At, AtISO     string
	Ago           string
	URL           string // the session's details page, when there is one
}

// ActivityProps is the security history page.
type ActivityProps struct {
	Page
	Events   []EventRow
	OlderURL string // the next page, "" at the end
	First    bool   // the newest page
	Keep     string // "90 days"
	Filter   ActivityFilter
}

// ActivityFilter is the history page's filter form (a GET form) and the
// exports of what it shows.
type ActivityFilter struct {
	Kinds              []KindOption // the kinds to choose from, "All activity" first
	From, To           string       // the dates as entered (YYYY-MM-DD)
	Min, Max           string       // the dates the history can hold
	FromError, ToError string
	Active             bool   // a filter applies (the page offers to clear it)
	Summary            string // what the filter shows, in words ("Two-factor, from 1 Dec 2026")
	CSVURL, JSONURL    string // the exports, with the filter applied
}

// KindOption is one choice of the history's kind filter.
type KindOption struct {
	Value, Label string
	Selected     bool
}

// EndSessionProps asks whether an app may sign this browser out of
// Doorman (RP-initiated logout that could not be trusted as it came).
type EndSessionProps struct {
	Page
	AppName string // the registered app that asks; "" when none is named
	Email   string // the account signed in ("You're signed in as …")
	// SessionID, ClientID, PostLogoutRedirectURI and State go back in the
	// form: the session that was asked (the answer counts only from it),
	// and the app's request, which is checked again.
	SessionID, ClientID, PostLogoutRedirectURI, State string
	// StayURL is where "Stay signed in" leads: Doorman's own page.
	StayURL string
}

// Asker names who asks, for the page's sentence.
func (p EndSessionProps) Asker() string {
	if p.AppName == "" {
		return "An app"
	}
	return p.AppName
}
