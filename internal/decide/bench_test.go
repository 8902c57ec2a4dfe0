package decide_test

import (
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"

	"anprd/internal/decide"
	"anprd/internal/permit/permitgen"
	"anprd/internal/permit/permittest"
	"anprd/internal/presence"
)

// BenchmarkDecide is a whole entrance decision on the real stores (100,000
// permits, or ANPRD_BENCH_PERMITS, a tenth with a vehicle inside), each in
// its own read transaction as a lane would: half the plates registered,
// half not. It reports the process's resident memory (VmRSS) at the end:
// this test binary is pure Go, so that is the store's and the runtime's
// share of a daemon's memory, without the reader's libraries.
func BenchmarkDecide(b *testing.B) {
	n := 100000
	if v, err := strconv.Atoi(os.Getenv("ANPRD_BENCH_PERMITS")); err == nil && v >= 10 {
		n = v
	}
	store, db := permittest.Store(b)
	if err := permitgen.Load(store, n, 1); err != nil {
		b.Fatal(err)
	}
	pres, err := presence.Open(db.DB)
	if err != nil {
		b.Fatal(err)
	}
	t0 := time.Date(2026, 4, 15, 8, 0, 0, 0, oslo)
	err = pres.Update(func(tx *presence.Tx) error {
		for i := 0; i < n; i += 10 {
			p := permitgen.Permit(i)
			v := &presence.Vehicle{Facility: permitgen.Facility, Plate: p.Plates[0], Entered: t0.Add(-time.Hour),
				Permit: p.ID, Pool: p.Pool, Source: presence.FromLane}
			if err := tx.Enter(v); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	l := lane(decide.Entrance)
	l.Facility = permitgen.Facility
	nreads := 1024
	if n > 100000 {
		nreads = 1 << 16 // spread over the data, as a day of strangers and regulars
	}
	// Only the plates are kept (the reads are made as they are decided):
	// the resident memory reported is the store's and the runtime's, not
	// the benchmark's.
	plates := make([]string, nreads)
	for i := range plates {
		plates[i] = permitgen.Plate((i * 7919) % (3 * n))
		if i%2 == 1 {
			plates[i] = permitgen.Plate(3*n + i)
		}
	}
	classes := map[decide.Class]int{}
	debug.FreeOSMemory() // the loading's garbage is not the store's
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		var d decide.Decision
		err := pres.View(func(tx *presence.Tx) error {
			v, err := store.ViewTx(tx.Bolt())
			if err != nil {
				return err
			}
			d, err = decide.Decide(decide.Read{Plate: plates[i%len(plates)], Conf: 0.9, Time: t0}, l, v, tx)
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
		classes[d.Class]++
	}
	if classes[decide.Unregistered] == 0 || classes[decide.Permit]+classes[decide.PermitInUse] == 0 {
		b.Fatalf("classes %v: the benchmark did not decide both kinds", classes)
	}
	for _, m := range []struct{ field, unit string }{{"VmRSS", "rss-MB"}, {"RssAnon", "rss-anon-MB"}, {"RssFile", "rss-file-MB"}} {
		if v := procStatus(m.field); v > 0 {
			b.ReportMetric(float64(v)/1e6, m.unit)
		}
	}
}

// procStatus is a field of /proc/self/status in bytes (VmRSS, RssAnon,
// RssFile); 0 where there is none.
func procStatus(field string) int64 {
	f, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(f), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb * 1024
		}
	}
	return 0
}
