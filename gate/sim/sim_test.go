package sim_test

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"anprd/gate"
	"anprd/gate/sim"

	"github.com/rs/zerolog"
)

// run starts a barrier on s; call within synctest.Test.
func run(t *testing.T, s *sim.Barrier, o gate.Options) *gate.Barrier {
	t.Helper()
	o.Lane, o.Log = "in-1", zerolog.Nop()
	b, err := gate.New(s, o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- b.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	synctest.Wait()
	return b
}

func state(t *testing.T, b *gate.Barrier, want gate.State) {
	t.Helper()
	if got, fault := b.State(); got != want {
		t.Fatalf("state %s (%s), want %s", got, fault, want)
	}
}

// TestLane drives vehicles through simulated barriers of each wiring and
// checks that the arm never came down on one.
func TestLane(t *testing.T) {
	for _, tt := range []struct {
		name string
		o    sim.Options
		gate gate.Options
	}{
		{name: "pulse, close output, switches", o: sim.Options{Seed: 1}},
		{name: "held", o: sim.Options{Held: true, Seed: 2}, gate: gate.Options{Held: true}},
		{name: "pulse, no close output: auto-close", o: sim.Options{Seed: 3,
			Lines: []gate.Line{gate.LineArming, gate.LineOpenSwitch, gate.LineClosedSwitch}}},
		{name: "no switches", o: sim.Options{Seed: 4, Lines: []gate.Line{gate.LineClose}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := sim.New(tt.o)
				b := run(t, s, tt.gate)
				time.Sleep(4 * time.Second) // without switches the position is learnt by closing
				synctest.Wait()
				state(t, b, gate.Closed)
				for range 3 {
					go b.Open("vehicle")
					through, err := s.Drive(context.Background(), 10*time.Second, 1500*time.Millisecond)
					if err != nil || !through {
						t.Fatalf("Drive = %v, %v", through, err)
					}
					time.Sleep(5 * time.Second)
					synctest.Wait()
					state(t, b, gate.Closed)
					if p := s.Position(); p != 0 {
						t.Fatalf("arm at %v after closing", p)
					}
				}
				if h := s.Hits(); h != 0 {
					t.Errorf("%d hits", h)
				}
			})
		})
	}
}

// TestVehicleUnderClosingArm: a second vehicle drives under the arm as
// it comes down; anprd reverses it. Without anprd the simulated
// controller would hit it, which the hit counter shows.
func TestVehicleUnderClosingArm(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := sim.New(sim.Options{Seed: 5, CloseTime: 2 * time.Second})
		b := run(t, s, gate.Options{})
		b.Open("vehicle")
		s.Drive(context.Background(), 10*time.Second, time.Second)
		time.Sleep(1500 * time.Millisecond) // settle, then the arm starts down
		synctest.Wait()
		state(t, b, gate.Closing)
		s.SetSafety(true)
		synctest.Wait()
		state(t, b, gate.Opening)
		time.Sleep(5 * time.Second)
		s.SetSafety(false)
		time.Sleep(5 * time.Second)
		synctest.Wait()
		state(t, b, gate.Closed)
		if h := s.Hits(); h != 0 {
			t.Errorf("%d hits with anprd", h)
		}
	})
	synctest.Test(t, func(t *testing.T) {
		s := sim.New(sim.Options{Seed: 5})
		s.Set(gate.LineOpen, true)
		time.Sleep(5 * time.Second)
		s.SetSafety(true)
		s.Set(gate.LineClose, true) // a controller told to close on a vehicle
		time.Sleep(5 * time.Second)
		if h := s.Hits(); h == 0 {
			t.Error("the hit counter did not count a close on a vehicle")
		}
	})
}

// TestRestartUnderRaisedArm: anprd starting with the arm up keeps it up.
func TestRestartUnderRaisedArm(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := sim.New(sim.Options{Seed: 6})
		s.Raise()
		b := run(t, s, gate.Options{CloseTimeout: 20 * time.Second})
		state(t, b, gate.Open)
		time.Sleep(19 * time.Second)
		synctest.Wait()
		if s.Position() != 1 {
			t.Fatalf("arm at %v before close_timeout", s.Position())
		}
		time.Sleep(5 * time.Second)
		synctest.Wait()
		state(t, b, gate.Closed)
	})
}

// TestJammedArm: a motor that stops is a fault within confirm_timeout.
func TestJammedArm(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := sim.New(sim.Options{Seed: 7})
		b := run(t, s, gate.Options{ConfirmTimeout: 5 * time.Second})
		s.Jam(true)
		b.Open("vehicle")
		time.Sleep(6 * time.Second)
		synctest.Wait()
		state(t, b, gate.Fault)
		// The button is the staff's; the simulated one reaches the barrier.
		s.Press()
		synctest.Wait()
		var button bool
		for len(b.Events()) > 0 {
			if e := <-b.Events(); e.Kind == gate.EventButton {
				button = true
			}
		}
		if !button {
			t.Error("no button event")
		}
	})
}
