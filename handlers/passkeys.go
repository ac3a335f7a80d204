package handlers

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"
	"github.com/labstack/echo/v4"

	"doorman/authenticators"
	"doorman/db"
	"doorman/device"
	"doorman/displayname"
	"doorman/mails"
	"doorman/paths"
	"doorman/views"
)

// Passkeys (WebAuthn) sign a person in without a password: the browser's
// authenticator (a phone, a laptop's secure chip, a password manager, a
// security key) signs a challenge with a key that never leaves it, for this
// site's name only, after verifying the person (PIN, fingerprint, face).
// That is two factors at once, so a passkey sign-in asks no second step.
//
// Every ceremony (adding one, signing in with one) is begun by one request
// and finished by another, possibly on another instance: its challenge is
// stored (db.PasskeyCeremony), bound to the browser that began it by a
// secret in passkeyCookie (only its SHA-256 is stored), and, when adding a
// passkey, to the session too; it is taken once, and only for
// passkeyCeremonyLifetime.

const (
	// passkeyCeremonyLifetime is how long a ceremony waits for the
	// browser's answer: the authenticator's own prompt times out sooner
	// (the library asks for 5 minutes).
	passkeyCeremonyLifetime = 5 * time.Minute
	// maxPasskeys is how many passkeys one account may have: more than
	// anyone's devices and password managers, few enough that the list
	// stays readable and a stolen session cannot fill the table.
	maxPasskeys = 20
	// maxPasskeyName is the longest name a passkey may have, in characters.
	maxPasskeyName = 60
	// passkeyCookie holds the secret that binds a ceremony to its browser.
	passkeyCookie cookie = "doorman_passkey"
)

// passkeySite is where passkeys work for a request: the relying party's
// id (a host name) and origin, or why they cannot work here.
type passkeySite struct {
	rpID, origin string
	// off says why passkeys cannot be used from this page ("" when they
	// can); openURL, when set, is where they can.
	off, openURL string
}

// passkeySite decides where passkeys work. With a public origin
// (-base-url), it is that origin's host and nothing else: a request that
// reached this server by another name is told to go there. Without one,
// it is the host the browser asked for (a developer's http://localhost).
// An IP address cannot be a relying party id, and plain http works only
// at localhost: in either case the page says so instead of offering a
// button that fails.
func (a *app) passkeySite(r *http.Request) passkeySite {
	scheme := "http"
	if a.isHTTPS(r) {
		scheme = "https"
	}
	here := scheme + "://" + r.Host
	origin := a.cfg.PublicOrigin
	if origin == "" {
		origin = here
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return passkeySite{off: "Passkeys can't be used here."}
	}
	host := u.Hostname()
	if ip, err := netip.ParseAddr(host); err == nil {
		s := passkeySite{off: "Passkeys need a name, not an IP address."}
		if ip.IsLoopback() || ip.IsUnspecified() {
			s.openURL = u.Scheme + "://" + net.JoinHostPort("localhost", u.Port())
			if u.Port() == "" {
				s.openURL = u.Scheme + "://localhost"
			}
			s.off = "Passkeys need a name, not an IP address: open " + s.openURL + "."
		}
		return s
	}
	localhost := host == "localhost" || strings.HasSuffix(host, ".localhost")
	if u.Scheme != "https" && !localhost {
		return passkeySite{off: "Passkeys need a secure (https) address."}
	}
	if here != origin {
		return passkeySite{off: "Passkeys work only at " + origin + ": open it there.", openURL: origin}
	}
	return passkeySite{rpID: host, origin: origin}
}

// webAuthn is the WebAuthn relying party of site: resident (discoverable)
// credentials and user verification required, so every passkey is one
// that names its account and is two factors on its own; no attestation
// (which authenticator it is comes from the AAGUID, for display only).
func (s passkeySite) webAuthn() (*webauthn.WebAuthn, error) {
	return webauthn.New(&webauthn.Config{
		RPID: s.rpID, RPDisplayName: "Doorman", RPOrigins: []string{s.origin},
		AttestationPreference: protocol.PreferNoAttestation,
		AuthenticatorSelection: protocol.AuthenticatorSelection{
			ResidentKey: protocol.ResidentKeyRequirementRequired, RequireResidentKey: protocol.ResidentKeyRequired(),
			UserVerification: protocol.VerificationRequired,
		},
	})
}

// passkeyUser is an account as the WebAuthn library sees it.
type passkeyUser struct {
	handle []byte
	email  string
	keys   []db.Passkey
}

func (u passkeyUser) WebAuthnID() []byte          { return u.handle }
func (u passkeyUser) WebAuthnName() string        { return u.email }
func (u passkeyUser) WebAuthnDisplayName() string { return u.email }
func (u passkeyUser) WebAuthnCredentials() []webauthn.Credential {
	out := make([]webauthn.Credential, len(u.keys))
	for i, p := range u.keys {
		transports := make([]protocol.AuthenticatorTransport, len(p.Transports))
		for j, t := range p.Transports {
			transports[j] = protocol.AuthenticatorTransport(t)
		}
		out[i] = webauthn.Credential{
			ID: p.CredentialID, PublicKey: p.PublicKey, AttestationType: p.AttestationType, Transport: transports,
			Flags: webauthn.CredentialFlags{UserPresent: true, UserVerified: p.UserVerified,
				BackupEligible: p.BackupEligible, BackupState: p.BackupState},
			Authenticator: webauthn.Authenticator{AAGUID: p.AAGUID, SignCount: p.SignCount},
		}
	}
	return out
}

// beginCeremony stores a ceremony of kind (with its library state sd) and
// gives this browser the secret that finishes it.
func (a *app) beginCeremony(c echo.Context, kind string, userID int64, sessionID, name string, sd *webauthn.SessionData) error {
	data, err := json.Marshal(sd)
	if err != nil {
		return err
	}
	secret := make([]byte, 32)
	rand.Read(secret) // never fails (it crashes the program instead)
	value := base64.RawURLEncoding.EncodeToString(secret)
	now := a.now()
	err = a.store.CreatePasskeyCeremony(c.Request().Context(), db.PasskeyCeremony{
		ID: ceremonyID(value), Kind: kind, UserID: userID, SessionID: sessionID, Name: name, Data: data,
		CreatedAt: now, ExpiresAt: now.Add(passkeyCeremonyLifetime),
	})
	if err != nil {
		return err
	}
	a.writeCookie(c, a.cookieName(c.Request(), passkeyCookie), value, int(passkeyCeremonyLifetime/time.Second))
	return nil
}

// ceremonyID is the stored id of the ceremony whose cookie holds value: a
// copy of the database names no cookie that would finish it.
func ceremonyID(value string) string {
	sum := sha256.Sum256([]byte(value))
	return hex.EncodeToString(sum[:])
}

// takeCeremony takes (once) this browser's ceremony of kind, begun by
// sessionID ("" before sign-in), and forgets the cookie. ok is false when
// there is none: never begun here, already finished, or expired.
func (a *app) takeCeremony(c echo.Context, kind, sessionID string) (db.PasskeyCeremony, webauthn.SessionData, bool, error) {
	var sd webauthn.SessionData
	name := a.cookieName(c.Request(), passkeyCookie)
	ck, err := c.Request().Cookie(name)
	if err != nil || ck.Value == "" {
		return db.PasskeyCeremony{}, sd, false, nil
	}
	a.writeCookie(c, name, "", -1)
	cer, err := a.store.TakePasskeyCeremony(c.Request().Context(), ceremonyID(ck.Value), kind, sessionID, a.now())
	if errors.Is(err, db.ErrNotFound) {
		return cer, sd, false, nil
	}
	if err != nil {
		return cer, sd, false, err
	}
	if err := json.Unmarshal(cer.Data, &sd); err != nil {
		return cer, sd, false, err
	}
	return cer, sd, true, nil
}

// Adding a passkey: the password (always, as for a token: a passkey
// outlives the session that adds it) and a name, then the browser's
// ceremony, then the passkey is stored and its owner mailed.

// passkeyNewForm is the first step of adding a passkey: its name and the
// password.
func (a *app) passkeyNewForm(c echo.Context) error {
	au := authOf(c)
	return a.renderPasskeyNew(c, http.StatusOK, views.PasskeyNewProps{Name: defaultPasskeyName(c.Request())}, au)
}

// defaultPasskeyName names a new passkey after the device adding it.
func defaultPasskeyName(r *http.Request) string {
	return device.Parse(truncate(r.UserAgent(), 512)).Label
}

func (a *app) renderPasskeyNew(c echo.Context, status int, p views.PasskeyNewProps, au *authInfo) error {
	site := a.passkeySite(c.Request())
	p.Page = a.page(c, "Add a passkey", "security")
	p.Off, p.OpenURL = site.off, site.openURL
	if p.Off == "" {
		n, err := a.passkeyCount(c, au.User.ID)
		if err != nil {
			return fmt.Errorf("add passkey: %w", err)
		}
		if n >= maxPasskeys {
			p.Full = passkeyLimitMessage()
		}
	}
	return a.render(c, status, views.PasskeyNewPage(p))
}

func (a *app) passkeyCount(c echo.Context, userID int64) (int, error) {
	list, err := a.store.ListPasskeys(c.Request().Context(), userID)
	return len(list), err
}

func passkeyLimitMessage() string {
	return fmt.Sprintf("This account has %d passkeys, the most it may have. Remove one you no longer use to add another.", maxPasskeys)
}

// parsePasskeyName reads a passkey's name from the form: "" and the
// problem when it will not do.
func parsePasskeyName(c echo.Context) (name, problem string) {
	raw := formValue(c, "name")
	name = displayname.Clean(raw)
	switch {
	case name == "" && strings.TrimSpace(raw) != "":
		return name, "Use visible characters: this name has only invisible or control characters."
	case name == "":
		return name, "Give the passkey a name."
	case utf8.RuneCountInString(name) > maxPasskeyName:
		return name, fmt.Sprintf("Use at most %d characters.", maxPasskeyName)
	}
	return name, ""
}

// passkeyBegin checks the name and the password, then begins the browser's
// ceremony: the next page holds its options and the button that asks the
// authenticator.
func (a *app) passkeyBegin(c echo.Context) error {
	au := authOf(c)
	site := a.passkeySite(c.Request())
	p := views.PasskeyNewProps{}
	p.Name, p.NameError = parsePasskeyName(c)
	if site.off != "" {
		return a.renderPasskeyNew(c, http.StatusConflict, p, au)
	}
	if p.NameError != "" {
		return a.renderPasskeyNew(c, http.StatusUnprocessableEntity, p, au)
	}
	if g := a.confirmPassword(c, au, "password"); !g.passed() {
		return g.refuse(func(problem *passwordProblem) error {
			p.PasswordError = problem.text
			return a.renderPasskeyNew(c, problem.status, p, au)
		})
	}
	ctx := c.Request().Context()
	keys, err := a.store.ListPasskeys(ctx, au.User.ID)
	if err != nil {
		return fmt.Errorf("add passkey: %w", err)
	}
	if len(keys) >= maxPasskeys {
		return a.renderPasskeyNew(c, http.StatusUnprocessableEntity, p, au)
	}
	handle, err := a.store.PasskeyUserHandle(ctx, au.User.ID, a.now())
	if err != nil {
		return fmt.Errorf("add passkey: %w", err)
	}
	wa, err := site.webAuthn()
	if err != nil {
		return fmt.Errorf("add passkey: %w", err)
	}
	user := passkeyUser{handle: handle, email: au.User.Email, keys: keys}
	// The account's passkeys are excluded: an authenticator that holds
	// one already says so instead of making a second.
	creation, sd, err := wa.BeginRegistration(user, webauthn.WithExclusions(webauthn.Credentials(user.WebAuthnCredentials()).CredentialDescriptors()))
	if err != nil {
		return fmt.Errorf("add passkey: %w", err)
	}
	if err := a.beginCeremony(c, db.CeremonyRegister, au.User.ID, au.Session.ID, p.Name, sd); err != nil {
		return fmt.Errorf("add passkey: %w", err)
	}
	return a.render(c, http.StatusOK, views.PasskeyCreatePage(views.PasskeyCreateProps{
		Page: a.page(c, "Add a passkey", "security"), Name: p.Name, Options: creation, Assets: a.passkeyAssets(),
	}))
}

// passkeyAdd finishes adding a passkey with the browser's answer.
func (a *app) passkeyAdd(c echo.Context) error {
	au := authOf(c)
	refuse := func(status int, message string) error {
		a.log.Info("passkey refused", "user", au.User.ID, "session", au.Session.ID, "reason", message)
		return a.renderPasskeyNew(c, status, views.PasskeyNewProps{Name: defaultPasskeyName(c.Request()), FormError: message}, au)
	}
	// No answer at all (a browser without JavaScript): the ceremony is
	// left for the script to finish.
	if formValue(c, "credential") == "" {
		return refuse(http.StatusBadRequest, "Adding a passkey needs JavaScript: turn it on for this site, then try again.")
	}
	cer, sd, ok, err := a.takeCeremony(c, db.CeremonyRegister, au.Session.ID)
	if err != nil {
		return fmt.Errorf("add passkey: %w", err)
	}
	if !ok {
		return refuse(http.StatusBadRequest, "That took too long, or it was begun in another browser. Nothing was added: try again.")
	}
	site := a.passkeySite(c.Request())
	if site.off != "" {
		return refuse(http.StatusConflict, site.off)
	}
	parsed, err := protocol.ParseCredentialCreationResponseBytes([]byte(formValue(c, "credential")))
	if err != nil {
		return refuse(http.StatusBadRequest, "Your browser's answer could not be read. Nothing was added: try again.")
	}
	wa, err := site.webAuthn()
	if err != nil {
		return fmt.Errorf("add passkey: %w", err)
	}
	ctx := c.Request().Context()
	handle, err := a.store.PasskeyUserHandle(ctx, au.User.ID, a.now())
	if err != nil {
		return fmt.Errorf("add passkey: %w", err)
	}
	cred, err := wa.CreateCredential(passkeyUser{handle: handle, email: au.User.Email}, sd, parsed)
	if err != nil {
		a.log.Info("passkey registration failed", "user", au.User.ID, "err", err)
		return refuse(http.StatusBadRequest, "Your passkey's answer did not check out (it must be made for this site, and verify it's you). Nothing was added.")
	}
	if !cred.Flags.UserVerified {
		return refuse(http.StatusBadRequest, "Your passkey did not verify it's you (a PIN, fingerprint or face). Nothing was added.")
	}
	now := a.now()
	transports := make([]string, len(cred.Transport))
	for i, t := range cred.Transport {
		transports[i] = string(t)
	}
	notice := a.securityNotice(c, au.User, paths.Security, func(to string, w mails.Where, pageURL string) db.Mail {
		return a.mails.PasskeyAdded(to, cer.Name, w, pageURL)
	})
	p, err := a.store.AddPasskey(a.acting(c), db.Passkey{
		UserID: au.User.ID, Name: cer.Name, CredentialID: cred.ID, PublicKey: cred.PublicKey, AAGUID: cred.Authenticator.AAGUID,
		AttestationType: cred.AttestationType, SignCount: cred.Authenticator.SignCount,
		BackupEligible: cred.Flags.BackupEligible, BackupState: cred.Flags.BackupState, UserVerified: cred.Flags.UserVerified,
		Transports: transports, CreatedAt: now, AddedBySession: au.Session.ID,
	}, maxPasskeys, au.User.Epoch, notice...)
	switch {
	case errors.Is(err, db.ErrConflict):
		return refuse(http.StatusConflict, "This passkey is already added.")
	case errors.Is(err, db.ErrPasskeyLimit):
		return refuse(http.StatusUnprocessableEntity, passkeyLimitMessage())
	case errors.Is(err, db.ErrSignInsReset):
		return errSignInsReset()
	case err != nil:
		return fmt.Errorf("add passkey: %w", err)
	}
	a.kickMail(notice)
	a.log.Info("passkey added", "user", au.User.ID, "session", au.Session.ID, "passkey", p.ID, "synced", p.BackupState)
	a.addFlash(c, flashSuccess, "Passkey “"+p.Name+"” added. You can sign in with it instead of your password.")
	return c.Redirect(http.StatusSeeOther, paths.Security+"#passkeys-heading")
}

// passkeyAssets is the script of the passkey pages.
func (a *app) passkeyAssets() string { return a.assets.Passkeys }

// Signing in with a passkey: the sign-in page asks for a ceremony's
// options (passkeyLoginOptions) as it loads, for the browser's autofill
// (conditional mediation) and the "Sign in with a passkey" button; the
// browser's answer is posted as a form (passkeyLogin).

// passkeyLoginOptions begins a sign-in ceremony for this browser and
// answers its options as JSON. Discoverable: no account is named, the
// passkey the person picks says whose it is.
func (a *app) passkeyLoginOptions(c echo.Context) error {
	site := a.passkeySite(c.Request())
	if site.off != "" {
		return c.JSON(http.StatusConflict, map[string]string{"error": site.off})
	}
	// Each begin writes a row: an address may begin only so many a
	// minute (a page load is one).
	if wait := a.passkeyBeginLimit.take(a.clientKey(c), a.now()); wait > 0 {
		t := throttled{wait}
		t.setHeader(c)
		return c.JSON(http.StatusTooManyRequests, map[string]string{"error": t.message()})
	}
	wa, err := site.webAuthn()
	if err != nil {
		return fmt.Errorf("passkey sign-in: %w", err)
	}
	assertion, sd, err := wa.BeginDiscoverableLogin(webauthn.WithUserVerification(protocol.VerificationRequired))
	if err != nil {
		return fmt.Errorf("passkey sign-in: %w", err)
	}
	if err := a.beginCeremony(c, db.CeremonyLogin, 0, "", "", sd); err != nil {
		return fmt.Errorf("passkey sign-in: %w", err)
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusOK, assertion)
}

// errPasskeyUnknown is a passkey this site does not know (removed, or
// never added), or one whose account does not match it.
var errPasskeyUnknown = errors.New("unknown passkey")

// passkeyLogin finishes a passkey sign-in: the ceremony this browser began
// (taken once), the signature checked against the stored passkey, with
// user verification, for this site's origin and name; then a session,
// recording the passkey, its counter and its use. The address's sign-in
// throttle counts every attempt, given back when it succeeds, as for a
// password.
func (a *app) passkeyLogin(c echo.Context) error {
	next := safeNext(formValue(c, "next"))
	fail := func(status int, reason, message string) error {
		a.log.Info("passkey sign-in failed", "reason", reason, "ip", c.RealIP())
		return a.authPage(c, status, false, credentialsForm{Next: next}, message)
	}
	client, at := a.clientKey(c), a.now()
	if wait := a.ipLimit.take(client, at); wait > 0 {
		return a.throttledAuthPage(c, false, credentialsForm{Next: next}, wait)
	}
	right := func() { a.ipLimit.giveBack(client, at) }
	if formValue(c, "credential") == "" {
		right() // not a try: a browser without JavaScript
		return a.authPage(c, http.StatusBadRequest, false, credentialsForm{Next: next}, "Signing in with a passkey needs JavaScript; your password works without it.")
	}
	_, sd, ok, err := a.takeCeremony(c, db.CeremonyLogin, "")
	if err != nil {
		right()
		return fmt.Errorf("passkey sign-in: %w", err)
	}
	if !ok {
		return fail(http.StatusBadRequest, "no ceremony", "That passkey sign-in took too long, or was begun in another browser. Try again.")
	}
	site := a.passkeySite(c.Request())
	if site.off != "" {
		return fail(http.StatusConflict, "passkeys off", site.off)
	}
	parsed, err := protocol.ParseCredentialRequestResponseBytes([]byte(formValue(c, "credential")))
	if err != nil {
		return fail(http.StatusBadRequest, "unreadable answer", "Your browser's answer could not be read. Try again.")
	}
	wa, err := site.webAuthn()
	if err != nil {
		right()
		return fmt.Errorf("passkey sign-in: %w", err)
	}
	ctx := c.Request().Context()
	var user db.User
	var key db.Passkey
	// The passkey named by the answer, and the account named by its user
	// handle: they must be one and the same, or it is refused.
	lookup := func(rawID, userHandle []byte) (webauthn.User, error) {
		p, err := a.store.PasskeyByCredentialID(ctx, rawID)
		if errors.Is(err, db.ErrNotFound) {
			return nil, errPasskeyUnknown
		}
		if err != nil {
			return nil, err
		}
		u, err := a.store.UserByPasskeyHandle(ctx, userHandle)
		if errors.Is(err, db.ErrNotFound) || (err == nil && u.ID != p.UserID) {
			return nil, errPasskeyUnknown
		}
		if err != nil {
			return nil, err
		}
		user, key = u, p
		return passkeyUser{handle: userHandle, email: u.Email, keys: []db.Passkey{p}}, nil
	}
	_, cred, err := wa.ValidatePasskeyLogin(lookup, sd, parsed)
	if errors.Is(err, errPasskeyUnknown) {
		return fail(http.StatusUnauthorized, "unknown passkey", "This passkey isn't one of this site's: it may have been removed. Sign in with your password.")
	}
	if err != nil || !cred.Flags.UserVerified {
		a.log.Info("passkey sign-in refused", "err", err)
		return fail(http.StatusUnauthorized, "signature refused", "That passkey sign-in did not check out (it must be made for this site, and verify it's you). Try again.")
	}
	if user.Disabled() {
		a.log.Info("sign-in refused", "reason", "user disabled", "user", user.ID)
		return a.authPage(c, http.StatusForbidden, false, credentialsForm{Next: next}, "This account has been disabled. Contact the people who run this site.")
	}
	right()
	use := db.PasskeyUse{PasskeyID: key.ID, SignCount: cred.Authenticator.SignCount, BackupState: cred.Flags.BackupState, At: a.now()}
	cloned := false
	evicted, err := a.sessions.StartWithPasskey(c, user, use, func(cl bool) { cloned = cl })
	switch {
	case errors.Is(err, db.ErrNotFound):
		return fail(http.StatusUnauthorized, "passkey removed meanwhile", "This passkey isn't one of this site's: it may have been removed. Sign in with your password.")
	case errors.Is(err, db.ErrSignInsReset):
		a.log.Info("sign-in refused", "reason", "sign-ins reset while in flight", "user", user.ID)
		return a.authPage(c, http.StatusConflict, false, credentialsForm{Next: next}, "Your account's sessions were just reset (for example, the password was changed). Please sign in again.")
	case err != nil:
		return err
	}
	a.signedIn(c, evicted)
	if cloned {
		a.log.Warn("passkey counter went back", "user", user.ID, "passkey", key.ID)
		a.addFlash(c, flashNotice, "Your passkey “"+key.Name+"” answered with a signature counter that did not go forward: it may have been copied. If you didn't copy it, remove it on the Security page.")
	}
	a.setDeviceCookie(c, user)
	return c.Redirect(http.StatusSeeOther, afterSignIn(next))
}

// The Security page's passkeys: rename, remove.

// passkeyParam is the :id of a passkey URL, refused early when malformed.
func passkeyParam(c echo.Context) (int64, error) {
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	if err != nil || id <= 0 {
		return 0, errNoSuchPasskey()
	}
	return id, nil
}

func errNoSuchPasskey() error {
	return echo.NewHTTPError(http.StatusNotFound, "There is no such passkey. It may already have been removed.")
}

// userPasskey is one of the user's passkeys (another user's: not found).
func (a *app) userPasskey(c echo.Context, userID, id int64) (db.Passkey, error) {
	list, err := a.store.ListPasskeys(c.Request().Context(), userID)
	if err != nil {
		return db.Passkey{}, err
	}
	for _, p := range list {
		if p.ID == id {
			return p, nil
		}
	}
	return db.Passkey{}, db.ErrNotFound
}

// passkeyRename renames one of the user's passkeys.
func (a *app) passkeyRename(c echo.Context) error {
	id, err := passkeyParam(c)
	if err != nil {
		return err
	}
	au := authOf(c)
	name, problem := parsePasskeyName(c)
	if problem != "" {
		// The Security page as it was, the error beside the field and
		// nothing stored; another user's passkey is still a 404.
		if _, err := a.userPasskey(c, au.User.ID, id); errors.Is(err, db.ErrNotFound) {
			return errNoSuchPasskey()
		} else if err != nil {
			return fmt.Errorf("rename passkey: %w", err)
		}
		return a.securityPage(c, http.StatusUnprocessableEntity, &passkeyRenameProblem{id: id, value: formValue(c, "name"), text: problem})
	}
	err = a.store.RenamePasskey(c.Request().Context(), au.User.ID, id, name)
	if errors.Is(err, db.ErrNotFound) {
		return errNoSuchPasskey()
	}
	if err != nil {
		return fmt.Errorf("rename passkey: %w", err)
	}
	a.addFlash(c, flashSuccess, "Passkey renamed “"+name+"”.")
	return c.Redirect(http.StatusSeeOther, paths.Security+"#passkeys-heading")
}

// passkeyRemove removes one of the user's passkeys: GET is the confirm
// page, POST removes it, with the password (always: a passkey is a way in,
// as the password is), ending the sessions it opened when the box is
// ticked (it is by default). The next page asks the browser to forget it
// (signalUnknownCredential).
func (a *app) passkeyRemove(c echo.Context) error {
	id, err := passkeyParam(c)
	if err != nil {
		return err
	}
	au, now := authOf(c), a.now()
	p, err := a.userPasskey(c, au.User.ID, id)
	if errors.Is(err, db.ErrNotFound) {
		return errNoSuchPasskey()
	}
	if err != nil {
		return fmt.Errorf("remove passkey: %w", err)
	}
	opened, err := a.passkeySessionCount(c, au.User.ID, id, now)
	if err != nil {
		return fmt.Errorf("remove passkey: %w", err)
	}
	confirm := func(problem *passwordProblem) error {
		props := views.PasskeyRemoveProps{
			Page: a.page(c, "Remove "+p.Name, "security"), Heading: "Remove passkey “" + p.Name + "”?",
			Action: paths.PasskeyRemove(id), EndLabel: passkeyEndLabel(opened), CancelURL: paths.Security,
		}
		status := http.StatusOK
		if problem != nil {
			props.PasswordError, status = problem.text, problem.status
		}
		return a.render(c, status, views.PasskeyRemovePage(props))
	}
	if c.Request().Method == http.MethodGet {
		return confirm(nil)
	}
	if g := a.confirmPassword(c, au, "password"); !g.passed() {
		return g.refuse(confirm)
	}
	endSessions := formValue(c, "end_sessions") == "on"
	removed, ended, err := a.store.RemovePasskey(a.acting(c), au.User.ID, id, endSessions, au.Session.ID, now)
	if errors.Is(err, db.ErrNotFound) {
		return errNoSuchPasskey()
	}
	if err != nil {
		return fmt.Errorf("remove passkey: %w", err)
	}
	a.log.Info("passkey removed", "user", au.User.ID, "session", au.Session.ID, "passkey", id, "ended", len(ended))
	for _, e := range ended {
		a.log.Info("session revoked", "session", e.ID, "user", e.UserID, "reason", db.ReasonPasskeyRemoved, "by", au.Session.ID)
	}
	text := "Passkey “" + removed.Name + "” removed."
	if len(ended) > 0 {
		text += " " + plural(len(ended), "session") + " it signed in " + was(len(ended)) + " signed out."
	}
	if endedSelf(ended, au.Session.ID) {
		a.sessions.ClearCookie(c)
		a.addFlash(c, flashSuccess, text)
		return c.Redirect(http.StatusSeeOther, paths.Login)
	}
	a.addFlash(c, flashSuccess, text+" Your browser may still offer it: it no longer signs in.")
	// The Security page tells the browser the credential is gone
	// (signalUnknownCredential), so its passkey manager can drop it.
	return c.Redirect(http.StatusSeeOther, paths.Security+"?forget="+base64.RawURLEncoding.EncodeToString(removed.CredentialID)+"#passkeys-heading")
}

func was(n int) string {
	if n == 1 {
		return "was"
	}
	return "were"
}

// endedSelf reports whether this browser's session is among ended.
func endedSelf(ended []db.Session, self string) bool {
	for _, e := range ended {
		if e.ID == self {
			return true
		}
	}
	return false
}

// passkeySessionCount counts the live sessions passkey id opened.
func (a *app) passkeySessionCount(c echo.Context, userID, id int64, now time.Time) (int, error) {
	list, err := a.store.ListSessionSummaries(c.Request().Context(), userID, now)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, s := range list {
		if s.PasskeyID == id {
			n++
		}
	}
	return n, nil
}

// passkeyEndLabel is the ticked box's label on the remove page, "" when
// the passkey opened no live session.
func passkeyEndLabel(n int) string {
	if n == 0 {
		return ""
	}
	if n == 1 {
		return "Also sign out the session it signed in"
	}
	return "Also sign out the " + strconv.Itoa(n) + " sessions it signed in"
}

// passkeyLabel is how a session row or its details say a passkey opened
// it: "Signed in with passkey “MacBook” (iCloud Keychain, synced)".
func passkeyLabel(p db.Passkey) string {
	about := passkeyKind(p)
	if provider := passkeyProvider(p); provider != "" {
		about = provider + ", " + about
	}
	return "Signed in with passkey “" + p.Name + "” (" + about + ")"
}

// passkeyKind is "synced" for a passkey copied to its owner's other
// devices (the BS flag), "this device only" otherwise.
func passkeyKind(p db.Passkey) string {
	if p.BackupState {
		return "synced"
	}
	return "this device only"
}

// passkeyRenameProblem is a rename the Security page answers: the
// passkey, what was posted, and why it will not do.
type passkeyRenameProblem struct {
	id          int64
	value, text string
}

// passkeyRows are the Security page's passkey rows, with the live sessions
// each opened, and rename's problem beside its field (nil: none).
func (a *app) passkeyRows(keys []db.Passkey, sessions []db.SessionSummary, currentID string, now time.Time, rename *passkeyRenameProblem) []views.PasskeyRow {
	rows := make([]views.PasskeyRow, 0, len(keys))
	for _, p := range keys {
		r := views.PasskeyRow{
			ID: strconv.FormatInt(p.ID, 10), Name: p.Name, Provider: passkeyProvider(p),
			Kind:    "This device only",
			Created: exactTime(p.CreatedAt), CreatedISO: isoTime(p.CreatedAt),
			LastUsed:  "Never used to sign in",
			RenameURL: paths.PasskeyRename(p.ID), RemoveURL: paths.PasskeyRemove(p.ID),
			RenameLabel: "New name for " + p.Name, RemoveLabel: "Remove passkey " + p.Name,
			RenameValue: p.Name,
		}
		if rename != nil && rename.id == p.ID {
			r.RenameValue, r.RenameError = rename.value, rename.text
		}
		if p.BackupState {
			r.Kind = "Synced"
		}
		if !p.LastUsedAt.IsZero() {
			r.LastUsed, r.LastUsedISO = "Last used "+relTime(now, p.LastUsedAt), isoTime(p.LastUsedAt)
		}
		if p.CloneWarnings > 0 {
			r.Warning = fmt.Sprintf("Possible copy: its signature counter went backwards %s, last %s. If you didn't copy this passkey, remove it.",
				plural(p.CloneWarnings, "time"), relTime(now, p.CloneWarnedAt))
		}
		r.Sessions = passkeySessions(p.ID, sessions, currentID, now)
		if n := len(r.Sessions); n > 0 {
			r.SessionsLabel = "Signed in " + plural(n, "session") + ":"
		}
		rows = append(rows, r)
	}
	return rows
}

// passkeySessions are the live sessions (of sessions) passkey id signed
// in, as its card lists them, each told apart as the session rows do: by
// the name its owner gave the device, else by browser and place and when
// it signed in (look-alikes differ by that alone). A name used by two of
// them gets its sign-in time too.
func passkeySessions(id int64, sessions []db.SessionSummary, currentID string, now time.Time) []views.PasskeySession {
	var out []views.PasskeySession
	var named []bool
	labels := map[string]int{}
	for _, s := range sessions {
		if s.PasskeyID != id {
			continue
		}
		label := deviceTitle(s.DeviceName, s.DeviceLabel+", "+s.LocationShort)
		if s.ID == currentID {
			label += " (this device)"
		}
		labels[label]++
		named = append(named, s.DeviceName != "")
		out = append(out, views.PasskeySession{Label: label, URL: paths.Session(s.ID),
			SignedInAt: exactTime(s.CreatedAt), SignedInISO: isoTime(s.CreatedAt), SignedInAgo: relTime(now, s.CreatedAt)})
	}
	for i, s := range out {
		if named[i] && labels[s.Label] == 1 {
			out[i].SignedInAt, out[i].SignedInISO, out[i].SignedInAgo = "", "", ""
		}
	}
	return out
}

// passkeyProvider names who keeps the passkey, from its AAGUID
// (package authenticators): "" when the authenticator gives none (many
// do, iCloud Keychain among them) or one not in the table. It is what the
// authenticator claims, shown for recognition only.
func passkeyProvider(p db.Passkey) string {
	name, _ := authenticators.Name(p.AAGUID)
	return name
}

// securityPasskeys is the Security page's passkeys card and the passkeys
// by id (for the session rows).
type securityPasskeys struct {
	view views.PasskeysSection
	keys map[int64]db.Passkey
}

// passkeysSection is the Security page's passkeys card of list, the
// user's passkeys (the overview's: no read here), whose sessions are
// sessions, with rename's problem (nil: none).
func (a *app) passkeysSection(c echo.Context, au *authInfo, list []db.Passkey, sessions []db.SessionSummary, now time.Time, rename *passkeyRenameProblem) securityPasskeys {
	site := a.passkeySite(c.Request())
	out := securityPasskeys{keys: make(map[int64]db.Passkey, len(list)), view: views.PasskeysSection{
		Rows: a.passkeyRows(list, sessions, au.Session.ID, now, rename), Off: site.off, OpenURL: site.openURL, Script: a.assets.Passkeys,
	}}
	for _, p := range list {
		out.keys[p.ID] = p
	}
	// A passkey just removed (its id, base64url, in the query): the page
	// asks the browser to forget it, where the browser can.
	if forget := c.QueryParam("forget"); forget != "" && site.off == "" && len(forget) <= 1400 {
		if _, err := base64.RawURLEncoding.DecodeString(forget); err == nil {
			out.view.ForgetCredential, out.view.ForgetRPID = forget, site.rpID
		}
	}
	return out
}

// passkeysByID are the user's passkeys by id.
func (a *app) passkeysByID(c echo.Context, userID int64) (map[int64]db.Passkey, error) {
	list, err := a.store.ListPasskeys(c.Request().Context(), userID)
	if err != nil {
		return nil, err
	}
	out := make(map[int64]db.Passkey, len(list))
	for _, p := range list {
		out[p.ID] = p
	}
	return out, nil
}

// byPasskey makes row (of session s) say which passkey signed it in, or
// that it was one since removed.
func byPasskey(row *views.SessionRow, s db.SessionSummary, keys map[int64]db.Passkey) {
	if s.PasskeyID == 0 {
		return
	}
	if p, ok := keys[s.PasskeyID]; ok {
		row.Method = passkeyLabel(p)
		return
	}
	row.Method = "Signed in with a passkey since removed"
}
