package cli

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/spf13/cobra"

	"github.com/parleyhq/parley/config"
	"github.com/parleyhq/parley/server"
	"github.com/parleyhq/parley/tracker"
)

func init() { extraCommands = append(extraCommands, newServeCmd) }

type serveFlags struct {
	addr            string
	authToken       string
	maxBody         string
	shutdownTimeout time.Duration
	ui              bool
	headerTimeout   time.Duration
	bodyTimeout     time.Duration
	idleTimeout     time.Duration
	canonical       bool
	conv            tracker.ConversationsConfig
}

func newServeCmd(g *globalFlags) *cobra.Command {
	f := &serveFlags{}
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the gateway: ingest and conversation APIs, publishing to the event brokers",
		Long: `Serve runs parley's HTTP server (default localhost:5005, Rasa's port) with
the configuration of ./endpoints.yml, or the built-in defaults when there is
none: the SQL event broker on SQLite events.db and the SQL tracker store on
SQLite rasa.db, both in the working directory.

Every accepted event is first written to the spool (.parley/spool by
default), a write-ahead log on disk, and then delivered to each broker at
least once, retrying through broker outages and parley restarts.

Endpoints and what they need:
  --auth-token (?token= or Authorization: Bearer, any case):
      POST /events, Rasa's /conversations/{id}/tracker API
  consumer_api tokens (POST /oauth2/token), or loopback callers only
  when consumer_api.clients is empty:
      the REST consumer API (/consumers, /partitions, /topics)
  open, for load balancers and Prometheus (no conversation data):
      GET /health, /ready, /metrics, /version, /openapi.json, /
  the read-only web UI at /ui/: log in with --auth-token; without one,
  loopback callers only (docs/ui.md)
docs/security.md says what each reveals. SIGINT or SIGTERM shuts down
gracefully: requests in flight finish and the spool delivers what it can
within --shutdown-timeout; the rest is delivered on the next start.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runServe(cmd.Context(), g, f) },
	}
	cmd.Flags().StringVar(&f.addr, "addr", "localhost:5005", "listen address (host:port)")
	cmd.Flags().StringVar(&f.authToken, "auth-token", "", "require this token (?token= as in Rasa, or Authorization: Bearer) on POST /events and the conversation API; see Endpoints above")
	cmd.Flags().StringVar(&f.maxBody, "max-body", "10MiB", "largest request body accepted (413 above)")
	cmd.Flags().DurationVar(&f.shutdownTimeout, "shutdown-timeout", 30*time.Second, "how long shutdown waits for requests and deliveries in flight")
	cmd.Flags().BoolVar(&f.ui, "ui", true, "serve the read-only web UI at /ui/")
	cmd.Flags().DurationVar(&f.headerTimeout, "read-header-timeout", server.DefaultReadHeaderTimeout, "how long a client may take to send a request's headers")
	cmd.Flags().DurationVar(&f.bodyTimeout, "body-timeout", server.DefaultBodyTimeout, "how long a client may take to send a request's body (408 after)")
	cmd.Flags().DurationVar(&f.idleTimeout, "idle-timeout", server.DefaultIdleTimeout, "how long an idle keep-alive connection stays open")
	cmd.Flags().BoolVar(&f.canonical, "canonical-events", false, "POST /events publishes events as Rasa's event classes re-serialize them (default: as given)")
	cmd.Flags().StringVar(&f.conv.Domain, "domain", "", "Rasa domain.yml whose slots and session_config the conversation API uses (endpoints.yml conversations.domain)")
	cmd.Flags().StringVar(&f.conv.ModelID, "model-id", "", "model_id added to the metadata of events appended through the conversation API, as Rasa does with a loaded model")
	cmd.Flags().StringVar(&f.conv.AssistantID, "assistant-id", "", "assistant_id added likewise (Rasa's config.yml assistant_id)")
	cmd.Flags().BoolVar(&f.conv.RasaAppend, "rasa-append", false, "store and publish repeated POSTed events again, as Rasa does (default: skip events already stored)")
	return cmd
}

func runServe(ctx context.Context, g *globalFlags, f *serveFlags) error {
	log, err := g.logger(slog.LevelInfo)
	if err != nil {
		return err
	}
	maxBody, err := config.ParseSize(f.maxBody)
	if err != nil {
		return fmt.Errorf("--max-body: %w", err)
	}
	ep, err := config.Load(g.endpoints)
	if err != nil {
		return err
	}
	log.Info("configuration loaded", "file", ep.File)
	gw, err := server.NewGateway(ctx, ep, server.GatewayOptions{
		Addr: f.addr, AuthToken: f.authToken, MaxBodyBytes: maxBody,
		ShutdownTimeout: f.shutdownTimeout, Version: Version(), Logger: log, NoUI: !f.ui,
		ReadHeaderTimeout: f.headerTimeout, BodyTimeout: f.bodyTimeout, IdleTimeout: f.idleTimeout,
		CanonicalEvents: f.canonical, Conversations: f.conv,
	})
	if err != nil {
		return err
	}
	return gw.Run(ctx)
}
