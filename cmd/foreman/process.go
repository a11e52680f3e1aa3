package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/blazingflow/blazing/core/store"
)

// Lane names as the worker and the metrics know them.
const (
	laneAsync    = "async"
	laneBlocking = "blocking"
)

// Beat is what a worker reports on each heartbeat line (its stdout line
// "BLAZING-BEAT {json}"). It comes from the worker's event loop, so a worker
// whose loop is stuck stops beating even if its process lives.
type Beat struct {
	State      string   `json:"state"`
	Running    int      `json:"running"`
	Started    uint64   `json:"started"`
	Succeeded  uint64   `json:"succeeded"`
	Failed     uint64   `json:"failed"`
	Retried    uint64   `json:"retried"`
	Current    string   `json:"current"`
	DurSum     float64  `json:"dur_sum"`
	DurBuckets []uint64 `json:"dur_buckets"`
	// Steps: per step or workflow name of the worker's app, how its attempts
	// ended and how long they took (store.StatBucketsMs buckets).
	Steps map[string]StepBeat `json:"steps"`
}

// StepBeat is one step name's counts in a beat.
type StepBeat struct {
	OK        int64   `json:"ok"`
	Failed    int64   `json:"failed"`
	Retried   int64   `json:"retried"`
	Cancelled int64   `json:"cancelled"`
	SumMs     int64   `json:"sum_ms"`
	Buckets   []int64 `json:"buckets"`
}

// counts converts to the store's per-name counts.
func (s StepBeat) counts() store.Counts {
	return store.Counts{Succeeded: s.OK, Failed: s.Failed, Retried: s.Retried, Cancelled: s.Cancelled,
		SumMs: s.SumMs, Buckets: s.Buckets}
}

// process is one worker process and what the foreman knows of it.
type process struct {
	id      string
	inbox   string // its engine's inbox and worker name in the store
	lane    string
	cmd     *exec.Cmd
	started time.Time

	now      func() time.Time // the supervisor's clock
	mu       sync.Mutex
	lastBeat time.Time
	beat     Beat
	tail     []string // last stderr lines, for crash reports
	output   func(id, line string)
	draining bool
}

const beatPrefix = "BLAZING-BEAT "

// workerCommand is the command line of a lane's worker:
// `python -m blazing.worker` with the lane's settings.
func workerCommand(cfg *Config, lane string) *exec.Cmd {
	conc := cfg.AsyncConcurrency
	if lane == laneBlocking {
		conc = cfg.BlockingConcurrency
	}
	return exec.Command(cfg.Python, "-m", "blazing.worker", "--app", cfg.App, "--type", lane,
		"--concurrency", strconv.Itoa(conc),
		"--drain-timeout", strconv.FormatFloat(cfg.DrainTimeout.Seconds(), 'f', -1, 64))
}

// startProcess starts a worker's command (see workerCommand) with the
// worker's environment. The child gets SIGKILL if the foreman dies, so no
// worker outlives it.
// startProcess starts cmd as worker id; each line it writes to stderr goes
// to output (nil: to the foreman's stderr as "worker <id>: <line>").
func startProcess(ctx context.Context, cfg *Config, cmd *exec.Cmd, clk clock, id, inbox, lane string, exited chan<- exitEvent,
	output func(id, line string)) (*process, error) {
	cmd.Env = append(os.Environ(),
		"BLAZING_REDIS_URL="+cfg.RedisURL,
		"BLAZING_NAMESPACE="+cfg.Namespace,
		"BLAZING_WORKER_ID="+id,
		// Named here, so that the foreman can take back the worker's
		// leases the moment it dies (see Supervisor.gone).
		"BLAZING_INBOX="+inbox,
		"BLAZING_WORKER_BEATS=1",
	)
	// The workers reach Redis as the foreman does (flags given as
	// --tls-* reach them too); an app's own tls_* settings still win.
	for env, v := range map[string]string{
		"BLAZING_TLS_CA_FILE":   cfg.TLS.CAFile,
		"BLAZING_TLS_CERT_FILE": cfg.TLS.CertFile,
		"BLAZING_TLS_KEY_FILE":  cfg.TLS.KeyFile,
	} {
		if v != "" {
			cmd.Env = append(cmd.Env, env+"="+v)
		}
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("worker %s: stdout pipe: %w", id, err)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, fmt.Errorf("worker %s: stderr pipe: %w", id, err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start worker %s (%s): %w", id, strings.Join(cmd.Args[:min(3, len(cmd.Args))], " "), err)
	}
	now := clk.Now()
	if output == nil {
		output = func(id, line string) { fmt.Fprintf(os.Stderr, "worker %s: %s\n", id, line) }
	}
	p := &process{id: id, inbox: inbox, lane: lane, cmd: cmd, started: now, lastBeat: now, now: clk.Now, output: output}
	var pipes sync.WaitGroup
	pipes.Add(2)
	go func() { defer pipes.Done(); p.readStdout(stdout) }()
	go func() { defer pipes.Done(); p.readStderr(stderr) }()
	go func() {
		pipes.Wait() // both pipes end when the process (and its children) exit
		err := cmd.Wait()
		select {
		case exited <- exitEvent{p: p, err: err}:
		case <-ctx.Done():
		}
	}()
	return p, nil
}

// maxLine is the longest worker output line kept whole; the rest of a
// longer one is dropped (and said so), but the pipe is always read to its
// end: a worker must never block on a full pipe its foreman stopped reading.
const maxLine = 1 << 20

// readLines calls fn with each line of r, each at most maxLine bytes, until
// r ends.
func readLines(r io.Reader, fn func(line string)) {
	br := bufio.NewReaderSize(r, 64<<10)
	for {
		var line []byte
		truncated := false
		for {
			chunk, err := br.ReadSlice('\n')
			if !truncated && len(line)+len(chunk) <= maxLine {
				line = append(line, chunk...)
			} else {
				truncated = true
			}
			if err == bufio.ErrBufferFull {
				continue
			}
			if len(line) > 0 || truncated {
				s := strings.TrimRight(string(line), "\r\n")
				if truncated {
					s += fmt.Sprintf(" … (line longer than %d bytes, the rest dropped)", maxLine)
				}
				fn(s)
			}
			if err != nil {
				return // io.EOF, or the pipe closed
			}
			break
		}
	}
}

func (p *process) readStdout(r io.Reader) {
	readLines(r, func(line string) {
		if !strings.HasPrefix(line, beatPrefix) {
			return
		}
		var b Beat
		if err := json.Unmarshal([]byte(line[len(beatPrefix):]), &b); err != nil {
			return // a malformed beat is no beat
		}
		p.mu.Lock()
		p.beat, p.lastBeat = b, p.now()
		p.mu.Unlock()
	})
}

func (p *process) readStderr(r io.Reader) {
	readLines(r, func(line string) {
		p.output(p.id, line)
		p.mu.Lock()
		p.tail = append(p.tail, line)
		if len(p.tail) > 20 {
			p.tail = p.tail[len(p.tail)-20:]
		}
		p.mu.Unlock()
	})
}

// status reads what the last beat said.
func (p *process) status() (Beat, time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.beat, p.lastBeat
}

func (p *process) lastLines() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.tail, "\n")
}

// signal sends sig to the worker's process group.
func (p *process) signal(sig syscall.Signal) {
	if p.cmd.Process != nil {
		_ = syscall.Kill(-p.cmd.Process.Pid, sig)
	}
}

type exitEvent struct {
	p   *process
	err error
}
