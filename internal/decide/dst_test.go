package decide_test

import (
	"testing"
	"time"

	"anprd/internal/decide"
	"anprd/internal/permit"
	"anprd/internal/permit/permittest"
	"anprd/internal/presence/presencetest"
)

func utc(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

// TestDaylightSavingAndMidnight: date bounds are whole local days and
// windows are wall-clock times in the site's zone, on the days the clocks
// change too (domain.md: "Date boundaries are local time in Europe/Oslo
// (or Europe/Stockholm), daylight saving included"; seed
// 000_b3bbb60f196b79d3.txt: permits run "date to date"). In 2026 the
// clocks go forward on 29 March (02:00 -> 03:00, a 23-hour day) and back
// on 25 October (03:00 -> 02:00, a 25-hour day), in Norway and Sweden
// alike.
func TestDaylightSavingAndMidnight(t *testing.T) {
	stockholm := mustLoad("Europe/Stockholm")
	mk := func(id, from string, until string, windows ...permit.Window) []permit.Change {
		p := pm(id, "prod-"+id, "DS"+id[len(id)-5:])
		p.ValidFrom = date(from)
		if until != "" {
			p.ValidUntil = func() *permit.Moment { m := date(until); return &m }()
		}
		return []permit.Change{put(permit.Product{ID: "prod-" + id, Facility: "sentrum", Windows: windows}), put(p)}
	}
	weekdays := permit.Window{Days: []string{"mon", "tue", "wed", "thu", "fri"}, From: "07:00", To: "18:00"}
	skipped := permit.Window{Days: []string{"sun"}, From: "01:00", To: "02:30"}
	repeated := permit.Window{Days: []string{"sun"}, From: "02:00", To: "03:00"}
	night := permit.Window{Days: []string{"fri"}, From: "18:00", To: "07:00"}
	data := []permit.Change{put(permit.Facility{ID: "sentrum"})}
	data = append(data, mk("P-00001", "2026-01-01", "2026-03-29")...)                               // ends on the 23-hour day
	data = append(data, mk("P-00002", "2026-01-01", "2026-10-25")...)                               // ends on the 25-hour day
	data = append(data, mk("P-00003", "2026-03-29", "")...)                                         // starts on the 23-hour day
	data = append(data, mk("P-00004", "2026-01-01", "", weekdays)...)                               // office hours
	data = append(data, mk("P-00005", "2026-01-01", "", skipped)...)                                // over the hour that is skipped
	data = append(data, mk("P-00006", "2026-01-01", "", repeated)...)                               // the hour that repeats
	data = append(data, mk("P-00007", "2026-01-01", "", night)...)                                  // Friday night past midnight
	data = append(data, mk("P-00008", "2026-01-01", "2026-04-15")...)                               // an ordinary last day
	data = append(data, mk("P-00009", "2026-03-28T23:30:00+01:00", "2026-03-29T23:30:00+02:00")...) // a day product over the change: 23 hours

	cases := []struct {
		name  string
		loc   *time.Location
		plate string
		at    time.Time
		want  decide.Class
	}{
		// Oslo, spring forward: the last day ends at local midnight, 22:00 UTC.
		{"last day is the 23-hour day: still valid at 23:59:59", oslo, "DS00001", utc("2026-03-29T21:59:59Z"), decide.Permit},
		{"last day is the 23-hour day: over at midnight", oslo, "DS00001", utc("2026-03-29T22:00:00Z"), decide.Expired},
		{"last day is the 25-hour day: still valid at 23:59:59", oslo, "DS00002", utc("2026-10-25T22:59:59Z"), decide.Permit},
		{"last day is the 25-hour day: over at midnight", oslo, "DS00002", utc("2026-10-25T23:00:00Z"), decide.Expired},
		{"starts on the 23-hour day: not yet at 23:59:59 the day before", oslo, "DS00003", utc("2026-03-28T22:59:59Z"), decide.NotYetValid},
		{"starts on the 23-hour day: valid at local midnight", oslo, "DS00003", utc("2026-03-28T23:00:00Z"), decide.Permit},
		{"ordinary last day: 23:59:59 local", oslo, "DS00008", at("2026-04-15 23:59:59"), decide.Permit},
		{"ordinary last day: next midnight", oslo, "DS00008", at("2026-04-16 00:00:00"), decide.Expired},
		// Windows keep wall-clock times: 07:00 is 06:00 UTC in winter, 05:00 UTC in summer.
		{"07:00 in winter (CET)", oslo, "DS00004", utc("2026-03-27T06:00:00Z"), decide.Permit},
		{"06:59 in winter", oslo, "DS00004", utc("2026-03-27T05:59:00Z"), decide.OutsideHours},
		{"07:00 the Monday after spring forward (CEST)", oslo, "DS00004", utc("2026-03-30T05:00:00Z"), decide.Permit},
		{"06:59 the Monday after spring forward", oslo, "DS00004", utc("2026-03-30T04:59:00Z"), decide.OutsideHours},
		{"17:59 the Monday after fall back (CET)", oslo, "DS00004", utc("2026-10-26T16:59:00Z"), decide.Permit},
		{"18:00 the Monday after fall back", oslo, "DS00004", utc("2026-10-26T17:00:00Z"), decide.OutsideHours},
		// The skipped hour: 01:59:59 CET is followed by 03:00:00 CEST.
		{"01:59:59 before the clocks go forward", oslo, "DS00005", utc("2026-03-29T00:59:59Z"), decide.Permit},
		{"03:00 right after: past the 02:30 end", oslo, "DS00005", utc("2026-03-29T01:00:00Z"), decide.OutsideHours},
		// The repeated hour: 02:30 happens twice, both inside 02:00-03:00.
		{"02:30 CEST, first time", oslo, "DS00006", utc("2026-10-25T00:30:00Z"), decide.Permit},
		{"02:30 CET, second time", oslo, "DS00006", utc("2026-10-25T01:30:00Z"), decide.Permit},
		{"03:00 CET: over", oslo, "DS00006", utc("2026-10-25T02:00:00Z"), decide.OutsideHours},
		{"01:59 CEST: not yet", oslo, "DS00006", utc("2026-10-24T23:59:00Z"), decide.OutsideHours},
		// A window past midnight belongs to the day it starts on.
		{"Friday 17:59: not yet", oslo, "DS00007", at("2026-04-17 17:59"), decide.OutsideHours},
		{"Friday 18:00", oslo, "DS00007", at("2026-04-17 18:00"), decide.Permit},
		{"Saturday 00:00", oslo, "DS00007", at("2026-04-18 00:00"), decide.Permit},
		{"Saturday 06:59", oslo, "DS00007", at("2026-04-18 06:59"), decide.Permit},
		{"Saturday 07:00: over", oslo, "DS00007", at("2026-04-18 07:00"), decide.OutsideHours},
		{"Saturday 18:00: Saturday is not listed", oslo, "DS00007", at("2026-04-18 18:00"), decide.OutsideHours},
		{"Thursday 23:00: Thursday is not listed", oslo, "DS00007", at("2026-04-16 23:00"), decide.OutsideHours},
		// A 24-hour day product bought the evening before the change ends
		// at the instant given, 23 hours of wall clock later.
		{"day product over the change: valid at its end minus 1s", oslo, "DS00009", utc("2026-03-29T21:29:59Z"), decide.Permit},
		{"day product over the change: over at its end", oslo, "DS00009", utc("2026-03-29T21:30:00Z"), decide.Expired},
		// Stockholm changes at the same instants.
		{"Stockholm: last day is the 23-hour day", stockholm, "DS00001", utc("2026-03-29T21:59:59Z"), decide.Permit},
		{"Stockholm: over at midnight", stockholm, "DS00001", utc("2026-03-29T22:00:00Z"), decide.Expired},
	}
	mem, err := permittest.New(data...)
	if err != nil {
		t.Fatal(err)
	}
	store, _ := permittest.Store(t, data...)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			l := lane(decide.Entrance)
			l.Location = c.loc
			r := decide.Read{Plate: c.plate, Conf: 0.9, Time: c.at}
			d, err := decide.Decide(r, l, mem, &presencetest.Mem{})
			if err != nil {
				t.Fatal(err)
			}
			if d.Class != c.want {
				t.Errorf("%s at %s (%s): %s/%s, want %s", c.plate, c.at.In(c.loc).Format("2006-01-02 15:04:05 MST"), c.at.UTC().Format(time.RFC3339), d.Class, d.Reason, c.want)
			}
			// The real store's dates round-trip through JSON and must agree.
			err = store.View(func(v *permit.View) error {
				dr, err := decide.Decide(r, l, v, &presencetest.Mem{})
				if err == nil && dr.Class != d.Class {
					t.Errorf("real store: %s, fake: %s", dr.Class, d.Class)
				}
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}
