// Command libblazing is the c-shared library Python loads with ctypes. Every
// export is a thin shell over core/bridge: it copies the input frame, runs
// the call, writes the reply into the caller's buffer (or a malloc'd one when
// it does not fit) and turns every error and panic into a negative return
// code with a message, so that nothing sent across can crash the process.
//
// Reply convention for every export taking (out, cap, outn, big):
//
//	rc == 0: the reply is out[:*outn]
//	rc == 1: the reply did not fit: it is (*big)[:*outn]; free it with bz_free
//	rc <  0: an error; out[:*outn] holds its message (truncated to cap)
package main

/*
#include <stdlib.h>
*/
import "C"

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/blazingflow/blazing/core/bridge"
	"github.com/blazingflow/blazing/core/engine"
	"github.com/blazingflow/blazing/core/frames"
)

// Error codes, mirrored in python/blazing/_native.py.
const (
	rcOK        = 0
	rcBig       = 1
	rcInvalid   = -1
	rcNotFound  = -2
	rcClosed    = -3
	rcInternal  = -4
	rcPanic     = -5
	rcBadHandle = -6
	rcConflict  = -7
	// rcUnavailable: the store cannot be reached or refuses this process
	// (credentials, TLS); Python raises StoreUnavailable.
	rcUnavailable = -8
	// rcTimeout: the store was reached but did not answer in time; Python
	// raises StoreTimeout (a StoreUnavailable and a TimeoutError).
	rcTimeout = -9
)

// version is reported by bz_version; bump with the frame format.
const version = "blazing-core 0.1.0 frames/1"

var (
	handlesMu  sync.RWMutex
	handles    = map[int64]*bridge.Session{}
	nextHandle atomic.Int64
)

func session(h C.longlong) (*bridge.Session, error) {
	handlesMu.RLock()
	s := handles[int64(h)]
	handlesMu.RUnlock()
	if s == nil {
		return nil, fmt.Errorf("no open engine with handle %d", int64(h))
	}
	return s, nil
}

func rcFor(err error) C.int {
	switch frames.Code(err) {
	case "invalid":
		return rcInvalid
	case "not_found":
		return rcNotFound
	case "closed":
		return rcClosed
	case "conflict":
		return rcConflict
	case "unavailable":
		return rcUnavailable
	case "timeout":
		return rcTimeout
	}
	if errors.Is(err, bridge.ErrConfig) {
		return rcInvalid
	}
	return rcInternal
}

// input copies a caller's frame into Go memory.
func input(in *C.char, n C.int) ([]byte, error) {
	if n < 0 {
		return nil, fmt.Errorf("%w: negative frame length %d", frames.ErrMalformed, int(n))
	}
	if n == 0 || in == nil {
		return nil, nil
	}
	return C.GoBytes(unsafe.Pointer(in), n), nil
}

// reply writes b (or an error message) per the reply convention.
func reply(b []byte, err error, out *C.char, capacity C.int, outn *C.int, big **C.char) C.int {
	if err != nil {
		return writeErr(rcFor(err), err.Error(), out, capacity, outn)
	}
	if outn == nil {
		return rcOK
	}
	if len(b) <= int(capacity) && out != nil {
		if len(b) > 0 {
			copy(unsafe.Slice((*byte)(unsafe.Pointer(out)), len(b)), b)
		}
		*outn = C.int(len(b))
		return rcOK
	}
	if big == nil {
		return writeErr(rcInternal, fmt.Sprintf("reply of %d bytes does not fit a %d-byte buffer", len(b), int(capacity)), out, capacity, outn)
	}
	p := C.malloc(C.size_t(len(b)))
	if p == nil {
		return writeErr(rcInternal, "out of memory", out, capacity, outn)
	}
	copy(unsafe.Slice((*byte)(p), len(b)), b)
	*big = (*C.char)(p)
	*outn = C.int(len(b))
	return rcBig
}

func writeErr(rc C.int, msg string, out *C.char, capacity C.int, outn *C.int) C.int {
	if out != nil && outn != nil && capacity > 0 {
		n := copy(unsafe.Slice((*byte)(unsafe.Pointer(out)), int(capacity)), msg)
		*outn = C.int(n)
	} else if outn != nil {
		*outn = 0
	}
	return rc
}

// guard turns a panic into rcPanic with the panic and stack as the message.
func guard(rc *C.int, out *C.char, capacity C.int, outn *C.int) {
	if r := recover(); r != nil {
		*rc = writeErr(rcPanic, fmt.Sprintf("internal panic: %v\n%s", r, debug.Stack()), out, capacity, outn)
	}
}

//export bz_version
func bz_version(out *C.char, capacity C.int, outn *C.int) (rc C.int) {
	defer guard(&rc, out, capacity, outn)
	return reply([]byte(version), nil, out, capacity, outn, nil)
}

//export bz_open
func bz_open(in *C.char, n C.int, out *C.char, capacity C.int, outn *C.int) (h C.longlong) {
	var rc C.int
	defer func() {
		guard(&rc, out, capacity, outn)
		if rc < 0 {
			h = C.longlong(rc)
		}
	}()
	frame, err := input(in, n)
	if err != nil {
		rc = reply(nil, err, out, capacity, outn, nil)
		return C.longlong(rc)
	}
	s, err := bridge.Open(context.Background(), frame)
	if err != nil {
		rc = reply(nil, err, out, capacity, outn, nil)
		return C.longlong(rc)
	}
	if s.Remote() {
		spareP.Do(addSpareP)
	}
	defer watchNetwork(s)
	id := nextHandle.Add(1)
	handlesMu.Lock()
	handles[id] = s
	handlesMu.Unlock()
	return C.longlong(id)
}

// frameCall runs fn on the session h with the caller's frame; it is the
// body of every export that takes a frame and replies with one.
func frameCall(h C.longlong, in *C.char, n C.int, out *C.char, capacity C.int, outn *C.int, big **C.char,
	fn func(*bridge.Session, []byte) ([]byte, error)) C.int {
	s, err := session(h)
	if err != nil {
		return writeErr(rcBadHandle, err.Error(), out, capacity, outn)
	}
	defer watchNetwork(s)
	frame, err := input(in, n)
	if err != nil {
		return reply(nil, err, out, capacity, outn, big)
	}
	b, err := fn(s, frame)
	return reply(b, err, out, capacity, outn, big)
}

//export bz_batch
func bz_batch(h C.longlong, in *C.char, n C.int, out *C.char, capacity C.int, outn *C.int, big **C.char) (rc C.int) {
	defer guard(&rc, out, capacity, outn)
	return frameCall(h, in, n, out, capacity, outn, big, func(s *bridge.Session, f []byte) ([]byte, error) {
		return s.Batch(context.Background(), f)
	})
}

//export bz_wait
func bz_wait(h C.longlong, timeoutMs C.int, out *C.char, capacity C.int, outn *C.int, big **C.char) (rc C.int) {
	defer guard(&rc, out, capacity, outn)
	s, err := session(h)
	if err != nil {
		return writeErr(rcBadHandle, err.Error(), out, capacity, outn)
	}
	defer watchNetwork(s)
	if timeoutMs < 0 {
		timeoutMs = 0
	}
	b, err := s.Wait(context.Background(), time.Duration(timeoutMs)*time.Millisecond)
	if errors.Is(err, engine.ErrClosed) {
		return writeErr(rcClosed, "engine closed", out, capacity, outn)
	}
	return reply(b, err, out, capacity, outn, big)
}

//export bz_get
func bz_get(h C.longlong, in *C.char, n C.int, out *C.char, capacity C.int, outn *C.int, big **C.char) (rc C.int) {
	defer guard(&rc, out, capacity, outn)
	return frameCall(h, in, n, out, capacity, outn, big, func(s *bridge.Session, f []byte) ([]byte, error) {
		return s.Get(context.Background(), f)
	})
}

//export bz_query
func bz_query(h C.longlong, in *C.char, n C.int, out *C.char, capacity C.int, outn *C.int, big **C.char) (rc C.int) {
	defer guard(&rc, out, capacity, outn)
	return frameCall(h, in, n, out, capacity, outn, big, func(s *bridge.Session, f []byte) ([]byte, error) {
		return s.Query(context.Background(), f)
	})
}

//export bz_stats
func bz_stats(h C.longlong, out *C.char, capacity C.int, outn *C.int, big **C.char) (rc C.int) {
	defer guard(&rc, out, capacity, outn)
	s, err := session(h)
	if err != nil {
		return writeErr(rcBadHandle, err.Error(), out, capacity, outn)
	}
	defer watchNetwork(s)
	b, err := s.Stats(context.Background())
	return reply(b, err, out, capacity, outn, big)
}

//export bz_notify
func bz_notify(h C.longlong, fd C.int, out *C.char, capacity C.int, outn *C.int) (rc C.int) {
	defer guard(&rc, out, capacity, outn)
	s, err := session(h)
	if err != nil {
		return writeErr(rcBadHandle, err.Error(), out, capacity, outn)
	}
	return reply(nil, s.SetNotify(int(fd)), out, capacity, outn, nil)
}

//export bz_close
func bz_close(h C.longlong, out *C.char, capacity C.int, outn *C.int) (rc C.int) {
	defer guard(&rc, out, capacity, outn)
	handlesMu.Lock()
	s := handles[int64(h)]
	delete(handles, int64(h))
	handlesMu.Unlock()
	if s == nil {
		return writeErr(rcBadHandle, fmt.Sprintf("no open engine with handle %d", int64(h)), out, capacity, outn)
	}
	defer watchNetwork(s)
	return reply(nil, s.Close(), out, capacity, outn, nil)
}

//export bz_free
func bz_free(p *C.char) {
	if p != nil {
		C.free(unsafe.Pointer(p))
	}
}

// watchNetwork runs on the way out of every export that used a session:
// for a session on a networked store it makes sure that, once this thread is
// back in C, some thread still watches the network.
//
// Otherwise there may be none. A store call blocked on a socket is woken by
// the M parked in netpoll (findRunnable). When the woken goroutine is an
// export's, it is locked to its C thread (cgocallbackg), so that M hands its
// P over (startlockedm) and parks in stopm instead of polling again. The
// export then returns to C still holding the P (reentersyscall), and the
// scheduler takes that P for a running one: handoffp's "last running P and
// nobody polling: start an M" no longer fires, and sysmon's retake leaves a
// P in a syscall alone for 10 ms while another P is idle. With every Python
// thread outside Go, a reply that then arrives (the note a finished call
// pushes to this process's inbox, read by the listener's BLMPOP) sits unread
// until sysmon's fallback netpoll, up to 10 ms later.
//
// wakep starts a spinning M if a P is idle and no M spins; finding no work,
// it blocks in netpoll unless another M already does. No polling loop and no
// goroutine. It does nothing when no P is idle, and then needs not: with no
// idle P, sysmon retakes a P held in C without the 10 ms grace. Sessions on
// the memory store skip it: they have no socket to watch, and the wake-up
// would cost each of their calls a few microseconds.
func watchNetwork(s *bridge.Session) {
	if s.Remote() {
		wakep()
	}
}

// spareP runs addSpareP once, when the first session on a networked store
// opens.
var spareP sync.Once

// addSpareP sets GOMAXPROCS one above the CPU count (unless the GOMAXPROCS
// environment variable sets it). The P an export returns to C with stays
// with that thread in the syscall state, and the scheduler may leave it
// there for up to 10 ms (see watchNetwork); with as many Ps as CPUs, that
// leaves one P for all the engine's goroutines on a 2-core machine, and a
// goroutine made ready meanwhile can wait for the 10 ms. Measured here
// (2,000 sequential round trips through Redis): the worst round trip went
// from 12-16 ms to 3-6 ms, medians unchanged.
func addSpareP() {
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(runtime.NumCPU() + 1)
	}
}

// wakep is the scheduler's runtime.wakep, which the runtime keeps linkable
// (go.dev/issue/67401).
//
//go:linkname wakep runtime.wakep
func wakep()

func main() {}
