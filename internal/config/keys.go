package config

import (
	"fmt"
	"reflect"
	"strings"

	"anprd/internal/levenshtein"

	"gopkg.in/yaml.v3"
)

// keyError is one problem at one key. Every error Parse and Validate report
// is one, so each reads "<key>: <why>" and, when known, where in the file.
type keyError struct {
	key  string // full path, e.g. lanes[1].gate.safety_loop; "" for the top level
	line int    // 1-based line in the file; 0 when unknown (Validate works on the struct)
	msg  string
	hint string // said after the line, so "<key>: <why> (line N)" reads first
}

func (e *keyError) Error() string {
	var b strings.Builder
	if e.key != "" {
		b.WriteString(e.key)
		b.WriteString(": ")
	}
	b.WriteString(e.msg)
	if e.line > 0 {
		fmt.Fprintf(&b, " (line %d)", e.line)
	}
	if e.hint != "" {
		b.WriteString("; ")
		b.WriteString(e.hint)
	}
	return b.String()
}

func problem(key string, format string, args ...any) error {
	return &keyError{key: key, msg: fmt.Sprintf(format, args...)}
}

func joinKey(parent, child string) string {
	if parent == "" {
		return child
	}
	if child == "" {
		return parent
	}
	return parent + "." + child
}

// visit is a (node, type) pair already checked. Aliases share nodes, so
// remembering visits keeps the walk linear in the file's size even for a
// "billion laughs" file built from nested aliases.
type visit struct {
	n *yaml.Node
	t reflect.Type
}

var unmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()

// checkNode walks n against the Go type t by yaml tags and reports unknown
// keys and values of the wrong shape, each with its full key path and line.
// It stops at types with their own UnmarshalYAML (Line, Duration) and lets
// them judge their node, prefixing the path to what they report.
func checkNode(n *yaml.Node, t reflect.Type, path string, seen map[visit]bool) []error {
	n = deref(n)
	if n == nil || isNull(n) {
		return nil // yaml.v3 leaves the zero value; defaults and Validate take over
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if seen[visit{n, t}] {
		return nil
	}
	seen[visit{n, t}] = true

	if reflect.PointerTo(t).Implements(unmarshalerType) {
		if err := n.Decode(reflect.New(t).Interface()); err != nil {
			if ke, ok := err.(*keyError); ok {
				return []error{&keyError{key: joinKey(path, ke.key), line: ke.line, msg: ke.msg, hint: ke.hint}}
			}
			return []error{&keyError{key: path, line: n.Line, msg: err.Error()}}
		}
		return nil
	}

	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			if path == "" {
				return []error{&keyError{line: n.Line, msg: "the config must be a mapping of keys (version, site, lanes, ...), not " + describe(n)}}
			}
			return []error{&keyError{key: path, line: n.Line, msg: "must be a mapping of keys, not " + describe(n)}}
		}
		return checkMapping(n, t, path, seen)
	case reflect.Slice, reflect.Array:
		if n.Kind != yaml.SequenceNode {
			return []error{&keyError{key: path, line: n.Line, msg: "must be a list, not " + describe(n)}}
		}
		if t.Kind() == reflect.Array && len(n.Content) != t.Len() {
			return []error{&keyError{key: path, line: n.Line, msg: fmt.Sprintf("must be a list of %d values", t.Len())}}
		}
		var errs []error
		for i, c := range n.Content {
			errs = append(errs, checkNode(c, t.Elem(), fmt.Sprintf("%s[%d]", path, i), seen)...)
		}
		return errs
	}

	if n.Kind != yaml.ScalarNode {
		return []error{&keyError{key: path, line: n.Line, msg: "must be a single value, not " + describe(n)}}
	}
	if err := n.Decode(reflect.New(t).Interface()); err != nil {
		msg := err.Error()
		switch t.Kind() {
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
			msg = fmt.Sprintf("%q is not a whole number", n.Value)
		case reflect.Bool:
			msg = fmt.Sprintf("%q is not true or false", n.Value)
		case reflect.Float32, reflect.Float64:
			msg = fmt.Sprintf("%q is not a number", n.Value)
		}
		return []error{&keyError{key: path, line: n.Line, msg: msg}}
	}
	return nil
}

func checkMapping(n *yaml.Node, t reflect.Type, path string, seen map[visit]bool) []error {
	fields := yamlFields(t)
	var errs []error
	first := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := deref(n.Content[i]), n.Content[i+1]
		if k == nil || k.Kind != yaml.ScalarNode {
			errs = append(errs, &keyError{key: path, line: n.Content[i].Line, msg: "keys must be plain names, not " + describe(n.Content[i])})
			continue
		}
		// A merge key (<<: *defaults) folds another mapping into this one;
		// its keys are checked as if written here.
		if k.ShortTag() == "!!merge" {
			errs = append(errs, checkMerge(v, t, path, seen)...)
			continue
		}
		if line, dup := first[k.Value]; dup {
			errs = append(errs, repeated(joinKey(path, k.Value), k, line))
			continue
		}
		first[k.Value] = k.Line
		ft, ok := fields[k.Value]
		if !ok {
			errs = append(errs, unknownKey(joinKey(path, k.Value), k, fields))
			continue
		}
		errs = append(errs, checkNode(v, ft, joinKey(path, k.Value), seen)...)
	}
	return errs
}

func checkMerge(v *yaml.Node, t reflect.Type, path string, seen map[visit]bool) []error {
	v = deref(v)
	if v == nil {
		return nil
	}
	if v.Kind == yaml.SequenceNode {
		var errs []error
		for _, c := range v.Content {
			errs = append(errs, checkMerge(c, t, path, seen)...)
		}
		return errs
	}
	if v.Kind != yaml.MappingNode {
		return []error{&keyError{key: path, line: v.Line, msg: "<< must merge a mapping, not " + describe(v)}}
	}
	return checkNode(v, t, path, seen)
}

func unknownKey[V any](key string, k *yaml.Node, known map[string]V) *keyError {
	e := &keyError{key: key, line: k.Line, msg: "unknown key"}
	if s := suggest(k.Value, known); s != "" {
		e.hint = fmt.Sprintf("did you mean %q?", s)
	}
	return e
}

// repeated reports a key given twice in one mapping, which yaml.v3 rejects
// only later and without the key's path.
func repeated(key string, k *yaml.Node, firstLine int) *keyError {
	return &keyError{key: key, line: k.Line, msg: fmt.Sprintf("given twice; first at line %d", firstLine)}
}

// yamlFields maps the keys yaml.v3 accepts for struct type t to field types.
func yamlFields(t reflect.Type) map[string]reflect.Type {
	m := make(map[string]reflect.Type, t.NumField())
	for f := range t.Fields() {
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		switch name {
		case "-":
			continue
		case "":
			name = strings.ToLower(f.Name) // yaml.v3's rule for untagged fields
		}
		m[name] = f.Type
	}
	return m
}

// suggest returns the known key closest to an unknown one when it is close
// enough to be a typo (nmae, time_zone, safetyloop).
func suggest[V any](key string, fields map[string]V) string {
	best, bestDist := "", 3
	norm := func(s string) string { return strings.ReplaceAll(strings.ToLower(s), "-", "_") }
	for name := range fields {
		if strings.ReplaceAll(norm(key), "_", "") == strings.ReplaceAll(name, "_", "") {
			return name
		}
		d := editDistance(norm(key), norm(name))
		if d*2 > len(name) {
			continue // too different to be a slip of the keyboard
		}
		if d < bestDist || (d == bestDist && name < best) {
			best, bestDist = name, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance, for short keys only.
func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 64 // not a typo of any key we have
	}
	return levenshtein.Distance(a, b)
}

// deref follows aliases to the node they name.
func deref(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode; i++ {
		if i > 100 {
			return nil // yaml.v3 rejects alias cycles itself; this only stops a loop
		}
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// describe names a node's shape for error messages.
func describe(n *yaml.Node) string {
	n = deref(n)
	if n == nil {
		return "nothing"
	}
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return fmt.Sprintf("%q", n.Value)
	}
	return "a document"
}
