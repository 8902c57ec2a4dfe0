package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unsafe"

	"anprd/internal/decide"
	"anprd/internal/permit"
	"anprd/internal/permit/permitgen"
	"anprd/internal/presence"
	"anprd/internal/state"
)

// benchResult is what `anprctl bench decide` prints.
type benchResult struct {
	Permits      int     `json:"permits"`
	Plates       int     `json:"plates"`
	Inside       int     `json:"inside"`
	LoadSeconds  float64 `json:"load_seconds"`     // snapshot of the permits, to the swap
	PresenceSecs float64 `json:"presence_seconds"` // recording the vehicles inside
	FileBytes    int64   `json:"file_bytes"`
	Decisions    int     `json:"decisions"`
	Warm         bool    `json:"warm"` // the decisions were made once before timing
	P50Micros    float64 `json:"p50_us"`
	P99Micros    float64 `json:"p99_us"`
	MaxMicros    float64 `json:"max_us"`
	// On-CPU time of the deciding thread per decision: the latency less
	// the time the thread waited for a core, which on a shared machine
	// is most of the tail.
	CPUP50Micros   float64 `json:"cpu_p50_us"`
	CPUP99Micros   float64 `json:"cpu_p99_us"`
	CPUMaxMicros   float64 `json:"cpu_max_us"`
	LoadAvg        string  `json:"loadavg"` // /proc/loadavg when the decisions ended
	Classes        map[decide.Class]int
	RSSOpenBytes   int64 `json:"rss_open_bytes"`    // VmRSS with the store open, before the decisions
	RSSOpenDBBytes int64 `json:"rss_open_db_bytes"` // of which pages of the database file
	RSSBytes       int64 `json:"rss_bytes"`         // VmRSS after the decisions
	RSSAnonBytes   int64 `json:"rss_anon_bytes"`    // of which heap and stacks
	RSSFileBytes   int64 `json:"rss_file_bytes"`    // of which file pages: the binary, its libraries, the database
	RSSDBBytes     int64 `json:"rss_db_bytes"`      // of which pages of the database file
	HeapInUseBytes int64 `json:"heap_inuse_bytes"`  // Go heap in use
	Note           string
}

func runBench(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "uplink" {
		return runBenchUplink(args[1:], stdout, stderr)
	}
	if len(args) > 0 && args[0] == "lane" {
		return runBenchLane(args[1:], stdout, stderr)
	}
	if len(args) == 0 || args[0] != "decide" {
		fmt.Fprintln(stderr, "usage: anprctl bench decide [-permits N] [-decisions N] [-dir DIR] [-json]")
		fmt.Fprintln(stderr, "       anprctl bench uplink [-passages N] [-broker URL] [-json]")
		fmt.Fprintln(stderr, "       anprctl bench lane [-runs N] [-min-plate-width W] [-roi x,y,...] [-json] [CLIP]")
		return 2
	}
	fs := flag.NewFlagSet("anprctl bench decide", flag.ContinueOnError)
	fs.SetOutput(stderr)
	n := fs.Int("permits", 100000, "permits to build, three plates each")
	decisions := fs.Int("decisions", 100000, "decisions to time, for random plates, half registered and half not")
	dir := fs.String("dir", "", "state directory for the database (default: a temporary one, removed after)")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	seed := fs.Uint64("seed", 1, "seed of the random plates")
	warm := fs.Bool("warm", false, "make the same decisions once untimed first, so the database pages they read are resident (a garage's regulars)")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	if *n < 10 || *decisions < 1 {
		fmt.Fprintln(stderr, "anprctl bench decide: -permits must be at least 10 and -decisions at least 1")
		return 2
	}
	res, err := benchDecide(*n, *decisions, *dir, *seed, *warm)
	if err != nil {
		fmt.Fprintf(stderr, "anprctl bench decide: %v\n", err)
		return 1
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.Encode(res)
		return 0
	}
	mb := func(b int64) string { return fmt.Sprintf("%.1f MB", float64(b)/1e6) }
	fmt.Fprintf(stdout, "permits    %d (%d plates), %d vehicles inside\n", res.Permits, res.Plates, res.Inside)
	fmt.Fprintf(stdout, "load       %.2f s (snapshot to swap); presence %.2f s\n", res.LoadSeconds, res.PresenceSecs)
	fmt.Fprintf(stdout, "file       %s\n", mb(res.FileBytes))
	fmt.Fprintf(stdout, "decisions  %d: p50 %.1f µs  p99 %.1f µs  max %.1f µs\n", res.Decisions, res.P50Micros, res.P99Micros, res.MaxMicros)
	fmt.Fprintf(stdout, "on-CPU     p50 %.1f µs  p99 %.1f µs  max %.1f µs (load average %s)\n", res.CPUP50Micros, res.CPUP99Micros, res.CPUMaxMicros, res.LoadAvg)
	fmt.Fprintf(stdout, "classes    %v\n", res.Classes)
	fmt.Fprintf(stdout, "memory     resident (VmRSS) with the store open %s (database %s); after the decisions %s:\n",
		mb(res.RSSOpenBytes), mb(res.RSSOpenDBBytes), mb(res.RSSBytes))
	fmt.Fprintf(stdout, "           anonymous %s (Go heap in use %s), database %s, other files %s (this binary and its libraries)\n",
		mb(res.RSSAnonBytes), mb(res.HeapInUseBytes), mb(res.RSSDBBytes), mb(res.RSSFileBytes-res.RSSDBBytes))
	fmt.Fprintf(stdout, "note       %s\n", res.Note)
	return 0
}

// benchDecide builds n permits in a fresh database through a snapshot,
// records a tenth of them inside, reopens the database as a restarted
// daemon would, and times decisions each in its own read transaction,
// as a lane makes them.
func benchDecide(n, decisions int, dir string, seed uint64, warm bool) (*benchResult, error) {
	if dir == "" {
		tmp, err := os.MkdirTemp("", "anprctl-bench-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	}
	db, err := state.Open(dir, state.Migrations)
	if err != nil {
		return nil, err
	}
	store, err := permit.Open(db.DB)
	if err != nil {
		db.Close()
		return nil, err
	}
	res := &benchResult{Permits: n, Plates: 3 * n, Decisions: decisions, Classes: map[decide.Class]int{}}
	start := time.Now()
	if err := permitgen.Load(store, n, 1); err != nil {
		db.Close()
		return nil, err
	}
	res.LoadSeconds = time.Since(start).Seconds()

	pres, err := presence.Open(db.DB)
	if err != nil {
		db.Close()
		return nil, err
	}
	oslo, err := time.LoadLocation("Europe/Oslo")
	if err != nil {
		db.Close()
		return nil, err
	}
	now := time.Date(2026, 4, 15, 8, 0, 0, 0, oslo)
	start = time.Now()
	for lo := 0; lo < n; lo += 100000 {
		err := pres.Update(func(tx *presence.Tx) error {
			for i := lo; i < min(lo+100000, n); i += 10 {
				p := permitgen.Permit(i)
				v := &presence.Vehicle{Facility: permitgen.Facility, Plate: p.Plates[0], Entered: now.Add(-time.Hour),
					Lane: "in-1", Class: string(decide.Permit), Permit: p.ID, Pool: p.Pool, Source: presence.FromLane}
				if err := tx.Enter(v); err != nil {
					return err
				}
				res.Inside++
			}
			return nil
		})
		if err != nil {
			db.Close()
			return nil, err
		}
	}
	res.PresenceSecs = time.Since(start).Seconds()
	if fi, err := os.Stat(filepath.Join(dir, state.FileName)); err == nil {
		res.FileBytes = fi.Size()
	}
	// What a daemon that starts on this database holds: reopen, and hand
	// the loading's garbage back.
	db.Close()
	runtime.GC()
	debug.FreeOSMemory()
	if db, err = state.Open(dir, state.Migrations); err != nil {
		return nil, err
	}
	defer db.Close()
	if store, err = permit.Open(db.DB); err != nil {
		return nil, err
	}
	if pres, err = presence.Open(db.DB); err != nil {
		return nil, err
	}

	runtime.GC()
	res.RSSOpenBytes, _, _ = procRSS()
	res.RSSOpenDBBytes = mappedRSS(state.FileName)

	l := &decide.Lane{ID: "in-1", Kind: decide.Entrance, Facility: permitgen.Facility, Location: oslo,
		Policy: decide.DefaultPolicy(decide.Entrance), AntiPassback: decide.PassbackSoft, MaxStay: 7 * 24 * time.Hour,
		MinConfidence: 0.5, Fuzzy: true, FuzzyMinConfidence: 0.85}
	lat := make([]time.Duration, decisions)
	cpu := make([]time.Duration, decisions)
	// One OS thread for the timing loop, so its CPU clock is the
	// decisions'.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	passes := 1
	if warm {
		passes = 2
	}
	for range passes {
		rng := rand.New(rand.NewPCG(seed, 2))
		clear(res.Classes)
		for i := range decisions {
			var p string
			if i%2 == 0 {
				p = permitgen.Plate(rng.IntN(3 * n))
			} else {
				p = permitgen.Plate(3*n + rng.IntN(3*n))
			}
			r := decide.Read{Plate: p, Conf: 0.9, Time: now}
			var d decide.Decision
			c := threadCPU()
			t := time.Now()
			err := pres.View(func(tx *presence.Tx) error {
				v, err := store.ViewTx(tx.Bolt())
				if err != nil {
					return err
				}
				d, err = decide.Decide(r, l, v, tx)
				return err
			})
			lat[i] = time.Since(t)
			cpu[i] = threadCPU() - c
			if err != nil {
				return nil, err
			}
			res.Classes[d.Class]++
		}
	}
	res.Warm = warm
	slices.Sort(lat)
	us := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }
	res.P50Micros = us(rank(lat, 50))
	res.P99Micros = us(rank(lat, 99))
	res.MaxMicros = us(lat[len(lat)-1])
	slices.Sort(cpu)
	res.CPUP50Micros = us(rank(cpu, 50))
	res.CPUP99Micros = us(rank(cpu, 99))
	res.CPUMaxMicros = us(cpu[len(cpu)-1])
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		res.LoadAvg = strings.TrimSpace(string(b))
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	res.HeapInUseBytes = int64(ms.HeapInuse)
	res.RSSBytes, res.RSSAnonBytes, res.RSSFileBytes = procRSS()
	res.RSSDBBytes = mappedRSS(state.FileName)
	res.Note = "latency includes the read transaction and every store read; resident database pages are the ones the decisions touched and their neighbours (clean page cache, counted in VmRSS)"
	return res, nil
}

// procRSS reads resident memory from /proc/self/status (Linux): total,
// anonymous and file-backed, in bytes; zeros elsewhere.
func procRSS() (total, anon, file int64) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, 0, 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		kb, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "VmRSS:":
			total = kb * 1024
		case "RssAnon:":
			anon = kb * 1024
		case "RssFile:":
			file = kb * 1024
		}
	}
	return total, anon, file
}

// mappedRSS sums the resident pages of the mappings of files named name,
// from /proc/self/smaps (Linux); 0 elsewhere.
func mappedRSS(name string) int64 {
	b, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		return 0
	}
	var total int64
	in := false
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) >= 5 && strings.Contains(f[0], "-") && !strings.HasSuffix(f[0], ":"):
			in = len(f) >= 6 && filepath.Base(f[len(f)-1]) == name
		case in && len(f) >= 2 && f[0] == "Rss:":
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			total += kb * 1024
		}
	}
	return total
}

// threadCPU is the calling thread's CPU time (CLOCK_THREAD_CPUTIME_ID,
// Linux); 0 where that fails.
func threadCPU() time.Duration {
	const clockThreadCPUTime = 3
	var ts syscall.Timespec
	if _, _, e := syscall.Syscall(syscall.SYS_CLOCK_GETTIME, clockThreadCPUTime, uintptr(unsafe.Pointer(&ts)), 0); e != 0 {
		return 0
	}
	return time.Duration(ts.Nano())
}
