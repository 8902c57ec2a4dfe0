// Command anprctl is the technicians' and operators' tool for an anprd box:
// it asks the daemon's local status endpoint how things are. It only reads
// from the box; actions come through the daemon's own interfaces. Its
// bench commands measure the access decision and the uplink on synthetic
// data, and a whole lane (reader, decision, simulated barrier) on a clip.
// Its doctor command checks a box's set-up (config, models, cameras,
// broker, GPIO lines, clock, unit) and says what to fix, without driving
// anything. Its central-side commands (keys, permits push, passages tail) speak the
// MQTT protocol as the operator's central system would, for tests, demos
// and operators without their own tooling. Its demo command runs the
// whole product on one machine (a broker, the permits, anprd with
// simulated barriers on rendered cars) and checks what the central
// system receives.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"anprd/internal/buildinfo"
	"anprd/internal/status"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

const usageText = `Usage: anprctl [-addr HOST:PORT] COMMAND

Commands:
  status     what the daemon says about itself: site, lanes, components
  ready      exit 0 when the daemon is ready, 1 when not (prints why)
  version    print anprctl's version
  doctor     check this box's set-up and say what to fix (anprctl doctor -h)
  read       read the plates in image files (anprctl read -h)
  eval       score the reader on a labelled folder and say where it fails (anprctl eval -h)
  synth      write a synthetic clip of a passing car, or the demo's cars at a lane (anprctl synth -h)
  demo       run the whole product on this machine: broker, permits, anprd with simulated
             barriers, rendered cars, the passages as the central system gets them (demo -h)
  bench      time the access decision (bench decide -h), the upload of passages to a broker
             (bench uplink -h), or a lane from loop edge to open command on a clip (bench lane -h)

Central side (docs/protocol.md):
  keys       keys gen: make the central system's Ed25519 key pair
  permits    permits push FILE: publish permit data, signed, as a snapshot or a delta
  passages   passages tail: print the site's passages and count unique ids and duplicates

Flags:
`

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("anprctl", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:9810", "the daemon's status endpoint (status.listen in its config)")
	asJSON := fs.Bool("json", false, "print JSON: the daemon's status as it is, doctor's findings")
	timeout := fs.Duration("timeout", 5*time.Second, "how long to wait for the daemon")
	fs.Usage = func() {
		fmt.Fprint(stderr, usageText)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	withArgs := map[string]bool{"read": true, "eval": true, "synth": true, "demo": true, "bench": true, "keys": true, "permits": true, "passages": true, "doctor": true}
	if fs.NArg() < 1 || fs.NArg() > 1 && !withArgs[fs.Arg(0)] {
		fs.Usage()
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	base := "http://" + *addr
	switch fs.Arg(0) {
	case "doctor":
		a := fs.Args()[1:]
		if *asJSON {
			a = append([]string{"-json"}, a...)
		}
		return runDoctor(a, stdout, stderr)
	case "read":
		return runRead(fs.Args()[1:], stdout, stderr)
	case "eval":
		return runEval(fs.Args()[1:], stdout, stderr)
	case "synth":
		return runSynth(fs.Args()[1:], stdout, stderr)
	case "demo":
		return runDemo(fs.Args()[1:], stdout, stderr)
	case "bench":
		return runBench(fs.Args()[1:], stdout, stderr)
	case "keys":
		return runKeys(fs.Args()[1:], stdout, stderr)
	case "permits":
		return runPermits(fs.Args()[1:], stdout, stderr)
	case "passages":
		return runPassages(fs.Args()[1:], stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, buildinfo.Get())
		return 0
	case "ready":
		code, body, err := get(ctx, base+"/readyz")
		if err != nil {
			fmt.Fprintf(stderr, "anprctl: %v\n", err)
			return 1
		}
		fmt.Fprint(stdout, body)
		if code != http.StatusOK {
			return 1
		}
		return 0
	case "status":
		code, body, err := get(ctx, base+"/api/v1/status")
		if err != nil {
			fmt.Fprintf(stderr, "anprctl: %v\n", err)
			return 1
		}
		if code != http.StatusOK {
			fmt.Fprintf(stderr, "anprctl: %s answered %d: %s\n", base, code, strings.TrimSpace(body))
			return 1
		}
		if *asJSON {
			fmt.Fprint(stdout, body)
			return 0
		}
		var rep status.Report
		if err := json.Unmarshal([]byte(body), &rep); err != nil {
			fmt.Fprintf(stderr, "anprctl: %s sent a status this anprctl cannot read: %v\n", base, err)
			return 1
		}
		printStatus(stdout, &rep)
		return 0
	default:
		fmt.Fprintf(stderr, "anprctl: unknown command %q\n", fs.Arg(0))
		fs.Usage()
		return 2
	}
}

func get(ctx context.Context, url string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", fmt.Errorf("cannot reach anprd: %w (is it running? systemctl status anprd)", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return 0, "", fmt.Errorf("reading %s: %w", url, err)
	}
	return resp.StatusCode, string(b), nil
}

func printStatus(w io.Writer, r *status.Report) {
	ready := "READY"
	if !r.Ready {
		ready = "NOT READY"
	}
	fmt.Fprintf(w, "anprd %s  %s  up %s\n", r.Version, ready, (time.Duration(r.UptimeSeconds) * time.Second).String())
	fmt.Fprintf(w, "site %s  device %s  %s  (%s)\n", r.Site.ID, r.Site.Device, r.Site.Name, r.Site.TimeZone)
	fmt.Fprintf(w, "config %s  %s\n", r.Config.Path, r.Config.Digest)
	fmt.Fprintf(w, "state %s  schema %d\n\n", r.StateDir, r.Schema)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "LANE\tDIRECTION\tMODE\tCAMERA")
	for _, l := range r.Lanes {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", l.ID, l.Direction, l.Mode, l.Camera)
	}
	fmt.Fprintln(tw)
	fmt.Fprintln(tw, "COMPONENT\tSTATE\tREADY\tSINCE\tDETAIL")
	for _, c := range r.Components {
		fmt.Fprintf(tw, "%s\t%s\t%v\t%s\t%s\n", c.Name, c.State, c.Ready, c.Since.Local().Format(time.DateTime), c.Detail)
	}
	tw.Flush()
}
