// Package state owns the daemon's one bbolt database in the state
// directory: it locks the directory so that a second anprd fails at once,
// opens the file once, and brings its schema up to date. Packages that keep
// durable data (permits, presence, outbox) get their buckets through a
// Migration here; they must not open database files of their own.
package state

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"
)

const (
	// FileName is the database file inside the state directory.
	FileName = "anprd.db"
	// LockName is the lock file that keeps a second anprd out.
	LockName = "anprd.lock"
)

var (
	metaBucket = []byte("meta")
	schemaKey  = []byte("schema")
)

// ErrLocked is returned by Open when another process holds the state
// directory.
var ErrLocked = errors.New("state directory is in use by another anprd")

// A Migration brings the schema from Version-1 to Version. Up runs in the
// same write transaction that records the new version, so a crash leaves
// the database at the old or the new version, never between.
type Migration struct {
	Version int
	Name    string
	Up      func(tx *bolt.Tx) error
}

// DB is the open state database.
type DB struct {
	*bolt.DB
	dir    string
	lock   *os.File
	schema int
}

// Open locks dir, opens the database in it and applies the migrations that
// are newer than the file's schema, in order. migrations must be sorted
// by Version, starting at 1 with no gaps. A database written by a newer
// anprd (schema above the last migration) is refused rather than guessed
// at.
func Open(dir string, migrations []Migration) (*DB, error) {
	if err := checkMigrations(migrations); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("state: create %s: %w", dir, err)
	}
	lock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	path := filepath.Join(dir, FileName)
	// The directory lock already keeps other anprd processes out; the
	// timeout guards against anything else holding bbolt's own flock, so
	// that we fail with a message instead of hanging.
	bdb, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		lock.Close()
		if errors.Is(err, bolt.ErrTimeout) {
			return nil, fmt.Errorf("state: %s is locked by another process: %w", path, ErrLocked)
		}
		return nil, fmt.Errorf("state: open %s: %w", path, err)
	}
	db := &DB{DB: bdb, dir: dir, lock: lock}
	if err := db.migrate(migrations); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// lockDir takes an exclusive, non-blocking flock on the directory's lock
// file and writes our pid into it, so the refusal can say who holds it.
// The kernel drops the lock when the process dies, so a crash leaves no
// stale lock behind.
func lockDir(dir string) (*os.File, error) {
	path := filepath.Join(dir, LockName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("state: open lock file: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		holder := "another process"
		if b, rerr := os.ReadFile(path); rerr == nil {
			if pid, perr := strconv.Atoi(strings.TrimSpace(string(b))); perr == nil {
				holder = fmt.Sprintf("pid %d", pid)
			}
		}
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("state: %s is held by %s: %w; stop it first (systemctl stop anprd) or use another state directory", dir, holder, ErrLocked)
		}
		return nil, fmt.Errorf("state: lock %s: %w", path, err)
	}
	if err := f.Truncate(0); err == nil {
		f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return f, nil
}

func checkMigrations(ms []Migration) error {
	for i, m := range ms {
		if m.Version != i+1 {
			return fmt.Errorf("state: migration %q has version %d, want %d", m.Name, m.Version, i+1)
		}
		if m.Up == nil {
			return fmt.Errorf("state: migration %d (%s) has no Up", m.Version, m.Name)
		}
	}
	return nil
}

func (db *DB) migrate(ms []Migration) error {
	return db.Update(func(tx *bolt.Tx) error {
		meta, err := tx.CreateBucketIfNotExists(metaBucket)
		if err != nil {
			return err
		}
		cur := 0
		if v := meta.Get(schemaKey); v != nil {
			if len(v) != 8 {
				return fmt.Errorf("state: schema version record is %d bytes, want 8: the database is damaged", len(v))
			}
			cur = int(binary.BigEndian.Uint64(v))
		}
		if cur > len(ms) {
			return fmt.Errorf("state: the database has schema %d but this anprd knows up to %d: it was written by a newer anprd; run that version or restore a backup", cur, len(ms))
		}
		for _, m := range ms[cur:] {
			if err := m.Up(tx); err != nil {
				return fmt.Errorf("state: migration %d (%s): %w", m.Version, m.Name, err)
			}
			cur = m.Version
		}
		db.schema = cur
		return meta.Put(schemaKey, binary.BigEndian.AppendUint64(nil, uint64(cur)))
	})
}

// Schema is the schema version the database is at.
func (db *DB) Schema() int { return db.schema }

// Dir is the state directory.
func (db *DB) Dir() string { return db.dir }

// Check reads the schema record in a read transaction: a cheap proof that
// the database answers.
func (db *DB) Check() error {
	return db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(metaBucket)
		if b == nil || b.Get(schemaKey) == nil {
			return errors.New("state: schema record missing")
		}
		return nil
	})
}

// Close closes the database, then releases the directory lock.
func (db *DB) Close() error {
	err := db.DB.Close()
	if db.lock != nil {
		db.lock.Close()
		db.lock = nil
	}
	return err
}
