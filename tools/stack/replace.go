package stack

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
)

// Replace replaces the named instance by a process of bin, as a rolling
// update with maxUnavailable=1 replaces a pod: SIGTERM and wait for the
// exit (SIGKILL after StopGrace), then start bin under the same name, port,
// environment and log, and wait until it answers on its ready URL or ctx
// ends. The other instances keep serving meanwhile and share the durable
// consumers with the new one.
//
// An old process that had to be killed, or exited with an error, is
// reported once the new one is ready: the replacement happened, the
// shutdown was not clean.
func (l *Local) Replace(ctx context.Context, name, bin string) error {
	p, err := l.proc(name)
	if err != nil {
		return err
	}
	// A binary that cannot start must not take a serving instance down.
	info, err := os.Stat(bin)
	if err != nil {
		return fmt.Errorf("replace %s: %w", name, err)
	}
	if info.IsDir() || info.Mode().Perm()&0o111 == 0 {
		return fmt.Errorf("replace %s: %s is not an executable file", name, bin)
	}
	var stopErr error
	if err := p.Stop(l.cfg.stopGrace()); err != nil {
		stopErr = fmt.Errorf("stop %s: %w", name, err)
	}
	p.mu.Lock()
	p.Bin = bin
	p.mu.Unlock()
	if err := p.Start(); err != nil {
		return errors.Join(stopErr, err)
	}
	if err := WaitReady(ctx, l.readyURL(name)); err != nil {
		return errors.Join(stopErr, fmt.Errorf("%s: %w (see %s)", name, err, l.LogFile(name)))
	}
	return stopErr
}

// readyURL returns the ready URL of the named instance.
func (l *Local) readyURL(name string) string {
	for _, s := range l.specs {
		if s.Name == name {
			return s.ReadyURL(l.cfg.PortOffset)
		}
	}
	return ""
}

// Built returns the binary of the named program (a Spec's Name) that
// StartLocal built from LocalConfig.Root, whatever LocalConfig.Bins ran.
func (l *Local) Built(program string) string {
	return l.built[program]
}

// Runs reports whether the named instance is running and its process
// executes bin. It compares files, not paths (/proc/<pid>/exe, Linux): a
// symbolic link or a relative path does not fool it, and a binary rebuilt
// since the process started is another file.
func (l *Local) Runs(name, bin string) (bool, error) {
	p, err := l.proc(name)
	if err != nil {
		return false, err
	}
	pid := p.Pid()
	if pid == 0 || !p.Running() {
		return false, nil
	}
	exe, err := os.Stat("/proc/" + strconv.Itoa(pid) + "/exe")
	if err != nil {
		if !p.Running() { // it exited meanwhile
			return false, nil
		}
		return false, fmt.Errorf("executable of %s (pid %d): %w", name, pid, err)
	}
	want, err := os.Stat(bin)
	if err != nil {
		return false, fmt.Errorf("binary for %s: %w", name, err)
	}
	return os.SameFile(exe, want), nil
}

// Stale returns, in start order, every process (service instances and the
// gateway simulator) that does not run the binary StartLocal built from
// LocalConfig.Root: one started from LocalConfig.Bins and not replaced
// since, or one not running.
func (l *Local) Stale() ([]string, error) {
	var out []string
	for _, s := range l.specs {
		ok, err := l.Runs(s.Name, l.built[s.Program])
		if err != nil {
			return nil, err
		}
		if !ok {
			out = append(out, s.Name)
		}
	}
	return out, nil
}
