package storetest

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// RequireRedisEnv names the environment variable that, set to "1", turns a
// missing redis-server from a skipped test into a failed one (CI sets it).
const RequireRedisEnv = "BLAZING_REQUIRE_REDIS"

// RedisRequired reports whether a missing redis-server must fail a test
// rather than skip it: BLAZING_REQUIRE_REDIS=1, BLAZING_REQUIRE_SERVERS=1 or
// CI=true, the same switches the Python suite honours.
func RedisRequired() bool {
	return os.Getenv(RequireRedisEnv) == "1" || os.Getenv("BLAZING_REQUIRE_SERVERS") == "1" ||
		os.Getenv("CI") == "true"
}

// SkipReason is what a test skipped for want of redis-server says.
func SkipReason(err error) string {
	return fmt.Sprintf("skipping: %v (set %s=1 to make this a failure)", err, RequireRedisEnv)
}

// ErrNoRedisServer is returned by StartRedisServer when redis-server is not
// installed.
var ErrNoRedisServer = errors.New("redis-server is not installed (not on PATH)")

// ExternalRedisEnv names a variable that, set to host:port, makes
// StartRedisServer (without extra arguments) use that running server
// instead of starting one: benchmarks/history_cost.py counts the
// instructions of a redis-server it runs under callgrind.
const ExternalRedisEnv = "BLAZING_TEST_REDIS_ADDR"

// redisStartTimeout bounds how long a new server may take to answer PING.
const redisStartTimeout = 10 * time.Second

// RedisServer is a redis-server child process listening on a loopback port,
// with persistence off and its working files in a temporary directory.
type RedisServer struct {
	Addr string
	cmd  *exec.Cmd
	dir  string
	done chan struct{} // closed when the process has exited
	once sync.Once
	// external: not ours (ExternalRedisEnv); Stop leaves it running.
	external bool
}

// StartRedisServer starts a redis-server on a free loopback port and waits
// until it answers PING. Extra arguments go to redis-server as they are
// (for example "--cluster-enabled", "yes"). Stop it with Stop.
func StartRedisServer(extra ...string) (*RedisServer, error) {
	if addr := os.Getenv(ExternalRedisEnv); addr != "" && len(extra) == 0 {
		return &RedisServer{Addr: addr, external: true}, nil
	}
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, ErrNoRedisServer
	}
	var lastErr error
	// The port is free when picked but could be taken before redis-server
	// binds it; another port is tried then.
	for range 3 {
		srv, err := startRedisOnce(bin, extra)
		if err == nil {
			return srv, nil
		}
		lastErr = err
	}
	return nil, lastErr
}

func startRedisOnce(bin string, extra []string) (*RedisServer, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "blazing-redis-")
	if err != nil {
		return nil, fmt.Errorf("redis-server temp dir: %w", err)
	}
	args := append([]string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--daemonize", "no", "--dir", dir}, extra...)
	cmd := exec.Command(bin, args...)
	var out strings.Builder
	cmd.Stdout = &out
	cmd.Stderr = &out
	dieWithParent(cmd)
	if err := cmd.Start(); err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("start redis-server: %w", err)
	}
	srv := &RedisServer{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), cmd: cmd, dir: dir, done: make(chan struct{})}
	go func() { // ends when the process exits (Stop kills it)
		_ = cmd.Wait()
		close(srv.done)
	}()
	deadline := time.Now().Add(redisStartTimeout)
	for {
		if err := ping(srv.Addr); err == nil {
			return srv, nil
		}
		select {
		case <-srv.done:
			srv.Stop()
			return nil, fmt.Errorf("redis-server on port %d exited at start: %s", port, strings.TrimSpace(out.String()))
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			srv.Stop()
			return nil, fmt.Errorf("redis-server on port %d did not answer PING within %v", port, redisStartTimeout)
		}
	}
}

// Stop kills the server and removes its directory. It may be called more
// than once.
func (r *RedisServer) Stop() {
	r.once.Do(func() {
		if r.external {
			return
		}
		_ = r.cmd.Process.Kill()
		<-r.done
		_ = os.RemoveAll(r.dir)
	})
}

// StartRedis starts a redis-server for t and stops it when t ends. When
// redis-server is not installed, t is skipped, unless RedisRequired, in
// which case t fails.
func StartRedis(t testing.TB) (addr string) {
	t.Helper()
	srv, err := StartRedisServer()
	if errors.Is(err, ErrNoRedisServer) && !RedisRequired() {
		t.Skip(SkipReason(err))
	}
	if err != nil {
		t.Fatalf("redis: %v", err)
	}
	t.Cleanup(srv.Stop)
	return srv.Addr
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// ping sends an inline PING and expects +PONG.
func ping(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "+PONG") {
		return fmt.Errorf("unexpected reply %q", line)
	}
	return nil
}
