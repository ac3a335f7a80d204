package displayname

import "testing"

func TestClean(t *testing.T) {
	for in, want := range map[string]string{
		"Backup tool":                     "Backup tool",
		"  spaced\t\tout\nname  ":         "spaced out name",
		"safe\u202Etxt.exe":               "safetxt.exe",
		"zero\u200Bwidth":                 "zerowidth",
		"\u2066isolate\u2069 d":           "isolate d",
		"bell\a and nul\x00":              "bell and nul",
		"bad \xff utf-8":                  "bad utf-8",
		"line\u2028sep":                   "line sep",
		"\u202E\u200B\u2066\u00AD\uFEFF ": "",
		"Ünïcödé 名前 🚀":                    "Ünïcödé 名前 🚀",
	} {
		if got := Clean(in); got != want {
			t.Errorf("Clean(%q) = %q, want %q", in, got, want)
		}
	}
}
