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
	"anprd/gate/gpiocdev":   {"github.com/warthog618/go-gpiocdev"},
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

func TestViolationsCatchesHeavyImports(t *testing.T) {
	got := violations(map[string][]string{
		"anprd/internal/decision": {"fmt", "github.com/eclipse/paho.mqtt.golang/packets"},
		"anprd/sync/outbox":       {"go.etcd.io/bbolt", "gocv.io/x/gocv"},
		"anprd/camera/reader":     {"gocv.io/x/gocv", "github.com/warthog618/go-gpiocdev"},
		"anprd/sync/mqtt":         {"github.com/eclipse/paho.mqtt.golang"},
		"anprd/internal/daemon":   heavyModules,
		"anprd/cameraman":         {"gocv.io/x/gocv"}, // prefix of a name is not the package
	})
	want := []string{
		"anprd/camera/reader depends on github.com/warthog618/go-gpiocdev",
		"anprd/cameraman depends on gocv.io/x/gocv",
		"anprd/internal/decision depends on github.com/eclipse/paho.mqtt.golang/packets",
		"anprd/sync/outbox depends on gocv.io/x/gocv",
	}
	if !slices.Equal(got, want) {
		t.Errorf("violations:\n got %q\nwant %q", got, want)
	}
}
