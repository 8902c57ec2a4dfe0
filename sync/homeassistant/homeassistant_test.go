package homeassistant_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sync"
	"testing"
	"time"

	"anprd/internal/decide"
	"anprd/internal/passage"
	"anprd/sync/homeassistant"
	"anprd/sync/mqtt"
	"anprd/sync/mqtt/mqtttest"
	"anprd/sync/protocol"
	"anprd/sync/telemetry"

	"github.com/rs/zerolog"
)

var (
	topics = protocol.Topics{Prefix: "anpr/v1", Site: "oslo-p1", Device: "box-1"}
	lanes  = []homeassistant.Lane{{ID: "in-1", Name: "Entrance", Direction: "entry", Barrier: true}, {ID: "ff-1", Direction: "exit"}}
	t0     = time.Date(2026, 11, 24, 8, 0, 0, 0, time.UTC)
)

// watcher plays Home Assistant: it subscribes to the discovery prefix and
// the box's tree and keeps the last message of each topic.
type watcher struct {
	mu   sync.Mutex
	last map[string]mqtt.Received
	all  []mqtt.Received
}

func watch(t *testing.T, b *mqtttest.Broker, id string) *watcher {
	t.Helper()
	w := &watcher{last: map[string]mqtt.Received{}}
	c, err := mqtt.New(mqtt.Options{Broker: b.URL, ClientID: id, Log: zerolog.Nop(), MinBackoff: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	c.Subscribe("ha", 1, 8<<20, func(r mqtt.Received) {
		w.mu.Lock()
		w.last[r.Topic] = r
		w.all = append(w.all, r)
		w.mu.Unlock()
	}, "homeassistant/#", "anpr/v1/oslo-p1/box-1/#")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { c.Run(ctx, nil); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return w
}

func (w *watcher) wait(t *testing.T, what string, ok func(map[string]mqtt.Received) bool) map[string]mqtt.Received {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		w.mu.Lock()
		snap := map[string]mqtt.Received{}
		for k, v := range w.last {
			snap[k] = v
		}
		w.mu.Unlock()
		if ok(snap) {
			return snap
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s; have %d topics", what, len(snap))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// box runs a box's broker connection with its telemetry (status and last
// will) and the discovery, until the returned stop is called.
func box(t *testing.T, b *mqtttest.Broker, o homeassistant.Options) (*homeassistant.Discovery, func()) {
	t.Helper()
	mo := mqtt.Options{Broker: b.URL, ClientID: "box-1", Log: zerolog.Nop(), MinBackoff: 20 * time.Millisecond}
	wt, wp := telemetry.Will(topics)
	mo.Will = &mqtt.Message{Topic: wt, QoS: 1, Retain: true, Payload: wp}
	c, err := mqtt.New(mo)
	if err != nil {
		t.Fatal(err)
	}
	tel := telemetry.New(c, telemetry.Options{Topics: topics, Started: t0, Log: zerolog.Nop()})
	ha := homeassistant.New(c, o)
	c.OnConnect(tel.Connected)
	c.OnConnect(ha.Connected)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { c.Run(ctx, tel.Offline); close(done) }()
	deadline := time.Now().Add(10 * time.Second)
	for !c.Connected() {
		if time.Now().After(deadline) {
			t.Fatal("box did not connect")
		}
		time.Sleep(10 * time.Millisecond)
	}
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			cancel()
			<-done
		}
	}
	t.Cleanup(stop)
	return ha, stop
}

var configTopic = regexp.MustCompile(`^homeassistant/(sensor|binary_sensor)/anprd_oslo-p1_box-1/([a-zA-Z0-9_-]+)/config$`)

// haConfig is what Home Assistant reads of a discovery config.
type haConfig struct {
	Name          string   `json:"name"`
	UniqueID      string   `json:"unique_id"`
	StateTopic    string   `json:"state_topic"`
	ValueTemplate string   `json:"value_template"`
	DeviceClass   string   `json:"device_class"`
	Options       []string `json:"options"`
	StateClass    string   `json:"state_class"`
	PayloadOn     string   `json:"payload_on"`
	PayloadOff    string   `json:"payload_off"`
	HasEntityName bool     `json:"has_entity_name"`
	Device        struct {
		Identifiers  []string `json:"identifiers"`
		Name         string   `json:"name"`
		Manufacturer string   `json:"manufacturer"`
		Model        string   `json:"model"`
		SWVersion    string   `json:"sw_version"`
	} `json:"device"`
	Origin struct {
		Name string `json:"name"`
	} `json:"origin"`
	Availability []struct {
		Topic         string `json:"topic"`
		ValueTemplate string `json:"value_template"`
		Available     string `json:"payload_available"`
		NotAvailable  string `json:"payload_not_available"`
	} `json:"availability"`
}

// TestDiscoveryThroughBroker: the discovery configs and the states arrive
// retained at a Home Assistant that subscribes later, parse as Home
// Assistant reads them, tie the entities to the box's status, and keep
// their unique ids from run to run; turned off, the box removes them.
func TestDiscoveryThroughBroker(t *testing.T) {
	b := mqtttest.Start(t, mqtttest.Options{})
	stateFile := filepath.Join(t.TempDir(), "homeassistant.json")
	o := homeassistant.Options{Enabled: true, Prefix: "homeassistant", Topics: topics, Lanes: lanes, SiteName: "Oslo P1", Version: "v1.2.3", StateFile: stateFile, Log: zerolog.Nop()}
	ha, stop := box(t, b, o)
	ha.Barrier("in-1", "closed")
	ha.Barrier("in-1", "opening")
	ha.Barrier("in-1", "unknown") // not one of the sensor's options: not sent
	d, _ := passage.FromDecision(decide.Decision{Class: decide.PermitInUse, Action: decide.OpenCharge, Plate: "EL43210"})
	ha.Passage(&passage.Passage{Lane: "in-1", Direction: "entry", Kind: passage.Vehicle, Time: t0, Read: &passage.Read{Plate: "EL43210"},
		Decision: d, Gate: passage.Gate{Action: passage.Opened, Passed: true}})
	ha.Passage(&passage.Passage{Lane: "in-1", Direction: "entry", Kind: passage.Manual, Time: t0, Manual: &passage.ManualOpen{Source: "button"},
		Gate: passage.Gate{Action: passage.Opened}})

	// Home Assistant starts afterwards: everything it needs is retained.
	w := watch(t, b, "home-assistant")
	got := w.wait(t, "configs and states", func(m map[string]mqtt.Received) bool {
		n := 0
		for k := range m {
			if configTopic.MatchString(k) {
				n++
			}
		}
		return n == 8 && string(m[ha.StateTopic("in-1", "passages")].Payload) == "2" && string(m[ha.StateTopic("in-1", "barrier")].Payload) == "opening" &&
			m[topics.Status()].Payload != nil
	})
	var status protocol.Status
	if err := json.Unmarshal(got[topics.Status()].Payload, &status); err != nil || status.State != protocol.Online {
		t.Fatalf("status %s", got[topics.Status()].Payload)
	}
	ids := map[string]bool{}
	for topic, r := range got {
		m := configTopic.FindStringSubmatch(topic)
		if m == nil {
			continue
		}
		if !r.Retain {
			t.Errorf("%s not retained", topic)
		}
		var c haConfig
		if err := json.Unmarshal(r.Payload, &c); err != nil {
			t.Fatalf("%s: %v", topic, err)
		}
		if c.UniqueID == "" || ids[c.UniqueID] || c.UniqueID != "anprd_oslo-p1_box-1_"+m[2] {
			t.Errorf("%s: unique_id %q missing, repeated or not the object id", topic, c.UniqueID)
		}
		ids[c.UniqueID] = true
		if c.Name == "" || !c.HasEntityName || c.Origin.Name != "anprd" {
			t.Errorf("%s: name %q, has_entity_name %v, origin %q", topic, c.Name, c.HasEntityName, c.Origin.Name)
		}
		if len(c.Device.Identifiers) != 1 || c.Device.Identifiers[0] != "anprd_oslo-p1_box-1" || c.Device.Name != "anprd Oslo P1 box-1" ||
			c.Device.Manufacturer == "" || c.Device.SWVersion != "v1.2.3" {
			t.Errorf("%s: device %+v", topic, c.Device)
		}
		if len(c.Availability) != 1 || c.Availability[0].Topic != topics.Status() || c.Availability[0].ValueTemplate != "{{ value_json.state }}" ||
			c.Availability[0].Available != "online" || c.Availability[0].NotAvailable != "offline" {
			t.Errorf("%s: availability %+v", topic, c.Availability)
		}
		st, ok := got[c.StateTopic]
		if !ok && c.StateTopic == ha.StateTopic("ff-1", "passage") {
			continue // no passage there yet: Home Assistant shows unknown
		}
		if !ok || !st.Retain {
			t.Errorf("%s: state topic %q has no retained state", topic, c.StateTopic)
			continue
		}
		// What Home Assistant would show, rendering the template as far as
		// these simple ones go.
		value := string(st.Payload)
		switch c.ValueTemplate {
		case "":
		case "{{ value_json.plate }}", "{{ value_json.class }}":
			var ps map[string]any
			if err := json.Unmarshal(st.Payload, &ps); err != nil {
				t.Fatalf("%s: state %s: %v", topic, st.Payload, err)
			}
			value, _ = ps[c.ValueTemplate[len("{{ value_json."):len(c.ValueTemplate)-3]].(string)
		case "{{ 'ON' if value == 'fault' else 'OFF' }}":
			value = map[bool]string{true: "ON", false: "OFF"}[value == "fault"]
		default:
			t.Errorf("%s: template %q not understood by this test", topic, c.ValueTemplate)
		}
		switch {
		case c.DeviceClass == "enum" && !slices.Contains(c.Options, value):
			t.Errorf("%s: state %q not among its options %v", topic, value, c.Options)
		case m[1] == "binary_sensor" && value != c.PayloadOn && value != c.PayloadOff:
			t.Errorf("%s: binary state %q", topic, value)
		}
	}
	if len(ids) != 8 {
		t.Errorf("%d entities, want 5 for the barrier lane and 3 for the free-flow lane", len(ids))
	}
	var last homeassistant.PassageState
	json.Unmarshal(got[ha.StateTopic("in-1", "passage")].Payload, &last)
	if last.Class != "manual" || last.Plate != "" {
		t.Errorf("last passage %+v, want the manual opening", last)
	}

	// unique ids are the same in the next run.
	again := homeassistant.New(nil, homeassistant.Options{Enabled: true, Topics: topics, Lanes: lanes, Version: "v9"})
	for _, c := range again.Configs() {
		var hc haConfig
		json.Unmarshal(c.Payload, &hc)
		if !ids[hc.UniqueID] {
			t.Errorf("unique id %s is new in the next run", hc.UniqueID)
		}
	}

	// Turned off: the next run removes the entities with empty retained
	// configs, and forgets them.
	stop()
	w.mu.Lock()
	w.all = nil
	w.mu.Unlock()
	o.Enabled = false
	box(t, b, o)
	w.wait(t, "removals", func(m map[string]mqtt.Received) bool {
		n := 0
		for k, r := range m {
			if configTopic.MatchString(k) && len(r.Payload) == 0 {
				n++
			}
		}
		return n == 8
	})
	if _, err := os.Stat(stateFile); !os.IsNotExist(err) {
		t.Errorf("state file kept after removal: %v", err)
	}
	// A Home Assistant starting now finds no configs.
	w2 := watch(t, b, "home-assistant-2")
	w2.wait(t, "the status", func(m map[string]mqtt.Received) bool { return m[topics.Status()].Payload != nil })
	time.Sleep(200 * time.Millisecond)
	w2.mu.Lock()
	for k := range w2.last {
		if configTopic.MatchString(k) {
			t.Errorf("%s still retained", k)
		}
	}
	w2.mu.Unlock()
}

// TestLaneRemoved: a lane gone from the config loses its entities at the
// next connect; the others stay.
func TestLaneRemoved(t *testing.T) {
	stateFile := filepath.Join(t.TempDir(), "homeassistant.json")
	o := homeassistant.Options{Enabled: true, Topics: topics, Lanes: lanes, StateFile: stateFile, Log: zerolog.Nop()}
	homeassistant.New(nil, o)
	o.Lanes = lanes[:1]
	s := &sender{}
	ha := homeassistant.New(s, o)
	ha.Connected()
	var removed, configs int
	for _, m := range s.msgs {
		switch {
		case len(m.payload) == 0:
			removed++
			if !regexp.MustCompile(`/anprd_oslo-p1_box-1/ff-1_`).MatchString(m.topic) {
				t.Errorf("removed %s", m.topic)
			}
		case configTopic.MatchString(m.topic):
			configs++
		}
		if !m.retain {
			t.Errorf("%s not retained", m.topic)
		}
	}
	if removed != 3 || configs != 5 {
		t.Errorf("removed %d, configs %d", removed, configs)
	}
	// Once removed, they are forgotten.
	s.msgs = nil
	homeassistant.New(s, o).Connected()
	for _, m := range s.msgs {
		if len(m.payload) == 0 {
			t.Errorf("removed %s again", m.topic)
		}
	}
}

type sent struct {
	topic   string
	retain  bool
	payload []byte
}

type sender struct{ msgs []sent }

func (s *sender) Send(topic string, qos byte, retain bool, payload []byte) error {
	s.msgs = append(s.msgs, sent{topic, retain, payload})
	return nil
}
