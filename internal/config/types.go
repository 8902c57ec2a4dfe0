package config

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

const day = 24 * time.Hour

// Duration is a time.Duration that YAML reads as Go duration text ("500ms",
// "1h30m") or whole days ("7d"): retention is thought of in days, and Go's
// largest unit is the hour.
type Duration time.Duration

// UnmarshalYAML implements yaml.Unmarshaler.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("must be a duration such as 30s or 7d, not %s", describe(n))
	}
	v, err := parseDuration(n.Value)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML implements yaml.Marshaler, in the form UnmarshalYAML reads.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// String gives whole days as "7d" and anything else as time.Duration does.
func (d Duration) String() string {
	td := time.Duration(d)
	if td != 0 && td%day == 0 {
		return strconv.FormatInt(int64(td/day), 10) + "d"
	}
	// "1h" and "10m" rather than Go's "1h0m0s" and "10m0s"; both parse back.
	s := td.String()
	if t, ok := strings.CutSuffix(s, "m0s"); ok {
		s = t + "m"
	}
	if t, ok := strings.CutSuffix(s, "h0m"); ok {
		s = t + "h"
	}
	return s
}

func parseDuration(s string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		digits := strings.TrimPrefix(strings.TrimPrefix(days, "-"), "+")
		if isDigits(digits) {
			n, err := strconv.ParseInt(days, 10, 64)
			if err != nil || n > math.MaxInt64/int64(day) || n < math.MinInt64/int64(day) {
				return 0, fmt.Errorf("%q is too long a duration", s)
			}
			return time.Duration(n) * day, nil
		}
	}
	if s != "0" && isDigits(s) {
		// time.ParseDuration's "missing unit" does not say which unit to add.
		return 0, fmt.Errorf("%q needs a unit, e.g. %ss or %sd", s, s, s)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration; write e.g. 500ms, 30s, 1h30m or 7d", s)
	}
	return v, nil
}

// isDigits reports whether s is one or more ASCII digits.
func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// maxLineOffset bounds offsets to catch nonsense early; the kernel's limit is
// larger, but no GPIO chip on a gate controller has more lines than this.
const maxLineOffset = 65535

// maxLineNameLen is the kernel's GPIO line name size (32) less the NUL.
const maxLineNameLen = 31

// Line names one GPIO line. In YAML either a scalar — an offset (17) or a line
// name ("GATE_OPEN") — or a mapping {line: 17|"NAME", chip: gpiochip1,
// active_low: true, debounce: 20ms}. A name is never all digits: "17" is
// offset 17, so a quoted offset does not silently become a name.
type Line struct {
	Chip      string // "" means the gate's chip (Validate fills it in)
	Offset    int    // -1 when the line is given by name
	Name      string // "" when given by offset
	ActiveLow bool
	Debounce  Duration // inputs only; 0..1s
}

// UnmarshalYAML implements yaml.Unmarshaler. Errors at a key inside the
// mapping are *keyError so the caller can print the full path.
func (l *Line) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		*l = Line{}
		return l.setLine(n)
	case yaml.MappingNode:
	default:
		return fmt.Errorf("must be a line offset, a line name or a mapping with line:, not %s", describe(n))
	}
	out := Line{Offset: -1}
	haveLine := false
	first := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := deref(n.Content[i]), deref(n.Content[i+1])
		if k == nil || v == nil || k.Kind != yaml.ScalarNode {
			return &keyError{line: n.Content[i].Line, msg: "keys must be plain names"}
		}
		if line, dup := first[k.Value]; dup {
			return repeated(k.Value, k, line)
		}
		first[k.Value] = k.Line
		var err error
		switch k.Value {
		case "line":
			if v.Kind != yaml.ScalarNode {
				err = fmt.Errorf("must be a line offset or a line name, not %s", describe(v))
			} else {
				err = out.setLine(v)
				haveLine = err == nil
			}
		case "chip":
			if v.Kind != yaml.ScalarNode || isNull(v) {
				err = fmt.Errorf("must be a chip name such as gpiochip0, not %s", describe(v))
			} else {
				out.Chip = v.Value
			}
		case "active_low":
			if v.Kind != yaml.ScalarNode || v.Decode(&out.ActiveLow) != nil {
				err = fmt.Errorf("%s is not true or false", describe(v))
			}
		case "debounce":
			err = out.Debounce.UnmarshalYAML(v)
		default:
			return unknownKey(k.Value, k, lineKeys)
		}
		if err != nil {
			return &keyError{key: k.Value, line: v.Line, msg: err.Error()}
		}
	}
	if !haveLine {
		return &keyError{line: n.Line, msg: "line: required (the line offset or name)"}
	}
	*l = out
	return nil
}

// lineKeys are the keys of a Line mapping, for typo suggestions.
var lineKeys = map[string]bool{"line": true, "chip": true, "active_low": true, "debounce": true}

// setLine reads an offset or a name from a scalar. Digits are always a
// decimal offset, also quoted or with a leading zero (yaml.v3 would read 017
// as octal 15; nobody numbers GPIO lines in octal).
func (l *Line) setLine(n *yaml.Node) error {
	s := n.Value
	var off int
	var err error
	switch {
	case isDigits(s):
		off, err = strconv.Atoi(s)
	case n.ShortTag() == "!!int":
		err = n.Decode(&off)
	case n.ShortTag() == "!!str":
		if err := checkLineName(s); err != nil {
			return err
		}
		l.Offset, l.Name = -1, s
		return nil
	default:
		return fmt.Errorf("must be a line offset or a line name, not %s", describe(n))
	}
	if err != nil || off < 0 || off > maxLineOffset {
		return fmt.Errorf("line offset %s is out of range 0..%d", s, maxLineOffset)
	}
	l.Offset, l.Name = off, ""
	return nil
}

func checkLineName(s string) error {
	switch {
	case s == "":
		return fmt.Errorf("line name is empty")
	case len(s) > maxLineNameLen:
		return fmt.Errorf("line name %q is longer than the kernel's %d bytes", s, maxLineNameLen)
	case !utf8.ValidString(s) || strings.ContainsFunc(s, isControl):
		return fmt.Errorf("line name %q has control characters", s)
	}
	return nil
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f || r == utf8.RuneError }

// MarshalYAML implements yaml.Marshaler, in the form UnmarshalYAML reads:
// a bare offset or name when nothing else is set, else a mapping.
func (l Line) MarshalYAML() (any, error) {
	var line any = l.Offset
	if l.Offset < 0 {
		line = l.Name
	}
	if l.Chip == "" && !l.ActiveLow && l.Debounce == 0 {
		return line, nil
	}
	m := map[string]any{"line": line}
	if l.Chip != "" {
		m["chip"] = l.Chip
	}
	if l.ActiveLow {
		m["active_low"] = true
	}
	if l.Debounce != 0 {
		m["debounce"] = l.Debounce
	}
	return m, nil
}

// String names the line as the GPIO code and logs do: "gpiochip0:17" or
// "gpiochip0:GATE_OPEN".
func (l Line) String() string {
	id := strconv.Itoa(l.Offset)
	if l.Offset < 0 {
		id = l.Name
	}
	if l.Chip == "" {
		return id
	}
	return l.Chip + ":" + id
}
