package static

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/andybalholm/brotli"
	"github.com/labstack/echo/v4"
)

func TestPathsAreHashedAndKnown(t *testing.T) {
	f, err := New()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"app.css", "app.js", "favicon.svg"} {
		u, err := f.Path(name)
		if err != nil || len(u) <= len(Prefix+name) {
			t.Errorf("Path(%q) = %q, %v", name, u, err)
		}
	}
	if _, err := f.Path("nope.css"); err == nil {
		t.Error("an unknown file has a path")
	}
}

// TestCompressedWhenAccepted: CSS and JS go out precompressed (brotli first,
// then gzip) to clients that accept it, as they are to those that don't,
// with Vary; a refused coding (q=0) is not used.
func TestCompressedWhenAccepted(t *testing.T) {
	f, err := New()
	if err != nil {
		t.Fatal(err)
	}
	e := echo.New()
	e.GET(Prefix+"*", f.Handler())
	for _, name := range []string{"app.css", "app.js"} {
		u, _ := f.Path(name)
		get := func(accept string) *httptest.ResponseRecorder {
			req := httptest.NewRequest(http.MethodGet, u, nil)
			if accept != "" {
				req.Header.Set("Accept-Encoding", accept)
			}
			rec := httptest.NewRecorder()
			e.ServeHTTP(rec, req)
			if rec.Code != http.StatusOK || rec.Header().Get("Vary") != "Accept-Encoding" {
				t.Fatalf("%s (%q): %d, Vary %q", name, accept, rec.Code, rec.Header().Get("Vary"))
			}
			return rec
		}
		plain := get("").Body.Bytes()
		if len(plain) == 0 {
			t.Fatalf("%s: empty", name)
		}
		for _, c := range []struct{ accept, want string }{
			{"gzip, deflate, br, zstd", "br"}, {"gzip", "gzip"}, {"br;q=0, gzip", "gzip"}, {"identity", ""}, {"gzip;q=0", ""},
		} {
			rec := get(c.accept)
			if got := rec.Header().Get("Content-Encoding"); got != c.want {
				t.Fatalf("%s, Accept-Encoding %q: Content-Encoding %q, want %q", name, c.accept, got, c.want)
			}
			var r io.Reader = rec.Body
			switch c.want {
			case "br":
				r = brotli.NewReader(rec.Body)
			case "gzip":
				z, err := gzip.NewReader(rec.Body)
				if err != nil {
					t.Fatal(err)
				}
				r = z
			}
			body, err := io.ReadAll(r)
			if err != nil || !bytes.Equal(body, plain) {
				t.Fatalf("%s, %q: the decoded body differs (%v)", name, c.accept, err)
			}
		}
		if br := get("br"); br.Body.Len() >= len(plain)/2 {
			t.Errorf("%s: brotli %d bytes of %d", name, br.Body.Len(), len(plain))
		}
	}
}
