package daemon

import (
	"context"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"anprd/camera/track"
	"anprd/camera/watch"
	"anprd/internal/passage"
	"anprd/internal/presence"
	"anprd/internal/status"

	"github.com/rs/zerolog"
)

const pageToken = "0123456789abcdef0123456789abcdef"

// TestPageDrivesTheDaemon runs the daemon with a simulated barrier and
// the action token, and uses the page as a technician would: it shows
// the lane and its loops, opens the barrier with a reason (a manual
// passage in the outbox, with the operator), removes a stuck vehicle
// from presence and asks for a resync (both in the audit log).
func TestPageDrivesTheDaemon(t *testing.T) {
	dir := t.TempDir()
	tokFile := filepath.Join(dir, "page.token")
	if err := os.WriteFile(tokFile, []byte(pageToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := validConfig(t, `version: 1
site: {id: oslo-p1, device: box-1}
state: {dir: `+dir+`}
status: {action_token_file: `+tokFile+`}
mqtt: {broker: "tcp://127.0.0.1:1"}
access: {facility: oslo-p1}
lanes:
  - id: in-1
    direction: entry
    camera: {source: `+filepath.Join(dir, "no-camera")+`}
    gate: {simulate: true, open: 1, arming_loop: 5, safety_loop: 2, open_switch: 3, closed_switch: 4}
  - id: ff-1
    direction: exit
    mode: free-flow
    camera: {source: `+filepath.Join(dir, "no-camera")+`}
`)
	d, err := New(Options{Config: cfg, Log: zerolog.Nop(), Notifier: &fakeNotifier{},
		ReaderCheck: noReader})
	if err != nil {
		t.Fatal(err)
	}
	ctx := runUntilCleanup(t, d)
	base := "http://" + d.StatusAddr()
	sim := d.gates["in-1"].built.Sim

	waitPage := func(what string, ok func(string) bool) string {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			_, body := getBody(t, base+"/live")
			if ok(body) {
				return body
			}
			if time.Now().After(deadline) {
				t.Fatalf("the page never showed %s:\n%s", what, body)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	if code, body := getBody(t, base+"/"); code != http.StatusOK || !strings.Contains(body, `action="/actions/open"`) {
		t.Fatalf("GET / = %d\n%s", code, body)
	}
	waitPage("the barrier closed", func(b string) bool { return strings.Contains(b, `class="state s-closed">closed<`) })
	sim.SetArming(true)
	waitPage("the arming loop occupied", func(b string) bool {
		return strings.Contains(b, `Arming loop</dt><dd><span class="warn">occupied</span>`)
	})
	sim.SetArming(false)

	post := func(path string, v url.Values) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, base+path, strings.NewReader(v.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b strings.Builder
		buf := make([]byte, 4096)
		n, _ := resp.Body.Read(buf)
		b.Write(buf[:n])
		return resp.StatusCode, b.String()
	}
	vals := func(kv ...string) url.Values {
		v := url.Values{"operator": {"kari.n"}, "token": {pageToken}}
		for i := 0; i+1 < len(kv); i += 2 {
			v.Set(kv[i], kv[i+1])
		}
		return v
	}

	if code, body := post("/actions/open", vals("lane", "in-1", "reason", "ticket machine broken", "token", "not-the-token-at-all")); code != http.StatusUnauthorized {
		t.Errorf("wrong token: %d %s", code, body)
	}
	if code, body := post("/actions/open", vals("lane", "ff-1", "reason", "test")); code != http.StatusConflict {
		t.Errorf("open a free-flow lane: %d %s", code, body)
	}
	if code, body := post("/actions/open", vals("lane", "in-1", "reason", "ticket machine broken")); code != http.StatusOK {
		t.Fatalf("open in-1: %d %s", code, body)
	}
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
	defer wcancel()
	if err := sim.WaitUp(wctx); err != nil {
		t.Fatalf("the arm did not go up: %v", err)
	}
	// The vehicle goes through: the lane records the manual passage.
	sim.SetSafety(true)
	time.Sleep(100 * time.Millisecond)
	sim.SetSafety(false)
	body := waitPage("the manual passage", func(b string) bool { return strings.Contains(b, "manual (page: kari.n)") })
	if !strings.Contains(body, `class="state s-`) {
		t.Errorf("no barrier state on the page")
	}
	var manual *passage.Passage
	for _, p := range d.page.recent() {
		if p.Kind == passage.Manual {
			manual = &p
			break
		}
	}
	if manual == nil {
		t.Fatal("no manual passage kept for the page")
	}
	stored, err := d.Outbox().Get(manual.ID)
	if err != nil || stored == nil {
		t.Fatalf("the manual passage is not in the outbox: %v", err)
	}
	if m := stored.Passage.Manual; m == nil || m.Source != "page" || m.Operator != "kari.n" || m.Reason != "ticket machine broken" || !stored.Passage.Gate.Passed {
		t.Errorf("manual passage in the outbox = %+v", stored.Passage)
	}

	// A vehicle counted inside whose exit was missed.
	if err := d.presence.Add(presence.Vehicle{Facility: "oslo-p1", Plate: "EL12345", Entered: time.Now().Add(-time.Hour), Lane: "in-1"}); err != nil {
		t.Fatal(err)
	}
	waitPage("the vehicle inside", func(b string) bool { return strings.Contains(b, `<td class="plate">EL12345</td>`) })
	if code, body := post("/actions/presence/remove", vals("plate", "el 12345", "reason", "exit read missed")); code != http.StatusOK || !strings.Contains(body, "EL12345 removed") {
		t.Errorf("remove EL12345: %d %s", code, body)
	}
	if vs, _ := d.presence.List("oslo-p1"); len(vs) != 0 {
		t.Errorf("still inside: %+v", vs)
	}
	// No central key in this config: a resync would be refused, and says so.
	if code, body := post("/actions/resync", vals("reason", "permits look stale")); code != http.StatusInternalServerError || !strings.Contains(body, "no central key") {
		t.Errorf("resync without a key: %d %s", code, body)
	}

	audit, err := status.OpenAudit(d.db.DB, time.Hour, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	entries, err := audit.Recent(10)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Action+" "+e.Lane+e.Plate+" "+e.Result)
	}
	want := []string{
		"resync  resync not requested: no central key (mqtt.central_key_file): the permit data would be refused",
		"presence_remove EL12345 ok",
		"open in-1 ok",
		"open ff-1 lane ff-1: the lane is free-flow: it has no barrier",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("audit log:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestPageActionsOffWithoutToken: no status.action_token_file, no
// actions; and a token file that went bad since Validate fails start-up
// naming the key.
func TestPageActionsOffWithoutToken(t *testing.T) {
	cfg := testConfig(t)
	d, err := New(Options{Config: cfg, Log: zerolog.Nop(), Notifier: &fakeNotifier{}, ReaderCheck: fakeReader})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	base := "http://" + d.StatusAddr()
	if code, body := getBody(t, base+"/"); code != http.StatusOK || !strings.Contains(body, "Actions are off") {
		t.Errorf("GET / = %d", code)
	}
	resp, err := http.PostForm(base+"/actions/resync", url.Values{"operator": {"x"}, "reason": {"why not"}, "token": {"anything-at-all-1"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("action without a token file = %d", resp.StatusCode)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	cfg = testConfig(t)
	cfg.Status.ActionTokenFile = filepath.Join(t.TempDir(), "gone.token")
	if _, err := New(Options{Config: cfg, Log: zerolog.Nop(), Notifier: &fakeNotifier{}, ReaderCheck: fakeReader}); err == nil ||
		!strings.Contains(err.Error(), "status.action_token_file") {
		t.Errorf("New with a missing token file: %v", err)
	}
}

// TestPageReadsGetTheirDecision: a track's final event replaces its
// early one, and a read shows the decision of the passage of its plate
// (by its crop, or by plate and time).
func TestPageReadsGetTheirDecision(t *testing.T) {
	p := newPageData()
	t0 := time.Date(2026, 12, 1, 14, 0, 0, 0, time.UTC)
	early := watch.Event{Event: track.Event{Kind: track.Early, Plate: "EL12345", Conf: 0.9, TrackID: 7, Last: t0}}
	p.addRead("in-1", early)
	final := early
	final.Kind, final.Last, final.PlateImage = track.Final, t0.Add(time.Second), "2026-12-01/140001.000-in-1-7-plate.jpg"
	p.addRead("in-1", final)
	p.addRead("in-1", watch.Event{Event: track.Event{Kind: track.Final, Plate: "AB12345", TrackID: 8, Last: t0.Add(5 * time.Second)}})
	p.addRead("out-1", watch.Event{Event: track.Event{Kind: track.Final, Plate: "EL12345", TrackID: 9, Last: t0.Add(5 * time.Second)}})
	for i := range pageReads + 2 {
		p.addRead("ff-1", watch.Event{Event: track.Event{Kind: track.Final, Plate: "X", TrackID: uint64(100 + i)}})
	}
	p.addPassage(passage.Passage{Lane: "in-1", Read: &passage.Read{Plate: "EL12345"}, Evidence: passage.Evidence{Plate: final.PlateImage},
		Decision: &passage.Decision{Class: "permit", Action: "open"}, Gate: passage.Gate{Action: passage.Opened}})
	p.addPassage(passage.Passage{Lane: "in-1", Read: &passage.Read{Plate: "AB12345"}, Timings: passage.Timings{Decided: t0.Add(6 * time.Second)},
		Decision: &passage.Decision{Class: "unregistered", Action: "deny"}, Gate: passage.Gate{Action: passage.Kept}})
	p.addPassage(passage.Passage{Lane: "out-1", Read: &passage.Read{Plate: "EL12345"}, Timings: passage.Timings{Decided: t0.Add(time.Hour)},
		Decision: &passage.Decision{Class: "permit", Action: "open"}})

	in := p.lane("in-1")
	if len(in) != 2 || in[0].Plate != "AB12345" || in[1].Plate != "EL12345" || !in[1].Final || in[1].Crop != final.PlateImage {
		t.Fatalf("in-1 reads = %+v", in)
	}
	if in[0].Decision == nil || in[0].Decision.Class != "unregistered" || in[0].Gate.Action != passage.Kept {
		t.Errorf("AB12345 decision = %+v", in[0].Decision)
	}
	if in[1].Decision == nil || in[1].Decision.Class != "permit" {
		t.Errorf("EL12345 decision = %+v", in[1].Decision)
	}
	if out := p.lane("out-1"); len(out) != 1 || out[0].Decision != nil {
		t.Errorf("out-1: a passage an hour later is not this read's: %+v", out)
	}
	if ff := p.lane("ff-1"); len(ff) != pageReads {
		t.Errorf("ff-1 keeps %d reads, want %d", len(ff), pageReads)
	}
}
