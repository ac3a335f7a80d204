package live

// The instance's stream limit, when the operator sets none, comes from the
// process's open-file limit: every open stream holds a connection, one file
// descriptor, for as long as its tab is open, and running out of
// descriptors refuses everything else too (pages, the database's files and
// connections, the GeoIP files, mail). Streams get a quarter; the rest is
// left to everything else.
const (
	// minDerivedStreams is the least derived limit: a tiny open-file limit
	// still lets a few tabs watch their sessions.
	minDerivedStreams = 64
	// maxDerivedStreams is the most: past it memory, not descriptors, is
	// what runs out (about 41 kB a stream, docs/BENCHMARKS-LIVE.md, so
	// ~650 MB here). -max-streams sets any number.
	maxDerivedStreams = 16384
	// unknownFileLimit is assumed where the limit cannot be read (the
	// common default soft limit).
	unknownFileLimit = 1024
)

// StreamsForFileLimit is the default Limits.Total: a quarter of the soft
// RLIMIT_NOFILE (which Go raises to the hard limit at start), between
// 64 and 16,384.
func StreamsForFileLimit() int { return streamsFor(openFileLimit()) }

func streamsFor(nofile uint64) int {
	if nofile == 0 {
		nofile = unknownFileLimit
	}
	return int(min(max(nofile/4, minDerivedStreams), maxDerivedStreams))
}
