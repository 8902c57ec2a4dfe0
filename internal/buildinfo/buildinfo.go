// Package buildinfo says which anprd is running: the release version stamped
// at link time and the VCS revision the Go toolchain records. It reads
// nothing else and has no side effects.
package buildinfo

import (
	"runtime"
	"runtime/debug"
	"sync"
)

// Version is the release version, set at link time with
// -ldflags "-X anprd/internal/buildinfo.Version=v1.2.3".
var Version = "dev"

// Info describes the running binary.
type Info struct {
	Version   string `json:"version"`
	Revision  string `json:"revision,omitempty"`
	Time      string `json:"time,omitempty"`
	Modified  bool   `json:"modified,omitempty"`
	GoVersion string `json:"go_version"`
}

var (
	once sync.Once
	info Info
)

// Get returns the build information, read once.
func Get() Info {
	once.Do(func() {
		info = Info{Version: Version, GoVersion: runtime.Version()}
		bi, ok := debug.ReadBuildInfo()
		if !ok {
			return
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				info.Revision = s.Value
			case "vcs.time":
				info.Time = s.Value
			case "vcs.modified":
				info.Modified = s.Value == "true"
			}
		}
	})
	return info
}

// String is a one-line summary for logs and -version.
func (i Info) String() string {
	s := "anprd " + i.Version
	if i.Revision != "" {
		r := i.Revision
		if len(r) > 12 {
			r = r[:12]
		}
		s += " (" + r
		if i.Modified {
			s += ", modified"
		}
		s += ")"
	}
	return s + " " + i.GoVersion
}
