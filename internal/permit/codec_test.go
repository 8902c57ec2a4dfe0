package permit

import (
	"bytes"
	"encoding/binary"
	"reflect"
	"testing"
	"time"
)

func codecPermits() []*Permit {
	until := Instant(time.Date(2026, 4, 16, 14, 5, 0, 0, time.UTC))
	day := Date(2026, 3, 29)
	return []*Permit{
		{ID: "453847", Tenant: "t", Product: "m", Status: Cancelled, ValidFrom: Date(2020, 4, 1), ValidUntil: &until,
			Plates: []string{"AB12345", "EL43210"}, Concurrency: 2, Pool: "acme", BenefitGroup: "g", Reference: "Morten sin"},
		{ID: "x", Tenant: "t", Product: "m", Status: AwaitingPayment, ValidFrom: Instant(time.Unix(0, 1).UTC()), Plates: []string{}},
		{ID: "y", Tenant: "t", Product: "m", Status: Blocked, ValidFrom: Date(1969, 12, 31), ValidUntil: &day, Plates: []string{}},
		{ID: "z", Tenant: "t", Product: "m", Status: Active, ValidFrom: Date(2026, 1, 1),
			Plates: []string{"A1", "B2", "C3", "D4", "E5"}},
	}
}

func TestCodecRoundTrip(t *testing.T) {
	for _, p := range codecPermits() {
		got, err := decodePermit(encodePermit(p))
		if err != nil || !reflect.DeepEqual(got, p) {
			t.Errorf("permit round trip:\n got %+v (%v)\nwant %+v", got, err, p)
		}
	}
	a := &Account{ID: "a", Kind: Company, Company: "acme", CostCentre: "R&D", BenefitGroup: "b", Plates: []string{"AK12345"}, Concurrency: 3, Blocked: true}
	if got, err := decodeAccount(encodeAccount(a)); err != nil || !reflect.DeepEqual(got, a) {
		t.Errorf("account round trip: %+v, %v", got, err)
	}
	// Truncated, extended and mistyped records are errors, never panics or
	// zero values.
	b := encodePermit(&Permit{ID: "p", Tenant: "t", Product: "m", Status: Active, ValidFrom: Date(2026, 1, 1), Plates: []string{"AB1"}})
	for i := range b {
		if _, err := decodePermit(b[:i]); err == nil {
			t.Errorf("decode of %d of %d bytes succeeded", i, len(b))
		}
	}
	if _, err := decodePermit(append(b, 0)); err == nil {
		t.Error("a record with a byte too many decoded")
	}
	if _, err := decodeAccount(b); err == nil {
		t.Error("a permit decoded as an account")
	}
}

// encodePermitV1 is the format 1 encoder (kind, version 1, a date as Unix
// seconds), as an older anprd wrote records; for the conversion test.
func encodePermitV1(p *Permit) []byte {
	b := []byte{kindPermit, 1}
	b = appendStr(b, p.ID)
	b = appendStr(b, p.Tenant)
	b = appendStr(b, p.Product)
	b = append(b, 0) // active
	moment := func(m *Moment) {
		switch {
		case m == nil:
			b = append(b, 0)
		case m.date:
			b = binary.AppendVarint(append(b, 1), m.t.Unix())
		default:
			b = binary.AppendVarint(append(b, 2), m.t.UnixNano())
		}
	}
	moment(&p.ValidFrom)
	moment(p.ValidUntil)
	b = appendStrs(b, p.Plates)
	b = binary.AppendUvarint(b, uint64(p.Concurrency))
	b = appendStr(b, p.Pool)
	b = appendStr(b, p.BenefitGroup)
	return appendStr(b, p.Reference)
}

func TestDecodeFormatV1(t *testing.T) {
	p := codecPermits()[0]
	p.Status = Active
	got, err := decodePermitAs(encodePermitV1(p), formatV1)
	if err != nil || !reflect.DeepEqual(got, p) {
		t.Errorf("format 1:\n got %+v (%v)\nwant %+v", got, err, p)
	}
	if _, err := decodePermit(encodePermitV1(p)); err == nil {
		t.Error("a format 1 record decoded as format 2")
	}
}

func TestRecordGroups(t *testing.T) {
	var g []byte
	recs := map[byte][]byte{}
	set := func(slot byte, rec []byte) {
		t.Helper()
		old := bytes.Clone(g)
		var err error
		if g, err = setRecord(old, slot, rec); err != nil {
			t.Fatal(err)
		}
		if rec == nil {
			delete(recs, slot)
		} else {
			recs[slot] = rec
		}
		for s := byte(0); s <= slotMask; s++ {
			got, err := findRecord(g, s)
			if err != nil || !bytes.Equal(got, recs[s]) {
				t.Fatalf("slot %d: %q, %v; want %q", s, got, err, recs[s])
			}
		}
		last := -1
		walkGroup(g, func(s byte, _ []byte) bool {
			if int(s) <= last {
				t.Fatalf("slots out of order: %d after %d", s, last)
			}
			last = int(s)
			return true
		})
	}
	set(3, []byte("three"))
	set(1, []byte("one"))
	set(7, []byte("seven"))
	set(3, []byte("THREE, longer"))
	set(1, nil)
	set(0, []byte{})
	set(7, nil)
	set(5, nil) // not there: no change
	if _, err := findRecord([]byte{1, 9, 'x'}, 1); err == nil {
		t.Error("a group whose length runs past its end was read")
	}
}

func TestIndexEntries(t *testing.T) {
	var kb [maxPlateLen + 1]byte
	k := plateIndexKey(&kb, "AB12345")
	if want := "\x07A812"; string(k) != want {
		t.Errorf("index key %q, want %q", k, want)
	}
	if got := indexKey(&kb, "A812345"); string(got) != "\x07A812" {
		t.Errorf("index key of a confusion key %q", got)
	}
	if got := plateIndexKey(&kb, "AB1"); string(got) != "\x03" {
		t.Errorf("short plate's key %q", got)
	}
	var v []byte
	v = appendIndexEntry(v, "AB12345", kindPermit, 1)
	v = appendIndexEntry(v, "A812999", kindAccount, 1<<31)
	type entry struct {
		p    string
		kind byte
		ref  uint64
	}
	var got []entry
	k = plateIndexKey(&kb, "AB12345")
	if err := walkIndex(k, v, func(p []byte, kind byte, ref uint64) { got = append(got, entry{string(p), kind, ref}) }); err != nil {
		t.Fatal(err)
	}
	want := []entry{{"AB12345", kindPermit, 1}, {"A812999", kindAccount, 1 << 31}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("entries %v, want %v", got, want)
	}
	for i := 1; i < len(v); i++ {
		if walkIndex(k, v[:i], func([]byte, byte, uint64) {}) == nil && i != 8 {
			t.Errorf("a cut index value (%d of %d bytes) was read", i, len(v))
		}
	}
	if !sameKey([]byte("AB12345"), "A812345") || sameKey([]byte("AB12345"), "A812346") {
		t.Error("sameKey")
	}
}

// FuzzDecodeRecord: whatever bytes a damaged file holds, decoding gives an
// error or a record that encodes and decodes back to itself; never a
// panic.
func FuzzDecodeRecord(f *testing.F) {
	for _, p := range codecPermits() {
		f.Add(encodePermit(p))
		f.Add(encodePermitV1(p))
	}
	f.Add(encodeAccount(&Account{ID: "a", Kind: Personal, Plates: []string{"AB12345"}}))
	f.Add([]byte{kindPermit, 0x80})
	f.Fuzz(func(t *testing.T, b []byte) {
		if p, err := decodePermit(b); err == nil {
			if again, err := decodePermit(encodePermit(p)); err != nil || !reflect.DeepEqual(again, p) {
				t.Errorf("permit %+v read from %x comes back as %+v, %v", p, b, again, err)
			}
		}
		if a, err := decodeAccount(b); err == nil {
			if again, err := decodeAccount(encodeAccount(a)); err != nil || !reflect.DeepEqual(again, a) {
				t.Errorf("account %+v read from %x comes back as %+v, %v", a, b, again, err)
			}
		}
		decodePermitAs(b, formatV1)
		findRecord(b, 3)
		setRecord(b, 3, []byte("x"))
		walkIndex([]byte{7}, b, func([]byte, byte, uint64) {})
	})
}
