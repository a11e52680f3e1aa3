package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os/exec"
	"sort"
	"syscall"
	"time"
)

// Mix is how many worker processes each lane should have.
type Mix struct {
	Async, Blocking int
}

func (m Mix) of(lane string) int {
	if lane == laneAsync {
		return m.Async
	}
	return m.Blocking
}

// errCrashLoop stops the foreman: its workers keep dying right after start.
var errCrashLoop = errors.New("crash loop")

// earlyExit is how soon after start an exit counts towards a crash loop.
const earlyExit = 10 * time.Second

// Supervisor keeps the wanted number of worker processes running: it starts
// them, restarts those that exit (with backoff), kills those that stop
// beating, drains surplus ones, and on shutdown drains them all.
type Supervisor struct {
	cfg     *Config
	log     *slog.Logger
	exited  chan exitEvent
	restart chan string
	procs   map[string]*process
	target  Mix
	seq     int
	// Per lane: recent early exits, current backoff, restarts waiting.
	failures map[string][]time.Time
	backoff  map[string]time.Duration
	waiting  map[string]int
	restarts int64  // all restarts, for metrics
	snaps    uint64 // snapshots taken, to order them
	// inboxPrefix starts every worker's inbox name (unique per foreman).
	inboxPrefix string
	// reclaim, if set, takes back at once the leases of a worker that is
	// gone (called with its inbox; it must not block the supervisor).
	reclaim func(inbox string)
	// clock is the time of backoff, crash loops and heartbeats (realClock;
	// tests set a fake one).
	clock clock
	// command makes the command line of a worker (workerCommand; tests set
	// one that runs no Python).
	command func(cfg *Config, lane string) *exec.Cmd
	// workerOutput gets each line a worker writes to stderr (nil: the
	// foreman's stderr, "worker <id>: <line>").
	workerOutput func(id, line string)
}

// NewSupervisor makes a supervisor that starts at the configured mix.
func NewSupervisor(cfg *Config, log *slog.Logger) *Supervisor {
	return &Supervisor{
		cfg:      cfg,
		log:      log,
		exited:   make(chan exitEvent),
		restart:  make(chan string, 16),
		procs:    map[string]*process{},
		target:   Mix{Async: cfg.AsyncWorkers, Blocking: cfg.BlockingWorkers},
		failures: map[string][]time.Time{},
		backoff:  map[string]time.Duration{},
		waiting:  map[string]int{},
		clock:    realClock{},
		command:  workerCommand,
	}
}

// Snapshot is the supervisor's state for metrics and registration.
type Snapshot struct {
	Target   Mix
	Workers  []WorkerInfo
	Restarts int64
	// Seq orders snapshots: a later one has a higher Seq (0: unordered).
	Seq uint64
}

// WorkerInfo describes one worker process.
type WorkerInfo struct {
	ID, Inbox, Lane, State string
	Pid                    int
	Started                time.Time
	LastBeat               time.Time
	Beat                   Beat
}

func (s *Supervisor) snapshot() Snapshot {
	s.snaps++
	snap := Snapshot{Target: s.target, Restarts: s.restarts, Seq: s.snaps}
	for _, p := range s.procs {
		b, last := p.status()
		state := b.State
		if state == "" {
			state = "starting"
		}
		if p.draining {
			state = "draining"
		}
		snap.Workers = append(snap.Workers, WorkerInfo{ID: p.id, Inbox: p.inbox, Lane: p.lane, State: state,
			Pid: p.cmd.Process.Pid, Started: p.started, LastBeat: last, Beat: b})
	}
	sort.Slice(snap.Workers, func(i, j int) bool { return snap.Workers[i].ID < snap.Workers[j].ID })
	return snap
}

// Run supervises until ctx ends (then drains everything and returns nil) or
// a crash loop is detected (then it kills everything and returns the error).
// It applies mixes from targets and answers snapshot requests.
func (s *Supervisor) Run(ctx context.Context, targets <-chan Mix, snaps <-chan chan Snapshot) error {
	procCtx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := s.ensure(procCtx); err != nil {
		s.killAll()
		return err
	}
	check, stopCheck := s.clock.NewTicker(max(s.cfg.HeartbeatTimeout/4, 250*time.Millisecond))
	defer stopCheck()
	for {
		select {
		case <-ctx.Done():
			return s.shutdown()
		case m := <-targets:
			s.target = m
		case reply := <-snaps:
			reply <- s.snapshot()
			continue
		case lane := <-s.restart:
			s.waiting[lane]--
		case ev := <-s.exited:
			if err := s.onExit(ev); err != nil {
				s.killAll()
				return err
			}
		case <-check:
			s.checkBeats()
		}
		if err := s.ensure(procCtx); err != nil {
			s.killAll()
			return err
		}
	}
}

// ensure starts or drains workers until each lane matches its target.
func (s *Supervisor) ensure(ctx context.Context) error {
	for _, lane := range []string{laneAsync, laneBlocking} {
		var live []*process
		for _, p := range s.procs {
			if p.lane == lane && !p.draining {
				live = append(live, p)
			}
		}
		want := s.target.of(lane)
		for n := len(live) + s.waiting[lane]; n < want; n++ {
			if err := s.spawn(ctx, lane); err != nil {
				return err
			}
		}
		// Surplus: keep the oldest (they are warm), drain the rest.
		sort.Slice(live, func(i, j int) bool { return live[i].started.Before(live[j].started) })
		for i := want; i < len(live); i++ {
			p := live[i]
			p.draining = true
			s.log.Info("draining surplus worker", "worker", p.id, "lane", lane)
			p.signal(syscall.SIGTERM)
		}
	}
	return nil
}

func (s *Supervisor) spawn(ctx context.Context, lane string) error {
	s.seq++
	id := fmt.Sprintf("%s-%d", lane, s.seq)
	p, err := startProcess(ctx, s.cfg, s.command(s.cfg, lane), s.clock, id, s.inboxPrefix+id, lane, s.exited, s.workerOutput)
	if err != nil {
		return err
	}
	s.procs[id] = p
	s.log.Info("started worker", "worker", id, "lane", lane, "pid", p.cmd.Process.Pid)
	return nil
}

// gone forgets an exited worker and has what it still held in the store
// taken back at once, instead of when its leases lapse. (A worker that
// drained has handed everything back already; this finds nothing then.)
func (s *Supervisor) gone(p *process) {
	delete(s.procs, p.id)
	if s.reclaim != nil {
		s.reclaim(p.inbox)
	}
}

func (s *Supervisor) onExit(ev exitEvent) error {
	p := ev.p
	s.gone(p)
	if p.draining {
		s.log.Info("worker drained", "worker", p.id, "exit", exitText(ev.err))
		return nil
	}
	now := s.clock.Now()
	lived := now.Sub(p.started)
	s.log.Warn("worker exited", "worker", p.id, "lane", p.lane, "exit", exitText(ev.err), "lived", lived.Round(time.Millisecond))
	if lived < earlyExit {
		recent := s.failures[p.lane][:0]
		for _, t := range s.failures[p.lane] {
			if now.Sub(t) < s.cfg.CrashLoopWindow {
				recent = append(recent, t)
			}
		}
		s.failures[p.lane] = append(recent, now)
		if len(s.failures[p.lane]) >= s.cfg.CrashLoopRestarts {
			return fmt.Errorf("%w: %s workers exited %d times within %s of starting (last: %s); stopping instead of restarting. Last output of %s:\n%s",
				errCrashLoop, p.lane, len(s.failures[p.lane]), earlyExit, exitText(ev.err), p.id, p.lastLines())
		}
		s.backoff[p.lane] = min(max(2*s.backoff[p.lane], 500*time.Millisecond), 30*time.Second)
	} else {
		s.backoff[p.lane] = 0
	}
	// The replacement starts after the backoff; until then it counts as
	// present, so ensure() does not start one at once.
	s.restarts++
	s.waiting[p.lane]++
	lane, delay := p.lane, s.backoff[p.lane]
	s.clock.AfterFunc(delay, func() { s.restart <- lane })
	return nil
}

// checkBeats kills workers whose event loop stopped beating; they are then
// restarted like any other exit.
func (s *Supervisor) checkBeats() {
	for _, p := range s.procs {
		_, last := p.status()
		if silent := s.clock.Now().Sub(last); !p.draining && silent > s.cfg.HeartbeatTimeout {
			s.log.Warn("worker stopped heartbeating; killing it", "worker", p.id, "silent", silent.Round(time.Second))
			p.signal(syscall.SIGKILL)
		}
	}
}

// shutdown drains every worker within the deadline, then kills stragglers.
func (s *Supervisor) shutdown() error {
	for _, p := range s.procs {
		p.draining = true
		p.signal(syscall.SIGTERM)
	}
	deadline, stopDeadline := s.clock.NewTimer(s.cfg.DrainTimeout + 5*time.Second)
	defer stopDeadline()
	for len(s.procs) > 0 {
		select {
		case ev := <-s.exited:
			s.gone(ev.p)
			s.log.Info("worker stopped", "worker", ev.p.id, "exit", exitText(ev.err))
		case <-deadline:
			s.log.Warn("workers did not drain in time; killing them", "left", len(s.procs))
			s.killAll()
			return nil
		}
	}
	return nil
}

// killAll SIGKILLs every worker and reaps them (bounded).
func (s *Supervisor) killAll() {
	for _, p := range s.procs {
		p.signal(syscall.SIGKILL)
	}
	deadline, stopDeadline := s.clock.NewTimer(10 * time.Second)
	defer stopDeadline()
	for len(s.procs) > 0 {
		select {
		case ev := <-s.exited:
			s.gone(ev.p)
		case <-deadline:
			return
		}
	}
}

func exitText(err error) string {
	if err == nil {
		return "exit 0"
	}
	return err.Error()
}
