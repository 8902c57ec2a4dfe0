// Package passage is the record of one vehicle, or one manual opening, at
// a lane: what was read, what was decided, what the barrier did and when.
// It is what the outbox keeps and the uplink publishes, and what the
// central system raises charges and sanctions from, so every field that
// matters to money or a fine is here and explicit.
//
// It holds data and its rules only: no I/O, no clock of its own (IDs are
// made from the time the caller gives).
package passage

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"anprd/internal/decide"
	"anprd/internal/presence"
)

// Kind says what happened at the lane.
type Kind string

const (
	// Vehicle: a vehicle was read (or found unreadable) and decided on.
	Vehicle Kind = "vehicle"
	// Tailgate: a second vehicle went through on one opening.
	Tailgate Kind = "tailgate"
	// Manual: the barrier was opened by the button or a remote command.
	Manual Kind = "manual"
)

// Passage is one event at a lane, as stored and uploaded.
type Passage struct {
	ID        ID        `json:"id"`
	Site      string    `json:"site"`
	Device    string    `json:"device"`
	Lane      string    `json:"lane"`
	Direction string    `json:"direction"` // entry or exit
	Kind      Kind      `json:"kind"`
	Time      time.Time `json:"time"` // when the vehicle passed, or when it was decided on if it did not

	Read     *Read       `json:"read,omitempty"`     // nil for a manual opening without a read
	Decision *Decision   `json:"decision,omitempty"` // nil for a manual opening
	Gate     Gate        `json:"gate"`
	Timings  Timings     `json:"timings"`
	Evidence Evidence    `json:"evidence,omitzero"`
	Session  *Session    `json:"session,omitempty"` // exits: the parking session this passage closed
	Manual   *ManualOpen `json:"manual,omitempty"`
	// Presence is the change the passage made to the vehicles inside
	// (the decision's, as access.Desk.Pass applied it). The uplink passes
	// it to the site's other boxes so that concurrency limits hold across
	// them. Nil when nothing changed.
	Presence *Presence `json:"presence,omitempty"`
}

// Presence is a change to the vehicles inside a facility: a vehicle
// recorded inside, a plate whose record was removed, or both.
type Presence struct {
	Facility string            `json:"facility"`
	Enter    *presence.Vehicle `json:"enter,omitempty"`
	Leave    string            `json:"leave,omitempty"`
}

// PresenceOf is the presence change of decision d at a lane of facility,
// or nil when d changes nothing.
func PresenceOf(facility string, d decide.Decision) *Presence {
	if d.Enter == nil && d.Leave == "" {
		return nil
	}
	p := &Presence{Facility: facility, Leave: d.Leave}
	if d.Enter != nil {
		v := *d.Enter
		v.Flags = slices.Clone(v.Flags)
		p.Enter = &v
	}
	return p
}

// Read is the plate as the camera read it.
type Read struct {
	Plate      string   `json:"plate"` // normalised A-Z 0-9; "" when unreadable
	Conf       float32  `json:"conf"`
	Country    string   `json:"country,omitempty"`
	Candidates []string `json:"candidates,omitempty"` // runner-up readings, best first
	Frames     int      `json:"frames,omitempty"`     // frames it was read in
	Direction  int      `json:"direction,omitempty"`  // +1 towards the camera, -1 away, 0 unknown
}

// Decision is the access decision, as decide made it.
type Decision struct {
	Class        decide.Class  `json:"class"`
	Reason       decide.Reason `json:"reason"`
	Action       decide.Action `json:"action"`
	Plate        string        `json:"plate"` // the registration decided on
	Match        decide.Match  `json:"match,omitempty"`
	Permit       string        `json:"permit,omitempty"`
	Tenant       string        `json:"tenant,omitempty"`
	Product      string        `json:"product,omitempty"`
	Pool         string        `json:"pool,omitempty"`
	Account      string        `json:"account,omitempty"`
	Company      string        `json:"company,omitempty"`
	CostCentre   string        `json:"cost_centre,omitempty"`
	BenefitGroup string        `json:"benefit_group,omitempty"`
	Reference    string        `json:"reference,omitempty"`
	Note         string        `json:"note,omitempty"`
	Ambiguous    []string      `json:"ambiguous,omitempty"`
	Flags        []decide.Flag `json:"flags,omitempty"`
}

// GateAction is what the barrier did.
type GateAction string

const (
	Opened    GateAction = "opened"     // the open command went out
	Kept      GateAction = "kept_shut"  // the decision was deny
	NoBarrier GateAction = "no_barrier" // a free-flow lane
	Failed    GateAction = "failed"     // it should have opened and could not (fault)
)

// Gate is the barrier's part.
type Gate struct {
	Action GateAction `json:"action"`
	// Passed: the vehicle went through (the safety loop saw it). False for
	// a vehicle that backed out or was turned away.
	Passed bool   `json:"passed"`
	Fault  string `json:"fault,omitempty"`
	// PassedUnknown: anprd stopped (a crash, a power cut) after the
	// decision and before it knew whether the vehicle went through; the
	// passage was recovered from the lane's journal at the next start,
	// with what was known at the decision. Passed is then false, and the
	// decision's presence change stands (see docs/architecture.md).
	PassedUnknown bool `json:"passed_unknown,omitempty"`
}

// Timings are the moments of the passage; zero ones did not happen.
type Timings struct {
	Trigger   time.Time `json:"trigger,omitzero"`    // arming loop or motion
	FirstRead time.Time `json:"first_read,omitzero"` // the read the decision used
	Decided   time.Time `json:"decided,omitzero"`
	Command   time.Time `json:"command,omitzero"` // open command to the barrier
	Passed    time.Time `json:"passed,omitzero"`  // vehicle through (safety loop cleared)
}

// Evidence names the images kept for the passage (see internal/evidence).
type Evidence struct {
	Plate string `json:"plate,omitempty"` // the plate crop
	Scene string `json:"scene,omitempty"` // the scene, downscaled
}

// Session is the parking session an exit closes.
type Session struct {
	Entered   time.Time `json:"entered"`
	Exited    time.Time `json:"exited"`
	EntryLane string    `json:"entry_lane,omitempty"`
}

// ManualOpen says who opened the barrier by hand and why.
type ManualOpen struct {
	Source   string `json:"source"` // "button", "remote" or "page"
	Operator string `json:"operator,omitempty"`
	Reason   string `json:"reason,omitempty"`
	// Command is the id of the central system's command, for a remote
	// opening.
	Command string `json:"command,omitempty"`
}

// FromDecision copies d's outcome into a passage's Decision and Session.
func FromDecision(d decide.Decision) (*Decision, *Session) {
	pd := &Decision{
		Class: d.Class, Reason: d.Reason, Action: d.Action, Plate: d.Plate, Match: d.Match,
		Permit: d.Permit, Tenant: d.Tenant, Product: d.Product, Pool: d.Pool, Account: d.Account,
		Company: d.Company, CostCentre: d.CostCentre, BenefitGroup: d.BenefitGroup,
		Reference: d.Reference, Note: d.Note, Ambiguous: d.Ambiguous, Flags: d.Flags,
	}
	var s *Session
	if d.Session != nil {
		s = &Session{Entered: d.Session.Entered, Exited: d.Session.Exited, EntryLane: d.Session.EntryLane}
	}
	return pd, s
}

// Validate checks what the central system relies on.
func (p *Passage) Validate() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if p.ID.IsZero() {
		bad("id: missing")
	}
	if p.Site == "" || p.Device == "" || p.Lane == "" {
		bad("site, device and lane are required")
	}
	if p.Direction != "entry" && p.Direction != "exit" {
		bad("direction: %q is not entry or exit", p.Direction)
	}
	if p.Time.IsZero() {
		bad("time: missing")
	}
	switch p.Kind {
	case Vehicle, Tailgate:
		if p.Decision == nil {
			bad("decision: a %s passage needs one", p.Kind)
		}
	case Manual:
		if p.Manual == nil || p.Manual.Source == "" {
			bad("manual: a manual passage says who opened it")
		}
	default:
		bad("kind: %q is not vehicle, tailgate or manual", p.Kind)
	}
	switch p.Gate.Action {
	case Opened, Kept, NoBarrier, Failed:
	default:
		bad("gate.action: %q is not one of opened, kept_shut, no_barrier, failed", p.Gate.Action)
	}
	if p.Gate.PassedUnknown && p.Gate.Passed {
		bad("gate: passed and passed_unknown both set")
	}
	if p.Session != nil && p.Session.Exited.Before(p.Session.Entered) {
		bad("session: exit before entry")
	}
	if pr := p.Presence; pr != nil {
		switch {
		case pr.Facility == "":
			bad("presence.facility: missing")
		case pr.Enter == nil && pr.Leave == "":
			bad("presence: neither enter nor leave")
		case pr.Enter != nil && pr.Enter.Facility != pr.Facility:
			bad("presence.enter.facility: %q is not %q", pr.Enter.Facility, pr.Facility)
		}
	}
	return errors.Join(errs...)
}
