package central

import (
	"crypto/ed25519"
	"fmt"
	"strings"
	"testing"

	"anprd/internal/permit"
	"anprd/sync/protocol"
)

func TestReadRecords(t *testing.T) {
	csv := `kind,id,tenant,product,status,valid_from,valid_until,plates,facility,max_vehicles,reason,plate,op
facility,sentrum,,,,,,,,,,,
product,m,,,,,,,sentrum,3,,,
permit,p1,t1,m,active,2026-01-01,,ab 12345;el43210,,,,,
permit,p2,t1,m,active,2026-01-01,2026-06-30,CD12345,,,,,
block,,,,,,,,,,stolen,XY 99999,
permit,old,,,,,,,,,,,delete
`
	list := `[{"op":"put","facility":{"id":"sentrum"}},{"op":"put","product":{"id":"m","facility":"sentrum","max_vehicles":3}},
 {"op":"put","permit":{"id":"p1","tenant":"t1","product":"m","status":"active","valid_from":"2026-01-01","plates":["AB12345","EL43210"]}},
 {"op":"put","permit":{"id":"p2","tenant":"t1","product":"m","status":"active","valid_from":"2026-01-01","valid_until":"2026-06-30","plates":["CD12345"]}},
 {"op":"put","block":{"plate":"XY99999","reason":"stolen"}},{"op":"delete","permit":{"id":"old"}}]`
	obj := `{"facilities":[{"id":"sentrum"}],"products":[{"id":"m","facility":"sentrum","max_vehicles":3}],
 "permits":[{"id":"p1","tenant":"t1","product":"m","status":"active","valid_from":"2026-01-01","plates":["AB12345","EL43210"]},
  {"id":"p2","tenant":"t1","product":"m","status":"active","valid_from":"2026-01-01","valid_until":"2026-06-30","plates":["CD12345"]}],
 "blocks":[{"plate":"XY99999","reason":"stolen"}]}`
	summary := func(cs []permit.Change) string {
		var parts []string
		for _, c := range cs {
			switch {
			case c.Permit != nil:
				until := ""
				if c.Permit.ValidUntil != nil {
					until = c.Permit.ValidUntil.String()
				}
				parts = append(parts, string(c.Op)+" permit "+c.Permit.ID+" "+strings.Join(c.Permit.Plates, ",")+" "+until)
			case c.Block != nil:
				parts = append(parts, string(c.Op)+" block "+c.Block.Plate)
			case c.Product != nil:
				parts = append(parts, fmt.Sprintf("%s product %s %s %d", c.Op, c.Product.ID, c.Product.Facility, c.Product.MaxVehicles))
			case c.Facility != nil:
				parts = append(parts, string(c.Op)+" facility "+c.Facility.ID)
			}
		}
		return strings.Join(parts, "; ")
	}
	want := "put facility sentrum; put product m sentrum 3; put permit p1 AB12345,EL43210 ; put permit p2 CD12345 2026-06-30; put block XY99999; delete permit old  "
	for name, in := range map[string]string{"csv": csv, "object": obj, "list": list} {
		cs, err := ReadRecords([]byte(in))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		w := want
		if name == "object" {
			w = strings.TrimSuffix(want, "; delete permit old  ")
		}
		if got := summary(cs); got != w {
			t.Errorf("%s:\n got %s\nwant %s", name, got, w)
		}
	}
	for _, bad := range []string{
		"id,tenant\np1,t1\n",                       // no kind column
		"kind,id\nlorry,x\n",                       // unknown kind
		"kind,id,colour\npermit,p1,red\n",          // unknown field
		"kind,id,max_vehicles\nproduct,m,many\n",   // not a number
		`{"permits":[{"id":"p1"}],"garages":[]}`,   // unknown list
		`{"permits":[{"id":"p1","colour":"red"}]}`, // unknown field
		"kind,id,tenant,product,status,valid_from,plates\npermit,p1,t,m,maybe,2026-01-01,AB12345\n", // no such status
		"",
	} {
		if _, err := ReadRecords([]byte(bad)); err == nil {
			t.Errorf("ReadRecords(%q) accepted", bad)
		}
	}
}

func TestSnapshotChunksCheckOut(t *testing.T) {
	seed := make([]byte, 32)
	priv := ed25519.NewKeyFromSeed(seed)
	s := &Signer{Key: priv, Prefix: "anpr/v1", Site: "p1"}
	var cs []permit.Change
	cs = append(cs, permit.Change{Op: permit.Put, Facility: &permit.Facility{ID: "f"}})
	for i := range 25 {
		cs = append(cs, permit.Change{Op: permit.Put, Block: &permit.Block{Plate: "AB" + strings.Repeat("1", 3) + string(rune('A'+i)), Reason: "x"}})
	}
	ms, err := s.Snapshot("box-1", "snap", 4, cs, 10)
	if err != nil || len(ms) != 3 {
		t.Fatalf("%d chunks, %v", len(ms), err)
	}
	d := protocol.NewDigest()
	n := 0
	for i, m := range ms {
		body, err := protocol.Verify(priv.Public().(ed25519.PublicKey), m.Topic, m.Payload)
		if err != nil {
			t.Fatal(err)
		}
		c, changes, err := protocol.DecodeSnapshotChunk(body)
		if err != nil {
			t.Fatal(err)
		}
		if c.Chunk != i || c.Chunks != 3 || c.Records != 26 || c.Seq != 4 {
			t.Errorf("chunk %d: %+v", i, c)
		}
		d.Add(c.Changes)
		n += len(changes)
		if i == 2 && (d.String() != c.Digest || n != 26) {
			t.Errorf("digest %s, want %s; %d records", d, c.Digest, n)
		}
	}
}

func TestCounter(t *testing.T) {
	c := NewCounter()
	p := `{"id":"01ARZ3NDEKTSV4RRFFQ69G5FAV","site":"s","device":"d","lane":"l","direction":"entry","kind":"manual","time":"2026-11-24T08:00:00Z",` +
		`"gate":{"action":"opened","passed":false},"timings":{},"manual":{"source":"remote"}}`
	c.Add([]byte(p))
	if _, dup, _ := c.Add([]byte(p)); !dup {
		t.Error("second copy not a duplicate")
	}
	c.Add([]byte(`{"id":"x"}`))
	if u, d, b := c.Counts(); u != 1 || d != 1 || b != 1 {
		t.Errorf("counts %d %d %d", u, d, b)
	}
}
