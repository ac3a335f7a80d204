package handlers_test

import (
	"html"
	"regexp"
	"strconv"
	"testing"
	"time"

	"doorman/worldmap"
)

// mapDot is a dot the Security page's map draws.
type mapDot struct {
	x, y float64
	here bool
}

var (
	mapSVGRe   = regexp.MustCompile(`(?s)<svg class="signin-map-svg" role="img".*?</svg>`)
	mapTitleRe = regexp.MustCompile(`<title id="signin-map-title">([^<]*)</title>`)
	mapDotRe   = regexp.MustCompile(`<circle class="signin-map-dot( signin-map-here)?" cx="([0-9.]+)" cy="([0-9.]+)"`)
)

// signInMapOf reads the map off a Security page: its title ("" with no
// map) and the dots in the picture (not the legend's).
func signInMapOf(t *testing.T, body string) (title string, dots []mapDot) {
	t.Helper()
	svg := mapSVGRe.FindString(body)
	m := mapTitleRe.FindStringSubmatch(svg)
	if m == nil {
		return "", nil
	}
	title = html.UnescapeString(m[1])
	for _, d := range mapDotRe.FindAllStringSubmatch(svg, -1) {
		x, _ := strconv.ParseFloat(d[2], 64)
		y, _ := strconv.ParseFloat(d[3], 64)
		dots = append(dots, mapDot{x: x, y: y, here: d[1] != ""})
	}
	return title, dots
}

// hasDot reports whether a dot is where a latitude and longitude are on the map, within the tenth
// of a unit the page prints (and the 32-bit floats the data stores).
func hasDot(dots []mapDot, lat, lon float64, here bool) bool {
	x, y := worldmap.Project(lat, lon)
	for _, d := range dots {
		if d.here == here && abs(d.x-x) <= 0.1 && abs(d.y-y) <= 0.1 {
			return true
		}
	}
	return false
}

func abs(f float64) float64 { return max(f, -f) }

// TestSecurityPageMap: the Security page draws a dot on the world map per
// place the account is signed in from (two browsers in Berlin are one
// dot), marks this device's, names every place in the map's title, leaves
// out sessions the data cannot place, and follows sign-outs. With no place
// at all there is no map.
func TestSecurityPageMap(t *testing.T) {
	app := newTestApp(t)
	const (
		berlinLat, berlinLon = 52.52, 13.405
		londonLat, londonLon = 51.5074, -0.1278
		tokyoLat, tokyoLon   = 35.6895, 139.6917
	)

	// Only "This computer": nothing to put on a map.
	local := app.client(uaMacFirefox, "127.0.0.1")
	local.signup("alice@example.com", "correct horse")
	res, _ := local.securityPage()
	if title, _ := signInMapOf(t, res.body); title != "" {
		t.Fatalf("a loopback session drew a map titled %q", title)
	}
	expectNoBody(t, res, `class="signin-map"`)

	desktop := app.client(uaWindowsChrome, ipBerlin)
	desktop.login("alice@example.com", "correct horse")
	res, _ = desktop.securityPage()
	title, dots := signInMapOf(t, res.body)
	if title != "Map: signed in from 1 place: Berlin (this device)" || len(dots) != 1 || !hasDot(dots, berlinLat, berlinLon, true) {
		t.Fatalf("one place: title %q, dots %+v", title, dots)
	}
	expectBody(t, res, `role="img" aria-labelledby="signin-map-title"`, "This device, Berlin")
	expectNoBody(t, res, "Other sessions")

	app.advance(time.Minute)
	phone := app.client(uaIPhone, ipLondon)
	phone.login("alice@example.com", "correct horse")
	app.advance(time.Minute)
	tablet := app.client(uaIPhone, ipTokyo)
	tablet.login("alice@example.com", "correct horse")
	app.advance(time.Minute)
	laptop := app.client(uaMacFirefox, ipBerlin)
	laptop.login("alice@example.com", "correct horse")

	res, rows := desktop.securityPage()
	if len(rows) != 5 {
		t.Fatalf("%d sessions listed, want 5", len(rows))
	}
	title, dots = signInMapOf(t, res.body)
	// This device's place first, then the others as the list orders them
	// (most recently active first); Berlin's second browser adds no dot.
	if want := "Map: signed in from 3 places: Berlin (this device), Tokyo and London"; title != want {
		t.Errorf("title %q, want %q", title, want)
	}
	if len(dots) != 3 || !hasDot(dots, berlinLat, berlinLon, true) ||
		!hasDot(dots, tokyoLat, tokyoLon, false) || !hasDot(dots, londonLat, londonLon, false) {
		t.Errorf("dots %+v, want Berlin (here), Tokyo and London", dots)
	}
	expectBody(t, res, "This device, Berlin", "Other sessions")

	// From London, London is this device's place and Berlin is elsewhere.
	res, _ = phone.securityPage()
	title, dots = signInMapOf(t, res.body)
	if want := "Map: signed in from 3 places: London (this device), Berlin and Tokyo"; title != want {
		t.Errorf("phone's title %q, want %q", title, want)
	}
	if len(dots) != 3 || !hasDot(dots, londonLat, londonLon, true) || !hasDot(dots, berlinLat, berlinLon, false) {
		t.Errorf("phone's dots %+v, want London here and Berlin elsewhere", dots)
	}

	// Tokyo signs out: its dot goes.
	expectRedirect(t, tablet.post("/logout", nil), "/login")
	res, _ = desktop.securityPage()
	title, dots = signInMapOf(t, res.body)
	if want := "Map: signed in from 2 places: Berlin (this device) and London"; title != want || len(dots) != 2 || hasDot(dots, tokyoLat, tokyoLon, false) {
		t.Errorf("after Tokyo signed out: title %q, dots %+v", title, dots)
	}

	// Another account's places are not on Alice's map, nor hers on theirs.
	bob := app.client(uaWindowsChrome, ipTokyo)
	bob.signup("bob@example.com", "battery staple")
	res, _ = bob.securityPage()
	if title, dots := signInMapOf(t, res.body); title != "Map: signed in from 1 place: Tokyo (this device)" || len(dots) != 1 {
		t.Errorf("bob's map: %q, %+v", title, dots)
	}
	res, _ = desktop.securityPage()
	if _, dots := signInMapOf(t, res.body); len(dots) != 2 || hasDot(dots, tokyoLat, tokyoLon, false) {
		t.Errorf("alice's map after bob signed up in Tokyo: %+v", dots)
	}
}
