package daemon

import (
	"context"
	"time"

	"anprd/internal/health"

	"github.com/coreos/go-systemd/v22/daemon"
	"github.com/rs/zerolog"
)

// watchdog pings systemd's watchdog, but only while the main loop shows
// it is alive: a ping from a timer alone would keep a wedged daemon
// running forever.
type watchdog struct {
	period time.Duration // how often to ping: half of WATCHDOG_USEC
	maxAge time.Duration // the main loop's heartbeat must be younger than this
	beat   *health.Heartbeat
	notify Notifier
	now    func() time.Time
	log    zerolog.Logger
	m      *metrics
}

func (w *watchdog) Run(ctx context.Context) error {
	t := time.NewTicker(w.period)
	defer t.Stop()
	withholding := false
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		age, ok := w.beat.Age(w.now())
		if !ok || age > w.maxAge {
			w.m.watchdogWithheld.Inc()
			if !withholding {
				w.log.Error().Dur("heartbeat_age", age).Msg("main loop is not beating; withholding watchdog pings so systemd restarts anprd")
			}
			withholding = true
			continue
		}
		if withholding {
			w.log.Warn().Msg("main loop beating again; watchdog pings resumed")
			withholding = false
		}
		if err := w.notify.Notify(daemon.SdNotifyWatchdog); err != nil {
			w.log.Warn().Err(err).Msg("watchdog ping failed")
			continue
		}
		w.m.watchdogPings.Inc()
	}
}
