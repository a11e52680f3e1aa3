package main

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// watchedLog is a log writer whose readers can wait for a line.
type watchedLog struct {
	mu    sync.Mutex
	buf   strings.Builder
	wrote chan struct{} // signalled on each write
}

func newWatchedLog() *watchedLog { return &watchedLog{wrote: make(chan struct{}, 1)} }

func (w *watchedLog) Write(p []byte) (int, error) {
	w.mu.Lock()
	w.buf.Write(p)
	w.mu.Unlock()
	select {
	case w.wrote <- struct{}{}:
	default:
	}
	return len(p), nil
}

func (w *watchedLog) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// waitFor waits until the log matches re (bounded) and returns the match.
func (w *watchedLog) waitFor(t *testing.T, re string) []string {
	t.Helper()
	rx := regexp.MustCompile(re)
	deadline := time.After(bound)
	for {
		if m := rx.FindStringSubmatch(w.String()); m != nil {
			return m
		}
		select {
		case <-w.wrote:
		case <-deadline:
			t.Fatalf("no log line matching %q in:\n%s", re, w.String())
		}
	}
}

// fakePython writes an executable that stands in for the interpreter:
// `<it> -m blazing.worker ...` runs body instead.
func fakePython(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "python")
	require.NoError(t, os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755))
	return p
}

func startRun(t *testing.T, args ...string) (*watchedLog, chan int) {
	t.Helper()
	out := newWatchedLog()
	code := make(chan int, 1)
	go func() { code <- run(args, func(string) string { return "" }, out) }()
	return out, code
}

func exitCode(t *testing.T, code chan int, out *watchedLog) int {
	t.Helper()
	select {
	case c := <-code:
		return c
	case <-time.After(bound):
		t.Fatalf("run did not return:\n%s", out)
		return -1
	}
}

// The whole daemon with stand-in workers: it starts them, registers itself
// and them in Redis, serves their state on /metrics, and on SIGTERM drains
// them, leaves the registry and exits 0.
func TestRunSupervisesRegistersAndDrains(t *testing.T) {
	rdb, ns := redisClient(t)
	ctx := ctxT(t)
	py := fakePython(t, `echo 'BLAZING-BEAT {"state":"serving","succeeded":3}'; exec sleep 1000`)
	out, code := startRun(t, "--redis-url", "redis://"+redisSrv.Addr+"/0", "--namespace", ns, "--app", "m:a",
		"--python", py, "--metrics-addr", "127.0.0.1:0", "--no-auto-optimize")
	addr := out.waitFor(t, `msg="serving metrics" .*addr=(\S+)`)[1]
	var pids []int
	for _, lane := range []string{laneAsync, laneBlocking} {
		pid, err := strconv.Atoi(out.waitFor(t, `msg="started worker" .*worker=`+lane+`-\d+ lane=`+lane+` pid=(\d+)`)[1])
		require.NoError(t, err)
		pids = append(pids, pid)
	}
	out.waitFor(t, `msg="foreman started"`)

	// Both workers have beaten once the scrape says so.
	var body string
	deadline := time.Now().Add(bound)
	for !strings.Contains(body, `blazing_workers{lane="blocking",state="serving"} 1`) ||
		!strings.Contains(body, `blazing_workers{lane="async",state="serving"} 1`) {
		require.True(t, time.Now().Before(deadline), "workers never serving:\n%s", body)
		resp, err := http.Get("http://" + addr + "/metrics")
		require.NoError(t, err)
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		_ = resp.Body.Close()
		body = string(b)
		time.Sleep(5 * time.Millisecond) // poll interval, not a wait for time to pass
	}
	require.Contains(t, body, "blazing_operations_succeeded_total 6")
	require.Contains(t, body, "blazing_worker_restarts_total 0")
	require.Contains(t, body, "go_goroutines", "the Go collector is registered")
	ids := rdb.ZRange(ctx, "{"+ns+"}:foremen", 0, -1).Val()
	require.Len(t, ids, 1)
	require.Equal(t, "1", rdb.HGet(ctx, "{"+ns+"}:foreman:"+ids[0], "target_async").Val())

	require.NoError(t, syscall.Kill(os.Getpid(), syscall.SIGTERM)) // caught by run's signal context
	require.Equal(t, exitOK, exitCode(t, code, out), out.String())
	require.Contains(t, out.String(), "foreman stopped")
	require.Zero(t, rdb.Exists(ctx, "{"+ns+"}:foremen", "{"+ns+"}:foreman:"+ids[0]).Val(), "left the registry")
	for _, pid := range pids {
		require.ErrorIs(t, syscall.Kill(pid, 0), syscall.ESRCH, "worker %d is gone", pid)
	}
}

// Workers that die at once stop the daemon with exit code 4 and the reason.
func TestRunCrashLoopExitCode(t *testing.T) {
	_, ns := redisClient(t)
	py := fakePython(t, `echo "ModuleNotFoundError: No module named 'm'" >&2; exit 1`)
	out, code := startRun(t, "--redis-url", "redis://"+redisSrv.Addr+"/0", "--namespace", ns, "--app", "m:a",
		"--python", py, "--metrics-addr", "", "--blocking-workers", "0", "--crash-loop-restarts", "2")
	require.Equal(t, exitCrashLoop, exitCode(t, code, out), out.String())
	require.Contains(t, out.String(), "foreman: crash loop: async workers exited 2 times")
	require.Contains(t, out.String(), "No module named 'm'")
}

// --log-format json: every record the foreman logs is one JSON object per
// line, naming the foreman and carrying the record's attributes (here the
// crash-looping worker's exits).
func TestRunLogFormatJSON(t *testing.T) {
	_, ns := redisClient(t)
	py := fakePython(t, `echo "boom" >&2; exit 1`)
	out, code := startRun(t, "--redis-url", "redis://"+redisSrv.Addr+"/0", "--namespace", ns, "--app", "m:a",
		"--python", py, "--metrics-addr", "", "--blocking-workers", "0", "--crash-loop-restarts", "2",
		"--log-format", "json")
	require.Equal(t, exitCrashLoop, exitCode(t, code, out), out.String())
	var records int
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var rec map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &rec), "not JSON: %q", line)
		require.Contains(t, rec, "msg", line)
		require.Contains(t, rec, "level", line)
		require.EqualValues(t, os.Getpid(), rec["foreman"], line)
		records++
	}
	require.GreaterOrEqual(t, records, 5, "started, worker output, exited, ...:\n%s", out.String())
	require.Contains(t, out.String(), `"msg":"worker exited"`)
	require.Contains(t, out.String(), `"msg":"worker output","foreman":`)
	require.Contains(t, out.String(), `"worker":"async-1","line":"boom"}`)
	require.Contains(t, out.String(), `"level":"ERROR","msg":"foreman: crash loop: async workers exited 2 times`)
}
