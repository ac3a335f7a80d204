package db

import (
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"
)

// Migration is one embedded, numbered, forward-only migration file.
type Migration struct {
	Name    string // "0001_init.sql", inside the folder it was listed from
	Version int    // its leading number
}

// Migrations lists dir's *.sql files in fsys in order, each named
// "<number>_<what>.sql": the one listing both stores' migrators use.
func Migrations(fsys fs.FS, dir string) ([]Migration, error) {
	files, err := fs.Glob(fsys, dir+"/*.sql")
	if err != nil {
		return nil, fmt.Errorf("db: list migrations: %w", err)
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("db: no migrations in %s", dir)
	}
	sort.Strings(files)
	out := make([]Migration, len(files))
	for i, f := range files {
		base := strings.TrimPrefix(f, dir+"/")
		v, err := strconv.Atoi(strings.SplitN(base, "_", 2)[0])
		if err != nil {
			return nil, fmt.Errorf("db: migration %s: name must start with a number", base)
		}
		out[i] = Migration{Name: base, Version: v}
	}
	return out, nil
}
