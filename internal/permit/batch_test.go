package permit_test

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"anprd/internal/permit"
)

const goodBatch = `{"seq": 7, "changes": [
 {"op": "put", "facility": {"id": "sentrum", "zones": [{"id": "P2"}], "accepts_accounts": true}},
 {"op": "put", "product": {"id": "m", "facility": "sentrum", "zones": ["P2"],
   "windows": [{"days": ["mon","fri"], "from": "07:00", "to": "18:00"}], "concurrency": 1, "max_vehicles": 3}},
 {"op": "put", "pool": {"id": "acme", "tenant": "acme", "limit": 5}},
 {"op": "put", "permit": {"id": "453847", "tenant": "t1", "product": "m", "status": "active",
   "valid_from": "2020-04-01", "plates": ["ab 12345", "el-43210"], "pool": "acme", "reference": "Morten sin"}},
 {"op": "put", "permit": {"id": "9", "tenant": "t1", "product": "m", "status": "cancelled",
   "valid_from": "2026-04-10T14:05:00+02:00", "valid_until": "2026-05-31", "plates": ["ÆØ12345"]}},
 {"op": "put", "account": {"id": "a1", "kind": "company", "company": "acme", "cost_centre": "R&D", "plates": ["abc123"]}},
 {"op": "put", "block": {"plate": "bk 99999", "reason": "stolen", "expires": "2026-12-31T00:00:00Z"}},
 {"op": "put", "closure": {"id": "c1", "facility": "sentrum", "from": "2026-05-04T06:00:00+02:00", "until": "2026-05-04T18:00:00+02:00"}},
 {"op": "delete", "permit": {"id": "old"}},
 {"op": "delete", "block": {"plate": "XY12345"}}
]}`

func TestDecodeBatch(t *testing.T) {
	b, err := permit.DecodeBatch([]byte(goodBatch))
	if err != nil {
		t.Fatal(err)
	}
	if b.Seq != 7 || len(b.Changes) != 10 {
		t.Fatalf("batch %+v", b)
	}
	p := b.Changes[3].Permit
	if !reflect.DeepEqual(p.Plates, []string{"AB12345", "EL43210"}) {
		t.Errorf("plates not normalised: %v", p.Plates)
	}
	if !p.ValidFrom.IsDate() || p.ValidUntil != nil {
		t.Errorf("running permit from a date: %+v", p)
	}
	c := b.Changes[4].Permit
	if c.ValidFrom.IsDate() || !c.ValidFrom.Start(time.UTC).Equal(time.Date(2026, 4, 10, 12, 5, 0, 0, time.UTC)) || c.Plates[0] != "AO12345" {
		t.Errorf("day product: %+v", c)
	}
	if b.Changes[6].Block.Plate != "BK99999" {
		t.Errorf("block plate %q", b.Changes[6].Block.Plate)
	}
	// Round trip: what sync re-encodes decodes to the same batch.
	out, _ := json.Marshal(b)
	b2, err := permit.DecodeBatch(out)
	if err != nil || !reflect.DeepEqual(b, b2) {
		t.Errorf("round trip: %v\n%s", err, out)
	}
}

func TestDecodeBatchErrors(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`{"seq": 1, "changes": [], "extra": 1}`, `unknown field "extra"`},
		{`{"seq": 1, "changes": []} {}`, "more than one JSON value"},
		{`{"changes": []}`, "seq is required"},
		{`{"seq": 1, "changes": [{"op": "put"}]}`, "exactly one record"},
		{`{"seq": 1, "changes": [{"op": "put", "pool": {"id": "a", "tenant": "t", "limit": 1}, "block": {"plate": "AB1"}}]}`, "exactly one record"},
		{`{"seq": 1, "changes": [{"op": "upsert", "pool": {"id": "a", "tenant": "t", "limit": 1}}]}`, `op "upsert"`},
		{`{"seq": 1, "changes": [{"op": "put", "pool": {"id": "a", "tenant": "t", "limit": 0}}]}`, `pool "a": limit 0 is out of range`},
		{`{"seq": 1, "changes": [{"op": "put", "permit": {"id": "p", "tenant": "t", "product": "m", "status": "paid", "valid_from": "2026-01-01", "plates": []}}]}`, `status "paid"`},
		{`{"seq": 1, "changes": [{"op": "put", "permit": {"id": "p", "tenant": "t", "product": "m", "status": "cancelled", "valid_from": "2026-01-01", "plates": []}}]}`, "needs valid_until"},
		{`{"seq": 1, "changes": [{"op": "put", "permit": {"id": "p", "tenant": "t", "product": "m", "status": "active", "valid_from": "2026-02-01", "valid_until": "2026-01-31", "plates": []}}]}`, "before valid_from"},
		{`{"seq": 1, "changes": [{"op": "put", "permit": {"id": "p", "tenant": "t", "product": "m", "status": "active", "valid_from": "1.apr.2020", "plates": []}}]}`, "is not a date"},
		{`{"seq": 1, "changes": [{"op": "put", "permit": {"id": "p", "tenant": "t", "product": "m", "status": "active", "valid_from": "2026-01-01", "plates": ["AB1", "ab 1"]}}]}`, "registered twice"},
		{`{"seq": 1, "changes": [{"op": "put", "permit": {"id": "p", "tenant": "t", "product": "m", "status": "active", "valid_from": "2026-01-01", "plates": ["--"]}}]}`, "empty plate"},
		{`{"seq": 1, "changes": [{"op": "put", "product": {"id": "m", "facility": "f", "windows": [{"from": "07:00", "to": "25:00"}]}}]}`, `to "25:00"`},
		{`{"seq": 1, "changes": [{"op": "put", "product": {"id": "m", "facility": "f", "windows": [{"days": ["monday"], "from": "07:00", "to": "08:00"}]}}]}`, `day "monday"`},
		{`{"seq": 1, "changes": [{"op": "put", "account": {"id": "a", "kind": "company", "plates": []}}]}`, "company: id is required"},
		{`{"seq": 1, "changes": [{"op": "put", "closure": {"id": "c", "facility": "f", "from": "2026-05-04T18:00:00Z", "until": "2026-05-04T06:00:00Z"}}]}`, "is not after"},
		{`{"seq": 1, "changes": [{"op": "delete", "permit": {"id": ""}}]}`, "id is required"},
		{`{"seq": 1, "changes": [{"op": "put", "facility": {"id": "a\u0000b"}}]}`, "control characters"},
	} {
		_, err := permit.DecodeBatch([]byte(tc.in))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s\n\terr = %v, want %q", tc.in, err, tc.want)
		}
	}
}

// FuzzDecodeBatch: batches are outside input (sync, issue 5). DecodeBatch
// must never panic; what it accepts must survive re-encoding unchanged,
// and must apply to a store or be refused with an error, never half.
func FuzzDecodeBatch(f *testing.F) {
	f.Add([]byte(goodBatch))
	f.Add([]byte(`{"seq": 1, "changes": [{"op": "delete", "block": {"plate": "ab1"}}]}`))
	f.Add([]byte(`{"seq": 18446744073709551615, "changes": null}`))
	f.Add([]byte(`{"seq":1,"changes":[{"op":"put","permit":{"id":"p","tenant":"t","product":"m","status":"active","valid_from":"2026-01-01T00:00:00.5Z","valid_until":"2026-01-01","plates":["\u00c6"]}}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := permit.DecodeBatch(data)
		if err != nil {
			if b != nil {
				t.Fatal("a batch returned with its error")
			}
			return
		}
		out, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		b2, err := permit.DecodeBatch(out)
		if err != nil {
			t.Fatalf("re-encoded batch refused: %v\n%s", err, out)
		}
		out2, _ := json.Marshal(b2)
		if string(out) != string(out2) {
			t.Fatalf("not stable:\n%s\n%s", out, out2)
		}
	})
}

func TestDecodeChanges(t *testing.T) {
	cs, err := permit.DecodeChanges([]byte(`[{"op":"put","block":{"plate":"ab 123","reason":"theft"}},{"op":"delete","permit":{"id":"p1"}}]`))
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != 2 || cs[0].Block.Plate != "AB123" || cs[1].Permit.ID != "p1" {
		t.Errorf("DecodeChanges = %+v", cs)
	}
	for _, bad := range []string{
		`{"op":"put"}`, // not an array
		`[{"op":"put","block":{"plate":"AB123","reason":"x"},"extra":1}]`,
		`[{"op":"put"}]`,
		`[] []`,
	} {
		if cs, err := permit.DecodeChanges([]byte(bad)); err == nil {
			t.Errorf("DecodeChanges(%s) = %+v, want an error", bad, cs)
		}
	}
}
