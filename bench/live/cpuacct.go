package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// Someone else's work on these 2 cores skews every number, and not all of
// it is a `go test` (builds, linters, browsers). So each measurement also
// records how much CPU went to processes that are not this run's: every
// process in /proc except this driver and its descendants (instances, wrk)
// and the PostgreSQL server's processes, by the growth of its own CPU time
// plus that of its waited-for children (so a compiler that starts and ends
// inside the window is counted in its parent's cstime). The machine-wide
// busy time of /proc/stat would be simpler but also counts softirq time,
// which is mostly this run's own loopback traffic and is not attributed to
// any process.

var pgDataDir string // the run's PostgreSQL data folder, for postmaster.pid

type procCPU struct {
	ppid int
	cpu  time.Duration // utime + stime + cutime + cstime
}

type cpuSnap struct {
	at    time.Time
	procs map[int]procCPU
}

func snapCPU() cpuSnap {
	s := cpuSnap{at: time.Now(), procs: map[int]procCPU{}}
	es, _ := os.ReadDir("/proc")
	for _, e := range es {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		fs := statFields(pid)
		if len(fs) < 15 {
			continue
		}
		ppid, _ := strconv.Atoi(fs[1])
		s.procs[pid] = procCPU{ppid: ppid, cpu: ticks(fs[11]) + ticks(fs[12]) + ticks(fs[13]) + ticks(fs[14])}
	}
	return s
}

// foreignShare is the share of the machine's CPU capacity between a and b
// that went to other processes (0–1).
func foreignShare(a, b cpuSnap) float64 {
	capacity := b.at.Sub(a.at).Seconds() * float64(runtime.NumCPU())
	if capacity <= 0 {
		return 0
	}
	self, pm := os.Getpid(), postmasterPID()
	ours := func(pid int, procs map[int]procCPU) bool {
		if pm > 0 && (pid == pm || procs[pid].ppid == pm) {
			return true
		}
		for p, n := pid, 0; p > 1 && n < 64; p, n = procs[p].ppid, n+1 {
			if p == self {
				return true
			}
		}
		return false
	}
	var other time.Duration
	for pid, p := range b.procs {
		if !ours(pid, b.procs) {
			if d := p.cpu - a.procs[pid].cpu; d > 0 {
				other += d
			}
		}
	}
	// A process that ended in the window moved all its CPU into its
	// parent's cstime, counted above: take off what it had before.
	for pid, p := range a.procs {
		if _, alive := b.procs[pid]; !alive && !ours(pid, a.procs) {
			other -= p.cpu
		}
	}
	return max(0, other.Seconds()/capacity)
}

func postmasterPID() int {
	if pgDataDir == "" {
		return 0
	}
	b, err := os.ReadFile(filepath.Join(pgDataDir, "postmaster.pid"))
	if err != nil {
		return 0
	}
	first, _, _ := strings.Cut(string(b), "\n")
	pm, _ := strconv.Atoi(strings.TrimSpace(first))
	return pm
}

// statFields is /proc/<pid>/stat after the command name: fs[0] is the
// state (field 3), fs[1] the parent pid, fs[11] utime (field 14), …
func statFields(pid int) []string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 > len(b) {
		return nil
	}
	return strings.Fields(string(b[i+2:]))
}

// ticks converts clock ticks (USER_HZ, 100 a second on Linux) to time.
func ticks(s string) time.Duration {
	n, _ := strconv.ParseInt(s, 10, 64)
	return time.Duration(n) * 10 * time.Millisecond
}

// skewThreshold is the share of the CPU other processes may take before a
// measurement is flagged as disturbed.
const skewThreshold = 0.05

// skewNote is how a measurement's foreign share is shown.
func skewNote(share float64) string {
	s := fmt.Sprintf("%.0f%%", 100*share)
	if share >= skewThreshold {
		s = "**" + s + "**"
	}
	return s
}
