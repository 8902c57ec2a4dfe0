// Package protocol is anprd's MQTT protocol with the operator's central
// system, as docs/protocol.md describes it: the topic tree, every message
// as a Go type, the signed envelope that central-to-edge messages travel
// in, and the strict decoding of everything that arrives. The schema files
// in docs/schema are derived from these types and checked by this
// package's tests.
//
// It is pure Go and must not do I/O: no broker client (paho lives in
// sync/mqtt), no database, no clock (callers pass the time). Everything
// that decodes outside input is bounded (MaxPayload) and fuzzed.
package protocol

import (
	"time"

	"anprd/internal/health"
	"anprd/internal/passage"
	"anprd/internal/presence"
)

// Version is the protocol version, the last level of the default topic
// prefix (anpr/v1) and the "v" of signed envelopes.
const Version = 1

// MaxPayload bounds every message anprd accepts. A snapshot chunk of
// 10,000 permits is about 2.5 MB; anything larger is refused before it is
// parsed. The broker should refuse larger messages itself
// (message_size_limit), since the client has read one whole by then.
const MaxPayload = 4 << 20

// QoS of each kind of message. Everything that must arrive is QoS 1
// (at least once, deduplicated by id); the heartbeat is QoS 0 because the
// next one replaces it.
const (
	QoSAtLeastOnce byte = 1
	QoSHeartbeat   byte = 0
)

// Topics is the topic tree of one box. Edge-to-central topics are under
// Prefix/Site/Device; central-to-edge topics are under .../to/, so broker
// access rules can give a box write access to its own tree without the
// to/ branch, and the central system write access to to/ only. Site-wide
// messages use the device level "_all", which no device id can be (ids
// start with a letter or digit).
type Topics struct {
	Prefix, Site, Device string
}

// AllDevices is the device level of site-wide central-to-edge topics.
const AllDevices = "_all"

func (t Topics) dev(rest string) string { return t.Prefix + "/" + t.Site + "/" + t.Device + "/" + rest }

// Edge to central.

// Passage is where passages go (JSON Passage).
func (t Topics) Passage() string { return t.dev("passage") }

// Evidence is where an evidence image of passage id goes (JPEG bytes);
// kind is EvidencePlate or EvidenceScene.
func (t Topics) Evidence(id passage.ID, kind string) string {
	return t.dev("evidence/" + id.String() + "/" + kind)
}

// Evidence kinds, the last level of an evidence topic.
const (
	EvidencePlate = "plate"
	EvidenceScene = "scene"
)

// Presence is where this box's presence changes go (JSON Presence).
func (t Topics) Presence() string { return t.dev("presence") }

// Status is the retained online/offline status (JSON Status), also the
// last will.
func (t Topics) Status() string { return t.dev("status") }

// Heartbeat is the periodic health report (JSON Heartbeat).
func (t Topics) Heartbeat() string { return t.dev("heartbeat") }

// Event is where lane, camera and barrier state changes go (JSON Event).
func (t Topics) Event() string { return t.dev("event") }

// SyncState is the retained permit sync state (JSON SyncState).
func (t Topics) SyncState() string { return t.dev("sync/state") }

// SyncRequest is where the box asks for permit data (JSON SyncRequest).
func (t Topics) SyncRequest() string { return t.dev("sync/request") }

// Reply is where command replies go (JSON Reply).
func (t Topics) Reply() string { return t.dev("reply") }

// Central to edge, each a signed envelope.

// SiteDelta carries deltas for every box of the site.
func (t Topics) SiteDelta() string {
	return t.Prefix + "/" + t.Site + "/" + AllDevices + "/to/sync/delta"
}

// Delta carries deltas for this box only (a catch-up after a request).
func (t Topics) Delta() string { return t.dev("to/sync/delta") }

// Snapshot carries the chunks of a full snapshot for this box.
func (t Topics) Snapshot() string { return t.dev("to/sync/snapshot") }

// Command carries commands for this box.
func (t Topics) Command() string { return t.dev("to/command") }

// Ack carries the central system's acknowledgements of this box's
// passages (JSON Ack in a signed envelope).
func (t Topics) Ack() string { return t.dev("to/ack") }

// Between boxes.

// PeerPresence is the filter for the presence changes of every box of
// the site (this box's own are ignored by device).
func (t Topics) PeerPresence() string { return t.Prefix + "/" + t.Site + "/+/presence" }

// DeviceOf returns the device level of a topic under this site, or "".
func (t Topics) DeviceOf(topic string) string {
	rest, ok := cutPrefix(topic, t.Prefix+"/"+t.Site+"/")
	if !ok {
		return ""
	}
	for i := 0; i < len(rest); i++ {
		if rest[i] == '/' {
			return rest[:i]
		}
	}
	return ""
}

func cutPrefix(s, p string) (string, bool) {
	if len(s) < len(p) || s[:len(p)] != p {
		return s, false
	}
	return s[len(p):], true
}

// Status is the retained message on the status topic. The box publishes
// State online when it connects and offline (Reason shutdown) before a
// clean disconnect; the broker publishes the will, State offline with
// Reason connection_lost, when the connection drops.
type Status struct {
	State        string    `json:"state"` // online or offline
	Reason       string    `json:"reason,omitempty"`
	Site         string    `json:"site"`
	Device       string    `json:"device"`
	Time         time.Time `json:"time,omitzero"` // absent in the will
	Version      string    `json:"version,omitempty"`
	Started      time.Time `json:"started,omitzero"`
	ConfigDigest string    `json:"config_digest,omitempty"`
}

// Status states and reasons.
const (
	Online         = "online"
	Offline        = "offline"
	ReasonShutdown = "shutdown"
	ReasonLost     = "connection_lost"
)

// Heartbeat is the periodic health report.
type Heartbeat struct {
	Time          time.Time       `json:"time"`
	Site          string          `json:"site"`
	Device        string          `json:"device"`
	UptimeSeconds float64         `json:"uptime_seconds"`
	Ready         bool            `json:"ready"`
	Components    []health.Status `json:"components"`
	Outbox        OutboxState     `json:"outbox"`
	Sync          SyncState       `json:"sync"`
	Connects      uint64          `json:"connects"` // successful connections since start
}

// OutboxState is the upload backlog.
type OutboxState struct {
	Passages         int     `json:"passages"` // waiting for upload
	Entries          int     `json:"entries"`  // messages waiting: passages, presence changes, images
	OldestAgeSeconds float64 `json:"oldest_age_seconds"`
	Max              int     `json:"max"`
	Dropped          uint64  `json:"dropped"` // passages given up since start because the outbox was full
}

// Event is a change of state of a lane, its camera or its barrier.
type Event struct {
	Time   time.Time `json:"time"`
	Lane   string    `json:"lane"`
	Part   Part      `json:"part"`
	State  string    `json:"state"` // e.g. ok, degraded, failed; open, closed, fault
	Detail string    `json:"detail,omitempty"`
}

// Part is what an Event is about.
type Part string

const (
	PartLane    Part = "lane"
	PartCamera  Part = "camera"
	PartBarrier Part = "barrier"
)

// SyncState is where the box's permit data stands.
type SyncState struct {
	Time time.Time `json:"time,omitzero"`
	// Seq is the last delta or snapshot applied; 0 for none.
	Seq uint64 `json:"seq"`
	// Loading is a snapshot being received, if any.
	Loading *Loading `json:"loading,omitempty"`
	// Waiting: the box has asked for a resync and not yet had it.
	Waiting string `json:"waiting,omitempty"`
}

// Loading is the progress of a snapshot.
type Loading struct {
	Snapshot string `json:"snapshot"`
	Seq      uint64 `json:"seq"`
	Chunks   int    `json:"chunks"`
	Received int    `json:"received"`
}

// SyncRequest asks the central system for permit data after Seq: the
// deltas that follow it, or a snapshot. The box sends one after every
// connect (Reason connect), on a gap, a bad snapshot, a restart during a
// snapshot, and on a resync command.
type SyncRequest struct {
	Time   time.Time `json:"time"`
	Seq    uint64    `json:"seq"`
	Reason string    `json:"reason"`
	Detail string    `json:"detail,omitempty"`
}

// Sync request reasons.
const (
	RequestConnect  = "connect"
	RequestGap      = "gap"
	RequestSnapshot = "snapshot_failed"
	RequestCommand  = "command"
)

// Presence is one box's presence change, for the site's other boxes.
type Presence struct {
	Passage  passage.ID        `json:"passage"` // the passage that made it
	Device   string            `json:"device"`
	Time     time.Time         `json:"time"`
	Facility string            `json:"facility"`
	Enter    *presence.Vehicle `json:"enter,omitempty"`
	Leave    string            `json:"leave,omitempty"`
}

// PresenceOf is the presence message of p, or nil when p changed nothing.
func PresenceOf(p *passage.Passage) *Presence {
	if p.Presence == nil {
		return nil
	}
	return &Presence{Passage: p.ID, Device: p.Device, Time: p.Time, Facility: p.Presence.Facility,
		Enter: p.Presence.Enter, Leave: p.Presence.Leave}
}

// Command is an order from the central system, in a signed envelope.
type Command struct {
	ID     string      `json:"id"`
	Type   CommandType `json:"type"`
	Issued time.Time   `json:"issued"`
	// Open: the lane, who gives the order and why; all required.
	Lane     string `json:"lane,omitempty"`
	Operator string `json:"operator,omitempty"`
	Reason   string `json:"reason,omitempty"`
}

// CommandType is what a command asks for.
type CommandType string

const (
	CommandOpen   CommandType = "open"
	CommandResync CommandType = "resync"
	CommandPing   CommandType = "ping"
)

// Reply answers one command.
type Reply struct {
	Command string      `json:"command"` // the command's id
	Type    CommandType `json:"type"`
	Time    time.Time   `json:"time"`
	Status  ReplyStatus `json:"status"`
	// Refused: why (one of the Reject reasons, e.g. expired, replayed).
	Reason string `json:"reason,omitempty"`
	Error  string `json:"error,omitempty"`
	// Open: the audit passage recorded for the opening.
	Passage string `json:"passage,omitempty"`
	// Ping and resync: the permit sequence and the outbox backlog.
	Seq    uint64 `json:"seq,omitempty"`
	Outbox int    `json:"outbox,omitempty"`
}

// ReplyStatus is how a command ended.
type ReplyStatus string

const (
	ReplyDone    ReplyStatus = "done"
	ReplyFailed  ReplyStatus = "failed"  // accepted but could not be carried out
	ReplyRefused ReplyStatus = "refused" // not accepted (too old, reused id, invalid)
)

// Ack is the central system's word that it has done with passages of
// this box: it has stored them and, for a passage that leads to a charge
// or a sanction, taken what it needs of its evidence. Until then the box
// keeps such a passage's images and plate past retention.evidence; after
// it the normal retention applies. Acks are idempotent: one repeated, or
// naming a passage the box no longer holds, changes nothing.
type Ack struct {
	ID       string       `json:"id"` // the central system's id of this ack, for logs
	Issued   time.Time    `json:"issued"`
	Passages []passage.ID `json:"passages"` // 1..MaxAckPassages
}

// MaxAckPassages bounds one ack.
const MaxAckPassages = 10000
