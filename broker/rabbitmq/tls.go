package rabbitmq

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
)

// tlsConfig builds the TLS client configuration: the system roots plus
// CAFile, and the client certificate when one is configured. It reads the
// files, so it runs when the broker opens, not when the config is parsed.
func (c Config) tlsConfig() (*tls.Config, error) {
	if !c.TLS {
		return nil, nil
	}
	tc := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		ServerName:         c.ServerName,
		InsecureSkipVerify: c.InsecureSkipVerify, //nolint:gosec // only with verify=verify_none in the URL
	}
	if tc.ServerName == "" {
		tc.ServerName = c.Host
	}
	if c.CAFile != "" {
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("rabbitmq: TLS CA file: %w", err)
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("rabbitmq: TLS CA file %s holds no PEM certificate", c.CAFile)
		}
		tc.RootCAs = pool
	}
	if c.CertFile != "" {
		key := c.KeyFile
		if key == "" {
			key = c.CertFile
		}
		cert, err := tls.LoadX509KeyPair(c.CertFile, key)
		if err != nil {
			return nil, fmt.Errorf("rabbitmq: TLS client certificate %s with key %s: %w", c.CertFile, key, err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}
