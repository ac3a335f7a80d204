// Package apitoken makes and reads API bearer tokens:
// "doorman_pat_<public id>_<secret>" for personal access tokens and
// "doorman_app_<public id>_<secret>" for connected apps. The fixed prefix
// lets secret scanners (GitHub's, gitleaks) recognise a leaked one; the id
// finds the row; only a SHA-256 hash of the secret is stored, compared in
// constant time, exactly as for session cookies (package sessiontoken).
package apitoken

import (
	"strings"

	"doorman/sessiontoken"
)

// The prefixes, one per kind.
const (
	PersonalPrefix = "doorman_pat_"
	AppPrefix      = "doorman_app_"
)

// Token is a freshly made token.
type Token struct {
	ID    string // public id
	Hash  []byte // SHA-256 of the secret, for the database
	Value string // what the holder keeps and sends
}

// New makes a token with prefix (PersonalPrefix or AppPrefix).
func New(prefix string) Token {
	t := sessiontoken.New()
	id, secret, _ := strings.Cut(t.CookieValue, ".")
	return Token{ID: id, Hash: t.Hash, Value: prefix + id + "_" + secret}
}

// Parse splits a token into its prefix, public id and secret, checking the
// shape of each before anything touches the database.
func Parse(value string) (prefix, id string, secret []byte, ok bool) {
	for _, p := range []string{PersonalPrefix, AppPrefix} {
		rest, found := strings.CutPrefix(value, p)
		if !found {
			continue
		}
		idPart, secretPart, found := strings.Cut(rest, "_")
		if !found {
			return "", "", nil, false
		}
		id, secret, ok := sessiontoken.Parse(idPart + "." + secretPart)
		if !ok {
			return "", "", nil, false
		}
		return p, id, secret, true
	}
	return "", "", nil, false
}
