package redisstore

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/blazingflow/blazing/core/store"
)

// invalid marks an error in the URL or its TLS options: the caller's
// settings are at fault, not Redis. Its message is the wrapped one's.
type invalid struct{ error }

func (e invalid) Unwrap() []error { return []error{e.error, store.ErrInvalid} }

// unavailable marks a Redis that cannot be used from here: unreachable,
// refusing the credentials or failing the TLS handshake.
type unavailable struct{ error }

func (e unavailable) Unwrap() []error { return []error{e.error, store.ErrUnavailable} }

// timedOut marks a Redis that gave no answer in the time Open had: a kind of
// unavailable that callers may tell apart (Python raises a TimeoutError).
type timedOut struct{ error }

func (e timedOut) Unwrap() []error {
	return []error{e.error, store.ErrUnavailable, store.ErrTimeout}
}

// explainPing says why the PING with which Open checks Redis failed: the
// credentials, TLS (with the option that would fix it), another refusal,
// or no answer at all. t is the TLS in force (nil without TLS); hasPassword
// tells whether the URL gives a password; waited is how long Open gave it.
func explainPing(err error, t *TLS, hasPassword bool, waited time.Duration) error {
	switch {
	case isCredentialError(err):
		if !hasPassword && redis.HasErrorPrefix(err, "NOAUTH") {
			return unavailable{fmt.Errorf("Redis refused the credentials: it requires a password and the URL gives none (%w)", err)}
		}
		return unavailable{fmt.Errorf("Redis refused the credentials (%w)", err)}
	case t != nil && isTLSError(err):
		return unavailable{fmt.Errorf("TLS with Redis failed: %w; %s", err, tlsHint(err, *t))}
	case isRedisError(err):
		return unavailable{fmt.Errorf("Redis refused the connection (%w)", err)}
	}
	hint := ""
	switch {
	case t == nil && errors.Is(err, io.EOF):
		hint = "; a server that speaks only TLS closes the connection like this: use rediss:// for it"
	case t != nil && isTimeout(err):
		hint = "; a server that does not speak TLS on that port also gives no answer: use redis:// for it"
	}
	msg := fmt.Errorf("Redis does not answer (waited up to %v): %w%s", waited, err, hint)
	if isTimeout(err) {
		return timedOut{msg}
	}
	return unavailable{msg}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}

func isRedisError(err error) bool {
	var re redis.Error
	return errors.As(err, &re)
}

// isCredentialError: WRONGPASS or NOAUTH, or a password given to a Redis
// that has none ("ERR AUTH <password> called without any password
// configured"), or the "invalid password" of Redis before 6.
func isCredentialError(err error) bool {
	if !isRedisError(err) {
		return false
	}
	return redis.IsAuthError(err) || redis.HasErrorPrefix(err, "AUTH ") ||
		redis.HasErrorPrefix(err, "invalid password") || redis.HasErrorPrefix(err, "invalid username-password")
}

// isTLSError: the handshake failed on our side (the server's certificate)
// or the server sent a TLS alert (our certificate), or it does not speak
// TLS at all.
func isTLSError(err error) bool {
	var (
		verify *tls.CertificateVerificationError
		header tls.RecordHeaderError
		op     *net.OpError
	)
	switch {
	case errors.As(err, &verify), errors.As(err, &header):
		return true
	case errors.As(err, &op) && op.Op == "remote error":
		return true
	}
	return strings.Contains(err.Error(), "tls: ")
}

// tlsHint names the option that would fix a failed TLS handshake.
func tlsHint(err error, t TLS) string {
	var (
		unknownCA x509.UnknownAuthorityError
		hostname  x509.HostnameError
		badCert   x509.CertificateInvalidError
		header    tls.RecordHeaderError
		op        *net.OpError
	)
	roots := "the system's roots (SSL_CERT_FILE)"
	if t.CAFile != "" {
		roots = optCAFile + " " + t.CAFile
	}
	switch {
	case errors.As(err, &unknownCA):
		return fmt.Sprintf("the server's certificate is not signed by a CA in %s: set %s (BLAZING_TLS_CA_FILE) to the CA that signed it", roots, optCAFile)
	case errors.As(err, &hostname):
		return fmt.Sprintf("the server's certificate is not for this host: set %s to a name it is for", optServerName)
	case errors.As(err, &badCert):
		return "the server's certificate is not valid (expired, or not for a server)"
	case errors.As(err, &header):
		return "the server does not speak TLS: use a redis:// URL, or the server's TLS port"
	case errors.As(err, &op) && op.Op == "remote error":
		if t.CertFile == "" {
			return fmt.Sprintf("the server refused the connection, most likely because it requires a client certificate: set %s and %s (BLAZING_TLS_CERT_FILE, BLAZING_TLS_KEY_FILE)", optCertFile, optKeyFile)
		}
		return fmt.Sprintf("the server refused the client certificate in %s %s: it must be signed by a CA the server trusts (its tls-ca-cert-file)", optCertFile, t.CertFile)
	}
	return fmt.Sprintf("check %s, %s and %s", optCAFile, optCertFile, optKeyFile)
}
