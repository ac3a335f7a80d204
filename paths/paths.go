// Package paths names every URL path of Doorman's pages in one place, so the
// router, the handlers and the views never spell one twice.
package paths

import (
	"net/url"
	"strconv"
)

// The pages.
const (
	Home         = "/"
	Healthz      = "/healthz"
	Readyz       = "/readyz"
	Signup       = "/signup"
	Login        = "/login"
	Logout       = "/logout"
	Settings     = "/settings"
	Security     = Settings + "/security"
	Sessions     = Security + "/sessions"
	RevokeOthers = Sessions + "/revoke-others"
	RevokeAll    = Sessions + "/revoke-all"
	// SignInsKnown is "It was me" on the Security page's banner of new
	// sign-ins (POST).
	SignInsKnown = Sessions + "/known"
	Password     = Security + "/password"
	// Events is the signed-in browser's stream of session events.
	Events = Security + "/events"
	// TwoFactor is the authenticator-app page; its forms post to the
	// paths below it. LoginTwoFactor is a sign-in's second step.
	TwoFactor              = Security + "/two-factor"
	TwoFactorSetup         = TwoFactor + "/setup"
	TwoFactorEnable        = TwoFactor + "/enable"
	TwoFactorDisable       = TwoFactor + "/disable"
	TwoFactorRecoveryCodes = TwoFactor + "/recovery-codes"
	TwoFactorQR            = TwoFactor + "/qr.png"
	LoginTwoFactor         = Login + "/two-factor"
	Email                  = Settings + "/account/email"
	// EmailPendingCancel cancels the pending change of address (POST,
	// from the Security page).
	EmailPendingCancel = Email + "/cancel"
	// ApprovalCancelPattern withdraws an approval of a device code that no
	// app has redeemed yet (POST, from the Security page).
	ApprovalCancelPattern = Security + "/approvals/:code/cancel"
	// AppDisconnectPattern disconnects an app the person signed in to
	// with Doorman (POST; GET is its confirm page), from the Security page.
	AppDisconnectPattern = Security + "/apps/:client/disconnect"
	// Activity is the account's security history.
	Activity = Security + "/activity"
	// ActivityCSV and ActivityJSON download the person's own history
	// (the page's filter applied), as CSV and as JSON.
	ActivityCSV  = Activity + "/export.csv"
	ActivityJSON = Activity + "/export.json"
	// Passkeys: PasskeyNew asks a new passkey's name and the password
	// (POST: begins the browser's ceremony), PasskeyAdd takes the
	// browser's answer; a passkey is renamed and removed (GET: its
	// confirm page) under its id.
	Passkeys             = Security + "/passkeys"
	PasskeyNew           = Passkeys + "/new"
	PasskeyAdd           = Passkeys + "/add"
	PasskeyRenamePattern = Passkeys + "/:id/rename"
	PasskeyRemovePattern = Passkeys + "/:id/remove"
	// LoginPasskeyOptions begins a passkey sign-in (POST, JSON: the
	// browser's options); LoginPasskey takes the browser's answer.
	LoginPasskey        = Login + "/passkey"
	LoginPasskeyOptions = LoginPasskey + "/options"
	// Tokens lists and creates personal access tokens.
	Tokens             = Security + "/tokens"
	TokenRevokePattern = Tokens + "/:id/revoke"
	// API is the JSON API's root (bearer tokens only); OAuth the device
	// flow's endpoints.
	API     = "/api"
	APIv1   = API + "/v1"
	APIMe   = APIv1 + "/me"
	APIList = APIv1 + "/sessions"
	APIOne  = APIv1 + "/sessions/:id"
	OpenAPI = APIv1 + "/openapi.json"
	OAuth   = "/oauth"
	// Device is where a person enters a command-line tool's code.
	Device        = "/device"
	DeviceApprove = Device + "/approve"
	DeviceDeny    = Device + "/deny"
	// The device flow's endpoints, and the metadata naming them.
	OAuthDeviceAuthorization = OAuth + "/device_authorization"
	OAuthToken               = OAuth + "/token"
	OAuthMetadata            = "/.well-known/oauth-authorization-server"
	DeleteAccount            = Settings + "/account/delete"
	// SessionPattern and SessionRevokePattern are the router's patterns
	// of Session and SessionRevoke.
	SessionPattern       = Sessions + "/:id"
	SessionRevokePattern = SessionPattern + "/revoke"
	// SessionNotYouPattern is the router's pattern of SessionNotYou.
	SessionNotYouPattern = SessionPattern + "/not-you"
	// SessionNamePattern is the router's pattern of SessionName.
	SessionNamePattern = SessionPattern + "/name"
	// SessionsSignOut signs out a group of look-alike sessions (GET: its
	// confirm page), named by their ids.
	SessionsSignOut = Sessions + "/sign-out"

	// Email. PasswordForgot asks for a reset link; the links in mails
	// open the pages after it (each takes its token as ?token= and posts
	// it back in a hidden field).
	PasswordForgot = "/password/forgot"
	PasswordReset  = "/password/reset"
	// LoginLink asks for a sign-in link (POST); LoginLinkOpen is where
	// the link leads.
	LoginLink     = Login + "/link"
	LoginLinkOpen = LoginLink + "/open"
	// EmailVerify confirms the account's address; EmailConfirm a new
	// address; EmailUndo undoes a change (the link sent to the old one).
	EmailVerify  = "/email/verify"
	EmailConfirm = "/email/confirm"
	EmailUndo    = "/email/undo"
	// EmailCancel is the link sent to the current address when a change
	// is asked for: it cancels the change.
	EmailCancel = "/email/cancel"
	// SignInKnown and SignInNotMe are a new sign-in alert's "This was
	// me" and "This wasn't me".
	SignInKnown = "/sign-in/known"
	SignInNotMe = "/sign-in/not-me"
	// AccountVerify sends the verification mail again; AccountAlerts
	// turns new sign-in alerts on or off.
	AccountVerify = Settings + "/account/verify"
	AccountAlerts = Settings + "/account/alerts"
	// OIDC is the OpenID Connect provider's root: its endpoints, which
	// programs call (apps' servers; the authorization endpoint a browser
	// is sent to, whose answer is a redirect), and OIDCContinue, the
	// browser's step of an app's sign-in (sign in, re-authenticate,
	// consent). OIDCDiscovery is where relying parties find the rest.
	OIDC           = "/oidc"
	OIDCAuthorize  = OIDC + "/authorize"
	OIDCToken      = OIDC + "/token"
	OIDCUserinfo   = OIDC + "/userinfo"
	OIDCKeys       = OIDC + "/keys"
	OIDCRevoke     = OIDC + "/revoke"
	OIDCIntrospect = OIDC + "/introspect"
	OIDCEndSession = OIDC + "/end_session"
	OIDCContinue   = OIDC + "/continue"
	OIDCDiscovery  = "/.well-known/openid-configuration"
	// OIDCConsent and OIDCConsentCancel take the consent page's answer.
	OIDCConsent       = OIDC + "/consent"
	OIDCConsentCancel = OIDCConsent + "/cancel"
	// OIDCEndSessionConfirm takes the answer of the page that asks
	// whether an app may sign this browser out of Doorman.
	OIDCEndSessionConfirm = OIDCEndSession + "/confirm"
	// DevMail is the development mail viewer (-dev-mail, loopback only).
	DevMail        = "/dev/mail"
	DevMailPattern = DevMail + "/:name"
)

// ApprovalCancel is where the approval of device code userCode is withdrawn.
func ApprovalCancel(userCode string) string {
	return Security + "/approvals/" + userCode + "/cancel"
}

// AppDisconnect is where the trash icon of the app with client_id clientID
// (one that signs in with Doorman) posts (GET: its confirm page).
func AppDisconnect(clientID string) string {
	return Security + "/apps/" + url.PathEscape(clientID) + "/disconnect"
}

// SessionNotYou is the "Not you?" page of session id: end it, and take the
// account back, in one form.
func SessionNotYou(id string) string { return Session(id) + "/not-you" }

// DevMailMessage is the development viewer's page of one stored mail.
func DevMailMessage(name string) string { return DevMail + "/" + url.PathEscape(name) }

// Session is the details page of the session with public id id.
func Session(id string) string { return Sessions + "/" + id }

// SessionName is where the form naming session id's device posts.
func SessionName(id string) string { return Session(id) + "/name" }

// SessionRevoke is where the X button of session id posts.
func SessionRevoke(id string) string { return Session(id) + "/revoke" }

// PasskeyRename is where passkey id's rename form posts.
func PasskeyRename(id int64) string { return Passkeys + "/" + strconv.FormatInt(id, 10) + "/rename" }

// PasskeyRemove is passkey id's remove page (POST removes it).
func PasskeyRemove(id int64) string { return Passkeys + "/" + strconv.FormatInt(id, 10) + "/remove" }

// TokenRevoke is where the trash icon of token id posts (GET: its confirm
// page).
func TokenRevoke(id string) string { return Tokens + "/" + id + "/revoke" }

// OIDCContinueFor is the browser's step of authorization request id.
func OIDCContinueFor(id string) string { return OIDCContinue + "?id=" + url.QueryEscape(id) }

// LoginNext is the sign-in page that returns to next (a path on this site)
// afterwards.
func LoginNext(next string) string { return Login + "?next=" + url.QueryEscape(next) }

// SecurityAllSessions is the Security page listing every session, not only
// the most recent (a GET: it changes nothing).
const SecurityAllSessions = Security + "?sessions=all"
