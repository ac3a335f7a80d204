// Package static embeds Doorman's stylesheet, script and icons and serves them
// under content-hashed names, so browsers may cache them forever and a new
// release is picked up at once.
package static

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
	"sync"

	"github.com/andybalholm/brotli"
	"github.com/labstack/echo/v4"
)

// Prefix is the URL path under which static files are served.
const Prefix = "/static/"

//go:embed files
var files embed.FS

type asset struct {
	body        []byte
	contentType string
	// br and gz are the body compressed (nil when that would not make it
	// smaller), made by the first request that accepts one: compressing
	// at the best ratio takes ~50 ms, which neither start-up nor a test
	// building a server should pay.
	once   sync.Once
	br, gz []byte
}

// encoded returns the compressed bodies, making them the first time.
func (a *asset) encoded() (br, gz []byte) {
	a.once.Do(func() {
		a.br, a.gz = compressed(a.body, brotliWriter), compressed(a.body, gzipWriter)
	})
	return a.br, a.gz
}

// Files is the table of embedded files by URL and by name, built once by New
// and read-only afterwards, so it is safe to share between requests.
type Files struct {
	byURL  map[string]*asset // "/static/app.3f2a1b9c.css" → file
	byName map[string]string // "app.css" → "/static/app.3f2a1b9c.css"
}

// New returns the table of the files compiled into the binary. They cannot
// change while it runs, so the table is built once per process and shared
// (with what it has compressed) by every server built in it.
func New() (*Files, error) { return table() }

var table = sync.OnceValues(build)

func build() (*Files, error) {
	f := &Files{byURL: map[string]*asset{}, byName: map[string]string{}}
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
		f.byURL[url] = &asset{body: body, contentType: mime.TypeByExtension(ext)}
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
		h.Set("Vary", "Accept-Encoding")
		accept := c.Request().Header.Get("Accept-Encoding")
		wantBr, wantGz := accepts(accept, "br"), accepts(accept, "gzip")
		if wantBr || wantGz {
			br, gz := a.encoded()
			switch {
			case br != nil && wantBr:
				h.Set("Content-Encoding", "br")
				return c.Blob(http.StatusOK, a.contentType, br)
			case gz != nil && wantGz:
				h.Set("Content-Encoding", "gzip")
				return c.Blob(http.StatusOK, a.contentType, gz)
			}
		}
		return c.Blob(http.StatusOK, a.contentType, a.body)
	}
}

// Static files are compressed once, at the best ratio: they are the same
// for everyone and cached for a year, so only the first request that asks
// pays for it.
// Pages are not compressed at all, on purpose: each carries a CSRF token
// next to text a request can choose (an email typed in a form, a device
// name), which is what BREACH needs to read a secret out of compressed
// sizes; and compressing 20 KB per page would cost more CPU than sending
// it costs on any link (bench/NOTES.md).

func brotliWriter(w io.Writer) io.WriteCloser {
	return brotli.NewWriterLevel(w, brotli.BestCompression)
}

func gzipWriter(w io.Writer) io.WriteCloser {
	z, _ := gzip.NewWriterLevel(w, gzip.BestCompression) // the level is valid
	return z
}

// compressed is body compressed by the writer newW makes, or nil when that
// is not at least 10% smaller (a small SVG). Writing to memory cannot fail;
// if the compressor did, the file goes out as it is.
func compressed(body []byte, newW func(io.Writer) io.WriteCloser) []byte {
	var buf bytes.Buffer
	w := newW(&buf)
	if _, err := w.Write(body); err != nil {
		return nil
	}
	if err := w.Close(); err != nil || buf.Len() > len(body)*9/10 {
		return nil
	}
	return buf.Bytes()
}

// accepts reports whether an Accept-Encoding header value lists coding
// without refusing it (q=0).
func accepts(header, coding string) bool {
	for _, part := range strings.Split(header, ",") {
		name, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if !strings.EqualFold(strings.TrimSpace(name), coding) {
			continue
		}
		q := strings.ReplaceAll(strings.TrimSpace(params), " ", "")
		return q != "q=0" && q != "q=0.0" && q != "q=0.00" && q != "q=0.000"
	}
	return false
}
