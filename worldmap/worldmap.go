// Package worldmap draws the land of the world as SVG path data, so a page
// can show where someone is signed in without tiles or any request to
// another site.
//
// The outlines are Natural Earth's 1:110m land (public domain), as TopoJSON
// from the world-atlas npm package (ISC, © Michael Bostock), kept in
// source/. They are turned into Land at build time by internal/gen
// (`go generate ./worldmap`); the result is committed, so building needs
// nothing but Go, and TestLandIsFresh fails when it is stale.
package worldmap

import "doorman/worldmap/internal/topo"

//go:generate go run ./internal/gen

// The map is equirectangular: one degree is Scale units both ways. It spans
// every longitude and the latitudes from North down to South, which leaves
// out Antarctica (nobody signs in from there, and it would take a fifth of
// the height).
const (
	Scale  = 2
	North  = 84.0  // Greenland's and Canada's northern tips
	South  = -58.0 // just below Cape Horn
	Width  = 360 * Scale
	Height = int((North - South) * Scale)
)

// Project places a latitude and longitude (degrees) on the map: x from the
// left, y from the top, in the units of Land. Places outside the latitudes
// drawn are clamped to the map's edge, so a dot never leaves the picture.
func Project(lat, lon float64) (x, y float64) {
	return linear(min(max(lat, South), North), min(max(lon, -180), 180))
}

// linear is Project without the clamp: the generator draws land that
// crosses the antimeridian past the edge, where the viewBox cuts it.
func linear(lat, lon float64) (x, y float64) {
	return (lon + 180) * Scale, (North - lat) * Scale
}

// Projection is Project with the latitudes shown, as the generator takes it.
var Projection = topo.Projection{Project: linear, North: North, South: South}
