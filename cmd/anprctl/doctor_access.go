package main

import (
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"anprd/camera/onnx"
	"anprd/gate/setup"
	"anprd/internal/config"
)

// accessProbe checks, for doctor run as root, that the service's user may
// read and write what anprd needs: root reads everything, so the other
// checks cannot see a key file the anprd user cannot open. It goes by the
// owner, group and mode bits (not ACLs), and includes the groups the unit
// adds (SupplementaryGroups=video).
type accessProbe struct {
	name   string
	uid    uint32
	gids   []uint32
	groups []string
}

func newAccessProbe(u *user.User) *accessProbe {
	p := &accessProbe{name: u.Username}
	uid, _ := strconv.ParseUint(u.Uid, 10, 32)
	p.uid = uint32(uid)
	ids, _ := u.GroupIds()
	if g, err := user.LookupGroup("video"); err == nil {
		ids = append(ids, g.Gid)
	}
	for _, id := range ids {
		if n, err := strconv.ParseUint(id, 10, 32); err == nil && !slices.Contains(p.gids, uint32(n)) {
			p.gids = append(p.gids, uint32(n))
			name := id
			if g, err := user.LookupGroupId(id); err == nil {
				name = g.Name
			}
			p.groups = append(p.groups, name)
		}
	}
	return p
}

// Access bits, as in a mode's rwx.
const (
	accRead  = 4
	accWrite = 2
	accExec  = 1
)

// can says why the user may not access path with want, or "" when it may:
// every directory above needs x, the path itself want.
func (p *accessProbe) can(path string, want uint32) string {
	abs, err := filepath.Abs(path)
	if err != nil {
		return err.Error()
	}
	var dirs []string
	for d := filepath.Dir(abs); ; d = filepath.Dir(d) {
		dirs = append(dirs, d)
		if d == filepath.Dir(d) {
			break
		}
	}
	slices.Reverse(dirs)
	for _, d := range dirs {
		if why := p.bits(d, accExec); why != "" {
			return why
		}
	}
	return p.bits(abs, want)
}

func (p *accessProbe) bits(path string, want uint32) string {
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		return err.Error()
	}
	if p.uid == 0 {
		return ""
	}
	mode := st.Mode & 0o777
	var have uint32
	switch {
	case st.Uid == p.uid:
		have = mode >> 6
	case slices.Contains(p.gids, st.Gid):
		have = (mode >> 3) & 7
	default:
		have = mode & 7
	}
	if have&want == want {
		return ""
	}
	owner, group := strconv.Itoa(int(st.Uid)), strconv.Itoa(int(st.Gid))
	if u, err := user.LookupId(owner); err == nil {
		owner = u.Username
	}
	if g, err := user.LookupGroupId(group); err == nil {
		group = g.Name
	}
	return fmt.Sprintf("%s is %s:%s %04o", path, owner, group, mode)
}

// check lists what the user cannot reach; one finding per path.
func (p *accessProbe) check(cfg *config.Config) []finding {
	type need struct {
		path, what string
		want       uint32
	}
	m := cfg.MQTT
	needs := []need{{cfg.Path, "the config", accRead}}
	for _, f := range []struct{ path, key string }{
		{m.PasswordFile, "mqtt.password_file"}, {m.CAFile, "mqtt.ca_file"}, {m.CertFile, "mqtt.cert_file"},
		{m.KeyFile, "mqtt.key_file"}, {m.CentralKeyFile, "mqtt.central_key_file"},
	} {
		if f.path != "" {
			needs = append(needs, need{f.path, f.key, accRead})
		}
	}
	if cfg.Reader.ONNXRuntimeLibrary != "" { // unset: the models check says so
		needs = append(needs, need{cfg.Reader.ONNXRuntimeLibrary, "the ONNX Runtime library", accRead})
	}
	for _, f := range onnx.ModelFiles {
		needs = append(needs, need{filepath.Join(cfg.Reader.ModelsDir, f), "a model", accRead})
	}
	if _, err := os.Stat(cfg.State.Dir); err == nil {
		needs = append(needs, need{cfg.State.Dir, "the state directory", accWrite | accExec})
	}
	for _, l := range cfg.Lanes {
		src := l.Camera.Source
		switch {
		case strings.HasPrefix(src, "/dev/"):
			needs = append(needs, need{src, "lane " + l.ID + "'s camera", accRead | accWrite})
		case !strings.Contains(src, "://"):
			needs = append(needs, need{src, "lane " + l.ID + "'s replay", accRead})
		}
		if l.Gate != nil && !l.Gate.Simulate {
			seen := map[string]bool{}
			for _, s := range setup.Specs(l.Gate) {
				dev := s.Chip
				if !strings.HasPrefix(dev, "/dev/") {
					dev = "/dev/" + dev
				}
				if _, err := os.Stat(dev); err == nil && !seen[dev] {
					seen[dev] = true
					needs = append(needs, need{dev, "lane " + l.ID + "'s GPIO chip", accRead | accWrite})
				}
			}
		}
	}
	var out []finding
	for _, n := range needs {
		why := p.can(n.path, n.want)
		if why == "" || strings.Contains(why, "no such file") {
			continue // a missing file is the other checks' finding
		}
		verb := "read"
		if n.want&accWrite != 0 {
			verb = "write"
		}
		fix := "chgrp anprd " + n.path + " && chmod g+r " + n.path
		switch {
		case strings.HasPrefix(n.path, "/dev/gpiochip"):
			fix = "install the udev rule (/etc/udev/rules.d/60-anprd.rules) and run udevadm trigger --subsystem-match=gpio"
		case strings.HasPrefix(n.path, "/dev/"):
			fix = "the device's group needs rw (Debian gives /dev/video* to group video, which the unit adds)"
		case n.want&accWrite != 0:
			fix = "chown -R anprd:anprd " + n.path
		case !strings.HasPrefix(why, n.path+" "):
			fix = "let the user through the directories above: chmod o+x or chgrp anprd on the directory named"
		}
		out = append(out, bad("access", levelFail, fmt.Sprintf("user %s cannot %s %s (%s): %s", p.name, verb, n.what, n.path, why), fix))
	}
	if len(out) == 0 {
		out = append(out, okf("access", "user %s (groups %s) can read the config, keys and models and write the state directory", p.name, strings.Join(p.groups, ", ")))
	}
	return out
}
