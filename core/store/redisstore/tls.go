package redisstore

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
)

// TLS names the files of a TLS connection to Redis; empty fields are unset.
// The same four settings can be given as query options of a rediss URL
// (tls_ca_file=, tls_cert_file=, tls_key_file=, tls_server_name=); what the
// URL says wins, and a TLS given to Open fills in what the URL does not say.
// The client certificate and its key go together: a URL that names either
// takes both from the URL.
type TLS struct {
	// CAFile holds the PEM certificates of the CAs that may sign the
	// server's certificate. Unset: the system's roots (SSL_CERT_FILE).
	CAFile string
	// CertFile and KeyFile hold the PEM client certificate and its private
	// key, for a server that requires one (Redis' tls-auth-clients).
	CertFile string
	KeyFile  string
	// ServerName is the name checked against the server's certificate.
	// Unset: the host of the URL.
	ServerName string
}

// URL query options that carry a TLS.
const (
	optCAFile     = "tls_ca_file"
	optCertFile   = "tls_cert_file"
	optKeyFile    = "tls_key_file"
	optServerName = "tls_server_name"
	optSkipVerify = "skip_verify"
)

// IsZero reports whether t sets nothing.
func (t TLS) IsZero() bool { return t == TLS{} }

// takeTLS removes the TLS options from q and returns them.
func takeTLS(q url.Values) TLS {
	t := TLS{
		CAFile:     q.Get(optCAFile),
		CertFile:   q.Get(optCertFile),
		KeyFile:    q.Get(optKeyFile),
		ServerName: q.Get(optServerName),
	}
	for _, k := range []string{optCAFile, optCertFile, optKeyFile, optServerName} {
		q.Del(k)
	}
	return t
}

// over returns t with the fields it leaves unset taken from base; the
// certificate and key are taken as a pair.
func (t TLS) over(base TLS) TLS {
	if t.CAFile == "" {
		t.CAFile = base.CAFile
	}
	if t.CertFile == "" && t.KeyFile == "" {
		t.CertFile, t.KeyFile = base.CertFile, base.KeyFile
	}
	if t.ServerName == "" {
		t.ServerName = base.ServerName
	}
	return t
}

// firstOption names the first TLS option t sets, for an error that says
// the URL does not use TLS.
func (t TLS) firstOption() string {
	switch {
	case t.CAFile != "":
		return optCAFile
	case t.CertFile != "":
		return optCertFile
	case t.KeyFile != "":
		return optKeyFile
	case t.ServerName != "":
		return optServerName
	}
	return ""
}

// apply loads t's files into cfg (a fresh one when cfg is nil) and returns
// it. Errors name the option and the file.
func (t TLS) apply(cfg *tls.Config) (*tls.Config, error) {
	if cfg == nil {
		cfg = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	if t.ServerName != "" {
		cfg.ServerName = t.ServerName
	}
	if t.CAFile != "" {
		pem, err := readOption(optCAFile, t.CAFile)
		if err != nil {
			return nil, err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s %s: no PEM certificate in it", optCAFile, t.CAFile)
		}
		cfg.RootCAs = pool
	}
	switch {
	case t.CertFile != "" && t.KeyFile == "":
		return nil, fmt.Errorf("%s %s is given without %s: a client certificate needs its key", optCertFile, t.CertFile, optKeyFile)
	case t.KeyFile != "" && t.CertFile == "":
		return nil, fmt.Errorf("%s %s is given without %s: a client key needs its certificate", optKeyFile, t.KeyFile, optCertFile)
	case t.CertFile != "":
		certPEM, err := readOption(optCertFile, t.CertFile)
		if err != nil {
			return nil, err
		}
		keyPEM, err := readOption(optKeyFile, t.KeyFile)
		if err != nil {
			return nil, err
		}
		pair, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			return nil, fmt.Errorf("%s %s with %s %s: %w", optCertFile, t.CertFile, optKeyFile, t.KeyFile, err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg, nil
}

// readOption reads the file an option names; the error names both once.
func readOption(option, path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err // the path is named below, not twice
		}
		return nil, fmt.Errorf("%s %s: cannot read it: %w", option, path, err)
	}
	return b, nil
}
