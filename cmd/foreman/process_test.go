package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/blazingflow/blazing/core/store/redisstore"
)

func TestWorkerCommand(t *testing.T) {
	cfg := supConfig()
	cfg.Python, cfg.App, cfg.DrainTimeout = "/usr/bin/python3.12", "pkg.mod:app", 2500*time.Millisecond
	require.Equal(t, []string{"/usr/bin/python3.12", "-m", "blazing.worker", "--app", "pkg.mod:app", "--type", "async",
		"--concurrency", "4", "--drain-timeout", "2.5"}, workerCommand(&cfg, laneAsync).Args)
	require.Equal(t, []string{"/usr/bin/python3.12", "-m", "blazing.worker", "--app", "pkg.mod:app", "--type", "blocking",
		"--concurrency", "2", "--drain-timeout", "2.5"}, workerCommand(&cfg, laneBlocking).Args)
}

// runOnce starts script as worker async-1 and returns it once it exited.
func runOnce(t *testing.T, cfg Config, script string) (*process, error) {
	t.Helper()
	exited := make(chan exitEvent)
	p, err := startProcess(context.Background(), &cfg, exec.Command("/bin/sh", "-c", script), newFakeClock(),
		"async-1", "fm-async-1", laneAsync, exited, nil)
	require.NoError(t, err)
	select {
	case ev := <-exited:
		require.Same(t, p, ev.p)
		return p, ev.err
	case <-time.After(bound):
		t.Fatal("worker did not exit")
		return nil, nil
	}
}

// clearBlazingEnv unsets every BLAZING_ variable for the rest of t.
func clearBlazingEnv(t *testing.T) {
	t.Helper()
	for _, kv := range os.Environ() {
		if name, _, _ := strings.Cut(kv, "="); strings.HasPrefix(name, "BLAZING_") {
			t.Setenv(name, "") // restores the old value after t
			require.NoError(t, os.Unsetenv(name))
		}
	}
}

// A worker gets the store, its id and inbox, beats on, and the foreman's
// TLS files; these win over what the foreman's own environment says.
func TestWorkerEnvironment(t *testing.T) {
	clearBlazingEnv(t) // CI sets BLAZING_REQUIRE_REDIS, which the worker would inherit
	t.Setenv("BLAZING_WORKER_ID", "stale")
	t.Setenv("BLAZING_INBOX", "stale")
	cfg := supConfig()
	cfg.RedisURL, cfg.Namespace = "rediss://h:6380/0", "ns1"
	cfg.TLS = redisstore.TLS{CAFile: "/ca.pem", CertFile: "/c.pem", KeyFile: "/k.pem"}
	p, err := runOnce(t, cfg, "env | grep '^BLAZING_' | sort >&2")
	require.NoError(t, err)
	require.Equal(t, strings.Join([]string{
		"BLAZING_INBOX=fm-async-1",
		"BLAZING_NAMESPACE=ns1",
		"BLAZING_REDIS_URL=rediss://h:6380/0",
		"BLAZING_TLS_CA_FILE=/ca.pem",
		"BLAZING_TLS_CERT_FILE=/c.pem",
		"BLAZING_TLS_KEY_FILE=/k.pem",
		"BLAZING_WORKER_BEATS=1",
		"BLAZING_WORKER_ID=async-1",
	}, "\n"), p.lastLines())

	// No TLS files: no TLS variables (an app's own settings apply).
	cfg.TLS = redisstore.TLS{}
	p, err = runOnce(t, cfg, "env | grep '^BLAZING_TLS' >&2; exit 0")
	require.NoError(t, err)
	require.Empty(t, p.lastLines())
}

// Beats are the last well-formed BLAZING-BEAT line; other stdout lines and
// malformed beats are ignored. Only the last 20 stderr lines are kept.
func TestWorkerBeatsAndTail(t *testing.T) {
	script := `echo 'BLAZING-BEAT {"state":"serving","running":2,"succeeded":5,"dur_sum":1.5,"dur_buckets":[1,2,3]}'
echo 'hello from the app'
echo 'BLAZING-BEAT {"state": 5}'
echo 'BLAZING-BEAT'
echo 'XBLAZING-BEAT {"state":"draining"}'
for i in $(seq 1 30); do echo "line $i" >&2; done
exit 7`
	p, err := runOnce(t, supConfig(), script)
	require.EqualError(t, err, "exit status 7")
	b, _ := p.status()
	require.Equal(t, Beat{State: "serving", Running: 2, Succeeded: 5, DurSum: 1.5, DurBuckets: []uint64{1, 2, 3}}, b)
	var want []string
	for i := 11; i <= 30; i++ {
		want = append(want, fmt.Sprintf("line %d", i))
	}
	require.Equal(t, strings.Join(want, "\n"), p.lastLines())
}

// A line longer than maxLine is cut (and says so), and the pipe is still
// read to its end: the worker never blocks on output nobody reads, and
// what it writes afterwards (a beat, the last lines) still arrives.
func TestWorkerLongLines(t *testing.T) {
	script := `head -c 3000000 /dev/zero | tr '\0' x >&2; echo >&2
echo 'after the long line' >&2
head -c 200000 /dev/zero | tr '\0' y; echo
echo 'BLAZING-BEAT {"state":"serving","running":1}'
exit 0`
	p, err := runOnce(t, supConfig(), script)
	require.NoError(t, err)
	b, _ := p.status()
	require.Equal(t, "serving", b.State, "the beat after a long stdout line")
	last := strings.Split(p.lastLines(), "\n")
	require.Len(t, last, 2)
	require.Equal(t, maxLine, strings.Count(last[0], "x"))
	require.True(t, strings.HasSuffix(last[0], "the rest dropped)"), last[0][len(last[0])-80:])
	require.Equal(t, "after the long line", last[1])
}
