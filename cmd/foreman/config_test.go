package main

import (
	"bytes"
	"flag"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/blazingflow/blazing/core/store/redisstore"
)

// required are the flags without which nothing parses.
var required = []string{"--redis-url", "redis://r:6379/0", "--app", "m:app"}

func env(kv map[string]string) func(string) string {
	return func(k string) string { return kv[k] }
}

func parse(args []string, getenv map[string]string) (Config, string, error) {
	var out bytes.Buffer
	c, err := parseConfig(args, env(getenv), &out)
	return c, out.String(), err
}

func TestConfigDefaults(t *testing.T) {
	c, out, err := parse(required, nil)
	require.NoError(t, err)
	require.Empty(t, out)
	require.Equal(t, Config{
		RedisURL: "redis://r:6379/0", Namespace: "blazing", App: "m:app", Python: "python3",
		AsyncWorkers: 1, BlockingWorkers: 1, MinAsync: 1, MaxAsync: 8, MinBlocking: 0, MaxBlocking: 8,
		AsyncConcurrency: 64, BlockingConcurrency: 4, AutoOptimize: true,
		OptimizationInterval: 5 * time.Second, MetricsAddr: "127.0.0.1:9464",
		DrainTimeout: 30 * time.Second, HeartbeatTimeout: 30 * time.Second,
		CrashLoopRestarts: 5, CrashLoopWindow: 60 * time.Second, LogFormat: "text",
	}, c)
}

// flagCases sets every flag to a valid value other than its default, and
// says where it must land.
var flagCases = map[string]struct {
	value string
	got   func(Config) any
	want  any
}{
	"redis-url":             {"redis://other:1/2", func(c Config) any { return c.RedisURL }, "redis://other:1/2"},
	"namespace":             {"ns9", func(c Config) any { return c.Namespace }, "ns9"},
	"tls-ca-file":           {"/ca.pem", func(c Config) any { return c.TLS.CAFile }, "/ca.pem"},
	"tls-cert-file":         {"/c.pem", func(c Config) any { return c.TLS.CertFile }, "/c.pem"},
	"tls-key-file":          {"/k.pem", func(c Config) any { return c.TLS.KeyFile }, "/k.pem"},
	"app":                   {"pkg.mod:other", func(c Config) any { return c.App }, "pkg.mod:other"},
	"python":                {"/opt/py/bin/python", func(c Config) any { return c.Python }, "/opt/py/bin/python"},
	"async-workers":         {"3", func(c Config) any { return c.AsyncWorkers }, 3},
	"blocking-workers":      {"2", func(c Config) any { return c.BlockingWorkers }, 2},
	"min-async":             {"0", func(c Config) any { return c.MinAsync }, 0},
	"max-async":             {"12", func(c Config) any { return c.MaxAsync }, 12},
	"min-blocking":          {"1", func(c Config) any { return c.MinBlocking }, 1},
	"max-blocking":          {"3", func(c Config) any { return c.MaxBlocking }, 3},
	"async-concurrency":     {"7", func(c Config) any { return c.AsyncConcurrency }, 7},
	"blocking-concurrency":  {"9", func(c Config) any { return c.BlockingConcurrency }, 9},
	"auto-optimize":         {"false", func(c Config) any { return c.AutoOptimize }, false},
	"optimization-interval": {"0.25", func(c Config) any { return c.OptimizationInterval }, 250 * time.Millisecond},
	"metrics-addr":          {"0.0.0.0:9999", func(c Config) any { return c.MetricsAddr }, "0.0.0.0:9999"},
	"drain-timeout":         {"1.5", func(c Config) any { return c.DrainTimeout }, 1500 * time.Millisecond},
	"heartbeat-timeout":     {"2", func(c Config) any { return c.HeartbeatTimeout }, 2 * time.Second},
	"crash-loop-restarts":   {"9", func(c Config) any { return c.CrashLoopRestarts }, 9},
	"crash-loop-window":     {"120", func(c Config) any { return c.CrashLoopWindow }, 2 * time.Minute},
	"log-format":            {"json", func(c Config) any { return c.LogFormat }, "json"},
}

// Every flag sets its field; so does its environment twin; the command line
// wins over the twin.
func TestConfigEveryFlagAndItsEnvTwin(t *testing.T) {
	var c Config
	specs := c.specs()
	require.Len(t, flagCases, len(specs), "a flag without a case here")
	for _, s := range specs {
		tc, ok := flagCases[s.name]
		require.True(t, ok, "no case for --%s", s.name)
		t.Run(s.name, func(t *testing.T) {
			if s.name == "redis-url" {
				require.Equal(t, "BLAZING_REDIS_URL", s.env)
			} else if s.name == "namespace" || strings.HasPrefix(s.name, "tls-") {
				require.Equal(t, "BLAZING_"+strings.ToUpper(strings.ReplaceAll(s.name, "-", "_")), s.env)
			} else {
				require.Equal(t, "BLAZING_FOREMAN_"+strings.ToUpper(strings.ReplaceAll(s.name, "-", "_")), s.env)
			}
			c, _, err := parse(append(append([]string{}, required...), "--"+s.name+"="+tc.value), nil)
			require.NoError(t, err)
			require.Equal(t, tc.want, tc.got(c), "from the flag")

			base := map[string]string{"BLAZING_REDIS_URL": "redis://r:6379/0", "BLAZING_FOREMAN_APP": "m:app", s.env: tc.value}
			c, _, err = parse(nil, base)
			require.NoError(t, err)
			require.Equal(t, tc.want, tc.got(c), "from %s", s.env)

			// The flag at its default beats the twin.
			def := s.def
			if s.name == "redis-url" || s.name == "app" {
				def = map[string]string{"redis-url": "redis://r:6379/0", "app": "m:app"}[s.name]
			}
			c, _, err = parse([]string{"--" + s.name + "=" + def}, base)
			require.NoError(t, err)
			require.NotEqual(t, tc.want, tc.got(c), "the flag wins over %s", s.env)
		})
	}
}

func TestConfigNoAutoOptimize(t *testing.T) {
	for _, args := range [][]string{{"--no-auto-optimize"}, {"--auto-optimize=false"}, {"--auto-optimize", "--no-auto-optimize"}} {
		c, _, err := parse(append(append([]string{}, required...), args...), nil)
		require.NoError(t, err)
		require.False(t, c.AutoOptimize, "%v", args)
	}
	c, _, err := parse(append(append([]string{}, required...), "--no-auto-optimize"), map[string]string{"BLAZING_FOREMAN_AUTO_OPTIMIZE": "true"})
	require.NoError(t, err)
	require.False(t, c.AutoOptimize)
	c, _, err = parse(append(append([]string{}, required...), "--auto-optimize"), map[string]string{"BLAZING_FOREMAN_AUTO_OPTIMIZE": "false"})
	require.NoError(t, err)
	require.True(t, c.AutoOptimize)
}

// Each bad value is refused as a usage error naming the flag (and, from the
// environment, the variable).
func TestConfigBadValues(t *testing.T) {
	bad := map[string][]string{}
	var c Config
	for _, s := range c.specs() {
		switch flagCases[s.name].want.(type) {
		case int:
			bad[s.name] = []string{"-1", "x", "1.5", "", "99999999999999999999"}
		case time.Duration:
			bad[s.name] = []string{"-1", "abc", "", "1e10", "inf", "nan", "NaN", "-0.5"}
		case bool:
			bad[s.name] = []string{"maybe", "2", ""}
		}
	}
	bad["log-format"] = []string{"xml", "JSON", ""}
	require.Len(t, bad, 15, "9 numbers, 4 durations, the boolean and the log format")
	for _, s := range c.specs() {
		for _, v := range bad[s.name] {
			_, _, err := parse(append(append([]string{}, required...), "--"+s.name+"="+v), nil)
			require.ErrorIs(t, err, errUsage, "--%s=%q", s.name, v)
			require.Contains(t, err.Error(), "--"+s.name, "--%s=%q", s.name, v)
			if v == "" {
				continue // an empty variable is an unset one
			}
			_, _, err = parse(required, map[string]string{s.env: v})
			require.ErrorIs(t, err, errUsage, "%s=%q", s.env, v)
			require.Contains(t, err.Error(), "--"+s.name, "%s=%q", s.env, v)
			require.Contains(t, err.Error(), "(from "+s.env+")", "%s=%q", s.env, v)
		}
	}
}

// Values that parse but do not fit together are refused by name.
func TestConfigValidation(t *testing.T) {
	for _, tc := range []struct {
		args []string
		env  map[string]string
		msg  string
	}{
		{[]string{"--app", "m:a"}, nil, "--redis-url (or BLAZING_REDIS_URL) is required"},
		{[]string{"--redis-url", "redis://x"}, nil, `--app must look like module:attribute, not ""`},
		{[]string{"--redis-url", "redis://x", "--app", "nocolon"}, nil, `--app must look like module:attribute, not "nocolon"`},
		{append([]string{"--min-async", "3", "--max-async", "2"}, required...), nil, "a --min-* is above its --max-*"},
		{append([]string{"--min-blocking", "3", "--max-blocking", "2"}, required...), nil, "a --min-* is above its --max-*"},
		{append([]string{"--async-workers", "0"}, required...), nil, "--async-workers 0 is outside [1, 8]"},
		{append([]string{"--async-workers", "9"}, required...), nil, "--async-workers 9 is outside [1, 8]"},
		{append([]string{"--blocking-workers", "9"}, required...), nil, "--blocking-workers 9 is outside [0, 8]"},
		{append([]string{"--min-blocking", "2"}, required...), nil, "--blocking-workers 1 is outside [2, 8]"},
		{append([]string{"--async-concurrency", "0"}, required...), nil, "concurrency must be at least 1"},
		{append([]string{"--blocking-concurrency", "0"}, required...), nil, "concurrency must be at least 1"},
		{append([]string{"--optimization-interval", "0.05"}, required...), nil, "--optimization-interval must be at least 0.1 s"},
		{append([]string{"--heartbeat-timeout", "0.5"}, required...), nil, "--heartbeat-timeout must be at least 1 s"},
		{append([]string{"--crash-loop-restarts", "0"}, required...), nil, "--crash-loop-restarts must be at least 1"},
		{required, map[string]string{"BLAZING_FOREMAN_CRASH_LOOP_RESTARTS": "0"}, "--crash-loop-restarts must be at least 1"},
		{append([]string{"--bogus"}, required...), nil, "flag provided but not defined: -bogus"},
		{append([]string{"--async-workers"}, required...), nil, `invalid value "--redis-url" for flag -async-workers`},
		{append(append([]string{}, required...), "extra", "args"), nil, `unexpected arguments ["extra" "args"]`},
	} {
		_, _, err := parse(tc.args, tc.env)
		require.ErrorIs(t, err, errUsage, "%v", tc.args)
		require.Contains(t, err.Error(), tc.msg, "%v", tc.args)
	}
}

// --help (and -h) prints every flag with its default and environment twin,
// and is not an error for run.
func TestConfigHelp(t *testing.T) {
	for _, arg := range []string{"--help", "-h", "-help"} {
		_, out, err := parse([]string{arg}, nil)
		require.ErrorIs(t, err, flag.ErrHelp)
		require.Contains(t, out, "usage: python -m blazing.foreman --redis-url URL --app module:attribute [flags]")
		var c Config
		for _, s := range c.specs() {
			require.Contains(t, out, "--"+s.name+" ")
			def := s.def
			if def == "" {
				def = "none"
			}
			require.Contains(t, out, fmt.Sprintf("default %s; env %s\n", def, s.env))
		}
		require.Contains(t, out, "--no-auto-optimize")
	}
	var out bytes.Buffer
	require.Equal(t, exitOK, run([]string{"--help"}, env(nil), &out))
	require.Contains(t, out.String(), "BLAZING_FOREMAN_HEARTBEAT_TIMEOUT")
}

// run turns usage errors into exit code 2 with a message, before touching
// Redis; an unreachable Redis is exit code 5, with the password hidden.
func TestRunExitCodes(t *testing.T) {
	var out bytes.Buffer
	require.Equal(t, exitUsage, run(nil, env(nil), &out))
	require.Equal(t, "foreman: usage: --redis-url (or BLAZING_REDIS_URL) is required\n", out.String())

	out.Reset()
	many := fmt.Sprint(4*runtime.NumCPU() + 1)
	require.Equal(t, exitUsage, run(append([]string{"--async-workers", many, "--max-async", many}, required...), env(nil), &out))
	require.Contains(t, out.String(), "more than this machine can run")

	out.Reset()
	require.Equal(t, exitUsage, run([]string{"--redis-url", "http://x", "--app", "m:a"}, env(nil), &out))
	require.Contains(t, out.String(), "foreman: redis client for http://x")

	// Port 1 on loopback refuses at once.
	out.Reset()
	done := make(chan int, 1)
	go func() {
		done <- run([]string{"--redis-url", "redis://:hunter2@127.0.0.1:1/0", "--app", "m:a", "--metrics-addr", ""}, env(nil), &out)
	}()
	select {
	case code := <-done:
		require.Equal(t, exitRedis, code, out.String())
	case <-time.After(redisstore.OpenTimeout + bound):
		t.Fatal("run did not give up on an unreachable Redis")
	}
	require.Contains(t, out.String(), "foreman: Redis at redis://")
	require.NotContains(t, out.String(), "hunter2")
}

func TestParseSecondsRefusesNaN(t *testing.T) {
	for _, v := range []string{"nan", "NaN", "+Inf", "-inf", "1e9999"} {
		_, err := parseSeconds(v)
		require.Error(t, err, v)
	}
	for v, want := range map[string]time.Duration{"0": 0, " 1.5 ": 1500 * time.Millisecond, "1e9": 1e9 * time.Second, "0.001": time.Millisecond} {
		d, err := parseSeconds(v)
		require.NoError(t, err, v)
		require.Equal(t, want, d, v)
	}
}
