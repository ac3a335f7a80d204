// Command sqldump writes a SQLite database as a text SQL script that
// recreates it: what `sqlite3 db .dump` prints, for machines without the
// sqlite3 CLI. scripts/fixture.sh uses it to turn a database made by an old
// release into a fixture that can be committed and diffed.
//
//	go run ./scripts/sqldump old.db > dump.sql
//
// The output is deterministic for a given database: tables in sqlite_master
// order, each table's rows by rowid (by primary key for WITHOUT ROWID
// tables), every value as the SQL literal SQLite's own quote() gives (so
// BLOBs are X'..' and no driver type conversion can alter a value), then
// sqlite_sequence, then the indexes, triggers and views in sqlite_master
// order.
package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

func main() {
	if len(os.Args) != 2 || strings.HasPrefix(os.Args[1], "-") {
		fmt.Fprintln(os.Stderr, "usage: sqldump DATABASE > dump.sql")
		os.Exit(2)
	}
	if err := run(context.Background(), os.Args[1], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "sqldump:", err)
		os.Exit(1)
	}
}

// object is one row of sqlite_master that has SQL.
type object struct{ typ, name, sql string }

func run(ctx context.Context, path string, out io.Writer) error {
	if _, err := os.Stat(path); err != nil {
		return err // never let the driver create an empty file instead
	}
	// Read-only and query-only: dumping must not change the database.
	dsn := "file:" + (&url.URL{Path: path}).EscapedPath() + "?mode=ro&_pragma=query_only(1)&_pragma=busy_timeout(5000)"
	conn, err := sql.Open("sqlite", dsn)
	if err != nil {
		return err
	}
	defer conn.Close()
	// One connection, one read transaction: a consistent snapshot.
	conn.SetMaxOpenConns(1)
	tx, err := conn.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return err
	}
	defer tx.Rollback()

	objects, err := masterObjects(ctx, tx)
	if err != nil {
		return err
	}
	var b strings.Builder
	b.WriteString("PRAGMA foreign_keys=OFF;\nBEGIN TRANSACTION;\n")
	hasSequence := false
	for _, o := range objects {
		if o.typ != "table" {
			continue
		}
		switch {
		case o.name == "sqlite_sequence":
			hasSequence = true
			continue // SQLite creates it itself; its rows follow the tables
		case strings.HasPrefix(o.name, "sqlite_"):
			continue // internal (sqlite_stat1 and the like)
		}
		b.WriteString(o.sql + ";\n")
		if err := dumpRows(ctx, tx, &b, o); err != nil {
			return err
		}
	}
	if hasSequence {
		b.WriteString("DELETE FROM sqlite_sequence;\n")
		if err := dumpRows(ctx, tx, &b, object{typ: "table", name: "sqlite_sequence"}); err != nil {
			return err
		}
	}
	for _, o := range objects {
		if o.typ != "table" {
			b.WriteString(o.sql + ";\n")
		}
	}
	b.WriteString("COMMIT;\n")
	_, err = io.WriteString(out, b.String())
	return err
}

// masterObjects lists sqlite_master in its own (rowid) order, skipping the
// automatic indexes, which have no SQL.
func masterObjects(ctx context.Context, tx *sql.Tx) ([]object, error) {
	rows, err := tx.QueryContext(ctx, `SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY rowid`)
	if err != nil {
		return nil, fmt.Errorf("read sqlite_master: %w", err)
	}
	defer rows.Close()
	var out []object
	for rows.Next() {
		var o object
		if err := rows.Scan(&o.typ, &o.name, &o.sql); err != nil {
			return nil, fmt.Errorf("read sqlite_master: %w", err)
		}
		out = append(out, o)
	}
	return out, rows.Err()
}

// dumpRows writes one INSERT per row of the table.
func dumpRows(ctx context.Context, tx *sql.Tx, b *strings.Builder, o object) error {
	cols, pk, err := columns(ctx, tx, o.name)
	if err != nil {
		return err
	}
	order := "rowid"
	if strings.Contains(strings.ToUpper(o.sql), "WITHOUT ROWID") {
		if len(pk) == 0 {
			return fmt.Errorf("table %s: WITHOUT ROWID but no primary key", o.name)
		}
		order = strings.Join(pk, ", ")
	}
	quoted := make([]string, len(cols))
	for i, c := range cols {
		quoted[i] = "quote(" + c + ")"
	}
	rows, err := tx.QueryContext(ctx, `SELECT `+strings.Join(quoted, ", ")+` FROM `+ident(o.name)+` ORDER BY `+order)
	if err != nil {
		return fmt.Errorf("table %s: %w", o.name, err)
	}
	defer rows.Close()
	vals := make([]string, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return fmt.Errorf("table %s: %w", o.name, err)
		}
		fmt.Fprintf(b, "INSERT INTO %s VALUES(%s);\n", ident(o.name), strings.Join(vals, ","))
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("table %s: %w", o.name, err)
	}
	return nil
}

// columns returns the table's columns, quoted as identifiers, in declaration
// order, and its primary-key columns in key order.
func columns(ctx context.Context, tx *sql.Tx, table string) (cols, pk []string, err error) {
	rows, err := tx.QueryContext(ctx, `SELECT name, pk FROM pragma_table_info(?) ORDER BY cid`, table)
	if err != nil {
		return nil, nil, fmt.Errorf("table %s: columns: %w", table, err)
	}
	defer rows.Close()
	byKey := map[int]string{}
	for rows.Next() {
		var name string
		var key int
		if err := rows.Scan(&name, &key); err != nil {
			return nil, nil, fmt.Errorf("table %s: columns: %w", table, err)
		}
		cols = append(cols, ident(name))
		if key > 0 {
			byKey[key] = ident(name)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("table %s: columns: %w", table, err)
	}
	if len(cols) == 0 {
		return nil, nil, errors.New("table " + table + ": no columns")
	}
	for k := 1; k <= len(byKey); k++ {
		pk = append(pk, byKey[k])
	}
	return cols, pk, nil
}

// ident quotes an SQL identifier.
func ident(name string) string { return `"` + strings.ReplaceAll(name, `"`, `""`) + `"` }
