package redisstore

import (
	"context"
	"fmt"
	"time"

	"github.com/blazingflow/blazing/core/store"
)

// Inboxes: a process's or client's list of notes (finished operations it
// waits on, cancels of what it holds), opened, closed and read with Pop.

const (
	// popAllCount is the batch size of a blocking Pop with max 0 ("all").
	popAllCount = 1000
	// closeMarkerTTL bounds the life of the marker CloseInbox leaves to
	// wake a blocked Pop.
	closeMarkerTTL = time.Minute
)

// OpenInbox implements store.Store.
func (s *Store) OpenInbox(ctx context.Context, name string) error {
	if s.closed.Load() {
		return store.ErrClosed
	}
	if name == "" {
		return fmt.Errorf("open inbox: %w: empty name", store.ErrInvalid)
	}
	_, err := s.run(ctx, call{script: s.sc.openInbox, keys: []string{s.k.inbox(name), s.k.notes(name)},
		args: []any{s.cfg.InboxTTL.Milliseconds()}})
	if err != nil {
		return fmt.Errorf("redisstore: open inbox %q: %w", name, err)
	}
	return nil
}

// CloseInbox implements store.Store.
func (s *Store) CloseInbox(ctx context.Context, name string) error {
	s.forgetInbox(name)
	if s.closed.Load() {
		return store.ErrClosed
	}
	_, err := s.run(ctx, call{script: s.sc.closeInbox, keys: []string{s.k.inbox(name), s.k.notes(name), s.k.alive},
		args: []any{closeMarkerTTL.Milliseconds(), name}})
	if err != nil {
		return fmt.Errorf("redisstore: close inbox %q: %w", name, err)
	}
	return nil
}

// Pop implements store.Store. With wait > 0 it takes what is there, and if
// there is nothing, blocks in BLMPOP on the inbox's list, which returns the
// notes that arrive (up to max) at once.
func (s *Store) Pop(ctx context.Context, name string, max int, wait time.Duration) ([]store.Note, error) {
	var deadline time.Time
	dec := newNoteDecoder()
	// A waiting call on an inbox checked (and its lifetime refreshed) within
	// inboxCheckEvery may block at once: one round trip fewer per result.
	skip := wait > 0 && s.inboxFresh(name)
	for {
		if s.closed.Load() {
			return nil, store.ErrClosed
		}
		if !skip {
			v, err := s.run(ctx, call{script: s.sc.pop, keys: []string{s.k.inbox(name), s.k.notes(name)},
				args: []any{max, s.cfg.InboxTTL.Milliseconds()}})
			if err != nil {
				if s.closed.Load() {
					return nil, store.ErrClosed
				}
				return nil, fmt.Errorf("redisstore: pop %q: %w", name, err)
			}
			if n, ok := v.(int64); ok && n == -1 {
				s.forgetInbox(name)
				return nil, fmt.Errorf("pop %q: %w", name, store.ErrUnknownInbox)
			}
			s.sawInbox(name)
			raw, _ := v.([]any)
			vals := make([]string, len(raw))
			for i, r := range raw {
				vals[i], _ = r.(string)
			}
			if notes := decodeNotes(dec, vals); len(notes) > 0 || wait <= 0 {
				return notes, nil
			}
		}
		skip = false
		if deadline.IsZero() {
			deadline = time.Now().Add(wait)
		}
		remaining := time.Until(deadline)
		if remaining <= 0 {
			return nil, nil
		}
		count := max
		if count <= 0 {
			count = popAllCount
		}
		got, err := s.block(ctx, s.k.notes(name), count, remaining)
		if err != nil {
			return nil, err
		}
		if notes := decodeNotes(dec, got); len(notes) > 0 {
			return notes, nil
		}
		// Woken with nothing (the wait ran out, or the inbox was closed):
		// the next round says which.
	}
}

// inboxCheckEvery bounds how long a Pop may go without the pop script, which
// finds a lost inbox (ErrUnknownInbox) and refreshes its lifetime.
const inboxCheckEvery = time.Second

func (s *Store) inboxFresh(name string) bool {
	s.skipMu.Lock()
	defer s.skipMu.Unlock()
	seen, ok := s.inboxSeen[name]
	return ok && time.Since(seen) < inboxCheckEvery
}

func (s *Store) sawInbox(name string) {
	s.skipMu.Lock()
	s.inboxSeen[name] = time.Now()
	s.skipMu.Unlock()
}

func (s *Store) forgetInbox(name string) {
	s.skipMu.Lock()
	delete(s.inboxSeen, name)
	s.skipMu.Unlock()
}

// decodeNotes decodes popped notes. Empty strings are CloseInbox's wake-up
// markers; a note that cannot be decoded (written by hand) is dropped: it
// has been taken off the list and no retry could read it.
func decodeNotes(dec *noteDecoder, vals []string) []store.Note {
	var out []store.Note
	for _, v := range vals {
		if v == "" {
			continue
		}
		n, err := dec.decode(v)
		if err != nil {
			continue
		}
		out = append(out, n)
	}
	return out
}
