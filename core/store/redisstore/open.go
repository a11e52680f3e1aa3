package redisstore

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// OpenTimeout bounds the PING with which Open checks that Redis answers.
const OpenTimeout = 5 * time.Second

// Open connects to the Redis named by rawURL and returns a store that owns
// the client (Close closes it). Accepted URLs:
//
//	redis://[user:password@]host:port[/db][?options]    standalone
//	rediss://...                                        standalone over TLS
//	redis+sentinel://[user:password@]host1:port,host2:port/master[/db]
//	redis+cluster://[user:password@]host1:port,host2:port
//
// (rediss+sentinel and rediss+cluster use TLS.) For redis:// and rediss://
// the options are go-redis' (redis.ParseURL). The Sentinel form accepts
// sentinel_username and sentinel_password options for sentinels that
// require their own credentials; user and password apply to the Redis
// servers. Every TLS form accepts tls_ca_file, tls_cert_file, tls_key_file,
// tls_server_name (see TLS; cfg.TLS fills in what the URL leaves unset) and
// skip_verify=true. cfg.Client is ignored.
//
// Errors name the URL with its password redacted. A bad URL or TLS option
// wraps store.ErrInvalid; a Redis that cannot be reached, refuses the
// credentials or fails the TLS handshake wraps store.ErrUnavailable, and the
// message says which.
func Open(ctx context.Context, rawURL string, cfg Config) (*Store, error) {
	shown := redactURL(rawURL)
	client, t, err := newClient(rawURL, cfg.TLS)
	if err != nil {
		return nil, fmt.Errorf("redisstore: open %s: %w", shown, invalid{scrub(err, rawURL)})
	}
	wait := OpenTimeout
	if d, ok := ctx.Deadline(); ok && time.Until(d) < wait {
		wait = time.Until(d).Round(10 * time.Millisecond) // the time spent so far is noise
	}
	pctx, cancel := context.WithTimeout(ctx, OpenTimeout)
	defer cancel()
	release := holdLogs() // a refused dial's "failed to dial" lines say what the error says
	err = ping(pctx, client)
	release(err == nil)
	if err != nil {
		_ = client.Close()
		return nil, fmt.Errorf("redisstore: open %s: %w", shown, explainPing(err, t, urlPassword(rawURL) != "", wait))
	}
	cfg.Client = client
	s, err := New(pctx, cfg)
	if err != nil {
		_ = client.Close()
		return nil, fmt.Errorf("redisstore: open %s: %w", shown, err)
	}
	s.owned = true
	return s, nil
}

// pingCloseWait bounds the wait for a PING to return once its client is closed.
const pingCloseWait = time.Second

// ping checks that Redis answers before ctx ends. go-redis bounds a read by
// its own ReadTimeout, not by the context, so a server that accepts the
// connection and never answers would hold Open past the caller's connect
// timeout; on the deadline the client is closed, which ends the PING (and
// its goroutine) at once. What the PING then says wins if it is a cause of
// its own (a refused dial retried past the deadline is refused, not silent).
func ping(ctx context.Context, client redis.UniversalClient) error {
	done := make(chan error, 1)
	go func() { done <- client.Ping(ctx).Err() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	_ = client.Close()
	silent := fmt.Errorf("no answer to PING: %w", ctx.Err())
	select {
	case err := <-done:
		if err == nil || errors.Is(err, redis.ErrClosed) || errors.Is(err, net.ErrClosed) || isTimeout(err) {
			return silent
		}
		return err
	case <-time.After(pingCloseWait):
		return silent
	}
}

// noRetries turns off go-redis's own retry of a command after a network
// error. The store's reads are destructive (a Pop deletes the notes it
// returns, BLMPOP pops): if the server ran one and the reply was lost, a
// silent retry returns nothing and the notes are gone. Surfacing the error
// instead lets the engine treat it as an outage: it re-watches what it
// awaits, retries submissions and completions (idempotent) from its outbox,
// and lets lapsed leases bring back lost reservations.
const noRetries = -1

// newClient builds the client a URL names, with base filling in the TLS
// options the URL leaves unset. It also returns the TLS in force, nil when
// the URL does not use TLS.
func newClient(rawURL string, base TLS) (redis.UniversalClient, *TLS, error) {
	scheme, rest, ok := strings.Cut(rawURL, "://")
	if !ok {
		return nil, nil, errors.New("not a URL: want redis://, rediss://, redis+sentinel:// or redis+cluster://")
	}
	scheme = strings.ToLower(scheme)
	secure := strings.HasPrefix(scheme, "rediss")
	switch scheme {
	case "redis", "rediss":
		u, err := url.Parse(rawURL)
		if err != nil {
			return nil, nil, err
		}
		q := u.Query()
		t, err := tlsFor(scheme, secure, takeTLS(q), base)
		if err != nil {
			return nil, nil, err
		}
		u.RawQuery = q.Encode() // go-redis refuses options it does not know
		opt, err := redis.ParseURL(u.String())
		if err != nil {
			return nil, nil, err
		}
		if t != nil {
			if opt.TLSConfig, err = t.apply(opt.TLSConfig); err != nil {
				return nil, nil, err
			}
		}
		opt.MaxRetries = noRetries
		return redis.NewClient(opt), t, nil
	case "redis+sentinel", "rediss+sentinel":
		u, err := parseMultiHost(rest, 26379)
		if err != nil {
			return nil, nil, err
		}
		if len(u.path) == 0 || u.path[0] == "" {
			return nil, nil, errors.New("no master name: want redis+sentinel://host:port,.../master[/db]")
		}
		opt := &redis.FailoverOptions{
			MasterName:       u.path[0],
			SentinelAddrs:    u.hosts,
			Username:         u.user,
			Password:         u.password,
			SentinelUsername: u.query.Get("sentinel_username"),
			SentinelPassword: u.query.Get("sentinel_password"),
			MaxRetries:       noRetries,
		}
		if len(u.path) > 2 {
			return nil, nil, fmt.Errorf("path has %d parts: want /master[/db]", len(u.path))
		}
		if len(u.path) == 2 {
			if opt.DB, err = strconv.Atoi(u.path[1]); err != nil {
				return nil, nil, fmt.Errorf("database %q is not a number", u.path[1])
			}
		}
		t, cfg, err := multiHostTLS(scheme, secure, u.query, base)
		if err != nil {
			return nil, nil, err
		}
		opt.TLSConfig = cfg
		return redis.NewFailoverClient(opt), t, nil
	case "redis+cluster", "rediss+cluster":
		u, err := parseMultiHost(rest, 6379)
		if err != nil {
			return nil, nil, err
		}
		if len(u.path) > 0 {
			return nil, nil, errors.New("a cluster URL has no path (Redis Cluster has only database 0)")
		}
		opt := &redis.ClusterOptions{Addrs: u.hosts, Username: u.user, Password: u.password, MaxRetries: noRetries}
		t, cfg, err := multiHostTLS(scheme, secure, u.query, base)
		if err != nil {
			return nil, nil, err
		}
		opt.TLSConfig = cfg
		return redis.NewClusterClient(opt), t, nil
	}
	return nil, nil, fmt.Errorf("unknown scheme %q: want redis, rediss, redis+sentinel or redis+cluster", scheme)
}

// tlsFor merges the URL's TLS options over base; it refuses any of them on
// a scheme without TLS, and returns nil there.
func tlsFor(scheme string, secure bool, fromURL, base TLS) (*TLS, error) {
	if !secure {
		if opt := fromURL.firstOption(); opt != "" {
			return nil, fmt.Errorf("option %s needs TLS: use %s:// instead of %s://", opt, tlsScheme(scheme), scheme)
		}
		if opt := base.firstOption(); opt != "" {
			return nil, fmt.Errorf("%s is set but %s:// does not use TLS: TLS options need %s://", opt, scheme, tlsScheme(scheme))
		}
		return nil, nil
	}
	t := fromURL.over(base)
	return &t, nil
}

func tlsScheme(scheme string) string {
	return strings.Replace(scheme, "redis", "rediss", 1)
}

// multiHostTLS is the TLS of a Sentinel or Cluster URL: its own TLS options
// over base, and skip_verify (which redis.ParseURL handles for the others).
func multiHostTLS(scheme string, secure bool, q url.Values, base TLS) (*TLS, *tls.Config, error) {
	t, err := tlsFor(scheme, secure, takeTLS(q), base)
	if err != nil || t == nil {
		return nil, nil, err
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if v := q.Get(optSkipVerify); v != "" {
		skip, err := strconv.ParseBool(v)
		if err != nil {
			return nil, nil, fmt.Errorf("option %s=%q is not true or false", optSkipVerify, v)
		}
		cfg.InsecureSkipVerify = skip
	}
	if cfg, err = t.apply(cfg); err != nil {
		return nil, nil, err
	}
	return t, cfg, nil
}

type multiHost struct {
	user, password string
	hosts          []string
	path           []string
	query          url.Values
}

// parseMultiHost parses what follows "scheme://" in a URL whose authority
// lists several hosts, which net/url does not accept.
func parseMultiHost(rest string, defaultPort int) (multiHost, error) {
	var u multiHost
	rest, rawQuery, _ := strings.Cut(rest, "?")
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return u, fmt.Errorf("query: %w", err)
	}
	u.query = q
	authority, path, _ := strings.Cut(rest, "/")
	if i := strings.LastIndexByte(authority, '@'); i >= 0 {
		user, pass, hasPass := strings.Cut(authority[:i], ":")
		if u.user, err = url.PathUnescape(user); err != nil {
			return u, errors.New("user name is not valid URL encoding")
		}
		if hasPass {
			if u.password, err = url.PathUnescape(pass); err != nil {
				return u, errors.New("password is not valid URL encoding")
			}
		}
		authority = authority[i+1:]
	}
	for h := range strings.SplitSeq(authority, ",") {
		if h == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(h); err != nil {
			h = net.JoinHostPort(h, strconv.Itoa(defaultPort))
		}
		u.hosts = append(u.hosts, h)
	}
	if len(u.hosts) == 0 {
		return u, errors.New("no host")
	}
	for p := range strings.SplitSeq(path, "/") {
		if p != "" {
			u.path = append(u.path, p)
		}
	}
	return u, nil
}

// scrub removes the URL's password from err's message: URL parse errors
// quote the URL whole.
func scrub(err error, raw string) error {
	pass := urlPassword(raw)
	if pass == "" || !strings.Contains(err.Error(), pass) {
		return err
	}
	return errors.New(strings.ReplaceAll(err.Error(), pass, "xxxxx"))
}

func urlPassword(raw string) string {
	_, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return ""
	}
	authority, _, _ := strings.Cut(rest, "/")
	authority, _, _ = strings.Cut(authority, "?")
	if i := strings.LastIndexByte(authority, '@'); i >= 0 {
		_, pass, _ := strings.Cut(authority[:i], ":")
		return pass
	}
	return ""
}

// redactURL hides the password of a URL (in its user info and in password
// options) for error messages.
func redactURL(raw string) string {
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		if strings.ContainsAny(raw, "@:") {
			return "(unparsable URL)"
		}
		return raw
	}
	rest, query, hasQuery := strings.Cut(rest, "?")
	authority, path, hasPath := strings.Cut(rest, "/")
	if i := strings.LastIndexByte(authority, '@'); i >= 0 {
		if user, _, hasPass := strings.Cut(authority[:i], ":"); hasPass {
			authority = user + ":xxxxx" + authority[i:]
		}
	}
	out := scheme + "://" + authority
	if hasPath {
		out += "/" + path
	}
	if hasQuery {
		var parts []string
		for kv := range strings.SplitSeq(query, "&") {
			k, _, _ := strings.Cut(kv, "=")
			if strings.Contains(strings.ToLower(k), "password") {
				kv = k + "=xxxxx"
			}
			parts = append(parts, kv)
		}
		out += "?" + strings.Join(parts, "&")
	}
	return out
}

// Client builds a Redis client from a URL as Open does (t fills in the TLS
// options the URL leaves unset), for programs (the foreman) that also need
// Redis beyond the store. Errors hide the password and wrap store.ErrInvalid.
func Client(rawURL string, t TLS) (redis.UniversalClient, error) {
	c, _, err := newClient(rawURL, t)
	if err != nil {
		return nil, fmt.Errorf("redis client for %s: %w", redactURL(rawURL), invalid{scrub(err, rawURL)})
	}
	return c, nil
}

// Redact hides the password of a URL, for logs and messages.
func Redact(rawURL string) string { return redactURL(rawURL) }
