package engine

import (
	"encoding/binary"
	"fmt"
	"syscall"
)

// A process whose event loop can watch a file descriptor (Python's asyncio
// with add_reader) takes events without a thread parked in Wait: the engine
// writes to an eventfd when events arrive, and the loop drains them. That
// spares a cross-thread hand-off and the wake-up of a goroutine locked to a
// cgo thread, the two slowest steps of a delivery or a result.

var notifyOne = binary.NativeEndian.AppendUint64(nil, 1)

// SetNotify makes the engine write to the eventfd fd whenever events are
// queued and none have been announced since the last Drain or Wait; -1
// turns it off. The caller owns fd and must keep it open until it turns
// notification off or the engine is closed.
func (e *Engine) SetNotify(fd int) error {
	if fd < -1 {
		return fmt.Errorf("engine: notify fd %d is not a file descriptor", fd)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.notifyFD = fd
	e.notified = false
	if fd >= 0 && len(e.events) > 0 {
		e.announce()
	}
	return nil
}

// announce writes to the notify fd once per batch of undrained events.
// Caller holds mu. A full or closed fd is ignored: the reader drains on its
// next wake-up, and a closed fd means its owner has stopped listening.
func (e *Engine) announce() {
	if e.notifyFD < 0 || e.notified {
		return
	}
	e.notified = true
	_, _ = syscall.Write(e.notifyFD, notifyOne)
}
