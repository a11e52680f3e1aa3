package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/blazingflow/blazing/core/store/redisstore"
)

// Config is everything the foreman is told. Each flag has an environment
// twin (BLAZING_FOREMAN_<NAME>, or the app-wide BLAZING_REDIS_URL,
// BLAZING_NAMESPACE and BLAZING_TLS_*); a flag on the command line wins over its twin.
type Config struct {
	RedisURL             string
	Namespace            string
	TLS                  redisstore.TLS
	App                  string
	Python               string
	AsyncWorkers         int
	BlockingWorkers      int
	MinAsync, MaxAsync   int
	MinBlocking          int
	MaxBlocking          int
	AsyncConcurrency     int
	BlockingConcurrency  int
	AutoOptimize         bool
	OptimizationInterval time.Duration
	MetricsAddr          string
	DrainTimeout         time.Duration
	HeartbeatTimeout     time.Duration
	CrashLoopRestarts    int
	CrashLoopWindow      time.Duration
	LogFormat            string // "text" or "json"
}

// errUsage marks bad flags or values (exit code 2).
var errUsage = errors.New("usage")

type flagSpec struct {
	name, env, usage string
	def              string
	set              func(string) error
	isBool           bool
}

func (c *Config) specs() []flagSpec {
	str := func(p *string) func(string) error { return func(v string) error { *p = v; return nil } }
	choice := func(p *string, name string, options ...string) func(string) error {
		return func(v string) error {
			if !slices.Contains(options, v) {
				return fmt.Errorf("%w: --%s must be one of %s, not %q", errUsage, name, strings.Join(options, ", "), v)
			}
			*p = v
			return nil
		}
	}
	num := func(p *int, name string) func(string) error {
		return func(v string) error {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				return fmt.Errorf("%w: --%s must be a non-negative integer, not %q", errUsage, name, v)
			}
			*p = n
			return nil
		}
	}
	dur := func(p *time.Duration, name string) func(string) error {
		return func(v string) error {
			d, err := parseSeconds(v)
			if err != nil {
				return fmt.Errorf("%w: --%s: %v", errUsage, name, err)
			}
			*p = d
			return nil
		}
	}
	boolean := func(p *bool, name string) func(string) error {
		return func(v string) error {
			b, err := strconv.ParseBool(v)
			if err != nil {
				return fmt.Errorf("%w: --%s must be true or false, not %q", errUsage, name, v)
			}
			*p = b
			return nil
		}
	}
	return []flagSpec{
		{"redis-url", "BLAZING_REDIS_URL", "Redis URL of the shared store (required)", "", str(&c.RedisURL), false},
		{"namespace", "BLAZING_NAMESPACE", "namespace of the app's keys", "blazing", str(&c.Namespace), false},
		{"tls-ca-file", "BLAZING_TLS_CA_FILE", "PEM CA certificates that verify a rediss:// server (tls_ca_file= in the URL wins)", "", str(&c.TLS.CAFile), false},
		{"tls-cert-file", "BLAZING_TLS_CERT_FILE", "PEM client certificate for a rediss:// server that requires one", "", str(&c.TLS.CertFile), false},
		{"tls-key-file", "BLAZING_TLS_KEY_FILE", "PEM private key of --tls-cert-file", "", str(&c.TLS.KeyFile), false},
		{"app", "BLAZING_FOREMAN_APP", "module:attribute of the Blazing app the workers import (required)", "", str(&c.App), false},
		{"python", "BLAZING_FOREMAN_PYTHON", "Python interpreter for worker processes (python -m blazing.foreman passes its own)", "python3", str(&c.Python), false},
		{"async-workers", "BLAZING_FOREMAN_ASYNC_WORKERS", "async worker processes to start with", "1", num(&c.AsyncWorkers, "async-workers"), false},
		{"blocking-workers", "BLAZING_FOREMAN_BLOCKING_WORKERS", "blocking worker processes to start with", "1", num(&c.BlockingWorkers, "blocking-workers"), false},
		{"min-async", "BLAZING_FOREMAN_MIN_ASYNC", "fewest async workers the optimizer may leave", "1", num(&c.MinAsync, "min-async"), false},
		{"max-async", "BLAZING_FOREMAN_MAX_ASYNC", "most async workers the optimizer may start", "8", num(&c.MaxAsync, "max-async"), false},
		{"min-blocking", "BLAZING_FOREMAN_MIN_BLOCKING", "fewest blocking workers the optimizer may leave", "0", num(&c.MinBlocking, "min-blocking"), false},
		{"max-blocking", "BLAZING_FOREMAN_MAX_BLOCKING", "most blocking workers the optimizer may start", "8", num(&c.MaxBlocking, "max-blocking"), false},
		{"async-concurrency", "BLAZING_FOREMAN_ASYNC_CONCURRENCY", "operations at once per async worker", "64", num(&c.AsyncConcurrency, "async-concurrency"), false},
		{"blocking-concurrency", "BLAZING_FOREMAN_BLOCKING_CONCURRENCY", "threads per blocking worker", "4", num(&c.BlockingConcurrency, "blocking-concurrency"), false},
		{"auto-optimize", "BLAZING_FOREMAN_AUTO_OPTIMIZE", "let the optimizer change the mix (--no-auto-optimize to keep it fixed)", "true", boolean(&c.AutoOptimize, "auto-optimize"), true},
		{"optimization-interval", "BLAZING_FOREMAN_OPTIMIZATION_INTERVAL", "seconds between optimizer decisions", "5", dur(&c.OptimizationInterval, "optimization-interval"), false},
		{"metrics-addr", "BLAZING_FOREMAN_METRICS_ADDR", "HOST:PORT serving Prometheus /metrics (empty: off)", "127.0.0.1:9464", str(&c.MetricsAddr), false},
		{"drain-timeout", "BLAZING_FOREMAN_DRAIN_TIMEOUT", "seconds workers get to finish on SIGTERM", "30", dur(&c.DrainTimeout, "drain-timeout"), false},
		{"heartbeat-timeout", "BLAZING_FOREMAN_HEARTBEAT_TIMEOUT", "seconds without a worker heartbeat before it is killed and replaced", "30", dur(&c.HeartbeatTimeout, "heartbeat-timeout"), false},
		{"crash-loop-restarts", "BLAZING_FOREMAN_CRASH_LOOP_RESTARTS", "early exits within the window that count as a crash loop", "5", num(&c.CrashLoopRestarts, "crash-loop-restarts"), false},
		{"crash-loop-window", "BLAZING_FOREMAN_CRASH_LOOP_WINDOW", "seconds of the crash-loop window", "60", dur(&c.CrashLoopWindow, "crash-loop-window"), false},
		{"log-format", "BLAZING_FOREMAN_LOG_FORMAT", "log lines on stderr as text (key=value) or json (one object per line)", "text", choice(&c.LogFormat, "log-format", "text", "json"), false},
	}
}

func parseSeconds(v string) (time.Duration, error) {
	f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
	// Written so that NaN (which ParseFloat accepts) fails it too.
	if err != nil || !(f >= 0 && f <= 1e9) {
		return 0, fmt.Errorf("want a non-negative number of seconds, not %q", v)
	}
	return time.Duration(f * float64(time.Second)), nil
}

// parseConfig reads flags over their environment twins over the defaults.
func parseConfig(args []string, getenv func(string) string, stderr io.Writer) (Config, error) {
	var c Config
	specs := c.specs()
	for _, s := range specs {
		v := s.def
		if e := getenv(s.env); e != "" {
			v = e
		}
		if err := s.set(v); err != nil {
			return c, fmt.Errorf("%w (from %s)", err, s.env)
		}
	}
	fs := flag.NewFlagSet("foreman", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: python -m blazing.foreman --redis-url URL --app module:attribute [flags]\n\n"+
			"Supervises this machine's worker processes and keeps the async/blocking mix matched to the load.\n"+
			"Every flag has an environment twin; the command line wins.\n\n")
		for _, s := range specs {
			def := s.def
			if def == "" {
				def = "none"
			}
			fmt.Fprintf(stderr, "  --%-24s %s\n  %-26s default %s; env %s\n", s.name, s.usage, "", def, s.env)
		}
		fmt.Fprintf(stderr, "  --%-24s same as --auto-optimize=false\n", "no-auto-optimize")
	}
	for _, s := range specs {
		set := s.set
		if s.isBool {
			fs.BoolFunc(s.name, s.usage, set)
		} else {
			fs.Func(s.name, s.usage, set)
		}
	}
	fs.BoolFunc("no-auto-optimize", "keep the mix fixed", func(string) error { c.AutoOptimize = false; return nil })
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return c, err
		}
		return c, fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("%w: unexpected arguments %q", errUsage, fs.Args())
	}
	return c, c.validate()
}

func (c *Config) validate() error {
	switch {
	case c.RedisURL == "":
		return fmt.Errorf("%w: --redis-url (or BLAZING_REDIS_URL) is required", errUsage)
	case c.App == "" || !strings.Contains(c.App, ":"):
		return fmt.Errorf("%w: --app must look like module:attribute, not %q", errUsage, c.App)
	case c.MinAsync > c.MaxAsync || c.MinBlocking > c.MaxBlocking:
		return fmt.Errorf("%w: a --min-* is above its --max-*", errUsage)
	case c.AsyncWorkers < c.MinAsync || c.AsyncWorkers > c.MaxAsync:
		return fmt.Errorf("%w: --async-workers %d is outside [%d, %d]", errUsage, c.AsyncWorkers, c.MinAsync, c.MaxAsync)
	case c.BlockingWorkers < c.MinBlocking || c.BlockingWorkers > c.MaxBlocking:
		return fmt.Errorf("%w: --blocking-workers %d is outside [%d, %d]", errUsage, c.BlockingWorkers, c.MinBlocking, c.MaxBlocking)
	case c.AsyncConcurrency < 1 || c.BlockingConcurrency < 1:
		return fmt.Errorf("%w: concurrency must be at least 1", errUsage)
	case c.OptimizationInterval < 100*time.Millisecond:
		return fmt.Errorf("%w: --optimization-interval must be at least 0.1 s", errUsage)
	case c.HeartbeatTimeout < time.Second:
		return fmt.Errorf("%w: --heartbeat-timeout must be at least 1 s", errUsage)
	case c.CrashLoopRestarts < 1:
		return fmt.Errorf("%w: --crash-loop-restarts must be at least 1", errUsage)
	}
	return nil
}
