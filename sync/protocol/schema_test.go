package protocol

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"anprd/internal/decide"
	"anprd/internal/health"
	"anprd/internal/passage"
	"anprd/internal/permit"
	"anprd/internal/presence"
	"anprd/sync/protocol/jsonschema"
)

var update = flag.Bool("update", false, "rewrite docs/schema from the Go types")

const (
	schemaDir = "../../docs/schema"
	protoDoc  = "../../docs/protocol.md"
)

// TestSchemasMatchTypes: each committed schema is what the Go type
// derives, and there is no schema without a message.
func TestSchemasMatchTypes(t *testing.T) {
	want := map[string]bool{}
	for _, m := range Messages {
		want[m.Name+".json"] = true
		got, err := Schema(m)
		if err != nil {
			t.Fatalf("%s: %v", m.Name, err)
		}
		path := filepath.Join(schemaDir, m.Name+".json")
		if *update {
			if err := os.WriteFile(path, got, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		file, err := os.ReadFile(path)
		if err != nil {
			t.Errorf("%s: %v (go test ./sync/protocol -run Schemas -update writes it)", m.Name, err)
			continue
		}
		if !bytes.Equal(file, got) {
			t.Errorf("%s differs from what %v derives; run go test ./sync/protocol -run Schemas -update and review the diff", path, m.Type)
		}
	}
	files, _ := filepath.Glob(filepath.Join(schemaDir, "*.json"))
	for _, f := range files {
		if !want[filepath.Base(f)] {
			t.Errorf("%s belongs to no message", f)
		}
	}
}

// ExampleKey is the key the examples in docs/protocol.md are signed with:
// Ed25519 from the seed SHA-256("anprd protocol example key"). Never use
// it for anything else.
func exampleKey() ed25519.PrivateKey {
	seed := sha256.Sum256([]byte("anprd protocol example key"))
	return ed25519.NewKeyFromSeed(seed[:])
}

type example struct {
	name, topic, body string
	json              []byte
}

// examples reads the examples of docs/protocol.md: a line
// <!-- example NAME [topic=TOPIC body=BODYSCHEMA] --> followed by a json
// code block.
func examples(t *testing.T) []example {
	t.Helper()
	doc, err := os.ReadFile(protoDoc)
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile("(?s)<!-- example ([a-z-]+)((?: [a-z]+=[^ ]+)*) -->\n```json\n(.*?)\n```")
	var out []example
	for _, m := range re.FindAllSubmatch(doc, -1) {
		ex := example{name: string(m[1]), json: m[3]}
		for _, kv := range strings.Fields(string(m[2])) {
			k, v, _ := strings.Cut(kv, "=")
			switch k {
			case "topic":
				ex.topic = v
			case "body":
				ex.body = v
			}
		}
		out = append(out, ex)
	}
	if len(out) < len(Messages) {
		t.Fatalf("only %d examples in %s", len(out), protoDoc)
	}
	return out
}

func schemaFile(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(schemaDir, name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func typeOf(name string) *Message {
	for i := range Messages {
		if Messages[i].Name == name {
			return &Messages[i]
		}
	}
	return nil
}

// TestDocExamples: every example in docs/protocol.md validates against
// its schema and decodes strictly into its Go type; signed examples
// verify with the example key for their topic, and their bodies validate
// too. Every message has an example.
func TestDocExamples(t *testing.T) {
	seen := map[string]bool{}
	pub := exampleKey().Public().(ed25519.PublicKey)
	for _, ex := range examples(t) {
		seen[ex.name] = true
		m := typeOf(ex.name)
		if m == nil {
			t.Errorf("example %q names no message", ex.name)
			continue
		}
		if err := jsonschema.Validate(schemaFile(t, ex.name), ex.json); err != nil {
			t.Errorf("example %s: %v", ex.name, err)
		}
		if err := decodeStrict(ex.json, reflectNew(m)); err != nil {
			t.Errorf("example %s does not decode into %v: %v", ex.name, m.Type, err)
		}
		if ex.name != "envelope" {
			continue
		}
		seen[ex.body] = true
		body, err := Verify(pub, ex.topic, bytes.TrimSpace(ex.json))
		if err != nil {
			t.Errorf("signed example for %s: %v", ex.topic, err)
			continue
		}
		if err := jsonschema.Validate(schemaFile(t, ex.body), body); err != nil {
			t.Errorf("body of the %s example: %v", ex.body, err)
		}
		switch ex.body {
		case "delta":
			_, err = DecodeDelta(body)
		case "snapshot":
			_, _, err = DecodeSnapshotChunk(body)
		case "command":
			_, err = DecodeCommand(body)
		case "ack":
			_, err = DecodeAck(body)
		default:
			t.Errorf("signed example with body %q", ex.body)
		}
		if err != nil {
			t.Errorf("body of the %s example: %v", ex.body, err)
		}
	}
	for _, m := range Messages {
		if !seen[m.Name] {
			t.Errorf("docs/protocol.md has no example of %s", m.Name)
		}
	}
}

func reflectNew(m *Message) any { return reflect.New(m.Type).Interface() }

// TestEncodedMessagesValidate: what the box writes validates against the
// schemas, so the generator's reading of the types matches
// encoding/json's.
func TestEncodedMessagesValidate(t *testing.T) {
	now := time.Date(2026, 11, 24, 8, 0, 0, 0, time.UTC)
	var g passage.Generator
	d, s := passage.FromDecision(decide.Decision{Class: decide.Permit, Reason: decide.PermitValid, Action: decide.Open,
		Plate: "EL43210", Match: decide.MatchExact, Permit: "P1", Flags: []decide.Flag{decide.FlagNearMatch},
		Session: &decide.Session{Entered: now.Add(-time.Hour), Exited: now}})
	p := passage.Passage{ID: g.New(now), Site: "p1", Device: "box-1", Lane: "out-1", Direction: "exit", Kind: passage.Vehicle, Time: now,
		Read: &passage.Read{Plate: "EL43210", Conf: 0.97, Candidates: []string{"EL43Z10"}}, Decision: d, Session: s,
		Gate: passage.Gate{Action: passage.Opened, Passed: true}, Timings: passage.Timings{Trigger: now, Decided: now},
		Evidence: passage.Evidence{Scene: "2026-11-24/x-scene.jpg"},
		Presence: &passage.Presence{Facility: "p1", Enter: &presence.Vehicle{Facility: "p1", Plate: "EL43210", Entered: now, Source: presence.FromLane}}}
	msgs := map[string]any{
		"passage":  p,
		"presence": PresenceOf(&p),
		"status":   Status{State: Online, Site: "p1", Device: "box-1", Time: now},
		"heartbeat": Heartbeat{Time: now, Site: "p1", Device: "box-1", Components: []health.Status{{Name: "uplink", State: health.OK, Ready: true, Since: now}},
			Sync: SyncState{Seq: 4, Loading: &Loading{Snapshot: "s1", Seq: 9, Chunks: 3, Received: 1}}},
		"event":        Event{Time: now, Lane: "in-1", Part: PartCamera, State: "degraded"},
		"sync-state":   SyncState{Seq: 1},
		"sync-request": SyncRequest{Time: now, Seq: 3, Reason: RequestGap},
		"reply":        Reply{Command: "c1", Type: CommandOpen, Time: now, Status: ReplyDone, Passage: p.ID.String()},
		"delta":        permit.Batch{Seq: 2, Changes: []permit.Change{{Op: permit.Put, Permit: &permit.Permit{ID: "P1", Tenant: "t", Product: "m", Status: permit.Active, ValidFrom: permit.Date(2026, 1, 1), Plates: []string{"EL43210"}}}}},
		"command":      Command{ID: "c1", Type: CommandPing, Issued: now},
		"ack":          Ack{ID: "a1", Issued: now, Passages: []passage.ID{p.ID}},
	}
	for name, v := range msgs {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		if err := jsonschema.Validate(schemaFile(t, name), b); err != nil {
			t.Errorf("%s as written does not validate: %v\n%s", name, err, b)
		}
	}
	// And what the schema forbids, it refuses.
	for name, doc := range map[string]string{
		"status":  `{"state":"online","site":"p1"}`,
		"reply":   `{"command":"c1","type":"open","time":"2026-11-24T08:00:00Z","status":"maybe"}`,
		"event":   `{"time":"yesterday","lane":"in-1","part":"camera","state":"ok"}`,
		"passage": `{"id":"not-an-id"}`,
		"command": `{"id":"c1","type":"ping","issued":"2026-11-24T08:00:00Z","extra":1}`,
	} {
		if err := jsonschema.Validate(schemaFile(t, name), []byte(doc)); err == nil {
			t.Errorf("%s: %s validated", name, doc)
		}
	}
	if !slices.ContainsFunc(Messages, func(m Message) bool { return m.Name == "snapshot" }) {
		t.Error("no snapshot schema")
	}
}
