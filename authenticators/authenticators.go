// Package authenticators names the passkey provider behind an AAGUID ("iCloud Keychain (Managed)",
// "Google Password Manager", "1Password", "Windows Hello"...), so a list of passkeys can say where
// each one lives.
//
// The names come from the community list passkeydeveloper/passkey-authenticator-aaguids
// (https://github.com/passkeydeveloper/passkey-authenticator-aaguids, aaguid.json, icons left out);
// see NOTICE.md beside aaguids.json for the commit and how to refresh it. The list is for display
// only: an AAGUID is whatever the authenticator claims, so never base a security decision on it.
//
// Many authenticators (Apple's iCloud Keychain among them, and Chromium's virtual authenticator)
// send the all-zero AAGUID: that is never known, and the caller should fall back to a generic word
// such as "Passkey".
package authenticators

import (
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"strings"
)

//go:embed aaguids.json
var aaguidsJSON []byte

// names maps the lower-case, hyphenated AAGUID to its provider name.
var names = func() map[string]string {
	m := map[string]string{}
	if err := json.Unmarshal(aaguidsJSON, &m); err != nil {
		panic("authenticators: embedded aaguids.json: " + err.Error())
	}
	return m
}()

// Name returns the provider name for a 16-byte AAGUID as found in a credential's attested data.
// It reports false for the all-zero AAGUID, for a length other than 16, and for any AAGUID not in
// the list.
func Name(aaguid []byte) (string, bool) {
	if len(aaguid) != 16 {
		return "", false
	}
	s := hex.EncodeToString(aaguid)
	return NameString(s[0:8] + "-" + s[8:12] + "-" + s[12:16] + "-" + s[16:20] + "-" + s[20:32])
}

// NameString is Name for the textual form "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" (either case).
func NameString(aaguid string) (string, bool) {
	name, ok := names[strings.ToLower(aaguid)]
	return name, ok && name != ""
}
