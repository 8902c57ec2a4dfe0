package decide

import (
	"fmt"
	"slices"
)

// Class is what a read plate is, here and now: the classification a
// passage carries to the central system.
type Class string

const (
	// Permit: a permit valid here and now with room under its limit.
	Permit Class = "permit"
	// Account: a pay-by-plate account; the parking is charged to it at the
	// short-term tariff (004).
	Account Class = "account"
	// PermitInUse: registered on a valid permit whose vehicles (or whose
	// pool's) already fill its limit: short-term tariff or sanction (004).
	PermitInUse Class = "permit_in_use"
	// AccountInUse: the account already has its one active parking (004).
	AccountInUse Class = "account_in_use"
	// AwaitingPayment: bought but not paid, not valid yet (003).
	AwaitingPayment Class = "awaiting_payment"
	// Blocked: the permit or account was blocked by the operator (004).
	Blocked Class = "blocked"
	// Expired: the permit ended (including the end of a notice period).
	Expired Class = "expired"
	// NotYetValid: the permit starts later.
	NotYetValid Class = "not_yet_valid"
	// WrongZone: the permit's product is not valid in the lane's zone (001).
	WrongZone Class = "wrong_zone"
	// OutsideHours: the product is not valid at this time of the week.
	OutsideHours Class = "outside_hours"
	// Closed: the facility or the lane's zone is closed (maintenance, 004).
	Closed Class = "closed"
	// BlockListed: the plate is on the block list.
	BlockListed Class = "block_listed"
	// Unregistered: no permit or account here lists the plate; a rental
	// or borrowed car not registered is unregistered too (004).
	Unregistered Class = "unregistered"
	// Unreadable: no plate read, or one too unsure to act on.
	Unreadable Class = "unreadable"
	// Ambiguous: the read could be more than one registered plate (or
	// vehicle inside). Never opened on.
	Ambiguous Class = "ambiguous"
	// Passback: anti-passback in hard mode: an entry of a vehicle already
	// inside, or an exit of one never seen entering.
	Passback Class = "passback"
)

// Classes lists every classification, in the order reports show them.
var Classes = []Class{Permit, Account, PermitInUse, AccountInUse, AwaitingPayment, Blocked, Expired,
	NotYetValid, WrongZone, OutsideHours, Closed, BlockListed, Unregistered, Unreadable, Ambiguous, Passback}

// Action is what the lane does with a classification.
type Action string

const (
	Open       Action = "open"        // open the barrier; nothing to charge
	Deny       Action = "deny"        // keep it closed (free-flow: record as not admitted)
	OpenCharge Action = "open_charge" // open and charge the short-term tariff
)

// Actions lists every action.
var Actions = []Action{Open, Deny, OpenCharge}

// LaneKind is what a lane is for, which sets its default policy.
type LaneKind string

const (
	Entrance         LaneKind = "entrance"
	Exit             LaneKind = "exit"
	FreeFlowEntrance LaneKind = "free_flow_entrance"
	FreeFlowExit     LaneKind = "free_flow_exit"
)

// Policy maps each classification to an action.
type Policy map[Class]Action

// DefaultPolicy is the policy of a lane of kind k before the operator's
// overrides:
//
//   - a barrier entrance is permit-only: it opens for a valid permit and,
//     charging, for an account, and keeps out everything else;
//   - a free-flow entrance stops nobody; it charges whoever is not covered
//     and flags the block-listed, the unreadable and the ambiguous;
//   - exits let cars out, charging those not covered by a permit, except
//     on an ambiguous read and (hard anti-passback) an exit never seen
//     entering.
func DefaultPolicy(k LaneKind) Policy {
	p := Policy{}
	switch k {
	case Entrance:
		for _, c := range Classes {
			p[c] = Deny
		}
		p[Permit], p[Account] = Open, OpenCharge
	case FreeFlowEntrance:
		for _, c := range Classes {
			p[c] = OpenCharge
		}
		p[Permit] = Open
		p[BlockListed], p[Unreadable], p[Ambiguous], p[Passback] = Deny, Deny, Deny, Deny
	default: // exits
		for _, c := range Classes {
			p[c] = OpenCharge
		}
		p[Permit], p[BlockListed], p[Unreadable] = Open, Open, Open
		p[Ambiguous], p[Passback] = Deny, Deny
	}
	return p
}

// With returns a copy of p with overrides applied, checked.
func (p Policy) With(overrides map[Class]Action) (Policy, error) {
	out := Policy{}
	for c, a := range p {
		out[c] = a
	}
	for c, a := range overrides {
		out[c] = a
	}
	return out, out.Validate()
}

// Validate checks that every classification has a known action and that
// an ambiguous read is never opened on.
func (p Policy) Validate() error {
	for c, a := range p {
		if !slices.Contains(Classes, c) {
			return fmt.Errorf("policy: %q is not a classification", c)
		}
		if !slices.Contains(Actions, a) {
			return fmt.Errorf("policy: %s: %q is not open, deny or open_charge", c, a)
		}
	}
	for _, c := range Classes {
		if _, ok := p[c]; !ok {
			return fmt.Errorf("policy: no action for %s", c)
		}
	}
	if p[Ambiguous] != Deny {
		return fmt.Errorf("policy: %s must be deny: a read that could be several plates is never opened on", Ambiguous)
	}
	return nil
}
