// Package presencesync applies the presence changes of the site's other
// boxes, so that the one-vehicle rule of a permit holds across a garage
// whose entrance and exit are watched by different boxes. This box's own
// changes go out through the outbox with its passages (sync/uplink); this
// package only takes the others' in.
//
// Two boxes deciding at the same moment each see the other's vehicle only
// once its change has arrived (normally tens of milliseconds; as long as
// the broker is away): both may admit a vehicle of a one-car permit, and
// both records then stand on both boxes. The passages of both go to the
// central system, which sees the overlap by entry time and charges or
// sanctions the later one (docs/protocol.md). This package must not
// decide access: it records what another box decided.
package presencesync

import (
	"errors"
	"fmt"

	"anprd/internal/presence"
	"anprd/sync/protocol"

	"github.com/rs/zerolog"
)

// Options configure Peers.
type Options struct {
	Topics protocol.Topics
	// Facility is this box's facility (access.facility); changes for
	// other facilities are ignored.
	Facility string
	Log      zerolog.Logger
	Metrics  *Metrics
}

// Peers applies other boxes' presence changes to the store.
type Peers struct {
	o     Options
	store *presence.Store
	m     *Metrics
}

// New returns Peers writing to store.
func New(store *presence.Store, o Options) *Peers {
	m := o.Metrics
	if m == nil {
		m = NewMetrics(nil)
	}
	return &Peers{o: o, store: store, m: m}
}

// Filter is the topic filter to subscribe to.
func (p *Peers) Filter() string { return p.o.Topics.PeerPresence() }

var errNotSelf = errors.New("the message names another device than its topic")

// Handle takes one received presence change, in the order received.
func (p *Peers) Handle(topic string, payload []byte) {
	dev := p.o.Topics.DeviceOf(topic)
	if dev == p.o.Topics.Device {
		return // our own, back from the broker
	}
	msg, err := protocol.DecodePresence(payload)
	if err == nil && msg.Device != dev {
		err = &protocol.Reject{Reason: protocol.RejectInvalid, Err: fmt.Errorf("%w: %s on %s", errNotSelf, msg.Device, dev)}
	}
	if err != nil {
		r := protocol.ReasonOf(err)
		p.m.rejected.WithLabelValues(string(r)).Inc()
		p.o.Log.Warn().Str("topic", topic).Str("reason", string(r)).Err(err).Msg("presence change from another box refused")
		return
	}
	if msg.Facility != p.o.Facility {
		p.m.applied.WithLabelValues("other_facility").Inc()
		return
	}
	op, err := p.apply(msg)
	if err != nil {
		p.m.rejected.WithLabelValues(string(protocol.RejectInvalid)).Inc()
		p.o.Log.Error().Err(err).Str("device", dev).Msg("presence change from another box not applied")
		return
	}
	p.m.applied.WithLabelValues(op).Inc()
	p.o.Log.Debug().Str("device", dev).Str("passage", msg.Passage.String()).Str("op", op).Msg("presence change from another box")
}

// apply records msg in one transaction. Changes may come late (the
// broker was away), so a change older than what is recorded loses: an
// exit does not remove a vehicle that entered after it, and an entry does
// not replace a later record of the same plate.
func (p *Peers) apply(msg *protocol.Presence) (string, error) {
	op := "stale"
	err := p.store.Update(func(tx *presence.Tx) error {
		op = "stale"
		if msg.Leave != "" {
			v, err := tx.Inside(msg.Facility, msg.Leave)
			if err != nil {
				return err
			}
			if v != nil && !v.Entered.After(msg.Time) {
				if _, err := tx.Exit(msg.Facility, msg.Leave); err != nil {
					return err
				}
				op = "exit"
			}
		}
		if e := msg.Enter; e != nil {
			v, err := tx.Inside(msg.Facility, e.Plate)
			if err != nil {
				return err
			}
			if v != nil && v.Entered.After(e.Entered) {
				return nil
			}
			rec := *e
			rec.Source = presence.FromPeer
			if err := tx.Enter(&rec); err != nil {
				return err
			}
			op = "enter"
		}
		return nil
	})
	return op, err
}
