// Package timefmt is the one way Doorman writes a time for people: on its
// pages, in its mails and in its command-line tools.
//
// The server does not know the reader's time zone, so it writes UTC and says
// so ("7 Dec 2026, 14:05 UTC"). On the pages, the script shows the same
// format in the reader's own zone ("7 Dec 2026, 15:05 CET") and keeps the UTC
// form in the element's title; mail and terminals keep UTC.
package timefmt

import "time"

// Layout is an exact time, in UTC.
const Layout = "2 Jan 2006, 15:04 UTC"

// DateLayout is a day without a time ("Member since 7 Dec 2026").
const DateLayout = "2 Jan 2006"

// Exact writes t as Layout; "" for the zero time.
func Exact(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(Layout)
}

// Date writes t's day (in UTC) as DateLayout; "" for the zero time.
func Date(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(DateLayout)
}
