package operator

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"doorman/db"
	"doorman/displayname"
	"doorman/storage"
)

// appsStore is what the apps commands use of the store (db.Store has it).
type appsStore interface {
	CreateApp(ctx context.Context, a db.App) error
	App(ctx context.Context, clientID string) (db.App, error)
	Apps(ctx context.Context) ([]db.App, error)
	DeleteApp(ctx context.Context, clientID string, now time.Time) ([]db.Token, error)
	Close() error
}

// uriList is a flag given once per URI.
type uriList []string

func (l *uriList) String() string     { return strings.Join(*l, " ") }
func (l *uriList) Set(v string) error { *l = append(*l, v); return nil }

// appFlags are `apps add`'s flags.
type appFlags struct {
	name                   string
	redirects, postLogout  uriList
	backchannel            string
	confidential, firstPty bool
}

// apps is `doorman apps add | list | remove CLIENT_ID`: the apps that may
// sign people in through Doorman. Without --redirect-uri, `add` registers
// a command-line tool that signs in with the device flow: a public client
// (a tool on someone's laptop cannot keep a secret) whose client_id only
// names it on the approval page and in the inventory. With one, it
// registers an OpenID Connect app.
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
	var f appFlags
	if cmd == "add" {
		fs.StringVar(&f.name, "name", "", "the app's name, as people will see it")
		fs.Var(&f.redirects, "redirect-uri", "an OpenID Connect redirect URI (repeat for more)")
		fs.Var(&f.postLogout, "post-logout-redirect-uri", "where RP-initiated logout may send the browser (repeat for more)")
		fs.StringVar(&f.backchannel, "backchannel-logout-uri", "", "where the app takes back-channel logout tokens")
		fs.BoolVar(&f.confidential, "confidential", false, "the app keeps a client secret (a server-side web app)")
		fs.BoolVar(&f.firstPty, "first-party", false, "the operator's own app: people are not asked to consent")
	}
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
	var app db.App
	var secret string
	switch cmd {
	case "add":
		// Everything is checked before the database is opened: bad input
		// writes nothing.
		var err error
		if app, secret, err = newApp(fs, f, now()); err != nil {
			return fmt.Errorf("apps add: %w\n%s", err, Usage)
		}
	case "list":
	case "remove":
		if clientID == "" {
			return fmt.Errorf("apps remove: which CLIENT_ID?\n%s", Usage)
		}
	default:
		return fmt.Errorf("apps: unknown command %q\n%s", cmd, Usage)
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
		if err := store.CreateApp(ctx, app); err != nil {
			return err
		}
		log.Info("app registered", "client", app.ClientID, "name", app.Name, "kind", appKind(app), "by", "operator")
		if !app.OIDC() {
			fmt.Fprintf(stdout, "Registered %q. Its client_id: %s\n", app.Name, app.ClientID)
			return nil
		}
		fmt.Fprintf(stdout, "Registered %q: %s.\n", app.Name, appKind(app))
		fmt.Fprintf(stdout, "client_id: %s\n", app.ClientID)
		if secret != "" {
			fmt.Fprintf(stdout, "client_secret: %s\n", secret)
			fmt.Fprintln(stdout, "Next: give the app its client_id and client_secret (shown only this once: Doorman keeps only its hash) and Doorman's -base-url as the issuer.")
		} else {
			fmt.Fprintln(stdout, "Next: give the app its client_id (it has no secret: it must use PKCE) and Doorman's -base-url as the issuer.")
		}
		fmt.Fprintln(stdout, "Redirect URIs are matched exactly as registered: nothing is normalised (case, trailing slash, query).")
		return nil
	case "list":
		list, err := store.Apps(ctx)
		if err != nil {
			return err
		}
		if len(list) == 0 {
			fmt.Fprintln(stdout, "No apps registered.")
			return nil
		}
		for i, a := range list {
			if i > 0 {
				fmt.Fprintln(stdout)
			}
			printApp(stdout, a)
		}
		return nil
	default: // remove
		a, err := store.App(ctx, clientID)
		if errors.Is(err, db.ErrNotFound) {
			return fmt.Errorf("no app with client_id %s", clientID)
		}
		if err != nil {
			return err
		}
		ended, err := store.DeleteApp(ctx, clientID, now())
		if errors.Is(err, db.ErrNotFound) {
			return fmt.Errorf("no app with client_id %s", clientID)
		}
		if err != nil {
			return err
		}
		log.Info("app removed", "client", clientID, "name", a.Name, "tokens_ended", len(ended), "by", "operator")
		if !a.OIDC() {
			fmt.Fprintf(stdout, "Removed %q (%s) and ended %d of its token(s).\n", a.Name, clientID, len(ended))
			return nil
		}
		// DeleteApp ends its grants, and deletes its consents, sign-ins in
		// progress and pending logouts, in the transaction that removes it.
		fmt.Fprintf(stdout, "Removed %q (%s): every access and refresh token it held ended (and %d device-flow token(s)); its consents and sign-ins in progress are gone.\n",
			a.Name, clientID, len(ended))
		// What Doorman cannot end: the app's own sessions. Say so, so the
		// operator does not take "removed" for "everyone signed out of it".
		fmt.Fprintln(stdout, "No logout is sent to a removed app: people stay signed in to the app itself until it ends their sessions.")
		return nil
	}
}

// newApp checks `apps add`'s flags and makes the app, with its client
// secret if it is confidential (returned once: only its hash is kept).
func newApp(fs *flag.FlagSet, f appFlags, now time.Time) (db.App, string, error) {
	// The name is shown to people approving the app and on their
	// Security page: stored without control or format characters
	// (a bidi override could make it read as another app's).
	n := displayname.Clean(f.name)
	if n == "" && strings.TrimSpace(f.name) != "" {
		return db.App{}, "", fmt.Errorf("--name %q has no visible characters (control and format characters such as U+202E are removed)", f.name)
	}
	if n == "" || len(n) > 100 {
		return db.App{}, "", errors.New("--name is required (at most 100 characters)")
	}
	app := db.App{ClientID: newClientID(), Name: n, CreatedAt: now}
	if len(f.redirects) == 0 {
		// A device-flow tool: the flags that only mean something to a
		// browser sign-in are refused rather than silently dropped.
		var oidcOnly []string
		fs.Visit(func(fl *flag.Flag) {
			switch fl.Name {
			case "post-logout-redirect-uri", "backchannel-logout-uri", "confidential", "first-party":
				oidcOnly = append(oidcOnly, "--"+fl.Name)
			}
		})
		if len(oidcOnly) > 0 {
			return db.App{}, "", fmt.Errorf("%s only apply to an OpenID Connect app: give its --redirect-uri (without one, the app is a command-line tool signing in with the device flow)",
				strings.Join(oidcOnly, ", "))
		}
		return app, "", nil
	}
	for _, l := range []struct {
		flag string
		uris []string
	}{{"redirect-uri", f.redirects}, {"post-logout-redirect-uri", f.postLogout}} {
		for i, u := range l.uris {
			if err := checkAppURI(l.flag, u); err != nil {
				return db.App{}, "", err
			}
			if slices.Contains(l.uris[:i], u) {
				return db.App{}, "", fmt.Errorf("--%s %q is given twice", l.flag, u)
			}
		}
	}
	if f.backchannel != "" {
		if err := checkAppURI("backchannel-logout-uri", f.backchannel); err != nil {
			return db.App{}, "", err
		}
	}
	app.RedirectURIs, app.PostLogoutRedirectURIs = f.redirects, f.postLogout
	app.BackchannelLogoutURI, app.FirstParty = f.backchannel, f.firstPty
	var secret string
	if f.confidential {
		// 256 random bits: a fast hash is enough to keep it (a leaked
		// database gives no usable secret), and it is the hash the
		// provider checks a presented secret against (oidcprovider's
		// AuthorizeClientIDSecret: SHA-256 of the text, constant time).
		b := make([]byte, 32)
		rand.Read(b)
		secret = base64.RawURLEncoding.EncodeToString(b)
		h := sha256.Sum256([]byte(secret))
		app.SecretHash = h[:]
	}
	return app, secret, nil
}

// newClientID is "app_" and 80 random bits: unguessable, though a
// client_id is no secret.
func newClientID() string {
	b := make([]byte, 10)
	rand.Read(b)
	return "app_" + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b))
}

// checkAppURI checks a redirect, post-logout or back-channel logout URI.
// They are matched exactly later (a redirect URI may have a query), so
// what is registered must be exactly what the app sends, and safe to send
// a code or a logout token to:
//   - absolute, with a host: a relative one would be resolved against
//     whatever page the browser was on;
//   - no fragment: a browser keeps it across the redirect, and the spec
//     forbids one (RFC 6749 §3.1.2, back-channel logout §2.2);
//   - no user name or password: credentials in a URI leak into logs;
//   - https, or http only on this machine (127.0.0.1, [::1], localhost,
//     for development): elsewhere a code or logout token would cross the
//     network in clear;
//   - printable ASCII only: apps send URIs percent-encoded, and an
//     unencoded space or letter would never match.
func checkAppURI(name, raw string) error {
	if len(raw) > 2000 {
		return fmt.Errorf("--%s is longer than 2000 characters", name)
	}
	for _, r := range raw {
		if r <= ' ' || r >= 0x7f {
			return fmt.Errorf("--%s %q: write spaces and other characters percent-encoded, as the app will send it", name, raw)
		}
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return fmt.Errorf("--%s %q is not a URI: %v", name, raw, err)
	case !u.IsAbs() || u.Opaque != "" || u.Hostname() == "":
		return fmt.Errorf("--%s %q must be an absolute URI, like https://app.example.com/callback", name, raw)
	case strings.Contains(raw, "#"):
		return fmt.Errorf("--%s %q must not have a fragment (#…)", name, raw)
	case u.User != nil:
		return fmt.Errorf("--%s %q must not carry a user name or password", name, raw)
	case u.Scheme == "https":
	case u.Scheme == "http" && loopback(u.Hostname()):
	default:
		return fmt.Errorf("--%s %q must be https (http only on 127.0.0.1, [::1] or localhost, for development)", name, raw)
	}
	return nil
}

// loopback reports whether host is this machine, as the provider decides
// for its issuer.
func loopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// appKind says what kind of app it is, as `apps list` and `apps add` print
// it.
func appKind(a db.App) string {
	if !a.OIDC() {
		return "device flow (command-line tool)"
	}
	kind := "OpenID Connect, public (PKCE)"
	if len(a.SecretHash) > 0 {
		kind = "OpenID Connect, confidential"
	}
	if a.FirstParty {
		kind += ", first-party (no consent asked)"
	}
	return kind
}

// printApp prints one app of `apps list`: a line with its client_id and
// name, then one line per fact.
func printApp(w io.Writer, a db.App) {
	fmt.Fprintf(w, "%s  %s\n", a.ClientID, a.Name)
	line := func(label, value string) { fmt.Fprintf(w, "  %-28s%s\n", label, value) }
	lines := func(label string, values []string) {
		for _, v := range values {
			line(label, v)
			label = "" // the label once, the URIs one under another
		}
	}
	line("kind:", appKind(a))
	lines("redirect URIs:", a.RedirectURIs)
	lines("post-logout redirect URIs:", a.PostLogoutRedirectURIs)
	if a.BackchannelLogoutURI != "" {
		line("back-channel logout URI:", a.BackchannelLogoutURI)
	}
	line("registered:", a.CreatedAt.UTC().Format(timeLayout))
}
