package logging

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/rs/zerolog"
)

func TestJSONWhenNotATerminal(t *testing.T) {
	var buf bytes.Buffer
	l := New(&buf, zerolog.InfoLevel, "auto")
	l.Info().Str("component", "status").Msg("serving")
	var m map[string]any
	if err := json.Unmarshal(buf.Bytes(), &m); err != nil {
		t.Fatalf("auto format on a buffer is not JSON: %v: %q", err, buf.String())
	}
	if m["message"] != "serving" || m["component"] != "status" || m["time"] == nil {
		t.Errorf("unexpected fields: %v", m)
	}
}

func TestLevelFilters(t *testing.T) {
	var buf bytes.Buffer
	l := New(&buf, zerolog.WarnLevel, "json")
	l.Info().Msg("hidden")
	l.Warn().Msg("shown")
	if strings.Contains(buf.String(), "hidden") || !strings.Contains(buf.String(), "shown") {
		t.Errorf("level not applied: %q", buf.String())
	}
}

func TestConsoleIsNotJSON(t *testing.T) {
	var buf bytes.Buffer
	l := New(&buf, zerolog.InfoLevel, "console")
	l.Info().Msg("hello")
	if json.Valid(bytes.TrimSpace(buf.Bytes())) || !strings.Contains(buf.String(), "hello") {
		t.Errorf("console format wrote %q", buf.String())
	}
}
