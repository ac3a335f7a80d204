// Package topo turns world-atlas's land TopoJSON into SVG path data in
// worldmap's projection. It is what `go generate ./worldmap` runs, and what
// worldmap's freshness test runs again to compare with the committed file.
//
// Decoding TopoJSON here (quantized, delta-encoded arcs stitched into rings)
// keeps Node out of the generate step: the only input is the committed
// source file, and the check that the output is fresh is a plain go test.
package topo

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// topology is the part of a TopoJSON file a land map needs.
type topology struct {
	Type      string `json:"type"`
	Transform *struct {
		Scale     [2]float64 `json:"scale"`
		Translate [2]float64 `json:"translate"`
	} `json:"transform"`
	Objects map[string]struct {
		Type       string     `json:"type"`
		Geometries []geometry `json:"geometries"`
	} `json:"objects"`
	Arcs [][][2]float64 `json:"arcs"`
}

type geometry struct {
	Type string          `json:"type"`
	Arcs json.RawMessage `json:"arcs"`
}

// Projection maps longitude and latitude to x, y and says which latitudes
// the map shows.
type Projection struct {
	Project      func(lat, lon float64) (x, y float64)
	North, South float64
}

// LandPath returns SVG path data ("M…l…z…") for the object named object
// (world-atlas calls it "land"). Points are rounded to whole map units and
// written relative to the previous one; a point that rounds onto the last
// is dropped, and so is a polygon entirely outside the latitudes shown.
func LandPath(src []byte, object string, p Projection) (string, error) {
	var t topology
	if err := json.Unmarshal(src, &t); err != nil {
		return "", fmt.Errorf("topo: %w", err)
	}
	if t.Type != "Topology" || t.Transform == nil {
		return "", fmt.Errorf("topo: not a quantized TopoJSON topology")
	}
	obj, ok := t.Objects[object]
	if !ok {
		return "", fmt.Errorf("topo: no object %q", object)
	}

	// Decode every arc once: positions are deltas of quantized integers.
	arcs := make([][][2]float64, len(t.Arcs))
	for i, arc := range t.Arcs {
		var qx, qy float64
		pts := make([][2]float64, len(arc))
		for j, d := range arc {
			qx, qy = qx+d[0], qy+d[1]
			pts[j] = [2]float64{
				qx*t.Transform.Scale[0] + t.Transform.Translate[0],
				qy*t.Transform.Scale[1] + t.Transform.Translate[1],
			}
		}
		arcs[i] = pts
	}

	var b strings.Builder
	for _, g := range obj.Geometries {
		var polygons [][][]int
		switch g.Type {
		case "Polygon":
			var rings [][]int
			if err := json.Unmarshal(g.Arcs, &rings); err != nil {
				return "", fmt.Errorf("topo: polygon: %w", err)
			}
			polygons = [][][]int{rings}
		case "MultiPolygon":
			if err := json.Unmarshal(g.Arcs, &polygons); err != nil {
				return "", fmt.Errorf("topo: multipolygon: %w", err)
			}
		default:
			return "", fmt.Errorf("topo: unsupported geometry %q", g.Type)
		}
		for _, rings := range polygons {
			lonlat := make([][][2]float64, len(rings))
			north := math.Inf(-1)
			for i, ring := range rings {
				pts, err := stitch(arcs, ring)
				if err != nil {
					return "", err
				}
				for _, pt := range pts {
					north = max(north, pt[1])
				}
				lonlat[i] = pts
			}
			if north < p.South {
				continue // Antarctica: below the map
			}
			for _, ring := range lonlat {
				// A ring across the antimeridian (Fiji, Chukotka) is drawn
				// with continuous longitudes, past one edge, and again
				// shifted by a turn so its other half shows at the other.
				lo, hi := unwrap(ring)
				writeRing(&b, ring, 0, p)
				if hi > 180 {
					writeRing(&b, ring, -360, p)
				}
				if lo < -180 {
					writeRing(&b, ring, 360, p)
				}
			}
		}
	}
	return b.String(), nil
}

// stitch joins a ring's arcs: ~i (negative) is arc i reversed, and each
// arc after the first starts where the previous one ended.
func stitch(arcs [][][2]float64, ring []int) ([][2]float64, error) {
	var out [][2]float64
	for k, i := range ring {
		reversed := i < 0
		if reversed {
			i = ^i
		}
		if i >= len(arcs) {
			return nil, fmt.Errorf("topo: arc %d of %d", i, len(arcs))
		}
		arc := arcs[i]
		pts := make([][2]float64, len(arc))
		copy(pts, arc)
		if reversed {
			for a, z := 0, len(pts)-1; a < z; a, z = a+1, z-1 {
				pts[a], pts[z] = pts[z], pts[a]
			}
		}
		if k > 0 && len(pts) > 0 {
			pts = pts[1:]
		}
		out = append(out, pts...)
	}
	return out, nil
}

// unwrap makes a ring's longitudes continuous (no jump of more than half a
// turn between neighbours) and returns their range.
func unwrap(ring [][2]float64) (lo, hi float64) {
	lo, hi = math.Inf(1), math.Inf(-1)
	for i := range ring {
		if i > 0 {
			for ring[i][0]-ring[i-1][0] > 180 {
				ring[i][0] -= 360
			}
			for ring[i][0]-ring[i-1][0] < -180 {
				ring[i][0] += 360
			}
		}
		lo, hi = min(lo, ring[i][0]), max(hi, ring[i][0])
	}
	return lo, hi
}

// writeRing appends one closed ring as "M x y l dx dy … z" in whole units,
// its longitudes moved by shift degrees.
func writeRing(b *strings.Builder, ring [][2]float64, shift float64, p Projection) {
	var pts [][2]int
	for _, pt := range ring {
		x, y := p.Project(pt[1], pt[0]+shift)
		q := [2]int{int(math.Round(x)), int(math.Round(y))}
		if n := len(pts); n > 0 && pts[n-1] == q {
			continue
		}
		pts = append(pts, q)
	}
	if n := len(pts); n > 1 && pts[n-1] == pts[0] {
		pts = pts[:n-1] // z closes it
	}
	if len(pts) < 3 {
		return // an islet smaller than a map unit
	}
	b.WriteString("M")
	b.WriteString(strconv.Itoa(pts[0][0]))
	b.WriteString(" ")
	b.WriteString(strconv.Itoa(pts[0][1]))
	b.WriteString("l")
	for i := 1; i < len(pts); i++ {
		dx, dy := pts[i][0]-pts[i-1][0], pts[i][1]-pts[i-1][1]
		if i > 1 && dx >= 0 {
			b.WriteString(" ")
		}
		b.WriteString(strconv.Itoa(dx))
		if dy >= 0 {
			b.WriteString(" ")
		}
		b.WriteString(strconv.Itoa(dy))
	}
	b.WriteString("z")
}

// GoFile is the generated Go file holding path as the constant Land.
func GoFile(path string) []byte {
	return []byte(`// Code generated by worldmap/internal/gen from source/land-110m.json; DO NOT EDIT.

package worldmap

// Land is Natural Earth's 1:110m land (public domain, via the world-atlas
// npm package) as SVG path data in Project's coordinates: one path for
// every coast, to draw in a viewBox of Width × Height.
const Land = "` + path + `"
`)
}
