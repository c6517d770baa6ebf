package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/parleyhq/parley/bench"
	"github.com/parleyhq/parley/broker"
	kafkabroker "github.com/parleyhq/parley/broker/kafka"
	sqlbroker "github.com/parleyhq/parley/broker/sql"
	"github.com/parleyhq/parley/consumer"
	"github.com/parleyhq/parley/internal/sqldb"
)

func newBenchConsumeCmd(g *globalFlags, f *benchFlags) *cobra.Command {
	var events, rounds int
	var only string
	cmd := &cobra.Command{
		Use:   "consume",
		Short: "Read events through the REST consumer API (records, SSE) and directly (franz-go or SQL)",
		Long: `Consume publishes --events events to the broker the consumer API reads
(the first event broker: a Kafka topic or the SQL events table), starts
parley in this process, and reads that many events five ways, each writing
every event's JSON as a line, as a consumer program does: a direct client
(a franz-go group consumer, or SQL queries); GET /consumers/records, as a
JSON array of records and as NDJSON values (?data=value, Accept:
application/x-ndjson); and the Server-Sent Events stream, with records and
with ?data=value. Each round reads every way, in alternating order; the
table shows each reader's median round, and its ratio to the direct client
is the median of the rounds' ratios.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			log, err := g.logger(slog.LevelWarn)
			if err != nil {
				return err
			}
			ep, err := f.load(g)
			if err != nil {
				return err
			}
			if len(ep.EventBrokers) == 0 {
				return fmt.Errorf("no event broker configured")
			}
			ccfg, err := consumer.ParseConfig(ep.Section("consumer_api"))
			if err != nil {
				return err
			}
			sec := ep.EventBrokers[0]
			kind := ccfg.SourceFor(sec.Type())
			if kind != "kafka" && kind != "sql" {
				return fmt.Errorf("the consumer API reads Kafka or the SQL events table; the first event broker is %q", sec.Type())
			}
			// Fill the log.
			brokers, err := broker.OpenAll(ctx, ep.EventBrokers[:1], broker.Env{Logger: log})
			if err != nil {
				return err
			}
			evs, err := bench.Events(events, f.senders)
			if err != nil {
				return err
			}
			_, err = bench.Publish(ctx, "fill", evs, bench.BrokerFunc(brokers[0].Broker), bench.PublishOptions{})
			broker.Fanout(brokers).Close(context.WithoutCancel(ctx))
			if err != nil {
				return err
			}

			// Each reader is a function of a fresh consumer group, so that
			// every round reads all events again from the start.
			type reader struct {
				name string
				read func(group string) (bench.Result, error)
			}
			var direct reader
			var topic string
			switch kind {
			case "kafka":
				kc, err := kafkabroker.ParseConfig(sec)
				if err != nil {
					return err
				}
				topic = kc.Topic
				opts, err := kc.ConnectionOptions(log)
				if err != nil {
					return err
				}
				direct = reader{"direct", func(group string) (bench.Result, error) {
					return bench.ConsumeKafka(ctx, opts, topic, group, events, io.Discard)
				}}
			case "sql":
				bc, err := sqlbroker.ParseConfig(sec)
				if err != nil {
					return err
				}
				topic = ccfg.Topic
				if topic == "" {
					topic = "rasa_core_events"
				}
				db, err := sqldb.Open(ctx, bc.DB)
				if err != nil {
					return err
				}
				defer db.Close()
				direct = reader{"direct", func(string) (bench.Result, error) {
					return bench.ConsumeSQL(ctx, db, bc.Table, events, io.Discard)
				}}
			}
			url, stop, err := startGateway(ctx, g, ep)
			if err != nil {
				return err
			}
			defer stop()
			readers := []reader{
				direct,
				{"records", func(group string) (bench.Result, error) {
					return bench.ConsumeRecords(ctx, url, topic, group, events, false, io.Discard)
				}},
				{"records-values", func(group string) (bench.Result, error) {
					return bench.ConsumeRecords(ctx, url, topic, group, events, true, io.Discard)
				}},
				{"sse", func(group string) (bench.Result, error) {
					return bench.ConsumeSSE(ctx, url, topic, group, events, false, io.Discard)
				}},
				{"sse-values", func(group string) (bench.Result, error) {
					return bench.ConsumeSSE(ctx, url, topic, group, events, true, io.Discard)
				}},
			}
			if only != "" {
				keep := strings.Split(only, ",")
				readers = slices.DeleteFunc(readers, func(r reader) bool { return r.name != "direct" && !slices.Contains(keep, r.name) })
			}
			// Rounds alternate who goes first, as bench publish does; each
			// ratio is the median of the rounds' ratios to the direct read.
			runs := make([][]bench.Result, len(readers))
			for r := range max(rounds, 1) {
				for k := range readers {
					i := (k + r) % len(readers)
					res, err := readers[i].read(groupName(readers[i].name))
					if err != nil {
						return err
					}
					runs[i] = append(runs[i], res)
				}
			}
			results := make([]bench.Result, len(readers))
			for i, rs := range runs {
				results[i] = bench.Median(rs)
				results[i].Note = fmt.Sprintf("median of %d rounds", len(rs))
				if i > 0 {
					results[i].Baseline, results[i].Ratio = results[0].Name, pairedRatio(rs, runs[0])
				}
			}
			return f.print(cmd.OutOrStdout(), results)
		},
	}
	cmd.Flags().IntVar(&events, "events", 100_000, "events to read each way")
	cmd.Flags().StringVar(&only, "readers", "", "comma-separated readers to run besides the direct one: records, records-values, sse, sse-values (default all)")
	cmd.Flags().IntVar(&rounds, "rounds", 3, "rounds, each reading the events every way (alternating who goes first); medians are reported")
	return cmd
}

func groupName(kind string) string {
	return fmt.Sprintf("parley-bench-%s-%d", kind, time.Now().UnixNano())
}
