// Package cli is parley's command line: thin cobra wiring from flags to the
// library. It is a package, not just cmd/parley, so that a program that
// registers custom brokers can run the same commands:
//
//	func main() {
//		broker.Register("mybroker", myFactory)
//		os.Exit(cli.Main())
//	}
package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
)

// exitError carries an exit code through cobra.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// globalFlags are the flags every command has.
type globalFlags struct {
	endpoints string
	logLevel  string
	logFormat string
}

// New returns the root command.
func New() *cobra.Command {
	g := &globalFlags{}
	root := &cobra.Command{
		Use:   "parley",
		Short: "Event-streaming gateway for Rasa conversation events",
		Long: `parley publishes Rasa tracker events, byte for byte as Rasa does, to the
event brokers in endpoints.yml (Kafka, RabbitMQ, SQL, file), keeps trackers
behind Rasa's conversation API, and serves a REST consumer API.

Configuration is read from ./endpoints.yml when it exists, else from the
built-in defaults (SQLite events.db and rasa.db in the working directory).`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().StringVar(&g.endpoints, "endpoints", "", "endpoints.yml to read (default ./endpoints.yml if present, else built-in defaults)")
	root.PersistentFlags().StringVar(&g.logLevel, "log-level", "", "log level: debug, info, warn, error (default info for serve, warn otherwise)")
	root.PersistentFlags().StringVar(&g.logFormat, "log-format", "text", "log format: text or json")
	root.AddCommand(newVersionCmd(), newPublishCmd(g), newConfigCmd(g))
	for _, extra := range extraCommands {
		root.AddCommand(extra(g))
	}
	return root
}

// extraCommands are added by other files of this package (serve, export,
// consume, bench) so that each command stays in its own file.
var extraCommands []func(*globalFlags) *cobra.Command

// Main runs the command line and returns the exit code.
func Main() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := New().ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	fmt.Fprintln(os.Stderr, "parley: "+strings.TrimSpace(err.Error()))
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	return 1
}

// logger builds the slog logger from the flags; def is the level when the
// flag is not set.
func (g *globalFlags) logger(def slog.Level) (*slog.Logger, error) {
	level := def
	if g.logLevel != "" {
		if err := level.UnmarshalText([]byte(g.logLevel)); err != nil {
			return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", g.logLevel)
		}
	}
	opts := &slog.HandlerOptions{Level: level}
	switch g.logFormat {
	case "text", "":
		return slog.New(slog.NewTextHandler(os.Stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(os.Stderr, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", g.logFormat)
}
