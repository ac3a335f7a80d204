package static

import "testing"

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
