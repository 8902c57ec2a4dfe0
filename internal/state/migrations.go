package state

import bolt "go.etcd.io/bbolt"

// Migrations is the daemon's schema history. Append, never edit or reorder:
// a box in the field may be at any version.
var Migrations = []Migration{
	{Version: 1, Name: "meta", Up: func(tx *bolt.Tx) error {
		// The meta bucket itself is created by migrate; version 1 marks a
		// database made by this anprd.
		return nil
	}},
	{Version: 2, Name: "permits", Up: func(tx *bolt.Tx) error {
		// internal/permit lays out its data inside; it makes its first
		// (empty) generation when it opens.
		_, err := tx.CreateBucket([]byte("permits"))
		return err
	}},
	{Version: 3, Name: "presence", Up: func(tx *bolt.Tx) error {
		// internal/presence: the vehicles inside each facility and the
		// index that counts them against permits, pools and accounts.
		b, err := tx.CreateBucket([]byte("presence"))
		if err != nil {
			return err
		}
		for _, name := range []string{"vehicles", "counted"} {
			if _, err := b.CreateBucket([]byte(name)); err != nil {
				return err
			}
		}
		return nil
	}},
	{Version: 4, Name: "uplink", Up: func(tx *bolt.Tx) error {
		// sync/outbox: passages and what goes with them, waiting for
		// upload (q) and kept after it (p), with its counters (meta).
		// sync/command: the ids of commands carried out, so that none is
		// carried out twice.
		b, err := tx.CreateBucket([]byte("outbox"))
		if err != nil {
			return err
		}
		for _, name := range []string{"q", "p", "meta"} {
			if _, err := b.CreateBucket([]byte(name)); err != nil {
				return err
			}
		}
		_, err = tx.CreateBucket([]byte("commands"))
		return err
	}},
	{Version: 5, Name: "audit", Up: func(tx *bolt.Tx) error {
		// internal/status: the technicians' page's audit log (who removed
		// a vehicle from presence or asked for a resync, and why).
		_, err := tx.CreateBucket([]byte("audit"))
		return err
	}},
	{Version: 6, Name: "journal", Up: func(tx *bolt.Tx) error {
		// internal/access: the passages in hand, from the decision (in its
		// transaction) until sync/outbox records them (in its), so that a
		// crash between the two loses none; replayed at start-up.
		_, err := tx.CreateBucket([]byte("journal"))
		return err
	}},
}
