// Package lanetest has a hand-written passage sink for tests: it keeps
// the passages recorded, in order, can be told to fail, and lets a test
// wait for the next one. It stands in for the outbox.
//
// It must not be imported outside tests and tools (anprctl bench lane
// uses it to collect the passages of its runs).
package lanetest

import (
	"context"
	"sync"

	"anprd/internal/passage"
)

// Sink records passages in memory.
type Sink struct {
	mu    sync.Mutex
	ps    []passage.Passage
	fail  error
	calls int
	added chan struct{} // closed and replaced on every passage recorded
}

// NewSink returns an empty sink.
func NewSink() *Sink { return &Sink{added: make(chan struct{})} }

// Record implements the lane's sink; it fails while Fail is set.
func (s *Sink) Record(p passage.Passage) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	if s.fail != nil {
		return s.fail
	}
	s.ps = append(s.ps, p)
	close(s.added)
	s.added = make(chan struct{})
	return nil
}

// Fail makes Record fail with err; nil makes it succeed again.
func (s *Sink) Fail(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail = err
}

// Passages returns the passages recorded so far.
func (s *Sink) Passages() []passage.Passage {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]passage.Passage(nil), s.ps...)
}

// Calls counts Record calls, failed ones included.
func (s *Sink) Calls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

// Wait waits until at least n passages are recorded, or ctx ends.
func (s *Sink) Wait(ctx context.Context, n int) ([]passage.Passage, error) {
	for {
		s.mu.Lock()
		if len(s.ps) >= n {
			ps := append([]passage.Passage(nil), s.ps...)
			s.mu.Unlock()
			return ps, nil
		}
		ch := s.added
		s.mu.Unlock()
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-ch:
		}
	}
}
