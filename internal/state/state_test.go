package state

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

func bucketMigration(v int, name string) Migration {
	return Migration{Version: v, Name: name, Up: func(tx *bolt.Tx) error {
		_, err := tx.CreateBucket([]byte(name))
		return err
	}}
}

func TestOpenMigratesOnceAndKeepsVersion(t *testing.T) {
	dir := t.TempDir()
	ms := []Migration{bucketMigration(1, "a")}
	db, err := Open(dir, ms)
	if err != nil {
		t.Fatal(err)
	}
	if db.Schema() != 1 || db.Check() != nil {
		t.Fatalf("schema %d, check %v", db.Schema(), db.Check())
	}
	db.Close()

	// Reopening with the same list must not run migration 1 again
	// (CreateBucket would fail on an existing bucket).
	ms = append(ms, bucketMigration(2, "b"))
	db, err = Open(dir, ms)
	if err != nil {
		t.Fatalf("reopen with one new migration: %v", err)
	}
	if db.Schema() != 2 {
		t.Errorf("schema = %d, want 2", db.Schema())
	}
	db.View(func(tx *bolt.Tx) error {
		if tx.Bucket([]byte("a")) == nil || tx.Bucket([]byte("b")) == nil {
			t.Error("buckets of migrations 1 and 2 missing")
		}
		return nil
	})
	db.Close()
}

func TestFailedMigrationChangesNothing(t *testing.T) {
	dir := t.TempDir()
	db, err := Open(dir, []Migration{bucketMigration(1, "a")})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	boom := Migration{Version: 2, Name: "boom", Up: func(tx *bolt.Tx) error {
		tx.CreateBucket([]byte("half"))
		return errors.New("disk on fire")
	}}
	if _, err := Open(dir, []Migration{bucketMigration(1, "a"), boom}); err == nil || !strings.Contains(err.Error(), "migration 2 (boom): disk on fire") {
		t.Fatalf("err = %v", err)
	}
	db, err = Open(dir, []Migration{bucketMigration(1, "a")})
	if err != nil {
		t.Fatalf("reopen after failed migration: %v", err)
	}
	defer db.Close()
	if db.Schema() != 1 {
		t.Errorf("schema = %d after a failed migration, want 1", db.Schema())
	}
	db.View(func(tx *bolt.Tx) error {
		if tx.Bucket([]byte("half")) != nil {
			t.Error("failed migration left a bucket behind")
		}
		return nil
	})
}

func TestNewerSchemaRefused(t *testing.T) {
	dir := t.TempDir()
	db, err := Open(dir, []Migration{bucketMigration(1, "a"), bucketMigration(2, "b")})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	_, err = Open(dir, []Migration{bucketMigration(1, "a")})
	if err == nil || !strings.Contains(err.Error(), "written by a newer anprd") {
		t.Fatalf("downgrade: err = %v", err)
	}
}

func TestBadMigrationList(t *testing.T) {
	for _, ms := range [][]Migration{
		{bucketMigration(2, "a")},
		{bucketMigration(1, "a"), bucketMigration(3, "c")},
		{{Version: 1, Name: "nil"}},
	} {
		if _, err := Open(t.TempDir(), ms); err == nil {
			t.Errorf("Open accepted migrations %+v", ms)
		}
	}
}

func TestDaemonMigrations(t *testing.T) {
	db, err := Open(t.TempDir(), Migrations)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if db.Schema() != len(Migrations) {
		t.Errorf("schema %d, want %d", db.Schema(), len(Migrations))
	}
}

func TestSecondOpenInProcessFailsFast(t *testing.T) {
	dir := t.TempDir()
	db, err := Open(dir, Migrations)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = Open(dir, Migrations)
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("second open: err = %v, want ErrLocked", err)
	}
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Errorf("second open took %v; it must fail at once, not wait", d)
	}
	db.Close()
	db, err = Open(dir, Migrations)
	if err != nil {
		t.Fatalf("open after close: %v", err)
	}
	db.Close()
}

// TestLockHolderNamed runs a second process that holds the state
// directory and checks the refusal names its pid.
func TestLockHolderNamed(t *testing.T) {
	if dir := os.Getenv("ANPRD_TEST_HOLD_STATE"); dir != "" {
		db, err := Open(dir, Migrations)
		if err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
		fmt.Println("holding")
		time.Sleep(time.Minute)
		db.Close()
		return
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestLockHolderNamed$")
	cmd.Env = append(os.Environ(), "ANPRD_TEST_HOLD_STATE="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	line, _ := bufio.NewReader(out).ReadString('\n')
	if strings.TrimSpace(line) != "holding" {
		t.Fatalf("holder said %q", line)
	}
	_, err = Open(dir, Migrations)
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), fmt.Sprintf("pid %d", cmd.Process.Pid)) {
		t.Fatalf("err = %v, want ErrLocked naming pid %d", err, cmd.Process.Pid)
	}
	// When the holder dies, the kernel releases the lock.
	cmd.Process.Kill()
	cmd.Wait()
	db, err := Open(dir, Migrations)
	if err != nil {
		t.Fatalf("open after holder died: %v", err)
	}
	db.Close()
}

// TestKilledMidMigration kills a process in the middle of a migration's
// write transaction: the database must reopen at the old schema with
// nothing of the half-done migration in it.
func TestKilledMidMigration(t *testing.T) {
	slow := Migration{Version: 2, Name: "slow", Up: func(tx *bolt.Tx) error {
		b, err := tx.CreateBucket([]byte("half"))
		if err != nil {
			return err
		}
		for i := range 10000 {
			b.Put(fmt.Appendf(nil, "k%05d", i), make([]byte, 100))
		}
		fmt.Println("migrating")
		time.Sleep(time.Minute)
		return nil
	}}
	if dir := os.Getenv("ANPRD_TEST_MIGRATE"); dir != "" {
		Open(dir, []Migration{bucketMigration(1, "a"), slow})
		os.Exit(0)
	}
	dir := t.TempDir()
	db, err := Open(dir, []Migration{bucketMigration(1, "a")})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	cmd := exec.Command(os.Args[0], "-test.run=^TestKilledMidMigration$")
	cmd.Env = append(os.Environ(), "ANPRD_TEST_MIGRATE="+dir)
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if line, _ := bufio.NewReader(out).ReadString('\n'); strings.TrimSpace(line) != "migrating" {
		cmd.Process.Kill()
		t.Fatalf("child said %q", line)
	}
	cmd.Process.Kill()
	cmd.Wait()

	db, err = Open(dir, []Migration{bucketMigration(1, "a")})
	if err != nil {
		t.Fatalf("reopen after kill: %v", err)
	}
	defer db.Close()
	if db.Schema() != 1 {
		t.Errorf("schema %d after a killed migration, want 1", db.Schema())
	}
	db.View(func(tx *bolt.Tx) error {
		if tx.Bucket([]byte("half")) != nil {
			t.Error("killed migration left its bucket")
		}
		return nil
	})
}
