package sqlite

import (
	"context"
	"strings"
	"testing"
	"time"

	"doorman/db"
	"doorman/db/storetest"
)

// TestZeroLengthBlobs: since modernc.org/sqlite v1.63 a zero-length BLOB
// reads as []byte{} (v1.61 read it as nil, like NULL), as pgx reads an empty
// bytea. Every BLOB column of the schema is listed below with why that
// cannot change what the store or its callers do; the optional ones (where
// NULL means "none") are stored as zero-length BLOBs here, which none of our writers does,
// and must still read as "none" through the store.
func TestZeroLengthBlobs(t *testing.T) {
	s := openTest(t, db.Options{})
	ctx := context.Background()

	var empty, null []byte
	if err := s.read.QueryRowContext(ctx, `SELECT X'', NULL`).Scan(&empty, &null); err != nil {
		t.Fatal(err)
	}
	if empty == nil || len(empty) != 0 || null != nil {
		t.Fatalf("X'' read as %#v, NULL as %#v; want []byte{} and nil", empty, null)
	}

	reviewed := map[string]string{
		"sessions.secret_hash":                   "NOT NULL; always a SHA-256; compared in constant time (empty never matches)",
		"app_secrets.value":                      "NOT NULL; AppSecret makes it size random bytes",
		"recovery_codes.code_hash":               "NOT NULL; an HMAC, compared as a key",
		"pending_sign_ins.secret_hash":           "NOT NULL; a SHA-256, compared in constant time",
		"tokens.secret_hash":                     "NOT NULL; a SHA-256, compared in constant time",
		"device_authorizations.device_code_hash": "the key; a SHA-256",
		"link_tokens.secret_hash":                "NOT NULL; a SHA-256, compared in constant time",
		"link_tokens.binding_hash":               "optional: NULL or a SHA-256; read with len() (below)",
		"apps.secret_hash":                       "optional (public clients): the store writes NULL for empty and reads empty as nil (below)",
		"oidc_signing_keys.private_sealed":       "NOT NULL; sealed, never empty",
		"oidc_signing_keys.public_jwk":           "NOT NULL; JSON, never empty",
		"oidc_auth_requests.code_hash":           "optional until a code is issued; looked up by value, never read as nil",
		"oidc_grants.secret_hash":                "optional (access tokens): written NULL for empty, read empty as nil (below)",
		"passkey_users.handle":                   "NOT NULL; 32 random bytes, looked up by value",
		"passkeys.credential_id":                 "NOT NULL; the authenticator's id, looked up by value",
		"passkeys.public_key":                    "NOT NULL; a COSE key go-webauthn parses (empty would be refused, never nil-checked)",
		"passkeys.aaguid":                        "NOT NULL; 16 bytes or empty; the provider table reads only 16 non-zero bytes (len-checked)",
		"passkey_ceremonies.data":                "NOT NULL; JSON of the ceremony, unmarshalled, never nil-checked",
	}
	rows, err := s.read.QueryContext(ctx, `SELECT m.name, p.name FROM sqlite_master m, pragma_table_info(m.name) p
		WHERE m.type = 'table' AND upper(p.type) = 'BLOB' ORDER BY 1, 2`)
	if err != nil {
		t.Fatal(err)
	}
	var found []string
	for rows.Next() {
		var table, col string
		if err := rows.Scan(&table, &col); err != nil {
			t.Fatal(err)
		}
		found = append(found, table+"."+col)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	for _, c := range found {
		if _, ok := reviewed[c]; !ok {
			t.Errorf("BLOB column %s is not reviewed here: can its readers tell nil from []byte{} (a zero-length BLOB reads as []byte{}, NULL as nil)? Add it with the answer", c)
		}
	}
	if len(found) < len(reviewed) {
		t.Errorf("BLOB columns %v, fewer than reviewed (%d): a column was renamed or dropped; update the list", found, len(reviewed))
	}

	// The optional ones, stored as X''.
	now := time.Unix(1_800_000_000, 0)
	u, err := s.CreateUser(ctx, "a@example.com", "hash", false, now)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CreateApp(ctx, db.App{ClientID: "wiki", Name: "Wiki", CreatedAt: now, SecretHash: []byte("secret-hash"),
		RedirectURIs: []string{"https://wiki.example/cb"}}); err != nil {
		t.Fatal(err)
	}
	link := storetest.Link("ls", u.ID, db.LinkSignIn, u.Epoch, now, 15*time.Minute)
	link.BindingHash = []byte("binding-hash")
	if err := s.QueueMail(ctx, storetest.Mail("m1", u.ID, db.MailSignInLink, now, link)); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{`UPDATE apps SET secret_hash = X''`, `UPDATE link_tokens SET binding_hash = X''`} {
		if _, err := s.write.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	if a, err := s.App(ctx, "wiki"); err != nil || a.SecretHash != nil {
		t.Errorf("app with secret_hash X'': SecretHash %#v (%v), want nil (a public client)", a.SecretHash, err)
	}
	if l, err := s.LinkToken(ctx, "ls"); err != nil || len(l.BindingHash) != 0 {
		t.Errorf("link with binding_hash X'': BindingHash %#v (%v), want empty (not bound)", l.BindingHash, err)
	}
	// The dump now tells X'' (empty) from NULL (<nil>), as on PostgreSQL.
	d, err := s.Dump(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(d, "\nwiki | Wiki | 1800000000 |  | ") {
		t.Errorf("dump of apps does not show the empty secret_hash as empty:\n%s", d)
	}
}
