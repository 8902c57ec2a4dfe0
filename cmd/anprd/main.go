// Command anprd is the ANPR gate-and-enforcement daemon that runs on the
// box at a garage's entrances and exits. main parses flags and calls run;
// everything else is wired in package daemon.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"anprd/internal/buildinfo"
	"anprd/internal/config"
	"anprd/internal/daemon"
	"anprd/internal/logging"

	sd "github.com/coreos/go-systemd/v22/daemon"
)

const defaultConfig = "/etc/anprd/anprd.yaml"

func main() {
	fs := flag.NewFlagSet("anprd", flag.ExitOnError)
	configPath := fs.String("config", defaultConfig, "configuration file")
	checkConfig := fs.String("check-config", "", "validate this configuration file, print the result and exit 0 (valid) or 1")
	version := fs.Bool("version", false, "print the version and exit")
	fs.Usage = func() { usage(fs) }
	fs.Parse(os.Args[1:])
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "anprd: unexpected argument %q\n", fs.Arg(0))
		os.Exit(2)
	}

	switch {
	case *version:
		fmt.Println(buildinfo.Get())
		return
	case *checkConfig != "":
		os.Exit(runCheckConfig(*checkConfig, os.Stdout, os.Stderr))
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	go func() {
		// After the first signal, a second one kills at once: a person
		// pressing Ctrl-C twice means it.
		<-ctx.Done()
		stop()
	}()
	if err := run(ctx, *configPath); err != nil {
		fmt.Fprintf(os.Stderr, "anprd: %v\n", err)
		os.Exit(1)
	}
}

func usage(fs *flag.FlagSet) {
	w := fs.Output()
	fmt.Fprintf(w, "Usage: anprd [-config FILE] | -check-config FILE | -version\n\n")
	fs.PrintDefaults()
	fmt.Fprintf(w, "\nEnvironment overrides (an empty value means none):\n")
	for _, e := range config.EnvOverrides {
		fmt.Fprintf(w, "  %-28s %s\n", e.Name, e.Help)
	}
}

// runCheckConfig validates path and reports in words a technician can act
// on. The environment overrides are applied, as the daemon would.
func runCheckConfig(path string, stdout, stderr io.Writer) int {
	cfg, err := config.Load(path, os.Getenv)
	if err != nil {
		fmt.Fprintf(stderr, "%s: invalid\n", path)
		for _, e := range splitJoined(err) {
			fmt.Fprintf(stderr, "  %v\n", e)
		}
		return 1
	}
	fmt.Fprintf(stdout, "%s: ok (site %s, device %s, %d lanes, %s)\n", path, cfg.Site.ID, cfg.Site.Device, len(cfg.Lanes), cfg.Digest)
	return 0
}

// splitJoined undoes errors.Join so each problem gets its own line.
func splitJoined(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

func run(ctx context.Context, configPath string) error {
	cfg, err := config.Load(configPath, os.Getenv)
	if err != nil {
		return err
	}
	log := logging.New(os.Stderr, cfg.LogLevel(), cfg.Log.Format)
	wd, err := sd.SdWatchdogEnabled(false)
	if err != nil {
		log.Warn().Err(err).Msg("ignoring a malformed WATCHDOG_USEC")
		wd = 0
	}
	log.Info().Str("config", cfg.Path).Str("digest", cfg.Digest).Stringer("build", buildinfo.Get()).
		Dur("watchdog", wd).Msg("starting")
	d, err := daemon.New(daemon.Options{Config: cfg, Log: log, Watchdog: wd})
	if err != nil {
		return err
	}
	err = d.Run(ctx)
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}
