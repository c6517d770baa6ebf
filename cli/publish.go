package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/parleyhq/parley/broker"
	"github.com/parleyhq/parley/config"
	"github.com/parleyhq/parley/ingest"
	"github.com/parleyhq/parley/privacy"
)

func newPublishCmd(g *globalFlags) *cobra.Command {
	var (
		senderID  string
		canonical bool
		timeout   time.Duration
		batchSize int
	)
	cmd := &cobra.Command{
		Use:   "publish [FILE|-]",
		Short: "Publish NDJSON events (from FILE or stdin) to the configured event brokers",
		Long: `Publish reads Rasa tracker events, one JSON object per line, and publishes
each to every event broker of endpoints.yml in Rasa's exact bytes: the
bytes Rasa's brokers publish for the event as given (an event without a
timestamp goes out without one). With --canonical, each event is first
re-serialized as Rasa's event classes do (their keys and defaults, unknown
keys dropped, a missing timestamp set to now).

Every event needs a sender_id, unless --sender-id gives one to all of them.
A malformed line stops the run: every earlier line is published first, the
error names the line, and the exit status is non-zero. The number of
events published (confirmed by the brokers) is printed either way.`,
		Example: `  parley publish < events.ndjson
  parley publish --sender-id user-42 conversation.ndjson`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			log, err := g.logger(slog.LevelWarn)
			if err != nil {
				return err
			}
			in := io.Reader(cmd.InOrStdin())
			if len(args) == 1 && args[0] != "-" {
				f, err := os.Open(args[0])
				if err != nil {
					return err
				}
				defer f.Close()
				in = f
			}
			ep, err := config.Load(g.endpoints)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			brokers, err := broker.OpenAll(ctx, ep.EventBrokers, broker.Env{Logger: log})
			if err != nil {
				return err
			}
			// Each broker gets its rule set's anonymized events, as from serve.
			if brokers, _, err = privacy.FromEndpoints(ep, brokers, privacy.Env{}); err != nil {
				broker.Fanout(brokers).Close(context.WithoutCancel(ctx))
				return err
			}
			fan := broker.Fanout(brokers)
			r := ingest.NewReader(in)
			r.SenderID = senderID
			r.Canonical = canonical
			pubCtx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			n, err := ingest.Stream(pubCtx, r, fan, ingest.StreamOptions{
				BatchSize: batchSize,
				OnRetry: func(attempt int, err error, wait time.Duration) {
					log.Warn("publish failed, retrying", "attempt", attempt, "wait", wait.Round(time.Millisecond), "err", err)
				},
			})
			closeCtx, cancelClose := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			defer cancelClose()
			if cerr := fan.Close(closeCtx); cerr != nil && err == nil {
				err = cerr
			}
			fmt.Fprintf(cmd.OutOrStdout(), "published %s to %s\n", plural(n, "event"), strings.Join(brokerNames(brokers), ", "))
			return err
		},
	}
	cmd.Flags().StringVar(&senderID, "sender-id", "", "conversation id for every event (replaces the events' own sender_id)")
	cmd.Flags().DurationVar(&timeout, "timeout", 5*time.Minute, "give up when the brokers have not taken the events in this time")
	cmd.Flags().IntVar(&batchSize, "batch-size", 500, "events per publish call")
	cmd.Flags().BoolVar(&canonical, "canonical", false, "publish each event as Rasa's event class re-serializes it (Rasa's keys and defaults; default: as given)")
	return cmd
}

func brokerNames(bs []broker.Named) []string {
	out := make([]string, len(bs))
	for i, b := range bs {
		out[i] = b.Name
	}
	return out
}

// plural formats a count with its noun: "1 event", "2 events".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
