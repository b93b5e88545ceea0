package bench

import (
	"os"
	"testing"
	"time"
)

func TestParseStat(t *testing.T) {
	// A command name with a space and a parenthesis, as the kernel allows.
	stat := []byte("4242 (my (odd) cmd) S 17 4242 4242 0 -1 4194560 1000 0 0 0 250 75 0 0 20 0 9 0 12345 1000000 2000 18446744073709551615\n")
	cpu, err := parseStatCPU(stat)
	if err != nil {
		t.Fatal(err)
	}
	if want := 3250 * time.Millisecond; cpu != want {
		t.Errorf("cpu = %s, want %s (325 ticks)", cpu, want)
	}
	ppid, err := parseStatPPID(stat)
	if err != nil || ppid != 17 {
		t.Errorf("ppid = %d, %v; want 17", ppid, err)
	}
	if _, err := parseStatCPU([]byte("garbage")); err == nil {
		t.Error("garbage stat parsed")
	}
}

func TestParseStatusKB(t *testing.T) {
	status := []byte("Name:\tx\nVmPeak:\t  9000 kB\nVmHWM:\t    5120 kB\nVmRSS:\t 4096 kB\n")
	kb, err := parseStatusKB(status, "VmHWM:")
	if err != nil || kb != 5120 {
		t.Fatalf("VmHWM = %d, %v; want 5120", kb, err)
	}
	if _, err := parseStatusKB(status, "VmSwap:"); err == nil {
		t.Error("missing key found")
	}
}

// TestReadUsageOfItself reads this test process from the real procfs: it has
// used some CPU and holds some memory.
func TestReadUsageOfItself(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no procfs")
	}
	end := time.Now().Add(50 * time.Millisecond)
	for time.Now().Before(end) { // burn a little CPU
	}
	u, err := readUsage("/proc", os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if u.CPU <= 0 || u.PeakRSS < 1<<20 {
		t.Fatalf("usage of this process = %+v, want some CPU and at least 1 MiB resident", u)
	}
	kids, err := children("/proc", os.Getppid())
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, pid := range kids {
		found = found || pid == os.Getpid()
	}
	if !found {
		t.Fatalf("children of %d = %v, want this process %d among them", os.Getppid(), kids, os.Getpid())
	}
}
