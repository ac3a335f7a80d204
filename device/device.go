// Package device turns a User-Agent header into a short label such as
// "Chrome on macOS" and a device kind, so a user can recognise their own
// sessions at a glance.
//
// The User-Agent is chosen by the client, so a label is a hint for the user,
// never evidence: anyone can send any browser's header.
package device

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/mileusna/useragent"
)

// Kind is the broad class of device, used to pick an icon.
type Kind string

// The device kinds Parse reports.
const (
	// Desktop is a computer, and the fallback when nothing better is known.
	Desktop Kind = "desktop"
	// Phone is a mobile phone.
	Phone Kind = "phone"
	// Tablet is an iPad or an Android tablet.
	Tablet Kind = "tablet"
)

// Info is what a user agent says about the device, ready to show.
type Info struct {
	// Label is "<Browser> on <Platform>", "Unknown browser" or
	// "Unknown browser on <Platform>": short, printable, at most 60 bytes.
	Label string
	// Kind is the device class, for the icon.
	Kind Kind
}

// UnknownBrowser is the label of an agent whose browser is not recognised.
const UnknownBrowser = "Unknown browser"

// maxLabelLen is the longest label Parse returns, in bytes. Every label is
// built from the fixed names below and is far shorter; the cap is a backstop
// so a future change can never push a long string into a tight layout.
const maxLabelLen = 60

// maxInput bounds how much of the header is parsed. The header is attacker
// controlled and the parser does many linear scans over its tokens; real
// user agents are a few hundred bytes, so 1 KiB keeps every real one whole
// while making the cost of a hostile 1 MB header negligible.
const maxInput = 1024

// browsers maps the library's browser names to the names we show. It is an
// allow-list on purpose: for a browser it does not know, the library falls
// back to echoing an arbitrary token of the header, or the whole header, as
// the name. Showing that would put client-chosen free text ("Call support at
// ...") into the page where users decide whether a session is theirs, so any
// name not listed here becomes "Unknown browser".
//
// Non-browser clients the library names reliably (curl, Wget, Go's and
// Python's HTTP clients, Postman) are listed too: "curl" is more useful than
// "Unknown browser" when someone scripts against their own account, and the
// names are still ours, not the header's.
var browsers = map[string]string{
	useragent.Chrome:           "Chrome",
	useragent.HeadlessChrome:   "Headless Chrome",
	useragent.Firefox:          "Firefox",
	useragent.Safari:           "Safari",
	useragent.Edge:             "Edge",
	useragent.Opera:            "Opera",
	useragent.OperaMini:        "Opera Mini",
	useragent.OperaTouch:       "Opera Touch",
	useragent.Vivaldi:          "Vivaldi",
	useragent.InternetExplorer: "Internet Explorer",
	"Trident":                  "Internet Explorer", // IE 11 dropped "MSIE" from its header.
	useragent.SamsungBrowser:   "Samsung Internet",  // the product's real name
	"YaBrowser":                "Yandex Browser",
	"Miui Browser":             "MIUI Browser",
	"Huawei Browser":           "Huawei Browser",
	"Android browser":          "Android Browser",
	useragent.FacebookApp:      "Facebook",
	useragent.InstagramApp:     "Instagram",
	useragent.TiktokApp:        "TikTok",

	"curl":            "curl",
	"Wget":            "Wget",
	"Go-http-client":  "Go HTTP client",
	"python-requests": "Python Requests",
	"PostmanRuntime":  "Postman",
}

// platforms maps the library's OS names to the names we show. iOS is not
// here: for it the device ("iPhone", "iPad") says more than the OS.
var platforms = map[string]string{
	useragent.Android:      "Android",
	useragent.Windows:      "Windows",
	useragent.WindowsPhone: "Windows Phone",
	useragent.MacOS:        "macOS",
	useragent.Linux:        "Linux",
	useragent.FreeBSD:      "FreeBSD",
	useragent.ChromeOS:     "ChromeOS",
	useragent.BlackBerry:   "BlackBerry",
	useragent.Harmony:      "HarmonyOS",
}

// Parse describes the device behind a User-Agent header. It never fails:
// anything it cannot read is an "Unknown browser" on a Desktop.
//
// iPadOS in desktop mode sends a Mac header, so such an iPad shows as
// "Safari on macOS"; no parser can tell them apart.
func Parse(userAgent string) Info {
	if len(userAgent) > maxInput {
		userAgent = userAgent[:maxInput]
	}
	ua := useragent.Parse(userAgent)

	browser, known := browsers[ua.Name]
	if !known {
		browser = UnknownBrowser
	}
	label := browser
	if p := platform(ua); p != "" {
		label += " on " + p
	}
	return Info{Label: clean(label), Kind: kind(ua)}
}

// platform returns the name to show after "on", or "" when the OS is not
// clearly known (then the label is the browser alone).
func platform(ua useragent.UserAgent) string {
	if ua.OS == useragent.IOS {
		switch ua.Device {
		case "iPhone", "iPad":
			return ua.Device
		}
		return "iOS"
	}
	return platforms[ua.OS]
}

// kind picks the icon class.
func kind(ua useragent.UserAgent) Kind {
	switch {
	case ua.Tablet:
		return Tablet
	case ua.OS == useragent.Android && ua.Name != useragent.OperaMini &&
		!strings.Contains(ua.String, "Mobile"):
		// The library calls every Android device a phone, but Android
		// browsers (Chrome, Samsung Internet, Edge) leave "Mobile" out of the
		// header on tablets: that is the documented way to tell them apart.
		// Opera Mini never sends it, and runs almost only on phones.
		return Tablet
	case ua.Mobile:
		return Phone
	default:
		return Desktop
	}
}

// clean makes a label safe to print in any context: valid UTF-8, no control
// or format characters (which could reorder or hide text), single spaces,
// and at most maxLabelLen bytes without splitting a character. Templ escapes
// HTML; this guards the things escaping does not, such as a bidi override
// in a screen-reader name or a log line.
func clean(s string) string {
	var b strings.Builder
	b.Grow(min(len(s), maxLabelLen))
	space := false
runes:
	for _, r := range s {
		switch {
		case r == utf8.RuneError, unicode.IsControl(r), unicode.Is(unicode.Cf, r):
			continue
		case unicode.IsSpace(r):
			space = b.Len() > 0
			continue
		}
		n := utf8.RuneLen(r)
		if space {
			n++
		}
		if b.Len()+n > maxLabelLen {
			break runes
		}
		if space {
			b.WriteByte(' ')
			space = false
		}
		b.WriteRune(r)
	}
	if b.Len() == 0 {
		return UnknownBrowser
	}
	return b.String()
}
