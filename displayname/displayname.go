// Package displayname cleans a name someone chose (an access token's, an
// app's) before it is stored and shown to people.
package displayname

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Clean returns s without what could hide or reorder text around it: invalid
// UTF-8, control characters (Unicode Cc) and format characters (Cf: bidi
// overrides and isolates such as U+202E and U+2066, zero-width characters
// such as U+200B), which would let "Backup\u202Eexe.txt" read as another
// name on the Security page, in a screen reader or in a terminal. Runs of
// white space (tabs, line breaks included) become one space, and the ends
// are trimmed. An empty result means the name had nothing visible.
func Clean(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	space := false
	for _, r := range s {
		switch {
		case unicode.IsSpace(r):
			space = b.Len() > 0
			continue
		case r == utf8.RuneError, unicode.IsControl(r), unicode.Is(unicode.Cf, r):
			continue
		}
		if space {
			b.WriteByte(' ')
			space = false
		}
		b.WriteRune(r)
	}
	return b.String()
}
