package permit

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"anprd/internal/plate"
)

// Limits on what a record may hold: far above any real permit, low enough
// that a corrupt record is refused rather than stored.
const (
	maxPlates    = 32
	maxPlateLen  = 12
	maxLimit     = 100000
	maxZones     = 256
	maxWindows   = 64
	maxTextBytes = 1024
)

// Validate checks f.
func (f *Facility) Validate() error {
	if err := checkID("facility", f.ID); err != nil {
		return err
	}
	if len(f.Zones) > maxZones {
		return fmt.Errorf("facility %q: %d zones, at most %d", f.ID, len(f.Zones), maxZones)
	}
	seen := map[string]bool{}
	for _, z := range f.Zones {
		if err := checkID("facility "+f.ID+": zone", z.ID); err != nil {
			return err
		}
		if seen[z.ID] {
			return fmt.Errorf("facility %q: zone %q is listed twice", f.ID, z.ID)
		}
		seen[z.ID] = true
	}
	return checkText("facility "+f.ID+": name", f.Name)
}

// Validate checks p.
func (p *Product) Validate() error {
	if err := checkID("product", p.ID); err != nil {
		return err
	}
	what := fmt.Sprintf("product %q", p.ID)
	if err := checkID(what+": facility", p.Facility); err != nil {
		return err
	}
	if len(p.Zones) > maxZones {
		return fmt.Errorf("%s: %d zones, at most %d", what, len(p.Zones), maxZones)
	}
	for _, z := range p.Zones {
		if err := checkID(what+": zone", z); err != nil {
			return err
		}
	}
	if len(p.Windows) > maxWindows {
		return fmt.Errorf("%s: %d windows, at most %d", what, len(p.Windows), maxWindows)
	}
	for i := range p.Windows {
		if err := p.Windows[i].Validate(); err != nil {
			return fmt.Errorf("%s: windows[%d]: %w", what, i, err)
		}
	}
	if p.Concurrency < 0 || p.Concurrency > maxLimit {
		return fmt.Errorf("%s: concurrency %d is out of range 0..%d", what, p.Concurrency, maxLimit)
	}
	if p.MaxVehicles < 0 || p.MaxVehicles > maxPlates {
		return fmt.Errorf("%s: max_vehicles %d is out of range 0..%d", what, p.MaxVehicles, maxPlates)
	}
	return checkText(what+": name", p.Name)
}

// Validate checks w.
func (w *Window) Validate() error {
	from, ok := clock(w.From)
	if !ok || from == 24*60 {
		return fmt.Errorf("from %q is not a time 00:00..23:59", w.From)
	}
	to, ok := clock(w.To)
	if !ok {
		return fmt.Errorf("to %q is not a time 00:00..24:00", w.To)
	}
	if from == to {
		return fmt.Errorf("from and to are both %s; leave windows out for all hours", w.From)
	}
	seen := map[string]bool{}
	for _, d := range w.Days {
		if !slices.Contains(dayNames[:], d) {
			return fmt.Errorf("day %q is not one of mon, tue, wed, thu, fri, sat, sun", d)
		}
		if seen[d] {
			return fmt.Errorf("day %q is listed twice", d)
		}
		seen[d] = true
	}
	return nil
}

// Validate checks p. Plates must be normalised already (DecodeBatch does
// that); a plate that is not is refused rather than silently changed, so
// the central system learns of the mismatch.
func (p *Permit) Validate() error {
	if err := checkID("permit", p.ID); err != nil {
		return err
	}
	what := fmt.Sprintf("permit %q", p.ID)
	if err := checkID(what+": tenant", p.Tenant); err != nil {
		return err
	}
	if err := checkID(what+": product", p.Product); err != nil {
		return err
	}
	if !p.Status.valid() {
		return fmt.Errorf("%s: status %q is not one of active, awaiting_payment, blocked, cancelled", what, p.Status)
	}
	if p.ValidFrom.IsZero() {
		return fmt.Errorf("%s: valid_from is required", what)
	}
	if p.ValidUntil != nil {
		if p.ValidUntil.IsZero() {
			return fmt.Errorf("%s: valid_until is empty; leave it out for a running permit", what)
		}
		// Compared in UTC: the site's zone is at most a few hours off and
		// only a bound before the start is refused.
		if !p.ValidUntil.End(time.UTC).After(p.ValidFrom.Start(time.UTC)) {
			return fmt.Errorf("%s: valid_until %s is before valid_from %s", what, p.ValidUntil, p.ValidFrom)
		}
	}
	if p.Status == Cancelled && p.ValidUntil == nil {
		// Notice runs to a known end (the 1st of the following month plus
		// the notice period, 004); without it the permit would run for ever.
		return fmt.Errorf("%s: a cancelled permit needs valid_until, the end of its notice period", what)
	}
	if err := checkPlates(what, p.Plates); err != nil {
		return err
	}
	if p.Concurrency < 0 || p.Concurrency > maxLimit {
		return fmt.Errorf("%s: concurrency %d is out of range 0..%d", what, p.Concurrency, maxLimit)
	}
	if p.Pool != "" {
		if err := checkID(what+": pool", p.Pool); err != nil {
			return err
		}
	}
	if err := checkText(what+": benefit_group", p.BenefitGroup); err != nil {
		return err
	}
	return checkText(what+": reference", p.Reference)
}

// Validate checks p.
func (p *Pool) Validate() error {
	if err := checkID("pool", p.ID); err != nil {
		return err
	}
	if err := checkID(fmt.Sprintf("pool %q: tenant", p.ID), p.Tenant); err != nil {
		return err
	}
	if p.Limit < 1 || p.Limit > maxLimit {
		return fmt.Errorf("pool %q: limit %d is out of range 1..%d", p.ID, p.Limit, maxLimit)
	}
	return nil
}

// Validate checks a.
func (a *Account) Validate() error {
	if err := checkID("account", a.ID); err != nil {
		return err
	}
	what := fmt.Sprintf("account %q", a.ID)
	switch a.Kind {
	case Personal:
		if a.Company != "" {
			return fmt.Errorf("%s: a personal account has no company", what)
		}
	case Company:
		if err := checkID(what+": company", a.Company); err != nil {
			return err
		}
	default:
		return fmt.Errorf("%s: kind %q is not personal or company", what, a.Kind)
	}
	if err := checkPlates(what, a.Plates); err != nil {
		return err
	}
	if a.Concurrency < 0 || a.Concurrency > maxLimit {
		return fmt.Errorf("%s: concurrency %d is out of range 0..%d", what, a.Concurrency, maxLimit)
	}
	if err := checkText(what+": cost_centre", a.CostCentre); err != nil {
		return err
	}
	return checkText(what+": benefit_group", a.BenefitGroup)
}

// Validate checks b.
func (b *Block) Validate() error {
	if err := checkPlate("block list entry", b.Plate); err != nil {
		return err
	}
	return checkText("block list entry "+b.Plate+": reason", b.Reason)
}

// Validate checks c.
func (c *Closure) Validate() error {
	if err := checkID("closure", c.ID); err != nil {
		return err
	}
	what := fmt.Sprintf("closure %q", c.ID)
	if err := checkID(what+": facility", c.Facility); err != nil {
		return err
	}
	if c.Zone != "" {
		if err := checkID(what+": zone", c.Zone); err != nil {
			return err
		}
	}
	if c.From.IsZero() || c.Until.IsZero() {
		return fmt.Errorf("%s: from and until are required", what)
	}
	if !c.Until.After(c.From) {
		return fmt.Errorf("%s: until %s is not after from %s", what, c.Until.Format(timeFmt), c.From.Format(timeFmt))
	}
	return checkText(what+": reason", c.Reason)
}

const timeFmt = "2006-01-02T15:04:05Z07:00"

func checkPlates(what string, plates []string) error {
	if len(plates) > maxPlates {
		return fmt.Errorf("%s: %d plates, at most %d", what, len(plates), maxPlates)
	}
	for i, p := range plates {
		if err := checkPlate(what, p); err != nil {
			return err
		}
		if slices.Contains(plates[:i], p) {
			return fmt.Errorf("%s: plate %s is registered twice", what, p)
		}
	}
	return nil
}

func checkPlate(what, p string) error {
	switch {
	case p == "":
		return fmt.Errorf("%s: empty plate", what)
	case len(p) > maxPlateLen:
		return fmt.Errorf("%s: plate %.16q is longer than %d characters", what, p, maxPlateLen)
	case plate.Normalize(p) != p:
		return fmt.Errorf("%s: plate %q is not normalised (want %q: A-Z and 0-9 only)", what, p, plate.Normalize(p))
	}
	return nil
}

func checkText(what, s string) error {
	if len(s) > maxTextBytes {
		return fmt.Errorf("%s is longer than %d bytes", what, maxTextBytes)
	}
	return nil
}

var errNoRecord = errors.New("a change must carry exactly one record")
