package cli

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/parleyhq/parley/broker"
	"github.com/parleyhq/parley/config"
	"github.com/parleyhq/parley/server"
)

// sectionChecker validates a part of endpoints.yml for `config check`
// without I/O, returning notes worth printing. Files that add a section
// (tracker store, consumer API) append one.
type sectionChecker func(ep *config.Endpoints) (notes []string, err error)

var sectionCheckers = []sectionChecker{checkEventBrokers, server.CheckEndpoints}

func checkEventBrokers(ep *config.Endpoints) ([]string, error) {
	if _, err := broker.ConfigureAll(ep.EventBrokers); err != nil {
		return nil, err
	}
	var notes []string
	names := broker.Names(ep.EventBrokers)
	for i, s := range ep.EventBrokers {
		notes = append(notes, fmt.Sprintf("event broker %s: %s line %d", names[i], s.File(), s.Line()))
		notes = append(notes, s.Warnings()...)
	}
	return notes, nil
}

func newConfigCmd(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{Use: "config", Short: "Inspect endpoints.yml"}
	var strict bool
	check := &cobra.Command{
		Use:   "check",
		Short: "Validate endpoints.yml and print the resolved configuration, secrets masked",
		Long: `Check loads endpoints.yml (or the built-in defaults) as parley would, without
connecting to anything, and prints the configuration with environment
variables resolved and secrets masked, followed by notes and warnings.
On errors it prints every one, each naming the file, line and key, and
exits with status 1. With --strict, warnings (a misspelt section or key
among them) fail it too: the check to put in a deployment pipeline.`,
		Example: `  parley config check
  parley config check --strict --endpoints deploy/endpoints.yml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ep, err := config.Load(g.endpoints)
			if err != nil {
				return err
			}
			notes := ep.SectionWarnings()
			var errs []error
			for _, check := range sectionCheckers {
				n, err := check(ep)
				notes = append(notes, n...)
				if err != nil {
					errs = append(errs, err)
				}
			}
			if len(errs) > 0 {
				return fmt.Errorf("%s is not valid:\n%w", ep.File, errors.Join(errs...))
			}
			if w := warningsOf(ep.File, notes); strict && len(w) > 0 {
				return fmt.Errorf("%s: --strict: warnings fail the check:\n%s", ep.File, strings.Join(w, "\n"))
			}
			out, err := ep.Redacted()
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "# %s: OK\n%s", ep.File, out)
			for _, n := range notes {
				fmt.Fprintln(w, "# "+n)
			}
			return nil
		},
	}
	check.Flags().BoolVar(&strict, "strict", false, "fail on warnings too (unknown sections and keys, ignored settings)")
	cmd.AddCommand(check)
	return cmd
}

// warningsOf picks the warnings out of the notes: those positioned in the
// file ("endpoints.yml:3: key: ..."), not the summaries.
func warningsOf(file string, notes []string) []string {
	var out []string
	for _, n := range notes {
		if strings.HasPrefix(n, file+":") {
			out = append(out, n)
		}
	}
	return out
}
