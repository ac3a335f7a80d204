package main

import (
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

// mem is what /proc/<pid>/status says about memory, in kB.
type mem struct{ rss, hwm, anon, file int64 }

func memStatus(pid int) mem {
	var m mem
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, line := range strings.Split(string(b), "\n") {
		k, v, _ := strings.Cut(line, ":")
		n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		switch k {
		case "VmRSS":
			m.rss = n
		case "VmHWM":
			m.hwm = n
		case "RssAnon":
			m.anon = n
		case "RssFile":
			m.file = n
		}
	}
	return m
}

// clearRefs resets VmHWM to the current RSS.
func clearRefs(pid int) {
	os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0)
}

// cpuTime is the process's user+system CPU time (/proc/<pid>/stat fields 14
// and 15, in 10 ms clock ticks).
func cpuTime(pid int) time.Duration {
	fs := statFields(pid)
	if len(fs) < 13 {
		return 0
	}
	return ticks(fs[11]) + ticks(fs[12])
}

// openFDs counts /proc/<pid>/fd.
func openFDs(pid int) int {
	es, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	return len(es)
}

// noFileLimit is the "Max open files" line of /proc/<pid>/limits.
func noFileLimit(pid int) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/limits", pid))
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "Max open files") {
			f := strings.Fields(strings.TrimPrefix(line, "Max open files"))
			if len(f) >= 2 {
				return "soft " + f[0] + " / hard " + f[1]
			}
		}
	}
	return "unknown"
}

// goroutines reads the total from the instance's pprof goroutine profile.
func goroutines(in *instance) int {
	c := &http.Client{Timeout: 5 * time.Second}
	res, err := c.Get(in.debug + "/debug/pprof/goroutine?debug=1")
	if err != nil {
		return -1
	}
	defer res.Body.Close()
	buf := make([]byte, 128)
	n, _ := res.Body.Read(buf)
	line, _, _ := strings.Cut(string(buf[:n]), "\n")
	v, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(line, "goroutine profile: total")))
	if err != nil {
		return -1
	}
	return v
}
