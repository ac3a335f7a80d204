// Package paths names every URL path of Doorman's pages in one place, so the
// router, the handlers and the views never spell one twice.
package paths

import "net/url"

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
	// Activity is the account's security history.
	Activity = Security + "/activity"
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
)

// Session is the details page of the session with public id id.
func Session(id string) string { return Sessions + "/" + id }

// SessionRevoke is where the X button of session id posts.
func SessionRevoke(id string) string { return Session(id) + "/revoke" }

// TokenRevoke is where the trash icon of token id posts (GET: its confirm
// page).
func TokenRevoke(id string) string { return Tokens + "/" + id + "/revoke" }

// LoginNext is the sign-in page that returns to next (a path on this site)
// afterwards.
func LoginNext(next string) string { return Login + "?next=" + url.QueryEscape(next) }
