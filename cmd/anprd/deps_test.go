package main

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// The decision logic, permits, presence, outbox and protocol must build
// and test without cgo, hardware or a broker. Only the leaf packages that
// talk to those, and the wiring that imports the leaves, may depend on
// them. A package not listed in allowedHeavy may use none of them.
var heavyModules = []string{
	"gocv.io/x/gocv",
	"github.com/yalue/onnxruntime_go",
	"github.com/eclipse/paho.mqtt.golang",
	"github.com/warthog618/go-gpiocdev",
}

// allowedHeavy maps a package (and the packages below it) to the heavy
// modules it may depend on. The longest match wins.
var allowedHeavy = map[string][]string{
	"anprd/cmd":             heavyModules, // main packages wire everything
	"anprd/internal/daemon": heavyModules, // the one place that wires components
	"anprd/camera":          {"gocv.io/x/gocv", "github.com/yalue/onnxruntime_go"},
	"anprd/train":           {"gocv.io/x/gocv", "github.com/yalue/onnxruntime_go"}, // the recogniser's training tools
	"anprd/gate/gpiocdev":   {"github.com/warthog618/go-gpiocdev"},
	"anprd/gate/setup":      {"github.com/warthog618/go-gpiocdev"}, // builds a lane's barrier from the config
	"anprd/sync/mqtt":       {"github.com/eclipse/paho.mqtt.golang"},
}

func allowedFor(pkg string) []string {
	best := ""
	for p := range allowedHeavy {
		if pkg == p || strings.HasPrefix(pkg, p+"/") {
			if len(p) > len(best) {
				best = p
			}
		}
	}
	if best == "" {
		return nil
	}
	return allowedHeavy[best]
}

// violations lists "pkg imports heavy" for every package in deps (package
// -> its transitive dependencies) that reaches a heavy module it may not.
func violations(deps map[string][]string) []string {
	var out []string
	for pkg, ds := range deps {
		ok := allowedFor(pkg)
		for _, d := range ds {
			for _, h := range heavyModules {
				if (d == h || strings.HasPrefix(d, h+"/")) && !slices.Contains(ok, h) {
					out = append(out, pkg+" depends on "+d)
				}
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func TestCorePackagesStayLight(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}} {{join .Deps \" \"}}", "anprd/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	deps := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		deps[f[0]] = f[1:]
	}
	if len(deps) < 5 {
		t.Fatalf("go list found only %d packages", len(deps))
	}
	for _, v := range violations(deps) {
		t.Error(v)
	}
}

// corePackages are the packages that keep people and cars safe and
// decide who passes: the barrier's state machine, the lane orchestration,
// the simulated barrier and the decision. They must build and test on
// any machine, without cgo, hardware or a broker, and must never be
// given an allowance in allowedHeavy.
var corePackages = []string{
	"anprd/gate", "anprd/gate/lane", "anprd/gate/sim", "anprd/gate/gatetest", "anprd/gate/lane/lanetest",
	"anprd/internal/access", "anprd/internal/decide", "anprd/internal/presence", "anprd/internal/passage",
}

func TestCorePackagesHaveNoAllowance(t *testing.T) {
	for _, p := range corePackages {
		if a := allowedFor(p); len(a) > 0 {
			t.Errorf("%s is allowed %v; core packages may use no heavy module", p, a)
		}
	}
	out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", "anprd/gate", "anprd/gate/lane", "anprd/gate/sim").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	deps := strings.Fields(string(out))
	if !slices.Contains(deps, "anprd/gate/lane") || !slices.Contains(deps, "anprd/internal/access") {
		t.Fatalf("go list -deps gave %d packages without the core ones", len(deps))
	}
	for _, d := range deps {
		for _, h := range heavyModules {
			if d == h || strings.HasPrefix(d, h+"/") {
				t.Errorf("the barrier and lane packages depend on %s", d)
			}
		}
	}
}

func TestViolationsCatchesHeavyImports(t *testing.T) {
	got := violations(map[string][]string{
		"anprd/internal/decision": {"fmt", "github.com/eclipse/paho.mqtt.golang/packets"},
		"anprd/sync/outbox":       {"go.etcd.io/bbolt", "gocv.io/x/gocv"},
		"anprd/camera/reader":     {"gocv.io/x/gocv", "github.com/warthog618/go-gpiocdev"},
		"anprd/sync/mqtt":         {"github.com/eclipse/paho.mqtt.golang"},
		"anprd/internal/daemon":   heavyModules,
		"anprd/cameraman":         {"gocv.io/x/gocv"}, // prefix of a name is not the package
		"anprd/gate":              {"github.com/warthog618/go-gpiocdev"},
		"anprd/gate/lane":         {"gocv.io/x/gocv", "github.com/eclipse/paho.mqtt.golang"},
		"anprd/gate/gpiocdev":     {"github.com/warthog618/go-gpiocdev"},
		"anprd/gate/setup":        {"github.com/warthog618/go-gpiocdev"},
	})
	want := []string{
		"anprd/camera/reader depends on github.com/warthog618/go-gpiocdev",
		"anprd/cameraman depends on gocv.io/x/gocv",
		"anprd/gate depends on github.com/warthog618/go-gpiocdev",
		"anprd/gate/lane depends on github.com/eclipse/paho.mqtt.golang",
		"anprd/gate/lane depends on gocv.io/x/gocv",
		"anprd/internal/decision depends on github.com/eclipse/paho.mqtt.golang/packets",
		"anprd/sync/outbox depends on gocv.io/x/gocv",
	}
	if !slices.Equal(got, want) {
		t.Errorf("violations:\n got %q\nwant %q", got, want)
	}
}
