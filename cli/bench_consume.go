package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/spf13/cobra"

	"github.com/parleyhq/parley/bench"
	"github.com/parleyhq/parley/broker"
	kafkabroker "github.com/parleyhq/parley/broker/kafka"
	sqlbroker "github.com/parleyhq/parley/broker/sql"
	"github.com/parleyhq/parley/config"
	"github.com/parleyhq/parley/consumer"
	"github.com/parleyhq/parley/internal/sqldb"
)

func newBenchConsumeCmd(g *globalFlags, f *benchFlags) *cobra.Command {
	var events int
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
with ?data=value. Ratios are against the direct client.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			log, err := g.logger(slog.LevelWarn)
			if err != nil {
				return err
			}
			ep, err := config.Load(g.endpoints)
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

			var direct bench.Result
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
				direct, err = bench.ConsumeKafka(ctx, opts, topic, groupName("direct"), events, io.Discard)
				if err != nil {
					return err
				}
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
				direct, err = bench.ConsumeSQL(ctx, db, bc.Table, events, io.Discard)
				db.Close()
				if err != nil {
					return err
				}
			}
			url, stop, err := startGateway(ctx, g)
			if err != nil {
				return err
			}
			defer stop()
			records, err := bench.ConsumeRecords(ctx, url, topic, groupName("records"), events, false, io.Discard)
			if err != nil {
				return err
			}
			lines, err := bench.ConsumeRecords(ctx, url, topic, groupName("records-values"), events, true, io.Discard)
			if err != nil {
				return err
			}
			sse, err := bench.ConsumeSSE(ctx, url, topic, groupName("sse"), events, false, io.Discard)
			if err != nil {
				return err
			}
			values, err := bench.ConsumeSSE(ctx, url, topic, groupName("sse-values"), events, true, io.Discard)
			if err != nil {
				return err
			}
			results := []bench.Result{direct, records, lines, sse, values}
			for i := 1; i < len(results); i++ {
				results[i].Compare(direct)
			}
			return f.print(cmd.OutOrStdout(), results)
		},
	}
	cmd.Flags().IntVar(&events, "events", 100_000, "events to read each way")
	return cmd
}

func groupName(kind string) string {
	return fmt.Sprintf("parley-bench-%s-%d", kind, time.Now().UnixNano())
}
