package permit

import (
	"bytes"
	"encoding/binary"
	"reflect"
	"slices"
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

// withoutPlates is p as a record holds it: the plates are kept apart.
func withoutPlates[T any](p *T, plates *[]string) *T {
	*plates = nil
	return p
}

func TestCodecRoundTrip(t *testing.T) {
	for _, p := range codecPermits() {
		got, err := decodePermit(encodePermit(p))
		want := *p
		if err != nil || !reflect.DeepEqual(got, withoutPlates(&want, &want.Plates)) {
			t.Errorf("permit round trip:\n got %+v (%v)\nwant %+v", got, err, &want)
		}
		ps, err := decodePlates(encodePlates(p.Plates))
		if err != nil || !slices.Equal(ps, p.Plates) || ps == nil {
			t.Errorf("plates round trip: %q, %v; want %q", ps, err, p.Plates)
		}
	}
	a := &Account{ID: "a", Kind: Company, Company: "acme", CostCentre: "R&D", BenefitGroup: "b", Plates: []string{"AK12345"}, Concurrency: 3, Blocked: true}
	wa := *a
	if got, err := decodeAccount(encodeAccount(a)); err != nil || !reflect.DeepEqual(got, withoutPlates(&wa, &wa.Plates)) {
		t.Errorf("account round trip: %+v, %v", got, err)
	}
	pb := encodePlates([]string{"AB12345", "C1"})
	for i := range pb {
		if _, err := decodePlates(pb[:i]); err == nil {
			t.Errorf("plates decoded from %d of %d bytes", i, len(pb))
		}
	}
	if _, err := decodePlates(append(pb, 0)); err == nil {
		t.Error("plates with a byte too many decoded")
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

// encodeAccountV1 is the format 1 account encoder; for the conversion
// test.
func encodeAccountV1(a *Account) []byte {
	b := []byte{kindAccount, 1}
	b = appendStr(b, a.ID)
	b = appendStr(b, string(a.Kind))
	b = appendStr(b, a.Company)
	b = appendStr(b, a.CostCentre)
	b = appendStr(b, a.BenefitGroup)
	b = appendStrs(b, a.Plates)
	b = binary.AppendUvarint(b, uint64(a.Concurrency))
	if a.Blocked {
		return append(b, 1)
	}
	return append(b, 0)
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
	a := &Account{ID: "a", Kind: Company, Company: "acme", Plates: []string{"AK12345", "B1"}, Concurrency: 2}
	if got, err := decodeAccountAs(encodeAccountV1(a), formatV1); err != nil || !reflect.DeepEqual(got, a) {
		t.Errorf("format 1 account:\n got %+v (%v)\nwant %+v", got, err, a)
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
	type entry struct {
		p string
		e indexEntry
	}
	want := []entry{{"AB12345", indexEntry{kindPermit, 1, 0}}, {"A812999", indexEntry{kindAccount, maxRef, maxPlates - 1}},
		{"AB12000", indexEntry{kindPermit, 1 << 20, 2}}}
	var v []byte
	var ends []int
	for _, e := range want {
		v = appendIndexEntry(v, e.p, e.e)
		ends = append(ends, len(v))
	}
	var got []entry
	k = plateIndexKey(&kb, "AB12345")
	if err := walkIndex(k, v, func(p []byte, e indexEntry) { got = append(got, entry{string(p), e}) }); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("entries %v, want %v", got, want)
	}
	var only []string
	walkIndexKey(k, v, "A812345", func(p []byte, _ indexEntry) { only = append(only, string(p)) })
	if !slices.Equal(only, []string{"AB12345"}) {
		t.Errorf("entries of confusion key A812345: %q", only)
	}
	for i := 1; i < len(v); i++ {
		if walkIndex(k, v[:i], func([]byte, indexEntry) {}) == nil && !slices.Contains(ends, i) {
			t.Errorf("a cut index value (%d of %d bytes) was read", i, len(v))
		}
	}
	if walkIndex(k, appendIndexEntry(nil, "AB12345", indexEntry{kindPermit, 0, 1}), func([]byte, indexEntry) {}) == nil {
		t.Error("an entry of ref 0 was read")
	}
	// Every member of every class, plates of every length, and bytes of
	// letters outside A-Z come back as they went in.
	for _, p := range []string{"A", "AB1", "0ODQ", "OD0Q1IL8B5SZ", "QDO0LI1B8S5Z", "G6Z2S5B8", "\xc3\x86\xc3\x9812345", "ZZ99999"} {
		e := indexEntry{kindAccount, uint64(len(p)) * 1000, len(p) % maxPlates}
		k := plateIndexKey(&kb, p)
		n := 0
		err := walkIndex(k, appendIndexEntry(nil, p, e), func(got []byte, ge indexEntry) {
			n++
			if string(got) != p || ge != e {
				t.Errorf("%q %+v comes back as %q %+v", p, e, got, ge)
			}
		})
		if err != nil || n != 1 {
			t.Errorf("%q: %d entries, %v", p, n, err)
		}
	}
	// A variant past its classes, or a key that is not a plate's, is
	// damage.
	if walkIndex([]byte("\x07A812"), []byte{12 << 3, '3', '4', '5', 1}, func([]byte, indexEntry) {}) == nil {
		t.Error("variant 12 of classes of sizes 1, 2, 3, 2 was read")
	}
	if walkIndex([]byte("\x07A812"), []byte{placeEscape << 1, maxPlates, '3', '4', '5', 1}, func([]byte, indexEntry) {}) == nil {
		t.Errorf("a place past %d plates was read", maxPlates)
	}
	if walkIndex([]byte("\x07AB12"), []byte{0, '3', '4', '5', 1}, func([]byte, indexEntry) {}) == nil {
		t.Error("a key with a character that is no class's representative was read")
	}
	if walkIndex([]byte("\x07A8"), []byte{0, '3', '4', '5', 1}, func([]byte, indexEntry) {}) == nil {
		t.Error("a key too short for its length was read")
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
	f.Add(encodePlates([]string{"AB12345", "C1"}))
	f.Add(appendIndexEntry(appendIndexEntry(nil, "AB12345", indexEntry{kindAccount, 9, 3}), "AB12346", indexEntry{kindPermit, 1, 0}))
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
		key := []byte("\x07A812")
		walkIndex(key, b, func(p []byte, e indexEntry) {
			if !sameIndexKey(p, key) {
				t.Errorf("entry %q read under key %q", p, key)
			}
			if walkIndex(key, appendIndexEntry(nil, string(p), e), func(p2 []byte, e2 indexEntry) {
				if string(p2) != string(p) || e2 != e {
					t.Errorf("index entry %q %+v comes back as %q %+v", p, e, p2, e2)
				}
			}) != nil {
				t.Errorf("index entry %q %+v does not read back", p, e)
			}
		})
		if ps, err := decodePlates(b); err == nil {
			if again, err := decodePlates(encodePlates(ps)); err != nil || !slices.Equal(again, ps) {
				t.Errorf("plates %q read from %x come back as %q, %v", ps, b, again, err)
			}
		}
	})
}
