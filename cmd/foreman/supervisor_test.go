package main

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The supervisor runs real (tiny, shell) worker processes on a fake clock:
// process exits are real events, and every delay the supervisor schedules
// is checked and then made to pass by advancing the clock.

// logBuf collects log output for assertions; safe for concurrent use.
type logBuf struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuf) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuf) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func testLogger() (*slog.Logger, *logBuf) {
	b := &logBuf{}
	return slog.New(slog.NewTextHandler(b, nil)), b
}

// supConfig is one async worker, no blocking ones, a heartbeat timeout long
// enough never to matter, and no crash loop unless a test asks for one.
func supConfig() Config {
	return Config{
		RedisURL: "redis://127.0.0.1:1", Namespace: "t", App: "a:b", Python: "python3",
		AsyncWorkers: 1, BlockingWorkers: 0, MinAsync: 0, MaxAsync: 8, MaxBlocking: 8,
		AsyncConcurrency: 4, BlockingConcurrency: 2,
		DrainTimeout: 30 * time.Second, HeartbeatTimeout: time.Hour,
		CrashLoopRestarts: 1000, CrashLoopWindow: time.Minute,
	}
}

type supHarness struct {
	t       *testing.T
	cfg     *Config
	sup     *Supervisor
	clk     *fakeClock
	log     *logBuf
	targets chan Mix
	snaps   chan chan Snapshot
	done    chan error
	cancel  context.CancelFunc
	spawned chan string
	reclaim chan string
}

// startSup runs a supervisor whose workers run script with /bin/sh. Each
// start is reported on h.spawned (the lane) before the process starts, so
// a snapshot asked for after receiving it shows the new worker.
func startSup(t *testing.T, cfg Config, script string) *supHarness {
	t.Helper()
	log, buf := testLogger()
	h := &supHarness{t: t, cfg: &cfg, clk: newFakeClock(), log: buf,
		targets: make(chan Mix), snaps: make(chan chan Snapshot), done: make(chan error, 1),
		spawned: make(chan string, 100), reclaim: make(chan string, 100)}
	h.sup = NewSupervisor(h.cfg, log)
	h.sup.clock = h.clk
	h.sup.inboxPrefix = "fm-"
	h.sup.reclaim = func(inbox string) { h.reclaim <- inbox }
	h.sup.command = func(_ *Config, lane string) *exec.Cmd {
		h.spawned <- lane
		return exec.Command("/bin/sh", "-c", script)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	go func() { h.done <- h.sup.Run(ctx, h.targets, h.snaps) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-h.done:
		case <-time.After(bound):
			t.Errorf("supervisor did not stop")
		}
	})
	return h
}

func (h *supHarness) waitSpawn(lane string) {
	h.t.Helper()
	select {
	case got := <-h.spawned:
		require.Equal(h.t, lane, got)
	case <-time.After(bound):
		h.t.Fatalf("no %s worker started", lane)
	}
}

func (h *supHarness) noSpawn() {
	h.t.Helper()
	select {
	case lane := <-h.spawned:
		h.t.Fatalf("a %s worker started", lane)
	default:
	}
}

func (h *supHarness) snapshot() Snapshot {
	h.t.Helper()
	reply := make(chan Snapshot, 1)
	select {
	case h.snaps <- reply:
	case <-time.After(bound):
		h.t.Fatal("supervisor does not answer snapshots")
	}
	return <-reply
}

// worker returns the only worker of the snapshot.
func (h *supHarness) worker() WorkerInfo {
	h.t.Helper()
	snap := h.snapshot()
	require.Len(h.t, snap.Workers, 1, "%+v", snap.Workers)
	return snap.Workers[0]
}

// until asks for snapshots until ok holds (the beat it waits for is read on
// the worker's stdout goroutine, so there is no event to receive).
func (h *supHarness) until(what string, ok func(Snapshot) bool) Snapshot {
	h.t.Helper()
	deadline := time.Now().Add(bound)
	for {
		s := h.snapshot()
		if ok(s) {
			return s
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("never: %s; last snapshot %+v", what, s)
		}
		time.Sleep(time.Millisecond) // poll interval, not a wait for time to pass
	}
}

func (h *supHarness) result() error {
	h.t.Helper()
	select {
	case err := <-h.done:
		h.done <- err // for Cleanup
		return err
	case <-time.After(bound):
		h.t.Fatal("supervisor did not return")
		return nil
	}
}

func kill(t *testing.T, pid int) {
	t.Helper()
	require.NoError(t, syscall.Kill(pid, syscall.SIGKILL))
}

// The ticker is made once, at a quarter of the heartbeat timeout.
const hourTicker = "ticker 15m0s"

// A worker that dies at once is restarted after 0.5 s, then 1, 2, 4 ... up to
// 30 s; each restart is counted, and each gone worker's inbox is reclaimed.
func TestBackoffDoublesUpToThirtySeconds(t *testing.T) {
	h := startSup(t, supConfig(), "exit 1")
	h.waitSpawn(laneAsync)
	h.clk.expect(t, hourTicker)
	delays := []time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second, 4 * time.Second,
		8 * time.Second, 16 * time.Second, 30 * time.Second, 30 * time.Second, 30 * time.Second}
	for i, d := range delays {
		h.clk.expect(t, "after "+d.String())
		h.noSpawn() // nothing starts before the backoff has passed
		snap := h.snapshot()
		require.Empty(t, snap.Workers)
		require.EqualValues(t, i+1, snap.Restarts)
		require.Equal(t, "fm-async-"+strconv.Itoa(i+1), <-h.reclaim, "the gone worker's inbox is reclaimed")
		h.clk.Advance(t, d)
		h.waitSpawn(laneAsync)
	}
	require.Contains(t, h.log.String(), "exit=\"exit status 1\"")
}

// A worker that lived 10 s or more resets the backoff (its replacement
// starts at once), and its exit does not count towards a crash loop; the
// next early exit starts the backoff again at 0.5 s.
func TestBackoffResetsAfterALongLife(t *testing.T) {
	cfg := supConfig()
	cfg.CrashLoopRestarts = 3
	h := startSup(t, cfg, "exec sleep 1000")
	h.waitSpawn(laneAsync)
	h.clk.expect(t, hourTicker)

	kill(t, h.worker().Pid) // early exit 1 of 3
	h.clk.expect(t, "after 500ms")
	h.clk.Advance(t, 500*time.Millisecond)
	h.waitSpawn(laneAsync)

	w := h.worker()
	require.Equal(t, "async-2", w.ID)
	h.clk.Advance(t, earlyExit) // it has lived 10 s
	kill(t, w.Pid)
	h.clk.expect(t, "after 0s") // backoff reset, not counted
	h.waitSpawn(laneAsync)

	kill(t, h.worker().Pid) // early exit 2 of 3: had the long life counted, this would be a crash loop
	h.clk.expect(t, "after 500ms")
	snap := h.snapshot()
	require.EqualValues(t, 3, snap.Restarts)
	require.Contains(t, h.log.String(), "lived=10s")
}

// crash-loop-restarts early exits within crash-loop-window stop the
// supervisor with errCrashLoop, naming the lane, the exit, and the worker's
// last stderr lines.
func TestCrashLoopStopsTheSupervisor(t *testing.T) {
	cfg := supConfig()
	cfg.CrashLoopRestarts = 3
	cfg.CrashLoopWindow = 5 * time.Second
	h := startSup(t, cfg, "echo 'ImportError: no module named app' >&2; exit 3")
	h.waitSpawn(laneAsync)
	h.clk.expect(t, hourTicker)
	h.clk.expect(t, "after 500ms") // exit at 0 s
	h.clk.Advance(t, 500*time.Millisecond)
	h.waitSpawn(laneAsync)
	h.clk.expect(t, "after 1s") // exit at 0.5 s
	h.clk.Advance(t, time.Second)
	h.waitSpawn(laneAsync) // exits at 1.5 s: the third within 5 s

	err := h.result()
	require.ErrorIs(t, err, errCrashLoop)
	for _, want := range []string{"async workers exited 3 times", "exit status 3", "async-3",
		"ImportError: no module named app"} {
		require.Contains(t, err.Error(), want)
	}
	require.Empty(t, h.sup.procs)
	h.clk.expect(t, "timer 10s") // killAll's bound; no restart was scheduled
	h.clk.nothingScheduled(t)
}

// Exits older than the window are forgotten: 2 exits 6 s apart with a 5 s
// window are no crash loop, 2 exits 1 s apart are.
func TestCrashLoopWindowForgetsOldExits(t *testing.T) {
	cfg := supConfig()
	cfg.CrashLoopRestarts = 2
	cfg.CrashLoopWindow = 5 * time.Second
	h := startSup(t, cfg, "exit 1")
	h.waitSpawn(laneAsync)
	h.clk.expect(t, hourTicker)
	h.clk.expect(t, "after 500ms") // exit at 0 s
	h.clk.Advance(t, 6*time.Second)
	h.waitSpawn(laneAsync)
	h.clk.expect(t, "after 1s") // exit at 6 s: the one at 0 s is out of the window
	h.clk.Advance(t, time.Second)
	h.waitSpawn(laneAsync) // exit at 7 s: two within 5 s
	require.ErrorIs(t, h.result(), errCrashLoop)
}

// A worker whose beats stop is killed once it has been silent longer than
// --heartbeat-timeout (checked every quarter of it), and then restarted
// like any early exit. A beat resets its silence; a malformed beat does not
// count.
func TestHeartbeatTimeoutKillsASilentWorker(t *testing.T) {
	cfg := supConfig()
	cfg.HeartbeatTimeout = 2 * time.Second
	// It beats once started and again on each SIGUSR1.
	script := `trap 'echo "BLAZING-BEAT {\"state\":\"serving\",\"running\":7}"' USR1
echo 'BLAZING-BEAT {"state":"serving","running":1}'
echo 'BLAZING-BEAT {not json'
while :; do sleep 1000 & wait $!; done`
	h := startSup(t, cfg, script)
	h.waitSpawn(laneAsync)
	h.clk.expect(t, "ticker 500ms")
	start := h.clk.Now()
	w := h.until("first beat read", func(s Snapshot) bool {
		return len(s.Workers) == 1 && s.Workers[0].State == "serving"
	}).Workers[0]
	require.Equal(t, 1, w.Beat.Running)

	h.clk.Advance(t, 1500*time.Millisecond) // a check at 1.5 s of silence: kept
	require.Equal(t, w.Pid, h.worker().Pid)

	require.NoError(t, syscall.Kill(w.Pid, syscall.SIGUSR1)) // a beat at 1.5 s
	h.until("second beat read", func(s Snapshot) bool { return s.Workers[0].Beat.Running == 7 })
	require.Equal(t, start.Add(1500*time.Millisecond), h.worker().LastBeat)

	h.clk.Advance(t, time.Second) // at 2.5 s: 1 s of silence, kept
	require.Equal(t, w.Pid, h.worker().Pid)
	h.clk.nothingScheduled(t)

	h.clk.Advance(t, 1500*time.Millisecond) // at 4 s: 2.5 s of silence, killed
	h.clk.expect(t, "after 500ms")
	require.EqualValues(t, 1, h.snapshot().Restarts)
	require.Contains(t, h.log.String(), "worker stopped heartbeating; killing it")
	require.Contains(t, h.log.String(), "signal: killed")
}

// New targets start workers at once and drain the surplus (the newest ones,
// with SIGTERM); drained workers are neither restarted nor counted.
func TestTargetsStartAndDrainWorkers(t *testing.T) {
	cfg := supConfig()
	cfg.BlockingWorkers = 1
	h := startSup(t, cfg, "exec sleep 1000")
	got := map[string]int{}
	for range 2 {
		got[<-h.spawned]++
	}
	require.Equal(t, map[string]int{laneAsync: 1, laneBlocking: 1}, got)
	h.clk.expect(t, hourTicker)

	h.clk.Advance(t, time.Second) // so that the first workers are the oldest
	h.targets <- Mix{Async: 3, Blocking: 0}
	h.waitSpawn(laneAsync)
	h.waitSpawn(laneAsync)
	snap := h.until("the blocking worker drained", func(s Snapshot) bool { return len(s.Workers) == 3 })
	for _, w := range snap.Workers {
		require.Equal(t, laneAsync, w.Lane)
		require.Equal(t, "starting", w.State)
	}
	require.Equal(t, Mix{Async: 3}, snap.Target)

	h.targets <- Mix{Async: 1, Blocking: 0}
	snap = h.until("two async workers drained", func(s Snapshot) bool { return len(s.Workers) == 1 })
	require.Equal(t, "async-1", snap.Workers[0].ID, "the oldest is kept")
	require.Zero(t, snap.Restarts)
	h.noSpawn()
	h.clk.nothingScheduled(t)
	require.Equal(t, 3, strings.Count(h.log.String(), "worker drained"))
}

// On shutdown every worker gets SIGTERM; those still running after
// --drain-timeout + 5 s are killed, and Run returns nil.
func TestShutdownKillsWorkersThatDoNotDrain(t *testing.T) {
	h := startSup(t, supConfig(), `trap '' TERM; echo 'BLAZING-BEAT {"state":"serving"}'; exec sleep 1000`)
	h.waitSpawn(laneAsync)
	h.clk.expect(t, hourTicker)
	w := h.until("TERM ignored", func(s Snapshot) bool {
		return len(s.Workers) == 1 && s.Workers[0].State == "serving"
	}).Workers[0]
	h.cancel()
	h.clk.expect(t, "timer 35s")
	require.NoError(t, syscall.Kill(w.Pid, 0), "still running after SIGTERM")
	h.clk.Advance(t, 35*time.Second)
	h.clk.expect(t, "timer 10s") // killAll's bound
	require.NoError(t, h.result())
	require.ErrorIs(t, syscall.Kill(w.Pid, 0), syscall.ESRCH, "killed and reaped")
	require.Contains(t, h.log.String(), "workers did not drain in time")
	require.Equal(t, "fm-async-1", <-h.reclaim)
}

// Workers that drain on SIGTERM end the shutdown at once.
func TestShutdownDrains(t *testing.T) {
	cfg := supConfig()
	cfg.AsyncWorkers, cfg.BlockingWorkers = 2, 2
	h := startSup(t, cfg, "exec sleep 1000")
	for range 4 {
		<-h.spawned
	}
	h.clk.expect(t, hourTicker)
	require.Len(t, h.snapshot().Workers, 4)
	h.cancel()
	h.clk.expect(t, "timer 35s")
	require.NoError(t, h.result())
	require.Empty(t, h.sup.procs)
	require.Equal(t, 4, strings.Count(h.log.String(), "worker stopped"))
}

// A worker command that cannot start stops Run with the error.
func TestRunFailsWhenAWorkerCannotStart(t *testing.T) {
	log, _ := testLogger()
	cfg := supConfig()
	cfg.Python = "/nonexistent/python3"
	sup := NewSupervisor(&cfg, log)
	sup.clock = newFakeClock()
	err := sup.Run(context.Background(), nil, nil)
	require.Error(t, err)
	require.Contains(t, err.Error(), "start worker async-1 (/nonexistent/python3 -m blazing.worker)")
	require.True(t, errors.Is(err, syscall.ENOENT), "%v", err)
}
