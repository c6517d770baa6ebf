package progress

import (
	"bytes"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeClock advances only when told.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// frames splits the output into the lines drawn (each starts with \r).
func frames(s string) []string {
	var out []string
	for _, f := range strings.Split(s, "\r") {
		if f != "" {
			out = append(out, strings.TrimSuffix(strings.TrimSuffix(f, "\n"), "\x1b[K"))
		}
	}
	return out
}

func TestBar(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1000, 0)}
	var buf bytes.Buffer
	b := New(&buf, Options{Label: "events", Total: 1000, Unit: "events", Width: 10, Now: clk.now})
	clk.add(time.Second)
	b.Add(250)
	clk.add(10 * time.Millisecond)
	b.Add(1) // too soon after the last redraw: not drawn
	clk.add(time.Second)
	b.Add(249)
	clk.add(2 * time.Second)
	b.Add(500)
	b.Finish()
	b.Finish()
	b.Add(5) // after Finish: ignored

	got := frames(buf.String())
	want := []string{
		"events:   0%|          | 0/1000 [00:00<?, 0.0 events/s]",
		"events:  25%|██▌       | 250/1000 [00:01<00:03, 250.0 events/s]",
		"events:  50%|█████     | 500/1000 [00:02<00:02, 248.8 events/s]",
		"events: 100%|██████████| 1000/1000 [00:04<00:00, 249.4 events/s]",
		"events: 100%|██████████| 1000/1000 [00:04<00:00, 249.4 events/s]",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("frames:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if !strings.HasSuffix(buf.String(), "\n") || strings.Count(buf.String(), "\n") != 1 {
		t.Errorf("Finish must end the line once: %q", buf.String())
	}
}

func TestBarUnknownTotal(t *testing.T) {
	clk := &fakeClock{t: time.Unix(0, 0)}
	var buf bytes.Buffer
	b := New(&buf, Options{Now: clk.now})
	clk.add(2 * time.Second)
	b.Add(10)
	b.Finish()
	got := frames(buf.String())
	if got[len(got)-1] != "10 it [00:02, 5.0 it/s]" {
		t.Fatalf("unknown total: %q", got)
	}
}

func TestNilBar(t *testing.T) {
	var b *Bar
	b.Add(1)
	b.SetTotal(5)
	b.Finish() // no panic
}

func TestClock(t *testing.T) {
	for d, want := range map[time.Duration]string{0: "00:00", 59 * time.Second: "00:59", 61 * time.Minute: "1:01:00", 125 * time.Second: "02:05"} {
		if got := clock(d); got != want {
			t.Errorf("clock(%v) = %s, want %s", d, got, want)
		}
	}
}

func TestIsTerminal(t *testing.T) {
	f, err := os.CreateTemp(t.TempDir(), "out")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if IsTerminal(f) || IsTerminal(nil) {
		t.Fatal("a file is not a terminal")
	}
}

func TestSetTotalRedraws(t *testing.T) {
	clk := &fakeClock{t: time.Unix(0, 0)}
	var buf bytes.Buffer
	b := New(&buf, Options{Now: clk.now, Width: 4})
	b.SetTotal(8)
	if got := frames(buf.String()); len(got) != 2 || got[1] != "  0%|    | 0/8 [00:00<?, 0.0 it/s]" {
		t.Fatalf("frames after SetTotal: %q", got)
	}
}
