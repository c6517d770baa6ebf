// Package progress draws a tqdm-style progress bar on a terminal, for
// long commands (`parley export`, `parley bench`):
//
//	events:  45%|█████████████▌                | 4500/10000 [00:03<00:04, 1500.0 events/s]
//
// A nil *Bar is a valid, silent bar, so callers create one only when
// stderr is a terminal (IsTerminal) and pass nil otherwise.
package progress

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/term"
)

// IsTerminal reports whether f is a terminal, where a bar that redraws
// itself makes sense (not a file, a pipe or a CI log).
func IsTerminal(f *os.File) bool { return f != nil && term.IsTerminal(int(f.Fd())) }

// Options configure a Bar. Zero values take the documented defaults.
type Options struct {
	// Label goes before the bar (default none).
	Label string
	// Total is the count at 100% (default 0: unknown, only the count and
	// the rate are shown). SetTotal changes it.
	Total int64
	// Unit names what is counted, in the rate (default "it", as tqdm).
	Unit string
	// Width is the bar's width in cells (default 30).
	Width int
	// Interval is the least time between redraws (default 100ms), so
	// that counting fast does not flood the terminal.
	Interval time.Duration
	// Now is the clock (default time.Now), for tests.
	Now func() time.Time
}

// Bar is a progress bar. Its methods are safe for concurrent use and do
// nothing on a nil *Bar.
type Bar struct {
	w    io.Writer
	opts Options

	mu       sync.Mutex
	n        int64
	start    time.Time
	drawn    time.Time
	finished bool
}

// New returns a bar drawing on w and draws it at 0.
func New(w io.Writer, o Options) *Bar {
	if o.Unit == "" {
		o.Unit = "it"
	}
	if o.Width <= 0 {
		o.Width = 30
	}
	if o.Interval <= 0 {
		o.Interval = 100 * time.Millisecond
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	b := &Bar{w: w, opts: o}
	b.start = o.Now()
	b.mu.Lock()
	b.drawLocked(b.start)
	b.mu.Unlock()
	return b
}

// SetTotal sets the count at 100% and redraws.
func (b *Bar) SetTotal(total int64) {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.opts.Total = total
	if !b.finished {
		b.drawLocked(b.opts.Now())
	}
}

// Add counts n more and redraws if the last redraw is old enough.
func (b *Bar) Add(n int64) {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.finished {
		return
	}
	b.n += n
	if now := b.opts.Now(); now.Sub(b.drawn) >= b.opts.Interval {
		b.drawLocked(now)
	}
}

// Finish draws the bar a last time and ends its line; later calls do
// nothing.
func (b *Bar) Finish() {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.finished {
		return
	}
	b.finished = true
	b.drawLocked(b.opts.Now())
	fmt.Fprintln(b.w)
}

// blocks are the eighths of a cell, as tqdm draws them.
var blocks = []string{"", "▏", "▎", "▍", "▌", "▋", "▊", "▉"}

func (b *Bar) drawLocked(now time.Time) {
	b.drawn = now
	elapsed := now.Sub(b.start)
	rate := 0.0
	if s := elapsed.Seconds(); s > 0 {
		rate = float64(b.n) / s
	}
	var line strings.Builder
	line.WriteString("\r")
	if b.opts.Label != "" {
		line.WriteString(b.opts.Label + ": ")
	}
	if total := b.opts.Total; total > 0 {
		frac := min(float64(b.n)/float64(total), 1)
		eighths := int(frac * float64(b.opts.Width*8))
		full, part := eighths/8, eighths%8
		bar := strings.Repeat("█", full) + blocks[part]
		pad := b.opts.Width - full
		if part > 0 {
			pad--
		}
		fmt.Fprintf(&line, "%3d%%|%s%s| %d/%d [%s<%s, %s]", int(frac*100), bar, strings.Repeat(" ", max(pad, 0)), b.n, total,
			clock(elapsed), remaining(b.n, total, rate), rateText(rate, b.opts.Unit))
	} else {
		fmt.Fprintf(&line, "%d %s [%s, %s]", b.n, b.opts.Unit, clock(elapsed), rateText(rate, b.opts.Unit))
	}
	line.WriteString("\x1b[K") // clear what a longer previous line left
	_, _ = io.WriteString(b.w, line.String())
}

func remaining(n, total int64, rate float64) string {
	if rate <= 0 || n >= total {
		if n >= total {
			return clock(0)
		}
		return "?"
	}
	return clock(time.Duration(float64(total-n) / rate * float64(time.Second)))
}

func rateText(rate float64, unit string) string {
	return fmt.Sprintf("%.1f %s/s", rate, unit)
}

// clock formats a duration as tqdm does: MM:SS, or H:MM:SS from an hour.
func clock(d time.Duration) string {
	s := int64(d.Round(time.Second) / time.Second)
	if s >= 3600 {
		return fmt.Sprintf("%d:%02d:%02d", s/3600, s/60%60, s%60)
	}
	return fmt.Sprintf("%02d:%02d", s/60, s%60)
}
