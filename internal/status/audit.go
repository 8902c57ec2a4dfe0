package status

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// AuditBucket holds the page's audit entries, made by migration 5
// (audit) in internal/state: key the entry's time (unix ns, big-endian)
// and the bucket's sequence number, value the entry as JSON.
var AuditBucket = []byte("audit")

// AuditLog keeps the page's audit entries in the daemon's database, in
// the order they happened, for as long as Keep (the entries name
// plates and operators, so they go when passages do).
type AuditLog struct {
	db   *bolt.DB
	keep time.Duration
	now  func() time.Time
}

// OpenAudit uses the audit bucket of db, which the migrations must have
// made. Entries older than keep at now are deleted as new ones come.
func OpenAudit(db *bolt.DB, keep time.Duration, now func() time.Time) (*AuditLog, error) {
	if keep <= 0 {
		return nil, errors.New("audit: keep must be positive")
	}
	err := db.View(func(tx *bolt.Tx) error {
		if tx.Bucket(AuditBucket) == nil {
			return errors.New("audit: bucket missing; the state migrations have not run")
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &AuditLog{db: db, keep: keep, now: now}, nil
}

// Append writes e, on disk when it returns, and deletes what is past
// keep.
func (l *AuditLog) Append(e AuditEntry) error {
	v, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	cutoff := l.now().Add(-l.keep).UnixNano()
	err = l.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(AuditBucket)
		seq, err := b.NextSequence()
		if err != nil {
			return err
		}
		k := binary.BigEndian.AppendUint64(nil, uint64(e.Time.UnixNano()))
		k = binary.BigEndian.AppendUint64(k, seq)
		if err := b.Put(k, v); err != nil {
			return err
		}
		var old [][]byte
		c := b.Cursor()
		for k, _ := c.First(); k != nil && len(k) == 16 && int64(binary.BigEndian.Uint64(k)) < cutoff; k, _ = c.Next() {
			old = append(old, append([]byte(nil), k...))
		}
		for _, k := range old {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	return nil
}

// Recent returns the last n entries, newest first.
func (l *AuditLog) Recent(n int) ([]AuditEntry, error) {
	var out []AuditEntry
	err := l.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(AuditBucket).Cursor()
		for k, v := c.Last(); k != nil && len(out) < n; k, v = c.Prev() {
			var e AuditEntry
			if err := json.Unmarshal(v, &e); err != nil {
				return fmt.Errorf("damaged entry: %w", err)
			}
			out = append(out, e)
		}
		return nil
	})
	if err != nil {
		return out, fmt.Errorf("audit: %w", err)
	}
	return out, nil
}
