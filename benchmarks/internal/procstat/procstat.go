// Package procstat reads what the benchmarks measure about processes: the
// CPU time and peak resident memory of a process from /proc, the CPU time of
// the calling process from getrusage, and the CPU model from /proc/cpuinfo.
// The parsers take the files' text, so tests feed them made-up content.
package procstat

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// ClockTick is the unit of the CPU times in /proc/PID/stat: USER_HZ, which
// is 100 on every Linux architecture Go runs on (sysconf(_SC_CLK_TCK)).
const ClockTick = 10 * time.Millisecond

// ParseStatCPU returns utime + stime, in clock ticks, from the text of
// /proc/PID/stat. The command name (field 2) is in parentheses and may
// itself hold spaces and parentheses, so the fields are counted from the
// last ')'.
func ParseStatCPU(stat []byte) (ticks uint64, err error) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, errors.New("procstat: no ')' in /proc/PID/stat")
	}
	// Fields after the name start with field 3 (state); utime and stime
	// are fields 14 and 15.
	f := strings.Fields(string(stat[i+1:]))
	const utime, stime = 14 - 3, 15 - 3
	if len(f) <= stime {
		return 0, fmt.Errorf("procstat: /proc/PID/stat has %d fields after the name, want more than %d", len(f), stime)
	}
	u, err := strconv.ParseUint(f[utime], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("procstat: utime: %w", err)
	}
	s, err := strconv.ParseUint(f[stime], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("procstat: stime: %w", err)
	}
	return u + s, nil
}

// ParseStatusKiB returns the value of a "Name:   1234 kB" line of
// /proc/PID/status, such as VmHWM (peak resident set size), in KiB.
func ParseStatusKiB(status []byte, name string) (int64, error) {
	sc := bufio.NewScanner(bytes.NewReader(status))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || k != name {
			continue
		}
		f := strings.Fields(v)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("procstat: %s: unexpected value %q", name, v)
		}
		return strconv.ParseInt(f[0], 10, 64)
	}
	return 0, fmt.Errorf("procstat: no %s line in /proc/PID/status", name)
}

// ParseCPUModel returns the first "model name" of /proc/cpuinfo, or "" if
// there is none (some architectures name it differently).
func ParseCPUModel(cpuinfo []byte) string {
	sc := bufio.NewScanner(bytes.NewReader(cpuinfo))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// ParseSystemBusy returns the CPU time, in clock ticks, that all CPUs
// together have spent busy (everything but idle and iowait), from the
// "cpu" line of /proc/stat.
func ParseSystemBusy(stat []byte) (ticks uint64, err error) {
	line, _, _ := bytes.Cut(stat, []byte("\n"))
	f := strings.Fields(string(line))
	if len(f) < 5 || f[0] != "cpu" {
		return 0, errors.New("procstat: /proc/stat does not start with a cpu line")
	}
	// user nice system idle iowait irq softirq steal guest guest_nice;
	// guest time is already counted in user.
	for i, v := range f[1:] {
		if i >= 8 {
			break
		}
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("procstat: /proc/stat field %d: %w", i+1, err)
		}
		if i != 3 && i != 4 {
			ticks += n
		}
	}
	return ticks, nil
}

// SystemBusy returns the CPU time all CPUs have spent busy so far, to the
// nearest clock tick.
func SystemBusy() (time.Duration, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, err
	}
	ticks, err := ParseSystemBusy(b)
	return time.Duration(ticks) * ClockTick, err
}

// ProcessCPU returns the CPU time (user + system) that process pid has used
// so far, to the nearest clock tick.
func ProcessCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	ticks, err := ParseStatCPU(b)
	return time.Duration(ticks) * ClockTick, err
}

// PeakRSS returns the peak resident set size of process pid, in KiB.
func PeakRSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	return ParseStatusKiB(b, "VmHWM")
}

// CPUModel returns this machine's CPU model, or "unknown".
func CPUModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown"
	}
	if m := ParseCPUModel(b); m != "" {
		return m
	}
	return "unknown"
}
