package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestSystemdUnit checks the unit keeps the settings a garage box relies
// on, and that systemd-analyze accepts it with the real binary.
func TestSystemdUnit(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(repoRoot, "systemd/anprd.service"))
	if err != nil {
		t.Fatal(err)
	}
	unit := string(b)
	for _, want := range []string{
		"Type=notify", "WatchdogSec=", "Restart=always", "StateDirectory=anprd", "User=anprd",
		"EnvironmentFile=-/etc/default/anprd", "NoNewPrivileges=yes", "ProtectSystem=strict",
		"ProtectHome=yes", "PrivateTmp=yes", "ProtectKernelTunables=yes", "ProtectKernelModules=yes",
		"ProtectKernelLogs=yes", "RestrictAddressFamilies=", "DevicePolicy=closed",
		"DeviceAllow=char-gpiochip rw", "DeviceAllow=char-video4linux rw",
		"ExecStartPre=/usr/local/bin/anprd -check-config",
	} {
		if !strings.Contains(unit, "\n"+want) {
			t.Errorf("unit lacks %q", want)
		}
	}
	if strings.Contains(unit, "\nPrivateDevices=yes") {
		t.Error("PrivateDevices=yes hides /dev/gpiochip*")
	}

	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Skip("systemd-analyze not installed")
	}
	path := filepath.Join(t.TempDir(), "anprd.service")
	os.WriteFile(path, []byte(strings.ReplaceAll(unit, "/usr/local/bin/anprd", anprdBin)), 0o644)
	out, err := exec.Command("systemd-analyze", "verify", path).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}
