package sqlstore

import (
	"strconv"
	"strings"
	"sync"
)

// rebound caches Rebind's results: the store's statements are constants,
// or built from a few constants, so the cache stays small.
var rebound sync.Map

// Rebind rewrites a statement's placeholders from SQLite's (? for each
// argument in turn, ?N for the Nth) to PostgreSQL's ($N). Question marks
// inside quoted strings or identifiers, and in comments, are left alone.
func Rebind(query string) string {
	if v, ok := rebound.Load(query); ok {
		return v.(string)
	}
	out := rebind(query)
	rebound.Store(query, out)
	return out
}

func rebind(q string) string {
	if !strings.ContainsRune(q, '?') {
		return q
	}
	var b strings.Builder
	b.Grow(len(q) + 8)
	n := 0
	for i := 0; i < len(q); i++ {
		c := q[i]
		switch {
		case c == '\'' || c == '"':
			j := i + 1
			for j < len(q) && q[j] != c {
				j++
			}
			b.WriteString(q[i:min(j+1, len(q))])
			i = j
		case c == '-' && i+1 < len(q) && q[i+1] == '-':
			j := strings.IndexByte(q[i:], '\n')
			if j < 0 {
				j = len(q) - i
			}
			b.WriteString(q[i : i+j])
			i += j - 1
		case c == '?':
			j := i + 1
			for j < len(q) && q[j] >= '0' && q[j] <= '9' {
				j++
			}
			b.WriteByte('$')
			if j > i+1 {
				b.WriteString(q[i+1 : j])
			} else {
				n++
				b.WriteString(strconv.Itoa(n))
			}
			i = j - 1
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}
