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
}
