package timefmt

import (
	"testing"
	"time"
)

func TestOneFormatInUTC(t *testing.T) {
	berlin := time.FixedZone("CET", 3600)
	at := time.Date(2026, 3, 1, 13, 5, 0, 0, berlin)
	if got, want := Exact(at), "1 Mar 2026, 12:05 UTC"; got != want {
		t.Errorf("Exact = %q, want %q (converted to UTC)", got, want)
	}
	if got, want := Date(time.Date(2026, 3, 1, 0, 30, 0, 0, berlin)), "28 Feb 2026"; got != want {
		t.Errorf("Date = %q, want %q (the UTC day)", got, want)
	}
	if Exact(time.Time{}) != "" || Date(time.Time{}) != "" {
		t.Error("the zero time is written as nothing")
	}
}
