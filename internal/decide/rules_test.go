package decide_test

import (
	"encoding/json"
	"reflect"
	"slices"
	"testing"
	"time"

	"anprd/internal/decide"
	"anprd/internal/permit"
	"anprd/internal/permit/permittest"
	"anprd/internal/presence"
	"anprd/internal/presence/presencetest"
)

var oslo = mustLoad("Europe/Oslo")

func mustLoad(name string) *time.Location {
	loc, err := time.LoadLocation(name)
	if err != nil {
		panic(err)
	}
	return loc
}

// at is a wall-clock time in Oslo.
func at(s string) time.Time {
	t, err := time.ParseInLocation("2006-01-02 15:04:05", s, oslo)
	if err != nil {
		t, err = time.ParseInLocation("2006-01-02 15:04", s, oslo)
	}
	if err != nil {
		panic(err)
	}
	return t
}

// now is a Wednesday morning.
var now = at("2026-04-15 10:00")

func date(s string) permit.Moment {
	m, err := permit.ParseMoment(s)
	if err != nil {
		panic(err)
	}
	return m
}

func until(s string) *permit.Moment { m := date(s); return &m }

func put(v any) permit.Change {
	c := permit.Change{Op: permit.Put}
	switch r := v.(type) {
	case permit.Facility:
		c.Facility = &r
	case permit.Product:
		c.Product = &r
	case permit.Permit:
		c.Permit = &r
	case permit.Pool:
		c.Pool = &r
	case permit.Account:
		c.Account = &r
	case permit.Block:
		c.Block = &r
	case permit.Closure:
		c.Closure = &r
	default:
		panic("put of " + reflect.TypeOf(v).String())
	}
	return c
}

func pm(id, product string, plates ...string) permit.Permit {
	return permit.Permit{ID: id, Tenant: "t-" + id, Product: product, Status: permit.Active,
		ValidFrom: date("2026-01-01"), Plates: plates}
}

// world is the permit data of the rule tests: one facility with zones,
// the products and permits each rule needs.
func world() []permit.Change {
	expired := pm("P-EXP", "month", "EX33333")
	expired.ValidUntil = until("2026-02-28")
	future := pm("P-FUT", "month", "FU44444")
	future.ValidFrom = date("2026-12-01")
	cancelled := pm("P-CANC", "month", "CA55555")
	cancelled.Status, cancelled.ValidUntil = permit.Cancelled, until("2026-04-30")
	awaiting := pm("P-AWAIT", "month", "AW11111")
	awaiting.Status = permit.AwaitingPayment
	blocked := pm("P-BLOCK", "month", "BL22222")
	blocked.Status = permit.Blocked
	two := pm("P-TWO", "month", "TW10001", "TW10002", "TW10003")
	two.Concurrency = 2
	dayProd := pm("P-DAYPROD", "day", "DP12121")
	dayProd.ValidFrom = date("2026-04-15T14:05:00+02:00")
	dayProd.ValidUntil = until("2026-04-16T14:05:00+02:00")
	benefit := pm("P-BEN", "month", "BE12345")
	benefit.BenefitGroup, benefit.Reference = "hospital-staff", "emp-4711"
	acme := func(id, p string) permit.Permit {
		x := pm(id, "month", p)
		x.Tenant, x.Pool = "acme", "acme-pool"
		return x
	}
	return []permit.Change{
		put(permit.Facility{ID: "sentrum", Zones: []permit.Zone{{ID: "P1"}, {ID: "P2"}}, AcceptsAccounts: true}),
		put(permit.Facility{ID: "bomgarage"}),
		put(permit.Product{ID: "month", Facility: "sentrum"}),
		put(permit.Product{ID: "bom-month", Facility: "bomgarage"}),
		put(permit.Product{ID: "day", Facility: "sentrum"}),
		put(permit.Product{ID: "p2only", Facility: "sentrum", Zones: []string{"P2"}}),
		put(permit.Product{ID: "daytime", Facility: "sentrum", Windows: []permit.Window{{Days: []string{"mon", "tue", "wed", "thu", "fri"}, From: "07:00", To: "18:00"}}}),
		put(permit.Product{ID: "night", Facility: "sentrum", Windows: []permit.Window{{Days: []string{"wed"}, From: "18:00", To: "07:00"}}}),
		put(permit.Product{ID: "elsewhere", Facility: "other-garage"}),
		put(permit.Product{ID: "two-plates", Facility: "sentrum", MaxVehicles: 2}),
		put(permit.Pool{ID: "acme-pool", Tenant: "acme", Limit: 2}),
		put(pm("P-ACTIVE", "month", "AB12345", "CD23456", "EF34567")),
		put(two), put(expired), put(future), put(cancelled), put(awaiting), put(blocked), put(dayProd), put(benefit),
		put(pm("P-ZONE", "p2only", "ZN66666")),
		put(pm("P-DAY", "daytime", "DY77777")),
		put(pm("P-NIGHT", "night", "NT88888")),
		put(pm("P-OTHER", "elsewhere", "OT99999")),
		put(pm("P-MAX2", "two-plates", "MX10001", "MX10002")),
		put(pm("P-TWIN1", "month", "DB12121")),
		put(pm("P-TWIN2", "month", "OB12121")),
		put(pm("P-BOM", "bom-month", "BM12345")),
		put(acme("ACME1", "AC10001")), put(acme("ACME2", "AC10002")), put(acme("ACME3", "AC10003")),
		put(permit.Account{ID: "A-PERS", Kind: permit.Personal, Plates: []string{"AP12345"}}),
		put(permit.Account{ID: "A-CO", Kind: permit.Company, Company: "acme", CostCentre: "R&D", BenefitGroup: "acme-benefit", Plates: []string{"AK12345"}}),
		put(permit.Account{ID: "A-BLOCK", Kind: permit.Personal, Plates: []string{"AX12345"}, Blocked: true}),
		put(permit.Block{Plate: "BK99999", Reason: "stolen"}),
		put(permit.Closure{ID: "maint-p2", Facility: "sentrum", Zone: "P2", From: at("2026-05-04 06:00"), Until: at("2026-05-04 18:00"), Reason: "painting"}),
		put(permit.Closure{ID: "maint-all", Facility: "sentrum", From: at("2026-05-05 06:00"), Until: at("2026-05-05 08:00"), Reason: "sprinkler test"}),
	}
}

func lane(kind decide.LaneKind) *decide.Lane {
	id := map[decide.LaneKind]string{decide.Entrance: "in-1", decide.Exit: "out-1", decide.FreeFlowEntrance: "ff-in", decide.FreeFlowExit: "ff-out"}[kind]
	return &decide.Lane{ID: id, Kind: kind, Facility: "sentrum", Location: oslo, Policy: decide.DefaultPolicy(kind),
		AntiPassback: decide.PassbackSoft, MaxStay: 7 * 24 * time.Hour, MinConfidence: 0.5, Fuzzy: true, FuzzyMinConfidence: 0.85}
}

// inside is a vehicle inside sentrum, entered ago before now, counting
// against refs ("permit:ID", "pool:ID", "account:ID").
func inside(p string, ago time.Duration, refs ...string) presence.Vehicle {
	v := presence.Vehicle{Facility: "sentrum", Plate: p, Entered: now.Add(-ago), Lane: "in-1", Class: "permit", Source: presence.FromLane}
	for _, r := range refs {
		switch r[:4] {
		case "perm":
			v.Permit = r[len("permit:"):]
		case "pool":
			v.Pool = r[len("pool:"):]
		case "acco":
			v.Account, v.Class = r[len("account:"):], "account"
		}
	}
	if len(refs) == 0 {
		v.Class = "unregistered"
	}
	return v
}

type want struct {
	class   decide.Class
	reason  decide.Reason
	action  decide.Action
	plate   string
	permit  string
	pool    string
	account string
	flags   []decide.Flag
	// counted: the presence change enters the vehicle counting against
	// permit/pool/account; entered: it enters it (counting or not).
	entered, counted bool
	left             bool // an exit removed the vehicle
}

type ruleCase struct {
	name   string
	seed   string // the file in shared/seeds/ the rule comes from
	extra  []permit.Change
	inside []presence.Vehicle
	lane   *decide.Lane
	edit   func(*decide.Lane)
	read   decide.Read
	want   want
}

func rd(p string) decide.Read { return decide.Read{Plate: p, Conf: 0.95} }

func rdAt(p, t string) decide.Read { r := rd(p); r.Time = at(t); return r }

func ruleCases() []ruleCase {
	open := decide.Open
	deny := decide.Deny
	charge := decide.OpenCharge
	return []ruleCase{
		// Permits: validity, status.
		{name: "valid permit opens", seed: "000_b3bbb60f196b79d3.txt", read: rd("AB12345"),
			want: want{class: decide.Permit, reason: decide.PermitValid, action: open, permit: "P-ACTIVE", entered: true, counted: true}},
		{name: "running permit from its chosen start date", seed: "000_b3bbb60f196b79d3.txt", read: rdAt("CD23456", "2026-01-01 00:00"),
			want: want{class: decide.Permit, reason: decide.PermitValid, action: open, permit: "P-ACTIVE", entered: true, counted: true}},
		{name: "before its start date", seed: "000_b3bbb60f196b79d3.txt", read: rdAt("CD23456", "2025-12-31 23:59:59"),
			want: want{class: decide.NotYetValid, reason: decide.NotStarted, action: deny, permit: "P-ACTIVE"}},
		{name: "not yet valid", seed: "000_b3bbb60f196b79d3.txt", read: rd("FU44444"),
			want: want{class: decide.NotYetValid, reason: decide.NotStarted, action: deny, permit: "P-FUT"}},
		{name: "expired after its last day", seed: "000_b3bbb60f196b79d3.txt", read: rd("EX33333"),
			want: want{class: decide.Expired, reason: decide.Ended, action: deny, permit: "P-EXP"}},
		{name: "expired permit's last day still valid", seed: "000_b3bbb60f196b79d3.txt", read: rdAt("EX33333", "2026-02-28 23:59:59"),
			want: want{class: decide.Permit, reason: decide.PermitValid, action: open, permit: "P-EXP", entered: true, counted: true}},
		{name: "awaiting payment is not valid", seed: "003_c6bcbd082bf58bf7.txt", read: rd("AW11111"),
			want: want{class: decide.AwaitingPayment, reason: decide.StatusAwaiting, action: deny, permit: "P-AWAIT"}},
		{name: "blocked with immediate effect", seed: "004_8ecbfcdc78f28465.txt", read: rd("BL22222"),
			want: want{class: decide.Blocked, reason: decide.PermitBlocked, action: deny, permit: "P-BLOCK"}},
		{name: "cancelled permit runs to the end of its notice", seed: "004_8ecbfcdc78f28465.txt", read: rd("CA55555"),
			want: want{class: decide.Permit, reason: decide.PermitValid, action: open, permit: "P-CANC", entered: true, counted: true}},
		{name: "cancelled permit after its notice", seed: "004_8ecbfcdc78f28465.txt", read: rdAt("CA55555", "2026-05-01 00:00"),
			want: want{class: decide.Expired, reason: decide.NoticeEnded, action: deny, permit: "P-CANC"}},
		{name: "day product starts at the moment of purchase", seed: "001_51455082823952c8.txt", read: rdAt("DP12121", "2026-04-15 14:04:59"),
			want: want{class: decide.NotYetValid, reason: decide.NotStarted, action: deny, permit: "P-DAYPROD"}},
		{name: "day product valid after purchase", seed: "001_51455082823952c8.txt", read: rdAt("DP12121", "2026-04-15 14:05"),
			want: want{class: decide.Permit, reason: decide.PermitValid, action: open, permit: "P-DAYPROD", entered: true, counted: true}},
		{name: "day product over after 24 hours", seed: "001_51455082823952c8.txt", read: rdAt("DP12121", "2026-04-16 14:05"),
			want: want{class: decide.Expired, reason: decide.Ended, action: deny, permit: "P-DAYPROD"}},

		// Vehicles.
		{name: "unregistered rental car", seed: "004_8ecbfcdc78f28465.txt", read: rd("RE12345"),
			want: want{class: decide.Unregistered, reason: decide.NoMatch, action: deny}},
		{name: "withdrawal deletes the vehicle registration", seed: "004_8ecbfcdc78f28465.txt",
			extra: []permit.Change{put(func() permit.Permit { p := pm("P-ACTIVE", "month"); return p }())},
			read:  rd("AB12345"), want: want{class: decide.Unregistered, reason: decide.NoMatch, action: deny}},
		{name: "plate changed in the app reaches the gate", seed: "003_c6bcbd082bf58bf7.txt",
			extra: []permit.Change{put(pm("P-ACTIVE", "month", "NY10000", "CD23456", "EF34567"))},
			read:  rd("NY10000"), want: want{class: decide.Permit, reason: decide.PermitValid, action: open, permit: "P-ACTIVE", entered: true, counted: true}},
		{name: "a vehicle beyond the product's registered vehicles", seed: "001_51455082823952c8.txt",
			extra: []permit.Change{put(permit.Product{ID: "two-plates", Facility: "sentrum", MaxVehicles: 1})}, read: rd("MX10002"),
			want: want{class: decide.Unregistered, reason: decide.ExtraVehicle, action: deny, permit: "P-MAX2"}},
		{name: "within the product's registered vehicles", seed: "001_51455082823952c8.txt", read: rd("MX10002"),
			want: want{class: decide.Permit, reason: decide.PermitValid, action: open, permit: "P-MAX2", entered: true, counted: true}},

		// One vehicle at a time; pools.
		{name: "second car of a one-car permit", seed: "004_8ecbfcdc78f28465.txt", inside: []presence.Vehicle{inside("CD23456", time.Hour, "permit:P-ACTIVE")},
			read: rd("AB12345"), want: want{class: decide.PermitInUse, reason: decide.PermitFull, action: deny, permit: "P-ACTIVE"}},
		{name: "second car charged in a ticketless garage", seed: "001_51455082823952c8.txt", inside: []presence.Vehicle{inside("CD23456", time.Hour, "permit:P-ACTIVE")},
			edit: func(l *decide.Lane) { l.Policy[decide.PermitInUse] = decide.OpenCharge },
			read: rd("AB12345"), want: want{class: decide.PermitInUse, reason: decide.PermitFull, action: charge, permit: "P-ACTIVE", entered: true}},
		{name: "free again once the first car left", seed: "004_8ecbfcdc78f28465.txt", inside: []presence.Vehicle{inside("ZZ00001", time.Hour)},
			read: rd("AB12345"), want: want{class: decide.Permit, reason: decide.PermitValid, action: open, permit: "P-ACTIVE", entered: true, counted: true}},
		{name: "permit with a limit of two, one inside", seed: "004_8ecbfcdc78f28465.txt", inside: []presence.Vehicle{inside("TW10001", time.Hour, "permit:P-TWO")},
			read: rd("TW10002"), want: want{class: decide.Permit, reason: decide.PermitValid, action: open, permit: "P-TWO", entered: true, counted: true}},
		{name: "permit with a limit of two, two inside", seed: "004_8ecbfcdc78f28465.txt",
			inside: []presence.Vehicle{inside("TW10001", time.Hour, "permit:P-TWO"), inside("TW10002", time.Hour, "permit:P-TWO")},
			read:   rd("TW10003"), want: want{class: decide.PermitInUse, reason: decide.PermitFull, action: deny, permit: "P-TWO"}},
		{name: "pool: first come, first served", seed: "001_51455082823952c8.txt", inside: []presence.Vehicle{inside("AC10001", time.Hour, "permit:ACME1", "pool:acme-pool")},
			read: rd("AC10003"), want: want{class: decide.Permit, reason: decide.PermitValid, action: open, permit: "ACME3", pool: "acme-pool", entered: true, counted: true}},
		{name: "pool full: no guaranteed space", seed: "004_8ecbfcdc78f28465.txt",
			inside: []presence.Vehicle{inside("AC10001", time.Hour, "permit:ACME1", "pool:acme-pool"), inside("AC10002", time.Hour, "permit:ACME2", "pool:acme-pool")},
			read:   rd("AC10003"), want: want{class: decide.PermitInUse, reason: decide.PoolFull, action: deny, permit: "ACME3", pool: "acme-pool"}},
		{name: "a missed exit stops counting after the maximum stay", seed: "004_8ecbfcdc78f28465.txt", inside: []presence.Vehicle{inside("CD23456", 8*24*time.Hour, "permit:P-ACTIVE")},
			read: rd("AB12345"), want: want{class: decide.Permit, reason: decide.PermitValid, action: open, permit: "P-ACTIVE", entered: true, counted: true}},

		// Where and when.
		{name: "zone product at its zone", seed: "001_51455082823952c8.txt", edit: func(l *decide.Lane) { l.Zone = "P2" }, read: rd("ZN66666"),
			want: want{class: decide.Permit, reason: decide.PermitValid, action: open, permit: "P-ZONE", entered: true, counted: true}},
		{name: "zone product at another zone", seed: "001_51455082823952c8.txt", edit: func(l *decide.Lane) { l.Zone = "P1" }, read: rd("ZN66666"),
			want: want{class: decide.WrongZone, reason: decide.ZoneNotIncluded, action: deny, permit: "P-ZONE"}},
		{name: "zone product at the facility's own entrance", seed: "001_51455082823952c8.txt", read: rd("ZN66666"),
			want: want{class: decide.Permit, reason: decide.PermitValid, action: open, permit: "P-ZONE", entered: true, counted: true}},
		{name: "permit for another facility", seed: "000_b3bbb60f196b79d3.txt", read: rd("OT99999"),
			want: want{class: decide.Unregistered, reason: decide.OtherFacility, action: deny, permit: "P-OTHER"}},
		{name: "weekday hours product on a weekday", seed: "001_51455082823952c8.txt", read: rd("DY77777"),
			want: want{class: decide.Permit, reason: decide.PermitValid, action: open, permit: "P-DAY", entered: true, counted: true}},
		{name: "weekday hours product on Saturday", seed: "001_51455082823952c8.txt", read: rdAt("DY77777", "2026-04-18 10:00"),
			want: want{class: decide.OutsideHours, reason: decide.OutsideWindow, action: deny, permit: "P-DAY"}},
		{name: "weekday hours product at 18:00", seed: "001_51455082823952c8.txt", read: rdAt("DY77777", "2026-04-15 18:00"),
			want: want{class: decide.OutsideHours, reason: decide.OutsideWindow, action: deny, permit: "P-DAY"}},
		{name: "maintenance closure of the lane's zone", seed: "004_8ecbfcdc78f28465.txt", edit: func(l *decide.Lane) { l.Zone = "P2" }, read: rdAt("ZN66666", "2026-05-04 10:00"),
			want: want{class: decide.Closed, reason: decide.ZoneClosed, action: deny}},
		{name: "zone closure does not close another zone", seed: "004_8ecbfcdc78f28465.txt", edit: func(l *decide.Lane) { l.Zone = "P1" }, read: rdAt("AB12345", "2026-05-04 10:00"),
			want: want{class: decide.Permit, reason: decide.PermitValid, action: open, permit: "P-ACTIVE", entered: true, counted: true}},
		{name: "facility closed for maintenance", seed: "004_8ecbfcdc78f28465.txt", read: rdAt("AB12345", "2026-05-05 07:59"),
			want: want{class: decide.Closed, reason: decide.FacilityClosed, action: deny}},
		{name: "closure over", seed: "004_8ecbfcdc78f28465.txt", read: rdAt("AB12345", "2026-05-05 08:00"),
			want: want{class: decide.Permit, reason: decide.PermitValid, action: open, permit: "P-ACTIVE", entered: true, counted: true}},

		// Accounts.
		{name: "pay-by-plate account charged", seed: "004_8ecbfcdc78f28465.txt", read: rd("AP12345"),
			want: want{class: decide.Account, reason: decide.AccountValid, action: charge, account: "A-PERS", entered: true, counted: true}},
		{name: "one active parking per account", seed: "004_8ecbfcdc78f28465.txt", inside: []presence.Vehicle{inside("AP99999", time.Hour, "account:A-PERS")},
			read: rd("AP12345"), want: want{class: decide.AccountInUse, reason: decide.AccountFull, action: deny, account: "A-PERS"}},
		{name: "company account with cost centre", seed: "002_aab34ba848a37f54.txt", read: rd("AK12345"),
			want: want{class: decide.Account, reason: decide.AccountValid, action: charge, account: "A-CO", entered: true, counted: true}},
		{name: "accounts refused in a barrier garage", seed: "002_aab34ba848a37f54.txt", edit: func(l *decide.Lane) { l.Facility = "bomgarage" }, read: rd("AK12345"),
			want: want{class: decide.Unregistered, reason: decide.NoAccounts, action: deny, account: "A-CO"}},
		{name: "blocked account", seed: "004_8ecbfcdc78f28465.txt", read: rd("AX12345"),
			want: want{class: decide.Blocked, reason: decide.AccountBlocked, action: deny, account: "A-BLOCK"}},
		{name: "benefit group travels with the passage", seed: "004_8ecbfcdc78f28465.txt", read: rd("BE12345"),
			want: want{class: decide.Permit, reason: decide.PermitValid, action: open, permit: "P-BEN", entered: true, counted: true}},

		// Block list, reads.
		{name: "block-listed plate", seed: "004_8ecbfcdc78f28465.txt", read: rd("BK99999"),
			want: want{class: decide.BlockListed, reason: decide.OnBlockList, action: deny}},
		{name: "no plate read", seed: "002_aab34ba848a37f54.txt", read: rd(""),
			want: want{class: decide.Unreadable, reason: decide.NoRead, action: deny}},
		{name: "read too unsure", seed: "002_aab34ba848a37f54.txt", read: decide.Read{Plate: "AB12345", Conf: 0.3},
			want: want{class: decide.Unreadable, reason: decide.LowConfidence, action: deny, plate: "AB12345"}},

		// Reading errors (domain.md "Reading errors are normal").
		{name: "B read as 8: unique near match", seed: "001_51455082823952c8.txt", read: rd("A812345"),
			want: want{class: decide.Permit, reason: decide.PermitValid, action: open, plate: "AB12345", permit: "P-ACTIVE", flags: []decide.Flag{decide.FlagNearMatch}, entered: true, counted: true}},
		{name: "near match not allowed by the lane", seed: "001_51455082823952c8.txt", edit: func(l *decide.Lane) { l.Fuzzy = false }, read: rd("A812345"),
			want: want{class: decide.Unregistered, reason: decide.NearMatchOff, action: deny, plate: "A812345"}},
		{name: "near match on an unsure read", seed: "001_51455082823952c8.txt", read: decide.Read{Plate: "A812345", Conf: 0.7},
			want: want{class: decide.Unregistered, reason: decide.NearMatchUnsure, action: deny, plate: "A812345"}},
		{name: "EU band letter read: the other reading matches", seed: "002_aab34ba848a37f54.txt", read: decide.Read{Plate: "NAB12345", Conf: 0.9, Candidates: []string{"AB12345"}},
			want: want{class: decide.Permit, reason: decide.PermitValid, action: open, plate: "AB12345", permit: "P-ACTIVE", flags: []decide.Flag{decide.FlagNearMatch}, entered: true, counted: true}},
		{name: "0 could be D or O: ambiguous, never opened", seed: "001_51455082823952c8.txt", read: rd("0B12121"),
			want: want{class: decide.Ambiguous, reason: decide.SeveralMatches, action: deny, plate: "0B12121"}},
		{name: "ambiguous at a free-flow entrance is recorded but not counted", seed: "002_aab34ba848a37f54.txt", lane: lane(decide.FreeFlowEntrance), read: rd("0B12121"),
			want: want{class: decide.Ambiguous, reason: decide.SeveralMatches, action: deny, plate: "0B12121", entered: true}},
		{name: "exact match wins over a confusable twin", seed: "001_51455082823952c8.txt", read: rd("OB12121"),
			want: want{class: decide.Permit, reason: decide.PermitValid, action: open, permit: "P-TWIN2", entered: true, counted: true}},

		// Free-flow and the lane's policy.
		{name: "camera garage charges the unregistered", seed: "002_aab34ba848a37f54.txt", lane: lane(decide.FreeFlowEntrance), read: rd("RE12345"),
			want: want{class: decide.Unregistered, reason: decide.NoMatch, action: charge, entered: true}},
		{name: "camera garage: block-listed car is in, flagged, not counted", seed: "002_aab34ba848a37f54.txt", lane: lane(decide.FreeFlowEntrance), read: rd("BK99999"),
			want: want{class: decide.BlockListed, reason: decide.OnBlockList, action: deny, entered: true}},

		// Anti-passback.
		{name: "re-entry, passback off: its own record does not count", seed: "004_8ecbfcdc78f28465.txt", edit: func(l *decide.Lane) { l.AntiPassback = decide.PassbackOff },
			inside: []presence.Vehicle{inside("AB12345", time.Hour, "permit:P-ACTIVE")},
			read:   rd("AB12345"), want: want{class: decide.Permit, reason: decide.PermitValid, action: open, permit: "P-ACTIVE", entered: true, counted: true}},
		{name: "re-entry, passback soft: allowed and flagged", seed: "004_8ecbfcdc78f28465.txt",
			inside: []presence.Vehicle{inside("AB12345", time.Hour, "permit:P-ACTIVE")},
			read:   rd("AB12345"), want: want{class: decide.Permit, reason: decide.PermitValid, action: open, permit: "P-ACTIVE", flags: []decide.Flag{decide.FlagPassback}, entered: true, counted: true}},
		{name: "re-entry, passback hard: denied and flagged", seed: "004_8ecbfcdc78f28465.txt", edit: func(l *decide.Lane) { l.AntiPassback = decide.PassbackHard },
			inside: []presence.Vehicle{inside("AB12345", time.Hour, "permit:P-ACTIVE")},
			read:   rd("AB12345"), want: want{class: decide.Passback, reason: decide.AlreadyInside, action: deny, flags: []decide.Flag{decide.FlagPassback}}},

		// Exits.
		{name: "exit closes the parking session", seed: "004_8ecbfcdc78f28465.txt", lane: lane(decide.Exit),
			inside: []presence.Vehicle{inside("AB12345", 3*time.Hour, "permit:P-ACTIVE")},
			read:   rd("AB12345"), want: want{class: decide.Permit, reason: decide.EntryCarried, action: open, permit: "P-ACTIVE", left: true}},
		{name: "exit of an account's car is charged", seed: "002_aab34ba848a37f54.txt", lane: lane(decide.Exit),
			inside: []presence.Vehicle{inside("AK12345", 2*time.Hour, "account:A-CO")},
			read:   rd("AK12345"), want: want{class: decide.Account, reason: decide.EntryCarried, action: charge, account: "A-CO", left: true}},
		{name: "exit read differently from the entry", seed: "001_51455082823952c8.txt", lane: lane(decide.Exit),
			inside: []presence.Vehicle{inside("AB12345", 3*time.Hour, "permit:P-ACTIVE")},
			read:   rd("A812345"), want: want{class: decide.Permit, reason: decide.EntryCarried, action: open, plate: "AB12345", permit: "P-ACTIVE", flags: []decide.Flag{decide.FlagNearMatch}, left: true}},
		{name: "exit without a recorded entry: flagged, let out", seed: "004_8ecbfcdc78f28465.txt", lane: lane(decide.Exit),
			read: rd("AB12345"), want: want{class: decide.Permit, reason: decide.PermitValid, action: open, permit: "P-ACTIVE", flags: []decide.Flag{decide.FlagNoEntry}}},
		{name: "exit without entry, unregistered: charged", seed: "004_8ecbfcdc78f28465.txt", lane: lane(decide.Exit),
			read: rd("RE12345"), want: want{class: decide.Unregistered, reason: decide.NoMatch, action: charge, flags: []decide.Flag{decide.FlagNoEntry}}},
		{name: "exit without entry, passback hard", seed: "004_8ecbfcdc78f28465.txt", lane: lane(decide.Exit), edit: func(l *decide.Lane) { l.AntiPassback = decide.PassbackHard },
			read: rd("AB12345"), want: want{class: decide.Passback, reason: decide.NoEntry, action: deny, flags: []decide.Flag{decide.FlagNoEntry}}},
		{name: "exit after the maximum stay", seed: "004_8ecbfcdc78f28465.txt", lane: lane(decide.Exit),
			inside: []presence.Vehicle{inside("AB12345", 9*24*time.Hour, "permit:P-ACTIVE")},
			read:   rd("AB12345"), want: want{class: decide.Permit, reason: decide.EntryCarried, action: open, permit: "P-ACTIVE", flags: []decide.Flag{decide.FlagOverstay}, left: true}},
		{name: "second car leaving still pays short-term", seed: "004_8ecbfcdc78f28465.txt", lane: lane(decide.Exit),
			inside: []presence.Vehicle{func() presence.Vehicle {
				v := inside("CD23456", time.Hour, "permit:P-ACTIVE")
				v.Class, v.NotCounted = "permit_in_use", true
				return v
			}()},
			read: rd("CD23456"), want: want{class: decide.PermitInUse, reason: decide.EntryCarried, action: charge, permit: "P-ACTIVE", left: true}},
		{name: "exit ambiguous between two cars inside: never opened", seed: "001_51455082823952c8.txt", lane: lane(decide.Exit),
			inside: []presence.Vehicle{inside("DB12121", time.Hour, "permit:P-TWIN1"), inside("OB12121", time.Hour, "permit:P-TWIN2")},
			read:   rd("0B12121"), want: want{class: decide.Ambiguous, reason: decide.SeveralMatches, action: deny, plate: "0B12121"}},
	}
}

func (c *ruleCase) setup() (*decide.Lane, decide.Read) {
	l := c.lane
	if l == nil {
		l = lane(decide.Entrance)
	}
	cp := *l
	cp.Policy = decide.Policy{}
	for k, v := range l.Policy {
		cp.Policy[k] = v
	}
	if c.edit != nil {
		c.edit(&cp)
	}
	r := c.read
	if r.Time.IsZero() {
		r.Time = now
	}
	return &cp, r
}

func (c *ruleCase) check(t *testing.T, d decide.Decision) {
	t.Helper()
	w := c.want
	wantPlate := w.plate
	if wantPlate == "" {
		wantPlate = c.read.Plate
	}
	if d.Class != w.class || d.Reason != w.reason || d.Action != w.action || d.Plate != wantPlate {
		t.Errorf("[%s] got %s/%s/%s plate %q, want %s/%s/%s plate %q", c.seed, d.Class, d.Reason, d.Action, d.Plate, w.class, w.reason, w.action, wantPlate)
	}
	if d.Permit != w.permit || d.Pool != w.pool || d.Account != w.account {
		t.Errorf("[%s] permit/pool/account %q/%q/%q, want %q/%q/%q", c.seed, d.Permit, d.Pool, d.Account, w.permit, w.pool, w.account)
	}
	if !slices.Equal(d.Flags, w.flags) {
		t.Errorf("[%s] flags %v, want %v", c.seed, d.Flags, w.flags)
	}
	if (d.Enter != nil) != w.entered {
		t.Errorf("[%s] enters presence: %v, want %v", c.seed, d.Enter != nil, w.entered)
	}
	if d.Enter != nil {
		counted := len(d.Enter.Refs()) > 0
		if counted != w.counted || d.Enter.Permit != w.permit || d.Enter.Pool != w.pool || d.Enter.Account != w.account {
			t.Errorf("[%s] presence counts against %+v, want counted=%v", c.seed, *d.Enter, w.counted)
		}
		if d.Enter.Plate != d.Plate || !d.Enter.Entered.Equal(d.Time) || string(d.Enter.Class) != string(d.Class) {
			t.Errorf("[%s] presence record %+v does not match the decision", c.seed, *d.Enter)
		}
	}
	if (d.Leave != "") != w.left {
		t.Errorf("[%s] leaves presence: %q, want %v", c.seed, d.Leave, w.left)
	}
	if w.left {
		if d.Session == nil || !d.Session.Exited.Equal(d.Time) || d.Session.Entered.IsZero() || !d.Session.Entered.Before(d.Session.Exited) {
			t.Errorf("[%s] session %+v", c.seed, d.Session)
		}
	} else if d.Session != nil {
		t.Errorf("[%s] session %+v without leaving", c.seed, d.Session)
	}
}

// TestRules runs each rule of domain.md on the in-memory fakes and on the
// real bbolt stores: both must give the same decision.
func TestRules(t *testing.T) {
	for _, c := range ruleCases() {
		t.Run(c.name, func(t *testing.T) {
			if c.seed == "" {
				t.Fatal("every rule names its seed file")
			}
			l, r := c.setup()

			mem, err := permittest.New(append(world(), c.extra...)...)
			if err != nil {
				t.Fatal(err)
			}
			pres := &presencetest.Mem{Vehicles: slices.Clone(c.inside)}
			dm, err := decide.Decide(r, l, mem, pres)
			if err != nil {
				t.Fatal(err)
			}
			c.check(t, dm)

			store, db := permittest.Store(t, world()...)
			if len(c.extra) > 0 {
				if err := store.Apply(&permit.Batch{Seq: 2, Changes: c.extra}); err != nil {
					t.Fatal(err)
				}
			}
			ps, err := presence.Open(db.DB)
			if err != nil {
				t.Fatal(err)
			}
			for _, v := range c.inside {
				if err := ps.Add(v); err != nil {
					t.Fatal(err)
				}
			}
			var dr decide.Decision
			err = ps.View(func(tx *presence.Tx) error {
				v, err := store.ViewTx(tx.Bolt())
				if err != nil {
					return err
				}
				dr, err = decide.Decide(r, l, v, tx)
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			jm, _ := json.Marshal(dm)
			jr, _ := json.Marshal(dr)
			if string(jm) != string(jr) || !reflect.DeepEqual(dm.Enter, dr.Enter) || dm.Leave != dr.Leave {
				t.Errorf("fake and real stores disagree:\nfake %s %+v\nreal %s %+v", jm, dm.Enter, jr, dr.Enter)
			}
		})
	}
}

// TestDecisionDetails checks what a passage carries for pricing and for
// the company admin's report (002, 004).
func TestDecisionDetails(t *testing.T) {
	mem, err := permittest.New(world()...)
	if err != nil {
		t.Fatal(err)
	}
	l := lane(decide.Entrance)
	d, err := decide.Decide(decide.Read{Plate: "BE12345", Conf: 0.9, Time: now}, l, mem, &presencetest.Mem{})
	if err != nil {
		t.Fatal(err)
	}
	if d.BenefitGroup != "hospital-staff" || d.Reference != "emp-4711" || d.Tenant != "t-P-BEN" || d.Product != "month" {
		t.Errorf("permit details: %+v", d)
	}
	d, _ = decide.Decide(decide.Read{Plate: "AK12345", Conf: 0.9, Time: now}, l, mem, &presencetest.Mem{})
	if d.Company != "acme" || d.CostCentre != "R&D" || d.BenefitGroup != "acme-benefit" {
		t.Errorf("company account details: %+v", d)
	}
	d, _ = decide.Decide(decide.Read{Plate: "BK99999", Conf: 0.9, Time: now}, l, mem, &presencetest.Mem{})
	if d.Note != "stolen" {
		t.Errorf("block list reason not carried: %+v", d)
	}
	d, _ = decide.Decide(decide.Read{Plate: "0B12121", Conf: 0.99, Time: now}, l, mem, &presencetest.Mem{})
	if !slices.Equal(d.Ambiguous, []string{"DB12121", "OB12121"}) {
		t.Errorf("ambiguous plates: %v", d.Ambiguous)
	}
	// At an exit, the details come from the data as it is now.
	pres := &presencetest.Mem{Vehicles: []presence.Vehicle{inside("AK12345", time.Hour, "account:A-CO")}}
	d, _ = decide.Decide(decide.Read{Plate: "AK12345", Conf: 0.9, Time: now}, lane(decide.Exit), mem, pres)
	if d.CostCentre != "R&D" || d.Session == nil || d.Session.Entered != now.Add(-time.Hour) || d.Session.EntryLane != "in-1" {
		t.Errorf("exit details: %+v session %+v", d, d.Session)
	}
}

// TestStoreErrors: a read that fails fails the decision; it is never
// taken as "no permit".
func TestStoreErrors(t *testing.T) {
	mem, _ := permittest.New(world()...)
	mem.Fail = permittest.ErrInjected
	if _, err := decide.Decide(decide.Read{Plate: "AB12345", Conf: 0.95, Time: now}, lane(decide.Entrance), mem, &presencetest.Mem{}); err == nil {
		t.Error("permit store failure not reported")
	}
	mem.Fail = nil
	if _, err := decide.Decide(decide.Read{Plate: "AB12345", Conf: 0.95, Time: now}, lane(decide.Exit), mem, &presencetest.Mem{Fail: permittest.ErrInjected}); err == nil {
		t.Error("presence failure not reported")
	}
}
