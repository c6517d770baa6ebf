package bench

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// RSS returns the resident set size of process pid in bytes, from
// /proc/<pid>/status (Linux).
func RSS(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			fields := strings.Fields(rest) // "12345 kB"
			if len(fields) == 2 && fields[1] == "kB" {
				kb, err := strconv.ParseInt(fields[0], 10, 64)
				return kb << 10, err
			}
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
}

// Flatness summarizes RSS samples taken at a steady load: the growth from
// the first sample after warmup to the last, and the peak, as fractions
// of that first sample.
type Flatness struct {
	Samples []int64 `json:"rss_bytes"`
	Warmup  int     `json:"warmup_samples"`
	Growth  float64 `json:"growth"`
	Peak    float64 `json:"peak_over_start"`
}

// Flat computes Flatness, skipping the first warmup samples.
func Flat(samples []int64, warmup int) Flatness {
	f := Flatness{Samples: samples, Warmup: warmup}
	if len(samples) <= warmup+1 {
		return f
	}
	start := float64(samples[warmup])
	peak := start
	for _, s := range samples[warmup:] {
		peak = max(peak, float64(s))
	}
	f.Growth = float64(samples[len(samples)-1])/start - 1
	f.Peak = peak/start - 1
	return f
}
