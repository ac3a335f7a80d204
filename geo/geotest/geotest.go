// Package geotest writes tiny DB-IP-shaped databases, so tests of any
// package can get realistic locations from geo.Open without the 64 MB
// download.
package geotest

import (
	"cmp"
	"errors"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"

	"doorman/geo"
)

// Record is the location stored for one network.
type Record struct {
	City        string // "Berlin"
	Region      string // "State of Berlin"; DB-IP's state1
	CountryCode string // ISO 3166 alpha-2: "DE"
	Latitude    float64
	Longitude   float64
}

// WriteDB writes geo.IPv4File and geo.IPv6File into dir, holding records
// keyed by CIDR prefix ("81.2.69.0/24", "2a02:8108::/32"; a bare address
// means that one address). Both files are always written, even with no
// records of one family, because geo.Open wants the pair.
//
// The files use DB-IP's flat schema and metadata (IPv4-only first file,
// no IPv4 aliases in the second), so a lookup behaves as on the real data.
// Any network may be stored, private ones included, so tests can show that
// geo labels those itself. A more specific prefix wins over a broader one
// whatever the map order. Errors fail the test.
func WriteDB(t testing.TB, dir string, records map[string]Record) {
	t.Helper()

	v4 := newTree(t, 4)
	v6 := newTree(t, 6)

	// Broad prefixes first: an insert replaces everything inside its
	// network, so this order makes the more specific record win.
	prefixes := make([]netip.Prefix, 0, len(records))
	values := make(map[netip.Prefix]Record, len(records))
	for key, rec := range records {
		p, err := parsePrefix(key)
		if err != nil {
			t.Fatalf("geotest: key %q: %v", key, err)
		}
		if _, dup := values[p]; dup {
			t.Fatalf("geotest: key %q: prefix %s given twice", key, p)
		}
		prefixes = append(prefixes, p)
		values[p] = rec
	}
	slices.SortFunc(prefixes, func(a, b netip.Prefix) int {
		return cmp.Or(cmp.Compare(a.Bits(), b.Bits()), a.Addr().Compare(b.Addr()))
	})

	for _, p := range prefixes {
		tree := v6
		if p.Addr().Is4() {
			tree = v4
		}
		network := &net.IPNet{
			IP:   p.Addr().AsSlice(),
			Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen()),
		}
		if err := tree.Insert(network, value(values[p])); err != nil {
			t.Fatalf("geotest: insert %s: %v", p, err)
		}
	}

	write(t, filepath.Join(dir, geo.IPv4File), v4)
	write(t, filepath.Join(dir, geo.IPv6File), v6)
}

func newTree(t testing.TB, ipVersion int) *mmdbwriter.Tree {
	t.Helper()
	family := map[int]string{4: "ipv4", 6: "ipv6"}[ipVersion]
	tree, err := mmdbwriter.New(mmdbwriter.Options{
		DatabaseType:            "city " + family, // as in the DB-IP files
		IPVersion:               ipVersion,
		RecordSize:              28,
		IncludeReservedNetworks: true,
		DisableIPv4Aliasing:     true,
	})
	if err != nil {
		t.Fatalf("geotest: new IPv%d tree: %v", ipVersion, err)
	}
	return tree
}

// parsePrefix accepts a CIDR prefix or a single address. An IPv4-mapped
// IPv6 prefix is rejected: geo looks IPv4 up in the IPv4 file, so such a
// record could never be found and the test would be wrong.
func parsePrefix(s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		addr, addrErr := netip.ParseAddr(s)
		if addrErr != nil {
			return netip.Prefix{}, err
		}
		p = netip.PrefixFrom(addr, addr.BitLen())
	}
	if p.Addr().Is4In6() {
		return netip.Prefix{}, errUnmapped
	}
	return p.Masked(), nil
}

var errUnmapped = errors.New("an IPv4-mapped IPv6 prefix is never looked up; use the IPv4 prefix")

// value is the record in DB-IP's flat schema, every field present as in the
// real files.
func value(r Record) mmdbtype.Map {
	return mmdbtype.Map{
		"city":         mmdbtype.String(r.City),
		"state1":       mmdbtype.String(r.Region),
		"state2":       mmdbtype.String(""),
		"postcode":     mmdbtype.String(""),
		"country_code": mmdbtype.String(r.CountryCode),
		"latitude":     mmdbtype.Float32(r.Latitude),
		"longitude":    mmdbtype.Float32(r.Longitude),
		"timezone":     mmdbtype.String(""),
	}
}

func write(t testing.TB, path string, tree *mmdbwriter.Tree) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatalf("geotest: %v", err)
	}
	if _, err := tree.WriteTo(f); err != nil {
		_ = f.Close()
		t.Fatalf("geotest: write %s: %v", path, err)
	}
	if err := f.Close(); err != nil {
		t.Fatalf("geotest: close %s: %v", path, err)
	}
}

// Addresses inside the networks WriteSample stores, and what they resolve to.
const (
	SampleBerlin = "89.246.64.10" // Berlin, Germany
	SampleLondon = "81.2.69.160"  // London, England, United Kingdom
	SampleTokyo  = "2400:4050::1" // Tokyo, Japan
)

// WriteSample writes a database with three cities (see the Sample
// addresses): what handler and browser tests use to show real-looking places.
func WriteSample(t testing.TB, dir string) {
	t.Helper()
	WriteDB(t, dir, map[string]Record{
		"89.246.64.0/20": {City: "Berlin", Region: "Berlin", CountryCode: "DE", Latitude: 52.52, Longitude: 13.405},
		"81.2.69.0/24":   {City: "London", Region: "England", CountryCode: "GB", Latitude: 51.5074, Longitude: -0.1278},
		"2400:4050::/32": {City: "Tokyo", Region: "Tokyo", CountryCode: "JP", Latitude: 35.6895, Longitude: 139.6917},
	})
}
