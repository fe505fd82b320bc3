//go:build unix

package filestore

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"syscall"
)

// lock takes the store's exclusive commit lock (flock on .archiver.lock in
// the root), which serialises commits and stale-upload cleanup across
// goroutines and processes sharing the directory.
func (s *Store) lock() (unlock func(), err error) {
	f, err := s.root.OpenFile(lockName, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open lock: %w", err)
	}
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", lockName, err)
	}
	return func() { f.Close() }, nil // closing releases the flock
}

// inode identifies a file across renames, to tell whether a sidecar
// describes the file next to it.
func inode(fi fs.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Ino)
	}
	return 0
}
