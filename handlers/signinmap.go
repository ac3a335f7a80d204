package handlers

import (
	"net/netip"
	"strconv"

	"doorman/db"
	"doorman/views"
	"doorman/worldmap"
)

// signInMap puts the sessions on the world map: one dot per place (a
// session's location label) that the geolocation data has coordinates for,
// found from the session's last IP address, as its label was. This
// device's place comes first and is marked. Sessions the data cannot place
// ("This computer", "Local network", an unknown address) have no dot; with
// no dot at all there is no map.
func (a *app) signInMap(current db.SessionSummary, others []db.SessionSummary) views.SignInMap {
	type place struct {
		label, short string
		lat, lon     float64
		current      bool
	}
	var places []place
	index := map[string]int{} // label → places index
	for i, s := range append([]db.SessionSummary{current}, others...) {
		if _, seen := index[s.Location]; seen {
			continue
		}
		addr, err := netip.ParseAddr(s.IP)
		if err != nil {
			continue
		}
		lat, lon, ok := a.geo.Coordinates(addr)
		if !ok {
			continue
		}
		index[s.Location] = len(places)
		places = append(places, place{label: s.Location, short: s.LocationShort, lat: lat, lon: lon, current: i == 0})
	}
	if len(places) == 0 {
		return views.SignInMap{}
	}

	// Name places by city, unless two places share it (Portland, Oregon
	// and Portland, Maine): then by their whole label.
	shorts := map[string]int{}
	for _, p := range places {
		shorts[p.short]++
	}
	m := views.SignInMap{}
	names := make([]string, len(places))
	for i, p := range places {
		name := p.short
		if name == "" || shorts[name] > 1 {
			name = p.label
		}
		x, y := worldmap.Project(p.lat, p.lon)
		m.Places = append(m.Places, views.MapPlace{Name: name, X: coord(x), Y: coord(y), Current: p.current})
		names[i] = name
		if p.current {
			m.Here = name
			names[i] = name + " (this device)"
		} else {
			m.Elsewhere = true
		}
	}
	m.Title = "Map: signed in from " + plural(len(places), "place") + ": " + andList(names)
	return m
}

// coord prints a map coordinate to a tenth of a unit (a twentieth of a
// degree: more than an IP address's place is worth).
func coord(f float64) string { return strconv.FormatFloat(f, 'f', 1, 64) }
