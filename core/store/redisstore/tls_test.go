package redisstore_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/blazingflow/blazing/core/store"
	"github.com/blazingflow/blazing/core/store/redisstore"
)

// pki is a CA with one server and one client certificate, as PEM files.
type pki struct {
	dir                        string
	caFile, certFile, keyFile  string // the CA; the client's certificate and key
	otherCert, otherKey        string // a second client pair, signed by the same CA
	notPEM, garbledPEM, absent string // files that are no certificate
}

func newPKI(t *testing.T) pki {
	t.Helper()
	dir := t.TempDir()
	p := pki{dir: dir}
	caKey := newKey(t)
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	require.NoError(t, err)
	ca, err := x509.ParseCertificate(caDER)
	require.NoError(t, err)
	p.caFile = writePEM(t, dir, "ca.crt", "CERTIFICATE", caDER)
	leaf := func(name string, serial int64) (string, string) {
		key := newKey(t)
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial),
			Subject:      pkix.Name{CommonName: name},
			NotBefore:    time.Now().Add(-time.Hour),
			NotAfter:     time.Now().Add(time.Hour),
			ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth},
			DNSNames:     []string{"localhost"},
			IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		require.NoError(t, err)
		keyDER, err := x509.MarshalPKCS8PrivateKey(key)
		require.NoError(t, err)
		return writePEM(t, dir, name+".crt", "CERTIFICATE", der), writePEM(t, dir, name+".key", "PRIVATE KEY", keyDER)
	}
	p.certFile, p.keyFile = leaf("client", 2)
	p.otherCert, p.otherKey = leaf("other", 3)
	p.notPEM = filepath.Join(dir, "notes.txt")
	require.NoError(t, os.WriteFile(p.notPEM, []byte("not a certificate\n"), 0o600))
	p.garbledPEM = filepath.Join(dir, "garbled.crt")
	require.NoError(t, os.WriteFile(p.garbledPEM, []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"), 0o600))
	p.absent = filepath.Join(dir, "absent.pem")
	return p
}

func newKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	return k
}

func writePEM(t *testing.T, dir, name, kind string, der []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der}), 0o600))
	return path
}

// tlsOf builds the client a URL names (settings fill in) and returns its
// TLS configuration.
func tlsOf(t *testing.T, rawURL string, settings redisstore.TLS) *tls.Config {
	t.Helper()
	c, err := redisstore.Client(rawURL, settings)
	require.NoError(t, err, rawURL)
	t.Cleanup(func() { _ = c.Close() })
	switch c := c.(type) {
	case *redis.Client:
		return c.Options().TLSConfig
	case *redis.ClusterClient:
		return c.Options().TLSConfig
	}
	t.Fatalf("unexpected client %T", c)
	return nil
}

func poolOf(t *testing.T, file string) *x509.CertPool {
	t.Helper()
	b, err := os.ReadFile(file)
	require.NoError(t, err)
	pool := x509.NewCertPool()
	require.True(t, pool.AppendCertsFromPEM(b))
	return pool
}

func leafOf(t *testing.T, cfg *tls.Config) string {
	t.Helper()
	require.Len(t, cfg.Certificates, 1)
	return cfg.Certificates[0].Leaf.Subject.CommonName
}

func q(kv ...string) string {
	var parts []string
	for i := 0; i < len(kv); i += 2 {
		parts = append(parts, kv[i]+"="+kv[i+1])
	}
	return "?" + strings.Join(parts, "&")
}

// The four TLS options of a rediss URL reach the client's TLS
// configuration, go-redis' own options and skip_verify still work, and
// every TLS form takes them.
func TestTLSOptionsInTheURL(t *testing.T) {
	p := newPKI(t)
	opts := q("tls_ca_file", p.caFile, "tls_cert_file", p.certFile, "tls_key_file", p.keyFile,
		"tls_server_name", "redis.internal")

	c, err := redisstore.Client("rediss://u:s3cret@127.0.0.1:6380/2"+opts+"&dial_timeout=3&skip_verify=true", redisstore.TLS{})
	require.NoError(t, err)
	defer c.Close()
	o := c.(*redis.Client).Options()
	require.Equal(t, "127.0.0.1:6380", o.Addr)
	require.Equal(t, 2, o.DB)
	require.Equal(t, 3*time.Second, o.DialTimeout, "go-redis' own options still apply")
	require.Equal(t, "s3cret", o.Password)
	require.True(t, o.TLSConfig.InsecureSkipVerify, "skip_verify=true still works")
	require.Equal(t, "redis.internal", o.TLSConfig.ServerName)
	require.True(t, o.TLSConfig.RootCAs.Equal(poolOf(t, p.caFile)))
	require.Equal(t, "client", leafOf(t, o.TLSConfig))
	require.GreaterOrEqual(t, o.TLSConfig.MinVersion, uint16(tls.VersionTLS12))

	for _, u := range []string{
		"rediss+sentinel://h1:26379,h2:26379/mymaster/0" + opts,
		"rediss+cluster://h1:7000,h2:7001" + opts,
	} {
		cfg := tlsOf(t, u, redisstore.TLS{})
		require.Equal(t, "redis.internal", cfg.ServerName, u)
		require.True(t, cfg.RootCAs.Equal(poolOf(t, p.caFile)), u)
		require.Equal(t, "client", leafOf(t, cfg), u)
		require.False(t, cfg.InsecureSkipVerify, u)
	}
	cfg := tlsOf(t, "rediss+cluster://h1:7000?skip_verify=true", redisstore.TLS{})
	require.True(t, cfg.InsecureSkipVerify, "skip_verify works on the multi-host forms too")

	// Without options a rediss URL verifies the URL's host against the
	// system's roots, as before.
	cfg = tlsOf(t, "rediss://redis.example.com:6380/0", redisstore.TLS{})
	require.Equal(t, "redis.example.com", cfg.ServerName)
	require.Nil(t, cfg.RootCAs)
	require.Empty(t, cfg.Certificates)
	require.False(t, cfg.InsecureSkipVerify)
}

// Settings fill in what the URL does not say; the URL wins, and the
// certificate and key are taken as a pair.
func TestTLSSettingsFillInTheURL(t *testing.T) {
	p := newPKI(t)
	settings := redisstore.TLS{CAFile: p.caFile, CertFile: p.certFile, KeyFile: p.keyFile}

	cfg := tlsOf(t, "rediss://127.0.0.1:6380/0", settings)
	require.True(t, cfg.RootCAs.Equal(poolOf(t, p.caFile)))
	require.Equal(t, "client", leafOf(t, cfg))
	require.Equal(t, "127.0.0.1", cfg.ServerName)

	cfg = tlsOf(t, "rediss://127.0.0.1:6380/0"+q("tls_cert_file", p.otherCert, "tls_key_file", p.otherKey), settings)
	require.Equal(t, "other", leafOf(t, cfg), "the URL's pair wins")
	require.True(t, cfg.RootCAs.Equal(poolOf(t, p.caFile)), "the CA still comes from the settings")

	// A URL naming only the certificate takes no key from the settings.
	_, err := redisstore.Client("rediss://127.0.0.1:6380/0"+q("tls_cert_file", p.otherCert), settings)
	require.ErrorContains(t, err, "tls_cert_file "+p.otherCert+" is given without tls_key_file")

	cfg = tlsOf(t, "rediss://127.0.0.1:6380/0"+q("tls_ca_file", p.otherCert), settings)
	require.True(t, cfg.RootCAs.Equal(poolOf(t, p.otherCert)), "the URL's CA wins")
	require.Equal(t, "client", leafOf(t, cfg))
}

// TLS options on a URL without TLS are refused, from the URL or the
// settings, with a message that says to use rediss://.
func TestTLSOptionsNeedATLSURL(t *testing.T) {
	p := newPKI(t)
	for _, c := range []struct {
		url      string
		settings redisstore.TLS
		want     string
	}{
		{"redis://:s3cret@127.0.0.1:6379/0" + q("tls_ca_file", p.caFile), redisstore.TLS{}, "option tls_ca_file needs TLS: use rediss:// instead of redis://"},
		{"redis://:s3cret@127.0.0.1:6379/0" + q("tls_server_name", "x"), redisstore.TLS{}, "option tls_server_name needs TLS"},
		{"redis://:s3cret@127.0.0.1:6379/0", redisstore.TLS{CAFile: p.caFile}, "tls_ca_file is set but redis:// does not use TLS: TLS options need rediss://"},
		{"redis://:s3cret@127.0.0.1:6379/0", redisstore.TLS{CertFile: p.certFile, KeyFile: p.keyFile}, "tls_cert_file is set but redis:// does not use TLS"},
		{"redis+cluster://:s3cret@h1:7000" + q("tls_key_file", p.keyFile), redisstore.TLS{}, "option tls_key_file needs TLS: use rediss+cluster://"},
		{"redis+sentinel://:s3cret@h1/m", redisstore.TLS{CAFile: p.caFile}, "TLS options need rediss+sentinel://"},
	} {
		_, err := redisstore.Open(context.Background(), c.url, redisstore.Config{TLS: c.settings})
		require.ErrorContains(t, err, c.want, c.url)
		require.ErrorIs(t, err, store.ErrInvalid, c.url)
		require.NotContains(t, err.Error(), "s3cret")
	}
}

// Files that cannot be used fail Open at once (no connection is tried)
// with an error that names the option and the file, never the password.
func TestTLSBadFiles(t *testing.T) {
	p := newPKI(t)
	for _, c := range []struct {
		why  string
		tls  redisstore.TLS
		want []string
	}{
		{"CA file missing", redisstore.TLS{CAFile: p.absent}, []string{"tls_ca_file " + p.absent + ": cannot read it: no such file or directory"}},
		{"CA file without PEM", redisstore.TLS{CAFile: p.notPEM}, []string{"tls_ca_file " + p.notPEM + ": no PEM certificate in it"}},
		{"CA PEM that does not parse", redisstore.TLS{CAFile: p.garbledPEM}, []string{"tls_ca_file " + p.garbledPEM}},
		{"CA file is a directory", redisstore.TLS{CAFile: p.dir}, []string{"tls_ca_file " + p.dir + ": cannot read it"}},
		{"certificate without key", redisstore.TLS{CertFile: p.certFile}, []string{"tls_cert_file " + p.certFile + " is given without tls_key_file"}},
		{"key without certificate", redisstore.TLS{KeyFile: p.keyFile}, []string{"tls_key_file " + p.keyFile + " is given without tls_cert_file"}},
		{"certificate file missing", redisstore.TLS{CertFile: p.absent, KeyFile: p.keyFile}, []string{"tls_cert_file " + p.absent + ": cannot read it"}},
		{"key file missing", redisstore.TLS{CertFile: p.certFile, KeyFile: p.absent}, []string{"tls_key_file " + p.absent + ": cannot read it"}},
		{"certificate without PEM", redisstore.TLS{CertFile: p.notPEM, KeyFile: p.keyFile}, []string{"tls_cert_file " + p.notPEM, "tls_key_file " + p.keyFile, "PEM"}},
		{"key without PEM", redisstore.TLS{CertFile: p.certFile, KeyFile: p.notPEM}, []string{"tls_cert_file " + p.certFile, "tls_key_file " + p.notPEM, "PEM"}},
		{"key of another certificate", redisstore.TLS{CertFile: p.certFile, KeyFile: p.otherKey}, []string{"tls_key_file " + p.otherKey, "private key does not match public key"}},
	} {
		for _, form := range []struct{ url, settingsOf string }{
			{"rediss://u:s3cret@127.0.0.1:1/0", "settings"},
			{"rediss+cluster://u:s3cret@127.0.0.1:1", "settings"},
			{"rediss://u:s3cret@127.0.0.1:1/0" + tlsQuery(c.tls), ""},
		} {
			settings := c.tls
			if form.settingsOf == "" {
				settings = redisstore.TLS{}
			}
			begin := time.Now()
			_, err := redisstore.Open(context.Background(), form.url, redisstore.Config{TLS: settings})
			require.Error(t, err, c.why)
			require.Less(t, time.Since(begin), time.Second, "%s: refused before any connection", c.why)
			require.ErrorIs(t, err, store.ErrInvalid, c.why)
			for _, w := range c.want {
				require.Contains(t, err.Error(), w, "%s (%s)", c.why, form.url)
			}
			require.NotContains(t, err.Error(), "s3cret", c.why)
		}
	}
}

func tlsQuery(t redisstore.TLS) string {
	var kv []string
	for _, f := range [][2]string{{"tls_ca_file", t.CAFile}, {"tls_cert_file", t.CertFile}, {"tls_key_file", t.KeyFile}} {
		if f[1] != "" {
			kv = append(kv, f[0], f[1])
		}
	}
	return q(kv...)
}

// Options go-redis does not know are still refused: a misspelt TLS
// option is not silently ignored on the standalone forms.
func TestTLSMisspeltOption(t *testing.T) {
	_, err := redisstore.Client("rediss://127.0.0.1:6380/0?tls_cafile=/x", redisstore.TLS{})
	require.ErrorContains(t, err, "unexpected option: tls_cafile")
	_, err = redisstore.Client("rediss+cluster://h1:7000?skip_verify=maybe", redisstore.TLS{})
	require.ErrorContains(t, err, `skip_verify="maybe" is not true or false`)
}
