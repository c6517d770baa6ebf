package kafka

import (
	"log/slog"

	"github.com/twmb/franz-go/pkg/kgo"
)

// ConnectionOptions returns the franz-go options that reach and
// authenticate to the cluster (seeds, client id, TLS, SASL, logging) and
// nothing about producing, so that readers of the same cluster (the REST
// consumer API) connect exactly as the broker does.
func (c Config) ConnectionOptions(log *slog.Logger) ([]kgo.Opt, error) {
	c = c.withDefaults()
	tc, err := c.tlsConfig()
	if err != nil {
		return nil, err
	}
	opts := []kgo.Opt{kgo.SeedBrokers(c.Seeds...), kgo.ClientID(c.ClientID), kgo.WithLogger(kgoLogger{log})}
	if tc != nil {
		opts = append(opts, kgo.DialTLSConfig(tc))
	}
	if m := c.saslMechanism(); m != nil {
		opts = append(opts, kgo.SASL(m))
	}
	return opts, nil
}
