// Package ack takes the central system's acknowledgements of this box's
// passages (docs/protocol.md, ack): signed for this box's topic, they tell
// the outbox that a passage kept for follow-up (a charge, a sanction) may
// lose its evidence and plate at the normal retention. An ack that is not
// correctly signed changes nothing: a forged one must not make the box
// delete the evidence of a charge early.
//
// It only records acks; deletion is the outbox's retention round. It
// sends nothing back.
package ack

import (
	"crypto/ed25519"
	"time"

	"anprd/internal/passage"
	"anprd/sync/protocol"

	"github.com/rs/zerolog"
)

// Acknowledger records acks; *outbox.Outbox is one.
type Acknowledger interface {
	Acknowledge(ids []passage.ID, now time.Time) (held, unknown int, err error)
}

// Options configure a Handler.
type Options struct {
	Topics protocol.Topics
	// Key is the central system's public key; nil refuses everything.
	Key     ed25519.PublicKey
	Now     func() time.Time
	Log     zerolog.Logger
	Metrics *Metrics
}

// Handler verifies and applies acks.
type Handler struct {
	o  Options
	to Acknowledger
	m  *Metrics
}

// New returns a handler recording acks in to.
func New(to Acknowledger, o Options) *Handler {
	if o.Now == nil {
		o.Now = time.Now
	}
	m := o.Metrics
	if m == nil {
		m = NewMetrics(nil)
	}
	return &Handler{o: o, to: to, m: m}
}

// Filter is the topic to subscribe to.
func (h *Handler) Filter() string { return h.o.Topics.Ack() }

// Handle takes one received ack; it returns what it did, for tests (the
// caller, the broker client's subscription, ignores it).
func (h *Handler) Handle(topic string, payload []byte) error {
	body, err := protocol.Verify(h.o.Key, topic, payload)
	if err == nil {
		var a *protocol.Ack
		if a, err = protocol.DecodeAck(body); err == nil {
			return h.apply(a)
		}
	}
	reason := protocol.ReasonOf(err)
	h.m.rejected.WithLabelValues(string(reason)).Inc()
	h.o.Log.Warn().Str("reason", string(reason)).Err(err).Msg("ack refused; no evidence is released")
	return err
}

func (h *Handler) apply(a *protocol.Ack) error {
	held, unknown, err := h.to.Acknowledge(a.Passages, h.o.Now())
	if err != nil {
		// The database failed: the central system sends acks again until
		// it sees the passages deleted, or the next one covers them.
		h.o.Log.Error().Err(err).Str("ack", a.ID).Msg("ack not recorded")
		return err
	}
	h.m.acks.WithLabelValues("applied").Add(float64(held))
	h.m.acks.WithLabelValues("unknown").Add(float64(unknown))
	h.o.Log.Info().Str("ack", a.ID).Int("passages", held).Int("unknown", unknown).Msg("central system acknowledged passages")
	return nil
}
