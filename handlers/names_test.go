package handlers_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"doorman/operator"
)

// invisible are format characters that reorder or hide text: a bidi
// override, a zero-width space, a bidi isolate.
const invisible = "\u202E\u200B\u2066"

// TestTokenAndAppNamesLoseInvisibleCharacters: a token's name (the form)
// and an app's (the operator's `apps add`) are stored and shown without
// control or format characters; a name of nothing else is refused.
func TestTokenAndAppNamesLoseInvisibleCharacters(t *testing.T) {
	app := newTestApp(t)
	alice := app.client(uaWindowsChrome, ipBerlin)
	alice.signup("alice@example.com", pw)

	tok := alice.createToken("backup\u202Eexe.txt", "7", "sessions:read")
	page := alice.get("/settings/security/tokens")
	expectBody(t, page, "backupexe.txt")
	if strings.ContainsAny(page.body, invisible) {
		t.Error("the tokens page shows a format character")
	}
	if _, me := app.apiClient(t, tok).call("GET", "/api/v1/me"); me["credential"].(map[string]any)["name"] != "backupexe.txt" {
		t.Errorf("the stored name: %v", me["credential"])
	}
	res := alice.post("/settings/security/tokens", url.Values{"name": {" " + invisible + "\t"}, "expires_in_days": {"7"}, "scope": {"sessions:read"}, "password": {pw}})
	expectStatus(t, res, http.StatusUnprocessableEntity)
	expectBody(t, res, "only invisible or control characters")
	if n := strings.Count(alice.get("/settings/security/tokens").body, "data-token-id"); strings.Count(page.body, "data-token-id") != n {
		t.Errorf("a token was made of invisible characters")
	}

	op := func(args ...string) (string, error) {
		var out bytes.Buffer
		err := operator.Run(context.Background(), append(args, "-db", app.dbPath), func(string) string { return "" }, &out,
			slog.New(slog.NewTextHandler(io.Discard, nil)), app.clock)
		return out.String(), err
	}
	if _, err := op("apps", "add", "--name", "Backup\u202E tool"); err != nil {
		t.Fatal(err)
	}
	if _, err := op("apps", "add", "--name", invisible); err == nil || !strings.Contains(err.Error(), "no visible characters") {
		t.Errorf("apps add with an invisible name: %v", err)
	}
	apps, err := app.store.Apps(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(apps) != 1 || apps[0].Name != "Backup tool" {
		t.Fatalf("apps stored: %+v", apps)
	}
	if out, err := op("apps", "list"); err != nil || !strings.Contains(out, "Backup tool") || strings.ContainsAny(out, invisible) {
		t.Errorf("apps list: %v %q", err, out)
	}
}
