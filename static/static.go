// Package static embeds Doorman's stylesheet, script and icons and serves them
// under content-hashed names, so browsers may cache them forever and a new
// release is picked up at once.
package static

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
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

var (
	byURL  = map[string]asset{}  // "/static/app.3f2a1b9c.css" → file
	byName = map[string]string{} // "app.css" → "/static/app.3f2a1b9c.css"
)

// The table is built once, from files compiled into the binary, so it is
// read-only afterwards and safe to share.
func init() {
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
		byName[name] = url
		byURL[url] = asset{body: body, contentType: mime.TypeByExtension(ext)}
		return nil
	})
	if err != nil {
		panic("static: " + err.Error())
	}
}

// Path returns the cache-busting URL of the named file ("app.css"). It
// panics on an unknown name, which the tests of every page catch.
func Path(name string) string {
	u, ok := byName[name]
	if !ok {
		panic("static: no file " + name)
	}
	return u
}

// Handler serves the embedded files by their hashed URLs, cached for a year.
func Handler() echo.HandlerFunc {
	return func(c echo.Context) error {
		a, ok := byURL[c.Request().URL.Path]
		if !ok {
			return echo.ErrNotFound
		}
		h := c.Response().Header()
		h.Set("Cache-Control", "public, max-age=31536000, immutable")
		return c.Blob(http.StatusOK, a.contentType, a.body)
	}
}
