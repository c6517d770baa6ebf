package ui

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// chart is the delivery page's SVG: per-second rates over the window, one
// line per broker for deliveries, dashed for failures, and the accepted
// rate. Drawn on the server: no script, no inline style.
type chart struct {
	Width, Height int
	Max           string // the y axis' top, formatted
	Window        string
	Lines         []line
	Empty         bool
}

type line struct {
	Label  string
	Points string
	Class  string // CSS class: colour and dash
}

const (
	chartW, chartH = 720, 180
	chartPad       = 4
)

func buildChart(series []point, brokers []string, window time.Duration, now time.Time) chart {
	// The x axis spans the samples kept, up to the window: a node that
	// started a minute ago shows its minute across the whole width.
	if len(series) > 0 {
		window = min(window, max(now.Sub(series[0].at), time.Second))
	}
	c := chart{Width: chartW, Height: chartH, Window: ago(window), Empty: len(series) < 2}
	top := 1.0
	for _, p := range series {
		top = max(top, p.accepted)
		for _, b := range brokers {
			top = max(top, p.delivered[b], p.failures[b])
		}
	}
	top = niceCeil(top)
	c.Max = strconv.FormatFloat(top, 'f', -1, 64) + "/s"
	x := func(t time.Time) float64 {
		f := 1 - now.Sub(t).Seconds()/window.Seconds()
		return chartPad + max(f, 0)*(chartW-2*chartPad)
	}
	y := func(v float64) float64 { return chartH - chartPad - v/top*(chartH-2*chartPad) }
	poly := func(get func(point) float64) string {
		var b strings.Builder
		for _, p := range series {
			fmt.Fprintf(&b, "%.1f,%.1f ", x(p.at), y(get(p)))
		}
		return strings.TrimSpace(b.String())
	}
	c.Lines = append(c.Lines, line{Label: "accepted", Class: "l-accepted", Points: poly(func(p point) float64 { return p.accepted })})
	for i, b := range brokers {
		cls := "l" + strconv.Itoa(i%6)
		c.Lines = append(c.Lines,
			line{Label: b + " delivered", Class: cls, Points: poly(func(p point) float64 { return p.delivered[b] })},
			line{Label: b + " failures", Class: cls + " fail", Points: poly(func(p point) float64 { return p.failures[b] })})
	}
	return c
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten.
func niceCeil(v float64) float64 {
	p := 1.0
	for p*10 <= v {
		p *= 10
	}
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}
