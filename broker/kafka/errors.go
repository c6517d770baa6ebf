package kafka

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/parleyhq/parley/broker"
)

// Sentinel errors callers branch on.
var (
	// ErrTopicNotFound: the topic does not exist and the brokers will not
	// create it (auto.create.topics.enable is off and create_topic is not
	// set).
	ErrTopicNotFound = errors.New("topic does not exist")
	// ErrAuthentication: the brokers refused the SASL credentials or the
	// TLS client certificate.
	ErrAuthentication = errors.New("authentication failed")
	// ErrTooLarge: an event does not fit in a record batch of
	// max_message_bytes. It is also permanent (broker.ErrPermanent).
	ErrTooLarge = errors.New("event too large")

	// errTLS marks certificate and handshake failures.
	errTLS = errors.New("TLS handshake with the brokers failed")
)

// permanentKafkaErrors are the broker replies retrying cannot fix: the
// record itself is refused, or this client may never write the topic.
var permanentKafkaErrors = []error{
	kerr.MessageTooLarge,
	kerr.RecordListTooLarge,
	kerr.InvalidRecord,
	kerr.CorruptMessage,
	kerr.InvalidTopicException,
	kerr.TopicAuthorizationFailed,
	kerr.ClusterAuthorizationFailed,
	kerr.TransactionalIDAuthorizationFailed,
	kerr.PolicyViolation,
	kerr.UnsupportedForMessageFormat,
}

// classify turns an error from the client into parley's: a sentence that
// says what to do, the sentinel, and broker.Permanent where retrying is
// useless. The original error stays wrapped.
func (b *Broker) classify(err error) error {
	topic := b.cfg.Topic
	switch {
	case err == nil:
		return nil
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	case errors.Is(err, kgo.ErrClientClosed):
		return fmt.Errorf("kafka: %w: %w", broker.ErrClosed, err)
	case errors.Is(err, kerr.UnknownTopicOrPartition), errors.Is(err, kerr.UnknownTopicID):
		return topicNotFound(topic, err)
	case isAuthError(err):
		return authError(b.cfg, err)
	case isTLSError(err):
		return fmt.Errorf("kafka: %w (check ssl_cafile, ssl_check_hostname and the brokers' certificates): %w", errTLS, err)
	}
	for _, p := range permanentKafkaErrors {
		if errors.Is(err, p) {
			msg := "kafka: publish to %q refused: %w"
			switch p {
			case kerr.MessageTooLarge, kerr.RecordListTooLarge:
				msg = "kafka: publish to %q: record batch larger than the topic's max.message.bytes (lower max_message_bytes to match it): %w"
			case kerr.TopicAuthorizationFailed, kerr.ClusterAuthorizationFailed:
				msg = "kafka: publish to %q: not authorized (grant this user WRITE on the topic and IDEMPOTENT_WRITE on the cluster): %w"
			}
			return broker.Permanent(fmt.Errorf(msg, topic, err))
		}
	}
	return fmt.Errorf("kafka: publish to %q: %w", topic, err)
}

func topicNotFound(topic string, err error) error {
	return fmt.Errorf("kafka: topic %q does not exist (create it, or set create_topic: true): %w: %w", topic, ErrTopicNotFound, err)
}

func isAuthError(err error) bool {
	return errors.Is(err, kerr.SaslAuthenticationFailed) ||
		errors.Is(err, kerr.IllegalSaslState) ||
		errors.Is(err, kerr.UnsupportedSaslMechanism) ||
		errors.Is(err, ErrAuthentication)
}

func authError(c Config, err error) error {
	hint := "check sasl_username, sasl_password and sasl_mechanism"
	if errors.Is(err, kerr.UnsupportedSaslMechanism) {
		hint = fmt.Sprintf("the brokers do not enable SASL mechanism %s on this listener", c.SASLMechanism)
	}
	return fmt.Errorf("kafka: %w as %q with %s (%s): %w", ErrAuthentication, c.SASLUsername, c.SASLMechanism, hint, err)
}

// isTLSError reports certificate and handshake failures, which retrying
// the same configuration cannot fix.
func isTLSError(err error) bool {
	var (
		unknownAuthority x509.UnknownAuthorityError
		hostname         x509.HostnameError
		invalid          x509.CertificateInvalidError
		verification     *tls.CertificateVerificationError
		alert            tls.AlertError
		recordHeader     tls.RecordHeaderError
	)
	return errors.As(err, &unknownAuthority) || errors.As(err, &hostname) || errors.As(err, &invalid) ||
		errors.As(err, &verification) || errors.As(err, &alert) || errors.As(err, &recordHeader) ||
		strings.Contains(err.Error(), "broker certificate:")
}
