// Package logging builds the daemon's zerolog logger: JSON lines for the
// journal and log shippers, readable console output when a person is
// watching a terminal. It decides format and level only; components get
// sub-loggers from the wiring and must not build loggers of their own.
package logging

import (
	"io"
	"os"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/rs/zerolog"
)

// New returns a logger writing to w. format is "json", "console" or
// "auto"; auto picks console when w is a terminal and JSON otherwise, so
// that systemd's journal gets one JSON object per line.
func New(w io.Writer, level zerolog.Level, format string) zerolog.Logger {
	if format == "auto" || format == "" {
		format = "json"
		if f, ok := w.(*os.File); ok && isatty.IsTerminal(f.Fd()) {
			format = "console"
		}
	}
	if format == "console" {
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: time.DateTime}
	}
	return zerolog.New(w).Level(level).With().Timestamp().Logger()
}
