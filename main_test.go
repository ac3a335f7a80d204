package main

import (
	"bufio"
	"context"
	"doorman/db"
	"doorman/demo"
	"doorman/paths"
	"doorman/storage"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestRunServesAndShutsDown starts the real program on a free port, with no
// GeoIP data, checks it serves, and stops it the way SIGINT would.
func TestRunServesAndShutsDown(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out, w := io.Pipe()
	done := make(chan error, 1)
	env := map[string]string{"DOORMAN_DB": filepath.Join(dir, "env.db"), "DOORMAN_GEOIP_DIR": filepath.Join(dir, "nodata")}
	go func() {
		done <- run(ctx, []string{"-addr", "127.0.0.1:0", "-demo"}, func(k string) string { return env[k] }, w, time.Now)
		w.Close()
	}()
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("no start-up line: %v", err)
	}
	url := strings.TrimSpace(strings.TrimPrefix(line, "Doorman is running at "))
	if !strings.HasPrefix(url, "http://127.0.0.1:") {
		t.Fatalf("start-up line %q", line)
	}
	res, err := http.Get(url + "/healthz")
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("healthz: %v %v", res, err)
	}
	res.Body.Close()
	// Headers are limited by the server, before any handler runs.
	req, _ := http.NewRequest(http.MethodGet, url+"/login", nil)
	req.Header.Set("X-Junk", strings.Repeat("j", 64<<10))
	if res, err := http.DefaultClient.Do(req); err != nil || res.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("giant header: %v %v", res, err)
	} else {
		res.Body.Close()
	}
	// -demo puts the credentials on the sign-in page.
	res, err = http.Get(url + "/login")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if !strings.Contains(string(body), "demo@doorman.test") {
		t.Error("demo credentials not on the sign-in page")
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run returned %v after shutdown", err)
		}
	case <-time.After(time.Minute): // a hang, not a slow machine
		t.Fatal("no graceful shutdown in a minute")
	}
}

func TestParseConfig(t *testing.T) {
	env := map[string]string{"DOORMAN_ADDR": "127.0.0.1:9000", "DOORMAN_IDLE_TIMEOUT": "1h", "DOORMAN_TRUSTED_PROXY": "10.0.0.0/8, 192.168.1.1"}
	cfg, err := parseConfig([]string{"-absolute-lifetime", "2h"}, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Addr != "127.0.0.1:9000" || cfg.Session.IdleTimeout != time.Hour || cfg.Session.AbsoluteLifetime != 2*time.Hour {
		t.Fatalf("cfg = %+v", cfg)
	}
	if len(cfg.Proxies) != 2 || cfg.Proxies[1].String() != "192.168.1.1/32" || len(cfg.Session.TrustedProxies) != 2 {
		t.Fatalf("proxies = %v", cfg.Proxies)
	}
	// The flag wins over the environment.
	cfg, _ = parseConfig([]string{"-addr", "127.0.0.1:1"}, func(k string) string { return env[k] })
	if cfg.Addr != "127.0.0.1:1" {
		t.Fatalf("flag did not win: %s", cfg.Addr)
	}
	// Stream limits: 20 an account by default, the instance's derived
	// from the open-file limit (0), both settable.
	if cfg.Session.MaxStreamsPerUser != 20 || cfg.Session.MaxStreams != 0 {
		t.Fatalf("stream limits %d %d", cfg.Session.MaxStreamsPerUser, cfg.Session.MaxStreams)
	}
	cfg, _ = parseConfig([]string{"-max-streams", "500"}, func(k string) string {
		return map[string]string{"DOORMAN_MAX_STREAMS_PER_USER": "8"}[k]
	})
	if cfg.Session.MaxStreamsPerUser != 8 || cfg.Session.MaxStreams != 500 {
		t.Fatalf("stream limits %d %d", cfg.Session.MaxStreamsPerUser, cfg.Session.MaxStreams)
	}
	// The API's per-token rate: 10 a second by default, settable, 0 for
	// none; the flag wins over the environment.
	if cfg.Session.APITokenRate != 10 {
		t.Fatalf("api token rate %v", cfg.Session.APITokenRate)
	}
	cfg, _ = parseConfig([]string{"-api-token-rate", "0"}, func(k string) string {
		return map[string]string{"DOORMAN_API_TOKEN_RATE": "50"}[k]
	})
	if cfg.Session.APITokenRate != 0 {
		t.Fatalf("api token rate %v", cfg.Session.APITokenRate)
	}
	cfg, _ = parseConfig(nil, func(k string) string { return map[string]string{"DOORMAN_API_TOKEN_RATE": "2.5"}[k] })
	if cfg.Session.APITokenRate != 2.5 {
		t.Fatalf("api token rate %v", cfg.Session.APITokenRate)
	}
	for _, bad := range [][]string{{"-trusted-proxy", "nonsense"}, {"-idle-timeout", "-1h"}, {"-log-level", "loud"}, {"stray"},
		{"-max-streams", "-1"}, {"-max-streams-per-user", "0"}, {"-api-token-rate", "-1"}, {"-api-token-rate", "NaN"},
		{"-api-token-rate", "+Inf"}, {"-api-token-rate", "fast"}} {
		if _, err := parseConfig(bad, func(string) string { return "" }); err == nil {
			t.Errorf("parseConfig(%v) accepted", bad)
		}
	}
	if _, err := parseConfig(nil, func(k string) string { return map[string]string{"DOORMAN_DEMO": "maybe"}[k] }); err == nil {
		t.Error("bad DOORMAN_DEMO accepted")
	}
	if _, err := parseConfig(nil, func(k string) string { return map[string]string{"DOORMAN_API_TOKEN_RATE": "fast"}[k] }); err == nil {
		t.Error("bad DOORMAN_API_TOKEN_RATE accepted")
	}
}

// TestRefusesADatabaseOthersCanRead: the server will not open a database
// file with group or world permissions unless told to.
func TestRefusesADatabaseOthersCanRead(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "shared.db")
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	env := func(string) string { return "" }
	err := run(context.Background(), []string{"-addr", "127.0.0.1:0", "-db", path, "-geoip-dir", dir}, env, io.Discard, time.Now)
	if err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("run on a 0644 database: %v", err)
	}
	// With the flag it starts (and stops when the context ends).
	ctx, cancel := context.WithCancel(context.Background())
	out, w := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-addr", "127.0.0.1:0", "-db", path, "-geoip-dir", dir, "-db-allow-shared-file-mode"}, env, w, time.Now)
		w.Close()
	}()
	if _, err := bufio.NewReader(out).ReadString('\n'); err != nil {
		t.Fatalf("did not start with -db-allow-shared-file-mode: %v (%v)", err, <-done)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestShutdownEndsEventStreams: graceful shutdown does not wait for open
// event streams to time out.
func TestShutdownEndsEventStreams(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out, w := io.Pipe()
	done := make(chan error, 1)
	env := map[string]string{"DOORMAN_DB": filepath.Join(dir, "s.db"), "DOORMAN_GEOIP_DIR": dir}
	go func() {
		done <- run(ctx, []string{"-addr", "127.0.0.1:0", "-demo"}, func(k string) string { return env[k] }, w, time.Now)
		w.Close()
	}()
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	base := strings.TrimSpace(strings.TrimPrefix(line, "Doorman is running at "))
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	res, err := c.Get(base + "/login")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	u, _ := url.Parse(base)
	token := ""
	for _, ck := range jar.Cookies(u) {
		if ck.Name == "doorman_csrf" {
			token = ck.Value
		}
	}
	res, err = c.PostForm(base+"/login", url.Values{"email": {"demo@doorman.test"}, "password": {"doorman-demo"}, "csrf": {token}})
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("sign-in: %v %v", res, err)
	}
	res.Body.Close()
	stream, err := c.Get(base + "/settings/security/events")
	if err != nil || stream.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("stream: %v %v", stream, err)
	}
	defer stream.Body.Close()
	start := time.Now()
	cancel()
	// Had the open stream held it, Shutdown would have run into its own
	// 10 s limit and run would return that error (context deadline
	// exceeded): a state, so this holds on a machine of any speed. How
	// long it took is logged.
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("shutdown with a stream open: %v", err)
		}
		t.Logf("shut down %v after the signal, with a stream open", time.Since(start).Round(time.Millisecond))
	case <-time.After(time.Minute): // a hang, not a slow machine
		t.Fatal("shutdown never finished")
	}
	if _, err := io.ReadAll(stream.Body); err != nil && !strings.Contains(err.Error(), "EOF") {
		t.Logf("stream ended with %v", err)
	}
}

// TestSecretKeySources: the key ring sealing two-factor secrets comes from
// DOORMAN_SECRET_KEY, else -secret-key-file, else (SQLite) a file beside
// the database created 0600 on the first start and read on the next; with
// PostgreSQL and neither, there is none (two-factor can't be turned on).
func TestSecretKeySources(t *testing.T) {
	dir := t.TempDir()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	none := func(string) string { return "" }
	dbPath := filepath.Join(dir, "d.db")
	first, err := openSecretBox(Config{DB: dbPath}, none, log)
	if err != nil || first == nil {
		t.Fatalf("default key file: %v", err)
	}
	if st, err := os.Stat(dbPath + ".key"); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("the key file beside the database: %v %v", st, err)
	}
	again, err := openSecretBox(Config{DB: dbPath}, none, log)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := again.Open(first.Seal([]byte("s"), "p"), "p"); err != nil || string(got) != "s" {
		t.Fatalf("the second start has another key: %v", err)
	}
	if box, err := openSecretBox(Config{DB: "postgres://x@127.0.0.1/db"}, none, log); err != nil || box != nil {
		t.Fatalf("PostgreSQL without a key: %v %v", box, err)
	}
	env := map[string]string{"DOORMAN_SECRET_KEY": strings.Repeat("A", 43) + "="}
	if box, err := openSecretBox(Config{DB: "postgres://x@127.0.0.1/db"}, func(k string) string { return env[k] }, log); err != nil || box == nil {
		t.Fatalf("DOORMAN_SECRET_KEY: %v", err)
	}
	env["DOORMAN_SECRET_KEY"] = "not a key"
	if _, err := openSecretBox(Config{DB: dbPath}, func(k string) string { return env[k] }, log); err == nil {
		t.Fatal("a malformed DOORMAN_SECRET_KEY was accepted")
	}
	own := filepath.Join(dir, "own.key")
	if _, err := openSecretBox(Config{DB: dbPath, SecretKeyFile: own}, none, log); err != nil {
		t.Fatal(err)
	}
	os.Chmod(own, 0o644)
	if _, err := openSecretBox(Config{DB: dbPath, SecretKeyFile: own}, none, log); err == nil {
		t.Fatal("a key file others can read was accepted")
	}
}

// TestMailSettings: SMTP needs the public origin links start with; a bad
// SMTP URL, From address or password file stops the start with a clear
// error; the password never shows in it.
func TestMailSettings(t *testing.T) {
	if _, err := parseConfig([]string{"-smtp-url", "smtp://doorman@smtp.example.com:587"}, func(string) string { return "" }); err == nil || !strings.Contains(err.Error(), "-base-url") {
		t.Fatalf("-smtp-url without -base-url: %v", err)
	}
	dir := t.TempDir()
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-smtp-url", "ftp://smtp.example.com", "-base-url", "https://id.example.com"}, "ftp"},
		{[]string{"-smtp-url", "smtp://doorman:hunter2secret@smtp.example.com:587", "-base-url", "https://id.example.com", "-smtp-password-file", filepath.Join(dir, "nope")}, "smtp-password-file"},
		{[]string{"-mail-from", "not an address"}, "-mail-from"},
		{[]string{"-base-url", "id.example.com"}, "-base-url"},
	} {
		args := append([]string{"-addr", "127.0.0.1:0", "-db", filepath.Join(dir, "m.db"), "-geoip-dir", filepath.Join(dir, "nodata")}, c.args...)
		err := run(t.Context(), args, func(string) string { return "" }, io.Discard, time.Now)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want an error about %s", c.args, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), "hunter2secret") {
			t.Errorf("%v: the error shows the password: %v", c.args, err)
		}
		// Refused before anything is opened: no database, no key file.
		if entries, err := os.ReadDir(dir); err != nil || len(entries) != 0 {
			t.Errorf("%v: the refusal left %v in its directory (%v)", c.args, entries, err)
		}
	}
}

// TestDevMailFlag: the development mail viewer (every reset link, so every
// account) exists only with -dev-mail, answers only a request from this
// machine, and run refuses the flag beside anything that makes a deployment.
func TestDevMailFlag(t *testing.T) {
	dir := t.TempDir()
	base := []string{"-db", filepath.Join(dir, "dev.db"), "-geoip-dir", filepath.Join(dir, "nodata")}
	none := func(string) string { return "" }
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-addr", "127.0.0.1:0", "-dev-mail", "-trusted-proxy", "127.0.0.1"}, "-trusted-proxy"},
		{[]string{"-addr", "127.0.0.1:0", "-dev-mail", "-base-url", "https://id.example.com"}, "-base-url"},
		{[]string{"-addr", "127.0.0.1:0", "-dev-mail", "-smtp-url", "smtp://doorman@smtp.example.com:587", "-base-url", "https://id.example.com"}, "-smtp-url"},
		{[]string{"-addr", "0.0.0.0:0", "-dev-mail"}, "loopback"},
	} {
		err := runOrStop(append(append([]string{}, base...), c.args...), none)
		if err == nil || !strings.Contains(err.Error(), "-dev-mail") || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want a refusal naming -dev-mail and %s", c.args, err, c.want)
		}
	}
	// The environment refuses the same way.
	env := map[string]string{"DOORMAN_DEV_MAIL": "true", "DOORMAN_TRUSTED_PROXY": "127.0.0.1"}
	if err := runOrStop(append([]string{"-addr", "127.0.0.1:0"}, base...), func(k string) string { return env[k] }); err == nil || !strings.Contains(err.Error(), "-trusted-proxy") {
		t.Errorf("DOORMAN_DEV_MAIL with DOORMAN_TRUSTED_PROXY: %v", err)
	}

	get := func(url, host string) int {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, url, nil)
		if err != nil {
			t.Fatal(err)
		}
		if host != "" {
			req.Host = host
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	for _, dev := range []bool{false, true} {
		url, stop := startRun(t, append(append([]string{"-addr", "127.0.0.1:0"}, base...), map[bool][]string{true: {"-dev-mail"}}[dev]...))
		if got, want := get(url+"/dev/mail", ""), map[bool]int{false: http.StatusNotFound, true: http.StatusOK}[dev]; got != want {
			t.Errorf("-dev-mail=%v: GET /dev/mail from this machine: %d, want %d", dev, got, want)
		}
		// What nginx on this machine would pass on: the public Host.
		if got := get(url+"/dev/mail", "id.example.com"); got != http.StatusNotFound {
			t.Errorf("-dev-mail=%v: GET /dev/mail with Host id.example.com: %d, want 404", dev, got)
		}
		stop()
	}
}

// runOrStop runs the program with args and returns its error; if it starts
// serving instead of refusing, it is stopped at once (and returns nil).
func runOrStop(args []string, getenv func(string) string) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	return run(ctx, args, getenv, writerFunc(func(p []byte) (int, error) { cancel(); return len(p), nil }), time.Now)
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// startRun runs the program with args until stop, and returns its URL.
func startRun(t *testing.T, args []string) (string, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out, w := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, args, func(string) string { return "" }, w, time.Now)
		w.Close()
	}()
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		cancel()
		t.Fatalf("no start-up line: %v (%v)", err, <-done)
	}
	go io.Copy(io.Discard, out)
	stop := func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	}
	return strings.TrimSpace(strings.TrimPrefix(line, "Doorman is running at ")), stop
}

// TestProviderThatCannotStartLeavesTheRestServing: a -base-url the
// OpenID Connect provider refuses as its issuer (plain http to another
// machine) does not stop Doorman, which served such deployments before the
// provider existed: it serves everything else, without the provider's
// endpoints. With the default (this machine's own address) the provider
// is on.
func TestProviderThatCannotStartLeavesTheRestServing(t *testing.T) {
	for _, c := range []struct {
		name      string
		args      []string
		discovery int
	}{
		{"default", nil, http.StatusOK},
		{"plain http elsewhere", []string{"-base-url", "http://doorman.example"}, http.StatusNotFound},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			ctx, cancel := context.WithCancel(context.Background())
			out, w := io.Pipe()
			done := make(chan error, 1)
			env := map[string]string{"DOORMAN_DB": filepath.Join(dir, "d.db"), "DOORMAN_GEOIP_DIR": filepath.Join(dir, "nodata")}
			go func() {
				done <- run(ctx, append([]string{"-addr", "127.0.0.1:0"}, c.args...), func(k string) string { return env[k] }, w, time.Now)
				w.Close()
			}()
			defer func() {
				cancel()
				if err := <-done; err != nil {
					t.Errorf("run: %v", err)
				}
			}()
			line, err := bufio.NewReader(out).ReadString('\n')
			if err != nil {
				t.Fatalf("no start-up line: %v", err)
			}
			url := strings.TrimSpace(strings.TrimPrefix(line, "Doorman is running at "))
			for path, want := range map[string]int{"/healthz": http.StatusOK, "/login": http.StatusOK, paths.OIDCDiscovery: c.discovery} {
				res, err := http.Get(url + path)
				if err != nil {
					t.Fatal(err)
				}
				res.Body.Close()
				if res.StatusCode != want {
					t.Errorf("GET %s: %d, want %d", path, res.StatusCode, want)
				}
			}
		})
	}
}

// recordingPruner records each prune pruneLoop asks for, with its cutoff.
type recordingPruner struct{ cutoffs map[string]time.Time }

func (p *recordingPruner) prune(what string, cutoff time.Time) (int64, error) {
	p.cutoffs[what] = cutoff
	return 0, nil
}

func (p *recordingPruner) PruneSessions(_ context.Context, c time.Time) (int64, error) {
	return p.prune("sessions", c)
}
func (p *recordingPruner) PruneLoginFailures(_ context.Context, c time.Time) (int64, error) {
	return p.prune("login failures", c)
}
func (p *recordingPruner) PruneSecurityEvents(_ context.Context, c time.Time) (int64, error) {
	return p.prune("history", c)
}
func (p *recordingPruner) PrunePendingSignIns(_ context.Context, c time.Time) (int64, error) {
	return p.prune("pending sign-ins", c)
}
func (p *recordingPruner) PruneDeviceAuthorizations(_ context.Context, c time.Time) (int64, error) {
	return p.prune("device authorizations", c)
}
func (p *recordingPruner) PruneLinkTokens(_ context.Context, c time.Time) (int64, error) {
	return p.prune("links", c)
}
func (p *recordingPruner) PruneMail(_ context.Context, c time.Time) (int64, error) {
	return p.prune("mail", c)
}
func (p *recordingPruner) PruneAuthRequests(_ context.Context, c time.Time) (int64, error) {
	return p.prune("auth requests", c)
}
func (p *recordingPruner) PruneGrants(_ context.Context, c time.Time) (int64, error) {
	return p.prune("grants", c)
}
func (p *recordingPruner) PruneLogoutDeliveries(_ context.Context, c time.Time) (int64, error) {
	return p.prune("logout deliveries", c)
}
func (p *recordingPruner) PrunePasskeyCeremonies(_ context.Context, c time.Time) (int64, error) {
	return p.prune("passkey ceremonies", c)
}

// TestPruneLoopPrunesEveryTable: one pass of the loop prunes every table
// that grows, each with its own cutoff (the OpenID Connect ones included).
func TestPruneLoopPrunesEveryTable(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	keep, historyKeep := 30*24*time.Hour, 90*24*time.Hour
	p := &recordingPruner{cutoffs: map[string]time.Time{}}
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // one pass, then the loop sees it is over
	pruneLoop(ctx, p, keep, historyKeep, slog.New(slog.DiscardHandler), func() time.Time { return now })
	day := 24 * time.Hour
	want := map[string]time.Time{
		"sessions": now.Add(-keep), "login failures": now.Add(-day), "history": now.Add(-historyKeep),
		"pending sign-ins": now, "device authorizations": now.Add(-time.Hour), "links": now.Add(-day),
		"mail": now.Add(-7 * day), "auth requests": now, "grants": now.Add(-day), "logout deliveries": now.Add(-historyKeep),
		"passkey ceremonies": now,
	}
	for what, c := range want {
		if got, ok := p.cutoffs[what]; !ok {
			t.Errorf("%s not pruned", what)
		} else if !got.Equal(c) {
			t.Errorf("%s pruned before %v, want %v", what, got, c)
		}
	}
	if len(p.cutoffs) != len(want) {
		t.Errorf("pruned %v, want %d tables", p.cutoffs, len(want))
	}
}

// TestDemoHasItsOwnDatabase: -demo without -db (or DOORMAN_DB) uses
// doorman-demo.db, never the doorman.db a plain run uses; pointed at a
// database with real accounts it refuses (exit code 2) and adds no demo
// account; a database with only the demo account in it is fine.
func TestDemoHasItsOwnDatabase(t *testing.T) {
	none := func(string) string { return "" }
	for _, c := range []struct {
		args []string
		env  map[string]string
		want string
	}{
		{nil, nil, "doorman.db"},
		{[]string{"-demo"}, nil, "doorman-demo.db"},
		{[]string{"-demo", "-db", "mine.db"}, nil, "mine.db"},
		{[]string{"-demo"}, map[string]string{"DOORMAN_DB": "env.db"}, "env.db"},
		{nil, map[string]string{"DOORMAN_DEMO": "true"}, "doorman-demo.db"},
	} {
		cfg, err := parseConfig(c.args, func(k string) string { return c.env[k] })
		if err != nil || cfg.DB != c.want {
			t.Errorf("%v %v: database %q (%v), want %q", c.args, c.env, cfg.DB, err, c.want)
		}
	}

	dir := t.TempDir()
	t.Chdir(dir)
	geo := []string{"-addr", "127.0.0.1:0", "-geoip-dir", filepath.Join(dir, "nodata")}
	ctx := context.Background()
	// A real database with one real account.
	store, err := storage.Open(ctx, "real.db", db.Options{Now: time.Now})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.CreateUser(ctx, "alice@example.com", "hash", false, time.Now()); err != nil {
		t.Fatal(err)
	}
	store.Close()
	err = runOrStop(append([]string{"-demo", "-db", "real.db"}, geo...), none)
	var ec exitCoder
	if err == nil || !errors.As(err, &ec) || ec.ExitCode() != 2 || !strings.Contains(err.Error(), "real.db has real accounts") {
		t.Fatalf("-demo -db real.db: %v, want a refusal with exit code 2", err)
	}
	store, err = storage.Open(ctx, "real.db", db.Options{Now: time.Now})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.UserByEmail(ctx, demo.Email); !errors.Is(err, db.ErrNotFound) {
		t.Errorf("the refused -demo wrote the demo account: %v", err)
	}
	store.Close()

	// Without -db: its own file, and no doorman.db.
	if err := runOrStop(append([]string{"-demo"}, geo...), none); err != nil {
		t.Fatalf("-demo: %v", err)
	}
	if _, err := os.Stat("doorman.db"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("-demo made doorman.db: %v", err)
	}
	store, err = storage.Open(ctx, "doorman-demo.db", db.Options{Now: time.Now})
	if err != nil {
		t.Fatal(err)
	}
	if u, err := store.UserByEmail(ctx, demo.Email); err != nil || !u.IsDemo {
		t.Errorf("doorman-demo.db has no demo account: %v %v", u, err)
	}
	// Another database holding only the demo account takes -demo.
	if err := runOrStop(append([]string{"-demo", "-db", "only-demo.db"}, geo...), none); err != nil {
		t.Fatalf("-demo on a new database: %v", err)
	}
	if err := runOrStop(append([]string{"-demo", "-db", "only-demo.db"}, geo...), none); err != nil {
		t.Fatalf("-demo on a database with only the demo account: %v", err)
	}
	// An account someone made while trying the demo, in its own file, does
	// not stop the next -demo.
	if _, err := store.CreateUser(ctx, "trying@example.com", "hash", false, time.Now()); err != nil {
		t.Fatal(err)
	}
	store.Close()
	if err := runOrStop(append([]string{"-demo"}, geo...), none); err != nil {
		t.Fatalf("-demo after an account was made in its own file: %v", err)
	}
}
