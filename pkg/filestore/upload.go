package filestore

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/artifact-archiver/artifact-archiver/pkg/archive"
)

var _ archive.Upload = (*Upload)(nil)

// uploadPrefix names the temporary file of an upload at a key: the hidden
// ".upload-<12 hex of SHA-256(name)>-" then a random suffix, so that
// CreateUpload finds the uploads a crashed writer left at the same key.
func uploadPrefix(name string) string {
	sum := sha256.Sum256([]byte(name))
	return ".upload-" + hex.EncodeToString(sum[:6]) + "-"
}

// CreateUpload starts an upload into a hidden temporary file next to key.
// It removes only the temporary files of other uploads at the same key that
// have not been written to for StaleUploadAge (left by a crashed writer):
// a live upload of another writer is never disturbed. A successful Complete
// removes the others at its key.
func (s *Store) CreateUpload(ctx context.Context, key string, opts archive.PutOptions) (archive.Upload, error) {
	u, err := s.createUpload(ctx, key, opts)
	if err != nil {
		return nil, fmt.Errorf("filestore: create upload %s: %w", key, err)
	}
	return u, nil
}

func (s *Store) createUpload(ctx context.Context, key string, opts archive.PutOptions) (*Upload, error) {
	if err := checkArgs(key, 0, opts); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	dir, name := path.Split(key)
	newDir, err := s.mkdirAll(dir)
	if err != nil {
		return nil, err
	}
	if err := s.removeStale(dir, uploadPrefix(name), StaleUploadAge); err != nil {
		return nil, err
	}
	tmp, f, err := s.createTemp(dir, uploadPrefix(name))
	if err != nil {
		return nil, err
	}
	h := sha256.New()
	st, err := h.(encoding.BinaryMarshaler).MarshalBinary()
	if err != nil {
		f.Close()
		_ = s.root.Remove(tmp)
		return nil, err
	}
	return &Upload{s: s, key: key, tmp: tmp, f: f, opts: opts, newDir: newDir, hash: h, states: [][]byte{st}}, nil
}

// StaleUploadAge is how long an upload's temporary file must have gone
// unwritten before CreateUpload of the same key removes it (MinIO cleans
// stale multipart uploads after the same 24 h).
const StaleUploadAge = 24 * time.Hour

// removeStale removes the upload files in dir whose names start with prefix
// and that were last written more than olderThan ago (all with 0), under
// the store lock.
func (s *Store) removeStale(dir, prefix string, olderThan time.Duration) error {
	unlock, err := s.lock()
	if err != nil {
		return err
	}
	defer unlock()
	entries, err := fs.ReadDir(s.root.FS(), cmpDir(dir))
	if err != nil {
		return fmt.Errorf("read directory: %w", err)
	}
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), prefix) {
			continue
		}
		if olderThan > 0 {
			fi, err := e.Info()
			if err != nil || time.Since(fi.ModTime()) < olderThan {
				continue
			}
		}
		if err := s.root.Remove(dir + e.Name()); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("remove stale upload: %w", err)
		}
		s.log.Info("removed stale upload", "key", dir+e.Name())
	}
	return nil
}

func cmpDir(dir string) string {
	if dir == "" {
		return "."
	}
	return strings.TrimSuffix(dir, "/")
}

// Upload is one upload into a [Store], made by [Store.CreateUpload]: parts
// are written in order into one temporary file. Its methods may be called
// from several goroutines, but run one at a time.
type Upload struct {
	s      *Store
	key    string
	tmp    string
	opts   archive.PutOptions
	newDir bool

	mu     sync.Mutex
	f      *os.File
	sizes  []int64 // sizes[i] is the size of part i+1
	hash   hash.Hash
	states [][]byte // states[i]: hash state after part i
	done   bool     // completed or aborted
}

// WritePart writes exactly size bytes of r as part n, at the offset where
// part n-1 ended. It reads no byte beyond size, so r may be one stream cut
// into parts. n must be at most one more than the number of parts written;
// writing part n again drops the parts after it. On failure (a short or
// failing reader, a cancelled ctx) part n is discarded: write it again, or
// Abort.
func (u *Upload) WritePart(ctx context.Context, n int, r io.Reader, size int64) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	if err := u.writePart(ctx, n, r, size); err != nil {
		return fmt.Errorf("filestore: write part %d of %s: %w", n, u.key, err)
	}
	return nil
}

func (u *Upload) writePart(ctx context.Context, n int, r io.Reader, size int64) error {
	if u.done {
		return errors.New("upload already completed or aborted")
	}
	if n < 1 || n > len(u.sizes)+1 {
		return fmt.Errorf("want a part number from 1 to %d", len(u.sizes)+1)
	}
	if size < 0 {
		return fmt.Errorf("negative size %d", size)
	}
	var off int64
	for _, sz := range u.sizes[:n-1] {
		off += sz
	}
	u.sizes, u.states = u.sizes[:n-1], u.states[:n]
	if err := u.rewind(off); err != nil {
		return err
	}
	body := archive.NewExactReader(ctx, r, size, archive.ExactOptions{Hash: u.hash, Key: u.key})
	if _, err := io.Copy(u.f, body); err != nil {
		if rerr := u.rewind(off); rerr != nil {
			return errors.Join(err, rerr)
		}
		return err
	}
	st, err := u.hash.(encoding.BinaryMarshaler).MarshalBinary()
	if err != nil {
		return err
	}
	u.sizes = append(u.sizes, size)
	u.states = append(u.states, st)
	return nil
}

// rewind cuts the file at off, the end of the parts kept, and restores the
// hash to the state after them.
func (u *Upload) rewind(off int64) error {
	if err := u.f.Truncate(off); err != nil {
		return fmt.Errorf("truncate: %w", err)
	}
	if _, err := u.f.Seek(off, io.SeekStart); err != nil {
		return fmt.Errorf("seek: %w", err)
	}
	if err := u.hash.(encoding.BinaryUnmarshaler).UnmarshalBinary(u.states[len(u.states)-1]); err != nil {
		return fmt.Errorf("rewind sha256: %w", err)
	}
	return nil
}

// Complete checks the SHA-256 against opts.SHA256 (aborting and returning
// a *[ChecksumError] on a mismatch), syncs the file and renames it into
// place with its sidecar. With opts.IfAbsent and an existing key it aborts
// and returns [archive.ErrExists].
func (u *Upload) Complete(ctx context.Context) (archive.ObjectInfo, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	info, err := u.complete(ctx)
	if err != nil {
		return archive.ObjectInfo{}, fmt.Errorf("filestore: complete upload %s: %w", u.key, err)
	}
	return info, nil
}

func (u *Upload) complete(ctx context.Context) (archive.ObjectInfo, error) {
	if u.done {
		return archive.ObjectInfo{}, errors.New("upload already completed or aborted")
	}
	if len(u.sizes) == 0 {
		return archive.ObjectInfo{}, errors.New("no parts")
	}
	if err := ctx.Err(); err != nil {
		return archive.ObjectInfo{}, err
	}
	sum := u.hash.Sum(nil)
	if u.opts.SHA256 != nil && !bytes.Equal(sum, u.opts.SHA256) {
		return archive.ObjectInfo{}, errors.Join(&ChecksumError{Key: u.key, Want: u.opts.SHA256, Got: sum}, u.abortLocked())
	}
	fi, err := syncStat(u.f)
	if err != nil {
		return archive.ObjectInfo{}, err
	}
	var size int64
	for _, sz := range u.sizes {
		size += sz
	}
	sc := sidecar{
		ContentType: cmp.Or(u.opts.ContentType, DefaultContentType),
		Metadata:    u.opts.Metadata,
		Size:        size,
		SHA256:      hex.EncodeToString(sum),
		Inode:       inode(fi),
	}
	if err := u.s.commit(u.key, u.tmp, sc, u.opts, u.newDir); err != nil {
		if errors.Is(err, archive.ErrExists) {
			return archive.ObjectInfo{}, errors.Join(err, u.abortLocked())
		}
		if errors.Is(err, archive.ErrUploadGone) {
			u.done = true
			u.f.Close()
			if _, serr := u.s.statFile(u.key); serr == nil && u.opts.IfAbsent {
				return archive.ObjectInfo{}, fmt.Errorf("%w (%w)", archive.ErrExists, err)
			}
		}
		return archive.ObjectInfo{}, err
	}
	u.done = true
	u.f.Close()
	// The key is complete: other uploads at it can only fail now.
	dir, name := path.Split(u.key)
	if err := u.s.removeStale(dir, uploadPrefix(name), 0); err != nil {
		u.s.log.Warn("removing other uploads after complete", "key", u.key, "err", err)
	}
	return sc.info(u.key), nil
}

// Abort removes the temporary file. It does not depend on ctx, is
// idempotent, and does nothing after a successful Complete.
func (u *Upload) Abort(ctx context.Context) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	if err := u.abortLocked(); err != nil {
		return fmt.Errorf("filestore: abort upload %s: %w", u.key, err)
	}
	return nil
}

func (u *Upload) abortLocked() error {
	if u.done {
		return nil
	}
	u.f.Close()
	if err := u.s.root.Remove(u.tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	u.done = true
	return nil
}
