package operator

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"doorman/account"
	"doorman/authenticators"
	"doorman/db"
)

// The passkey commands (issue 24): `users passkeys EMAIL` lists a user's
// passkeys; `users passkeys remove EMAIL ID [--end-sessions]` removes one
// (the history says the operator did), and ends the sessions it signed in
// if asked, in one write.

// passkeyProvider names the passkey's provider from its AAGUID, or says it
// is not known (many providers, and synced passkeys, give none).
func passkeyProvider(p db.Passkey) string {
	if name, ok := authenticators.Name(p.AAGUID); ok {
		return name
	}
	return "unknown"
}

// passkeyKind is "synced" (copied to the owner's other devices: the BS
// flag) or "this device only".
func passkeyKind(p db.Passkey) string {
	if p.BackupState {
		return "synced"
	}
	return "this device only"
}

func listPasskeys(ctx context.Context, store usersStore, user db.User, stdout io.Writer) error {
	keys, err := store.ListPasskeys(ctx, user.ID)
	if err != nil {
		return err
	}
	state := ""
	if user.Disabled() {
		state = " (disabled: none of them can sign in)"
	}
	fmt.Fprintf(stdout, "%s%s: %d passkey(s)\n", user.Email, state, len(keys))
	if len(keys) == 0 {
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tPROVIDER\tKIND\tCREATED\tLAST USED\tCLONE WARNINGS")
	for _, p := range keys {
		used := "never"
		if !p.LastUsedAt.IsZero() {
			used = p.LastUsedAt.UTC().Format(timeLayout)
		}
		warnings := "none"
		if p.CloneWarnings > 0 {
			warnings = fmt.Sprintf("%d, last %s", p.CloneWarnings, p.CloneWarnedAt.UTC().Format(timeLayout))
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", p.ID, p.Name, passkeyProvider(p), passkeyKind(p),
			p.CreatedAt.UTC().Format(timeLayout), used, warnings)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, p := range keys {
		if p.CloneWarnings > 0 {
			fmt.Fprintln(stdout, "A clone warning: a sign-in's signature counter did not go past the one last seen, so the key may have been copied (or its authenticator is faulty). It does not prove a copy: the sign-in went on.")
			break
		}
	}
	return nil
}

func removePasskey(ctx context.Context, store usersStore, user db.User, id string, endSessions bool, now time.Time, stdout io.Writer) error {
	n, err := strconv.ParseInt(id, 10, 64)
	if id == "" || err != nil || n <= 0 {
		return fmt.Errorf("users passkeys remove: which passkey? (an ID from `doorman users passkeys %s`)\n%s", user.Email, Usage)
	}
	p, ended, err := store.RemovePasskey(ctx, user.ID, n, endSessions, account.Operator, now)
	if errors.Is(err, db.ErrNotFound) {
		return fmt.Errorf("%s has no passkey %s", user.Email, id)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "Removed passkey %d (%q) of %s", p.ID, p.Name, user.Email)
	if endSessions {
		fmt.Fprintf(stdout, " and ended %d session(s) it signed in.\n", len(ended))
		return nil
	}
	live, err := store.ListSessions(ctx, user.ID, now)
	if err != nil {
		return err
	}
	kept := 0
	for _, s := range live {
		if s.PasskeyID == p.ID {
			kept++
		}
	}
	fmt.Fprintf(stdout, "; the %d session(s) it signed in stay (--end-sessions ends them).\n", kept)
	return nil
}

// disabledPasskeys tells the operator who disabled user about the user's
// passkeys: they stay stored, and none can sign in while the account is
// disabled.
func disabledPasskeys(ctx context.Context, store usersStore, user db.User, stdout io.Writer) error {
	return tellPasskeys(ctx, store, user, stdout, func(n int, names string) string {
		return fmt.Sprintf("Its %d passkey(s) stay stored but cannot sign in while the account is disabled: %s.\n", n, names)
	})
}

// resetPasskeys tells the operator who reset user that its passkeys still
// sign in: a reset ends what is signed in, not the credentials that sign
// in, and whoever had the account may have added one.
func resetPasskeys(ctx context.Context, store usersStore, user db.User, stdout io.Writer) error {
	return tellPasskeys(ctx, store, user, stdout, func(n int, names string) string {
		return fmt.Sprintf("Its %d passkey(s) still sign in: %s. Remove any its owner does not recognise: doorman users passkeys remove %s ID.\n", n, names, user.Email)
	})
}

// tellPasskeys prints what say makes of the number of user's passkeys and
// their ids and names, if it has any.
func tellPasskeys(ctx context.Context, store usersStore, user db.User, stdout io.Writer, say func(n int, names string) string) error {
	keys, err := store.ListPasskeys(ctx, user.ID)
	if err != nil || len(keys) == 0 {
		return err
	}
	names := make([]string, len(keys))
	for i, p := range keys {
		names[i] = fmt.Sprintf("%d %q", p.ID, p.Name)
	}
	fmt.Fprint(stdout, say(len(keys), strings.Join(names, ", ")))
	return nil
}
