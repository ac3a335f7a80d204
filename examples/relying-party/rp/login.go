package rp

import (
	"context"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"regexp"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

const (
	// sessionCookie names the RP session (a random value; the store keeps its hash).
	sessionCookie = "rp_session"
	// loginCookie carries one sign-in attempt's state, nonce and PKCE verifier
	// from /login to /callback.
	loginCookie = "rp_login"
	// loginLifetime is how long a sign-in attempt may take at the provider
	// (typing a password, a second factor, an emailed link). Short, because
	// the cookie is what makes the callback acceptable.
	loginLifetime = 10 * time.Minute
	// providerTimeout bounds one round trip to the provider from a request.
	providerTimeout = 15 * time.Second
)

// loginAttempt is what /login remembers for /callback, in the login cookie.
type loginAttempt struct {
	// State ties the callback to this browser: an attacker's code, sent to
	// someone else's callback, comes with a state their cookie does not have.
	State string `json:"state"`
	// Nonce ties the ID token to this attempt: a token minted for another
	// sign-in (replayed or injected) carries another nonce.
	Nonce string `json:"nonce"`
	// Verifier is the PKCE code verifier: a stolen code is useless without it.
	Verifier string `json:"verifier"`
}

// setCookie sets an HttpOnly SameSite=Lax cookie. Lax, not Strict: the
// provider's redirect back to /callback is a top-level navigation from the
// provider's site, and it must carry the login cookie.
func (r *RP) setCookie(w http.ResponseWriter, name, value, path string, maxAge int) {
	http.SetCookie(w, &http.Cookie{
		Name:     name,
		Value:    value,
		Path:     path,
		MaxAge:   maxAge,
		HttpOnly: true,
		Secure:   r.secureCookie,
		SameSite: http.SameSiteLaxMode,
	})
}

// currentSession returns the browser's live session and its cookie value.
func (r *RP) currentSession(req *http.Request) (Session, string, bool) {
	c, err := req.Cookie(sessionCookie)
	if err != nil || c.Value == "" {
		return Session{}, "", false
	}
	s, ok, _ := r.sessions.get(c.Value)
	return s, c.Value, ok
}

// home shows who is signed in, or why nobody is.
func (r *RP) home(w http.ResponseWriter, req *http.Request) {
	p := pageProps{Title: "Not signed in"}
	if c, err := req.Cookie(sessionCookie); err == nil && c.Value != "" {
		s, ok, why := r.sessions.get(c.Value)
		if ok {
			p = pageProps{Title: "Signed in", SignedIn: true, Email: s.Email, Sub: s.Sub, SID: s.SID, HasRefresh: s.RefreshToken != ""}
		} else {
			// Ended (by the provider) or unknown: say why once, then forget it.
			p.Notice = why
			r.sessions.end(c.Value)
			r.setCookie(w, sessionCookie, "", "/", -1)
		}
	}
	r.render(w, http.StatusOK, p)
}

// login starts the authorization code flow: a fresh state, nonce and PKCE
// verifier in a short-lived cookie, then off to the provider.
func (r *RP) login(w http.ResponseWriter, req *http.Request) {
	d, err := r.provider(req.Context())
	if err != nil {
		r.log.Warn("rp: sign-in: provider unreachable", "err", err)
		r.problem(w, req, http.StatusBadGateway, "The sign-in service at "+r.cfg.Issuer+" cannot be reached. Is Doorman running?")
		return
	}
	a := loginAttempt{State: randomString(32), Nonce: randomString(32), Verifier: oauth2.GenerateVerifier()}
	raw, _ := json.Marshal(a)
	r.setCookie(w, loginCookie, base64.RawURLEncoding.EncodeToString(raw), "/callback", int(loginLifetime/time.Second))
	// PKCE S256 always, also for a confidential client: it protects the code
	// even where the client secret does not (a leaked secret, a code injected
	// into this browser's callback).
	u := d.oauth2.AuthCodeURL(a.State, oidc.Nonce(a.Nonce), oauth2.S256ChallengeOption(a.Verifier))
	http.Redirect(w, req, u, http.StatusFound)
}

// oauthErrorCode matches an OAuth error code worth printing (RFC 6749 §5.2
// limits them to printable ASCII; these are the ones anyone uses).
var oauthErrorCode = regexp.MustCompile(`^[a-z_]{1,64}$`)

// callback finishes the flow: it checks the state and the issuer, exchanges
// the code, verifies the ID token and starts the RP's own session.
func (r *RP) callback(w http.ResponseWriter, req *http.Request) {
	q := req.URL.Query()
	refuse := func(status int, msg, reason string, err error) {
		r.log.Warn("rp: sign-in refused", "reason", reason, "err", err)
		r.events.add(Event{Kind: EventSignInFailed, Reason: reason})
		r.problem(w, req, status, msg)
	}
	// The attempt is used up whatever happens next.
	r.setCookie(w, loginCookie, "", "/callback", -1)
	a, ok := readLoginCookie(req)
	if !ok {
		refuse(http.StatusBadRequest, "This sign-in expired or was started in another browser. Please sign in again.", "no sign-in attempt in this browser", nil)
		return
	}
	if subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(a.State)) != 1 {
		refuse(http.StatusBadRequest, "This sign-in does not belong to this browser. Please sign in again.", "state mismatch", nil)
		return
	}
	d, err := r.provider(req.Context())
	if err != nil {
		refuse(http.StatusBadGateway, "The sign-in service cannot be reached. Please try again.", "provider unreachable", err)
		return
	}
	// RFC 9207: the response names who sent it, so a response from another
	// provider (a mix-up attack) is refused. A provider that advertises the
	// parameter must always send it.
	if iss, present := q["iss"]; present {
		if len(iss) != 1 || iss[0] != r.cfg.Issuer {
			refuse(http.StatusBadRequest, "This sign-in response came from another provider. Please sign in again.", "iss parameter does not name the issuer", nil)
			return
		}
	} else if d.issParameter {
		refuse(http.StatusBadRequest, "This sign-in response does not say which provider sent it. Please sign in again.", "iss parameter missing", nil)
		return
	}
	if code := q.Get("error"); code != "" {
		if !oauthErrorCode.MatchString(code) {
			code = "an unknown error"
		}
		refuse(http.StatusBadRequest, "Doorman did not sign you in ("+code+").", "provider answered "+code, nil)
		return
	}
	ctx, cancel := context.WithTimeout(r.ctx(req.Context()), providerTimeout)
	defer cancel()
	tok, err := d.oauth2.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(a.Verifier))
	if err != nil {
		msg, reason := "Doorman did not accept this sign-in. Please sign in again.", "code exchange failed"
		if re := (*oauth2.RetrieveError)(nil); errors.As(err, &re) && oauthErrorCode.MatchString(re.ErrorCode) {
			msg, reason = "Doorman did not accept this sign-in ("+re.ErrorCode+"). Please sign in again.", "code exchange: "+re.ErrorCode
		}
		refuse(http.StatusBadGateway, msg, reason, err)
		return
	}
	rawID, _ := tok.Extra("id_token").(string)
	if rawID == "" {
		refuse(http.StatusBadGateway, "Doorman sent no ID token. Please sign in again.", "no id_token in the token response", nil)
		return
	}
	// Signature, iss, aud, exp: go-oidc's verifier. The nonce: ours.
	idt, err := d.verifier.Verify(ctx, rawID)
	if err != nil {
		refuse(http.StatusBadGateway, "Doorman's ID token did not verify. Please sign in again.", "id token did not verify", err)
		return
	}
	if idt.Subject == "" {
		refuse(http.StatusBadGateway, "Doorman's ID token names nobody. Please sign in again.", "id token without sub", nil)
		return
	}
	if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(a.Nonce)) != 1 {
		refuse(http.StatusBadRequest, "This ID token belongs to another sign-in. Please sign in again.", "nonce mismatch", nil)
		return
	}
	// at_hash is optional in the code flow; when present it must match.
	if idt.AccessTokenHash != "" {
		if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
			refuse(http.StatusBadGateway, "Doorman's tokens do not match. Please sign in again.", "at_hash mismatch", err)
			return
		}
	}
	var claims struct {
		Email string   `json:"email"`
		SID   string   `json:"sid"`
		AMR   []string `json:"amr"`
	}
	if err := idt.Claims(&claims); err != nil {
		refuse(http.StatusBadGateway, "Doorman's ID token could not be read. Please sign in again.", "id token claims", err)
		return
	}
	// A new sign-in gets a new session id (no fixation); the one this browser
	// had, if any, ends.
	if c, err := req.Cookie(sessionCookie); err == nil {
		r.sessions.end(c.Value)
	}
	value := r.sessions.start(Session{
		Sub:          idt.Subject,
		SID:          claims.SID,
		Email:        claims.Email,
		AMR:          claims.AMR,
		IDToken:      rawID,
		RefreshToken: tok.RefreshToken,
	})
	// A session cookie (no Max-Age): the server record decides how long it lives.
	r.setCookie(w, sessionCookie, value, "/", 0)
	r.log.Info("rp: signed in", "sub", idt.Subject, "sid", claims.SID)
	r.events.add(Event{Kind: EventSignedIn, Sub: idt.Subject, SID: claims.SID})
	// 303 to a clean URL: the code does not stay in the address bar or history.
	http.Redirect(w, req, "/", http.StatusSeeOther)
}

// readLoginCookie decodes the login cookie.
func readLoginCookie(req *http.Request) (loginAttempt, bool) {
	c, err := req.Cookie(loginCookie)
	if err != nil {
		return loginAttempt{}, false
	}
	raw, err := base64.RawURLEncoding.DecodeString(c.Value)
	if err != nil {
		return loginAttempt{}, false
	}
	var a loginAttempt
	if err := json.Unmarshal(raw, &a); err != nil || a.State == "" || a.Nonce == "" || a.Verifier == "" {
		return loginAttempt{}, false
	}
	return a, true
}
