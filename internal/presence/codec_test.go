package presence

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

func codecVehicles() []*Vehicle {
	oslo := time.FixedZone("", 2*3600)
	return []*Vehicle{
		{Facility: "f1", Plate: "AB12345", Entered: time.Date(2026, 4, 15, 8, 0, 0, 5, time.UTC), Lane: "in-1", Class: "permit",
			Permit: "P1", Pool: "acme", Source: FromLane, Flags: []string{"near_match", "anti_passback"}},
		{Facility: "garage 2", Plate: "EL4321", Entered: time.Date(2026, 3, 29, 3, 30, 0, 0, oslo), Account: "A1", NotCounted: true, Source: FromPeer},
		{Facility: "f", Plate: "X", Entered: time.Unix(1, 0).UTC(), Source: FromCorrection},
	}
}

func TestCodecRoundTrip(t *testing.T) {
	for _, v := range codecVehicles() {
		k := vehKey(v.Facility, v.Plate)
		got, err := decode(k, encode(v))
		if err != nil || !reflect.DeepEqual(got, v) {
			t.Errorf("round trip:\n got %+v (%v)\nwant %+v", got, err, v)
		}
		// A record an older anprd wrote as JSON is still read.
		j, _ := json.Marshal(v)
		if got, err := decode(k, j); err != nil || got.Plate != v.Plate || !got.Entered.Equal(v.Entered) || got.Permit != v.Permit {
			t.Errorf("JSON record: %+v, %v", got, err)
		}
		b := encode(v)
		for i := range b {
			if _, err := decode(k, b[:i]); err == nil {
				t.Errorf("%d of %d bytes decoded", i, len(b))
			}
		}
	}
}

// FuzzDecode: a damaged vehicle record is an error or a vehicle that
// encodes and decodes back to itself, never a panic.
func FuzzDecode(f *testing.F) {
	for _, v := range codecVehicles() {
		f.Add(vehKey(v.Facility, v.Plate), encode(v))
	}
	f.Add([]byte("f\x00A\x00A"), []byte(`{"plate":"A"}`))
	f.Fuzz(func(t *testing.T, k, b []byte) {
		v, err := decode(k, b)
		if err != nil || len(b) > 0 && b[0] == '{' || bytes.Count(k, []byte{0}) != 2 {
			return
		}
		again, err := decode(k, encode(v))
		if err != nil || !reflect.DeepEqual(again, v) {
			t.Errorf("%+v read from %x comes back as %+v, %v", v, b, again, err)
		}
	})
}
