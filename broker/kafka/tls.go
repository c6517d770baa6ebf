package kafka

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"
)

// tlsConfig builds the TLS configuration of SSL and SASL_SSL from the
// certificate files, or returns nil for the plaintext protocols. Errors
// name the endpoints.yml key of the file at fault.
func (c Config) tlsConfig() (*tls.Config, error) {
	if !c.SecurityProtocol.TLS() {
		return nil, nil
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	var roots *x509.CertPool
	if c.CAFile != "" {
		pemBytes, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("kafka: ssl_cafile: %w", err)
		}
		roots = x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pemBytes) {
			return nil, fmt.Errorf("kafka: ssl_cafile: %s holds no PEM certificate", c.CAFile)
		}
		tc.RootCAs = roots
	}
	if c.CertFile != "" {
		cert, err := loadKeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return nil, err
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	if !c.CheckHostname {
		// Rasa's ssl_check_hostname: false skips the hostname check only:
		// the chain is still verified against the CA, as librdkafka does
		// with ssl.endpoint.identification.algorithm=none.
		tc.InsecureSkipVerify = true
		tc.VerifyConnection = func(cs tls.ConnectionState) error {
			return verifyChain(cs, roots)
		}
	}
	return tc, nil
}

// loadKeyPair reads the client certificate and its key; the key may be in
// the certificate file when keyFile is empty, as Python's ssl module
// allows.
func loadKeyPair(certFile, keyFile string) (tls.Certificate, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("kafka: ssl_certfile: %w", err)
	}
	if !hasPEMBlock(certPEM, "CERTIFICATE") {
		return tls.Certificate{}, fmt.Errorf("kafka: ssl_certfile: %s holds no PEM certificate", certFile)
	}
	keyPEM, keyKey, keyPath := certPEM, "ssl_certfile", certFile
	if keyFile != "" {
		keyPEM, keyKey, keyPath = nil, "ssl_keyfile", keyFile
		if keyPEM, err = os.ReadFile(keyFile); err != nil {
			return tls.Certificate{}, fmt.Errorf("kafka: ssl_keyfile: %w", err)
		}
	}
	if !hasPEMBlock(keyPEM, "PRIVATE KEY") {
		if keyFile == "" {
			return tls.Certificate{}, fmt.Errorf("kafka: ssl_keyfile is not set and ssl_certfile %s holds no private key", certFile)
		}
		return tls.Certificate{}, fmt.Errorf("kafka: %s: %s holds no PEM private key", keyKey, keyPath)
	}
	if isEncryptedPEM(keyPEM) {
		return tls.Certificate{}, fmt.Errorf("kafka: %s: %s is encrypted; parley needs an unencrypted private key", keyKey, keyPath)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("kafka: ssl_certfile/%s: %w", keyKey, err)
	}
	return cert, nil
}

func hasPEMBlock(data []byte, typeSuffix string) bool {
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return false
		}
		if strings.HasSuffix(b.Type, typeSuffix) {
			return true
		}
	}
}

func isEncryptedPEM(data []byte) bool {
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return false
		}
		if b.Type == "ENCRYPTED PRIVATE KEY" || b.Headers["Proc-Type"] == "4,ENCRYPTED" {
			return true
		}
	}
}

// verifyChain verifies the server's chain against roots (nil: the
// system's) without checking the hostname.
func verifyChain(cs tls.ConnectionState, roots *x509.CertPool) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("kafka: the broker sent no TLS certificate")
	}
	opts := x509.VerifyOptions{Roots: roots, Intermediates: x509.NewCertPool()}
	for _, c := range cs.PeerCertificates[1:] {
		opts.Intermediates.AddCert(c)
	}
	if _, err := cs.PeerCertificates[0].Verify(opts); err != nil {
		return fmt.Errorf("kafka: broker certificate: %w (check ssl_cafile)", err)
	}
	return nil
}
