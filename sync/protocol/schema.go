package protocol

import (
	"encoding/json"
	"reflect"

	"anprd/internal/decide"
	"anprd/internal/health"
	"anprd/internal/passage"
	"anprd/internal/permit"
	"anprd/internal/presence"
	"anprd/sync/protocol/jsonschema"
)

// Message describes one JSON message of the protocol for its schema file
// (docs/schema/<Name>.json) and docs/protocol.md.
type Message struct {
	Name        string // schema file name without .json
	Title       string
	Description string
	Type        reflect.Type
}

// SchemaBase is the $id prefix of the schema files.
const SchemaBase = "https://anprd.invalid/schema/v1/"

// Messages are every JSON message. Evidence images are raw JPEG and have
// no schema; the bodies of signed messages (delta, snapshot, command)
// have theirs and travel inside an envelope.
var Messages = []Message{
	{"passage", "Passage", "A vehicle, or a manual opening, at a lane (edge to central, QoS 1).", reflect.TypeFor[passage.Passage]()},
	{"presence", "Presence change", "A change to the vehicles inside, for the site's other boxes (QoS 1).", reflect.TypeFor[Presence]()},
	{"status", "Status", "Retained online/offline status and last will (QoS 1, retained).", reflect.TypeFor[Status]()},
	{"heartbeat", "Heartbeat", "Periodic health report (QoS 0).", reflect.TypeFor[Heartbeat]()},
	{"event", "Event", "A lane, camera or barrier changed state (QoS 1).", reflect.TypeFor[Event]()},
	{"sync-state", "Sync state", "Where the box's permit data stands (QoS 1, retained).", reflect.TypeFor[SyncState]()},
	{"sync-request", "Sync request", "The box asks for the permit data after seq (QoS 1).", reflect.TypeFor[SyncRequest]()},
	{"reply", "Command reply", "The answer to one command (QoS 1).", reflect.TypeFor[Reply]()},
	{"envelope", "Signed envelope", "Every central-to-edge message: Ed25519 over topic and body.", reflect.TypeFor[Envelope]()},
	{"delta", "Permit delta (signed body)", "Numbered changes that apply entirely or not at all.", reflect.TypeFor[permit.Batch]()},
	{"snapshot", "Permit snapshot chunk (signed body)", "One chunk of a full data set.", reflect.TypeFor[snapshotDoc]()},
	{"command", "Command (signed body)", "Open a lane's barrier, resync or ping.", reflect.TypeFor[Command]()},
	{"ack", "Acknowledgement (signed body)", "The central system has done with these passages; their evidence may go at the normal retention.", reflect.TypeFor[Ack]()},
}

// Schema derives message m's JSON Schema from its Go type.
func Schema(m Message) ([]byte, error) {
	g := jsonschema.Generator{
		Types: map[reflect.Type]map[string]any{
			reflect.TypeFor[passage.ID](): {"type": "string", "pattern": "^[0-7][0-9A-HJKMNP-TV-Z]{25}$",
				"description": "26 characters of Crockford base32 (ULID layout): sortable, unique"},
			reflect.TypeFor[permit.Moment](): {"type": "string", "pattern": `^[0-9]{4}-[0-9]{2}-[0-9]{2}(T.+)?$`,
				"description": "a date (2026-03-29, the whole local day) or an RFC 3339 instant"},
		},
		Enums: map[reflect.Type][]string{
			reflect.TypeFor[passage.Kind]():       {string(passage.Vehicle), string(passage.Tailgate), string(passage.Manual)},
			reflect.TypeFor[passage.GateAction](): {string(passage.Opened), string(passage.Kept), string(passage.NoBarrier), string(passage.Failed)},
			reflect.TypeFor[decide.Class]():       strs(decide.Classes),
			reflect.TypeFor[decide.Action]():      strs(decide.Actions),
			reflect.TypeFor[decide.Match]():       {string(decide.MatchExact), string(decide.MatchCandidate), string(decide.MatchConfusion)},
			reflect.TypeFor[decide.Flag]():        {string(decide.FlagNearMatch), string(decide.FlagPassback), string(decide.FlagNoEntry), string(decide.FlagOverstay)},
			reflect.TypeFor[presence.Source]():    {string(presence.FromLane), string(presence.FromCorrection), string(presence.FromPeer)},
			reflect.TypeFor[health.State]():       {string(health.Starting), string(health.OK), string(health.Degraded), string(health.Failed), string(health.Stopped)},
			reflect.TypeFor[permit.Op]():          {string(permit.Put), string(permit.Delete)},
			reflect.TypeFor[permit.Status]():      {string(permit.Active), string(permit.AwaitingPayment), string(permit.Blocked), string(permit.Cancelled)},
			reflect.TypeFor[permit.AccountKind](): {string(permit.Personal), string(permit.Company)},
			reflect.TypeFor[CommandType]():        {string(CommandOpen), string(CommandResync), string(CommandPing)},
			reflect.TypeFor[ReplyStatus]():        {string(ReplyDone), string(ReplyFailed), string(ReplyRefused)},
			reflect.TypeFor[Part]():               {string(PartLane), string(PartCamera), string(PartBarrier)},
		},
	}
	s, err := g.Generate(m.Type, SchemaBase+m.Name+".json", m.Title, m.Description)
	if err != nil {
		return nil, err
	}
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

func strs[T ~string](vs []T) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = string(v)
	}
	return out
}
