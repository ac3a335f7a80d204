package operator

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"doorman/db"
	"doorman/displayname"
	"doorman/storage"
)

// appsStore is what the apps commands use of the store (db.Store has it).
type appsStore interface {
	CreateApp(ctx context.Context, a db.App) error
	Apps(ctx context.Context) ([]db.App, error)
	DeleteApp(ctx context.Context, clientID string, now time.Time) ([]db.Token, error)
	Close() error
}

// apps is `doorman apps add --name NAME | list | remove CLIENT_ID`: the
// command-line tools that may sign in with the device flow. They are public
// clients (a tool on someone's laptop cannot keep a secret): the client_id
// only names the app on the approval page and in the inventory.
func apps(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer, log *slog.Logger, now func() time.Time) error {
	if len(args) == 0 {
		return fmt.Errorf("apps: add, list or remove?\n%s", Usage)
	}
	cmd := args[0]
	fs := flag.NewFlagSet("doorman apps "+cmd, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	dbPath := getenv("DOORMAN_DB")
	if dbPath == "" {
		dbPath = "doorman.db"
	}
	fs.StringVar(&dbPath, "db", dbPath, "SQLite database file, or postgres:// URL (env DOORMAN_DB)")
	name := fs.String("name", "", "the app's name, as people will see it")
	rest := args[1:]
	var clientID string
	if cmd == "remove" && len(rest) > 0 && !strings.HasPrefix(rest[0], "-") {
		clientID, rest = rest[0], rest[1:]
	}
	if err := fs.Parse(rest); err != nil {
		return fmt.Errorf("apps %s: %w\n%s", cmd, err, Usage)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("apps %s: unexpected %q\n%s", cmd, fs.Arg(0), Usage)
	}
	if !storage.IsPostgres(dbPath) {
		if _, err := os.Stat(dbPath); err != nil {
			return fmt.Errorf("database %s: %w", dbPath, err)
		}
	}
	var store appsStore
	store, err := storage.Open(ctx, dbPath, db.Options{Now: now, Existing: true, ReadOnly: cmd == "list",
		AllowSharedFileMode: getenv("DOORMAN_DB_ALLOW_SHARED_FILE_MODE") == "true"})
	if err != nil {
		return err
	}
	defer store.Close()
	switch cmd {
	case "add":
		// The name is shown to people approving the app and on their
		// Security page: stored without control or format characters
		// (a bidi override could make it read as another app's).
		n := displayname.Clean(*name)
		if n == "" && strings.TrimSpace(*name) != "" {
			return fmt.Errorf("apps add: --name %q has no visible characters (control and format characters such as U+202E are removed)\n%s", *name, Usage)
		}
		if n == "" || len(n) > 100 {
			return fmt.Errorf("apps add: --name is required (at most 100 characters)\n%s", Usage)
		}
		b := make([]byte, 10)
		rand.Read(b)
		id := "app_" + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b))
		if err := store.CreateApp(ctx, db.App{ClientID: id, Name: n, CreatedAt: now()}); err != nil {
			return err
		}
		log.Info("app registered", "client", id, "name", n, "by", "operator")
		fmt.Fprintf(stdout, "Registered %q. Its client_id: %s\n", n, id)
		return nil
	case "list":
		list, err := store.Apps(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "CLIENT ID\tNAME\tREGISTERED")
		for _, a := range list {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", a.ClientID, a.Name, a.CreatedAt.UTC().Format("2006-01-02 15:04 UTC"))
		}
		return tw.Flush()
	case "remove":
		if clientID == "" {
			return fmt.Errorf("apps remove: which CLIENT_ID?\n%s", Usage)
		}
		ended, err := store.DeleteApp(ctx, clientID, now())
		if errors.Is(err, db.ErrNotFound) {
			return fmt.Errorf("no app with client_id %s", clientID)
		}
		if err != nil {
			return err
		}
		log.Info("app removed", "client", clientID, "tokens_ended", len(ended), "by", "operator")
		fmt.Fprintf(stdout, "Removed %s and ended %d of its token(s).\n", clientID, len(ended))
		return nil
	}
	return fmt.Errorf("apps: unknown command %q\n%s", cmd, Usage)
}
