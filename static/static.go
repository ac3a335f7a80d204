// Package static embeds Doorman's stylesheet, script and icons and serves them
// under content-hashed names, so browsers may cache them forever and a new
// release is picked up at once.
package static

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"

	"github.com/labstack/echo/v4"
)

// Prefix is the URL path under which static files are served.
const Prefix = "/static/"

//go:embed files
var files embed.FS

type asset struct {
	body        []byte
	contentType string
}

// Files is the table of embedded files by URL and by name, built once by New
// and read-only afterwards, so it is safe to share between requests.
type Files struct {
	byURL  map[string]asset  // "/static/app.3f2a1b9c.css" → file
	byName map[string]string // "app.css" → "/static/app.3f2a1b9c.css"
}

// New builds the table from the files compiled into the binary.
func New() (*Files, error) {
	f := &Files{byURL: map[string]asset{}, byName: map[string]string{}}
	err := fs.WalkDir(files, "files", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := files.ReadFile(p)
		if err != nil {
			return err
		}
		name := strings.TrimPrefix(p, "files/")
		sum := sha256.Sum256(body)
		ext := path.Ext(name)
		url := Prefix + strings.TrimSuffix(name, ext) + "." + hex.EncodeToString(sum[:5]) + ext
		f.byName[name] = url
		f.byURL[url] = asset{body: body, contentType: mime.TypeByExtension(ext)}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("static: %w", err)
	}
	return f, nil
}

// Path returns the cache-busting URL of the named file ("app.css"), or an
// error for a name that is not embedded.
func (f *Files) Path(name string) (string, error) {
	u, ok := f.byName[name]
	if !ok {
		return "", fmt.Errorf("static: no file %s", name)
	}
	return u, nil
}

// Handler serves the embedded files by their hashed URLs, cached for a year.
func (f *Files) Handler() echo.HandlerFunc {
	return func(c echo.Context) error {
		a, ok := f.byURL[c.Request().URL.Path]
		if !ok {
			return echo.ErrNotFound
		}
		h := c.Response().Header()
		h.Set("Cache-Control", "public, max-age=31536000, immutable")
		return c.Blob(http.StatusOK, a.contentType, a.body)
	}
}
