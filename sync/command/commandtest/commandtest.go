// Package commandtest has a hand-written fake of a lane's barrier opener
// for tests of remote commands: it records the lanes it was asked to open
// and can be told to fail. It drives no hardware.
package commandtest

import (
	"context"
	"sync"

	"anprd/internal/passage"
)

// Opener records openings.
type Opener struct {
	mu     sync.Mutex
	opened []string
	seen   []passage.ManualOpen
	err    error
	// Records makes Open say that it recorded the opening itself, as the
	// lanes do.
	Records bool
}

// Open implements command.Opener. Unless Records is set it records no
// passage, so the handler does.
func (o *Opener) Open(ctx context.Context, lane string, m passage.ManualOpen) (bool, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.err != nil {
		return o.Records, o.err
	}
	o.opened = append(o.opened, lane)
	o.seen = append(o.seen, m)
	return o.Records, ctx.Err()
}

// Manual lists the manual openings asked for, in order.
func (o *Opener) Manual() []passage.ManualOpen {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]passage.ManualOpen(nil), o.seen...)
}

// Opened lists the lanes opened, in order.
func (o *Opener) Opened() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]string(nil), o.opened...)
}

// Fail makes Open return err (nil: succeed again).
func (o *Opener) Fail(err error) {
	o.mu.Lock()
	o.err = err
	o.mu.Unlock()
}
