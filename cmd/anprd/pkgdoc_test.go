package main

import (
	"bufio"
	"crypto/sha256"
	"fmt"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// repoRoot is two levels up from cmd/anprd.
const repoRoot = "../.."

// TestPackageDocs fails when a package has no doc comment saying what it
// is for.
func TestPackageDocs(t *testing.T) {
	docs := map[string]bool{} // dir -> has a package doc
	err := filepath.WalkDir(repoRoot, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); path != repoRoot && (strings.HasPrefix(name, ".") || name == "testdata" || name == "bin") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.PackageClauseOnly|parser.ParseComments)
		if err != nil {
			return err
		}
		dir := filepath.Dir(path)
		docs[dir] = docs[dir] || (f.Doc != nil && len(strings.TrimSpace(f.Doc.Text())) > 20)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(docs) < 5 {
		t.Fatalf("found only %d packages under %s", len(docs), repoRoot)
	}
	for dir, ok := range docs {
		if !ok {
			t.Errorf("package in %s has no doc comment (say what it is for and what it must not do)", dir)
		}
	}
}

// pinned are the versions DEVELOPERS.md names; they were measured to work
// together here (gocv v0.31.0 is the release for Debian 12's OpenCV 4.6).
// A module that is not required yet is skipped; one that is must match.
var pinned = map[string]string{
	"gocv.io/x/gocv":                      "v0.31.0",
	"github.com/yalue/onnxruntime_go":     "v1.27.0",
	"github.com/warthog618/go-gpiocdev":   "v0.9.1",
	"github.com/eclipse/paho.mqtt.golang": "v1.5.1",
	"gopkg.in/yaml.v3":                    "v3.0.1",
}

func TestPinnedStack(t *testing.T) {
	f, err := os.Open(filepath.Join(repoRoot, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	req := regexp.MustCompile(`^\s*(?:require\s+)?(\S+)\s+(v\S+)`)
	got := map[string]string{}
	goVersion := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if v, ok := strings.CutPrefix(line, "go "); ok {
			goVersion = strings.TrimSpace(v)
		}
		if m := req.FindStringSubmatch(line); m != nil {
			got[m[1]] = m[2]
		}
	}
	if !strings.HasPrefix(goVersion, "1.26") {
		t.Errorf("go.mod says go %q, want 1.26", goVersion)
	}
	for mod, want := range pinned {
		if v, ok := got[mod]; ok && v != want {
			t.Errorf("go.mod requires %s %s; the pinned stack is %s", mod, v, want)
		}
	}
	if len(got) < 5 {
		t.Errorf("read only %d requirements from go.mod", len(got))
	}
}

// TestDepsPinsHaveSums checks that every artefact deps.sh fetches has a
// sha256 in SHA256SUMS, so a version bump cannot skip its checksum.
func TestDepsPinsHaveSums(t *testing.T) {
	script, err := os.ReadFile(filepath.Join(repoRoot, "internal/deps/deps.sh"))
	if err != nil {
		t.Fatal(err)
	}
	sums, err := os.ReadFile(filepath.Join(repoRoot, "internal/deps/SHA256SUMS"))
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, l := range strings.Split(strings.TrimSpace(string(sums)), "\n") {
		f := strings.Fields(l)
		if len(f) != 2 || len(f[0]) != 64 {
			t.Fatalf("malformed SHA256SUMS line %q", l)
		}
		have[f[1]] = true
	}
	want := []string{"onnxruntime-linux-x64", "onnxruntime-linux-arm64", "anprd-plate-rec.onnx"}
	for _, pin := range regexp.MustCompile(`(?m)^(?:ORT|MODELS)_NPM=@?(\S+)@(\S+)$`).FindAllStringSubmatch(string(script), -1) {
		want = append(want, strings.ReplaceAll(pin[1], "/", "-")+"-"+pin[2]+".tgz")
	}
	for _, m := range regexp.MustCompile(`(?m)\|([^|"]+)"$`).FindAllStringSubmatch(strings.ReplaceAll(string(script), "\t", ""), -1) {
		want = append(want, m[1])
	}
	if len(want) < 7 {
		t.Fatalf("found only %v in deps.sh", want)
	}
	for _, w := range want {
		if !strings.Contains(w, "$") && !have[w] {
			t.Errorf("deps.sh fetches %s but SHA256SUMS has no sum for it", w)
		}
	}
}

// TestPlateModelCard checks that the committed plate recogniser is the one
// its card and SHA256SUMS name, and within the size a committed model may
// have.
func TestPlateModelCard(t *testing.T) {
	model := filepath.Join(repoRoot, "train/model/anprd-plate-rec.onnx")
	b, err := os.ReadFile(model)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) > 10<<20 {
		t.Errorf("%s is %d bytes; a committed model is at most 10 MB", model, len(b))
	}
	sum := fmt.Sprintf("%x", sha256.Sum256(b))
	sums, err := os.ReadFile(filepath.Join(repoRoot, "internal/deps/SHA256SUMS"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(sums), sum+"  anprd-plate-rec.onnx\n") {
		t.Errorf("SHA256SUMS has no line %s  anprd-plate-rec.onnx", sum)
	}
	card, err := os.ReadFile(filepath.Join(repoRoot, "train/model/MODEL_CARD.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(card), sum) {
		t.Errorf("train/model/MODEL_CARD.md does not name the model's sha256 %s", sum)
	}
}
