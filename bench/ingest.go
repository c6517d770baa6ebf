package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/parleyhq/parley/event"
)

// IngestOptions shape an HTTP ingest load.
type IngestOptions struct {
	// URL is parley's base URL, e.g. http://127.0.0.1:5005.
	URL string
	// Rate is the target events per second.
	Rate int
	// Duration is how long the load runs.
	Duration time.Duration
	// PerRequest is the number of events in each POST /events (default 1).
	PerRequest int
	// Connections bounds the requests in flight (default 64).
	Connections int
	// Progress, if set, is told of each request's accepted events.
	Progress func(n int)
}

// Ingest posts events to POST /events at a fixed rate (open loop: request
// i is due at start + i/rate whatever happened before) and measures each
// request's latency from the moment it was due, so a stall shows up in
// the percentiles instead of silently lowering the rate (no coordinated
// omission).
func Ingest(ctx context.Context, name string, evs []event.Event, o IngestOptions) (Result, error) {
	if o.PerRequest <= 0 {
		o.PerRequest = 1
	}
	if o.Connections <= 0 {
		o.Connections = 64
	}
	if o.Rate <= 0 || o.Duration <= 0 {
		return Result{}, fmt.Errorf("ingest: rate and duration must be positive")
	}
	requests := int(float64(o.Rate) * o.Duration.Seconds() / float64(o.PerRequest))
	bodies := make([][]byte, 0, min(requests, len(evs)/o.PerRequest+1))
	for i := 0; i+o.PerRequest <= len(evs) && len(bodies) < cap(bodies); i += o.PerRequest {
		var b bytes.Buffer
		for _, ev := range evs[i : i+o.PerRequest] {
			b.Write(ev.RasaJSON())
			b.WriteByte('\n')
		}
		bodies = append(bodies, b.Bytes())
	}
	if len(bodies) == 0 {
		return Result{}, fmt.Errorf("ingest: not enough events for one request")
	}
	interval := time.Duration(float64(time.Second) * float64(o.PerRequest) / float64(o.Rate))
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: o.Connections, MaxConnsPerHost: o.Connections}, Timeout: 30 * time.Second}
	defer client.CloseIdleConnections()

	var (
		lat      Latencies
		accepted atomic.Int64
		failed   atomic.Int64
		sent     int64
		wg       sync.WaitGroup
	)
	slots := make(chan int, o.Connections)
	start := time.Now()
	for w := 0; w < o.Connections; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range slots {
				due := start.Add(time.Duration(i) * interval)
				body := bodies[i%len(bodies)]
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, o.URL+"/events", bytes.NewReader(body))
				resp, err := client.Do(req)
				if err != nil {
					failed.Add(1)
					continue
				}
				io.Copy(io.Discard, resp.Body) //nolint:errcheck // drain for keep-alive
				resp.Body.Close()
				if resp.StatusCode != http.StatusAccepted {
					failed.Add(1)
					continue
				}
				lat.Add(time.Since(due))
				accepted.Add(int64(o.PerRequest))
				if o.Progress != nil {
					o.Progress(o.PerRequest)
				}
			}
		}()
	}
	timer := time.NewTimer(0)
	defer timer.Stop()
schedule:
	for i := 0; i < requests; i++ {
		if wait := time.Until(start.Add(time.Duration(i) * interval)); wait > 0 {
			timer.Reset(wait)
			select {
			case <-timer.C:
			case <-ctx.Done():
				break schedule
			}
		}
		slots <- i
		sent++
	}
	close(slots)
	wg.Wait()
	elapsed := time.Since(start)
	s := lat.Summary()
	r := Result{Name: name, Events: int(accepted.Load()), Duration: elapsed, Latency: &s}
	for i := 0; i < int(sent); i++ {
		r.Bytes += int64(len(bodies[i%len(bodies)]))
	}
	if f := failed.Load(); f > 0 {
		r.Note = fmt.Sprintf("%d of %d requests failed", f, sent)
	}
	if err := ctx.Err(); err != nil {
		return r, err
	}
	return r, nil
}
