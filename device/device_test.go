package device

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// Real headers. The three Playwright ones are copied verbatim from
// playwright-core 1.52.0's deviceDescriptorsSource.json, so the e2e tests'
// emulated devices get the labels asserted here.
const (
	pwIPhone13 = "Mozilla/5.0 (iPhone; CPU iPhone OS 15_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.4 Mobile/15E148 Safari/604.1"
	pwPixel7   = "Mozilla/5.0 (Linux; Android 14; Pixel 7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/136.0.7103.25 Mobile Safari/537.36"
	pwIPadGen7 = "Mozilla/5.0 (iPad; CPU OS 12_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.4 Mobile/15E148 Safari/604.1"
	// Playwright's "Galaxy Tab S4": Chrome on an Android tablet omits "Mobile".
	pwGalaxyTabS4 = "Mozilla/5.0 (Linux; Android 8.1.0; SM-T837A) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/136.0.7103.25 Safari/537.36"
	// Playwright's "Desktop Chrome" (on Windows) and Chromium's own headless default.
	pwDesktopChrome = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/136.0.7103.25 Safari/537.36"
	headlessChrome  = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/136.0.7103.25 Safari/537.36"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name      string
		userAgent string
		want      Info
	}{
		// Playwright device profiles.
		{"playwright iPhone 13", pwIPhone13, Info{"Safari on iPhone", Phone}},
		{"playwright Pixel 7", pwPixel7, Info{"Chrome on Android", Phone}},
		{"playwright iPad (gen 7)", pwIPadGen7, Info{"Safari on iPad", Tablet}},
		{"playwright Galaxy Tab S4", pwGalaxyTabS4, Info{"Chrome on Android", Tablet}},
		{"playwright Desktop Chrome", pwDesktopChrome, Info{"Chrome on Windows", Desktop}},
		{"headless Chromium", headlessChrome, Info{"Headless Chrome on Linux", Desktop}},

		// Desktop browsers.
		{"Chrome on Linux",
			"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/136.0.0.0 Safari/537.36",
			Info{"Chrome on Linux", Desktop}},
		{"Chrome on macOS",
			"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/136.0.0.0 Safari/537.36",
			Info{"Chrome on macOS", Desktop}},
		{"Chrome on ChromeOS",
			"Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
			Info{"Chrome on ChromeOS", Desktop}},
		{"Safari on macOS",
			"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.4 Safari/605.1.15",
			Info{"Safari on macOS", Desktop}},
		{"Firefox on Windows",
			"Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:137.0) Gecko/20100101 Firefox/137.0",
			Info{"Firefox on Windows", Desktop}},
		{"Firefox on Linux",
			"Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:137.0) Gecko/20100101 Firefox/137.0",
			Info{"Firefox on Linux", Desktop}},
		{"Firefox on macOS",
			"Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:137.0) Gecko/20100101 Firefox/137.0",
			Info{"Firefox on macOS", Desktop}},
		{"Edge on Windows",
			"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/136.0.7103.25 Safari/537.36 Edg/136.0.7103.25",
			Info{"Edge on Windows", Desktop}},
		{"Opera on Windows",
			"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 OPR/106.0.0.0",
			Info{"Opera on Windows", Desktop}},
		{"Vivaldi on Windows",
			"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 Vivaldi/6.5",
			Info{"Vivaldi on Windows", Desktop}},
		{"Internet Explorer 11",
			"Mozilla/5.0 (Windows NT 10.0; Trident/7.0; rv:11.0) like Gecko",
			Info{"Internet Explorer on Windows", Desktop}},

		// Mobile browsers.
		{"Chrome on iPhone (CriOS)",
			"Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/124.0.6367.88 Mobile/15E148 Safari/604.1",
			Info{"Chrome on iPhone", Phone}},
		{"Firefox on iPhone (FxiOS)",
			"Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) FxiOS/125.0 Mobile/15E148 Safari/605.1.15",
			Info{"Firefox on iPhone", Phone}},
		{"Samsung Internet on a phone",
			"Mozilla/5.0 (Linux; Android 14; SAMSUNG SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/25.0 Chrome/121.0.0.0 Mobile Safari/537.36",
			Info{"Samsung Internet on Android", Phone}},
		{"Samsung Internet on a tablet",
			"Mozilla/5.0 (Linux; Android 13; SM-X700) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/23.0 Chrome/115.0.0.0 Safari/537.36",
			Info{"Samsung Internet on Android", Tablet}},
		{"Firefox on an Android phone",
			"Mozilla/5.0 (Android 14; Mobile; rv:125.0) Gecko/125.0 Firefox/125.0",
			Info{"Firefox on Android", Phone}},
		{"Firefox on an Android tablet",
			"Mozilla/5.0 (Android 14; Tablet; rv:125.0) Gecko/125.0 Firefox/125.0",
			Info{"Firefox on Android", Tablet}},
		{"Edge on Android (reduced UA)",
			"Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36 EdgA/120.0",
			Info{"Edge on Android", Phone}},
		{"Facebook in-app browser",
			"Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 [FBAN/FBIOS;FBAV/450.0]",
			Info{"Facebook on iPhone", Phone}},

		// Non-browser clients: named, because the library knows them.
		{"curl", "curl/8.5.0", Info{"curl", Desktop}},
		{"Go HTTP client", "Go-http-client/1.1", Info{"Go HTTP client", Desktop}},

		// Unknown or hostile input.
		{"empty", "", Info{"Unknown browser", Desktop}},
		{"whitespace", "   ", Info{"Unknown browser", Desktop}},
		{"one word", "garbage", Info{"Unknown browser", Desktop}},
		{"bare Mozilla", "Mozilla/5.0", Info{"Unknown browser", Desktop}},
		{"OS but no browser", "Mozilla/5.0 (X11; Linux x86_64)", Info{"Unknown browser on Linux", Desktop}},
		{"unknown token after Chrome",
			"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 Foo/1.0",
			Info{"Unknown browser on Windows", Desktop}},
		{"free text is never echoed", "Call +1 555 0100 to secure your account", Info{"Unknown browser", Desktop}},
		{"markup is never echoed", `<script>alert(1)</script>`, Info{"Unknown browser", Desktop}},
		{"control characters", "\x00\x01\x1b[31m\u202e", Info{"Unknown browser", Desktop}},
		{"invalid UTF-8", "\xff\xfe\xfd", Info{"Unknown browser", Desktop}},
		{"bot", "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", Info{"Unknown browser", Desktop}},
		{"huge header", strings.Repeat("A/1 ", 100_000), Info{"Unknown browser", Desktop}},
		{"real header padded past the cap", pwPixel7 + strings.Repeat(" x", 1000), Info{"Chrome on Android", Phone}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Parse(tt.userAgent); got != tt.want {
				t.Errorf("Parse(%.80q) = %+v, want %+v", tt.userAgent, got, tt.want)
			}
		})
	}
}

func TestClean(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"Chrome on macOS", "Chrome on macOS"},
		{"", "Unknown browser"},
		{"\x00\x07\x7f", "Unknown browser"},
		{"  Chrome \t\n on   Linux  ", "Chrome on Linux"},
		{"Chrome\u202eon Linux", "Chromeon Linux"}, // bidi override dropped
		{"Chrome\u200bon Linux", "Chromeon Linux"}, // zero-width space dropped
		{"Chr\xffome", "Chrome"},                   // invalid byte dropped
		{strings.Repeat("a", 100), strings.Repeat("a", 60)},
		{strings.Repeat("é", 40), strings.Repeat("é", 30)}, // 2-byte runes: not split
		{strings.Repeat("a", 59) + " b", strings.Repeat("a", 59)},
	}
	for _, tt := range tests {
		if got := clean(tt.in); got != tt.want {
			t.Errorf("clean(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestLabelsFitTheCap proves every label Parse can build today is under the
// cap, so clean's truncation only ever guards future changes.
func TestLabelsFitTheCap(t *testing.T) {
	for _, b := range browsers {
		for _, p := range append([]string{"iPhone", "iPad", "iOS"}, mapValues(platforms)...) {
			if l := b + " on " + p; len(l) > maxLabelLen {
				t.Errorf("label %q is %d bytes, over %d", l, len(l), maxLabelLen)
			}
		}
	}
}

func mapValues(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"", "curl/8.5.0", pwIPhone13, pwPixel7, pwIPadGen7, pwDesktopChrome,
		"Mozilla/5.0 (X11; CrOS x86_64 14541.0.0)", "Mozilla/5.0 (Linux; Android)",
		"(((;;;)))[[]]//::", "\xff\x00 (iPhone; CPU iPhone OS 1_0", "http://x/ Foo/1.0",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, userAgent string) {
		got := Parse(userAgent)
		switch {
		case got.Label == "":
			t.Fatalf("Parse(%q): empty label", userAgent)
		case !utf8.ValidString(got.Label):
			t.Fatalf("Parse(%q): label %q is not valid UTF-8", userAgent, got.Label)
		case len(got.Label) > maxLabelLen:
			t.Fatalf("Parse(%q): label %q is %d bytes, over %d", userAgent, got.Label, len(got.Label), maxLabelLen)
		case strings.IndexFunc(got.Label, unicode.IsControl) >= 0:
			t.Fatalf("Parse(%q): label %q has a control character", userAgent, got.Label)
		}
		switch got.Kind {
		case Desktop, Phone, Tablet:
		default:
			t.Fatalf("Parse(%q): unexpected kind %q", userAgent, got.Kind)
		}
	})
}

func BenchmarkParse(b *testing.B) {
	for b.Loop() {
		Parse(pwPixel7)
	}
}
