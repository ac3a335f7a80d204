package storetest

import (
	"errors"
	"strings"
	"testing"
	"time"

	"doorman/db"
)

// testRenameSession: RenameSession names a live session of the user's
// device, every read of the session carries the name, the history records
// it (from the acting browser) and nothing ends; another user's, an
// unknown or an ended session changes nothing.
func testRenameSession(t *testing.T, f *fixture) {
	h := newHistory(f)
	a, b := f.user(t, "a@example.com"), f.user(t, "b@example.com")
	s1, s2, sb := device("a1", a.ID, T0), device("a2", a.ID, T0), device("b1", b.ID, T0)
	for _, s := range []db.Session{s1, s2, sb} {
		f.session(t, s)
	}
	h.expect(t, "the sign-ins", a.ID, signedIn(s1), signedIn(s2))
	h.expect(t, "b's sign-in", b.ID, signedIn(sb))
	f.rec.Take()
	actor := db.Actor{Device: "Firefox on Linux", Location: "Paris, France", IP: "203.0.113.9"}
	ctx := db.WithActor(f.ctx, actor)
	now := T0.Add(time.Minute)
	got, err := f.s.RenameSession(ctx, a.ID, "a1", "Anna's MacBook", now)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != "a1" || got.DeviceName != "Anna's MacBook" || got.DeviceLabel != s1.DeviceLabel {
		t.Fatalf("RenameSession returned %+v", got)
	}
	h.expect(t, "a rename", a.ID, db.SecurityEvent{UserID: a.ID, Kind: db.EventDeviceRenamed, At: now, SessionID: "a1",
		Detail: "Anna's MacBook", Method: s1.DeviceLabel, Device: actor.Device, Location: actor.Location, IP: actor.IP})
	if ev := f.rec.Take(); len(ev) != 0 {
		t.Errorf("a rename reported %+v", ev)
	}
	if live := f.live(t, a.ID, now); live != "a1,a2" && live != "a2,a1" {
		t.Fatalf("a rename ended something: live %s", live)
	}
	if s, _, err := f.s.SessionWithUser(f.ctx, "a1"); err != nil || s.DeviceName != "Anna's MacBook" {
		t.Fatalf("SessionWithUser: %q, %v", s.DeviceName, err)
	}
	sums, err := f.s.ListSessionSummaries(f.ctx, a.ID, now)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range sums {
		if want := map[string]string{"a1": "Anna's MacBook"}[s.ID]; s.DeviceName != want {
			t.Errorf("summary of %s named %q, want %q", s.ID, s.DeviceName, want)
		}
	}
	if o, err := f.s.SecurityOverview(f.ctx, a.ID, now, T0, 5); err != nil || len(o.Sessions) != 2 {
		t.Fatalf("SecurityOverview: %+v, %v", o.Sessions, err)
	} else {
		for _, s := range o.Sessions {
			if s.ID == "a1" && s.DeviceName != "Anna's MacBook" {
				t.Errorf("the overview's a1 is named %q", s.DeviceName)
			}
		}
	}
	names, err := f.s.SessionNames(f.ctx, a.ID, []string{"a1", "a2", "b1", "nope"})
	if err != nil || len(names) != 1 || names["a1"] != "Anna's MacBook" {
		t.Fatalf("SessionNames: %v, %v", names, err)
	}

	// Refused: b's session by a, an unknown one, an ended one.
	if _, err := f.s.RenameSession(ctx, b.ID, "b1", "Mine", now); err != nil {
		t.Fatal(err)
	}
	h.expect(t, "b's own rename", b.ID, db.SecurityEvent{UserID: b.ID, Kind: db.EventDeviceRenamed, At: now, SessionID: "b1",
		Detail: "Mine", Method: sb.DeviceLabel, Device: actor.Device, Location: actor.Location, IP: actor.IP})
	if names, err := f.s.SessionNames(f.ctx, a.ID, []string{"b1"}); err != nil || len(names) != 0 {
		t.Fatalf("a sees b's names: %v, %v", names, err)
	}
	if _, err := f.s.RevokeSession(f.ctx, a.ID, "a2", db.ReasonRevoked, "a1", now); err != nil {
		t.Fatal(err)
	}
	h.expect(t, "an ending", a.ID, endedEvent(s2, db.ReasonRevoked, "a1", now))
	f.rec.Take()
	before := f.dump(t)
	for _, c := range []struct {
		user     int64
		id, what string
	}{
		{a.ID, "b1", "another user's session"}, {a.ID, "zz", "an unknown session"}, {a.ID, "a2", "an ended session"},
	} {
		if _, err := f.s.RenameSession(ctx, c.user, c.id, "Taken", now); !errors.Is(err, db.ErrNotFound) {
			t.Errorf("renaming %s: %v, want ErrNotFound", c.what, err)
		}
		f.unchanged(t, before, "renaming "+c.what)
	}
	// "" removes the name.
	if got, err := f.s.RenameSession(f.ctx, a.ID, "a1", "", now); err != nil || got.DeviceName != "" {
		t.Fatalf("removing the name: %+v, %v", got, err)
	}
	h.expect(t, "a name removed", a.ID, db.SecurityEvent{UserID: a.ID, Kind: db.EventDeviceRenamed, At: now, SessionID: "a1",
		Method: s1.DeviceLabel})
}

// testHistorySearch: FilterSecurityEvents with a search keeps the user's
// entries whose device, place, address, detail or session's device name
// contains it, ignoring case, with LIKE's wildcards taken literally, or
// whose kind the caller matched; never another user's.
func testHistorySearch(t *testing.T, f *fixture) {
	a, b := f.user(t, "a@example.com"), f.user(t, "b@example.com")
	record := func(e db.SecurityEvent) {
		t.Helper()
		if err := f.s.RecordSecurityEvent(f.ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	s1 := device("a1", a.ID, T0) // Device a1, Place a1, address of a1
	f.session(t, s1)
	record(db.SecurityEvent{UserID: a.ID, Kind: db.EventSignInFailed, At: T0, Device: "Safari on iPhone", Location: "Berlin, Germany", IP: "203.0.113.7", Detail: "one"})
	record(db.SecurityEvent{UserID: a.ID, Kind: db.EventTokenCreated, At: T0, Detail: "100%_sure"})
	record(db.SecurityEvent{UserID: a.ID, Kind: db.EventPasswordChanged, At: T0, Detail: "1000 sure"})
	// b's entries match every search below: none may show in a's.
	for _, d := range []string{"Safari on iPhone", "Device a1", "Anna's"} {
		record(db.SecurityEvent{UserID: b.ID, Kind: db.EventSignInFailed, At: T0, Device: d, Location: "Berlin, Germany", IP: "203.0.113.7", Detail: "100%_sure"})
	}
	sb := device("a1b", b.ID, T0)
	f.session(t, sb)
	if _, err := f.s.RenameSession(f.ctx, b.ID, "a1b", "Anna's laptop", T0); err != nil {
		t.Fatal(err)
	}
	if _, err := f.s.RenameSession(f.ctx, a.ID, "a1", "Anna's MacBook", T0); err != nil {
		t.Fatal(err)
	}
	search := func(q string, kinds ...string) string {
		t.Helper()
		list, err := f.s.FilterSecurityEvents(f.ctx, a.ID, 0, db.EventFilter{Search: q, SearchKinds: kinds}, 100)
		if err != nil {
			t.Fatalf("search %q: %v", q, err)
		}
		var out []string
		for _, e := range list {
			if e.UserID != a.ID {
				t.Fatalf("search %q found b's %+v", q, e)
			}
			out = append(out, e.Kind+":"+e.Detail)
		}
		return strings.Join(out, ",")
	}
	for _, c := range []struct {
		q, want string
		kinds   []string
	}{
		{"iphone", "sign_in_failed:one", nil},                     // device, another case
		{"BERLIN", "sign_in_failed:one", nil},                     // place
		{"113.7", "sign_in_failed:one", nil},                      // address
		{"place a1", "sign_in:", nil},                             // a session's place
		{"anna's", "device_renamed:Anna's MacBook,sign_in:", nil}, // the name: the rename and every entry of its session
		{"100%", "token_created:100%_sure", nil},                  // % is itself
		{"%_s", "token_created:100%_sure", nil},                   // % and _ are themselves (not "1000 sure")
		{"0_s", "", nil},                                          // _ is no wildcard: "1000 sure" is not found
		{`\`, "", nil},
		{"nothing like it", "", nil},
		{"nothing like it", "password_changed:1000 sure", []string{db.EventPasswordChanged}}, // by kind
	} {
		if got := search(c.q, c.kinds...); got != c.want {
			t.Errorf("search %q: %q, want %q", c.q, got, c.want)
		}
	}
	// With a kind filter and a range, as the page combines them.
	list, err := f.s.FilterSecurityEvents(f.ctx, a.ID, 0, db.EventFilter{Kinds: []string{db.EventSignIn}, Search: "anna"}, 100)
	if err != nil || len(list) != 1 || list[0].SessionID != "a1" {
		t.Fatalf("search with a kind: %+v, %v", list, err)
	}
}
