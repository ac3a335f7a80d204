package sqlstore

import (
	"context"
	"fmt"
	"io/fs"
	"time"

	"doorman/db"
)

// Migrator is where migrations run: one connection (PostgreSQL holds its
// migration lock on it meanwhile; SQLite's is the writer), able to run a
// transaction on it.
type Migrator interface {
	Q
	Write(ctx context.Context, fn func(tx Q) error) error
}

// Migrate applies the migrations in dir of fsys (db.Migrations: one folder
// per dialect) that have not run yet, each in its own transaction with its
// row in schema_migrations, in order. Forward-only: a shipped file is never
// edited. A database a newer Doorman migrated is refused, not run on: this
// binary does not know what its newer migrations changed.
func Migrate(ctx context.Context, m Migrator, fsys fs.FS, dir string, now time.Time) error {
	if _, err := m.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    INTEGER PRIMARY KEY,
		applied_at BIGINT NOT NULL)`); err != nil {
		return fmt.Errorf("db: create schema_migrations: %w", err)
	}
	files, err := db.Migrations(fsys, dir)
	if err != nil {
		return err
	}
	var newest *int64
	if err := m.QueryRow(ctx, `SELECT MAX(version) FROM schema_migrations`).Scan(&newest); err != nil {
		return fmt.Errorf("db: read schema_migrations: %w", err)
	}
	if latest := files[len(files)-1].Version; newest != nil && int(*newest) > latest {
		return fmt.Errorf("db: the database is at schema version %d, made by a newer Doorman; this one knows versions up to %d: run the newer release", *newest, latest)
	}
	for _, f := range files {
		body, err := fs.ReadFile(fsys, dir+"/"+f.Name)
		if err != nil {
			return fmt.Errorf("db: read migration %s: %w", f.Name, err)
		}
		err = m.Write(ctx, func(tx Q) error {
			var applied int
			if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM schema_migrations WHERE version = ?`, f.Version).Scan(&applied); err != nil || applied > 0 {
				return err
			}
			if _, err := tx.Exec(ctx, string(body)); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)`, f.Version, now.Unix())
			return err
		})
		if err != nil {
			return fmt.Errorf("db: migration %s: %w", f.Name, err)
		}
	}
	return nil
}
