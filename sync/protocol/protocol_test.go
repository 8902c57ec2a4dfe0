package protocol

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"anprd/internal/permit"
	"anprd/internal/presence"
)

var tp = Topics{Prefix: "anpr/v1", Site: "oslo-sentrum", Device: "box-1"}

func TestTopics(t *testing.T) {
	for got, want := range map[string]string{
		tp.Passage():                           "anpr/v1/oslo-sentrum/box-1/passage",
		tp.Presence():                          "anpr/v1/oslo-sentrum/box-1/presence",
		tp.Status():                            "anpr/v1/oslo-sentrum/box-1/status",
		tp.SiteDelta():                         "anpr/v1/oslo-sentrum/_all/to/sync/delta",
		tp.Delta():                             "anpr/v1/oslo-sentrum/box-1/to/sync/delta",
		tp.Snapshot():                          "anpr/v1/oslo-sentrum/box-1/to/sync/snapshot",
		tp.Command():                           "anpr/v1/oslo-sentrum/box-1/to/command",
		tp.Reply():                             "anpr/v1/oslo-sentrum/box-1/reply",
		tp.PeerPresence():                      "anpr/v1/oslo-sentrum/+/presence",
		tp.Evidence([16]byte{}, EvidenceScene): "anpr/v1/oslo-sentrum/box-1/evidence/00000000000000000000000000/scene",
	} {
		if got != want {
			t.Errorf("topic %s, want %s", got, want)
		}
	}
	for topic, dev := range map[string]string{
		"anpr/v1/oslo-sentrum/box-2/presence": "box-2",
		"anpr/v1/oslo-sentrum/box-2":          "",
		"anpr/v1/other/box-2/presence":        "",
		"anpr/v1/oslo-sentrum-x/box-2/p":      "",
	} {
		if got := tp.DeviceOf(topic); got != dev {
			t.Errorf("DeviceOf(%s) = %q, want %q", topic, got, dev)
		}
	}
}

func TestSignVerify(t *testing.T) {
	key := exampleKey()
	pub := key.Public().(ed25519.PublicKey)
	other := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{1}, 32))
	body := []byte(`{"seq":1,"changes":[]}`)
	good, err := Sign(key, tp.SiteDelta(), body)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := Verify(pub, tp.SiteDelta(), good); err != nil || !bytes.Equal(got, body) {
		t.Fatalf("Verify = %s, %v", got, err)
	}
	// The signed bytes are exactly as documented.
	var env Envelope
	json.Unmarshal(good, &env)
	want := append([]byte("anpr-sig-v1\x00"+tp.SiteDelta()+"\x00"), body...)
	if !ed25519.Verify(pub, want, env.Sig) || env.Key != KeyID(pub) || env.Key != "2e0f28b5cbdd4319" {
		t.Errorf("signature is not over the documented bytes, or key id %s", env.Key)
	}
	otherSigned, _ := Sign(other, tp.SiteDelta(), body)
	mangled := append([]byte{}, good...)
	i := bytes.Index(mangled, []byte(`"sig":"`)) + len(`"sig":"`)
	mangled[i] ^= 'A' ^ 'B' // another base64 letter
	shortSig := []byte(`{"v":1,"alg":"ed25519","key":"2e0f28b5cbdd4319","sig":"` + base64.StdEncoding.EncodeToString([]byte("short")) + `","body":{}}`)
	for _, tt := range []struct {
		name    string
		key     ed25519.PublicKey
		topic   string
		payload []byte
		want    RejectReason
	}{
		{"other topic", pub, tp.Delta(), good, RejectBadSignature},
		{"other key", pub, tp.SiteDelta(), otherSigned, RejectUnknownKey},
		{"body changed", pub, tp.SiteDelta(), bytes.Replace(good, []byte(`"seq":1`), []byte(`"seq":2`), 1), RejectBadSignature},
		{"signature changed", pub, tp.SiteDelta(), mangled, RejectBadSignature},
		{"short signature", pub, tp.SiteDelta(), shortSig, RejectBadSignature},
		{"bare body", pub, tp.SiteDelta(), body, RejectUnsigned},
		{"no signature", pub, tp.SiteDelta(), []byte(`{"v":1,"alg":"ed25519","key":"x","sig":"","body":{}}`), RejectUnsigned},
		{"other algorithm", pub, tp.SiteDelta(), bytes.Replace(good, []byte(`"ed25519"`), []byte(`"none"`), 1), RejectBadSignature},
		{"version 2", pub, tp.SiteDelta(), bytes.Replace(good, []byte(`"v":1`), []byte(`"v":2`), 1), RejectMalformed},
		{"extra field", pub, tp.SiteDelta(), bytes.Replace(good, []byte(`"v":1`), []byte(`"v":1,"x":0`), 1), RejectMalformed},
		{"trailing data", pub, tp.SiteDelta(), append(append([]byte{}, good...), "{}"...), RejectMalformed},
		{"not JSON", pub, tp.SiteDelta(), []byte("\xff\xd8\xff"), RejectMalformed},
		{"body not an object", pub, tp.SiteDelta(), []byte(`{"v":1,"alg":"ed25519","key":"k","sig":"AAAA","body":[1]}`), RejectMalformed},
		{"too large", pub, tp.SiteDelta(), make([]byte, MaxPayload+1), RejectTooLarge},
		{"no key configured", nil, tp.SiteDelta(), good, RejectNoKey},
	} {
		_, err := Verify(tt.key, tt.topic, tt.payload)
		if ReasonOf(err) != tt.want || err == nil {
			t.Errorf("%s: %v, want %s", tt.name, err, tt.want)
		}
	}
	if _, err := Sign(key, "t", []byte("[1]")); err == nil {
		t.Error("signed a body that is not an object")
	}
}

func TestKeysPEM(t *testing.T) {
	key := exampleKey()
	pub := key.Public().(ed25519.PublicKey)
	p2, err := ParsePublicKey(MarshalPublicKey(pub))
	if err != nil || !p2.Equal(pub) {
		t.Fatalf("public key round trip: %v", err)
	}
	k2, err := ParsePrivateKey(MarshalPrivateKey(key))
	if err != nil || !k2.Equal(key) {
		t.Fatalf("private key round trip: %v", err)
	}
	if _, err := ParsePublicKey(MarshalPrivateKey(key)); err == nil {
		t.Error("a private key read as the public one")
	}
	if _, err := ParsePrivateKey([]byte("junk")); err == nil {
		t.Error("junk read as a key")
	}
}

func TestDecodeCommand(t *testing.T) {
	now := `"2026-11-24T07:41:03Z"`
	for _, tt := range []struct {
		body string
		ok   bool
	}{
		{`{"id":"c1","type":"open","issued":` + now + `,"lane":"in-1","operator":"kari","reason":"paid"}`, true},
		{`{"id":"c1","type":"ping","issued":` + now + `}`, true},
		{`{"id":"c1","type":"resync","issued":` + now + `}`, true},
		{`{"id":"c1","type":"open","issued":` + now + `,"lane":"in-1","operator":"kari"}`, false},
		{`{"id":"c1","type":"open","issued":` + now + `,"lane":"IN 1","operator":"k","reason":"r"}`, false},
		{`{"id":"c1","type":"open","issued":` + now + `,"lane":"in-1","operator":"k\u0007","reason":"r"}`, false},
		{`{"id":"c1","type":"open","issued":` + now + `,"lane":"in-1","operator":"k","reason":"` + strings.Repeat("x", 201) + `"}`, false},
		{`{"id":"c1","type":"ping","issued":` + now + `,"lane":"in-1"}`, false},
		{`{"id":"","type":"ping","issued":` + now + `}`, false},
		{`{"id":"c/1","type":"ping","issued":` + now + `}`, false},
		{`{"id":"c1","type":"ping"}`, false},
		{`{"id":"c1","type":"reboot","issued":` + now + `}`, false},
		{`{"id":"c1","type":"ping","issued":` + now + `,"force":true}`, false},
	} {
		c, err := DecodeCommand([]byte(tt.body))
		if (err == nil) != tt.ok || (err != nil && c != nil) {
			t.Errorf("DecodeCommand(%s) = %+v, %v", tt.body, c, err)
		}
	}
}

func TestDecodePresence(t *testing.T) {
	at := time.Date(2026, 11, 24, 8, 0, 0, 0, time.UTC)
	good := Presence{Passage: [16]byte{1}, Device: "box-2", Time: at, Facility: "p1",
		Enter: &presence.Vehicle{Facility: "p1", Plate: "EL43210", Entered: at}}
	for _, tt := range []struct {
		name   string
		change func(*Presence)
		ok     bool
	}{
		{"good", func(*Presence) {}, true},
		{"leave only", func(p *Presence) { p.Enter, p.Leave = nil, "EL43210" }, true},
		{"nothing", func(p *Presence) { p.Enter = nil }, false},
		{"no passage", func(p *Presence) { p.Passage = [16]byte{} }, false},
		{"device", func(p *Presence) { p.Device = "Box 2" }, false},
		{"plate not normalised", func(p *Presence) { p.Enter.Plate = "el 43210" }, false},
		{"leave not normalised", func(p *Presence) { p.Enter, p.Leave = nil, "el-43210" }, false},
		{"other facility inside", func(p *Presence) { p.Enter.Facility = "p2" }, false},
		{"no entry time", func(p *Presence) { p.Enter.Entered = time.Time{} }, false},
		{"NUL in id", func(p *Presence) { p.Enter.Permit = "a\x00b" }, false},
	} {
		p := good
		v := *good.Enter
		p.Enter = &v
		tt.change(&p)
		b, _ := json.Marshal(p)
		_, err := DecodePresence(b)
		if (err == nil) != tt.ok {
			t.Errorf("%s: %v", tt.name, err)
		}
	}
}

func TestDecodeSnapshotChunk(t *testing.T) {
	ch := `[{"op":"put","block":{"plate":"ab12345","reason":"x"}}]`
	d := NewDigest()
	d.Add([]byte(ch))
	mk := func(mod func(*SnapshotChunk)) []byte {
		c := SnapshotChunk{Snapshot: "s1", Seq: 3, Chunk: 0, Chunks: 2, Records: 1, Digest: d.String(), Changes: json.RawMessage(ch)}
		mod(&c)
		b, _ := json.Marshal(c)
		return b
	}
	c, cs, err := DecodeSnapshotChunk(mk(func(*SnapshotChunk) {}))
	if err != nil || len(cs) != 1 || cs[0].Block.Plate != "AB12345" || string(c.Changes) != ch {
		t.Fatalf("good chunk: %+v %v %v", c, cs, err)
	}
	for name, mod := range map[string]func(*SnapshotChunk){
		"no id":       func(c *SnapshotChunk) { c.Snapshot = "" },
		"seq 0":       func(c *SnapshotChunk) { c.Seq = 0 },
		"chunk range": func(c *SnapshotChunk) { c.Chunk = 2 },
		"no chunks":   func(c *SnapshotChunk) { c.Chunks = 0 },
		"many chunks": func(c *SnapshotChunk) { c.Chunks = MaxChunks + 1 },
		"digest":      func(c *SnapshotChunk) { c.Digest = "md5:abc" },
		"negative":    func(c *SnapshotChunk) { c.Records = -1 },
		"delete":      func(c *SnapshotChunk) { c.Changes = json.RawMessage(`[{"op":"delete","block":{"plate":"AB12345"}}]`) },
		"no changes":  func(c *SnapshotChunk) { c.Changes = nil },
		"bad change":  func(c *SnapshotChunk) { c.Changes = json.RawMessage(`[{"op":"put"}]`) },
	} {
		if _, _, err := DecodeSnapshotChunk(mk(mod)); ReasonOf(err) != RejectInvalid && ReasonOf(err) != RejectMalformed {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestDecodeDelta(t *testing.T) {
	if b, err := DecodeDelta([]byte(`{"seq":2,"changes":[{"op":"delete","permit":{"id":"p"}}]}`)); err != nil || b.Seq != 2 {
		t.Errorf("good delta: %v", err)
	}
	if _, err := DecodeDelta([]byte(`{"seq":2,`)); ReasonOf(err) != RejectMalformed {
		t.Errorf("malformed: %v", err)
	}
	if _, err := DecodeDelta([]byte(`{"seq":0,"changes":[]}`)); ReasonOf(err) != RejectInvalid {
		t.Errorf("seq 0: %v", err)
	}
	if _, err := DecodeDelta(make([]byte, MaxPayload+1)); ReasonOf(err) != RejectTooLarge {
		t.Errorf("too large: %v", err)
	}
	var gap *permit.ErrGap
	if errors.As(&Reject{Reason: RejectGap, Err: &permit.ErrGap{Last: 1, Got: 3}}, &gap) != true {
		t.Error("Reject does not unwrap")
	}
}

// Fuzz every parser of what arrives over MQTT: none may panic, and what
// they accept must be what they claim.

func FuzzVerify(f *testing.F) {
	key := exampleKey()
	pub := key.Public().(ed25519.PublicKey)
	good, _ := Sign(key, tp.Command(), []byte(`{"id":"c1","type":"ping","issued":"2026-11-24T07:41:03Z"}`))
	f.Add(good)
	f.Add([]byte(`{"v":1,"alg":"ed25519","key":"2e0f28b5cbdd4319","sig":"AAAA","body":{}}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, payload []byte) {
		body, err := Verify(pub, tp.Command(), payload)
		if err != nil {
			if body != nil {
				t.Fatal("a body returned with an error")
			}
			return
		}
		// Accepted: it must really be signed, over exactly this body.
		var env Envelope
		if json.Unmarshal(payload, &env) != nil || !ed25519.Verify(pub, SignedBytes(tp.Command(), body), env.Sig) {
			t.Fatalf("accepted an envelope that does not verify: %q", payload)
		}
	})
}

func FuzzDecodeCommand(f *testing.F) {
	f.Add([]byte(`{"id":"c1","type":"open","issued":"2026-11-24T07:41:03Z","lane":"in-1","operator":"kari","reason":"paid"}`))
	f.Add([]byte(`{"id":"c1","type":"ping","issued":"2026-11-24T07:41:03Z"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		c, err := DecodeCommand(body)
		if err != nil {
			return
		}
		if c.Validate() != nil || (c.Type == CommandOpen && (c.Lane == "" || c.Operator == "" || c.Reason == "")) {
			t.Fatalf("accepted an invalid command %+v", c)
		}
	})
}

func FuzzDecodeSnapshotChunk(f *testing.F) {
	f.Add([]byte(`{"snapshot":"s1","seq":3,"chunk":0,"chunks":1,"records":1,"digest":"sha256:` + strings.Repeat("0", 64) + `","changes":[{"op":"put","block":{"plate":"AB12345","reason":"x"}}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		c, cs, err := DecodeSnapshotChunk(body)
		if err != nil {
			return
		}
		if c.Chunk >= c.Chunks || c.Seq == 0 {
			t.Fatalf("accepted %+v", c)
		}
		for _, ch := range cs {
			if ch.Op != permit.Put || ch.Validate() != nil {
				t.Fatalf("accepted a change %+v", ch)
			}
		}
	})
}

func FuzzDecodeDelta(f *testing.F) {
	f.Add([]byte(`{"seq":2,"changes":[{"op":"delete","permit":{"id":"p"}}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		b, err := DecodeDelta(body)
		if err == nil && b.Validate() != nil {
			t.Fatalf("accepted an invalid batch %+v", b)
		}
	})
}

func FuzzDecodePresence(f *testing.F) {
	f.Add([]byte(`{"passage":"01KAT3H0V8Q4M6Z2C7N5R9B1DX","device":"box-2","time":"2026-11-24T07:41:05Z","facility":"p1","leave":"EL43210"}`))
	f.Fuzz(func(t *testing.T, payload []byte) {
		p, err := DecodePresence(payload)
		if err == nil && p.Validate() != nil {
			t.Fatalf("accepted %+v", p)
		}
	})
}

func FuzzDecodePassage(f *testing.F) {
	f.Add([]byte(`{"id":"01KAT3H0V8Q4M6Z2C7N5R9B1DX","site":"s","device":"d","lane":"l","direction":"entry","kind":"manual","time":"2026-11-24T08:00:00Z","gate":{"action":"opened","passed":false},"timings":{},"manual":{"source":"remote"}}`))
	f.Fuzz(func(t *testing.T, payload []byte) {
		p, err := DecodePassage(payload)
		if err == nil && p.Validate() != nil {
			t.Fatalf("accepted %+v", p)
		}
	})
}

func FuzzDecodeAck(f *testing.F) {
	f.Add([]byte(`{"id":"a1","issued":"2026-11-24T08:00:00Z","passages":["01KAT3H0V8Q4M6Z2C7N5R9B1DX"]}`))
	f.Add([]byte(`{"id":"a1","issued":"2026-11-24T08:00:00Z","passages":[]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		a, err := DecodeAck(body)
		if err != nil {
			if ReasonOf(err) == RejectInvalid || ReasonOf(err) == RejectMalformed || ReasonOf(err) == RejectTooLarge {
				return
			}
			t.Fatalf("refused with reason %s: %v", ReasonOf(err), err)
		}
		if a.Validate() != nil || len(a.Passages) == 0 || len(a.Passages) > MaxAckPassages {
			t.Fatalf("accepted an invalid ack %+v", a)
		}
	})
}

func TestDecodeAckRefuses(t *testing.T) {
	for _, body := range []string{
		`{"id":"a1","issued":"2026-11-24T08:00:00Z","passages":[]}`,
		`{"id":"","issued":"2026-11-24T08:00:00Z","passages":["01KAT3H0V8Q4M6Z2C7N5R9B1DX"]}`,
		`{"id":"a1","passages":["01KAT3H0V8Q4M6Z2C7N5R9B1DX"]}`,
		`{"id":"a1","issued":"2026-11-24T08:00:00Z","passages":["nope"]}`,
		`{"id":"a1","issued":"2026-11-24T08:00:00Z","passages":["01KAT3H0V8Q4M6Z2C7N5R9B1DX"],"all":true}`,
	} {
		if a, err := DecodeAck([]byte(body)); err == nil {
			t.Errorf("%s: accepted %+v", body, a)
		}
	}
}
