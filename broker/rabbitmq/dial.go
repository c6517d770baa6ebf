package rabbitmq

import (
	"context"
	"crypto/tls"

	amqp "github.com/rabbitmq/amqp091-go"
)

// Dial opens a connection the way the broker does (TLS, credentials,
// vhost, heartbeat, timeouts), for other clients of the same RabbitMQ:
// benchmarks' raw publishers, tools.
func (c Config) Dial(ctx context.Context) (*amqp.Connection, error) {
	tc, err := c.tlsConfig()
	if err != nil {
		return nil, err
	}
	return c.dial(ctx, tc)
}

func (c Config) dial(ctx context.Context, tc *tls.Config) (*amqp.Connection, error) {
	cfg := amqp.Config{
		Vhost:      c.VHost,
		Heartbeat:  c.Heartbeat,
		Properties: amqp.NewConnectionProperties(),
		Dial:       dialer(ctx, c.ConnectTimeout),
	}
	cfg.Properties.SetClientConnectionName(c.ConnectionName)
	if c.ExternalAuth {
		cfg.SASL = []amqp.Authentication{&amqp.ExternalAuth{}}
	} else {
		cfg.SASL = []amqp.Authentication{&amqp.PlainAuth{Username: c.Username, Password: c.Password}}
	}
	scheme := "amqp://"
	if tc != nil {
		scheme = "amqps://"
		cfg.TLSClientConfig = tc.Clone()
	}
	// Credentials and vhost go through cfg, never through the URL string,
	// so that no character in them needs escaping.
	return amqp.DialConfig(scheme+c.Addr()+"/", cfg)
}
