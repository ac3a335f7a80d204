package handlers

import (
	"context"

	"doorman/db"
)

// sessionAMR is the ID token's amr for an app sign-in from session s of
// user userID (RFC 8176). A session opened with a passkey says "hwk" (a
// key held in hardware) if the passkey can never leave its authenticator,
// "swk" otherwise, and "mfa": the passkey is something the person has, and
// Doorman requires user verification (a PIN or biometrics: something they
// know or are) on every passkey ceremony. "hwk" only when the
// authenticator says the key is not backup eligible (the BE flag): a
// passkey not synced today but eligible may be copied to a password
// manager's cloud without Doorman knowing, so it is "swk". A passkey
// removed since (its session kept) is "swk" too: nothing says otherwise.
// Other sessions keep amr as before (amr).
func (a *app) sessionAMR(ctx context.Context, userID int64, s db.Session) ([]string, error) {
	if s.AuthMethod != db.MethodPasskey {
		return amr(s.AuthMethod), nil
	}
	keys, err := a.store.ListPasskeys(ctx, userID)
	if err != nil {
		return nil, err
	}
	kind := "swk"
	for _, k := range keys {
		if k.ID == s.PasskeyID && !k.BackupEligible {
			kind = "hwk"
		}
	}
	return []string{kind, "mfa"}, nil
}
