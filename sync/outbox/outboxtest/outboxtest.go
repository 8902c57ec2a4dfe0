// Package outboxtest has a hand-written fake of the outbox for the code
// that hands passages over (lanes, commands): it records what it is given
// and can be told to fail. It keeps nothing on disk; tests of durability
// use the real outbox on a real bbolt file.
package outboxtest

import (
	"sync"

	"anprd/internal/passage"
)

// Recorder records passages in memory.
type Recorder struct {
	mu       sync.Mutex
	passages []passage.Passage
	err      error
}

// Record implements the lanes' and commands' passage sink.
func (r *Recorder) Record(p passage.Passage) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return r.err
	}
	if err := p.Validate(); err != nil {
		return err
	}
	r.passages = append(r.passages, p)
	return nil
}

// Passages returns what was recorded, in order.
func (r *Recorder) Passages() []passage.Passage {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]passage.Passage(nil), r.passages...)
}

// Fail makes Record return err and record nothing (nil: succeed again).
func (r *Recorder) Fail(err error) {
	r.mu.Lock()
	r.err = err
	r.mu.Unlock()
}
