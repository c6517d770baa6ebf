package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/parleyhq/parley/broker"
	"github.com/parleyhq/parley/config"
	"github.com/parleyhq/parley/export"
	"github.com/parleyhq/parley/internal/progress"
	"github.com/parleyhq/parley/internal/sqldb"
	"github.com/parleyhq/parley/privacy"
	"github.com/parleyhq/parley/tracker"
)

func init() { extraCommands = append(extraCommands, newExportCmd) }

// stderrIsTerminal decides --progress auto; tests replace it.
var stderrIsTerminal = func() bool { return progress.IsTerminal(os.Stderr) }

type exportFlags struct {
	minTS, maxTS    string // kept as typed, for the resume command
	conversationIDs string
	offset          int64
	batchSize       int
	retryFor        time.Duration
	progress        string
}

func newExportCmd(g *globalFlags) *cobra.Command {
	f := &exportFlags{}
	cmd := &cobra.Command{
		Use:   "export",
		Short: "Publish the events of the tracker store to the event brokers, like rasa export",
		Long: `Export reads the conversations of the tracker store (tracker_store in
endpoints.yml) and publishes their events to the event brokers (event_broker),
as rasa export does: each event with sender_id last and the header
rasa-export-process-id, one id per run.

Events go out in timestamp order across all conversations, in batches that
each broker confirms before the next is read. At the end the number of
events published is checked against the number selected. If publishing
fails (after --retry-for of retries), export prints the command that
completes the export from the first event not confirmed, and exits 1.`,
		Example: `  parley export
  parley export --minimum-timestamp 1700000000 --maximum-timestamp 1700086400
  parley export --conversation-ids user-1,user-2 --offset-timestamps-by-seconds 3600`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runExport(cmd, g, f) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.minTS, "minimum-timestamp", "", "only events at or after this Unix timestamp")
	fl.StringVar(&f.maxTS, "maximum-timestamp", "", "only events before this Unix timestamp")
	fl.StringVar(&f.conversationIDs, "conversation-ids", "", "only these conversations (comma-separated)")
	fl.Int64Var(&f.offset, "offset-timestamps-by-seconds", 0, "add this many seconds to every exported timestamp")
	fl.IntVar(&f.batchSize, "batch-size", 500, "events per publish")
	fl.DurationVar(&f.retryFor, "retry-for", time.Minute, "how long to retry a failing publish before stopping")
	fl.StringVar(&f.progress, "progress", "auto", "progress bar on stderr: auto (when it is a terminal), always or never")
	return cmd
}

func parseTimestamp(flag, s string) (*float64, error) {
	if s == "" {
		return nil, nil
	}
	v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil {
		return nil, fmt.Errorf("--%s %q: not a number", flag, s)
	}
	return &v, nil
}

func runExport(cmd *cobra.Command, g *globalFlags, f *exportFlags) error {
	ctx := cmd.Context()
	log, err := g.logger(slog.LevelWarn)
	if err != nil {
		return err
	}
	minTS, err := parseTimestamp("minimum-timestamp", f.minTS)
	if err != nil {
		return err
	}
	maxTS, err := parseTimestamp("maximum-timestamp", f.maxTS)
	if err != nil {
		return err
	}
	if minTS != nil && maxTS != nil && *maxTS < *minTS {
		return fmt.Errorf("maximum timestamp '%s' is smaller than minimum timestamp '%s'. Exiting", f.maxTS, f.minTS)
	}
	var ids []string
	if f.conversationIDs != "" {
		for _, id := range strings.Split(f.conversationIDs, ",") {
			if id != "" {
				ids = append(ids, id)
			}
		}
	}
	showBar := false
	switch f.progress {
	case "auto":
		showBar = stderrIsTerminal()
	case "always":
		showBar = true
	case "never":
	default:
		return fmt.Errorf("--progress %q: want auto, always or never", f.progress)
	}

	ep, err := config.Load(g.endpoints)
	if err != nil {
		return err
	}
	sec := ep.Section("tracker_store")
	if sec == nil {
		return fmt.Errorf("could not find a `tracker_store` section in %s: configure the tracker store to export from (https://rasa.com/docs/rasa/tracker-stores). Exiting", ep.File)
	}
	// Keys, not Section: event_broker may be a list (several brokers).
	if !ep.Default && !slices.Contains(ep.Keys(), "event_broker") {
		return fmt.Errorf("could not find an `event_broker` section in %s: configure where to export to (https://rasa.com/docs/rasa/event-brokers). Exiting", ep.File)
	}
	cfg, err := tracker.ParseConfig(sec)
	if err != nil {
		return err
	}
	if cfg.Type == tracker.TypeSQL && cfg.SQL.Dialect == sqldb.SQLite {
		// Opening would create an empty database; say what is missing.
		if _, err := os.Stat(cfg.SQL.DB); err != nil {
			return fmt.Errorf("tracker store %s: %w", cfg.Describe(), err)
		}
	}
	store, err := tracker.Open(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer store.Close()
	brokers, err := broker.OpenAll(ctx, ep.EventBrokers, broker.Env{Logger: log})
	if err != nil {
		return err
	}
	if brokers, err = exportPrivacy(ctx, ep, cfg, brokers); err != nil {
		broker.Fanout(brokers).Close(context.WithoutCancel(ctx))
		return err
	}
	fan := broker.Fanout(brokers)

	out, errOut := cmd.OutOrStdout(), cmd.ErrOrStderr()
	if f.offset != 0 {
		fmt.Fprintf(out, "All event timestamps will be offset by %+d seconds (%s).\n", f.offset, time.Duration(f.offset)*time.Second)
	}
	var bar *progress.Bar
	if showBar {
		bar = progress.New(errOut, progress.Options{Label: "events", Unit: "events"})
	}
	res, err := export.Run(ctx, export.Options{
		Store: store, Broker: fan,
		MinTimestamp: minTS, MaxTimestamp: maxTS, ConversationIDs: ids, OffsetSeconds: f.offset,
		BatchSize: f.batchSize, RetryFor: f.retryFor, Progress: bar, Logger: log,
	})
	bar.Finish()
	if len(res.Missing) > 0 {
		fmt.Fprintf(errOut, "Could not find the following requested conversation IDs in the tracker store: %s\n", strings.Join(res.Missing, ", "))
	}
	closeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	cerr := fan.Close(closeCtx)

	var pe *export.PublishError
	switch {
	case errors.As(err, &pe):
		at, next := "an event without a timestamp", "To start over, run"
		if pe.ResumeFrom != "" {
			at, next = "event with timestamp '"+pe.ResumeFrom+"'", "To continue where I left off, run the following command"
		}
		return &exitError{code: 1, err: fmt.Errorf("encountered error while publishing %s: %w\n\n%d of %d selected events were published. %s:\n\n\t%s\n\nExiting",
			at, pe.Err, pe.Published, res.Counted, next, resumeCommand(g, f, pe.ResumeFrom))}
	case err != nil:
		return err
	case cerr != nil:
		return fmt.Errorf("all %d events were confirmed by the event brokers, but closing them failed: %w", res.Published, cerr)
	}
	fmt.Fprintf(out, "Done! Successfully published %d events from %d conversations to %s 🎉\n", res.Published, res.Conversations, strings.Join(brokerNames(brokers), ", "))
	return nil
}

// resumeCommand is the command line that completes a failed export.
func resumeCommand(g *globalFlags, f *exportFlags, from string) string {
	args := []string{"parley", "export"}
	if g.endpoints != "" {
		args = append(args, "--endpoints", shellQuote(g.endpoints))
	}
	switch {
	case from != "":
		args = append(args, "--minimum-timestamp", from)
	case f.minTS != "":
		args = append(args, "--minimum-timestamp", shellQuote(f.minTS))
	}
	if f.maxTS != "" {
		args = append(args, "--maximum-timestamp", shellQuote(f.maxTS))
	}
	if f.conversationIDs != "" {
		args = append(args, "--conversation-ids", shellQuote(f.conversationIDs))
	}
	if f.offset != 0 {
		args = append(args, "--offset-timestamps-by-seconds", strconv.FormatInt(f.offset, 10))
	}
	return strings.Join(args, " ")
}

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./,:+=@%", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// exportPrivacy applies each broker's privacy rule set to the export, as
// serve does, unless the privacy section's export is false. Values learned
// by serve are read from the tracker store's database when it is SQL.
func exportPrivacy(ctx context.Context, ep *config.Endpoints, tc tracker.Config, brokers []broker.Named) ([]broker.Named, error) {
	pc, err := privacy.ParseConfig(ep.Section("privacy"), ep.EventBrokers)
	if err != nil {
		return brokers, err
	}
	if !pc.Active() || !pc.Export {
		return brokers, nil
	}
	var env privacy.Env
	if tc.Type == tracker.TypeSQL {
		if env.Store, err = privacy.OpenSQLStore(ctx, tc.SQL, pc.ValueTTL, pc.MaxValues); err != nil {
			return brokers, err
		}
	}
	a, err := privacy.New(pc, env)
	if err != nil {
		return brokers, err
	}
	out := a.Wrap(brokers)
	// The store closes with the last broker.
	out[len(out)-1].Broker = closeAlso{out[len(out)-1].Broker, a.Close}
	return out, nil
}

// closeAlso is a broker that runs one more close function after its own.
type closeAlso struct {
	broker.Broker
	also func() error
}

func (c closeAlso) Close(ctx context.Context) error {
	return errors.Join(c.Broker.Close(ctx), c.also())
}
