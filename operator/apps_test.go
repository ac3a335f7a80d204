package operator_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"doorman/db"
	"doorman/oidcprovider"
	"doorman/secretbox"
)

// printed returns the value of the line "name: value" of out, "" if
// there is none.
func printed(out, name string) string {
	m := regexp.MustCompile(`(?m)^` + name + `: (\S+)$`).FindStringSubmatch(out)
	if m == nil {
		return ""
	}
	return m[1]
}

// TestAppsAdd: `apps add` without --redirect-uri registers a device-flow
// tool as before; with one, an OpenID Connect app with every flag stored
// as given; a confidential app's secret is printed once, on a line of its
// own, stored only as its hash, and is what the provider accepts.
func TestAppsAdd(t *testing.T) {
	eachStore(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		out, err := e.run("apps", "add", "--name", "Backup tool")
		id := regexp.MustCompile(`client_id: (app_[a-z2-7]+)`).FindStringSubmatch(out)
		if err != nil || id == nil || strings.Contains(out, "client_secret") {
			t.Fatalf("device-flow app: %v %q", err, out)
		}
		if a, err := e.store.App(ctx, id[1]); err != nil || a.OIDC() || a.SecretHash != nil || a.Name != "Backup tool" {
			t.Fatalf("device-flow app stored as %+v, %v", a, err)
		}

		out, err = e.run("apps", "add", "--name", "Wiki",
			"--redirect-uri", "https://wiki.example.com/callback?tenant=1",
			"--redirect-uri", "http://127.0.0.1:8080/callback",
			"--post-logout-redirect-uri", "https://wiki.example.com/",
			"--post-logout-redirect-uri", "http://localhost:8080/",
			"--backchannel-logout-uri", "https://wiki.example.com/logout/backchannel",
			"--first-party")
		clientID := printed(out, "client_id")
		if err != nil || !strings.HasPrefix(clientID, "app_") || printed(out, "client_secret") != "" ||
			!strings.Contains(out, "OpenID Connect, public") || !strings.Contains(out, "nothing is normalised") {
			t.Fatalf("public app: %v %q", err, out)
		}
		a, err := e.store.App(ctx, clientID)
		if err != nil {
			t.Fatal(err)
		}
		want := db.App{ClientID: clientID, Name: "Wiki", CreatedAt: t0, FirstParty: true,
			RedirectURIs:           []string{"http://127.0.0.1:8080/callback", "https://wiki.example.com/callback?tenant=1"},
			PostLogoutRedirectURIs: []string{"http://localhost:8080/", "https://wiki.example.com/"},
			BackchannelLogoutURI:   "https://wiki.example.com/logout/backchannel"}
		a.CreatedAt = a.CreatedAt.UTC()
		if !reflect.DeepEqual(a, want) {
			t.Fatalf("public app stored as\n%+v\nwant\n%+v", a, want)
		}

		out, err = e.run("apps", "add", "--name", "Grafana", "--confidential",
			"--redirect-uri", "https://grafana.example.com/login/generic_oauth", "--redirect-uri", "http://[::1]:3000/cb")
		clientID, secret := printed(out, "client_id"), printed(out, "client_secret")
		if err != nil || clientID == "" || !strings.Contains(out, "OpenID Connect, confidential") {
			t.Fatalf("confidential app: %v %q", err, out)
		}
		if raw, err := base64.RawURLEncoding.DecodeString(secret); err != nil || len(raw) != 32 {
			t.Fatalf("client_secret %q is not 256 bits: %v", secret, err)
		}
		a, err = e.store.App(ctx, clientID)
		sum := sha256.Sum256([]byte(secret))
		if err != nil || a.FirstParty || !reflect.DeepEqual(a.SecretHash, sum[:]) || strings.Contains(string(a.SecretHash), secret) {
			t.Fatalf("confidential app stored as %+v, %v", a, err)
		}
		// The provider itself accepts the secret, and refuses another.
		box, err := secretbox.New(make([]byte, secretbox.KeySize))
		if err != nil {
			t.Fatal(err)
		}
		p, err := oidcprovider.New(ctx, oidcprovider.Config{Issuer: "http://127.0.0.1", Store: e.store, Box: box,
			Now: func() time.Time { return e.now }, LoginURL: func(id string) string { return "/continue?id=" + id }})
		if err != nil {
			t.Fatal(err)
		}
		introspect := func(secret string) int {
			req := httptest.NewRequest("POST", "http://127.0.0.1"+oidcprovider.Introspect, strings.NewReader(url.Values{"token": {"x"}}.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.SetBasicAuth(clientID, secret)
			rec := httptest.NewRecorder()
			p.Handler().ServeHTTP(rec, req)
			return rec.Code
		}
		if got := introspect(secret); got != http.StatusOK {
			t.Fatalf("introspection with the printed secret: %d", got)
		}
		if got := introspect(secret[1:] + "A"); got == http.StatusOK {
			t.Fatal("introspection with another secret: 200")
		}
	})
}

// TestAppsAddRefusesBadInput: every URI that is not absolute https (or
// http on loopback) without fragment or credentials, and every OIDC-only
// flag on a device-flow tool, is refused with a clear error, writing
// nothing.
func TestAppsAddRefusesBadInput(t *testing.T) {
	eachStore(t, func(t *testing.T, e *env) {
		if _, err := e.run("apps", "add", "--name", "Existing", "--redirect-uri", "https://existing.example.com/cb"); err != nil {
			t.Fatal(err)
		}
		before := e.apps(t)
		const ok = "https://wiki.example.com/cb"
		for _, c := range []struct {
			args []string
			want string
		}{
			{[]string{"--redirect-uri", "http://wiki.example.com/cb"}, "must be https"},
			{[]string{"--redirect-uri", "http://127.0.0.1.example.com/cb"}, "must be https"},
			{[]string{"--redirect-uri", "http://localhost.example.com/cb"}, "must be https"},
			{[]string{"--redirect-uri", "/cb"}, "absolute"},
			{[]string{"--redirect-uri", "wiki.example.com/cb"}, "absolute"},
			{[]string{"--redirect-uri", "https:///cb"}, "absolute"},
			{[]string{"--redirect-uri", "https:wiki.example.com/cb"}, "absolute"},
			{[]string{"--redirect-uri", "https://wiki.example.com/cb#top"}, "fragment"},
			{[]string{"--redirect-uri", "https://wiki.example.com/cb#"}, "fragment"},
			{[]string{"--redirect-uri", "https://user:pw@wiki.example.com/cb"}, "user name or password"},
			{[]string{"--redirect-uri", "https://user@wiki.example.com/cb"}, "user name or password"},
			{[]string{"--redirect-uri", "javascript://wiki.example.com/%0aalert(1)"}, "must be https"},
			{[]string{"--redirect-uri", "com.example.app:/cb"}, "absolute"},
			{[]string{"--redirect-uri", "ftp://wiki.example.com/cb"}, "must be https"},
			{[]string{"--redirect-uri", "https://wiki.example.com/a b"}, "percent-encoded"},
			{[]string{"--redirect-uri", "https://wiki.example.com/café"}, "percent-encoded"},
			{[]string{"--redirect-uri", "https://wiki.example.com/" + strings.Repeat("a", 2000)}, "longer than 2000"},
			{[]string{"--redirect-uri", ok, "--redirect-uri", ok}, "given twice"},
			{[]string{"--redirect-uri", ok, "--post-logout-redirect-uri", "http://wiki.example.com/"}, "must be https"},
			{[]string{"--redirect-uri", ok, "--post-logout-redirect-uri", "https://wiki.example.com/#x"}, "fragment"},
			{[]string{"--redirect-uri", ok, "--backchannel-logout-uri", "http://wiki.example.com/bc"}, "must be https"},
			{[]string{"--redirect-uri", ok, "--backchannel-logout-uri", "https://wiki.example.com/bc#x"}, "fragment"},
			{[]string{"--redirect-uri", ok, "--backchannel-logout-uri", "https://u:p@wiki.example.com/bc"}, "user name or password"},
			{[]string{"--redirect-uri", ok, "--backchannel-logout-uri", "bc"}, "absolute"},
			{[]string{"--confidential"}, "--confidential only apply to an OpenID Connect app"},
			{[]string{"--first-party"}, "--first-party only apply"},
			{[]string{"--backchannel-logout-uri", "https://wiki.example.com/bc"}, "--backchannel-logout-uri only apply"},
			{[]string{"--post-logout-redirect-uri", "https://wiki.example.com/"}, "--post-logout-redirect-uri only apply"},
		} {
			args := append([]string{"apps", "add", "--name", "Wiki"}, c.args...)
			out, err := e.run(args...)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("%q: %v (out %q), want an error saying %q", c.args, err, out, c.want)
			}
			if out != "" {
				t.Errorf("%q printed %q", c.args, out)
			}
		}
		if _, err := e.run("apps", "add", "--redirect-uri", ok); err == nil || !strings.Contains(err.Error(), "--name is required") {
			t.Errorf("no name: %v", err)
		}
		if after := e.apps(t); !reflect.DeepEqual(before, after) {
			t.Fatalf("refused input changed the apps:\n%+v\n%+v", before, after)
		}
	})
}

// TestAppsListAndRemove: `apps list` shows every app's kind and URIs;
// `apps remove` removes an OpenID Connect app and says what ended (and
// that the app is sent no logout).
func TestAppsListAndRemove(t *testing.T) {
	eachStore(t, func(t *testing.T, e *env) {
		if out, err := e.run("apps", "list"); err != nil || out != "No apps registered.\n" {
			t.Fatalf("empty list: %v %q", err, out)
		}
		out, err := e.run("apps", "add", "--name", "Backup tool")
		if err != nil {
			t.Fatal(err)
		}
		tool := regexp.MustCompile(`app_[a-z2-7]+`).FindString(out)
		e.now = t0.Add(time.Minute) // oldest first
		out, err = e.run("apps", "add", "--name", "Grafana", "--confidential", "--first-party",
			"--redirect-uri", "https://grafana.example.com/a", "--redirect-uri", "https://grafana.example.com/b",
			"--post-logout-redirect-uri", "https://grafana.example.com/",
			"--backchannel-logout-uri", "https://grafana.example.com/bc")
		if err != nil {
			t.Fatal(err)
		}
		grafana := printed(out, "client_id")
		out, err = e.run("apps", "list")
		if err != nil {
			t.Fatal(err)
		}
		want := tool + `  Backup tool
  kind:                       device flow (command-line tool)
  registered:                 1 Mar 2026, 12:00 UTC

` + grafana + `  Grafana
  kind:                       OpenID Connect, confidential, first-party (no consent asked)
  redirect URIs:              https://grafana.example.com/a
                              https://grafana.example.com/b
  post-logout redirect URIs:  https://grafana.example.com/
  back-channel logout URI:    https://grafana.example.com/bc
  registered:                 1 Mar 2026, 12:01 UTC
`
		if out != want {
			t.Fatalf("apps list:\n%s\nwant:\n%s", out, want)
		}

		out, err = e.run("apps", "remove", grafana)
		if err != nil || !strings.Contains(out, `Removed "Grafana" (`+grafana+`): every access and refresh token it held ended`) ||
			!strings.Contains(out, "No logout is sent to a removed app") {
			t.Fatalf("apps remove: %v %q", err, out)
		}
		if _, err := e.store.App(context.Background(), grafana); !errors.Is(err, db.ErrNotFound) {
			t.Fatalf("removed app: %v", err)
		}
		if _, err := e.run("apps", "remove", grafana); err == nil || !strings.Contains(err.Error(), "no app with client_id") {
			t.Fatalf("removing it twice: %v", err)
		}
		if out, err := e.run("apps", "remove", tool); err != nil || out != `Removed "Backup tool" (`+tool+") and ended 0 of its token(s).\n" {
			t.Fatalf("removing the tool: %v %q", err, out)
		}
		if apps := e.apps(t); len(apps) != 0 {
			t.Fatalf("apps left: %+v", apps)
		}
	})
}
