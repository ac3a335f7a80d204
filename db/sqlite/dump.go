package sqlite

import (
	"context"
	"fmt"
	"strings"
)

// Dump returns every row of every table as text, in a stable order. Tests use
// it to prove a refused request changed nothing; operators can diff it.
func (s *Store) Dump(ctx context.Context) (string, error) {
	var sb strings.Builder
	for _, q := range []struct{ table, order string }{
		{"users", "id"}, {"sessions", "id"}, {"login_failures", "account, scope, at, ip"}, {"app_secrets", "name"},
		{"two_factor", "user_id"}, {"recovery_codes", "user_id, code_hash"}, {"pending_sign_ins", "id"},
		{"tokens", "id"}, {"apps", "client_id"}, {"device_authorizations", "device_code_hash"}, {"security_events", "id"},
		{"outbox", "id"}, {"link_tokens", "id"}, {"sign_in_places", "user_id, device, network"},
		{"schema_migrations", "version"},
	} {
		rows, err := s.read.QueryContext(ctx, `SELECT * FROM `+q.table+` ORDER BY `+q.order)
		if err != nil {
			return "", fmt.Errorf("db: dump %s: %w", q.table, err)
		}
		cols, _ := rows.Columns()
		fmt.Fprintf(&sb, "# %s (%s)\n", q.table, strings.Join(cols, ", "))
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		for rows.Next() {
			if err := rows.Scan(ptrs...); err != nil {
				rows.Close()
				return "", fmt.Errorf("db: dump %s: %w", q.table, err)
			}
			for i, v := range vals {
				if i > 0 {
					sb.WriteString(" | ")
				}
				if b, ok := v.([]byte); ok {
					fmt.Fprintf(&sb, "%x", b)
				} else {
					fmt.Fprint(&sb, v)
				}
			}
			sb.WriteByte('\n')
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return "", fmt.Errorf("db: dump %s: %w", q.table, err)
		}
	}
	return sb.String(), nil
}
