// Package presencetest has an in-memory stand-in for the presence reads a
// decision makes (the answers of *presence.Tx, from a slice), for
// decision tests. It must not be imported outside tests.
package presencetest

import (
	"time"

	"anprd/internal/plate"
	"anprd/internal/presence"
)

// Mem is the vehicles inside, in memory. Set Fail to make reads fail.
type Mem struct {
	Fail     error
	Vehicles []presence.Vehicle
}

// Inside implements decide.Presence.
func (m *Mem) Inside(facility, p string) (*presence.Vehicle, error) {
	if m.Fail != nil {
		return nil, m.Fail
	}
	for i := range m.Vehicles {
		if v := &m.Vehicles[i]; v.Facility == facility && v.Plate == p {
			return v, nil
		}
	}
	return nil, nil
}

// Confusable implements decide.Presence.
func (m *Mem) Confusable(facility, key string) ([]*presence.Vehicle, error) {
	if m.Fail != nil {
		return nil, m.Fail
	}
	var out []*presence.Vehicle
	for i := range m.Vehicles {
		if v := &m.Vehicles[i]; v.Facility == facility && plate.ConfusionKey(v.Plate) == key {
			out = append(out, v)
		}
	}
	return out, nil
}

// Count implements decide.Presence.
func (m *Mem) Count(r presence.Ref, since time.Time, facility, p string) (int, error) {
	if m.Fail != nil {
		return 0, m.Fail
	}
	n := 0
	for _, v := range m.Vehicles {
		if v.Facility == facility && v.Plate == p || v.Entered.Before(since) {
			continue
		}
		for _, vr := range v.Refs() {
			if vr == r {
				n++
			}
		}
	}
	return n, nil
}

// Enter records v, replacing the same plate in the same facility.
func (m *Mem) Enter(v presence.Vehicle) {
	m.Exit(v.Facility, v.Plate)
	m.Vehicles = append(m.Vehicles, v)
}

// Exit removes a plate.
func (m *Mem) Exit(facility, p string) {
	for i, v := range m.Vehicles {
		if v.Facility == facility && v.Plate == p {
			m.Vehicles = append(m.Vehicles[:i], m.Vehicles[i+1:]...)
			return
		}
	}
}
