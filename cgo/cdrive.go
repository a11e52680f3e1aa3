package main

/*
#include <stdlib.h>
*/
import "C"

import (
	"unsafe"

	"github.com/blazingflow/blazing/core/bridge"
)

// This file lets the Go tests of this package (main_test.go, which cannot
// use cgo itself) call the exports exactly as a C caller does: the input
// frame in C memory, a C output buffer of a chosen capacity followed by
// guard bytes, C ints and pointers for outn and big, any of them NULL on
// request. Nothing in the library calls it, so the linker leaves it out of
// libblazing.so.

// cCall is one call's arguments as the C side would pass them.
type cCall struct {
	in       []byte // copied to C memory; nil passes NULL
	n        *int   // the length passed; nil: len(in)
	capacity int    // of the C output buffer
	// noOut, noOutn and noBig pass NULL for out, outn and big.
	noOut, noOutn, noBig bool
}

// cResult is what came back.
type cResult struct {
	rc      int64  // the return value (a handle, for bz_open)
	out     []byte // out[:*outn], or the malloc'd reply's bytes when rc is 1
	outn    int    // *outn (-1 if outn was NULL)
	big     bool   // a malloc'd reply came back (and was freed with bz_free)
	overrun bool   // bytes past capacity in out were written
}

const guardLen = 64

type export func(in *C.char, n C.int, out *C.char, capacity C.int, outn *C.int, big **C.char) C.longlong

func (c cCall) run(call export) cResult {
	var in *C.char
	if c.in != nil {
		in = (*C.char)(C.malloc(C.size_t(len(c.in) + 1)))
		defer C.free(unsafe.Pointer(in))
		copy(unsafe.Slice((*byte)(unsafe.Pointer(in)), len(c.in)), c.in)
	}
	n := len(c.in)
	if c.n != nil {
		n = *c.n
	}
	var out *C.char
	var outBytes []byte
	if !c.noOut {
		size := max(c.capacity, 0) + guardLen
		out = (*C.char)(C.malloc(C.size_t(size)))
		defer C.free(unsafe.Pointer(out))
		outBytes = unsafe.Slice((*byte)(unsafe.Pointer(out)), size)
		for i := range outBytes {
			outBytes[i] = 0xA5
		}
	}
	var outn *C.int
	if !c.noOutn {
		outn = (*C.int)(C.malloc(C.size_t(unsafe.Sizeof(C.int(0)))))
		defer C.free(unsafe.Pointer(outn))
		*outn = -12345
	}
	var big **C.char
	if !c.noBig {
		big = (**C.char)(C.malloc(C.size_t(unsafe.Sizeof(uintptr(0)))))
		defer C.free(unsafe.Pointer(big))
		*big = nil
	}

	r := cResult{rc: int64(call(in, C.int(n), out, C.int(c.capacity), outn, big)), outn: -1}
	if outn != nil {
		r.outn = int(*outn)
	}
	if big != nil && *big != nil {
		r.big = true
		r.out = C.GoBytes(unsafe.Pointer(*big), C.int(max(r.outn, 0)))
		bz_free(*big)
	} else if outBytes != nil && r.outn >= 0 && r.outn <= max(c.capacity, 0) {
		r.out = append([]byte(nil), outBytes[:r.outn]...)
	}
	if outBytes != nil {
		for _, b := range outBytes[max(c.capacity, 0):] {
			if b != 0xA5 {
				r.overrun = true
			}
		}
	}
	return r
}

func cVersion(c cCall) cResult {
	return c.run(func(_ *C.char, _ C.int, out *C.char, capacity C.int, outn *C.int, _ **C.char) C.longlong {
		return C.longlong(bz_version(out, capacity, outn))
	})
}

func cOpen(c cCall) cResult {
	return c.run(func(in *C.char, n C.int, out *C.char, capacity C.int, outn *C.int, _ **C.char) C.longlong {
		return bz_open(in, n, out, capacity, outn)
	})
}

func cBatch(h int64, c cCall) cResult {
	return c.run(func(in *C.char, n C.int, out *C.char, capacity C.int, outn *C.int, big **C.char) C.longlong {
		return C.longlong(bz_batch(C.longlong(h), in, n, out, capacity, outn, big))
	})
}

func cGet(h int64, c cCall) cResult {
	return c.run(func(in *C.char, n C.int, out *C.char, capacity C.int, outn *C.int, big **C.char) C.longlong {
		return C.longlong(bz_get(C.longlong(h), in, n, out, capacity, outn, big))
	})
}

func cQuery(h int64, c cCall) cResult {
	return c.run(func(in *C.char, n C.int, out *C.char, capacity C.int, outn *C.int, big **C.char) C.longlong {
		return C.longlong(bz_query(C.longlong(h), in, n, out, capacity, outn, big))
	})
}

func cWait(h int64, timeoutMs int, c cCall) cResult {
	return c.run(func(_ *C.char, _ C.int, out *C.char, capacity C.int, outn *C.int, big **C.char) C.longlong {
		return C.longlong(bz_wait(C.longlong(h), C.int(timeoutMs), out, capacity, outn, big))
	})
}

func cStats(h int64, c cCall) cResult {
	return c.run(func(_ *C.char, _ C.int, out *C.char, capacity C.int, outn *C.int, big **C.char) C.longlong {
		return C.longlong(bz_stats(C.longlong(h), out, capacity, outn, big))
	})
}

func cNotify(h int64, fd int, c cCall) cResult {
	return c.run(func(_ *C.char, _ C.int, out *C.char, capacity C.int, outn *C.int, _ **C.char) C.longlong {
		return C.longlong(bz_notify(C.longlong(h), C.int(fd), out, capacity, outn))
	})
}

func cClose(h int64, c cCall) cResult {
	return c.run(func(_ *C.char, _ C.int, out *C.char, capacity C.int, outn *C.int, _ **C.char) C.longlong {
		return C.longlong(bz_close(C.longlong(h), out, capacity, outn))
	})
}

// cPanicking runs a body that panics under guard, as every export does.
func cPanicking(c cCall) cResult {
	return c.run(func(_ *C.char, _ C.int, out *C.char, capacity C.int, outn *C.int, _ **C.char) C.longlong {
		return C.longlong(func() (rc C.int) {
			defer guard(&rc, out, capacity, outn)
			panic("boom")
		}())
	})
}

// cFreeNull calls bz_free(NULL).
func cFreeNull() { bz_free(nil) }

// sessionOf is session for a Go handle.
func sessionOf(h int64) (*bridge.Session, error) { return session(C.longlong(h)) }
