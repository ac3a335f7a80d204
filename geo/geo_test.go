package geo_test

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"doorman/geo"
	"doorman/geo/geotest"
)

// testRecords mimic the real data, including its quirks: DB-IP's
// neighbourhood suffixes, regions equal to cities, and a record for a
// private network (the real files have none; it proves geo never asks).
var testRecords = map[string]geotest.Record{
	"81.2.69.0/24":        {City: "London", Region: "England", CountryCode: "GB", Latitude: 51.5074, Longitude: -0.1278},
	"89.160.20.112/28":    {City: "Berlin (Bezirk Tempelhof-Schoneberg)", Region: "State of Berlin", CountryCode: "DE"},
	"67.43.156.0/24":      {City: "Austin", Region: "Texas", CountryCode: "US"},
	"175.16.199.0/24":     {City: "Vienna", Region: "Vienna", CountryCode: "AT"},
	"1.0.0.0/24":          {CountryCode: "AU"},
	"1.0.1.0/24":          {Region: "Bavaria", CountryCode: "DE"},
	"1.0.2.0/24":          {City: "Atlantis", CountryCode: "QQ"},
	"1.0.3.0/24":          {},
	"1.0.4.0/24":          {CountryCode: "ZZ"},
	"1.0.5.0/24":          {City: " Lyon ", Region: "auvergne-rhône-alpes", CountryCode: "fr"},
	"5.0.0.0/8":           {CountryCode: "FR"},
	"5.5.5.0/24":          {City: "Paris", Region: "Île-de-France", CountryCode: "FR"},
	"100.128.0.0/16":      {City: "Seattle", Region: "Washington", CountryCode: "US"},
	"10.0.0.0/8":          {City: "Leak", CountryCode: "US", Latitude: 47.6, Longitude: -122.3},
	"2a02:8108::/32":      {City: "Berlin", Region: "Berlin", CountryCode: "DE"},
	"2001:4860::/32":      {City: "Mountain View", Region: "California", CountryCode: "US"},
	"2c0f:f248::1":        {City: "Cape Town", Region: "Western Cape", CountryCode: "ZA", Latitude: -33.9249, Longitude: 18.4241},
	"fd00:1234::/32":      {City: "Leak", CountryCode: "US", Latitude: 47.6, Longitude: -122.3},
	"203.0.113.7":         {City: "Tokyo", Region: "Tokyo", CountryCode: "JP"},
	"198.51.100.0/24":     {City: "São Paulo", Region: "São Paulo", CountryCode: "BR"},
	"192.0.2.0/24":        {City: "Reykjavik", Region: "Capital Region", CountryCode: "IS"},
	"2400:cb00::/32":      {City: "Singapore", Region: "Singapore", CountryCode: "SG"},
	"2a00:1450:4001::/48": {City: "Frankfurt am Main (Innenstadt I)", Region: "Hesse", CountryCode: "DE"},
}

func openTestDB(t testing.TB) *geo.Resolver {
	t.Helper()
	dir := t.TempDir()
	geotest.WriteDB(t, dir, testRecords)
	r, err := geo.Open(dir)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := r.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return r
}

func place(city, region, country, label, short string) geo.Location {
	return geo.Location{City: city, Region: region, Country: country, Label: label, Short: short}
}

var (
	unknown      = place("", "", "", geo.LabelUnknown, geo.LabelUnknown)
	thisComputer = place("", "", "", geo.LabelThisComputer, geo.LabelThisComputer)
	localNetwork = place("", "", "", geo.LabelLocalNetwork, geo.LabelLocalNetwork)
)

// specialCases hold for every resolver, with data or without.
var specialCases = []struct {
	addr string
	want geo.Location
}{
	{"127.0.0.1", thisComputer},
	{"127.8.9.10", thisComputer},
	{"::1", thisComputer},
	{"::ffff:127.0.0.1", thisComputer},
	{"10.1.2.3", localNetwork}, // in testRecords, and still local
	{"172.16.0.1", localNetwork},
	{"172.31.255.255", localNetwork},
	{"192.168.1.1", localNetwork},
	{"::ffff:192.168.1.1", localNetwork},
	{"169.254.1.1", localNetwork},
	{"fe80::1", localNetwork},
	{"fe80::1%eth0", localNetwork},
	{"fc00::1", localNetwork},
	{"fd00:1234::1", localNetwork}, // in testRecords, and still local
	{"100.64.0.1", localNetwork},
	{"100.127.255.255", localNetwork},
}

func TestLookup(t *testing.T) {
	r := openTestDB(t)
	if !r.HasData() {
		t.Fatal("HasData() = false, want true")
	}
	tests := []struct {
		addr string
		want geo.Location
	}{
		{"81.2.69.160", place("London", "England", "United Kingdom", "London, England, United Kingdom", "London")},
		{"::ffff:81.2.69.160", place("London", "England", "United Kingdom", "London, England, United Kingdom", "London")},
		{"89.160.20.113", place("Berlin", "State of Berlin", "Germany", "Berlin, State of Berlin, Germany", "Berlin")},
		{"89.160.20.128", unknown}, // just past the /28
		{"67.43.156.1", place("Austin", "Texas", "United States", "Austin, Texas, United States", "Austin")},
		{"175.16.199.9", place("Vienna", "", "Austria", "Vienna, Austria", "Vienna")},
		{"1.0.0.1", place("", "", "Australia", "Australia", "Australia")},
		{"1.0.1.1", place("", "Bavaria", "Germany", "Bavaria, Germany", "Bavaria")},
		{"1.0.2.1", place("Atlantis", "", "QQ", "Atlantis, QQ", "Atlantis")},
		{"1.0.3.1", unknown}, // empty record
		{"1.0.4.1", unknown}, // ZZ is "unknown", not a place
		{"1.0.5.1", place("Lyon", "auvergne-rhône-alpes", "France", "Lyon, auvergne-rhône-alpes, France", "Lyon")},
		{"5.5.5.5", place("Paris", "Île-de-France", "France", "Paris, Île-de-France, France", "Paris")},
		{"5.6.7.8", place("", "", "France", "France", "France")},
		{"100.128.0.1", place("Seattle", "Washington", "United States", "Seattle, Washington, United States", "Seattle")}, // just past CGNAT
		{"203.0.113.7", place("Tokyo", "", "Japan", "Tokyo, Japan", "Tokyo")},
		{"203.0.113.8", unknown},
		{"198.51.100.1", place("São Paulo", "", "Brazil", "São Paulo, Brazil", "São Paulo")},
		{"192.0.2.1", place("Reykjavik", "Capital Region", "Iceland", "Reykjavik, Capital Region, Iceland", "Reykjavik")},
		{"2a02:8108::1", place("Berlin", "", "Germany", "Berlin, Germany", "Berlin")},
		{"2a02:8108:ffff::1", place("Berlin", "", "Germany", "Berlin, Germany", "Berlin")},
		{"2001:4860:4860::8888", place("Mountain View", "California", "United States", "Mountain View, California, United States", "Mountain View")},
		{"2c0f:f248::1", place("Cape Town", "Western Cape", "South Africa", "Cape Town, Western Cape, South Africa", "Cape Town")},
		{"2c0f:f248::2", unknown},
		{"2400:cb00::1", place("Singapore", "", "Singapore", "Singapore, Singapore", "Singapore")},
		{"2a00:1450:4001::1", place("Frankfurt am Main", "Hesse", "Germany", "Frankfurt am Main, Hesse, Germany", "Frankfurt am Main")},
		{"9.9.9.9", unknown},
		{"2600::1", unknown},
		{"0.0.0.0", unknown},
		{"::", unknown},
		{"224.0.0.1", unknown},
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			if got := r.Lookup(netip.MustParseAddr(tt.addr)); got != tt.want {
				t.Errorf("Lookup(%s) = %+v,\nwant %+v", tt.addr, got, tt.want)
			}
		})
	}
	for _, tt := range specialCases {
		t.Run(tt.addr, func(t *testing.T) {
			if got := r.Lookup(netip.MustParseAddr(tt.addr)); got != tt.want {
				t.Errorf("Lookup(%s) = %+v, want %+v", tt.addr, got, tt.want)
			}
		})
	}
	t.Run("zero Addr", func(t *testing.T) {
		if got := r.Lookup(netip.Addr{}); got != unknown {
			t.Errorf("Lookup(netip.Addr{}) = %+v, want %+v", got, unknown)
		}
	})
}

func TestCoordinates(t *testing.T) {
	r := openTestDB(t)
	for _, tt := range []struct {
		addr     string
		lat, lon float64
	}{
		{"81.2.69.160", 51.5074, -0.1278},
		{"::ffff:81.2.69.160", 51.5074, -0.1278},
		{"2c0f:f248::1", -33.9249, 18.4241},
	} {
		lat, lon, ok := r.Coordinates(netip.MustParseAddr(tt.addr))
		// The file stores 32-bit floats: a few metres off is the data.
		if !ok || abs(lat-tt.lat) > 1e-4 || abs(lon-tt.lon) > 1e-4 {
			t.Errorf("Coordinates(%s) = %v, %v, %v; want %v, %v, true", tt.addr, lat, lon, ok, tt.lat, tt.lon)
		}
	}
	// Not placed: a record without coordinates (0, 0), an address not in
	// the data, every special case (10.0.0.0/8 and fd00:1234::/32 are in
	// the data and must still not be asked), the zero address, no data.
	unplaced := []string{"1.0.3.1", "5.5.5.5", "8.8.8.8"}
	for _, tt := range specialCases {
		unplaced = append(unplaced, tt.addr)
	}
	for _, addr := range unplaced {
		if lat, lon, ok := r.Coordinates(netip.MustParseAddr(addr)); ok {
			t.Errorf("Coordinates(%s) = %v, %v, true; want not placed", addr, lat, lon)
		}
	}
	if _, _, ok := r.Coordinates(netip.Addr{}); ok {
		t.Error("Coordinates(netip.Addr{}) placed")
	}
	var none *geo.Resolver
	if _, _, ok := none.Coordinates(netip.MustParseAddr("81.2.69.160")); ok {
		t.Error("a nil Resolver placed an address")
	}
}

func abs(f float64) float64 { return max(f, -f) }

func TestLookupWithoutData(t *testing.T) {
	empty, err := geo.Open(t.TempDir())
	if err != nil {
		t.Fatalf("Open(empty dir): %v", err)
	}
	disabled, err := geo.Open("")
	if err != nil {
		t.Fatalf(`Open(""): %v`, err)
	}
	resolvers := []struct {
		name string
		r    *geo.Resolver
	}{
		{"nil", nil},
		{"empty dir", empty},
		{"no dir", disabled},
	}
	for _, res := range resolvers {
		t.Run(res.name, func(t *testing.T) {
			if res.r.HasData() {
				t.Error("HasData() = true, want false")
			}
			for _, addr := range []string{"81.2.69.160", "2a02:8108::1", "8.8.8.8"} {
				if got := res.r.Lookup(netip.MustParseAddr(addr)); got != unknown {
					t.Errorf("Lookup(%s) = %+v, want %+v", addr, got, unknown)
				}
			}
			for _, tt := range specialCases {
				if got := res.r.Lookup(netip.MustParseAddr(tt.addr)); got != tt.want {
					t.Errorf("Lookup(%s) = %+v, want %+v", tt.addr, got, tt.want)
				}
			}
			if got := res.r.Lookup(netip.Addr{}); got != unknown {
				t.Errorf("Lookup(netip.Addr{}) = %+v, want %+v", got, unknown)
			}
			if err := res.r.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
	}
}

func TestOpenErrors(t *testing.T) {
	// good writes a valid pair into a fresh directory and returns it.
	good := func(t *testing.T) string {
		dir := t.TempDir()
		geotest.WriteDB(t, dir, testRecords)
		return dir
	}
	tests := []struct {
		name  string
		setup func(t *testing.T) string // returns the dir to open
		want  string                    // substring of the error
	}{
		{"IPv4 file only", func(t *testing.T) string {
			dir := good(t)
			mustRemove(t, filepath.Join(dir, geo.IPv6File))
			return dir
		}, "is missing"},
		{"IPv6 file only", func(t *testing.T) string {
			dir := good(t)
			mustRemove(t, filepath.Join(dir, geo.IPv4File))
			return dir
		}, "is missing"},
		{"corrupt IPv4 file", func(t *testing.T) string {
			dir := good(t)
			mustWrite(t, filepath.Join(dir, geo.IPv4File), []byte("this is not a MaxMind DB"))
			return dir
		}, geo.IPv4File},
		{"truncated IPv6 file", func(t *testing.T) string {
			dir := good(t)
			path := filepath.Join(dir, geo.IPv6File)
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			mustWrite(t, path, data[:len(data)/2])
			return dir
		}, geo.IPv6File},
		{"empty IPv4 file", func(t *testing.T) string {
			dir := good(t)
			mustWrite(t, filepath.Join(dir, geo.IPv4File), nil)
			return dir
		}, geo.IPv4File},
		{"IPv4 database under the IPv6 name", func(t *testing.T) string {
			dir := good(t)
			data, err := os.ReadFile(filepath.Join(dir, geo.IPv4File))
			if err != nil {
				t.Fatal(err)
			}
			mustWrite(t, filepath.Join(dir, geo.IPv6File), data)
			return dir
		}, "is an IPv4 database"},
		{"directory instead of a file", func(t *testing.T) string {
			dir := good(t)
			mustRemove(t, filepath.Join(dir, geo.IPv4File))
			if err := os.Mkdir(filepath.Join(dir, geo.IPv4File), 0o755); err != nil {
				t.Fatal(err)
			}
			return dir
		}, geo.IPv4File},
		{"dir is a file", func(t *testing.T) string {
			path := filepath.Join(t.TempDir(), "file")
			mustWrite(t, path, []byte("x"))
			return path
		}, "not a directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := geo.Open(tt.setup(t))
			if err == nil {
				_ = r.Close()
				t.Fatalf("Open succeeded, want an error containing %q", tt.want)
			}
			if r != nil {
				t.Errorf("Open returned a Resolver with the error %v", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Open error = %q, want it to contain %q", err, tt.want)
			}
		})
	}
}

func mustRemove(t *testing.T, path string) {
	t.Helper()
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
}

func mustWrite(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestWriteDBMoreSpecificWins(t *testing.T) {
	// Insert order follows map order, which Go randomises: repeat so a
	// wrong order would show.
	for range 20 {
		dir := t.TempDir()
		geotest.WriteDB(t, dir, map[string]geotest.Record{
			"5.0.0.0/8":  {CountryCode: "FR"},
			"5.5.0.0/16": {Region: "Brittany", CountryCode: "FR"},
			"5.5.5.0/24": {City: "Rennes", Region: "Brittany", CountryCode: "FR"},
		})
		r, err := geo.Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		for addr, want := range map[string]string{"5.5.5.5": "Rennes", "5.5.6.6": "Brittany", "5.6.6.6": "France"} {
			if got := r.Lookup(netip.MustParseAddr(addr)).Short; got != want {
				t.Errorf("Lookup(%s).Short = %q, want %q", addr, got, want)
			}
		}
		if err := r.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestLookupConcurrent(t *testing.T) {
	r := openTestDB(t)
	want := r.Lookup(netip.MustParseAddr("81.2.69.160"))
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 1000 {
				if got := r.Lookup(netip.MustParseAddr("81.2.69.160")); got != want {
					t.Errorf("concurrent Lookup = %+v, want %+v", got, want)
					return
				}
			}
		})
	}
	wg.Wait()
}

// TestRealData checks the downloaded DB-IP files, when there are some.
func TestRealData(t *testing.T) {
	dir := os.Getenv("DOORMAN_GEOIP_DIR")
	if dir == "" {
		t.Skip("DOORMAN_GEOIP_DIR is not set; set it to the directory holding the DB-IP files (e.g. ./data after make setup) to test against the real data")
	}
	for _, name := range []string{geo.IPv4File, geo.IPv6File} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Fatalf("DOORMAN_GEOIP_DIR=%s: %v", dir, err)
		}
	}
	r, err := geo.Open(dir)
	if err != nil {
		t.Fatalf("Open(%s): %v", dir, err)
	}
	t.Cleanup(func() {
		if err := r.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	if !r.HasData() {
		t.Fatal("HasData() = false with both files present")
	}
	// Well-known anycast resolvers: their city may move between releases,
	// their having a country should not.
	for _, addr := range []string{"8.8.8.8", "1.1.1.1", "::ffff:9.9.9.9", "2001:4860:4860::8888", "2606:4700:4700::1111"} {
		got := r.Lookup(netip.MustParseAddr(addr))
		t.Logf("%s: %+v", addr, got)
		if got.Country == "" || got.Label == geo.LabelUnknown {
			t.Errorf("Lookup(%s) = %+v, want a country", addr, got)
		}
		if len(got.Country) == 2 {
			t.Errorf("Lookup(%s).Country = %q: a code, not a name", addr, got.Country)
		}
		if lat, lon, ok := r.Coordinates(netip.MustParseAddr(addr)); !ok {
			t.Errorf("Coordinates(%s) = %v, %v, false; want a place", addr, lat, lon)
		}
	}
	for _, tt := range specialCases {
		if got := r.Lookup(netip.MustParseAddr(tt.addr)); got != tt.want {
			t.Errorf("Lookup(%s) = %+v, want %+v", tt.addr, got, tt.want)
		}
	}
}

func FuzzLookup(f *testing.F) {
	r := openTestDB(f)
	for _, s := range []string{"81.2.69.160", "::ffff:81.2.69.160", "2a02:8108::1", "fe80::1%eth0", "", "not an ip", "100.64.0.1"} {
		f.Add(s, []byte(nil))
	}
	for _, b := range [][]byte{{81, 2, 69, 160}, {127, 0, 0, 1}, netip.MustParseAddr("2a02:8108::1").AsSlice(), {1, 2, 3}, nil} {
		f.Add("", b)
	}
	f.Fuzz(func(t *testing.T, s string, raw []byte) {
		parsed, _ := netip.ParseAddr(s)          // invalid text gives the zero Addr, which must work too
		fromBytes, _ := netip.AddrFromSlice(raw) // likewise for a slice that is not 4 or 16 bytes
		for _, addr := range []netip.Addr{parsed, fromBytes} {
			for _, res := range []*geo.Resolver{r, nil} {
				got := res.Lookup(addr)
				if got.Label == "" || got.Short == "" {
					t.Fatalf("Lookup(%v) = %+v: empty label", addr, got)
				}
			}
		}
	})
}

// BenchmarkLookup measures a hit, on the real data when DOORMAN_GEOIP_DIR
// is set and on a test database otherwise.
func BenchmarkLookup(b *testing.B) {
	r := openTestDB(b)
	addr4, addr6 := netip.MustParseAddr("81.2.69.160"), netip.MustParseAddr("2001:4860:4860::8888")
	if dir := os.Getenv("DOORMAN_GEOIP_DIR"); dir != "" {
		realData, err := geo.Open(dir)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = realData.Close() })
		r = realData
		addr4 = netip.MustParseAddr("89.160.20.113")
	}
	for _, bb := range []struct {
		name string
		addr netip.Addr
	}{{"IPv4", addr4}, {"IPv6", addr6}, {"private", netip.MustParseAddr("192.168.1.1")}} {
		b.Run(bb.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if r.Lookup(bb.addr).Label == geo.LabelUnknown {
					b.Fatalf("Lookup(%s) is unknown", bb.addr)
				}
			}
		})
	}
}
