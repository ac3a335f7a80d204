package main

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// runWrk runs wrk with two threads and parses the JSON line bench/wrk.lua
// prints.
func runWrk(target, script, cookies string, conns int, d time.Duration) (result, error) {
	args := []string{"-t2", "-c" + strconv.Itoa(conns), "-d" + strconv.Itoa(int(d/time.Second)) + "s", "--timeout", "5s", "-s", script, target}
	if cookies != "" {
		// "<file> bearer": the lines are API tokens, sent as
		// Authorization: Bearer.
		args = append(args, "--")
		args = append(args, strings.Fields(cookies)...)
	}
	out, err := exec.Command("wrk", args...).CombinedOutput()
	if err != nil {
		return result{}, fmt.Errorf("wrk: %v: %s", err, out)
	}
	_, js, ok := strings.Cut(string(out), "WRKJSON ")
	if !ok {
		return result{}, fmt.Errorf("wrk printed no result: %s", out)
	}
	var v struct {
		Requests, DurationUS, P50US, P99US, MaxUS, Non200, Errors int64
	}
	dec := json.NewDecoder(strings.NewReader(js))
	if err := dec.Decode(&struct {
		Requests   *int64 `json:"requests"`
		DurationUS *int64 `json:"duration_us"`
		P50US      *int64 `json:"p50_us"`
		P99US      *int64 `json:"p99_us"`
		MaxUS      *int64 `json:"max_us"`
		Non200     *int64 `json:"non200"`
		Errors     *int64 `json:"errors"`
	}{&v.Requests, &v.DurationUS, &v.P50US, &v.P99US, &v.MaxUS, &v.Non200, &v.Errors}); err != nil {
		return result{}, fmt.Errorf("wrk result %q: %w", js, err)
	}
	return result{
		requests: v.Requests, secs: float64(v.DurationUS) / 1e6,
		p50: time.Duration(v.P50US) * time.Microsecond, p99: time.Duration(v.P99US) * time.Microsecond,
		errors: v.Non200 + v.Errors,
	}, nil
}
