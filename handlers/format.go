package handlers

import (
	"fmt"
	"time"

	"doorman/timefmt"
)

// relTime says how long ago t was, in words: "just now", "5 minutes ago",
// "3 hours ago", "yesterday", "12 days ago", then a date.
func relTime(now, t time.Time) string {
	d := now.Sub(t)
	switch {
	case d < time.Minute:
		return "just now"
	case d < time.Hour:
		return plural(int(d/time.Minute), "minute") + " ago"
	case d < 24*time.Hour:
		return plural(int(d/time.Hour), "hour") + " ago"
	case d < 48*time.Hour:
		return "yesterday"
	case d < 60*24*time.Hour:
		return plural(int(d/(24*time.Hour)), "day") + " ago"
	default:
		return "on " + timefmt.Date(t)
	}
}

// relFuture says how far ahead t is: "in 28 days".
func relFuture(now, t time.Time) string {
	d := t.Sub(now)
	switch {
	case d < time.Minute:
		return "in less than a minute"
	case d < time.Hour:
		return "in " + plural(int(d/time.Minute), "minute")
	case d < 48*time.Hour:
		return "in " + plural(int(d/time.Hour), "hour")
	default:
		return "in " + plural(int(d/(24*time.Hour)), "day")
	}
}

// exactTime is the unambiguous form shown beside or under relative times.
// Times are shown in UTC: the server does not know the reader's zone, and
// the page's script rewrites them to local time where it can.
func exactTime(t time.Time) string { return timefmt.Exact(t) }

func isoTime(t time.Time) string { return t.UTC().Format(time.RFC3339) }

func plural(n int, unit string) string {
	if n == 1 {
		return "1 " + unit
	}
	return fmt.Sprintf("%d %ss", n, unit)
}
