package permit

import (
	"bytes"
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// Conversion says what Open did with a generation of an older format.
type Conversion struct {
	// From is the format the live generation had; 0 when it was current.
	From int
	// Records is how many permits and accounts were carried over.
	Records int
	// Dropped is why the old data could not be carried over, when it
	// could not: the store then starts empty at sequence 0 and sync
	// resyncs. "" when it was carried over.
	Dropped string
}

// Converted says what Open did with a generation of an older format.
func (s *Store) Converted() Conversion { return s.converted }

// convertChunk is how many records a conversion reads per transaction.
const convertChunk = 10000

// convert rewrites the live generation, of format from, in genFormat: a
// snapshot is loaded from its records and committed under its sequence
// number. A crash in between leaves the old generation live, and the next
// Open starts again.
func (s *Store) convert(from uint64) error {
	s.converted = Conversion{From: int(from)}
	if from != formatV1 {
		return s.dropAll(fmt.Sprintf("the permit data has format %d, which this anprd does not know", from))
	}
	n, err := s.convertV1()
	if err != nil {
		return s.dropAll(err.Error())
	}
	s.converted.Records = n
	return nil
}

func (s *Store) convertV1() (int, error) {
	var seq, live uint64
	var base []Change
	err := s.db.View(func(tx *bolt.Tx) error {
		root := tx.Bucket(RootBucket)
		meta := root.Bucket(metaBucket)
		seq, live = getU64(meta, keySeq), getU64(meta, keyLive)
		g := root.Bucket(genName(live))
		t, err := loadTables(g, 0)
		if err != nil {
			return err
		}
		for _, f := range sortedValues(t.facilities) {
			base = append(base, Change{Op: Put, Facility: f})
		}
		for _, p := range sortedValues(t.products) {
			base = append(base, Change{Op: Put, Product: p})
		}
		for _, p := range sortedValues(t.pools) {
			base = append(base, Change{Op: Put, Pool: p})
		}
		for _, cs := range t.closures {
			for _, c := range cs {
				base = append(base, Change{Op: Put, Closure: c})
			}
		}
		return g.Bucket(blockBucket).ForEach(func(_, v []byte) error {
			b := new(Block)
			base = append(base, Change{Op: Put, Block: b})
			return json.Unmarshal(v, b)
		})
	})
	if err != nil {
		return 0, fmt.Errorf("read the old permit data: %w", err)
	}
	if seq == 0 && len(base) == 0 {
		// Nothing was ever loaded: mark the generation current.
		return 0, s.db.Update(func(tx *bolt.Tx) error {
			return putU64(tx.Bucket(RootBucket).Bucket(genName(live)), keyFormat, genFormat)
		})
	}
	sn, err := s.NewSnapshot()
	if err != nil {
		return 0, err
	}
	defer sn.Abort()
	if err := sn.Add(base); err != nil {
		return 0, err
	}
	n := 0
	var after []byte
	for {
		var cs []Change
		err := s.db.View(func(tx *bolt.Tx) error {
			c := tx.Bucket(RootBucket).Bucket(genName(live)).Bucket(recBucket).Cursor()
			k, v := c.First()
			if after != nil {
				if k, v = c.Seek(after); k != nil && bytes.Equal(k, after) {
					k, v = c.Next()
				}
			}
			for ; k != nil && len(cs) < convertChunk; k, v = c.Next() {
				after = append(after[:0], k...)
				if len(v) < 1 {
					return fmt.Errorf("record %x is empty", k)
				}
				if v[0] == kindPermit {
					p, err := decodePermitAs(v, formatV1)
					if err != nil {
						return fmt.Errorf("record %x: %w", k, err)
					}
					cs = append(cs, Change{Op: Put, Permit: p})
					continue
				}
				a, err := decodeAccountAs(v, formatV1)
				if err != nil {
					return fmt.Errorf("record %x: %w", k, err)
				}
				cs = append(cs, Change{Op: Put, Account: a})
			}
			return nil
		})
		if err != nil {
			return 0, fmt.Errorf("read the old permit data: %w", err)
		}
		if len(cs) == 0 {
			break
		}
		if err := sn.Add(cs); err != nil {
			return 0, err
		}
		n += len(cs)
	}
	return n, sn.Commit(seq)
}

// dropAll replaces every generation with an empty one at sequence 0, so
// that sync asks for a full snapshot.
func (s *Store) dropAll(why string) error {
	s.converted.Dropped = why
	return s.db.Update(func(tx *bolt.Tx) error {
		root := tx.Bucket(RootBucket)
		meta := root.Bucket(metaBucket)
		live := getU64(meta, keyLive) + 1
		if err := newGen(root, live); err != nil {
			return err
		}
		if err := putU64(meta, keyLive, live); err != nil {
			return err
		}
		if err := putU64(meta, keySeq, 0); err != nil {
			return err
		}
		if err := putU64(meta, keyVer, getU64(meta, keyVer)+1); err != nil {
			return err
		}
		if err := meta.Delete(keyStaging); err != nil {
			return err
		}
		return dropGens(root, live)
	})
}
