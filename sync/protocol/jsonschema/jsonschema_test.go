package jsonschema

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
)

type Color string

type inner struct {
	N int `json:"n"`
}

type sample struct {
	Name    string            `json:"name"`
	Count   uint32            `json:"count"`
	Ratio   float32           `json:"ratio,omitempty"`
	On      bool              `json:"on"`
	When    time.Time         `json:"when,omitzero"`
	Tags    []string          `json:"tags"`
	Color   Color             `json:"color,omitempty"`
	Inner   *inner            `json:"inner,omitempty"`
	Inners  []inner           `json:"inners,omitempty"`
	Labels  map[string]string `json:"labels,omitempty"`
	Raw     json.RawMessage   `json:"raw,omitempty"`
	Blob    []byte            `json:"blob,omitempty"`
	Ignored string            `json:"-"`
	hidden  string
}

func schemaOf(t *testing.T) []byte {
	t.Helper()
	g := Generator{Enums: map[reflect.Type][]string{reflect.TypeFor[Color](): {"red", "green"}}}
	s, err := g.Generate(reflect.TypeFor[sample](), "x", "Sample", "")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(s)
	return b
}

func TestGenerate(t *testing.T) {
	s := string(schemaOf(t))
	for _, want := range []string{
		`"required":["count","name","on","tags"]`,
		`"count":{"minimum":0,"type":"integer"}`,
		`"tags":{"anyOf":[{"items":{"type":"string"},"type":"array"},{"type":"null"}]}`,
		`"color":{"enum":["red","green"],"type":"string"}`,
		`"inner":{"$ref":"#/$defs/jsonschema.inner"}`,
		`"when":{"format":"date-time","type":"string"}`,
		`"blob":{"contentEncoding":"base64","type":"string"}`,
		`"additionalProperties":false`,
	} {
		if !strings.Contains(s, want) {
			t.Errorf("schema lacks %s:\n%s", want, s)
		}
	}
	if strings.Contains(s, "Ignored") || strings.Contains(s, "hidden") {
		t.Error("unexported or json:\"-\" fields in the schema")
	}
	if _, err := (&Generator{}).Generate(reflect.TypeFor[struct{ T time.Duration }](), "x", "", ""); err != nil {
		t.Errorf("a duration is an integer: %v", err)
	}
}

func TestValidate(t *testing.T) {
	s := schemaOf(t)
	for _, tt := range []struct {
		doc  string
		want string // "" when valid
	}{
		{`{"name":"a","count":1,"on":true,"tags":["x"]}`, ""},
		{`{"name":"a","count":1,"on":true,"tags":null,"ratio":0.5,"color":"red","inner":{"n":2},"labels":{"k":"v"},"raw":[1,{}],"blob":"AQI=","when":"2026-11-24T08:00:00Z"}`, ""},
		{`{"name":"a","count":1,"on":true}`, `"tags" is required`},
		{`{"name":"a","count":-1,"on":true,"tags":[]}`, "below the minimum"},
		{`{"name":"a","count":1.5,"on":true,"tags":[]}`, "want integer"},
		{`{"name":"a","count":1,"on":"yes","tags":[]}`, "want boolean"},
		{`{"name":"a","count":1,"on":true,"tags":[1]}`, "$.tags: matches none of anyOf"},
		{`{"name":"a","count":1,"on":true,"tags":[],"inners":[{"n":1},{"n":"x"}]}`, "$.inners[1].n"},
		{`{"name":"a","count":1,"on":true,"tags":[],"color":"blue"}`, "not one of"},
		{`{"name":"a","count":1,"on":true,"tags":[],"inner":{"n":"x"}}`, "$.inner.n"},
		{`{"name":"a","count":1,"on":true,"tags":[],"extra":1}`, `"extra" is not allowed`},
		{`{"name":"a","count":1,"on":true,"tags":[],"when":"Tuesday"}`, "not an RFC 3339"},
		{`{"name":"a","count":1,"on":true,"tags":[],"blob":"!!"}`, "not base64"},
		{`[1]`, "want object"},
	} {
		err := Validate(s, []byte(tt.doc))
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%s: %v", tt.doc, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%s: %v, want %q", tt.doc, err, tt.want)
		}
	}
	// A keyword outside the subset is an error, not ignored.
	if err := Validate([]byte(`{"type":"object","minProperties":2}`), []byte(`{}`)); err == nil || !strings.Contains(err.Error(), "minProperties") {
		t.Errorf("unknown keyword: %v", err)
	}
	if err := Validate([]byte(`{"$ref":"#/$defs/none"}`), []byte(`{}`)); err == nil {
		t.Error("a dangling $ref validated")
	}
}
