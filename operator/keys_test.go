package operator_test

import (
	"context"
	"encoding/base64"
	"net/http/httptest"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"doorman/db"
	"doorman/oidcprovider"
	"doorman/secretbox"
	"doorman/storage"
)

// keyRing gives the environment the server's key ring: on SQLite the
// file beside the database the server makes (where the commands look by
// default), on PostgreSQL DOORMAN_SECRET_KEY.
func keyRing(t *testing.T, e *env) *secretbox.Box {
	t.Helper()
	if !storage.IsPostgres(e.dsn) {
		box, _, err := secretbox.LoadOrCreate(e.dsn + ".key")
		if err != nil {
			t.Fatal(err)
		}
		return box
	}
	k := make([]byte, secretbox.KeySize)
	k[0] = 1
	e.vars["DOORMAN_SECRET_KEY"] = base64.StdEncoding.EncodeToString(k)
	box, err := secretbox.New(k)
	if err != nil {
		t.Fatal(err)
	}
	return box
}

// firstKey makes the signing key as the server's first sign-in does.
func firstKey(t *testing.T, e *env, box *secretbox.Box) db.SigningKey {
	t.Helper()
	k, err := oidcprovider.NewSigningKey(box, e.now)
	if err != nil {
		t.Fatal(err)
	}
	if k, err = e.store.EnsureSigningKey(context.Background(), k); err != nil {
		t.Fatal(err)
	}
	return k
}

func (e *env) signingKeys(t *testing.T, at time.Time) []db.SigningKey {
	t.Helper()
	keys, err := e.store.SigningKeys(context.Background(), at)
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

// TestKeysRotate: `keys rotate` makes a new signing key, sealed with the
// server's key ring (the provider starts on it and publishes both), and
// keeps the old one published until the time asked (an hour by default);
// too short a time is refused; `keys list` shows them.
func TestKeysRotate(t *testing.T) {
	eachStore(t, func(t *testing.T, e *env) {
		if out, err := e.run("keys", "list"); err != nil || !strings.Contains(out, "No signing key yet") {
			t.Fatalf("keys list before any: %v %q", err, out)
		}
		box := keyRing(t, e)
		old := firstKey(t, e, box)
		e.now = t0.Add(time.Hour)

		if out, err := e.run("keys", "rotate", "--publish-for", "9m"); err == nil || !strings.Contains(err.Error(), "at least 10m") || out != "" {
			t.Fatalf("--publish-for 9m: %v %q", err, out)
		}
		if keys := e.signingKeys(t, e.now); len(keys) != 1 || keys[0].ID != old.ID {
			t.Fatalf("a refused rotation changed the keys: %+v", keys)
		}

		out, err := e.run("keys", "rotate", "--publish-for", "2h")
		if err != nil {
			t.Fatal(err)
		}
		keys := e.signingKeys(t, e.now)
		if len(keys) != 2 || keys[1].ID != old.ID || keys[0].ID == old.ID {
			t.Fatalf("after rotate: %+v", keys)
		}
		cur, prev := keys[0], keys[1]
		until := e.now.Add(2 * time.Hour)
		if !cur.RetiredAt.IsZero() || cur.Algorithm != "RS256" || !cur.CreatedAt.Equal(e.now) ||
			!prev.RetiredAt.Equal(e.now) || !prev.ExpiresAt.Equal(until) {
			t.Fatalf("after rotate: new %+v, old %+v", cur, prev)
		}
		if want := "Rotated the signing key: " + cur.ID + " signs from now on; " + old.ID + " signs no more and stays published until 1 Mar 2026, 15:00 UTC.\n"; out != want {
			t.Fatalf("keys rotate printed %q, want %q", out, want)
		}
		if keys := e.signingKeys(t, until); len(keys) != 1 || keys[0].ID != cur.ID {
			t.Fatalf("the old key is still published at %v: %+v", until, keys)
		}
		if strings.Contains(string(cur.PrivateSealed), "PRIVATE") || len(cur.PrivateSealed) == 0 {
			t.Fatal("the new private key is not sealed")
		}

		// The server's provider opens the new key with its ring, and
		// publishes both.
		p, err := oidcprovider.New(context.Background(), oidcprovider.Config{Issuer: "http://127.0.0.1", Store: e.store, Box: box,
			Now: func() time.Time { return e.now }, LoginURL: func(id string) string { return "/continue?id=" + id }})
		if err != nil {
			t.Fatalf("the provider does not start on the new key: %v", err)
		}
		rec := httptest.NewRecorder()
		p.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "http://127.0.0.1"+oidcprovider.Keys, nil))
		if body := rec.Body.String(); !strings.Contains(body, `"`+cur.ID+`"`) || !strings.Contains(body, `"`+old.ID+`"`) {
			t.Fatalf("JWKS %d: %s", rec.Code, body)
		}

		out, err = e.run("keys", "list")
		if err != nil {
			t.Fatal(err)
		}
		want := []string{
			"KID               ALGORITHM  CREATED                RETIRED                PUBLISHED UNTIL",
			cur.ID + "  RS256      1 Mar 2026, 13:00 UTC  -                      while it signs",
			old.ID + "  RS256      1 Mar 2026, 12:00 UTC  1 Mar 2026, 13:00 UTC  1 Mar 2026, 15:00 UTC",
		}
		if got := strings.Split(strings.TrimSuffix(out, "\n"), "\n"); !reflect.DeepEqual(got, want) {
			t.Fatalf("keys list:\n%s\nwant:\n%s", out, strings.Join(want, "\n"))
		}

		// By default the old key stays published for an hour.
		e.now = e.now.Add(time.Minute)
		if _, err := e.run("keys", "rotate"); err != nil {
			t.Fatal(err)
		}
		keys = e.signingKeys(t, e.now)
		if len(keys) != 3 || keys[1].ID != cur.ID || !keys[1].ExpiresAt.Equal(e.now.Add(time.Hour)) {
			t.Fatalf("after the default rotate: %+v", keys)
		}
	})
}

// TestKeysRotateRefusesWithoutTheServersKeyRing: without a key ring, or
// with one that does not open the signing key (not the server's: the
// server could not open what it sealed), `keys rotate` refuses and
// changes nothing; it never creates a key file.
func TestKeysRotateRefusesWithoutTheServersKeyRing(t *testing.T) {
	eachStore(t, func(t *testing.T, e *env) {
		other, err := secretbox.New(make([]byte, secretbox.KeySize))
		if err != nil {
			t.Fatal(err)
		}
		old := firstKey(t, e, other)
		if _, err := e.run("keys", "rotate"); err == nil || !strings.Contains(err.Error(), "no secret key ring") {
			t.Fatalf("without a key ring: %v", err)
		}
		if _, err := os.Stat(e.dsn + ".key"); err == nil {
			t.Fatal("keys rotate created a key file")
		}
		keyRing(t, e) // not the ring the key was sealed with
		if _, err := e.run("keys", "rotate"); err == nil || !strings.Contains(err.Error(), "not the one the server uses") {
			t.Fatalf("with another key ring: %v", err)
		}
		if keys := e.signingKeys(t, e.now); len(keys) != 1 || keys[0].ID != old.ID {
			t.Fatalf("a refused rotation changed the keys: %+v", keys)
		}
	})
}
