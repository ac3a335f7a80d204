package sqlstore

import "testing"

func TestRebind(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{`SELECT 1`, `SELECT 1`},
		{`SELECT a FROM t WHERE b = ? AND c = ?`, `SELECT a FROM t WHERE b = $1 AND c = $2`},
		{`UPDATE t SET a = ?1, b = CASE WHEN a = ?1 THEN b END WHERE id = ?2`, `UPDATE t SET a = $1, b = CASE WHEN a = $1 THEN b END WHERE id = $2`},
		{`SELECT '?', "a?b", x FROM t WHERE y = ? -- why?` + "\n" + `AND z = ?`, `SELECT '?', "a?b", x FROM t WHERE y = $1 -- why?` + "\n" + `AND z = $2`},
		{`INSERT INTO t VALUES (?, ?, 'it''s', ?)`, `INSERT INTO t VALUES ($1, $2, 'it''s', $3)`},
		{`SELECT ?10, ?2`, `SELECT $10, $2`},
	} {
		if got := Rebind(c.in); got != c.want {
			t.Errorf("Rebind(%q)\n got %q\nwant %q", c.in, got, c.want)
		}
	}
}
