package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/parleyhq/parley/bench"
	"github.com/parleyhq/parley/config"
)

func newBenchSoakCmd(g *globalFlags, f *benchFlags) *cobra.Command {
	var (
		o      bench.IngestOptions
		sample time.Duration
		warmup int
	)
	cmd := &cobra.Command{
		Use:   "soak",
		Short: "Run parley serve under a steady ingest load and sample its memory (RSS)",
		Long: `Soak starts "parley serve" as a child process in a temporary directory (with
a copy of endpoints.yml, if there is one), sends it events at --rate for
--duration, and samples the child's resident memory every --sample. It
reports the ingest result and how flat the memory stayed after warm-up.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			dir, err := os.MkdirTemp("", "parley-soak")
			if err != nil {
				return err
			}
			defer os.RemoveAll(dir)
			if g.endpoints != "" || fileExists(config.DefaultFile) {
				ep, err := f.load(g)
				if err != nil {
					return err
				}
				ep.EnsureSection("spool").Set("dir", filepath.Join(dir, "spool"))
				// Resolved, secrets included: 0600, in a directory removed
				// at the end.
				data, err := ep.YAML()
				if err != nil {
					return err
				}
				if err := os.WriteFile(filepath.Join(dir, config.DefaultFile), data, 0o600); err != nil {
					return err
				}
			}
			child, url, err := startChild(ctx, dir)
			if err != nil {
				return err
			}
			defer func() {
				_ = child.Process.Signal(syscall.SIGTERM)
				_ = child.Wait()
			}()
			var samples []int64
			sctx, stop := context.WithCancel(ctx)
			sampled := make(chan struct{})
			go func() {
				defer close(sampled)
				t := time.NewTicker(sample)
				defer t.Stop()
				for {
					if rss, err := bench.RSS(child.Process.Pid); err == nil {
						samples = append(samples, rss)
					}
					select {
					case <-sctx.Done():
						return
					case <-t.C:
					}
				}
			}()
			o.URL = url
			n := int(float64(o.Rate) * o.Duration.Seconds())
			evs, err := bench.Events(min(n+1, 200_000), f.senders)
			if err != nil {
				stop()
				return err
			}
			pb := bar("soak", n)
			o.Progress = func(n int) { pb.Add(int64(n)) }
			r, err := bench.Ingest(ctx, fmt.Sprintf("soak %d ev/s for %s", o.Rate, o.Duration), evs, o)
			pb.Finish()
			stop()
			<-sampled
			if err != nil {
				return err
			}
			fl := bench.Flat(samples, warmup)
			r.Note = fmt.Sprintf("RSS %d samples: %.1f MiB after warm-up, %.1f MiB at the end (growth %+.1f%%, peak %+.1f%%)",
				len(samples), mib(samples, warmup), mib(samples, len(samples)-1), 100*fl.Growth, 100*fl.Peak)
			if f.json {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(map[string]any{"result": r, "memory": fl})
			}
			if err := bench.WriteTable(cmd.OutOrStdout(), []bench.Result{r}); err != nil {
				return err
			}
			_, err = fmt.Fprintln(cmd.OutOrStdout(), r.Note)
			return err
		},
	}
	cmd.Flags().IntVar(&o.Rate, "rate", 2000, "events per second")
	cmd.Flags().DurationVar(&o.Duration, "duration", 10*time.Minute, "how long the load runs")
	cmd.Flags().IntVar(&o.PerRequest, "per-request", 10, "events per request")
	cmd.Flags().DurationVar(&sample, "sample", 10*time.Second, "RSS sampling interval")
	cmd.Flags().IntVar(&warmup, "warmup", 6, "samples to skip before measuring growth")
	return cmd
}

func mib(samples []int64, i int) float64 {
	if i < 0 || i >= len(samples) {
		return 0
	}
	return float64(samples[i]) / (1 << 20)
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// startChild runs this binary's serve command in dir on a free loopback
// port and waits until it answers /health.
func startChild(ctx context.Context, dir string) (*exec.Cmd, string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, "", err
	}
	addr := ln.Addr().String()
	ln.Close()
	self, err := os.Executable()
	if err != nil {
		return nil, "", err
	}
	child := exec.CommandContext(ctx, self, "serve", "--addr", addr, "--log-level", "warn")
	child.Dir, child.Stderr = dir, os.Stderr
	if err := child.Start(); err != nil {
		return nil, "", err
	}
	url := "http://" + addr
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if resp, err := http.Get(url + "/health"); err == nil {
			resp.Body.Close()
			return child, url, nil
		}
	}
	_ = child.Process.Kill()
	_ = child.Wait()
	return nil, "", fmt.Errorf("parley serve did not start in %s", dir)
}
