package rp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"time"

	"golang.org/x/oauth2"
)

const (
	// maxLogoutBody bounds a back-channel request: a logout token is a few
	// hundred bytes; nobody gets to make the RP read megabytes.
	maxLogoutBody = 64 << 10
	// iatSkew is how far in the future a logout token's iat may be (clocks
	// differ a little between machines, not by more).
	iatSkew = 5 * time.Minute
	// backchannelEnded is what the browser reads when its session was ended
	// by a logout token.
	backchannelEnded = "Doorman signed you out of this app (back-channel logout)."
)

// logout is RP-initiated logout: the RP session ends here and now, then the
// browser goes to the provider's end_session_endpoint, which ends the
// provider session and comes back to the post-logout redirect URI.
func (r *RP) logout(w http.ResponseWriter, req *http.Request) {
	var s Session
	var had bool
	if c, err := req.Cookie(sessionCookie); err == nil {
		s, had = r.sessions.end(c.Value)
	}
	r.setCookie(w, sessionCookie, "", "/", -1)
	if !had {
		http.Redirect(w, req, "/", http.StatusSeeOther)
		return
	}
	r.log.Info("rp: signed out", "sub", s.Sub, "sid", s.SID)
	r.events.add(Event{Kind: EventSignedOut, Sub: s.Sub, SID: s.SID})
	d, err := r.provider(req.Context())
	if err != nil || d.endSession == "" || s.IDToken == "" {
		if err != nil {
			r.log.Warn("rp: sign-out: provider unreachable; signed out of this app only", "err", err)
		}
		http.Redirect(w, req, "/", http.StatusSeeOther)
		return
	}
	u, err := url.Parse(d.endSession)
	if err != nil {
		r.log.Warn("rp: sign-out: bad end_session_endpoint", "err", err)
		http.Redirect(w, req, "/", http.StatusSeeOther)
		return
	}
	q := u.Query()
	// id_token_hint names the session to end (and proves this app saw it);
	// client_id lets the provider check post_logout_redirect_uri even when
	// the hint has expired.
	q.Set("id_token_hint", s.IDToken)
	q.Set("client_id", r.cfg.ClientID)
	q.Set("post_logout_redirect_uri", r.postLogout)
	u.RawQuery = q.Encode()
	http.Redirect(w, req, u.String(), http.StatusSeeOther)
}

// refresh tries the refresh grant with the session's refresh token and shows
// what the provider answered (a new token, or an error such as invalid_grant
// once the provider session behind it has ended).
func (r *RP) refresh(w http.ResponseWriter, req *http.Request) {
	s, value, ok := r.currentSession(req)
	if !ok || s.RefreshToken == "" {
		r.problem(w, req, http.StatusBadRequest, "There is no refresh token to use: sign in first.")
		return
	}
	d, err := r.provider(req.Context())
	if err != nil {
		r.log.Warn("rp: refresh: provider unreachable", "err", err)
		r.problem(w, req, http.StatusBadGateway, "The sign-in service cannot be reached. Please try again.")
		return
	}
	ctx, cancel := context.WithTimeout(r.ctx(req.Context()), providerTimeout)
	defer cancel()
	// An empty access token makes the token source go straight to the token
	// endpoint with the refresh token.
	tok, err := d.oauth2.TokenSource(ctx, &oauth2.Token{RefreshToken: s.RefreshToken}).Token()
	if err != nil {
		var re *oauth2.RetrieveError
		if !errors.As(err, &re) || re.ErrorCode == "" {
			r.log.Warn("rp: refresh failed", "sid", s.SID, "err", err)
			r.events.add(Event{Kind: EventRefreshFailed, Sub: s.Sub, SID: s.SID, Reason: "no answer from the provider"})
			r.problem(w, req, http.StatusBadGateway, "The refresh did not get an answer from Doorman. Please try again.")
			return
		}
		code := re.ErrorCode
		if !oauthErrorCode.MatchString(code) {
			code = "unknown_error"
		}
		r.log.Info("rp: refresh refused", "sid", s.SID, "error", code)
		r.events.add(Event{Kind: EventRefreshFailed, Sub: s.Sub, SID: s.SID, Reason: code})
		p := pageProps{Title: "Refresh refused", Notice: "Doorman refused the refresh token: " + code + "."}
		if code == "invalid_grant" {
			// The grant is dead (its provider session ended, or the person
			// disconnected this app): nothing this app holds is worth
			// keeping, so it signs the browser out too.
			r.sessions.end(value)
			r.setCookie(w, sessionCookie, "", "/", -1)
			p.Notice += " You are signed out of this app."
		} else {
			p.SignedIn, p.Email, p.Sub, p.SID, p.HasRefresh = true, s.Email, s.Sub, s.SID, true
		}
		r.render(w, http.StatusOK, p)
		return
	}
	// A refreshed ID token must name the same person (OIDC Core §12.2).
	idToken := s.IDToken
	if raw, _ := tok.Extra("id_token").(string); raw != "" {
		idt, err := d.verifier.Verify(ctx, raw)
		if err != nil || idt.Subject != s.Sub {
			r.log.Warn("rp: refresh: refreshed ID token refused", "sid", s.SID, "err", err)
			r.events.add(Event{Kind: EventRefreshFailed, Sub: s.Sub, SID: s.SID, Reason: "refreshed id token did not verify"})
			r.problem(w, req, http.StatusBadGateway, "Doorman's refreshed ID token did not verify.")
			return
		}
		idToken = raw
	}
	// Refresh tokens rotate: keep the new one (oauth2 keeps the old one when
	// the provider sends none).
	r.sessions.update(value, func(p *Session) { p.RefreshToken, p.IDToken = tok.RefreshToken, idToken })
	r.events.add(Event{Kind: EventRefreshed, Sub: s.Sub, SID: s.SID})
	notice := "Doorman accepted the refresh token and issued a new access token"
	if !tok.Expiry.IsZero() {
		notice += ", valid until " + tok.Expiry.UTC().Format("15:04:05") + " UTC"
	}
	r.render(w, http.StatusOK, pageProps{
		Title: "Refreshed", Notice: notice + ".",
		SignedIn: true, Email: s.Email, Sub: s.Sub, SID: s.SID, HasRefresh: tok.RefreshToken != "",
	})
}

// backchannelLogout receives a logout token from the provider (Back-Channel
// Logout 1.0 §2.5), validates it as §2.6 requires and ends the RP sessions it
// names (§2.7). 200 when it was accepted (also when no session matched: the
// sessions are gone either way), 400 with a JSON error when it was refused,
// in which case nothing ended.
func (r *RP) backchannelLogout(w http.ResponseWriter, req *http.Request) {
	// §2.8: the response must not be cached, whatever it says.
	w.Header().Set("Cache-Control", "no-store")
	req.Body = http.MaxBytesReader(w, req.Body, maxLogoutBody)
	raw := req.PostFormValue("logout_token")
	if raw == "" {
		r.refuseLogout(w, http.StatusBadRequest, "invalid_request", "missing logout_token")
		return
	}
	d, err := r.provider(req.Context())
	if err != nil {
		// Not the token's fault: 503 so that the provider tries again later.
		r.log.Warn("rp: back-channel logout: provider unreachable", "err", err)
		r.refuseLogout(w, http.StatusServiceUnavailable, "temporarily_unavailable", "cannot reach the provider to fetch its keys")
		return
	}
	// go-oidc checks: signature with the provider's published keys and
	// algorithms (never alg none), iss, aud, exp, the backchannel-logout
	// event's presence, no nonce (so an ID token cannot pass as a logout
	// token), jti present, sub or sid present.
	lt, err := d.verifier.VerifyLogout(req.Context(), raw)
	if err != nil {
		r.refuseLogout(w, http.StatusBadRequest, "invalid_request", err.Error())
		return
	}
	// What go-oidc leaves to us: iat must be there (§2.4 requires it) and not
	// in the future, and the event's value must be a JSON object (§2.4).
	var claims struct {
		IAT    *json.Number               `json:"iat"`
		Events map[string]json.RawMessage `json:"events"`
	}
	if err := lt.Claims(&claims); err != nil {
		r.refuseLogout(w, http.StatusBadRequest, "invalid_request", "unreadable claims")
		return
	}
	if claims.IAT == nil {
		r.refuseLogout(w, http.StatusBadRequest, "invalid_request", "logout token has no iat")
		return
	}
	if lt.IssuedAt.After(r.now().Add(iatSkew)) {
		r.refuseLogout(w, http.StatusBadRequest, "invalid_request", "logout token issued in the future")
		return
	}
	if ev := bytes.TrimSpace(claims.Events["http://schemas.openid.net/event/backchannel-logout"]); len(ev) == 0 || ev[0] != '{' {
		r.refuseLogout(w, http.StatusBadRequest, "invalid_request", "backchannel-logout event is not a JSON object")
		return
	}
	// Last, so that a token refused above does not use up its jti.
	if !r.jtis.add(lt.TokenID, lt.Expiry) {
		r.refuseLogout(w, http.StatusBadRequest, "invalid_request", "logout token already received (jti "+lt.TokenID+")")
		return
	}
	// §2.7: with a sid, the sessions of that provider session (of that sub,
	// when the token names one too); with only a sub, every session of the
	// person.
	n := r.sessions.endMatching(lt.Subject, lt.SessionID, backchannelEnded)
	r.log.Info("rp: back-channel logout", "sub", lt.Subject, "sid", lt.SessionID, "jti", lt.TokenID, "ended", n)
	r.events.add(Event{Kind: EventLogoutVerified, Sub: lt.Subject, SID: lt.SessionID, JTI: lt.TokenID, Ended: n})
	w.WriteHeader(http.StatusOK)
}

// refuseLogout answers a back-channel request it did not act on with a JSON
// error (§2.8) and records why.
func (r *RP) refuseLogout(w http.ResponseWriter, status int, code, description string) {
	r.log.Warn("rp: back-channel logout refused", "reason", description)
	r.events.add(Event{Kind: EventLogoutRefused, Reason: description})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": description})
}
