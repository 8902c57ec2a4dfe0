package evidence

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestSaveAndSweep(t *testing.T) {
	dir := t.TempDir()
	s, err := New(filepath.Join(dir, "evidence"))
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 3, 29, 0, 30, 0, 0, time.FixedZone("CET", 3600)) // 23:30 UTC the day before
	pp, sp, err := s.Save(at, "in/1", 7, []byte("plate"), []byte("scene"))
	if err != nil {
		t.Fatal(err)
	}
	if pp != "2026-03-28/233000.000-in_1-7-plate.jpg" || sp != "2026-03-28/233000.000-in_1-7-scene.jpg" {
		t.Errorf("paths %q %q", pp, sp)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "evidence", pp)); string(b) != "plate" {
		t.Errorf("plate file = %q", b)
	}
	old := time.Now().Add(-8 * 24 * time.Hour)
	os.Chtimes(filepath.Join(dir, "evidence", pp), old, old)
	os.Chtimes(filepath.Join(dir, "evidence", sp), old, old)
	s.Save(time.Now(), "out-1", 8, []byte("p"), []byte("s"))

	n, err := s.Sweep(time.Now(), 7*24*time.Hour)
	if err != nil || n != 2 {
		t.Fatalf("Sweep = %d, %v; want the two old files", n, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "evidence", "2026-03-28")); !os.IsNotExist(err) {
		t.Error("empty day folder kept")
	}
	left, _ := filepath.Glob(filepath.Join(dir, "evidence", "*", "*.jpg"))
	if len(left) != 2 {
		t.Errorf("files left %v, want today's two", left)
	}
}

func TestSaveFailsCleanly(t *testing.T) {
	dir := t.TempDir()
	s, _ := New(dir)
	at := time.Date(2026, 11, 24, 8, 0, 0, 0, time.UTC)
	// A file where the day's folder should be: the save fails with an
	// error and leaves nothing behind.
	os.WriteFile(filepath.Join(dir, "2026-11-24"), nil, 0o640)
	if _, _, err := s.Save(at, "in-1", 1, []byte("p"), []byte("s")); err == nil {
		t.Error("saved without a day folder")
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "*", "*")); len(left) != 0 {
		t.Errorf("left %v", left)
	}
}

func TestReadImage(t *testing.T) {
	s, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 24, 8, 0, 0, 0, time.UTC)
	pp, _, err := s.Save(at, "in-1", 7, []byte("plate"), []byte("scene"))
	if err != nil {
		t.Fatal(err)
	}
	if b, err := s.ReadImage(pp); err != nil || string(b) != "plate" {
		t.Errorf("ReadImage(%s) = %q, %v", pp, b, err)
	}
	for _, bad := range []string{"../x", "/etc/passwd", ""} {
		if _, err := s.ReadImage(bad); err == nil {
			t.Errorf("ReadImage(%q) succeeded", bad)
		}
	}
	if _, err := s.ReadImage("2026-11-24/none.jpg"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing image: %v", err)
	}
}

func TestRemoveAndSweepKeeping(t *testing.T) {
	dir := t.TempDir()
	s, err := New(dir)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 24, 8, 0, 0, 0, time.UTC)
	p1, s1, _ := s.Save(at, "in-1", 1, []byte("p"), []byte("s"))
	p2, s2, _ := s.Save(at, "in-1", 2, []byte("p"), []byte("s"))
	for _, p := range []string{p1, s1, p2, s2} {
		os.Chtimes(filepath.Join(dir, p), at, at)
	}
	if err := s.Remove(p1); err != nil {
		t.Fatal(err)
	}
	if err := s.Remove(p1); err != nil {
		t.Errorf("removing an image already gone: %v", err)
	}
	for _, bad := range []string{"../x", "/etc/passwd"} {
		if err := s.Remove(bad); err == nil {
			t.Errorf("Remove(%q) succeeded", bad)
		}
	}
	// Eight days on, everything is past retention but p2's images are
	// kept.
	keep := map[string]bool{p2: true, s2: true}
	n, err := s.SweepKeeping(at.Add(8*24*time.Hour), 7*24*time.Hour, func(p string) bool { return keep[p] })
	if err != nil || n != 1 {
		t.Fatalf("SweepKeeping = %d, %v; want s1 only", n, err)
	}
	for p, want := range map[string]bool{p1: false, s1: false, p2: true, s2: true} {
		if _, err := os.Stat(filepath.Join(dir, p)); (err == nil) != want {
			t.Errorf("%s exists %v, want %v", p, err == nil, want)
		}
	}
}
