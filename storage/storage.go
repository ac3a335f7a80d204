// Package storage opens the store a data source name names. It is the one
// place that knows the implementations: everything else uses db.Store.
package storage

import (
	"context"

	"doorman/db"
	"doorman/db/postgres"
	"doorman/db/sqlite"
)

// Open opens the store for dsn: a postgres:// (or postgresql://) URL selects
// the PostgreSQL store, anything else is a SQLite file path (the embedded
// default).
func Open(ctx context.Context, dsn string, opts db.Options) (db.Store, error) {
	if IsPostgres(dsn) {
		return postgres.Open(ctx, dsn, opts)
	}
	return sqlite.Open(ctx, dsn, opts)
}

// IsPostgres reports whether dsn selects the PostgreSQL store.
func IsPostgres(dsn string) bool { return postgres.IsDSN(dsn) }

// IsUnavailable reports whether err, from either store, means the database
// cannot serve right now (so the answer is 503, not 500).
func IsUnavailable(err error) bool { return sqlite.IsUnavailable(err) || postgres.IsUnavailable(err) }
