// Package permitgen makes synthetic permit data of any size, the same for
// the same size: for benchmarks (anprctl bench decide, go test -bench)
// and load tests. Plates look Norwegian (two letters, five digits) and
// are all different. It must not be used for anything a garage relies on.
package permitgen

import (
	"fmt"

	"anprd/internal/permit"
)

// Facility is the facility every product of the data belongs to.
const Facility = "bench"

const (
	space  = 26 * 26 * 100000 // two letters, five digits
	stride = 48271            // prime, not a factor of space: i*stride is a bijection
	pools  = 100
	prods  = 10
)

// Plate is the i'th plate of the sequence; plates 0..3N-1 are registered
// on N permits, plates from 3N on are not.
func Plate(i int) string {
	n := (i*stride + 7919) % space
	d := n % 100000
	l := n / 100000
	return fmt.Sprintf("%c%c%05d", 'A'+l/26, 'A'+l%26, d)
}

// Base is the data besides the permits: the facility, products and pools.
func Base() []permit.Change {
	cs := []permit.Change{{Op: permit.Put, Facility: &permit.Facility{ID: Facility, AcceptsAccounts: true}}}
	for i := range prods {
		cs = append(cs, permit.Change{Op: permit.Put, Product: &permit.Product{ID: fmt.Sprintf("prod-%d", i), Facility: Facility}})
	}
	for i := range pools {
		cs = append(cs, permit.Change{Op: permit.Put, Pool: &permit.Pool{ID: fmt.Sprintf("pool-%d", i), Tenant: fmt.Sprintf("co-%d", i), Limit: 50}})
	}
	return cs
}

// Permit is the i'th permit: three plates (3i, 3i+1, 3i+2), one of ten
// products, every seventh in a company pool.
func Permit(i int) *permit.Permit {
	p := &permit.Permit{
		ID: fmt.Sprintf("p%08d", i), Tenant: fmt.Sprintf("t%07d", i/2), Product: fmt.Sprintf("prod-%d", i%prods),
		Status: permit.Active, ValidFrom: permit.Date(2026, 1, 1),
		Plates:    []string{Plate(3 * i), Plate(3*i + 1), Plate(3*i + 2)},
		Reference: fmt.Sprintf("emp-%d", i),
	}
	if i%7 == 0 {
		p.Pool = fmt.Sprintf("pool-%d", i%pools)
	}
	return p
}

// Load fills a store with Base and n permits through a snapshot in chunks,
// as sync would, with sequence number seq.
func Load(s *permit.Store, n int, seq uint64) error {
	sn, err := s.NewSnapshot()
	if err != nil {
		return err
	}
	if err := sn.Add(Base()); err != nil {
		sn.Abort()
		return err
	}
	const chunk = 10000
	cs := make([]permit.Change, 0, chunk)
	for lo := 0; lo < n; lo += chunk {
		cs = cs[:0]
		for i := lo; i < min(lo+chunk, n); i++ {
			cs = append(cs, permit.Change{Op: permit.Put, Permit: Permit(i)})
		}
		if err := sn.Add(cs); err != nil {
			sn.Abort()
			return err
		}
	}
	return sn.Commit(seq)
}
