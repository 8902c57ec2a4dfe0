// Package uplink sends what the outbox holds to the broker: passages,
// their presence changes and their evidence images, in the order they
// were recorded, with QoS 1 and many in flight. An entry leaves the
// outbox only when the broker acknowledged it on a connection that stayed
// up; on any failure (the connection dropped, a delivery failed) the
// uplink starts again from the head of the outbox once connected, so
// everything not known to be delivered is sent again. The central system
// deduplicates by passage id (docs/protocol.md).
//
// The uplink never holds up a lane: lanes only call outbox.Record, which
// does not wait for the network. This package must not decide anything
// or read the clock except through the now it is given.
package uplink

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"anprd/internal/passage"
	"anprd/sync/outbox"
	"anprd/sync/protocol"

	"github.com/rs/zerolog"
)

// Publisher is the broker connection as the uplink uses it;
// *mqtt.Client is one.
type Publisher interface {
	// Track publishes and returns a channel closed when the delivery
	// has completed, and its outcome: nil only when the broker
	// acknowledged the message on a connection that stayed up.
	Track(topic string, qos byte, retain bool, payload []byte) (done <-chan struct{}, result func() error)
	Connected() bool
}

// Queue is the outbox as the uplink uses it; *outbox.Outbox is one.
type Queue interface {
	Next(after uint64, max int) ([]outbox.Entry, error)
	Done(seqs []uint64) error
	Wake() <-chan struct{}
}

// Images reads evidence images by their path in the evidence store.
type Images interface {
	ReadImage(path string) ([]byte, error)
}

// Options configure an Uplink.
type Options struct {
	Topics protocol.Topics
	// Images may be nil when evidence upload is off.
	Images Images
	// EvidenceMaxAge: images of passages older than this are not sent
	// (retention.evidence); they may already be deleted.
	EvidenceMaxAge time.Duration
	// Keep, if set, names the passages whose images are sent whatever
	// their age: those kept for follow-up until the central system
	// acknowledges them (outbox.Held).
	Keep func(passage.ID) bool
	// Window is the most messages in flight; default 256.
	Window int
	// Flush is how often acknowledged entries are removed from the
	// outbox (one transaction each time); default 50 ms.
	Flush   time.Duration
	Now     func() time.Time
	Log     zerolog.Logger
	Metrics *Metrics
}

// Uplink is the sending loop.
type Uplink struct {
	o    Options
	q    Queue
	pub  Publisher
	m    *Metrics
	kick chan struct{}
}

// New returns an uplink from q to pub.
func New(q Queue, pub Publisher, o Options) *Uplink {
	if o.Window <= 0 {
		o.Window = 256
	}
	if o.Flush <= 0 {
		o.Flush = 50 * time.Millisecond
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	m := o.Metrics
	if m == nil {
		m = NewMetrics(nil)
	}
	return &Uplink{o: o, q: q, pub: pub, m: m, kick: make(chan struct{}, 1)}
}

// Connected tells the uplink that a connection was made (the broker
// client's connect hook calls it), so it starts again from the head.
func (u *Uplink) Connected() {
	select {
	case u.kick <- struct{}{}:
	default:
	}
}

type inflight struct {
	seq    uint64
	kind   outbox.Kind
	done   <-chan struct{}
	result func() error
}

// errRestart ends one pass over the outbox: something was not
// acknowledged, so the next connection sends from the head again.
// errReconnected: a new connection was made during the pass; start
// again at once.
var (
	errRestart     = errors.New("restart")
	errReconnected = errors.New("reconnected")
)

// Run sends until ctx ends. On the way out it waits briefly for the
// messages in flight and removes the acknowledged ones, so a clean
// shutdown sends as little twice as it can.
func (u *Uplink) Run(ctx context.Context) error {
	retry := time.NewTimer(0)
	defer retry.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-u.kick:
		case <-retry.C:
		}
		if !u.pub.Connected() {
			retry.Reset(time.Second)
			continue
		}
		err := u.pass(ctx)
		if ctx.Err() != nil {
			return nil
		}
		u.m.restarts.Inc()
		if errors.Is(err, errReconnected) {
			retry.Reset(0)
			continue
		}
		if err != nil && !errors.Is(err, errRestart) {
			// The outbox could not be read or written: say so, and try
			// again after a pause rather than spin.
			u.o.Log.Error().Err(err).Msg("uplink: outbox error")
		}
		retry.Reset(time.Second)
	}
}

// pass sends from the head of the outbox until something fails or ctx
// ends.
func (u *Uplink) pass(ctx context.Context) error {
	var after uint64
	var fifo []inflight
	var acked []uint64
	flush := time.NewTicker(u.o.Flush)
	defer flush.Stop()
	done := func() error {
		if len(acked) == 0 {
			return nil
		}
		err := u.q.Done(acked)
		acked = acked[:0]
		return err
	}
	defer done()
	more := true // the outbox may hold entries after "after"
	for {
		// Fill the window.
		if more && len(fifo) < u.o.Window {
			want := u.o.Window - len(fifo)
			es, err := u.q.Next(after, want)
			if err != nil {
				return err
			}
			more = len(es) == want
			for _, e := range es {
				after = e.Seq
				topic, payload, skip := u.message(e)
				if skip != "" {
					u.m.skipped.WithLabelValues(skip).Inc()
					acked = append(acked, e.Seq)
					continue
				}
				done, result := u.pub.Track(topic, protocol.QoSAtLeastOnce, false, payload)
				fifo = append(fifo, inflight{seq: e.Seq, kind: e.Kind, done: done, result: result})
				u.m.published.WithLabelValues(e.Kind.String()).Inc()
			}
		}
		u.m.inflight.Set(float64(len(fifo)))
		var head <-chan struct{}
		if len(fifo) > 0 {
			head = fifo[0].done
		}
		select {
		case <-ctx.Done():
			u.drain(fifo, &acked)
			return ctx.Err()
		case <-head:
			// Take every completed delivery at the head, in order: an
			// entry is acknowledged only if all before it were, so what
			// stays in the outbox is always sent again in order.
			for len(fifo) > 0 {
				select {
				case <-fifo[0].done:
				default:
					goto next
				}
				if err := fifo[0].result(); err != nil {
					u.m.failed.Inc()
					u.o.Log.Debug().Err(err).Uint64("seq", fifo[0].seq).Int("in_flight", len(fifo)).Msg("uplink: delivery not acknowledged; will send again")
					return errRestart
				}
				acked = append(acked, fifo[0].seq)
				u.m.delivered.WithLabelValues(fifo[0].kind.String()).Inc()
				fifo = fifo[1:]
			}
		next:
			if len(acked) >= u.o.Window {
				if err := done(); err != nil {
					return err
				}
			}
			more = true
		case <-u.q.Wake():
			more = true
		case <-u.kick:
			// A new connection while this pass still runs: the old one
			// is gone, so start again from the head.
			return errReconnected
		case <-flush.C:
			if err := done(); err != nil {
				return err
			}
			if len(fifo) == 0 && !u.pub.Connected() {
				return errRestart
			}
		}
	}
}

// drain waits up to a second for the deliveries in flight at shutdown
// and keeps the acknowledged prefix.
func (u *Uplink) drain(fifo []inflight, acked *[]uint64) {
	deadline := time.NewTimer(time.Second)
	defer deadline.Stop()
	for _, f := range fifo {
		select {
		case <-f.done:
		case <-deadline.C:
			return
		}
		if f.result() != nil {
			return
		}
		*acked = append(*acked, f.seq)
		u.m.delivered.WithLabelValues(f.kind.String()).Inc()
	}
}

// message is an entry's topic and payload, or why it is skipped.
func (u *Uplink) message(e outbox.Entry) (topic string, payload []byte, skip string) {
	t := u.o.Topics
	switch e.Kind {
	case outbox.KindPassage:
		return t.Passage(), e.Data, ""
	case outbox.KindPresence:
		return t.Presence(), e.Data, ""
	case outbox.KindPlate, outbox.KindScene:
		kind := protocol.EvidencePlate
		if e.Kind == outbox.KindScene {
			kind = protocol.EvidenceScene
		}
		if u.o.Images == nil {
			return "", nil, "off"
		}
		if u.o.EvidenceMaxAge > 0 && u.o.Now().Sub(e.ID.Time()) > u.o.EvidenceMaxAge && (u.o.Keep == nil || !u.o.Keep(e.ID)) {
			return "", nil, "expired"
		}
		img, err := u.o.Images.ReadImage(string(e.Data))
		if err != nil {
			if !errors.Is(err, fs.ErrNotExist) {
				u.o.Log.Warn().Err(err).Str("passage", e.ID.String()).Msg("uplink: evidence image unreadable; not sent")
				return "", nil, "unreadable"
			}
			return "", nil, "missing"
		}
		if len(img) > protocol.MaxPayload {
			return "", nil, "too_large"
		}
		return t.Evidence(e.ID, kind), img, ""
	}
	u.o.Log.Error().Str("kind", fmt.Sprint(e.Kind)).Uint64("seq", e.Seq).Msg("uplink: outbox entry of unknown kind; dropped")
	return "", nil, "unknown"
}
