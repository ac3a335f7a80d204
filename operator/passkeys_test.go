package operator_test

import (
	"context"
	"encoding/hex"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"doorman/db"
	"doorman/db/storetest"
)

// passkeyEnv is alice with two passkeys (a Windows Hello one, this device
// only, used for two sessions, one clone warning; and a synced one of
// unknown provider, never used) and bob with one.
func passkeyEnv(t *testing.T, e *env) (alice, bob db.User, hello, synced, bobs db.Passkey) {
	t.Helper()
	ctx := context.Background()
	var err error
	if alice, err = e.store.CreateUser(ctx, "alice@example.com", "hash", false, t0.Add(-48*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if bob, err = e.store.CreateUser(ctx, "bob@example.com", "hash", false, t0.Add(-48*time.Hour)); err != nil {
		t.Fatal(err)
	}
	add := func(u db.User, name string, at time.Time, change func(*db.Passkey)) db.Passkey {
		p := storetest.Passkey(name, u.ID, at)
		if change != nil {
			change(&p)
		}
		p, err := e.store.AddPasskey(ctx, p, 20, u.Epoch)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	windowsHello, _ := hex.DecodeString("08987058cadc4b81b6e130de50dcbe96")
	hello = add(alice, "Work PC", t0.Add(-24*time.Hour), func(p *db.Passkey) {
		p.AAGUID, p.BackupEligible, p.BackupState = windowsHello, false, false
	})
	synced = add(alice, "Phone", t0.Add(-23*time.Hour), func(p *db.Passkey) { p.AAGUID = make([]byte, 16) })
	bobs = add(bob, "Bob's", t0.Add(-24*time.Hour), nil)
	signIn := func(u db.User, p db.Passkey, id string, count uint32, at time.Time) {
		s := storetest.Session(id, u.ID, at)
		s.AuthMethod = db.MethodPasskey
		if _, _, err := e.store.SignInWithPasskey(ctx, db.PasskeyUse{PasskeyID: p.ID, SignCount: count, At: at}, s, 0, u.Epoch); err != nil {
			t.Fatal(err)
		}
	}
	signIn(alice, hello, "hello-1", 5, t0.Add(-2*time.Hour))
	signIn(alice, hello, "hello-2", 3, t0.Add(-time.Hour)) // the counter went back
	signIn(bob, bobs, "bob-1", 0, t0.Add(-time.Hour))
	pw := storetest.Session("alice-pw", alice.ID, t0.Add(-time.Hour))
	if _, err := e.store.CreateSession(ctx, pw, 0, alice.Epoch); err != nil {
		t.Fatal(err)
	}
	return alice, bob, hello, synced, bobs
}

// TestUsersPasskeys: the list shows each passkey's id, name, provider,
// kind, times (apiclient.TimeLayout) and clone warnings.
func TestUsersPasskeys(t *testing.T) {
	eachStore(t, func(t *testing.T, e *env) {
		_, _, hello, synced, _ := passkeyEnv(t, e)
		out, err := e.run("users", "passkeys", "alice@example.com")
		if err != nil {
			t.Fatal(err)
		}
		for _, row := range []string{
			`(?m)^alice@example\.com: 2 passkey\(s\)$`,
			`(?m)^ID\s+NAME\s+PROVIDER\s+KIND\s+CREATED\s+LAST USED\s+CLONE WARNINGS$`,
			`(?m)^` + strconv.FormatInt(hello.ID, 10) + `\s+Work PC\s+Windows Hello\s+this device only\s+28 Feb 2026, 12:00 UTC\s+1 Mar 2026, 11:00 UTC\s+1, last 1 Mar 2026, 11:00 UTC$`,
			`(?m)^` + strconv.FormatInt(synced.ID, 10) + `\s+Phone\s+unknown\s+synced\s+28 Feb 2026, 13:00 UTC\s+never\s+none$`,
			`may have been copied`,
		} {
			if !regexp.MustCompile(row).MatchString(out) {
				t.Errorf("users passkeys lacks %s:\n%s", row, out)
			}
		}
		if strings.Contains(out, "Bob's") {
			t.Errorf("alice's list shows bob's passkey:\n%s", out)
		}
		if _, err := e.run("users", "passkeys", "nobody@example.com"); err == nil || !strings.Contains(err.Error(), "no user with email") {
			t.Errorf("an unknown user: %v", err)
		}
	})
}

// TestUsersPasskeysRemove: removing keeps its sessions unless
// --end-sessions; the history says the operator did it; another user's
// id, an unknown one, or none changes nothing.
func TestUsersPasskeysRemove(t *testing.T) {
	eachStore(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		alice, bob, hello, synced, bobs := passkeyEnv(t, e)
		for _, args := range [][]string{
			{"users", "passkeys", "remove", "alice@example.com", strconv.FormatInt(bobs.ID, 10)},
			{"users", "passkeys", "remove", "alice@example.com", "99999"},
			{"users", "passkeys", "remove", "alice@example.com", "Phone"},
			{"users", "passkeys", "remove", "alice@example.com"},
		} {
			if out, err := e.run(args...); err == nil {
				t.Errorf("%v: no error:\n%s", args, out)
			}
		}
		if keys, _ := e.store.ListPasskeys(ctx, bob.ID); len(keys) != 1 {
			t.Fatalf("bob's passkeys: %+v", keys)
		}
		if keys, _ := e.store.ListPasskeys(ctx, alice.ID); len(keys) != 2 {
			t.Fatalf("alice's passkeys: %+v", keys)
		}

		out, err := e.run("users", "passkeys", "remove", "alice@example.com", strconv.FormatInt(synced.ID, 10))
		if err != nil || !strings.Contains(out, `Removed passkey `+strconv.FormatInt(synced.ID, 10)+` ("Phone") of alice@example.com; the 0 session(s) it signed in stay`) {
			t.Fatalf("remove: %v\n%s", err, out)
		}
		out, err = e.run("users", "passkeys", "remove", "alice@example.com", strconv.FormatInt(hello.ID, 10), "--end-sessions")
		if err != nil || !strings.Contains(out, `("Work PC") of alice@example.com and ended 2 session(s) it signed in.`) {
			t.Fatalf("remove --end-sessions: %v\n%s", err, out)
		}
		if keys, _ := e.store.ListPasskeys(ctx, alice.ID); len(keys) != 0 {
			t.Errorf("alice's passkeys after: %+v", keys)
		}
		live, err := e.store.ListSessions(ctx, alice.ID, e.now)
		if err != nil || len(live) != 1 || live[0].ID != "alice-pw" {
			t.Errorf("alice's live sessions: %+v, %v; want the password one", live, err)
		}
		events, err := e.store.ListSecurityEvents(ctx, alice.ID, 0, time.Time{}, 50)
		if err != nil {
			t.Fatal(err)
		}
		removed := 0
		for _, ev := range events {
			if ev.Kind == db.EventPasskeyRemoved {
				removed++
				if ev.By != "operator" {
					t.Errorf("a removal recorded by %q, want operator", ev.By)
				}
			}
		}
		if removed != 2 {
			t.Errorf("%d removals in the history, want 2", removed)
		}
	})
}

// TestUsersDisableListsPasskeys: disabling says which passkeys the user
// has and that they cannot sign in while it is disabled.
func TestUsersDisableListsPasskeys(t *testing.T) {
	eachStore(t, func(t *testing.T, e *env) {
		_, _, hello, synced, _ := passkeyEnv(t, e)
		out, err := e.run("users", "disable", "alice@example.com")
		if err != nil {
			t.Fatal(err)
		}
		want := `Its 2 passkey(s) stay stored but cannot sign in while the account is disabled: ` +
			strconv.FormatInt(hello.ID, 10) + ` "Work PC", ` + strconv.FormatInt(synced.ID, 10) + ` "Phone".`
		if !strings.Contains(out, "Disabled alice@example.com and ended 3 session(s).") || !strings.Contains(out, want) {
			t.Errorf("users disable:\n%s\nwant %s", out, want)
		}
		if out, err := e.run("users", "passkeys", "alice@example.com"); err != nil || !strings.Contains(out, "(disabled: none of them can sign in)") {
			t.Errorf("users passkeys of a disabled user: %v\n%s", err, out)
		}
	})
}

// TestUsersResetNamesPasskeys: a reset (with or without two-factor) ends
// what is signed in, not the passkeys that sign in; the operator is told
// which still do and how to remove them, and they are still there.
func TestUsersResetNamesPasskeys(t *testing.T) {
	eachStore(t, func(t *testing.T, e *env) {
		_, _, hello, synced, _ := passkeyEnv(t, e)
		want := `Its 2 passkey(s) still sign in: ` + strconv.FormatInt(hello.ID, 10) + ` "Work PC", ` +
			strconv.FormatInt(synced.ID, 10) + ` "Phone". Remove any its owner does not recognise: doorman users passkeys remove alice@example.com ID.`
		for _, cmd := range []string{"reset", "reset-2fa"} {
			out, err := e.run("users", cmd, "alice@example.com")
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(out, want) {
				t.Errorf("users %s:\n%s\nwant %s", cmd, out, want)
			}
		}
		if out, err := e.run("users", "passkeys", "alice@example.com"); err != nil || !strings.Contains(out, "Work PC") || !strings.Contains(out, "Phone") {
			t.Errorf("users passkeys after the resets: %v\n%s", err, out)
		}
	})
}
