package bench

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/<pid>/stat:
// 100 on every Linux architecture Go supports.
const clockTicks = 100

// Usage is what the kernel says a process has used so far.
type Usage struct {
	CPU     time.Duration // user + system time
	PeakRSS int64         // VmHWM: the most it was ever resident, in bytes
}

// readUsage reads the usage of pid from procfs.
func readUsage(proc string, pid int) (Usage, error) {
	stat, err := os.ReadFile(filepath.Join(proc, strconv.Itoa(pid), "stat"))
	if err != nil {
		return Usage{}, err
	}
	cpu, err := parseStatCPU(stat)
	if err != nil {
		return Usage{}, fmt.Errorf("pid %d: %w", pid, err)
	}
	status, err := os.ReadFile(filepath.Join(proc, strconv.Itoa(pid), "status"))
	if err != nil {
		return Usage{}, err
	}
	hwm, err := parseStatusKB(status, "VmHWM:")
	if err != nil {
		return Usage{}, fmt.Errorf("pid %d: %w", pid, err)
	}
	return Usage{CPU: cpu, PeakRSS: hwm * 1024}, nil
}

// parseStatCPU returns utime + stime from the text of /proc/<pid>/stat. The
// command name (field 2) may hold spaces and parentheses, so fields are
// counted after its closing parenthesis.
func parseStatCPU(stat []byte) (time.Duration, error) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, errors.New("stat: no command name")
	}
	f := strings.Fields(string(stat[i+1:]))
	// After the name: state(3) ppid(4) ... utime(14) stime(15).
	if len(f) < 13 {
		return 0, fmt.Errorf("stat: %d fields after the name", len(f))
	}
	var ticks int64
	for _, s := range f[11:13] {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("stat: %w", err)
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / clockTicks, nil
}

// parseStatPPID returns the parent pid from the text of /proc/<pid>/stat.
func parseStatPPID(stat []byte) (int, error) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, errors.New("stat: no command name")
	}
	f := strings.Fields(string(stat[i+1:]))
	if len(f) < 2 {
		return 0, errors.New("stat: too short")
	}
	return strconv.Atoi(f[1])
}

// parseStatusKB returns the value in kB of a line of /proc/<pid>/status.
func parseStatusKB(status []byte, key string) (int64, error) {
	for line := range strings.Lines(string(status)) {
		if rest, ok := strings.CutPrefix(line, key); ok {
			f := strings.Fields(rest)
			if len(f) == 0 {
				break
			}
			return strconv.ParseInt(f[0], 10, 64)
		}
	}
	return 0, fmt.Errorf("status: no %s line", key)
}

// children returns the pids whose parent is ppid, by the base name of their
// executable.
func children(proc string, ppid int) (map[string]int, error) {
	entries, err := os.ReadDir(proc)
	if err != nil {
		return nil, err
	}
	out := map[string]int{}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join(proc, e.Name(), "stat"))
		if err != nil {
			continue // gone meanwhile
		}
		if p, err := parseStatPPID(stat); err != nil || p != ppid {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join(proc, e.Name(), "cmdline"))
		if err != nil || len(cmdline) == 0 {
			continue
		}
		argv0, _, _ := bytes.Cut(cmdline, []byte{0})
		out[filepath.Base(string(argv0))] = pid
	}
	return out, nil
}
