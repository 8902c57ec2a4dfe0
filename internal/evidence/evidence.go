// Package evidence keeps the images behind each read event (the plate
// crop and a downscaled scene) in the state directory, one folder per
// day, and deletes them when the retention period has passed. Plates and
// images are personal data: nothing here is kept longer than configured.
// It stores bytes it is given; it does not encode images.
package evidence

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"time"
)

// Store is the evidence folder.
type Store struct {
	dir string
}

// New returns a store in dir, creating it.
func New(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("evidence: %w", err)
	}
	return &Store{dir: dir}, nil
}

var safeName = regexp.MustCompile(`[^A-Za-z0-9_-]`)

// Save writes an event's images as DAY/TIME-LANE-ID-plate.jpg and
// -scene.jpg and returns their paths relative to the store. Each file is
// written to a temporary name and renamed, so a crash leaves no half
// image under a real name.
func (s *Store) Save(at time.Time, lane string, id uint64, plate, scene []byte) (platePath, scenePath string, err error) {
	day := at.UTC().Format("2006-01-02")
	if err := os.MkdirAll(filepath.Join(s.dir, day), 0o750); err != nil {
		return "", "", fmt.Errorf("evidence: %w", err)
	}
	base := fmt.Sprintf("%s-%s-%d", at.UTC().Format("150405.000"), safeName.ReplaceAllString(lane, "_"), id)
	write := func(suffix string, b []byte) (string, error) {
		rel := filepath.Join(day, base+suffix)
		tmp := filepath.Join(s.dir, rel+".tmp")
		if err := os.WriteFile(tmp, b, 0o640); err != nil {
			os.Remove(tmp)
			return "", fmt.Errorf("evidence: %w", err)
		}
		if err := os.Rename(tmp, filepath.Join(s.dir, rel)); err != nil {
			return "", fmt.Errorf("evidence: %w", err)
		}
		return rel, nil
	}
	if platePath, err = write("-plate.jpg", plate); err != nil {
		return "", "", err
	}
	if scenePath, err = write("-scene.jpg", scene); err != nil {
		return "", "", err
	}
	return platePath, scenePath, nil
}

// Sweep deletes images older than maxAge at now, and day folders left
// empty, and returns how many files it removed.
func (s *Store) Sweep(now time.Time, maxAge time.Duration) (int, error) {
	return s.SweepKeeping(now, maxAge, nil)
}

// SweepKeeping is Sweep, except that it keeps the images for which keep
// (if not nil) returns true, given their path relative to the store as
// Save returned it: the evidence of a passage kept for follow-up.
func (s *Store) SweepKeeping(now time.Time, maxAge time.Duration, keep func(path string) bool) (int, error) {
	n := 0
	var errs []error
	err := filepath.WalkDir(s.dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			errs = append(errs, err)
			return nil
		}
		if d.IsDir() {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return nil
		}
		if now.Sub(fi.ModTime()) > maxAge {
			if keep != nil {
				if rel, err := filepath.Rel(s.dir, path); err == nil && keep(rel) {
					return nil
				}
			}
			if err := os.Remove(path); err != nil {
				errs = append(errs, err)
			} else {
				n++
			}
		}
		return nil
	})
	if err != nil {
		errs = append(errs, err)
	}
	days, _ := os.ReadDir(s.dir)
	for _, d := range days {
		if d.IsDir() {
			os.Remove(filepath.Join(s.dir, d.Name())) // fails, harmlessly, unless empty
		}
	}
	return n, errors.Join(errs...)
}

// Remove deletes one image by the path Save returned, and its day folder
// if that is left empty. An image already gone is not an error; a path
// that leaves the store is refused.
func (s *Store) Remove(rel string) error {
	if !filepath.IsLocal(rel) {
		return fmt.Errorf("evidence: %q is not a path inside the store", rel)
	}
	if err := os.Remove(filepath.Join(s.dir, rel)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("evidence: %w", err)
	}
	if day := filepath.Dir(rel); day != "." {
		os.Remove(filepath.Join(s.dir, day)) // fails, harmlessly, unless empty
	}
	return nil
}

// ReadImage reads an image by the path Save returned. Paths that leave
// the store are refused.
func (s *Store) ReadImage(rel string) ([]byte, error) {
	if !filepath.IsLocal(rel) {
		return nil, fmt.Errorf("evidence: %q is not a path inside the store", rel)
	}
	return os.ReadFile(filepath.Join(s.dir, rel))
}
