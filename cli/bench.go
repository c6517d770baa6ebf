package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/pprof"
	"slices"
	"time"

	"github.com/spf13/cobra"

	"github.com/parleyhq/parley/bench"
	"github.com/parleyhq/parley/broker"
	"github.com/parleyhq/parley/config"
	"github.com/parleyhq/parley/event"
	"github.com/parleyhq/parley/internal/progress"
	"github.com/parleyhq/parley/privacy"
	"github.com/parleyhq/parley/server"
)

func init() { extraCommands = append(extraCommands, newBenchCmd) }

// benchFlags are shared by the bench subcommands.
type benchFlags struct {
	json       bool
	senders    int
	cpuProfile string
	stopProf   func()
	// intoConfigured publishes into endpoints.yml's own destinations
	// rather than the benchmark's (bench.OwnDestinations).
	intoConfigured bool
}

// load reads endpoints.yml for a benchmark: the brokers' connections as
// configured, their destinations the benchmark's own unless
// --into-configured.
func (f *benchFlags) load(g *globalFlags) (*config.Endpoints, error) {
	ep, err := config.Load(g.endpoints)
	if err != nil || f.intoConfigured {
		return ep, err
	}
	if err := bench.OwnDestinations(ep.EventBrokers); err != nil {
		return nil, err
	}
	if c := ep.Section("consumer_api"); c != nil {
		c.Delete("topic")
		c.Delete("table")
	}
	return ep, nil
}

func newBenchCmd(g *globalFlags) *cobra.Command {
	f := &benchFlags{}
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure parley: publish per broker vs the raw client, HTTP ingest latency, memory over a soak",
		Long: `Bench runs load against the brokers of endpoints.yml (or the built-in
defaults) and prints a table of results, or JSON with --json. Each
publish result is compared, in the same run, with the same workload through
the raw client library (franz-go, amqp091-go, a batched SQL insert, a plain
append+fsync). docs/benchmarks.md records a run and how to reproduce it.

Generated events go to the benchmark's own destinations, with the brokers'
connection settings: Kafka topic, RabbitMQ queue and exchange, and SQL
table parley_bench_events (the topic is created), the file
parley_bench_events.log, and a temporary spool. --into-configured writes
into the configured topics, queues and tables instead.`,
	}
	cmd.PersistentFlags().BoolVar(&f.json, "json", false, "print results as JSON")
	cmd.PersistentFlags().IntVar(&f.senders, "senders", 100, "distinct conversation ids in the generated events")
	cmd.PersistentFlags().StringVar(&f.cpuProfile, "cpuprofile", "", "write a CPU profile of this process (pprof) to this file")
	cmd.PersistentFlags().BoolVar(&f.intoConfigured, "into-configured", false, "publish into endpoints.yml's own topics, queues and tables (default: the benchmark's parley_bench_events)")
	cmd.PersistentPreRunE = func(*cobra.Command, []string) error {
		if f.cpuProfile == "" {
			return nil
		}
		out, err := os.Create(f.cpuProfile)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(out); err != nil {
			return err
		}
		f.stopProf = func() { pprof.StopCPUProfile(); out.Close() }
		return nil
	}
	cmd.PersistentPostRun = func(*cobra.Command, []string) {
		if f.stopProf != nil {
			f.stopProf()
		}
	}
	cmd.AddCommand(newBenchPublishCmd(g, f), newBenchIngestCmd(g, f), newBenchConsumeCmd(g, f), newBenchSoakCmd(g, f))
	return cmd
}

func (f *benchFlags) print(w io.Writer, rs []bench.Result) error {
	if f.json {
		return bench.WriteJSON(w, rs)
	}
	return bench.WriteTable(w, rs)
}

// bar draws a progress bar on stderr when it is a terminal.
func bar(label string, total int) *progress.Bar {
	if !progress.IsTerminal(os.Stderr) {
		return nil
	}
	return progress.New(os.Stderr, progress.Options{Label: label, Total: int64(total), Unit: "ev"})
}

func newBenchPublishCmd(g *globalFlags, f *benchFlags) *cobra.Command {
	var (
		events, batch, concurrency int
		only                       string
		raw, exactlyOnce           bool
		rounds                     int
	)
	cmd := &cobra.Command{
		Use:   "publish",
		Short: "Publish generated events through each configured broker, then through its raw client",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := g.logger(slog.LevelWarn)
			if err != nil {
				return err
			}
			ep, err := f.load(g)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			brokers, err := broker.OpenAll(ctx, ep.EventBrokers, broker.Env{Logger: log})
			if err != nil {
				return err
			}
			defer broker.Fanout(brokers).Close(context.WithoutCancel(ctx))
			// With a privacy section, each broker is timed with its rule
			// set applied, against the raw client without it.
			if brokers, _, err = privacy.FromEndpoints(ep, brokers, privacy.Env{}); err != nil {
				return err
			}
			evs, err := bench.Events(events, f.senders)
			if err != nil {
				return err
			}
			opts := bench.PublishOptions{Batch: batch, Concurrency: concurrency}
			var results []bench.Result
			for _, b := range brokers {
				if only != "" && b.Name != only {
					continue
				}
				clients := []benchClient{{name: "parley " + b.Name, pub: bench.BrokerFunc(b.Broker)}}
				// A broker behind privacy rules is also timed without them;
				// both get events as the spool hands them over (bytes, the
				// body parsed only if read), so the anonymizer pays its parse.
				pw, private := b.Broker.(*privacy.Broker)
				if private {
					clients[0] = benchClient{name: "parley " + b.Name + " with privacy rules " + pw.RuleSet().ID, pub: asSpooled(pw)}
					clients = append(clients, benchClient{name: "parley " + b.Name + " without privacy rules", pub: asSpooled(pw.Unwrap())})
				}
				if raw {
					name, pub, closeRaw, err := bench.Baseline(ctx, b.Broker, log)
					if err != nil {
						return err
					}
					defer closeRaw()
					clients = append(clients, benchClient{name: name + " (" + b.Name + ")", pub: pub})
				}
				rs, runs, err := runRounds(ctx, clients, evs, opts, rounds)
				if err != nil {
					return err
				}
				if private {
					// Each compared with the next: privacy with none, none
					// with the raw client.
					for i := 0; i+1 < len(rs); i++ {
						rs[i].Baseline, rs[i].Ratio = rs[i+1].Name, pairedRatio(runs[i], runs[i+1])
						rs[i].Note += "; ratio: median of the rounds' ratios"
					}
					slices.Reverse(rs) // baseline first
				} else if len(rs) == 2 {
					rs[0].Baseline, rs[0].Ratio = rs[1].Name, pairedRatio(runs[0], runs[1])
					rs[0].Note += "; ratio: median of the rounds' ratios"
					rs[0], rs[1] = rs[1], rs[0] // baseline first
				}
				results = append(results, rs...)
				if pb, ok := b.Broker.(broker.Positioned); ok && exactlyOnce {
					// The cost of exactly once: the spool's streams against
					// the same broker's plain Publish, on the same destination.
					pub, closeStreams, err := bench.StreamFunc(ctx, pb, "bench/"+b.Name, concurrency)
					if err != nil {
						return err
					}
					defer closeStreams()
					clients := []benchClient{
						{name: "parley " + b.Name + " at least once (Publish)", pub: bench.BrokerFunc(b.Broker)},
						{name: "parley " + b.Name + " exactly once (streams)", pub: pub},
					}
					rs, runs, err := runRounds(ctx, clients, evs, opts, rounds)
					if err != nil {
						return err
					}
					rs[1].Baseline, rs[1].Ratio = rs[0].Name, pairedRatio(runs[1], runs[0])
					rs[1].Note += "; ratio: median of the rounds' ratios"
					results = append(results, rs...)
				}
			}
			return f.print(cmd.OutOrStdout(), results)
		},
	}
	cmd.Flags().IntVar(&events, "events", 100_000, "events to publish per client")
	cmd.Flags().IntVar(&batch, "batch", 500, "events per publish call")
	cmd.Flags().IntVar(&concurrency, "concurrency", 4, "concurrent publish calls")
	cmd.Flags().StringVar(&only, "broker", "", "only this broker (its name: the type, or the name key)")
	cmd.Flags().BoolVar(&raw, "raw", true, "also run the raw client on the same destination and report the ratio")
	cmd.Flags().BoolVar(&exactlyOnce, "exactly-once", true, "for brokers with exactly-once streams (sql, file, kafka with exactly_once), also compare them with the broker's plain Publish")
	cmd.Flags().IntVar(&rounds, "rounds", 3, "measured rounds per client, alternating clients, after a warm-up round; the median is reported")
	return cmd
}

func newBenchIngestCmd(g *globalFlags, f *benchFlags) *cobra.Command {
	var o bench.IngestOptions
	cmd := &cobra.Command{
		Use:   "ingest",
		Short: "POST events to /events at a fixed rate and report latency percentiles",
		Long: `Ingest drives POST /events at a fixed rate (open loop: each request is due
at its time whatever happened before, and latency counts from then) and
reports p50/p99/p999 and throughput. Without --url it starts parley in
this process on a loopback port, with the configuration of endpoints.yml.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if o.URL == "" {
				ep, err := f.load(g)
				if err != nil {
					return err
				}
				url, stop, err := startGateway(ctx, g, ep)
				if err != nil {
					return err
				}
				defer stop()
				o.URL = url
			}
			n := int(float64(o.Rate)*o.Duration.Seconds()) + o.PerRequest
			evs, err := bench.Events(min(n, 200_000), f.senders)
			if err != nil {
				return err
			}
			pb := bar(fmt.Sprintf("ingest %d ev/s", o.Rate), n)
			o.Progress = func(n int) { pb.Add(int64(n)) }
			r, err := bench.Ingest(ctx, fmt.Sprintf("ingest %d ev/s, %d per request", o.Rate, max(o.PerRequest, 1)), evs, o)
			pb.Finish()
			if err != nil {
				return err
			}
			return f.print(cmd.OutOrStdout(), []bench.Result{r})
		},
	}
	cmd.Flags().StringVar(&o.URL, "url", "", "parley to load (default: start one in this process)")
	cmd.Flags().IntVar(&o.Rate, "rate", 5000, "events per second")
	cmd.Flags().DurationVar(&o.Duration, "duration", 30*time.Second, "how long to send")
	cmd.Flags().IntVar(&o.PerRequest, "per-request", 1, "events per request")
	cmd.Flags().IntVar(&o.Connections, "connections", 64, "requests in flight at most")
	return cmd
}

// startGateway runs parley in this process on a loopback port with ep
// and a spool of its own, for benchmarks that need a server.
func startGateway(ctx context.Context, g *globalFlags, ep *config.Endpoints) (url string, stop func(), err error) {
	log, err := g.logger(slog.LevelWarn)
	if err != nil {
		return "", nil, err
	}
	// Never the user's spool: its backlog would go to the benchmark's
	// destinations, and the benchmark's events would stay in it.
	spoolDir, err := os.MkdirTemp("", "parley-bench-spool-")
	if err != nil {
		return "", nil, err
	}
	ep.EnsureSection("spool").Set("dir", spoolDir)
	gw, err := server.NewGateway(ctx, ep, server.GatewayOptions{Addr: "127.0.0.1:0", Version: Version(), Logger: log})
	if err != nil {
		os.RemoveAll(spoolDir)
		return "", nil, err
	}
	ln, err := gw.Server.Listen()
	if err != nil {
		gw.Close(context.WithoutCancel(ctx))
		os.RemoveAll(spoolDir)
		return "", nil, err
	}
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := gw.Server.Serve(sctx, ln, 30*time.Second); err != nil {
			log.Error("bench server", "err", err)
		}
	}()
	return "http://" + ln.Addr().String(), func() {
		cancel()
		<-done
		cctx, c := context.WithTimeout(context.Background(), time.Minute)
		defer c()
		gw.Close(cctx)
		os.RemoveAll(spoolDir)
	}, nil
}

// benchClient is one way of publishing the benchmark's events.
type benchClient struct {
	name string
	pub  bench.PublishFunc
}

// runRounds warms every client up with a tenth of the events, then runs
// rounds rounds in which each client publishes all events, in alternating
// order so that drift on the machine (other load, the broker's own state)
// hits every client alike, and reports each client's median round, and
// every round (runs[client][round]).
func runRounds(ctx context.Context, clients []benchClient, evs []event.Event, o bench.PublishOptions, rounds int) (out []bench.Result, runs [][]bench.Result, err error) {
	warm := evs[:max(len(evs)/10, 1)]
	for _, c := range clients {
		if _, err := bench.Publish(ctx, c.name, warm, c.pub, o); err != nil {
			return nil, nil, err
		}
	}
	runs = make([][]bench.Result, len(clients))
	for r := 0; r < max(rounds, 1); r++ {
		for k := range clients {
			i := (k + r) % len(clients) // alternate who goes first
			c := clients[i]
			pb := bar(fmt.Sprintf("%s (round %d)", c.name, r+1), len(evs))
			o.Progress = func(n int) { pb.Add(int64(n)) }
			res, err := bench.Publish(ctx, c.name, evs, c.pub, o)
			pb.Finish()
			if err != nil {
				return nil, nil, err
			}
			runs[i] = append(runs[i], res)
		}
	}
	out = make([]bench.Result, len(clients))
	for i, rs := range runs {
		out[i] = bench.Median(rs)
		out[i].Note = fmt.Sprintf("median of %d rounds", len(rs))
	}
	return out, runs, nil
}

// asSpooled publishes to b events rebuilt as the spool's workers build
// them (event.FromRasaTrusted: bytes, body parsed on first read).
func asSpooled(b broker.Broker) bench.PublishFunc {
	return func(ctx context.Context, evs []event.Event) error {
		out := make([]event.Event, len(evs))
		for i, ev := range evs {
			out[i] = event.FromRasaTrusted(ev.ID, ev.SenderID, ev.RasaJSON())
			out[i].Headers = ev.Headers
		}
		return b.Publish(ctx, out...)
	}
}

// pairedRatio is the median over rounds of a's throughput over b's in the
// same round. Throughput on a shared machine drifts from round to round
// (here by up to 1.7x against a Kafka broker); each round's two clients
// run back to back, so their ratio cancels most of it, where the ratio of
// two medians taken from different rounds does not.
func pairedRatio(a, b []bench.Result) float64 {
	ratios := make([]float64, 0, len(a))
	for r := range min(len(a), len(b)) {
		if be := b[r].EventsPerSec(); be > 0 {
			ratios = append(ratios, a[r].EventsPerSec()/be)
		}
	}
	if len(ratios) == 0 {
		return 0
	}
	slices.Sort(ratios)
	return ratios[len(ratios)/2]
}
