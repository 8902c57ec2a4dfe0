package clock

import (
	"testing"
	"testing/synctest"
	"time"
)

// TestRealInBubble: under synctest, Real's time and timers are the
// bubble's, which is what the barrier and lane tests rely on.
func TestRealInBubble(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var c Clock = Real{}
		start := c.Now()
		tm := c.NewTimer(3 * time.Second)
		fired := make(chan time.Duration, 1)
		c.AfterFunc(time.Second, func() { fired <- c.Now().Sub(start) })
		if d := <-fired; d != time.Second {
			t.Errorf("AfterFunc fired after %v, want 1s", d)
		}
		at := <-tm.C()
		if d := at.Sub(start); d != 3*time.Second {
			t.Errorf("timer fired after %v, want 3s", d)
		}
		if tm.Reset(time.Second) {
			t.Error("Reset of a fired timer reported it active")
		}
		if !tm.Stop() {
			t.Error("Stop of an active timer reported it inactive")
		}
	})
}
