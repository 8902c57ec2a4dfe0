package daemon

import "github.com/coreos/go-systemd/v22/daemon"

// Notifier tells the service manager about the daemon's life: READY=1,
// STOPPING=1, WATCHDOG=1.
type Notifier interface {
	Notify(state string) error
}

// Systemd notifies through $NOTIFY_SOCKET; without it (not run by
// systemd) every call is a no-op.
type Systemd struct{}

// Notify sends state to systemd.
func (Systemd) Notify(state string) error {
	_, err := daemon.SdNotify(false, state)
	return err
}
