// Package decide is the decision at a lane: a pure function of the read
// (plate, confidence, other readings), the permit data, the vehicles
// inside, the time and the lane's policy. It finds every permit and
// account that lists the plate, allowing for reading errors, keeps those
// valid here and now, checks their concurrency limits against the
// vehicles inside, and returns a classification with a reason code, the
// permit, pool or account involved, the action the lane's policy gives
// it, and the change to presence that goes with it (an entry, or at an
// exit the parking session closed).
//
// This package must not do I/O, keep state or read the clock: it reads
// through the two small interfaces below, and the caller applies the
// presence change in the same transaction it read in (internal/access).
package decide

import (
	"cmp"
	"slices"
	"time"

	"anprd/internal/permit"
	"anprd/internal/plate"
	"anprd/internal/presence"
)

// Store is what a decision reads of the permit data; *permit.View is one.
type Store interface {
	// Holders returns the permits and accounts registering a plate whose
	// plate.ConfusionKey is key.
	Holders(key string) ([]permit.Holder, error)
	Blocked(plate string) (*permit.Block, error)
	Facility(id string) *permit.Facility
	Product(id string) *permit.Product
	Pool(id string) *permit.Pool
	Closures(facility string) []*permit.Closure
}

// Presence is what a decision reads of the vehicles inside;
// *presence.Tx is one.
type Presence interface {
	Inside(facility, plate string) (*presence.Vehicle, error)
	Confusable(facility, key string) ([]*presence.Vehicle, error)
	Count(r presence.Ref, since time.Time, facility, plate string) (int, error)
}

// AntiPassback is a facility's rule for a vehicle seen entering while
// recorded inside, or leaving while not.
type AntiPassback string

const (
	PassbackOff  AntiPassback = "off"  // allow, no flag
	PassbackSoft AntiPassback = "soft" // allow and flag
	PassbackHard AntiPassback = "hard" // classify Passback (deny by default) and flag
)

// Lane is everything about a lane that a decision needs.
type Lane struct {
	ID       string
	Kind     LaneKind
	Facility string
	// Zone the lane leads into; "" for the facility's own entrance, where
	// a permit limited to an inner zone is still let in.
	Zone     string
	Location *time.Location // the site's zone: validity dates and windows are local
	Policy   Policy

	AntiPassback AntiPassback
	// MaxStay: a vehicle inside longer than this stops counting against
	// its permit, so a missed exit read does not hold the permit for ever.
	// 0: never.
	MaxStay time.Duration
	// MinConfidence: reads below it are Unreadable.
	MinConfidence float32
	// Fuzzy allows a match that needed a substitution (another reading, a
	// confused character); FuzzyMinConfidence is the least read
	// confidence for one.
	Fuzzy              bool
	FuzzyMinConfidence float32
}

func (l *Lane) exit() bool     { return l.Kind == Exit || l.Kind == FreeFlowExit }
func (l *Lane) freeFlow() bool { return l.Kind == FreeFlowEntrance || l.Kind == FreeFlowExit }

// Read is one vehicle's plate as the reader and tracker report it.
type Read struct {
	Plate      string
	Conf       float32  // 0..1
	Candidates []string // other readings, best first
	Time       time.Time
	// Through: the vehicle has gone through whatever the policy says (a
	// second vehicle on one opening, or one let in by hand): the decision
	// classifies it and changes presence as at a free-flow lane, and its
	// Action says what the policy would have done.
	Through bool
}

// Reason is the specific cause behind a classification, for the
// technician and the central system.
type Reason string

const (
	PermitValid     Reason = "permit_valid"
	AccountValid    Reason = "account_valid"
	PermitFull      Reason = "permit_full"  // its vehicles fill its limit
	PoolFull        Reason = "pool_full"    // its pool's vehicles fill the pool
	PoolUnknown     Reason = "pool_unknown" // its pool is not in the data
	AccountFull     Reason = "account_full" // the account's one parking is in use
	StatusAwaiting  Reason = "awaiting_payment"
	PermitBlocked   Reason = "permit_blocked"
	AccountBlocked  Reason = "account_blocked"
	Ended           Reason = "ended"             // past valid_until
	NoticeEnded     Reason = "notice_ended"      // cancelled, notice period over
	NotStarted      Reason = "not_started"       // before valid_from
	ZoneNotIncluded Reason = "zone_not_included" // product not valid in the lane's zone
	OutsideWindow   Reason = "outside_window"    // not within the product's weekly hours
	FacilityClosed  Reason = "facility_closed"
	ZoneClosed      Reason = "zone_closed"
	OnBlockList     Reason = "block_list"
	NoMatch         Reason = "no_match"
	OtherFacility   Reason = "other_facility"    // a permit for another facility
	ProductUnknown  Reason = "product_unknown"   // the permit's product is not in the data
	ExtraVehicle    Reason = "extra_vehicle"     // beyond the product's registered vehicles
	NoAccounts      Reason = "accounts_refused"  // the facility takes no pay-by-plate accounts
	NearMatchOff    Reason = "near_match_off"    // a near match, but the policy allows none
	NearMatchUnsure Reason = "near_match_unsure" // a near match, but the read is not confident enough
	NoRead          Reason = "no_read"
	LowConfidence   Reason = "low_confidence"
	SeveralMatches  Reason = "several_matches"
	AlreadyInside   Reason = "already_inside"
	NoEntry         Reason = "no_entry"
	EntryCarried    Reason = "entry" // an exit: the classification of the entry it closes
)

// Flag marks something about a passage worth a look.
type Flag string

const (
	FlagNearMatch Flag = "near_match"    // matched with a substitution or another reading
	FlagPassback  Flag = "anti_passback" // entered while recorded inside
	FlagNoEntry   Flag = "no_entry"      // left without a recorded entry
	FlagOverstay  Flag = "overstay"      // left after more than the maximum stay
)

// Match says how the plate decided on was found.
type Match string

const (
	MatchNone      Match = ""          // nothing registered (or inside) matched
	MatchExact     Match = "exact"     // the plate as read
	MatchCandidate Match = "candidate" // one of the reader's other readings
	MatchConfusion Match = "confusion" // confused characters substituted
)

// Session is the parking an exit closes.
type Session struct {
	Entered   time.Time `json:"entered"`
	Exited    time.Time `json:"exited"`
	EntryLane string    `json:"entry_lane,omitempty"`
}

// Decision is the outcome for one read at one lane.
type Decision struct {
	Lane   string    `json:"lane"`
	Time   time.Time `json:"time"`
	Class  Class     `json:"class"`
	Reason Reason    `json:"reason"`
	Action Action    `json:"action"`
	// Plate is the plate decided on: the registration matched, else the
	// plate as read (Read).
	Plate string `json:"plate"`
	Read  string `json:"read"`
	Match Match  `json:"match,omitempty"`

	Permit       string `json:"permit,omitempty"`
	Tenant       string `json:"tenant,omitempty"`
	Product      string `json:"product,omitempty"`
	Pool         string `json:"pool,omitempty"`
	Account      string `json:"account,omitempty"`
	Company      string `json:"company,omitempty"`
	CostCentre   string `json:"cost_centre,omitempty"`
	BenefitGroup string `json:"benefit_group,omitempty"`
	Reference    string `json:"reference,omitempty"`
	// Note is free text from the data, e.g. a block list reason.
	Note string `json:"note,omitempty"`
	// Ambiguous lists the plates an ambiguous read could be.
	Ambiguous []string `json:"ambiguous,omitempty"`
	Flags     []Flag   `json:"flags,omitempty"`
	Session   *Session `json:"session,omitempty"`

	// The presence change, applied by the caller in the transaction the
	// decision read in: a vehicle to record inside, or the plate whose
	// record an exit removes.
	Enter *presence.Vehicle `json:"-"`
	Leave string            `json:"-"`

	counts bool // Enter counts against Permit/Pool/Account
}

func (d *Decision) set(c Class, r Reason) { d.Class, d.Reason = c, r }
func (d *Decision) flag(f Flag)           { d.Flags = append(d.Flags, f) }

// Decide classifies r at lane l. It returns an error only when the data
// cannot be read.
func Decide(r Read, l *Lane, st Store, pr Presence) (Decision, error) {
	d := Decision{Lane: l.ID, Time: r.Time, Read: plate.Normalize(r.Plate)}
	d.Plate = d.Read
	var inside *presence.Vehicle
	var err error
	switch {
	case d.Read == "":
		d.set(Unreadable, NoRead)
	case r.Conf < l.MinConfidence:
		d.set(Unreadable, LowConfidence)
	case l.exit():
		inside, err = decideExit(&d, r, l, st, pr)
	default:
		err = decideEntry(&d, r, l, st, pr)
	}
	if err != nil {
		return Decision{}, err
	}
	d.Action = l.Policy[d.Class]
	if d.Action == "" {
		d.Action = Deny // a policy that passed Validate has every class
	}
	// A barrier that stays closed changes nothing; in a free-flow lane
	// the car passes whatever the classification says.
	passes := d.Action != Deny || l.freeFlow() || r.Through
	switch {
	case !passes || d.Class == Unreadable:
	case l.exit():
		if inside != nil {
			d.Leave = inside.Plate
			d.Session = &Session{Entered: inside.Entered, Exited: r.Time, EntryLane: inside.Lane}
		}
	case d.Class != Passback:
		v := &presence.Vehicle{Facility: l.Facility, Plate: d.Plate, Entered: r.Time, Lane: l.ID,
			Class: string(d.Class), Source: presence.FromLane}
		for _, f := range d.Flags {
			v.Flags = append(v.Flags, string(f))
		}
		v.Permit, v.Pool, v.Account, v.NotCounted = d.Permit, d.Pool, d.Account, !d.counts
		d.Enter = v
	}
	return d, nil
}

func decideEntry(d *Decision, r Read, l *Lane, st Store, pr Presence) error {
	now := r.Time
	m, err := matchRegistered(r, d.Read, l, st)
	if err != nil {
		return err
	}
	if m.ambiguous != nil {
		d.set(Ambiguous, SeveralMatches)
		d.Ambiguous = m.ambiguous
		return nil
	}
	if m.plate != "" {
		d.Plate, d.Match = m.plate, m.how
		if m.how != MatchExact {
			d.flag(FlagNearMatch)
		}
	}
	if b, err := st.Blocked(d.Plate); err != nil {
		return err
	} else if b != nil && b.Active(now) {
		d.set(BlockListed, OnBlockList)
		d.Note = b.Reason
		return nil
	}
	in, err := pr.Inside(l.Facility, d.Plate)
	if err != nil {
		return err
	}
	if in != nil && l.AntiPassback != PassbackOff {
		d.flag(FlagPassback)
		if l.AntiPassback == PassbackHard {
			d.set(Passback, AlreadyInside)
			return nil
		}
	}
	for _, c := range st.Closures(l.Facility) {
		if c.Active(now) && (c.Zone == "" || c.Zone == l.Zone) {
			d.set(Closed, FacilityClosed)
			if c.Zone != "" {
				d.Reason = ZoneClosed
			}
			d.Note = c.Reason
			return nil
		}
	}
	v, err := evaluate(m.holders, d.Plate, l, st, pr, now, false)
	if err != nil {
		return err
	}
	if v.class == "" {
		d.set(Unregistered, cmp.Or(m.refused, NoMatch))
		return nil
	}
	v.fill(d)
	return nil
}

// decideExit finds the vehicle leaving among those inside and carries its
// entry's classification to the exit; a vehicle not recorded inside is
// judged by its registrations as they are now, and flagged. It returns
// the vehicle inside, if found.
func decideExit(d *Decision, r Read, l *Lane, st Store, pr Presence) (*presence.Vehicle, error) {
	in, err := pr.Inside(l.Facility, d.Read)
	if err != nil {
		return nil, err
	}
	if in != nil {
		d.Match = MatchExact
	} else {
		// The plate inside may have been read differently at the entrance:
		// look among the vehicles inside for the readings and their
		// confusions, under the same rule as registrations.
		found := map[string]*presence.Vehicle{}
		var plates []string
		for _, c := range readings(d.Read, r.Candidates) {
			vs, err := pr.Confusable(l.Facility, plate.ConfusionKey(c))
			if err != nil {
				return nil, err
			}
			for _, v := range vs {
				if found[v.Plate] == nil {
					found[v.Plate] = v
					plates = append(plates, v.Plate)
				}
			}
		}
		p, how, amb, _ := near(plates, r, d.Read, l)
		if amb != nil {
			d.set(Ambiguous, SeveralMatches)
			d.Ambiguous = amb
			return nil, nil
		}
		if p != "" {
			in, d.Match = found[p], how
			d.flag(FlagNearMatch)
		}
	}
	if in == nil {
		d.flag(FlagNoEntry)
		if l.AntiPassback == PassbackHard {
			d.set(Passback, NoEntry)
			return nil, nil
		}
		return nil, judgeExit(d, r, l, st, pr)
	}
	d.Plate = in.Plate
	if l.MaxStay > 0 && r.Time.Sub(in.Entered) > l.MaxStay {
		d.flag(FlagOverstay)
	}
	if c := Class(in.Class); slices.Contains(Classes, c) {
		d.set(c, EntryCarried)
		d.Permit, d.Pool, d.Account = in.Permit, in.Pool, in.Account
		// Details (tenant, benefit group, cost centre) as the data has
		// them now, for pricing.
		hs, err := st.Holders(plate.ConfusionKey(in.Plate))
		if err != nil {
			return nil, err
		}
		for _, h := range hs {
			switch {
			case h.Plate != in.Plate:
			case h.Permit != nil && h.Permit.ID == in.Permit:
				fillPermit(d, h.Permit)
			case h.Account != nil && h.Account.ID == in.Account:
				fillAccount(d, h.Account)
			}
		}
		return in, nil
	}
	// Added by a correction without a classification: judge it now.
	return in, judgeExit(d, r, l, st, pr)
}

// judgeExit classifies a leaving vehicle by its registrations, without
// the rules that only an entrance applies (limits, zones, hours,
// closures).
func judgeExit(d *Decision, r Read, l *Lane, st Store, pr Presence) error {
	m, err := matchRegistered(r, d.Plate, l, st)
	if err != nil {
		return err
	}
	if m.ambiguous != nil {
		d.set(Ambiguous, SeveralMatches)
		d.Ambiguous = m.ambiguous
		return nil
	}
	if m.plate != "" && m.plate != d.Plate {
		d.Plate, d.Match = m.plate, m.how
		d.flag(FlagNearMatch)
	} else if m.plate != "" && d.Match == "" {
		d.Match = m.how
	}
	v, err := evaluate(m.holders, d.Plate, l, st, pr, r.Time, true)
	if err != nil {
		return err
	}
	if v.class == "" {
		d.set(Unregistered, cmp.Or(m.refused, NoMatch))
		return nil
	}
	v.fill(d)
	d.counts = false
	return nil
}

// verdict is one holder's standing, and the best of them.
type verdict struct {
	class  Class
	reason Reason
	permit *permit.Permit
	acct   *permit.Account
	pool   string
}

// rank orders verdicts: a plate on several records is classified by the
// one that serves it best, and otherwise by the most telling refusal (a
// blocked permit says more than an old expired one).
var rank = func() map[Class]int {
	m := map[Class]int{}
	for i, c := range []Class{Permit, Account, PermitInUse, AccountInUse, Blocked, AwaitingPayment,
		WrongZone, OutsideHours, NotYetValid, Expired, Unregistered} {
		m[c] = i + 1
	}
	return m
}()

func (v *verdict) better(o verdict) bool {
	return v.class == "" || rank[o.class] < rank[v.class]
}

func (v *verdict) fill(d *Decision) {
	d.set(v.class, v.reason)
	if v.permit != nil {
		fillPermit(d, v.permit)
		d.Pool = v.pool
	}
	if v.acct != nil {
		fillAccount(d, v.acct)
	}
	d.counts = v.class == Permit || v.class == Account
}

func fillPermit(d *Decision, p *permit.Permit) {
	d.Permit, d.Tenant, d.Product, d.Pool = p.ID, p.Tenant, p.Product, p.Pool
	d.BenefitGroup, d.Reference = p.BenefitGroup, p.Reference
}

func fillAccount(d *Decision, a *permit.Account) {
	d.Account, d.Company, d.CostCentre, d.BenefitGroup = a.ID, a.Company, a.CostCentre, a.BenefitGroup
}

// evaluate judges every holder of plate p and returns the best verdict;
// class "" when there are none. At an exit (exit true) limits, zones,
// hours and closures do not apply: the vehicle is already in.
func evaluate(hs []permit.Holder, p string, l *Lane, st Store, pr Presence, now time.Time, exit bool) (verdict, error) {
	// Records in a fixed order, so that equal verdicts pick the same one
	// whatever order the index holds them in.
	slices.SortFunc(hs, compareHolders)
	var since time.Time
	if l.MaxStay > 0 {
		since = now.Add(-l.MaxStay)
	}
	var best verdict
	for _, h := range hs {
		var v verdict
		switch {
		case h.Permit != nil:
			v = judgePermit(h.Permit, h.Pos, l, st, now, exit)
			if v.class == Permit && !exit {
				var err error
				if v, err = checkLimits(v, p, l, st, pr, since); err != nil {
					return verdict{}, err
				}
			}
		case h.Account != nil:
			v = judgeAccount(h.Account, l, st)
			if v.class == Account && !exit {
				n, err := pr.Count(presence.Ref{Kind: presence.Account, ID: h.Account.ID}, since, l.Facility, p)
				if err != nil {
					return verdict{}, err
				}
				if n >= h.Account.Limit() {
					v.class, v.reason = AccountInUse, AccountFull
				}
			}
		}
		if v.class != "" && best.better(v) {
			best = v
		}
	}
	return best, nil
}

func compareHolders(a, b permit.Holder) int {
	ka, ia := holderID(a)
	kb, ib := holderID(b)
	return cmp.Or(cmp.Compare(ka, kb), cmp.Compare(ia, ib))
}

func holderID(h permit.Holder) (byte, string) {
	if h.Permit != nil {
		return 'p', h.Permit.ID
	}
	return 'a', h.Account.ID
}

func holderKey(h permit.Holder) string {
	if h.Permit != nil {
		return "p" + h.Permit.ID
	}
	return "a" + h.Account.ID
}

// judgePermit checks a permit's status, dates, facility, zone and hours;
// pos is the plate's place in the permit's list of plates.
func judgePermit(pm *permit.Permit, pos int, l *Lane, st Store, now time.Time, exit bool) verdict {
	v := verdict{permit: pm}
	no := func(c Class, r Reason) verdict { v.class, v.reason = c, r; return v }
	prod := st.Product(pm.Product)
	switch {
	case prod == nil:
		return no(Unregistered, ProductUnknown)
	case prod.Facility != l.Facility:
		return no(Unregistered, OtherFacility)
	case pos >= prod.Vehicles():
		return no(Unregistered, ExtraVehicle)
	case pm.Status == permit.Blocked:
		return no(Blocked, PermitBlocked)
	case pm.Status == permit.AwaitingPayment:
		return no(AwaitingPayment, StatusAwaiting)
	case now.Before(pm.ValidFrom.Start(l.Location)):
		return no(NotYetValid, NotStarted)
	case pm.ValidUntil != nil && !now.Before(pm.ValidUntil.End(l.Location)):
		if pm.Status == permit.Cancelled {
			return no(Expired, NoticeEnded)
		}
		return no(Expired, Ended)
	case exit:
	case l.Zone != "" && len(prod.Zones) > 0 && !slices.Contains(prod.Zones, l.Zone):
		return no(WrongZone, ZoneNotIncluded)
	case len(prod.Windows) > 0 && !inWindows(prod.Windows, now.In(l.Location)):
		return no(OutsideHours, OutsideWindow)
	}
	return no(Permit, PermitValid)
}

func inWindows(ws []permit.Window, local time.Time) bool {
	for i := range ws {
		if ws[i].Contains(local) {
			return true
		}
	}
	return false
}

// checkLimits turns a valid permit's verdict into PermitInUse when its
// vehicles, or its pool's, already fill the limit.
func checkLimits(v verdict, p string, l *Lane, st Store, pr Presence, since time.Time) (verdict, error) {
	n, err := pr.Count(presence.Ref{Kind: presence.Permit, ID: v.permit.ID}, since, l.Facility, p)
	if err != nil {
		return v, err
	}
	if n >= v.permit.Limit(st.Product(v.permit.Product)) {
		v.class, v.reason = PermitInUse, PermitFull
		return v, nil
	}
	if v.permit.Pool == "" {
		return v, nil
	}
	v.pool = v.permit.Pool
	pool := st.Pool(v.permit.Pool)
	if pool == nil {
		v.class, v.reason = PermitInUse, PoolUnknown
		return v, nil
	}
	n, err = pr.Count(presence.Ref{Kind: presence.Pool, ID: pool.ID}, since, l.Facility, p)
	if err != nil {
		return v, err
	}
	if n >= pool.Limit {
		v.class, v.reason = PermitInUse, PoolFull
	}
	return v, nil
}

func judgeAccount(a *permit.Account, l *Lane, st Store) verdict {
	v := verdict{acct: a}
	f := st.Facility(l.Facility)
	switch {
	case f == nil || !f.AcceptsAccounts:
		v.class, v.reason = Unregistered, NoAccounts
	case a.Blocked:
		v.class, v.reason = Blocked, AccountBlocked
	default:
		v.class, v.reason = Account, AccountValid
	}
	return v
}
