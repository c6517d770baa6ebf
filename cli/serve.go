package cli

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/spf13/cobra"

	"github.com/parleyhq/parley/broker"
	"github.com/parleyhq/parley/config"
	"github.com/parleyhq/parley/server"
)

func init() { extraCommands = append(extraCommands, newServeCmd) }

type serveFlags struct {
	addr            string
	authToken       string
	maxBody         string
	shutdownTimeout time.Duration
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

Endpoints: POST /events (ingest), Rasa's /conversations/{id}/tracker API,
GET /health, /ready, /metrics, /version. SIGINT or SIGTERM shuts down
gracefully: requests in flight finish and accepted events are delivered
(up to --shutdown-timeout).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runServe(cmd.Context(), g, f) },
	}
	cmd.Flags().StringVar(&f.addr, "addr", "localhost:5005", "listen address (host:port)")
	cmd.Flags().StringVar(&f.authToken, "auth-token", "", "require this token (?token= as in Rasa, or Authorization: Bearer) on the API")
	cmd.Flags().StringVar(&f.maxBody, "max-body", "10MiB", "largest request body accepted (413 above)")
	cmd.Flags().DurationVar(&f.shutdownTimeout, "shutdown-timeout", 30*time.Second, "how long shutdown waits for requests and deliveries in flight")
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
	brokers, err := broker.OpenAll(ctx, ep.EventBrokers, broker.Env{Logger: log})
	if err != nil {
		return err
	}
	fan := broker.Fanout(brokers)
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), f.shutdownTimeout)
		defer cancel()
		if err := fan.Close(cctx); err != nil {
			log.Error("closing brokers", "err", err)
		}
	}()
	var checks []server.Check
	for _, b := range brokers {
		if p, ok := b.Broker.(broker.Pinger); ok {
			checks = append(checks, server.Check{Name: "broker " + b.Name, Probe: p.Ping})
		}
	}
	srv, err := server.New(server.Options{
		Addr:         f.addr,
		Version:      Version(),
		Logger:       log,
		Publisher:    fan,
		AuthToken:    f.authToken,
		MaxBodyBytes: maxBody,
		Checks:       checks,
	})
	if err != nil {
		return err
	}
	ln, err := srv.Listen()
	if err != nil {
		return err
	}
	log.Info("parley is listening", "addr", "http://"+ln.Addr().String(), "brokers", brokerNames(brokers), "version", Version())
	return srv.Serve(ctx, ln, f.shutdownTimeout)
}
