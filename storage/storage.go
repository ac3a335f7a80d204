// Package storage opens the store a data source name names. It is the one
// place that knows the implementations: everything else uses db.Store.
package storage

import (
	"context"

	"doorman/db"
	"doorman/db/sqlite"
)

// Open opens the store for dsn: a SQLite file path (the embedded default,
// created and migrated if needed). A PostgreSQL URL will select the
// PostgreSQL store once it exists.
func Open(ctx context.Context, dsn string, opts db.Options) (db.Store, error) {
	return sqlite.Open(ctx, dsn, opts)
}
