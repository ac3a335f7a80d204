// Package operator is the command line for the people who run Doorman:
//
//	doorman sessions list   --user EMAIL
//	doorman sessions revoke --user EMAIL (--id ID | --all)
//	doorman users disable EMAIL
//	doorman users enable EMAIL
//	doorman users reset (EMAIL | --all)
//	doorman users reset-2fa EMAIL
//	doorman users passkeys EMAIL
//	doorman users passkeys remove EMAIL ID [--end-sessions]
//	doorman apps add --name NAME [--redirect-uri URI …] | list | remove CLIENT_ID
//	doorman keys rotate [--publish-for DURATION] | list
//	doorman backup -db FILE -out FILE
//
// They work on the same database as a running server (SQLite's WAL lets them
// write alongside it). Because the server reads the sessions and tokens
// tables on every request, an ended session or token is refused on its very
// next request.
package operator

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"doorman/account"
	"doorman/apiclient"
	"doorman/db"
	"doorman/storage"
)

// Usage is the operator commands' help.
const Usage = `usage:
  doorman sessions list   --user EMAIL [-db FILE]
  doorman sessions revoke --user EMAIL (--id ID | --all) [-db FILE]
  doorman users disable EMAIL [-db FILE]
  doorman users enable EMAIL [-db FILE]
  doorman users reset (EMAIL | --all) [-db FILE]
                                             end every session, app and token, and void every
                                             sign-in in progress and emailed link (--all: of
                                             every user; run it after restoring a backup)
  doorman users reset-2fa EMAIL [-db FILE]    two-factor off, and everything ended as by reset
  doorman users passkeys EMAIL [-db FILE]     the user's passkeys
  doorman users passkeys remove EMAIL ID [--end-sessions] [-db FILE]
                                             remove one (--end-sessions: and end the sessions
                                             it signed in)
  doorman apps add --name NAME [-db FILE]     register a command-line tool (prints its client_id)
  doorman apps add --name NAME --redirect-uri URI [--redirect-uri URI…]
                   [--post-logout-redirect-uri URI…] [--backchannel-logout-uri URI]
                   [--confidential] [--first-party] [-db FILE]
                                             register an OpenID Connect app (prints its client_id
                                             and, if --confidential, its client_secret, once);
                                             URIs: https, or http on 127.0.0.1/[::1]/localhost
  doorman apps list [-db FILE]
  doorman apps remove CLIENT_ID [-db FILE]    its tokens end at once
  doorman keys rotate [--publish-for 1h] [-secret-key-file FILE] [-db FILE]
                                             a new OpenID Connect signing key; the old one stays
                                             published for --publish-for (at least 10m)
  doorman keys list [-db FILE]
  doorman backup -db FILE -out FILE
`

// usersStore is what the sessions and users commands use of the store
// (db.Store has it), besides what the account service they call uses.
type usersStore interface {
	account.Store
	UserByEmail(ctx context.Context, email string) (db.User, error)
	UserIDs(ctx context.Context) ([]int64, error)
	ListSessions(ctx context.Context, userID int64, now time.Time) ([]db.Session, error)
	ListPasskeys(ctx context.Context, userID int64) ([]db.Passkey, error)
	RemovePasskey(ctx context.Context, userID, id int64, endSessions bool, by string, now time.Time) (db.Passkey, []db.Session, error)
	Close() error
}

// backup is `doorman backup -db FILE -out FILE`: a consistent copy of a
// live SQLite database (PostgreSQL has pg_dump: see docs/DEPLOY.md).
func backup(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer, now func() time.Time) error {
	fs := flag.NewFlagSet("doorman backup", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	dbPath := getenv("DOORMAN_DB")
	if dbPath == "" {
		dbPath = "doorman.db"
	}
	fs.StringVar(&dbPath, "db", dbPath, "SQLite database file (env DOORMAN_DB)")
	out := fs.String("out", "", "the copy to write (must not exist)")
	if err := fs.Parse(args); err != nil || *out == "" || fs.NArg() != 0 {
		return fmt.Errorf("backup: usage: doorman backup -db FILE -out FILE")
	}
	if storage.IsPostgres(dbPath) {
		return errors.New("backup: for PostgreSQL use pg_dump (see docs/DEPLOY.md, Backups)")
	}
	if _, err := os.Stat(dbPath); err != nil {
		return fmt.Errorf("database %s: %w", dbPath, err)
	}
	store, err := storage.Open(ctx, dbPath, db.Options{Now: now, Existing: true,
		AllowSharedFileMode: getenv("DOORMAN_DB_ALLOW_SHARED_FILE_MODE") == "true"})
	if err != nil {
		return err
	}
	defer store.Close()
	b, ok := store.(interface {
		BackupTo(ctx context.Context, path string) error
	})
	if !ok {
		return errors.New("backup: this store cannot back itself up")
	}
	if err := b.BackupTo(ctx, *out); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "Wrote a consistent copy of %s to %s.\n", dbPath, *out)
	return nil
}

// Run runs one operator command. args start with the command ("sessions").
// now is the clock that decides which sessions are alive: the caller's, so a
// test and the server it drives agree on the time.
func Run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer, log *slog.Logger, now func() time.Time) error {
	if len(args) > 0 && args[0] == "backup" {
		return backup(ctx, args[1:], getenv, stdout, now)
	}
	if len(args) > 0 && args[0] == "apps" {
		return apps(ctx, args[1:], getenv, stdout, log, now)
	}
	if len(args) > 0 && args[0] == "keys" {
		return keys(ctx, args[1:], getenv, stdout, log, now)
	}
	if len(args) < 2 {
		return fmt.Errorf("%s: which command?\n%s", args[0], Usage)
	}
	cmd := args[0] + " " + args[1]
	fs := flag.NewFlagSet("doorman "+cmd, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	dbPath := getenv("DOORMAN_DB")
	if dbPath == "" {
		dbPath = "doorman.db"
	}
	fs.StringVar(&dbPath, "db", dbPath, "SQLite database file, or postgres:// URL (env DOORMAN_DB)")
	var email, id string
	var all bool
	if args[0] == "sessions" {
		fs.StringVar(&email, "user", "", "the user's email")
		fs.StringVar(&id, "id", "", "public id of the session to end")
		fs.BoolVar(&all, "all", false, "end every session of the user")
	}
	if cmd == "users reset" {
		fs.BoolVar(&all, "all", false, "reset every user")
	}
	var endSessions bool
	rest := args[2:]
	if cmd == "users passkeys" && len(rest) > 0 && rest[0] == "remove" {
		cmd, rest = "users passkeys remove", rest[1:]
		fs.BoolVar(&endSessions, "end-sessions", false, "also end the sessions the passkey signed in")
	}
	if args[0] == "users" && len(rest) > 0 && !strings.HasPrefix(rest[0], "-") {
		email, rest = rest[0], rest[1:] // "users disable EMAIL -db FILE"
	}
	if cmd == "users passkeys remove" && len(rest) > 0 && !strings.HasPrefix(rest[0], "-") {
		id, rest = rest[0], rest[1:] // "users passkeys remove EMAIL ID --end-sessions"
	}
	if err := fs.Parse(rest); err != nil {
		return fmt.Errorf("%s: %w\n%s", cmd, err, Usage)
	}
	if args[0] == "users" && email == "" && fs.NArg() == 1 {
		email = fs.Arg(0)
	} else if fs.NArg() != 0 {
		return fmt.Errorf("%s: unexpected %q\n%s", cmd, fs.Arg(0), Usage)
	}
	email = strings.ToLower(strings.TrimSpace(email))
	everyone := cmd == "users reset" && all
	switch {
	case everyone && email != "":
		return fmt.Errorf("%s: give an EMAIL or --all, not both\n%s", cmd, Usage)
	case email == "" && !everyone:
		return fmt.Errorf("%s: which user? (an EMAIL is required)\n%s", cmd, Usage)
	}

	// Never create or migrate a database: a typo in -db must not look like
	// a user with no sessions, and no other file may be turned into a
	// Doorman database. Listing opens the file read-only.
	if !storage.IsPostgres(dbPath) {
		if _, err := os.Stat(dbPath); err != nil {
			return fmt.Errorf("database %s: %w", dbPath, err)
		}
	}
	readOnly := cmd == "sessions list" || cmd == "users passkeys"
	opts := db.Options{Now: now, ReadOnly: readOnly, Existing: !readOnly,
		AllowSharedFileMode: getenv("DOORMAN_DB_ALLOW_SHARED_FILE_MODE") == "true"}
	var store usersStore
	store, err := storage.Open(ctx, dbPath, opts)
	if err != nil {
		return err
	}
	defer store.Close()
	svc := account.New(store, log, now)
	if everyone {
		return resetEveryone(ctx, store, svc, stdout)
	}
	user, err := store.UserByEmail(ctx, email)
	if errors.Is(err, db.ErrNotFound) {
		return fmt.Errorf("no user with email %s in %s", email, redact(dbPath))
	}
	if err != nil {
		return err
	}
	switch cmd {
	case "sessions list":
		return list(ctx, store, user, now(), stdout)
	case "sessions revoke":
		switch {
		case (id == "") == !all:
			return fmt.Errorf("%s: give exactly one of --id ID or --all\n%s", cmd, Usage)
		case all:
			ended, err := svc.EndAllSessions(ctx, user.ID, db.ReasonOperator, account.Operator)
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "Ended %d session(s) of %s.\n", len(ended), user.Email)
		default:
			s, err := svc.EndSession(ctx, user.ID, id, db.ReasonOperator, account.Operator)
			if errors.Is(err, db.ErrNotFound) {
				return fmt.Errorf("%s has no live session %q", user.Email, id)
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "Ended session %s (%s, %s) of %s.\n", s.ID, s.DeviceLabel, s.Location, user.Email)
		}
		return nil
	case "users reset":
		done, err := svc.ResetByOperator(ctx, user.ID, false)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "Reset %s: ended %d session(s) and %d app or access token(s); sign-ins in progress and emailed links no longer work.\n",
			user.Email, len(done.Ended), len(done.Tokens))
		return resetPasskeys(ctx, store, user, stdout)
	case "users reset-2fa":
		// For a user who lost both the phone and the recovery codes (and
		// proved who they are some other way). Someone else may hold the
		// account (that may be why the factor is "lost"): everything that
		// can act for it ends with the second factor, in one write; the
		// password and the account's passkeys (listed, for the operator
		// to remove what the owner does not recognise) sign in afterwards.
		done, err := svc.ResetByOperator(ctx, user.ID, true)
		if err != nil {
			return err
		}
		what := "Turned two-factor off for"
		if !done.TwoFactorOff {
			what = "Two-factor was not on for"
		}
		fmt.Fprintf(stdout, "%s %s and ended %d session(s) and %d app or access token(s); sign-ins in progress and emailed links no longer work.\n",
			what, user.Email, len(done.Ended), len(done.Tokens))
		return resetPasskeys(ctx, store, user, stdout)
	case "users disable", "users enable":
		disable := args[1] == "disable"
		ended, err := svc.SetDisabled(ctx, user.ID, disable, account.Operator)
		if err != nil {
			return err
		}
		if disable {
			fmt.Fprintf(stdout, "Disabled %s and ended %d session(s).\n", user.Email, len(ended))
			return disabledPasskeys(ctx, store, user, stdout)
		} else {
			fmt.Fprintf(stdout, "Enabled %s.\n", user.Email)
		}
		return nil
	case "users passkeys":
		return listPasskeys(ctx, store, user, stdout)
	case "users passkeys remove":
		return removePasskey(ctx, store, user, id, endSessions, now(), stdout)
	}
	return fmt.Errorf("unknown command %q\n%s", cmd, Usage)
}

// resetEveryone is `users reset --all`: reset for every user, one write
// each. After a backup is restored, every session and token revoked since
// the backup was taken is alive again in the copy, and so are links and
// sign-ins voided since: this ends them all. Running it again is harmless,
// so a run that failed part way is simply run again.
func resetEveryone(ctx context.Context, store usersStore, svc *account.Service, stdout io.Writer) error {
	ids, err := store.UserIDs(ctx)
	if err != nil {
		return err
	}
	users, sessions, tokens := 0, 0, 0
	for _, id := range ids {
		done, err := svc.ResetByOperator(ctx, id, false)
		if errors.Is(err, db.ErrNotFound) {
			continue // deleted meanwhile: nothing of theirs is left
		}
		if err != nil {
			fmt.Fprintf(stdout, "Reset %d of %d user(s) before an error; run it again.\n", users, len(ids))
			return err
		}
		users, sessions, tokens = users+1, sessions+len(done.Ended), tokens+len(done.Tokens)
	}
	fmt.Fprintf(stdout, "Reset %d user(s): ended %d session(s) and %d app or access token(s); sign-ins in progress and emailed links no longer work.\n",
		users, sessions, tokens)
	return nil
}

func list(ctx context.Context, store usersStore, user db.User, now time.Time, stdout io.Writer) error {
	sessions, err := store.ListSessions(ctx, user.ID, now)
	if err != nil {
		return err
	}
	state := ""
	if user.Disabled() {
		state = " (disabled)"
	}
	fmt.Fprintf(stdout, "%s%s: %d live session(s)\n", user.Email, state, len(sessions))
	if len(sessions) == 0 {
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tDEVICE\tLOCATION\tIP\tLAST ACTIVE\tSIGNED IN\tEXPIRES")
	for _, s := range sessions {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.ID, s.DeviceLabel, s.Location, s.IP,
			s.LastSeenAt.UTC().Format(timeLayout), s.CreatedAt.UTC().Format(timeLayout), s.ExpiresAt().UTC().Format(timeLayout))
	}
	return tw.Flush()
}

// timeLayout is how the operator commands print a time: as every command
// does (always UTC).
const timeLayout = apiclient.TimeLayout

// redact hides the password of a postgres:// DSN in messages.
func redact(dsn string) string {
	if u, err := url.Parse(dsn); err == nil && u.User != nil {
		return u.Redacted()
	}
	return dsn
}
