package config

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"gopkg.in/yaml.v3"
)

// FuzzParse: the config file is outside input. Parse must never panic; what
// it accepts Validate must judge without panicking; and what it accepts must
// survive a trip through yaml.Marshal (Duration and Line write what they read).
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/*/*.yaml")
	files = append(files, "../../configs/anprd.example.yaml")
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, s := range []string{
		"", "---", "~", "[]", "version: 1\nlanes: &a [*a]\n",
		"version: 1\nlanes:\n  - &l {id: a, gate: {open: {line: 1}}}\n  - <<: *l\n",
		"version: 1\nmqtt: {keepalive: -9223372036854775808ns}\n",
		"a: &a [*a, *a, *a]\nb: &b [*a, *a, *a]\nc: [*b, *b, *b]\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data)
		if err != nil {
			if c != nil {
				t.Fatal("Parse returned a config with its error")
			}
			return
		}
		out, err := yaml.Marshal(c)
		if err != nil {
			t.Fatalf("Marshal of a parsed config: %v", err)
		}
		c2, err := Parse(out)
		if err != nil {
			t.Fatalf("Parse of a marshalled config: %v\n%s", err, out)
		}
		out2, err := yaml.Marshal(c2)
		if err != nil || !bytes.Equal(out, out2) {
			t.Fatalf("not stable through Marshal/Parse (%v):\n%s\n----\n%s", err, out, out2)
		}
		_ = c.Validate()
	})
}
