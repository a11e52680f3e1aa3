package memstore

import (
	"context"
	"fmt"
	"time"

	"github.com/blazingflow/blazing/core/store"
)

// Inboxes: notify appends a note and wakes the Pop calls asleep on the
// inbox; Pop takes notes, waiting for one if asked to.

type inbox struct {
	notes   []store.Note
	wake    chan struct{}
	waiters int // Pop calls asleep on wake
}

// notify appends a note to an inbox that exists. Caller holds mu.
func (s *Store) notify(name string, n store.Note) {
	if name == "" {
		return
	}
	ib := s.inboxes[name]
	if ib == nil {
		return
	}
	ib.notes = append(ib.notes, n)
	if ib.waiters > 0 {
		close(ib.wake)
		ib.wake = make(chan struct{})
		ib.waiters = 0
	}
}

// OpenInbox implements store.Store.
func (s *Store) OpenInbox(_ context.Context, name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return store.ErrClosed
	}
	if name == "" {
		return fmt.Errorf("open inbox: %w: empty name", store.ErrInvalid)
	}
	if s.inboxes[name] == nil {
		s.inboxes[name] = &inbox{wake: make(chan struct{})}
	}
	return nil
}

// CloseInbox implements store.Store.
func (s *Store) CloseInbox(_ context.Context, name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ib := s.inboxes[name]; ib != nil {
		close(ib.wake)
		delete(s.inboxes, name)
	}
	delete(s.alive, name)
	return nil
}

// Pop implements store.Store.
func (s *Store) Pop(ctx context.Context, name string, max int, wait time.Duration) ([]store.Note, error) {
	var deadline time.Time
	for {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return nil, store.ErrClosed
		}
		ib := s.inboxes[name]
		if ib == nil {
			s.mu.Unlock()
			return nil, fmt.Errorf("pop %q: %w", name, store.ErrUnknownInbox)
		}
		if n := len(ib.notes); n > 0 {
			if max <= 0 || max > n {
				max = n
			}
			out := ib.notes[:max:max]
			ib.notes = ib.notes[max:]
			if len(ib.notes) == 0 {
				ib.notes = nil
			}
			s.mu.Unlock()
			return out, nil
		}
		if wait <= 0 {
			s.mu.Unlock()
			return nil, nil
		}
		if deadline.IsZero() {
			deadline = time.Now().Add(wait)
		}
		remaining := time.Until(deadline)
		if remaining <= 0 {
			s.mu.Unlock()
			return nil, nil
		}
		wake := ib.wake
		ib.waiters++
		s.mu.Unlock()
		if err := sleep(ctx, wake, s.done, remaining); err != nil {
			return nil, err
		}
	}
}
