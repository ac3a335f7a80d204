package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

type server struct {
	cmd      *exec.Cmd
	pid      int
	base     string
	debug    string
	log      string
	startDur time.Duration
}

func freePort() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// startServer starts the binary and polls /healthz until it answers, to
// measure start to first served request.
func startServer(c config) (*server, error) {
	addr, debug := freePort(), freePort()
	logPath := filepath.Join(c.work, "server.log")
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	// The load's revocations carry no password: the sudo window is
	// stretched so every session can end sessions as one just signed in can
	// (re-authentication costs an argon2 hash and is measured by sign-ins).
	// Flags after "--" still override it.
	args := []string{"-addr", addr, "-db", filepath.Join(c.work, "load.db"),
		"-geoip-dir", c.geoDir, "-debug-addr", debug, "-sudo-window", "2160h"}
	// The API phase measures the API, not the per-token limiter's refusals:
	// the limit is off where the binary has the flag (a baseline from before
	// it spreads the load over many tokens, see makeTokens, and counts any
	// 429 as an error).
	if help, _ := exec.Command(c.bin, "-h").CombinedOutput(); bytes.Contains(help, []byte("-api-token-rate")) {
		args = append(args, "-api-token-rate", "0")
	}
	cmd := exec.Command(c.bin, append(args, flag.Args()...)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	client := &http.Client{Timeout: time.Second}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &server{cmd: cmd, pid: cmd.Process.Pid, base: "http://" + addr, debug: "http://" + debug, log: logPath}
	for time.Since(start) < 10*time.Second {
		res, err := client.Get(s.base + "/healthz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				s.startDur = time.Since(start)
				return s, nil
			}
		}
		time.Sleep(500 * time.Microsecond)
	}
	cmd.Process.Kill()
	return nil, errors.New("server did not answer /healthz within 10 s (see " + logPath + ")")
}

// cpuTime is the process's user+system CPU time (/proc/<pid>/stat fields 14
// and 15, in clock ticks of 10 ms).
func cpuTime(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The command name (field 2) may hold spaces: split after its ")".
	fs := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
	ut, _ := strconv.ParseInt(fs[11], 10, 64)
	st, _ := strconv.ParseInt(fs[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond
}

// memStatus reads VmHWM, RssAnon and RssFile (kB) from /proc/<pid>/status.
func memStatus(pid int) (hwm, anon, file int64) {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, line := range strings.Split(string(b), "\n") {
		k, v, _ := strings.Cut(line, ":")
		n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		switch k {
		case "VmHWM":
			hwm = n
		case "RssAnon":
			anon = n
		case "RssFile":
			file = n
		}
	}
	return
}

// clearRefs resets the peak RSS (VmHWM) so each phase reports its own.
func clearRefs(pid int) {
	os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0)
}

// sampleMem samples RssAnon and RssFile every 100 ms until the returned func
// is called, which reports VmHWM and the largest samples.
func sampleMem(pid int) func() (int64, int64, int64) {
	var anon, file atomic.Int64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			_, a, f := memStatus(pid)
			if a > anon.Load() {
				anon.Store(a)
			}
			if f > file.Load() {
				file.Store(f)
			}
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}()
	return func() (int64, int64, int64) {
		close(stop)
		<-done
		hwm, _, _ := memStatus(pid)
		return hwm, anon.Load(), file.Load()
	}
}

func writes(s *server) uint64 {
	res, err := http.Get(s.debug + "/debug/doorman")
	if err != nil {
		return 0
	}
	defer res.Body.Close()
	var v struct {
		N uint64 `json:"sqlite_write_transactions"`
	}
	json.NewDecoder(res.Body).Decode(&v)
	return v.N
}
