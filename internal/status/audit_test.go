package status_test

import (
	"fmt"
	"testing"
	"time"

	"anprd/internal/state"
	"anprd/internal/status"
)

// TestAuditLogKeepsOrderAndRetention: entries survive a reopen, come
// back newest first, and go once older than keep.
func TestAuditLogKeepsOrderAndRetention(t *testing.T) {
	dir := t.TempDir()
	db, err := state.Open(dir, state.Migrations)
	if err != nil {
		t.Fatal(err)
	}
	clk := &clock{t: t0}
	log, err := status.OpenAudit(db.DB, 30*24*time.Hour, clk.Now)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		// Two entries at the same instant must not overwrite each other.
		at := t0.Add(time.Duration(i/2) * time.Hour)
		if err := log.Append(status.AuditEntry{Time: at, Action: status.ActResync, Operator: fmt.Sprint("op", i), Reason: "why", Result: "ok"}); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()

	db, err = state.Open(dir, state.Migrations)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	log, err = status.OpenAudit(db.DB, 30*24*time.Hour, clk.Now)
	if err != nil {
		t.Fatal(err)
	}
	got, err := log.Recent(3)
	if err != nil || len(got) != 3 || got[0].Operator != "op4" || got[1].Operator != "op3" || got[2].Operator != "op2" {
		t.Fatalf("Recent(3) = %+v, %v", got, err)
	}
	// 31 days on, a new entry sweeps the old ones out.
	clk.Add(31 * 24 * time.Hour)
	if err := log.Append(status.AuditEntry{Time: clk.Now(), Action: status.ActOpen, Operator: "late", Result: "ok"}); err != nil {
		t.Fatal(err)
	}
	if got, _ := log.Recent(10); len(got) != 1 || got[0].Operator != "late" {
		t.Errorf("after retention: %+v", got)
	}
}

func TestAuditNeedsItsMigration(t *testing.T) {
	db, err := state.Open(t.TempDir(), state.Migrations[:4])
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := status.OpenAudit(db.DB, time.Hour, time.Now); err == nil {
		t.Error("opened without its bucket")
	}
}
