package permit

import (
	"encoding/binary"
	"encoding/json"
	"reflect"
	"testing"

	"anprd/internal/plate"
	"anprd/internal/state"

	bolt "go.etcd.io/bbolt"
)

// writeV1 lays out a generation as an anprd before format 2 did: one key
// per record (8-byte ref), ids to 8-byte refs, JSON small tables, no
// format key.
func writeV1(t *testing.T, db *bolt.DB, seq uint64, prods []*Product, recs ...any) {
	t.Helper()
	err := db.Update(func(tx *bolt.Tx) error {
		root := tx.Bucket(RootBucket)
		meta, err := root.CreateBucket(metaBucket)
		if err != nil {
			return err
		}
		g, err := root.CreateBucket(genName(1))
		if err != nil {
			return err
		}
		for _, name := range genBuckets {
			if _, err := g.CreateBucket(name); err != nil {
				return err
			}
		}
		put := func(b, k []byte, v any) {
			j, _ := json.Marshal(v)
			g.Bucket(b).Put(k, j)
		}
		put(facBucket, []byte("f1"), &Facility{ID: "f1", AcceptsAccounts: true})
		for _, p := range prods {
			put(prodBucket, []byte(p.ID), p)
		}
		put(blockBucket, []byte("XX99999"), &Block{Plate: "XX99999", Reason: "stolen"})
		for i, rec := range recs {
			ref := binary.BigEndian.AppendUint64(nil, uint64(i+1))
			var v []byte
			var id []byte
			switch r := rec.(type) {
			case *Permit:
				v, id = encodePermitV1(r), append([]byte{kindPermit}, r.ID...)
			case *Account:
				v, id = encodeAccountV1(r), append([]byte{kindAccount}, r.ID...)
			}
			g.Bucket(recBucket).Put(ref, v)
			g.Bucket(idBucket).Put(id, ref)
		}
		for k, v := range map[string]uint64{"live": 1, "seq": seq, "ver": 3} {
			if err := putU64(meta, []byte(k), v); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestOpenConvertsFormatV1(t *testing.T) {
	db, err := state.Open(t.TempDir(), state.Migrations)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	until := Date(2026, 12, 31)
	p := &Permit{ID: "P1", Tenant: "t1", Product: "m", Status: Active, ValidFrom: Date(2026, 1, 1), ValidUntil: &until,
		Plates: []string{"AB12345", "CD12345"}, Reference: "emp 7"}
	a := &Account{ID: "A1", Kind: Personal, Plates: []string{"EF12345"}}
	writeV1(t, db.DB, 7, []*Product{{ID: "m", Facility: "f1"}}, p, a)

	s, err := Open(db.DB)
	if err != nil {
		t.Fatal(err)
	}
	if c := s.Converted(); c != (Conversion{From: formatV1, Records: 2}) {
		t.Errorf("conversion %+v", c)
	}
	if seq, _ := s.Seq(); seq != 7 {
		t.Errorf("seq %d after conversion, want 7", seq)
	}
	err = s.View(func(v *View) error {
		hs, err := v.Holders(plate.ConfusionKey("CD12345"))
		want := *p
		want.Plates = nil // Holders leaves them out
		if err != nil || len(hs) != 1 || !reflect.DeepEqual(hs[0].Permit, &want) || hs[0].Plate != "CD12345" || hs[0].Pos != 1 {
			t.Errorf("holders of CD12345: %+v, %v", hs, err)
		}
		if got, err := v.Permit("P1"); err != nil || !reflect.DeepEqual(got, p) {
			t.Errorf("permit: %+v, %v", got, err)
		}
		if got, err := v.Account("A1"); err != nil || !reflect.DeepEqual(got, a) {
			t.Errorf("account: %+v, %v", got, err)
		}
		if b, err := v.Blocked("XX99999"); err != nil || b == nil || b.Reason != "stolen" {
			t.Errorf("block list: %+v, %v", b, err)
		}
		if v.Product("m") == nil || v.Facility("f1") == nil {
			t.Error("small tables lost")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// Opened again, it is current: nothing to convert.
	s, err = Open(db.DB)
	if err != nil || s.Converted() != (Conversion{}) {
		t.Errorf("second open: %+v, %v", s.Converted(), err)
	}
}

func TestOpenDropsUnconvertibleV1(t *testing.T) {
	db, err := state.Open(t.TempDir(), state.Migrations)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	// A permit whose product is gone: a snapshot would refuse it.
	p := &Permit{ID: "P1", Tenant: "t1", Product: "gone", Status: Active, ValidFrom: Date(2026, 1, 1), Plates: []string{"AB12345"}}
	writeV1(t, db.DB, 9, nil, p)
	s, err := Open(db.DB)
	if err != nil {
		t.Fatal(err)
	}
	if c := s.Converted(); c.From != formatV1 || c.Dropped == "" {
		t.Errorf("conversion %+v, want the data dropped", c)
	}
	if seq, _ := s.Seq(); seq != 0 {
		t.Errorf("seq %d, want 0 so that sync resyncs", seq)
	}
	s.View(func(v *View) error {
		if hs, _ := v.Holders(plate.ConfusionKey("AB12345")); len(hs) != 0 {
			t.Errorf("dropped data still answers: %+v", hs)
		}
		return nil
	})
}
