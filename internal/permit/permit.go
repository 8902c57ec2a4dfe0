// Package permit holds what the central system says about who may park:
// facilities and their zones, products, permits, pools, pay-by-plate
// accounts, the block list and closures. It defines the records (JSON, as
// sync sends them), checks them, and keeps them in the daemon's bbolt
// database indexed by plate, so that the decision at a lane finds every
// record that lists a plate, or a plate a recogniser could confuse it
// with, in one or two B+tree reads.
//
// Changes arrive in numbered batches, each applied entirely or not at all;
// a full snapshot is loaded beside the live data and swapped in at once
// while decisions go on reading the old data.
//
// This package must not decide anything: it does not know lanes, presence
// or policy, and it never reads the clock. It opens no database file of
// its own: its buckets come from a state.Migration.
package permit

import (
	"fmt"
	"strings"
	"time"
)

// Status is a permit's state in the central system.
type Status string

const (
	// Active: bought and paid.
	Active Status = "active"
	// AwaitingPayment: bought but not paid, so not valid yet ("avtaler som
	// avventer betaling før de er gyldige", 003).
	AwaitingPayment Status = "awaiting_payment"
	// Blocked: withdrawn by the operator with immediate effect, e.g. for
	// unpaid rent ("inndra/sperre", 004).
	Blocked Status = "blocked"
	// Cancelled: the tenant gave notice; the permit stays valid until
	// ValidUntil, the end of the notice period, which runs from the 1st of
	// the following month (004).
	Cancelled Status = "cancelled"
)

func (s Status) valid() bool {
	switch s {
	case Active, AwaitingPayment, Blocked, Cancelled:
		return true
	}
	return false
}

// Facility is a garage or lot.
type Facility struct {
	ID    string `json:"id"`
	Name  string `json:"name,omitempty"`
	Zones []Zone `json:"zones,omitempty"`
	// AcceptsAccounts: pay-by-plate accounts may park here. Company
	// accounts work in some camera garages and in no barrier garage (002).
	AcceptsAccounts bool `json:"accepts_accounts,omitempty"`
}

// Zone is an area of a facility that a product may be limited to (001).
type Zone struct {
	ID   string `json:"id"`
	Name string `json:"name,omitempty"`
}

// Product is what a permit is bought for: where and when it is valid and
// how many of its vehicles may be inside at once (000, 001).
type Product struct {
	ID       string `json:"id"`
	Facility string `json:"facility"`
	Name     string `json:"name,omitempty"`
	// Zones the product is valid in; empty means the whole facility.
	Zones []string `json:"zones,omitempty"`
	// Windows are the weekly hours the product is valid in, in the site's
	// time zone; empty means at all hours.
	Windows []Window `json:"windows,omitempty"`
	// Concurrency is the default limit of a permit's vehicles inside at
	// once; 0 means 1 (004: "the first car to drive in must leave ...").
	Concurrency int `json:"concurrency,omitempty"`
	// MaxVehicles is how many plates a permit may register; 0 means
	// DefaultMaxVehicles (001: "opptil 3 aktive kjøretøy").
	MaxVehicles int `json:"max_vehicles,omitempty"`
}

// DefaultMaxVehicles is the usual number of plates on a permit (001).
const DefaultMaxVehicles = 3

// Limit is the product's default concurrency limit.
func (p *Product) Limit() int {
	if p.Concurrency <= 0 {
		return 1
	}
	return p.Concurrency
}

// Vehicles is how many plates a permit of the product may register.
func (p *Product) Vehicles() int {
	if p.MaxVehicles <= 0 {
		return DefaultMaxVehicles
	}
	return p.MaxVehicles
}

// Permit is one agreement (avtale, abonnement, tillatelse).
type Permit struct {
	ID      string `json:"id"`
	Tenant  string `json:"tenant"`
	Product string `json:"product"`
	Status  Status `json:"status"`
	// ValidFrom is the start the buyer chose (a date), or for a day
	// product the moment of purchase (001).
	ValidFrom Moment `json:"valid_from"`
	// ValidUntil is the last day (a date, inclusive) or the instant the
	// permit ends; nil while it runs until cancelled ("løpende", 000, 003).
	ValidUntil *Moment `json:"valid_until,omitempty"`
	// Plates are the registered vehicles, normalised. Only these may use
	// the permit; a rental or borrowed car must be registered too (004).
	Plates []string `json:"plates"`
	// Concurrency overrides the product's limit when above 0.
	Concurrency int `json:"concurrency,omitempty"`
	// Pool is the company pool whose spaces the permit shares, if any.
	Pool         string `json:"pool,omitempty"`
	BenefitGroup string `json:"benefit_group,omitempty"`
	// Reference is the tenant's own, e.g. an employee number (001).
	Reference string `json:"reference,omitempty"`
}

// Limit is the permit's concurrency limit given its product.
func (p *Permit) Limit(prod *Product) int {
	if p.Concurrency > 0 {
		return p.Concurrency
	}
	if prod == nil {
		return 1
	}
	return prod.Limit()
}

// Pool is a company's N spaces shared by more than N users, first come,
// first served (001, 004).
type Pool struct {
	ID     string `json:"id"`
	Tenant string `json:"tenant"`
	Limit  int    `json:"limit"`
}

// AccountKind says who pays for an account's parking.
type AccountKind string

const (
	Personal AccountKind = "personal"
	// Company: the parking is charged to the company, possibly by cost
	// centre (Företagskonto, 002).
	Company AccountKind = "company"
)

// Account is a pay-by-plate user profile with automatic debit: its
// vehicles may drive in and out of ANPR areas and are charged the
// short-term tariff (004).
type Account struct {
	ID      string      `json:"id"`
	Kind    AccountKind `json:"kind"`
	Company string      `json:"company,omitempty"` // the paying company, for Kind company
	// CostCentre splits a company's parking (002).
	CostCentre   string   `json:"cost_centre,omitempty"`
	BenefitGroup string   `json:"benefit_group,omitempty"` // fordelsparkering (004)
	Plates       []string `json:"plates"`
	// Concurrency is how many of its vehicles may park at once; 0 means 1:
	// the app "supports only one active parking per user profile" (004).
	Concurrency int `json:"concurrency,omitempty"`
	// Blocked: the operator stopped the account (e.g. a card that fails).
	Blocked bool `json:"blocked,omitempty"`
}

// Limit is the account's concurrency limit.
func (a *Account) Limit() int {
	if a.Concurrency <= 0 {
		return 1
	}
	return a.Concurrency
}

// Block is one plate on the block list.
type Block struct {
	Plate   string     `json:"plate"`
	Reason  string     `json:"reason"`
	Expires *time.Time `json:"expires,omitempty"` // nil: until removed
}

// Active reports whether the entry applies at now.
func (b *Block) Active(now time.Time) bool { return b.Expires == nil || now.Before(*b.Expires) }

// Closure is a time a facility or one of its zones is closed, e.g. for
// maintenance announced a week before (004).
type Closure struct {
	ID       string    `json:"id"`
	Facility string    `json:"facility"`
	Zone     string    `json:"zone,omitempty"` // "": the whole facility
	From     time.Time `json:"from"`
	Until    time.Time `json:"until"`
	Reason   string    `json:"reason,omitempty"`
}

// Active reports whether the closure is in force at now.
func (c *Closure) Active(now time.Time) bool { return !now.Before(c.From) && now.Before(c.Until) }

// Moment is a validity bound as the central system gives it: a calendar
// date ("2026-03-29"), which means that day in the site's time zone, or
// an instant in RFC 3339 ("2026-03-29T14:05:00+02:00"). Permits run "date
// to date" (000), so most bounds are dates; a day product starts at the
// moment of purchase (001).
type Moment struct {
	t    time.Time // the instant, or for a date its y-m-d at 00:00 UTC
	date bool
}

// Date returns the Moment for a calendar date.
func Date(y int, m time.Month, d int) Moment {
	return Moment{t: time.Date(y, m, d, 0, 0, 0, 0, time.UTC), date: true}
}

// Instant returns the Moment for an instant.
func Instant(t time.Time) Moment { return Moment{t: t} }

// IsZero reports whether m is unset.
func (m Moment) IsZero() bool { return m.t.IsZero() }

// IsDate reports whether m is a calendar date.
func (m Moment) IsDate() bool { return m.date }

// Start is the first instant of m in loc: local midnight for a date. The
// clocks in Norway and Sweden change at 02:00 and 03:00, so midnight
// always exists.
func (m Moment) Start(loc *time.Location) time.Time {
	if !m.date {
		return m.t
	}
	y, mo, d := m.t.Date()
	return time.Date(y, mo, d, 0, 0, 0, 0, loc)
}

// End is the first instant after m in loc when m is an upper bound: the
// next local midnight for a date (the day is included; it is 23 or 25
// hours long on the days the clocks change), the instant itself otherwise.
func (m Moment) End(loc *time.Location) time.Time {
	if !m.date {
		return m.t
	}
	y, mo, d := m.t.Date()
	return time.Date(y, mo, d+1, 0, 0, 0, 0, loc)
}

// String is the form MarshalJSON writes.
func (m Moment) String() string {
	if m.date {
		return m.t.Format(time.DateOnly)
	}
	return m.t.Format(time.RFC3339Nano)
}

// MarshalJSON implements json.Marshaler.
func (m Moment) MarshalJSON() ([]byte, error) {
	return []byte(`"` + m.String() + `"`), nil
}

// UnmarshalJSON implements json.Unmarshaler.
func (m *Moment) UnmarshalJSON(b []byte) error {
	s := string(b)
	if len(s) < 2 || s[0] != '"' || s[len(s)-1] != '"' {
		return fmt.Errorf("moment %s must be a string: a date 2026-03-29 or an RFC 3339 time", s)
	}
	v, err := ParseMoment(s[1 : len(s)-1])
	if err != nil {
		return err
	}
	*m = v
	return nil
}

// ParseMoment reads a date (2006-01-02) or an RFC 3339 instant.
func ParseMoment(s string) (Moment, error) {
	if len(s) == len(time.DateOnly) {
		t, err := time.Parse(time.DateOnly, s)
		if err != nil {
			return Moment{}, fmt.Errorf("%q is not a date (2006-01-02): %w", s, err)
		}
		return Moment{t: t, date: true}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return Moment{}, fmt.Errorf("%q is neither a date (2006-01-02) nor an RFC 3339 time", s)
	}
	return Moment{t: t}, nil
}

// Window is a weekly time window in the site's time zone: the days it
// starts on, and the wall-clock time it starts and ends. A window whose
// To is not after From runs past midnight into the next day ("18:00" to
// "07:00"); "24:00" is the end of the day. Wall-clock times keep their
// meaning across daylight-saving changes: "07:00-18:00" is 07:00 to 18:00
// local time on the 23- and 25-hour days too.
type Window struct {
	Days []string `json:"days,omitempty"` // mon..sun; empty: every day
	From string   `json:"from"`           // "HH:MM"
	To   string   `json:"to"`             // "HH:MM" or "24:00"
}

var dayNames = [7]string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"}

// Contains reports whether local (a time in the site's zone) is inside w.
// w must have passed Validate.
func (w *Window) Contains(local time.Time) bool {
	from, _ := clock(w.From)
	to, _ := clock(w.To)
	m := local.Hour()*60 + local.Minute()
	day := local.Weekday()
	if from < to {
		return w.onDay(day) && m >= from && m < to
	}
	// Past midnight: the evening part on a listed day, the morning part on
	// the day after one.
	return w.onDay(day) && m >= from || w.onDay((day+6)%7) && m < to
}

func (w *Window) onDay(d time.Weekday) bool {
	if len(w.Days) == 0 {
		return true
	}
	for _, s := range w.Days {
		if s == dayNames[d] {
			return true
		}
	}
	return false
}

// clock parses "HH:MM" (00:00..24:00) to minutes after midnight.
func clock(s string) (int, bool) {
	if len(s) != 5 || s[2] != ':' {
		return 0, false
	}
	d := func(c byte) (int, bool) { return int(c - '0'), c >= '0' && c <= '9' }
	h1, ok1 := d(s[0])
	h2, ok2 := d(s[1])
	m1, ok3 := d(s[3])
	m2, ok4 := d(s[4])
	if !(ok1 && ok2 && ok3 && ok4) {
		return 0, false
	}
	h, m := h1*10+h2, m1*10+m2
	if m > 59 || h > 24 || h == 24 && m != 0 {
		return 0, false
	}
	return h*60 + m, true
}

// checkID is the rule for every id the central system gives: ids become
// bbolt keys and log fields.
func checkID(what, id string) error {
	switch {
	case id == "":
		return fmt.Errorf("%s: id is required", what)
	case len(id) > 128:
		return fmt.Errorf("%s %.20q...: id is longer than 128 bytes", what, id)
	case strings.ContainsFunc(id, func(r rune) bool { return r < 0x20 || r == 0x7f || r == 0xFFFD }):
		return fmt.Errorf("%s %q: id has control characters", what, id)
	}
	return nil
}
