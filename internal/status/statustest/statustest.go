// Package statustest has hand-written fakes of what the status page
// reads and asks: a Source whose snapshot the test sets, Actions that
// record their calls and can be told to fail, and in-memory Images and
// Audit. It is for tests only.
package statustest

import (
	"context"
	"errors"
	"sync"

	"anprd/internal/passage"
	"anprd/internal/presence"
	"anprd/internal/status"
)

// Source returns the snapshot last Set.
type Source struct {
	mu    sync.Mutex
	snap  status.Snapshot
	calls int
}

// Set replaces the snapshot.
func (s *Source) Set(snap status.Snapshot) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.snap = snap
}

// Update changes the snapshot in place.
func (s *Source) Update(fn func(*status.Snapshot)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fn(&s.snap)
}

// Snapshot implements status.Source.
func (s *Source) Snapshot() status.Snapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	return s.snap
}

// Calls is how many snapshots were taken.
func (s *Source) Calls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

// Call is one action asked of Actions.
type Call struct {
	Action string // open, presence_remove, resync
	Lane   string
	Manual passage.ManualOpen
	Plate  string
	Detail string
}

// Actions records every call. Err, when set, is what each returns;
// Inside are the vehicles RemovePresence finds (by plate).
type Actions struct {
	mu     sync.Mutex
	calls  []Call
	Err    error
	Lanes  map[string]bool // lane id -> has a barrier; nil: every lane has one
	Inside map[string]presence.Vehicle
}

func (a *Actions) record(c Call) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.calls = append(a.calls, c)
	return a.Err
}

// Calls returns the calls so far.
func (a *Actions) Calls() []Call {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]Call(nil), a.calls...)
}

// OpenBarrier implements status.Actions.
func (a *Actions) OpenBarrier(ctx context.Context, lane string, m passage.ManualOpen) error {
	a.mu.Lock()
	lanes := a.Lanes
	a.mu.Unlock()
	if lanes != nil {
		barrier, ok := lanes[lane]
		if !ok {
			return status.ErrUnknownLane
		}
		if !barrier {
			return status.ErrNoBarrier
		}
	}
	return a.record(Call{Action: status.ActOpen, Lane: lane, Manual: m})
}

// RemovePresence implements status.Actions.
func (a *Actions) RemovePresence(plate string) (*presence.Vehicle, error) {
	if err := a.record(Call{Action: status.ActRemovePresence, Plate: plate}); err != nil {
		return nil, err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	v, ok := a.Inside[plate]
	if !ok {
		return nil, nil
	}
	delete(a.Inside, plate)
	return &v, nil
}

// Resync implements status.Actions.
func (a *Actions) Resync(detail string) error {
	return a.record(Call{Action: status.ActResync, Detail: detail})
}

// Images holds images by path.
type Images map[string][]byte

// ReadImage implements status.Images.
func (m Images) ReadImage(rel string) ([]byte, error) {
	b, ok := m[rel]
	if !ok {
		return nil, errors.New("no such image")
	}
	return b, nil
}

// Audit keeps entries in memory; Err, when set, fails Append.
type Audit struct {
	mu      sync.Mutex
	entries []status.AuditEntry
	Err     error
}

// Append implements status.Audit.
func (a *Audit) Append(e status.AuditEntry) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.Err != nil {
		return a.Err
	}
	a.entries = append(a.entries, e)
	return nil
}

// Recent implements status.Audit.
func (a *Audit) Recent(n int) ([]status.AuditEntry, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []status.AuditEntry
	for i := len(a.entries) - 1; i >= 0 && len(out) < n; i-- {
		out = append(out, a.entries[i])
	}
	return out, nil
}

// Entries returns every entry, oldest first.
func (a *Audit) Entries() []status.AuditEntry {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]status.AuditEntry(nil), a.entries...)
}
