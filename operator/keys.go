package operator

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"text/tabwriter"
	"time"

	"doorman/db"
	"doorman/oidcprovider"
	"doorman/secretbox"
	"doorman/storage"
)

// keysStore is what the keys commands use of the store (db.Store has it).
type keysStore interface {
	SigningKeys(ctx context.Context, now time.Time) ([]db.SigningKey, error)
	RotateSigningKey(ctx context.Context, k db.SigningKey, publishUntil time.Time) error
	Close() error
}

// Publishing a retired key: at least minPublishFor, so that every token it
// signed (oidcprovider.MaxTokenLifetime, 5 minutes) expires while apps can
// still fetch it, with room for clocks that disagree; by default an hour.
const (
	defaultPublishFor = time.Hour
	minPublishFor     = max(10*time.Minute, 2*oidcprovider.MaxTokenLifetime)
)

// keys is `doorman keys rotate [--publish-for DURATION] | list`: the keys
// the OpenID Connect provider signs tokens with. A rotation takes effect
// at once on every instance (they read the keys from the database on
// every use); the old key stays in the published set (JWKS) until the
// tokens it signed have expired.
func keys(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer, log *slog.Logger, now func() time.Time) error {
	if len(args) == 0 {
		return fmt.Errorf("keys: rotate or list?\n%s", Usage)
	}
	cmd := args[0]
	fs := flag.NewFlagSet("doorman keys "+cmd, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	dbPath := getenv("DOORMAN_DB")
	if dbPath == "" {
		dbPath = "doorman.db"
	}
	fs.StringVar(&dbPath, "db", dbPath, "SQLite database file, or postgres:// URL (env DOORMAN_DB)")
	var keyFile string
	var publishFor time.Duration
	if cmd == "rotate" {
		fs.StringVar(&keyFile, "secret-key-file", getenv("DOORMAN_SECRET_KEY_FILE"), "the server's key ring file (env DOORMAN_SECRET_KEY_FILE, or the keys in DOORMAN_SECRET_KEY)")
		fs.DurationVar(&publishFor, "publish-for", defaultPublishFor, "how long the old key stays published")
	}
	if err := fs.Parse(args[1:]); err != nil {
		return fmt.Errorf("keys %s: %w\n%s", cmd, err, Usage)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("keys %s: unexpected %q\n%s", cmd, fs.Arg(0), Usage)
	}
	switch cmd {
	case "rotate":
		if publishFor < minPublishFor {
			return fmt.Errorf("keys rotate: --publish-for %v is too short: tokens the old key signed live %v, so keep it published at least %v",
				publishFor, oidcprovider.MaxTokenLifetime, minPublishFor)
		}
	case "list":
	default:
		return fmt.Errorf("keys: unknown command %q\n%s", cmd, Usage)
	}
	if !storage.IsPostgres(dbPath) {
		if _, err := os.Stat(dbPath); err != nil {
			return fmt.Errorf("database %s: %w", dbPath, err)
		}
	}
	var box *secretbox.Box
	if cmd == "rotate" {
		var err error
		if box, err = serverSecretBox(dbPath, keyFile, getenv); err != nil {
			return fmt.Errorf("keys rotate: %w", err)
		}
	}
	var store keysStore
	store, err := storage.Open(ctx, dbPath, db.Options{Now: now, Existing: true, ReadOnly: cmd == "list",
		AllowSharedFileMode: getenv("DOORMAN_DB_ALLOW_SHARED_FILE_MODE") == "true"})
	if err != nil {
		return err
	}
	defer store.Close()
	if cmd == "list" {
		return listKeys(ctx, store, now(), stdout)
	}

	t := now()
	current, err := store.SigningKeys(ctx, t)
	if err != nil {
		return err
	}
	var old *db.SigningKey
	if len(current) > 0 && current[0].RetiredAt.IsZero() {
		old = &current[0]
		// The new key is sealed with this ring: if it is not the
		// server's, the server could not open it and would stop signing
		// anyone in. The key signing now was sealed with the server's
		// ring, so this one must open it.
		if _, err := box.Open(string(old.PrivateSealed), oidcprovider.SealPurpose); err != nil {
			return fmt.Errorf("keys rotate: this key ring does not open the signing key %s, so it is not the one the server uses (give the server's -secret-key-file or DOORMAN_SECRET_KEY): %w", old.ID, err)
		}
	}
	k, err := oidcprovider.NewSigningKey(box, t)
	if err != nil {
		return err
	}
	until := t.Add(publishFor)
	err = store.RotateSigningKey(ctx, k, until)
	if errors.Is(err, db.ErrConflict) {
		return errors.New("keys rotate: a server made or rotated the signing key at the same moment: run it again")
	}
	if err != nil {
		return err
	}
	if old == nil {
		log.Info("signing key made", "kid", k.ID, "by", "operator")
		fmt.Fprintf(stdout, "There was no signing key yet: %s signs from now on.\n", k.ID)
		return nil
	}
	log.Info("signing key rotated", "kid", k.ID, "retired", old.ID, "published_until", until, "by", "operator")
	fmt.Fprintf(stdout, "Rotated the signing key: %s signs from now on; %s signs no more and stays published until %s.\n",
		k.ID, old.ID, until.UTC().Format(timeLayout))
	return nil
}

// serverSecretBox loads the key ring the server seals its signing keys
// with, from where the server looks (main's openSecretBox), in its order:
// DOORMAN_SECRET_KEY, then -secret-key-file, then (SQLite) the file beside
// the database. Unlike the server it never creates one: a key the server
// does not have would seal a signing key the server cannot open.
func serverSecretBox(dbPath, keyFile string, getenv func(string) string) (*secretbox.Box, error) {
	if keys := getenv("DOORMAN_SECRET_KEY"); keys != "" {
		return secretbox.Parse(keys)
	}
	if keyFile == "" {
		if storage.IsPostgres(dbPath) {
			return nil, errors.New("no secret key ring: give the server's -secret-key-file or DOORMAN_SECRET_KEY (signing keys are sealed with it)")
		}
		keyFile = dbPath + ".key"
	}
	box, err := secretbox.Load(keyFile)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("no secret key ring at %s: give the server's -secret-key-file or DOORMAN_SECRET_KEY (signing keys are sealed with it; none is made up here)", keyFile)
	}
	return box, err
}

// listKeys is `keys list`: the key that signs, then the retired keys still
// published.
func listKeys(ctx context.Context, store keysStore, now time.Time, stdout io.Writer) error {
	list, err := store.SigningKeys(ctx, now)
	if err != nil {
		return err
	}
	if len(list) == 0 {
		fmt.Fprintln(stdout, "No signing key yet: the first sign-in through OpenID Connect makes one.")
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KID\tALGORITHM\tCREATED\tRETIRED\tPUBLISHED UNTIL")
	for _, k := range list {
		retired, until := "-", "while it signs"
		if !k.RetiredAt.IsZero() {
			retired, until = k.RetiredAt.UTC().Format(timeLayout), k.ExpiresAt.UTC().Format(timeLayout)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", k.ID, k.Algorithm, k.CreatedAt.UTC().Format(timeLayout), retired, until)
	}
	return tw.Flush()
}
