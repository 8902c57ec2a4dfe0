// Package homeassistant publishes Home Assistant's MQTT discovery for a
// box (mqtt.home_assistant): each lane's barrier state and faults, its
// last plate and classification and its passages counted appear as
// entities of one Home Assistant device, with no configuration there.
// Discovery configs are retained on <prefix>/<component>/<node_id>/
// <object_id>/config; the states are retained under the box's own topic
// tree (P/S/D/ha/...), published on every change and at every connect.
// The entities' availability is the box's retained status with its last
// will (sync/telemetry), so Home Assistant shows them unavailable when
// the box is offline.
//
// When discovery is turned off, or a lane is removed, the configs it
// published before (remembered in a small file in the state directory)
// are removed with empty retained messages at the next connect.
//
// It only reports: Home Assistant cannot command anything through it, and
// it never blocks the lanes (publishing does not wait for the broker).
package homeassistant

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	"anprd/internal/decide"
	"anprd/internal/passage"
	"anprd/sync/protocol"

	"github.com/rs/zerolog"
)

// Sender publishes without following the delivery; *mqtt.Client is one.
type Sender interface {
	Send(topic string, qos byte, retain bool, payload []byte) error
}

// Lane is a lane as Home Assistant shows it.
type Lane struct {
	ID        string
	Name      string // default the id
	Direction string // entry or exit
	Barrier   bool   // false for a free-flow lane
}

// Options configure Discovery.
type Options struct {
	// Enabled: publish discovery; false only removes what an earlier run
	// published.
	Enabled bool
	// Prefix is Home Assistant's discovery prefix (default homeassistant).
	Prefix string
	Topics protocol.Topics
	Lanes  []Lane
	// SiteName names the device in Home Assistant; default the site id.
	SiteName string
	Version  string
	// StateFile remembers the config topics published, so that they can be
	// removed when discovery is turned off or a lane goes; "" keeps no
	// memory.
	StateFile string
	Log       zerolog.Logger
	Metrics   *Metrics
}

// Barrier states, as the barrier sensor's options.
var barrierStates = []string{"closed", "opening", "open", "closing", "fault"}

// Message is one retained message.
type Message struct {
	Topic   string
	Payload []byte
}

// Discovery publishes the configs and the states.
type Discovery struct {
	o      Options
	send   Sender
	m      *Metrics
	node   string
	config []Message // the discovery configs, in order
	stale  []string  // config topics of an earlier run to remove

	mu       sync.Mutex
	barrier  map[string]string // lane -> last state
	last     map[string][]byte // lane -> last passage state
	passages map[string]uint64 // lane -> passages since start
}

// NodeID is the discovery node id of the box: anprd_<site>_<device>.
func NodeID(t protocol.Topics) string { return "anprd_" + t.Site + "_" + t.Device }

// New builds the configs; it reads and updates the state file (an error
// there is logged: the worst it costs is an entity left in Home
// Assistant).
func New(send Sender, o Options) *Discovery {
	if o.Prefix == "" {
		o.Prefix = "homeassistant"
	}
	if o.SiteName == "" {
		o.SiteName = o.Topics.Site
	}
	m := o.Metrics
	if m == nil {
		m = NewMetrics(nil)
	}
	d := &Discovery{o: o, send: send, m: m, node: NodeID(o.Topics),
		barrier: map[string]string{}, last: map[string][]byte{}, passages: map[string]uint64{}}
	if o.Enabled {
		d.config = d.configs()
	}
	var current []string
	for _, c := range d.config {
		current = append(current, c.Topic)
	}
	for _, t := range d.remembered() {
		if !slices.Contains(current, t) {
			d.stale = append(d.stale, t)
		}
	}
	if err := d.remember(append(current, d.stale...)); err != nil {
		o.Log.Warn().Err(err).Msg("home assistant: discovery topics not remembered; turning discovery off later will not remove the entities")
	}
	return d
}

// StateTopic is where lane's state of kind (barrier, passage, passages)
// goes.
func (d *Discovery) StateTopic(lane, kind string) string {
	t := d.o.Topics
	return t.Prefix + "/" + t.Site + "/" + t.Device + "/ha/" + lane + "/" + kind
}

// Configs are the discovery configs, for tests and docs.
func (d *Discovery) Configs() []Message { return slices.Clone(d.config) }

// configs builds every entity's discovery config.
func (d *Discovery) configs() []Message {
	t := d.o.Topics
	device := map[string]any{
		"identifiers":  []string{d.node},
		"name":         "anprd " + d.o.SiteName + " " + t.Device,
		"manufacturer": "anprd",
		"model":        "ANPR gate box",
		"sw_version":   d.o.Version,
	}
	availability := []map[string]any{{
		"topic":                 t.Status(),
		"value_template":        "{{ value_json.state }}",
		"payload_available":     protocol.Online,
		"payload_not_available": protocol.Offline,
	}}
	origin := map[string]any{"name": "anprd", "sw_version": d.o.Version}
	classes := []string{"manual"}
	for _, c := range decide.Classes {
		classes = append(classes, string(c))
	}
	var out []Message
	add := func(component, lane, object, name string, extra map[string]any) {
		id := d.node + "_" + lane + "_" + object
		cfg := map[string]any{
			"name":            name,
			"unique_id":       id,
			"has_entity_name": true,
			"device":          device,
			"origin":          origin,
			"availability":    availability,
			"qos":             int(protocol.QoSAtLeastOnce),
		}
		for k, v := range extra {
			cfg[k] = v
		}
		b, _ := json.Marshal(cfg)
		out = append(out, Message{Topic: d.o.Prefix + "/" + component + "/" + d.node + "/" + lane + "_" + object + "/config", Payload: b})
	}
	for _, l := range d.o.Lanes {
		name := l.Name
		if name == "" {
			name = l.ID
		}
		if l.Barrier {
			add("sensor", l.ID, "barrier", name+" barrier", map[string]any{
				"state_topic":  d.StateTopic(l.ID, "barrier"),
				"device_class": "enum", "options": barrierStates, "icon": "mdi:boom-gate",
			})
			add("binary_sensor", l.ID, "barrier_fault", name+" barrier fault", map[string]any{
				"state_topic":    d.StateTopic(l.ID, "barrier"),
				"value_template": "{{ 'ON' if value == 'fault' else 'OFF' }}",
				"payload_on":     "ON", "payload_off": "OFF", "device_class": "problem",
			})
		}
		add("sensor", l.ID, "last_plate", name+" last plate", map[string]any{
			"state_topic":           d.StateTopic(l.ID, "passage"),
			"value_template":        "{{ value_json.plate }}",
			"json_attributes_topic": d.StateTopic(l.ID, "passage"),
			"icon":                  "mdi:car",
		})
		add("sensor", l.ID, "last_class", name+" last classification", map[string]any{
			"state_topic":    d.StateTopic(l.ID, "passage"),
			"value_template": "{{ value_json.class }}",
			"device_class":   "enum", "options": classes,
		})
		add("sensor", l.ID, "passages", name+" passages", map[string]any{
			"state_topic": d.StateTopic(l.ID, "passages"),
			"state_class": "total_increasing", "unit_of_measurement": "passages", "icon": "mdi:counter",
		})
	}
	return out
}

// Connected publishes the removals of stale configs, the configs and the
// states known; the broker client's connect hook calls it, after the
// online status.
func (d *Discovery) Connected() {
	removed := true
	for _, topic := range d.stale {
		removed = d.publish(topic, nil, "remove") && removed
	}
	if removed && len(d.stale) > 0 {
		d.stale = nil
		var current []string
		for _, c := range d.config {
			current = append(current, c.Topic)
		}
		if err := d.remember(current); err != nil {
			d.o.Log.Warn().Err(err).Msg("home assistant: state file not updated")
		}
	}
	if !d.o.Enabled {
		return
	}
	for _, c := range d.config {
		d.publish(c.Topic, c.Payload, "config")
	}
	d.mu.Lock()
	var states []Message
	for _, l := range d.o.Lanes {
		if s, ok := d.barrier[l.ID]; ok {
			states = append(states, Message{d.StateTopic(l.ID, "barrier"), []byte(s)})
		}
		if b, ok := d.last[l.ID]; ok {
			states = append(states, Message{d.StateTopic(l.ID, "passage"), b})
		}
		states = append(states, Message{d.StateTopic(l.ID, "passages"), []byte(strconv.FormatUint(d.passages[l.ID], 10))})
	}
	d.mu.Unlock()
	for _, s := range states {
		d.publish(s.Topic, s.Payload, "state")
	}
}

func (d *Discovery) publish(topic string, payload []byte, kind string) bool {
	if err := d.send.Send(topic, protocol.QoSAtLeastOnce, true, payload); err != nil {
		d.m.errors.Inc()
		return false
	}
	d.m.messages.WithLabelValues(kind).Inc()
	return true
}

// Barrier reports lane's barrier state (closed, opening, open, closing,
// fault; others are not sent). It never blocks.
func (d *Discovery) Barrier(lane, state string) {
	if !d.o.Enabled || !slices.Contains(barrierStates, state) {
		return // a state Home Assistant's enum does not know (unknown at start) is not sent
	}
	d.mu.Lock()
	d.barrier[lane] = state
	d.mu.Unlock()
	d.publish(d.StateTopic(lane, "barrier"), []byte(state), "state")
}

// PassageState is the last passage's state as Home Assistant gets it.
type PassageState struct {
	Plate     string    `json:"plate"` // "" when unread or a manual opening
	Class     string    `json:"class"` // the classification; manual for a manual opening
	Action    string    `json:"action,omitempty"`
	Gate      string    `json:"gate"`
	Passed    bool      `json:"passed"`
	Direction string    `json:"direction"`
	Time      time.Time `json:"time"`
}

// Passage reports a passage recorded at its lane. It never blocks.
func (d *Discovery) Passage(p *passage.Passage) {
	if !d.o.Enabled {
		return
	}
	st := PassageState{Class: "manual", Gate: string(p.Gate.Action), Passed: p.Gate.Passed, Direction: p.Direction, Time: p.Time}
	if p.Read != nil {
		st.Plate = p.Read.Plate
	}
	if p.Decision != nil {
		st.Class, st.Action = string(p.Decision.Class), string(p.Decision.Action)
		if st.Plate == "" {
			st.Plate = p.Decision.Plate
		}
	}
	b, _ := json.Marshal(st)
	d.mu.Lock()
	d.last[p.Lane] = b
	d.passages[p.Lane]++
	n := d.passages[p.Lane]
	d.mu.Unlock()
	d.publish(d.StateTopic(p.Lane, "passage"), b, "state")
	d.publish(d.StateTopic(p.Lane, "passages"), []byte(strconv.FormatUint(n, 10)), "state")
}

// remembered reads the config topics an earlier run published.
func (d *Discovery) remembered() []string {
	if d.o.StateFile == "" {
		return nil
	}
	b, err := os.ReadFile(d.o.StateFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	var topics []string
	if err == nil {
		err = json.Unmarshal(b, &topics)
	}
	if err != nil {
		d.o.Log.Warn().Err(err).Str("file", d.o.StateFile).Msg("home assistant: state file unreadable; ignored")
		return nil
	}
	return topics
}

// remember writes the config topics to the state file (removing it when
// there are none), through a temporary file and a rename.
func (d *Discovery) remember(topics []string) error {
	if d.o.StateFile == "" {
		return nil
	}
	if len(topics) == 0 {
		if err := os.Remove(d.o.StateFile); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		return nil
	}
	b, _ := json.Marshal(topics)
	tmp := d.o.StateFile + ".tmp"
	if err := os.WriteFile(tmp, b, 0o640); err != nil {
		return fmt.Errorf("home assistant: %w", err)
	}
	if err := os.Rename(tmp, d.o.StateFile); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("home assistant: %w", err)
	}
	return nil
}

// StateFileIn is the state file's place in the state directory.
func StateFileIn(dir string) string { return filepath.Join(dir, "homeassistant.json") }
