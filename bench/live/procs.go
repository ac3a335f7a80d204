package main

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ensureWrk installs wrk from Debian's packages if it is missing.
func ensureWrk() error {
	if _, err := exec.LookPath("wrk"); err == nil {
		return nil
	}
	logf("wrk not found: apt-get install wrk")
	apt := func(args ...string) error {
		if os.Geteuid() != 0 {
			args = append([]string{"apt-get"}, args...)
			return runQuiet("sudo", args...)
		}
		return runQuiet("apt-get", args...)
	}
	if err := apt("install", "-y", "-qq", "--no-install-recommends", "wrk"); err != nil {
		if err := apt("update", "-qq"); err != nil {
			return fmt.Errorf("apt-get update: %w", err)
		}
		if err := apt("install", "-y", "-qq", "--no-install-recommends", "wrk"); err != nil {
			return fmt.Errorf("apt-get install wrk: %w", err)
		}
	}
	_, err := exec.LookPath("wrk")
	return err
}

func runQuiet(name string, args ...string) error {
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	return cmd.Run()
}

// startPostgres starts a throwaway server with scripts/pgtest.sh and
// registers its stop (also when the start fails half way).
func startPostgres(dir, keepLog string) (string, error) {
	atExit(func() {
		if keepLog != "" {
			if b, err := os.ReadFile(filepath.Join(dir, "log")); err == nil {
				os.WriteFile(keepLog, b, 0o600)
			}
		}
		logf("stopping PostgreSQL (%s)", dir)
		cmd := exec.Command("bash", "scripts/pgtest.sh", "stop", dir)
		cmd.Stderr = os.Stderr
		if err := cmd.Run(); err != nil {
			logf("pgtest.sh stop: %v", err)
		}
	})
	pgDataDir = filepath.Join(dir, "data")
	logf("starting PostgreSQL in %s", dir)
	cmd := exec.Command("bash", "scripts/pgtest.sh", "start", dir)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("pgtest.sh start: %w", err)
	}
	dsn := strings.TrimSpace(string(out))
	if !strings.HasPrefix(dsn, "postgres://") {
		return "", fmt.Errorf("pgtest.sh printed %q, not a DSN", dsn)
	}
	return dsn, nil
}

// postgresVersion is the newest installed server's `postgres --version`
// (the one pgtest.sh uses).
func postgresVersion() string {
	bins, _ := filepath.Glob("/usr/lib/postgresql/*/bin/postgres")
	if len(bins) == 0 {
		return "unknown"
	}
	best, bestN := bins[0], -1
	for _, b := range bins {
		n, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(b))))
		if n > bestN {
			best, bestN = b, n
		}
	}
	out, err := exec.Command(best, "--version").Output()
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(out))
}

// instance is one running doorman process.
type instance struct {
	name   string
	addr   string // 127.0.0.1:port
	base   string // http://addr
	debug  string // http://debug-addr, "" if none
	pid    int
	log    string
	cmd    *exec.Cmd
	done   chan struct{}
	stopMu sync.Once
}

func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// startInstance starts the binary on a free loopback port with args, waits
// for /healthz and registers its stop.
func startInstance(bin, dir, name string, args ...string) (*instance, error) {
	addr, err := freePort()
	if err != nil {
		return nil, err
	}
	debug, err := freePort()
	if err != nil {
		return nil, err
	}
	logPath := filepath.Join(dir, "instance-"+name+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	args = append([]string{"-addr", addr, "-debug-addr", debug}, args...)
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// If this driver dies without its cleanups (SIGKILL), so do they.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, err
	}
	in := &instance{name: name, addr: addr, base: "http://" + addr, debug: "http://" + debug,
		pid: cmd.Process.Pid, log: logPath, cmd: cmd, done: make(chan struct{})}
	go func() {
		cmd.Wait()
		logFile.Close()
		close(in.done)
	}()
	atExit(in.stop)
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-in.done:
			return nil, fmt.Errorf("instance %s exited at start (log %s):\n%s", name, logPath, tail(logPath))
		default:
		}
		res, err := client.Get(in.base + "/healthz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				logf("instance %s: pid %d on %s", name, in.pid, addr)
				return in, nil
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	in.stop()
	return nil, fmt.Errorf("instance %s did not answer /healthz in 30 s (log %s):\n%s", name, logPath, tail(logPath))
}

// stop asks for a graceful shutdown (SIGINT: streams end at once), and
// kills the process if it is not gone in 10 s.
func (in *instance) stop() {
	in.stopMu.Do(func() {
		select {
		case <-in.done:
			return
		default:
		}
		logf("stopping instance %s (pid %d)", in.name, in.pid)
		in.cmd.Process.Signal(os.Interrupt)
		select {
		case <-in.done:
		case <-time.After(10 * time.Second):
			in.cmd.Process.Kill()
			<-in.done
		}
	})
}

// serverErrors counts the ERROR lines in the instance's log and returns the
// first one.
func (in *instance) serverErrors() (int, string) {
	b, _ := os.ReadFile(in.log)
	n, first := 0, ""
	for _, line := range strings.Split(string(b), "\n") {
		if strings.Contains(line, "level=ERROR") {
			if n++; first == "" {
				first = line
			}
		}
	}
	return n, first
}

func tail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

// Child processes that are not instances (wrk) are tracked while they run,
// so a signal's cleanup can kill them.
var (
	childMu  sync.Mutex
	children = map[*exec.Cmd]struct{}{}
)

// killChildren kills the tracked processes still running (runCleanups
// calls it first, before the instances they load are stopped).
func killChildren() {
	childMu.Lock()
	defer childMu.Unlock()
	for c := range children {
		c.Process.Kill()
	}
}

// runTracked runs cmd to the end and returns its combined output.
func runTracked(cmd *exec.Cmd) ([]byte, error) {
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	childMu.Lock()
	children[cmd] = struct{}{}
	childMu.Unlock()
	err := cmd.Wait()
	childMu.Lock()
	delete(children, cmd)
	childMu.Unlock()
	return out.Bytes(), err
}
