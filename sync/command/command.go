// Package command carries out the central system's commands to a box:
// open a lane's barrier (for an operator, with a reason), request a
// permit resync, ping. Every command must be signed by the central system
// for this box's topic; one issued longer ago than the configured age, or
// whose id was seen before, is refused as a replay. Each accepted or
// refused command gets a reply; an opening is audited as a passage of its
// own (kind manual, source remote) through the outbox.
//
// Messages that are not correctly signed get no reply (their id cannot
// be trusted): they are counted and logged, and nothing happens. This
// package decides nothing about access and drives no hardware itself: it
// asks the lane's Opener.
package command

import (
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"anprd/internal/passage"
	"anprd/sync/protocol"

	"github.com/rs/zerolog"
	bolt "go.etcd.io/bbolt"
)

// Opener opens a lane's barrier. The lane code implements it; Open
// returns once the open command has gone to the barrier (or could not),
// without waiting for a vehicle. It must refuse a lane it does not know
// or that has no barrier. recorded says whether it recorded the opening
// as a manual passage itself (the lane does: it knows which vehicle went
// through on it, which must not count as a tailgater); when it did not,
// the handler records the audit passage.
type Opener interface {
	Open(ctx context.Context, lane string, m passage.ManualOpen) (recorded bool, err error)
}

// Recorder keeps a passage for upload; *outbox.Outbox is one.
type Recorder interface {
	Record(passage.Passage) error
}

// Resyncer asks for permit data; *permitsync.Sync is one.
type Resyncer interface {
	Resync(detail string)
}

// Sender publishes a reply; *mqtt.Client is one.
type Sender interface {
	Send(topic string, qos byte, retain bool, payload []byte) error
}

// Lane is what an audit passage needs to know of a lane.
type Lane struct {
	ID        string
	Direction string // entry or exit
}

// Options configure a Handler.
type Options struct {
	Topics protocol.Topics
	// Key is the central system's public key; nil refuses everything.
	Key ed25519.PublicKey
	// MaxAge: a command issued longer ago is refused; so is one issued
	// further ahead than this (a clock far off is no better).
	MaxAge time.Duration
	Lanes  []Lane
	Opener Opener
	// IDs makes the audit passages' ids; the lanes' generator, so the ids
	// of one box stay in order.
	IDs      *passage.Generator
	Recorder Recorder
	Resync   Resyncer
	// Ping reports the permit sequence and the outbox backlog for a reply.
	Ping func() (seq uint64, outbox int)
	// OpenTimeout bounds one opening; default 5 s.
	OpenTimeout time.Duration
	Now         func() time.Time
	Log         zerolog.Logger
	Metrics     *Metrics
}

// Handler carries out commands.
type Handler struct {
	o     Options
	db    *bolt.DB
	send  Sender
	m     *Metrics
	lanes map[string]Lane
}

// Bucket holds the ids of the commands seen, made by migration 4 in
// internal/state: id -> issued (unix nanoseconds).
var Bucket = []byte("commands")

// New returns a handler that remembers command ids in db.
func New(db *bolt.DB, send Sender, o Options) (*Handler, error) {
	if o.MaxAge <= 0 {
		return nil, errors.New("command: MaxAge is required")
	}
	if o.IDs == nil || o.Recorder == nil {
		return nil, errors.New("command: IDs and Recorder are required")
	}
	if o.OpenTimeout <= 0 {
		o.OpenTimeout = 5 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	err := db.View(func(tx *bolt.Tx) error {
		if tx.Bucket(Bucket) == nil {
			return errors.New("command: bucket missing; the state migrations have not run")
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	m := o.Metrics
	if m == nil {
		m = NewMetrics(nil)
	}
	h := &Handler{o: o, db: db, send: send, m: m, lanes: map[string]Lane{}}
	for _, l := range o.Lanes {
		h.lanes[l.ID] = l
	}
	return h, nil
}

// Filter is the topic to subscribe to.
func (h *Handler) Filter() string { return h.o.Topics.Command() }

// Handle takes one received command. It is called from one goroutine, in
// the order the commands came.
func (h *Handler) Handle(ctx context.Context, topic string, payload []byte) {
	body, err := protocol.Verify(h.o.Key, topic, payload)
	if err != nil {
		h.refuse(nil, err)
		return
	}
	c, err := protocol.DecodeCommand(body)
	if err != nil {
		// Signed, so its id can be trusted enough to answer.
		var loose struct {
			ID   string               `json:"id"`
			Type protocol.CommandType `json:"type"`
		}
		json.Unmarshal(body, &loose)
		var cc *protocol.Command
		if loose.ID != "" && len(loose.ID) <= 64 {
			cc = &protocol.Command{ID: loose.ID, Type: loose.Type}
		}
		h.refuse(cc, err)
		return
	}
	now := h.o.Now()
	switch age := now.Sub(c.Issued); {
	case age > h.o.MaxAge:
		h.refuse(c, &protocol.Reject{Reason: protocol.RejectExpired, Err: fmt.Errorf("issued %v ago; commands are good for %v", age.Round(time.Second), h.o.MaxAge)})
		return
	case -age > h.o.MaxAge:
		h.refuse(c, &protocol.Reject{Reason: protocol.RejectExpired, Err: fmt.Errorf("issued %v in the future; is a clock wrong?", (-age).Round(time.Second))})
		return
	}
	if err := h.remember(c, now); err != nil {
		h.refuse(c, err)
		return
	}
	h.carryOut(ctx, c, now)
}

// remember records c's id, or refuses it as replayed, in one write
// transaction, before the command is carried out: a crash in between
// cannot let it run twice. Ids older than twice the maximum age are
// forgotten (a command that old is refused by its age anyway).
func (h *Handler) remember(c *protocol.Command, now time.Time) error {
	return h.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(Bucket)
		if v := b.Get([]byte(c.ID)); v != nil {
			first := time.Unix(0, int64(binary.BigEndian.Uint64(v)))
			return &protocol.Reject{Reason: protocol.RejectReplayed, Err: fmt.Errorf("command %s was received before (issued %s)", c.ID, first.UTC().Format(time.RFC3339))}
		}
		cutoff := now.Add(-2 * h.o.MaxAge).UnixNano()
		var old [][]byte
		cur := b.Cursor()
		for k, v := cur.First(); k != nil; k, v = cur.Next() {
			if len(v) == 8 && int64(binary.BigEndian.Uint64(v)) < cutoff {
				old = append(old, append([]byte(nil), k...))
			}
		}
		for _, k := range old {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		return b.Put([]byte(c.ID), binary.BigEndian.AppendUint64(nil, uint64(c.Issued.UnixNano())))
	})
}

func (h *Handler) carryOut(ctx context.Context, c *protocol.Command, now time.Time) {
	r := protocol.Reply{Command: c.ID, Type: c.Type, Status: protocol.ReplyDone}
	log := h.o.Log.Info().Str("command", c.ID).Str("type", string(c.Type))
	switch c.Type {
	case protocol.CommandOpen:
		r.Passage, r.Error = h.open(ctx, c, now)
		if r.Error != "" {
			r.Status = protocol.ReplyFailed
		}
		log = log.Str("lane", c.Lane).Str("operator", c.Operator).Str("reason", c.Reason).Str("passage", r.Passage)
	case protocol.CommandResync:
		if h.o.Resync == nil {
			r.Status, r.Error = protocol.ReplyFailed, "permit sync is not running on this box"
		} else {
			h.o.Resync.Resync("command " + c.ID)
		}
	case protocol.CommandPing:
	}
	if h.o.Ping != nil {
		r.Seq, r.Outbox = h.o.Ping()
	}
	h.m.commands.WithLabelValues(string(c.Type), string(r.Status)).Inc()
	if r.Error != "" {
		log = log.Str("error", r.Error)
	}
	log.Str("status", string(r.Status)).Msg("command carried out")
	h.reply(r)
}

// open opens the lane's barrier and records the audit passage; it
// returns the passage id and an error text.
func (h *Handler) open(ctx context.Context, c *protocol.Command, now time.Time) (string, string) {
	l, ok := h.lanes[c.Lane]
	if !ok {
		return "", fmt.Sprintf("no lane %q on this box", c.Lane)
	}
	if h.o.Opener == nil {
		return "", "this box has no barrier control running"
	}
	manual := passage.ManualOpen{Source: "remote", Operator: c.Operator, Reason: c.Reason, Command: c.ID}
	octx, cancel := context.WithTimeout(ctx, h.o.OpenTimeout)
	recorded, err := h.o.Opener.Open(octx, c.Lane, manual)
	cancel()
	if recorded {
		// The lane's own manual passage is the audit record.
		if err != nil {
			return "", "the barrier did not open: " + err.Error()
		}
		return "", ""
	}
	at := h.o.Now()
	p := passage.Passage{
		ID: h.o.IDs.New(at), Site: h.o.Topics.Site, Device: h.o.Topics.Device, Lane: l.ID, Direction: l.Direction,
		Kind: passage.Manual, Time: at,
		Gate:    passage.Gate{Action: passage.Opened},
		Timings: passage.Timings{Command: at},
		Manual:  &manual,
	}
	msg := ""
	if err != nil {
		p.Gate = passage.Gate{Action: passage.Failed, Fault: err.Error()}
		p.Timings.Command = time.Time{}
		msg = "the barrier did not open: " + err.Error()
	}
	if rerr := h.o.Recorder.Record(p); rerr != nil {
		// The opening happened (or failed) all the same; the reply and
		// the log are then its only record.
		h.o.Log.Error().Err(rerr).Str("command", c.ID).Msg("audit passage of a remote opening not recorded")
		if msg == "" {
			msg = "opened, but the audit passage was not recorded: " + rerr.Error()
		}
		return "", msg
	}
	return p.ID.String(), msg
}

func (h *Handler) refuse(c *protocol.Command, err error) {
	reason := protocol.ReasonOf(err)
	h.m.rejected.WithLabelValues(string(reason)).Inc()
	ev := h.o.Log.Warn().Str("reason", string(reason)).Err(err)
	if c == nil {
		ev.Msg("command refused (no reply: not signed by the central system)")
		return
	}
	ev.Str("command", c.ID).Str("type", string(c.Type)).Msg("command refused")
	h.reply(protocol.Reply{Command: c.ID, Type: c.Type, Status: protocol.ReplyRefused, Reason: string(reason), Error: err.Error()})
}

func (h *Handler) reply(r protocol.Reply) {
	r.Time = h.o.Now()
	b, _ := json.Marshal(r)
	if err := h.send.Send(h.o.Topics.Reply(), protocol.QoSAtLeastOnce, false, b); err != nil {
		h.o.Log.Warn().Err(err).Str("command", r.Command).Msg("command reply not sent")
	}
}
