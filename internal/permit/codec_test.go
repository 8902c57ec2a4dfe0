package permit

import (
	"reflect"
	"testing"
	"time"
)

func TestCodecRoundTrip(t *testing.T) {
	until := Instant(time.Date(2026, 4, 16, 14, 5, 0, 0, time.UTC))
	for _, p := range []*Permit{
		{ID: "453847", Tenant: "t", Product: "m", Status: Cancelled, ValidFrom: Date(2020, 4, 1), ValidUntil: &until,
			Plates: []string{"AB12345", "EL43210"}, Concurrency: 2, Pool: "acme", BenefitGroup: "g", Reference: "Morten sin"},
		{ID: "x", Tenant: "t", Product: "m", Status: AwaitingPayment, ValidFrom: Instant(time.Unix(0, 1).UTC()), Plates: []string{}},
		{ID: "y", Tenant: "t", Product: "m", Status: Blocked, ValidFrom: Date(1969, 12, 31), Plates: []string{}},
	} {
		got, err := decodePermit(encodePermit(p))
		if err != nil || !reflect.DeepEqual(got, p) {
			t.Errorf("permit round trip:\n got %+v (%v)\nwant %+v", got, err, p)
		}
	}
	a := &Account{ID: "a", Kind: Company, Company: "acme", CostCentre: "R&D", BenefitGroup: "b", Plates: []string{"AK12345"}, Concurrency: 3, Blocked: true}
	if got, err := decodeAccount(encodeAccount(a)); err != nil || !reflect.DeepEqual(got, a) {
		t.Errorf("account round trip: %+v, %v", got, err)
	}
	// Truncated and mistyped records are errors, never panics or zero values.
	b := encodePermit(&Permit{ID: "p", Tenant: "t", Product: "m", Status: Active, ValidFrom: Date(2026, 1, 1), Plates: []string{"AB1"}})
	for i := range b {
		if _, err := decodePermit(b[:i]); err == nil {
			t.Errorf("decode of %d of %d bytes succeeded", i, len(b))
		}
	}
	if _, err := decodeAccount(b); err == nil {
		t.Error("a permit decoded as an account")
	}
}
