package sqlstore

import (
	"context"
	"fmt"
	"strings"
)

// dumpTables is every table, with the order that makes its dump stable.
var dumpTables = []struct{ table, order string }{
	{"users", "id"}, {"sessions", "id"}, {"login_failures", "account, scope, at, ip"}, {"app_secrets", "name"},
	{"two_factor", "user_id"}, {"recovery_codes", "user_id, code_hash"}, {"pending_sign_ins", "id"},
	{"tokens", "id"}, {"apps", "client_id"}, {"device_authorizations", "device_code_hash"}, {"security_events", "id"},
	{"outbox", "id"}, {"link_tokens", "id"}, {"sign_in_places", "user_id, device, network"},
	{"app_redirect_uris", "client_id, kind, uri"}, {"oidc_subjects", "user_id"}, {"oidc_signing_keys", "kid"},
	{"oidc_auth_requests", "id"}, {"oidc_consents", "user_id, client_id"}, {"oidc_session_clients", "session_id, client_id"},
	{"oidc_grants", "id"}, {"logout_deliveries", "id"},
	{"passkey_users", "user_id"}, {"passkeys", "id"}, {"passkey_ceremonies", "id"},
	{"schema_migrations", "version"},
}

// Dump returns every row of every table as text, in a stable order. Tests
// use it to prove a refused request changed nothing; operators can diff it.
func (s *Store) Dump(ctx context.Context) (string, error) {
	var sb strings.Builder
	for _, t := range dumpTables {
		rows, err := s.d.Reads().Query(ctx, `SELECT * FROM `+t.table+` ORDER BY `+t.order)
		err = Read{Scan: func(rows Rows) error { return s.dumpRows(&sb, t.table, rows) }}.Take(rows, err)
		if err != nil {
			return "", fmt.Errorf("db: dump %s: %w", t.table, err)
		}
	}
	return sb.String(), nil
}

// dumpRows writes table's heading and rows to sb, one line a row, bytes in
// hex.
func (s *Store) dumpRows(sb *strings.Builder, table string, rows Rows) error {
	cols, err := s.d.Columns(rows)
	if err != nil {
		return err
	}
	fmt.Fprintf(sb, "# %s (%s)\n", table, strings.Join(cols, ", "))
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return err
		}
		for i, v := range vals {
			if i > 0 {
				sb.WriteString(" | ")
			}
			if b, ok := v.([]byte); ok {
				fmt.Fprintf(sb, "%x", b)
			} else {
				fmt.Fprint(sb, v)
			}
		}
		sb.WriteByte('\n')
	}
	return rows.Err()
}
