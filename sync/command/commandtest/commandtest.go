// Package commandtest has a hand-written fake of a lane's barrier opener
// for tests of remote commands: it records the lanes it was asked to open
// and can be told to fail. It drives no hardware.
package commandtest

import (
	"context"
	"sync"
)

// Opener records openings.
type Opener struct {
	mu     sync.Mutex
	opened []string
	err    error
}

// Open implements command.Opener.
func (o *Opener) Open(ctx context.Context, lane string) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.err != nil {
		return o.err
	}
	o.opened = append(o.opened, lane)
	return ctx.Err()
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
