// Package jsonschema derives JSON Schemas from Go types, as encoding/json
// writes those types, and checks JSON documents against the small subset
// of JSON Schema (draft 2020-12) that the derived schemas use. The
// protocol's schema files in docs/schema are generated with it and its
// tests compare them with the Go types, so the documentation cannot drift
// from the code.
//
// It is not a general JSON Schema implementation: Validate refuses any
// keyword outside the subset rather than ignoring it, so a schema edited
// by hand to use more is caught instead of silently passing everything.
package jsonschema

import (
	"encoding"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Draft is the $schema of generated schemas.
const Draft = "https://json-schema.org/draft/2020-12/schema"

// Generator derives schemas. Types and Enums refine what reflection
// cannot know.
type Generator struct {
	// Types gives the schema of types that marshal themselves
	// (json.Marshaler, encoding.TextMarshaler) or need more than their
	// Go kind says.
	Types map[reflect.Type]map[string]any
	// Enums lists the values a string type may take.
	Enums map[reflect.Type][]string

	defs map[string]any
}

var (
	jsonMarshaler = reflect.TypeFor[json.Marshaler]()
	textMarshaler = reflect.TypeFor[encoding.TextMarshaler]()
	rawMessage    = reflect.TypeFor[json.RawMessage]()
	timeType      = reflect.TypeFor[time.Time]()
)

// Generate returns the schema of t (a struct type) with id and title;
// every other named struct type it uses is a $defs entry.
func (g *Generator) Generate(t reflect.Type, id, title, description string) (map[string]any, error) {
	g.defs = map[string]any{}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return nil, fmt.Errorf("jsonschema: %v is not a struct", t)
	}
	root, err := g.object(t)
	if err != nil {
		return nil, err
	}
	root["$schema"] = Draft
	root["$id"] = id
	root["title"] = title
	if description != "" {
		root["description"] = description
	}
	if len(g.defs) > 0 {
		root["$defs"] = g.defs
	}
	return root, nil
}

func defName(t reflect.Type) string {
	pkg := t.PkgPath()
	if i := strings.LastIndexByte(pkg, '/'); i >= 0 {
		pkg = pkg[i+1:]
	}
	return pkg + "." + t.Name()
}

func (g *Generator) schema(t reflect.Type) (map[string]any, error) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if s, ok := g.Types[t]; ok {
		return clone(s), nil
	}
	if t == rawMessage {
		return map[string]any{}, nil
	}
	if t == timeType {
		return map[string]any{"type": "string", "format": "date-time"}, nil
	}
	if t.Implements(jsonMarshaler) || reflect.PointerTo(t).Implements(jsonMarshaler) {
		return nil, fmt.Errorf("jsonschema: %v marshals itself; give its schema in Generator.Types", t)
	}
	if t.Implements(textMarshaler) || reflect.PointerTo(t).Implements(textMarshaler) {
		if t.Kind() != reflect.String {
			return nil, fmt.Errorf("jsonschema: %v marshals itself as text; give its schema in Generator.Types", t)
		}
	}
	switch t.Kind() {
	case reflect.Bool:
		return map[string]any{"type": "boolean"}, nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return map[string]any{"type": "integer"}, nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return map[string]any{"type": "integer", "minimum": 0}, nil
	case reflect.Float32, reflect.Float64:
		return map[string]any{"type": "number"}, nil
	case reflect.String:
		s := map[string]any{"type": "string"}
		if vs, ok := g.Enums[t]; ok {
			s["enum"] = slices.Clone(vs)
		}
		return s, nil
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 && t.Kind() == reflect.Slice {
			return map[string]any{"type": "string", "contentEncoding": "base64"}, nil
		}
		items, err := g.schema(t.Elem())
		if err != nil {
			return nil, err
		}
		return map[string]any{"type": "array", "items": items}, nil
	case reflect.Map:
		if t.Key().Kind() != reflect.String {
			return nil, fmt.Errorf("jsonschema: map key %v is not a string", t.Key())
		}
		v, err := g.schema(t.Elem())
		if err != nil {
			return nil, err
		}
		return map[string]any{"type": "object", "additionalProperties": v}, nil
	case reflect.Struct:
		name := defName(t)
		if t.Name() == "" {
			return g.object(t)
		}
		if _, done := g.defs[name]; !done {
			g.defs[name] = nil // placeholder: recursive types refer to it
			o, err := g.object(t)
			if err != nil {
				return nil, err
			}
			g.defs[name] = o
		}
		return map[string]any{"$ref": "#/$defs/" + name}, nil
	case reflect.Interface:
		return map[string]any{}, nil
	}
	return nil, fmt.Errorf("jsonschema: %v (%v) has no JSON form", t, t.Kind())
}

// object is a struct's schema: its fields as encoding/json writes them,
// required unless omitempty or omitzero, nothing else allowed.
func (g *Generator) object(t reflect.Type) (map[string]any, error) {
	props := map[string]any{}
	var required []string
	if err := g.fields(t, props, &required); err != nil {
		return nil, err
	}
	slices.Sort(required)
	s := map[string]any{"type": "object", "properties": props, "additionalProperties": false}
	if len(required) > 0 {
		s["required"] = required
	}
	return s, nil
}

func (g *Generator) fields(t reflect.Type, props map[string]any, required *[]string) error {
	for f := range t.Fields() {
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			et := f.Type
			for et.Kind() == reflect.Pointer {
				et = et.Elem()
			}
			if et.Kind() == reflect.Struct {
				if err := g.fields(et, props, required); err != nil {
					return err
				}
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		s, err := g.schema(f.Type)
		if err != nil {
			return fmt.Errorf("%s.%s: %w", t.Name(), f.Name, err)
		}
		optional := strings.Contains(","+opts+",", ",omitempty,") || strings.Contains(","+opts+",", ",omitzero,")
		if !optional && f.Type.Kind() == reflect.Pointer || !optional && f.Type.Kind() == reflect.Slice && !isBytes(f.Type) {
			// encoding/json writes a nil pointer or slice as null.
			s = map[string]any{"anyOf": []any{s, map[string]any{"type": "null"}}}
		}
		props[name] = s
		if !optional {
			*required = append(*required, name)
		}
	}
	return nil
}

func isBytes(t reflect.Type) bool {
	return t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Uint8
}

func clone(m map[string]any) map[string]any {
	b, _ := json.Marshal(m)
	var out map[string]any
	json.Unmarshal(b, &out)
	return out
}

// Validate checks doc, a JSON document, against schema. It reports every
// problem it finds, each with the JSON path where it is.
func Validate(schema, doc []byte) error {
	var s map[string]any
	if err := json.Unmarshal(schema, &s); err != nil {
		return fmt.Errorf("jsonschema: schema: %w", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(doc)))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return fmt.Errorf("jsonschema: document: %w", err)
	}
	vd := &validator{root: s}
	vd.check(s, v, "$")
	if len(vd.errs) > 0 {
		return fmt.Errorf("jsonschema: %s", strings.Join(vd.errs, "; "))
	}
	return nil
}

type validator struct {
	root map[string]any
	errs []string
}

func (vd *validator) fail(path, format string, args ...any) {
	vd.errs = append(vd.errs, path+": "+fmt.Sprintf(format, args...))
}

// known are the keywords Validate understands or may ignore (annotations).
var known = map[string]bool{
	"$schema": true, "$id": true, "$defs": true, "title": true, "description": true, "examples": true,
	"$ref": true, "type": true, "properties": true, "required": true, "additionalProperties": true,
	"items": true, "enum": true, "pattern": true, "format": true, "minimum": true, "maximum": true,
	"anyOf": true, "contentEncoding": true, "contentMediaType": true, "minLength": true, "maxLength": true,
}

var patterns = map[string]*regexp.Regexp{}

func (vd *validator) check(s map[string]any, v any, path string) {
	for k := range s {
		if !known[k] {
			vd.fail(path, "schema keyword %q is outside the subset this checker knows", k)
		}
	}
	if ref, ok := s["$ref"].(string); ok {
		name, ok := strings.CutPrefix(ref, "#/$defs/")
		defs, _ := vd.root["$defs"].(map[string]any)
		target, found := defs[name].(map[string]any)
		if !ok || !found {
			vd.fail(path, "$ref %q does not resolve", ref)
			return
		}
		vd.check(target, v, path)
		return
	}
	if anyOf, ok := s["anyOf"].([]any); ok {
		for _, alt := range anyOf {
			sub := &validator{root: vd.root}
			sub.check(alt.(map[string]any), v, path)
			if len(sub.errs) == 0 {
				return
			}
		}
		vd.fail(path, "matches none of anyOf")
		return
	}
	if t, ok := s["type"]; ok && !typeMatches(t, v) {
		vd.fail(path, "is %s, want %v", jsonType(v), t)
		return
	}
	if enum, ok := s["enum"].([]any); ok {
		if !slices.ContainsFunc(enum, func(e any) bool { return fmt.Sprint(e) == fmt.Sprint(v) }) {
			vd.fail(path, "%v is not one of %v", v, enum)
		}
	}
	switch x := v.(type) {
	case string:
		vd.checkString(s, x, path)
	case json.Number:
		f, _ := x.Float64()
		if m, ok := s["minimum"].(float64); ok && f < m {
			vd.fail(path, "%v is below the minimum %v", x, m)
		}
		if m, ok := s["maximum"].(float64); ok && f > m {
			vd.fail(path, "%v is above the maximum %v", x, m)
		}
	case []any:
		if items, ok := s["items"].(map[string]any); ok {
			for i, e := range x {
				vd.check(items, e, path+"["+strconv.Itoa(i)+"]")
			}
		}
	case map[string]any:
		vd.checkObject(s, x, path)
	}
}

func (vd *validator) checkString(s map[string]any, x string, path string) {
	if p, ok := s["pattern"].(string); ok {
		re, ok := patterns[p]
		if !ok {
			var err error
			if re, err = regexp.Compile(p); err != nil {
				vd.fail(path, "pattern %q: %v", p, err)
				return
			}
			patterns[p] = re
		}
		if !re.MatchString(x) {
			vd.fail(path, "%q does not match %s", x, p)
		}
	}
	if n, ok := s["minLength"].(float64); ok && float64(len([]rune(x))) < n {
		vd.fail(path, "%q is shorter than %v", x, n)
	}
	if n, ok := s["maxLength"].(float64); ok && float64(len([]rune(x))) > n {
		vd.fail(path, "is longer than %v characters", n)
	}
	switch s["format"] {
	case "date-time":
		if _, err := time.Parse(time.RFC3339Nano, x); err != nil {
			vd.fail(path, "%q is not an RFC 3339 date-time", x)
		}
	case "date":
		if _, err := time.Parse(time.DateOnly, x); err != nil {
			vd.fail(path, "%q is not a date", x)
		}
	case nil:
	default:
		vd.fail(path, "format %v is outside the subset this checker knows", s["format"])
	}
	if s["contentEncoding"] == "base64" {
		if _, err := base64.StdEncoding.DecodeString(x); err != nil {
			vd.fail(path, "is not base64")
		}
	}
}

func (vd *validator) checkObject(s map[string]any, x map[string]any, path string) {
	props, _ := s["properties"].(map[string]any)
	if req, ok := s["required"].([]any); ok {
		for _, r := range req {
			if _, ok := x[r.(string)]; !ok {
				vd.fail(path, "%q is required", r)
			}
		}
	}
	keys := make([]string, 0, len(x))
	for k := range x {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if ps, ok := props[k].(map[string]any); ok {
			vd.check(ps, x[k], path+"."+k)
			continue
		}
		switch ap := s["additionalProperties"].(type) {
		case bool:
			if !ap {
				vd.fail(path, "%q is not allowed", k)
			}
		case map[string]any:
			vd.check(ap, x[k], path+"."+k)
		}
	}
}

func typeMatches(t any, v any) bool {
	switch t := t.(type) {
	case string:
		return typeIs(t, v)
	case []any:
		return slices.ContainsFunc(t, func(e any) bool { s, _ := e.(string); return typeIs(s, v) })
	}
	return false
}

func typeIs(t string, v any) bool {
	switch t {
	case "integer":
		n, ok := v.(json.Number)
		if !ok {
			return false
		}
		f, err := n.Float64()
		return err == nil && f == math.Trunc(f)
	case "number":
		_, ok := v.(json.Number)
		return ok
	}
	return jsonType(v) == t
}

func jsonType(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case string:
		return "string"
	case json.Number:
		return "number"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return fmt.Sprintf("%T", v)
}
