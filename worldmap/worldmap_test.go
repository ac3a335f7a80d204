package worldmap

import (
	"bytes"
	"fmt"
	"os"
	"strings"
	"testing"

	"doorman/worldmap/internal/topo"
)

func TestProject(t *testing.T) {
	for _, c := range []struct {
		name     string
		lat, lon float64
		x, y     float64
	}{
		{"null island", 0, 0, 360, 168},
		{"top left corner", North, -180, 0, 0},
		{"bottom right corner", South, 180, Width, float64(Height)},
		{"Berlin", 52.52, 13.40, 386.8, 62.96},
		{"Tokyo", 35.68, 139.65, 639.3, 96.64},
		{"Austin", 30.27, -97.74, 164.52, 107.46},
		{"the South Pole is clamped to the bottom edge", -90, 0, 360, float64(Height)},
		{"the North Pole is clamped to the top edge", 90, 0, 360, 0},
		{"a longitude past the antimeridian is clamped", 0, 200, Width, 168},
	} {
		x, y := Project(c.lat, c.lon)
		if !near(x, c.x) || !near(y, c.y) {
			t.Errorf("%s: Project(%v, %v) = %v, %v; want %v, %v", c.name, c.lat, c.lon, x, y, c.x, c.y)
		}
	}
}

func near(a, b float64) bool { return a-b < 1e-9 && b-a < 1e-9 }

// TestLandIsFresh regenerates Land from the committed source and compares:
// a change to the source, the generator or the projection without
// `go generate ./worldmap` fails here.
func TestLandIsFresh(t *testing.T) {
	src, err := os.ReadFile("source/land-110m.json")
	if err != nil {
		t.Fatal(err)
	}
	path, err := topo.LandPath(src, "land", Projection)
	if err != nil {
		t.Fatal(err)
	}
	committed, err := os.ReadFile("land_gen.go")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(committed, topo.GoFile(path)) {
		t.Fatal("land_gen.go is stale: run 'go generate ./worldmap' and commit it")
	}
	if path != Land {
		t.Fatal("Land differs from what the generator writes")
	}
}

// TestLandShape checks the committed path is what a page can inline: small,
// closed rings of whole numbers, every ring starting inside the map.
func TestLandShape(t *testing.T) {
	if n := len(Land); n > 40<<10 || n < 10<<10 {
		t.Fatalf("Land is %d bytes; want 10–40 KB", n)
	}
	rings := strings.Split(strings.TrimSuffix(Land, "z"), "z")
	if len(rings) < 100 {
		t.Fatalf("%d rings; the 1:110m land has well over 100", len(rings))
	}
	for i, r := range rings {
		if strings.Trim(r, "Ml0123456789 -") != "" {
			t.Fatalf("ring %d has characters other than M, l, digits, spaces and minus: %.40q", i, r)
		}
		var x, y int
		if _, err := fmt.Sscanf(r, "M%d %d", &x, &y); err != nil {
			t.Fatalf("ring %d: %v: %.40q", i, err, r)
		}
		// A copy shifted across the antimeridian starts outside; every
		// other ring starts on the map.
		if y < 0 || y > Height || x < -Width || x > 2*Width {
			t.Errorf("ring %d starts at %d,%d, off the map", i, x, y)
		}
	}
}
