package filestore

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/artifact-archiver/artifact-archiver/pkg/archive"
)

// DefaultContentType is stored when PutOptions.ContentType is empty.
const DefaultContentType = "application/octet-stream"

const (
	lockName   = ".archiver.lock"
	metaSuffix = ".meta.json"
)

var _ archive.Store = (*Store)(nil)

// Config configures a [Store].
type Config struct {
	// Dir is the root directory; it is created if missing. Required.
	Dir string
	// Logger receives the few events worth logging (stale uploads
	// removed). Default: discard.
	Logger *slog.Logger
}

// Store is an [archive.Store] in a local directory. The object at key
// "a/b/c.zip" is the file <Dir>/a/b/c.zip; its content type, user metadata
// and SHA-256 are in the hidden sidecar <Dir>/a/b/.c.zip.meta.json. It is
// safe for concurrent use, also by several processes sharing Dir.
type Store struct {
	dir  string
	root *os.Root // every file access goes through it: nothing escapes dir
	log  *slog.Logger
}

// New opens (creating if needed) the directory cfg.Dir as a store. Close
// releases it.
func New(cfg Config) (*Store, error) {
	if cfg.Dir == "" {
		return nil, fmt.Errorf("filestore: Dir is required")
	}
	dir, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("filestore: open %s: %w", cfg.Dir, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("filestore: open %s: %w", dir, err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("filestore: open %s: %w", dir, err)
	}
	return &Store{dir: dir, root: root, log: cmp.Or(cfg.Logger, slog.New(slog.DiscardHandler))}, nil
}

// ParseDestination returns the directory of a "file:///abs/path"
// destination.
func ParseDestination(dest string) (string, error) {
	u, err := url.Parse(dest)
	if err != nil {
		return "", fmt.Errorf("filestore: parse destination %q: %w", dest, err)
	}
	if u.Scheme != "file" || (u.Host != "" && u.Host != "localhost") || u.User != nil {
		return "", fmt.Errorf("filestore: parse destination %q: want file:///absolute/path", dest)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("filestore: parse destination %q: no query or fragment allowed", dest)
	}
	if u.Path == "" || !path.IsAbs(u.Path) {
		return "", fmt.Errorf("filestore: parse destination %q: want file:///absolute/path", dest)
	}
	return filepath.FromSlash(path.Clean(u.Path)), nil
}

// Close releases the root directory.
func (s *Store) Close() error { return s.root.Close() }

// Dir returns the absolute root directory.
func (s *Store) Dir() string { return s.dir }

// Location renders file:///dir/key.
func (s *Store) Location(key string) string {
	return (&url.URL{Scheme: "file", Path: filepath.ToSlash(s.dir) + "/" + key}).String()
}

// sidecar is the JSON stored next to each object.
type sidecar struct {
	ContentType string            `json:"content_type"`
	Metadata    map[string]string `json:"metadata,omitempty"`
	Size        int64             `json:"size"`
	SHA256      string            `json:"sha256"` // hex; also the ETag
	// Inode of the object file it describes: a sidecar whose object was
	// replaced (or never renamed into place, after a crash) is ignored.
	Inode uint64 `json:"inode"`
}

// info is the ObjectInfo the sidecar describes.
func (sc sidecar) info(key string) archive.ObjectInfo {
	md := make(map[string]string, len(sc.Metadata))
	for k, v := range sc.Metadata {
		md[strings.ToLower(k)] = v
	}
	return archive.ObjectInfo{Key: key, Size: sc.Size, ETag: sc.SHA256, ContentType: sc.ContentType, Metadata: md}
}

func metaPath(key string) string {
	dir, name := path.Split(key)
	return dir + "." + name + metaSuffix
}

// Put writes exactly size bytes of r to a temporary file next to key,
// computing its SHA-256 (checked against opts.SHA256, a *[ChecksumError] on
// a mismatch), syncs it, and renames it into place with its sidecar. With
// opts.IfAbsent an existing key returns [archive.ErrExists] and is left
// untouched. A reader that yields fewer or more bytes or fails, a cancelled
// ctx, or any other error leaves nothing at the key.
func (s *Store) Put(ctx context.Context, key string, r io.Reader, size int64, opts archive.PutOptions) (archive.ObjectInfo, error) {
	sc, err := s.put(ctx, key, r, size, opts)
	if err != nil {
		return archive.ObjectInfo{}, fmt.Errorf("filestore: put object %s: %w", key, err)
	}
	return sc.info(key), nil
}

func (s *Store) put(ctx context.Context, key string, r io.Reader, size int64, opts archive.PutOptions) (sidecar, error) {
	if err := checkArgs(key, size, opts); err != nil {
		return sidecar{}, err
	}
	if err := ctx.Err(); err != nil {
		return sidecar{}, err
	}
	dir, _ := path.Split(key)
	newDir, err := s.mkdirAll(dir)
	if err != nil {
		return sidecar{}, err
	}
	tmp, f, err := s.createTemp(dir, ".put-")
	if err != nil {
		return sidecar{}, err
	}
	committed := false
	defer func() {
		f.Close()
		if !committed {
			_ = s.root.Remove(tmp)
		}
	}()
	h := sha256.New()
	body := archive.NewExactReader(ctx, r, size, archive.ExactOptions{Probe: true, Hash: h, Want: opts.SHA256, Key: key})
	if _, err := io.Copy(f, body); err != nil {
		return sidecar{}, err
	}
	fi, err := syncStat(f)
	if err != nil {
		return sidecar{}, err
	}
	sc := sidecar{
		ContentType: cmp.Or(opts.ContentType, DefaultContentType),
		Metadata:    opts.Metadata,
		Size:        size,
		SHA256:      hex.EncodeToString(h.Sum(nil)),
		Inode:       inode(fi),
	}
	if err := ctx.Err(); err != nil {
		return sidecar{}, err
	}
	if err := s.commit(key, tmp, sc, opts, newDir); err != nil {
		return sidecar{}, err
	}
	committed = true
	return sc, nil
}

func checkArgs(key string, size int64, opts archive.PutOptions) error {
	if err := validateKey(key); err != nil {
		return err
	}
	if opts.IfAbsent && opts.IfMatch != "" {
		return errors.New("IfAbsent and IfMatch are exclusive")
	}
	if size < 0 {
		return fmt.Errorf("negative size %d", size)
	}
	if n := len(opts.SHA256); n != 0 && n != sha256.Size {
		return fmt.Errorf("SHA256 has %d bytes, want %d", n, sha256.Size)
	}
	return nil
}

// mkdirAll creates dir (a key's directory, "" or ending in "/") and reports
// whether it did not exist, so that commit syncs its parents.
func (s *Store) mkdirAll(dir string) (created bool, err error) {
	if dir == "" {
		return false, nil
	}
	if fi, err := s.root.Stat(dir); err == nil && fi.IsDir() {
		return false, nil
	}
	if err := s.root.MkdirAll(strings.TrimSuffix(dir, "/"), 0o755); err != nil {
		return false, fmt.Errorf("create directory: %w", err)
	}
	return true, nil
}

// createTemp creates a new hidden file dir+prefix+random.
func (s *Store) createTemp(dir, prefix string) (string, *os.File, error) {
	name := dir + prefix + rand.Text()
	f, err := s.root.OpenFile(name, os.O_CREATE|os.O_EXCL|os.O_RDWR, 0o644)
	if err != nil {
		return "", nil, fmt.Errorf("create temporary file: %w", err)
	}
	return name, f, nil
}

// syncStat flushes f to disk and returns its info.
func syncStat(f *os.File) (fs.FileInfo, error) {
	if err := f.Sync(); err != nil {
		return nil, fmt.Errorf("sync: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("stat: %w", err)
	}
	return fi, nil
}

// commit makes the synced temporary file tmp the object at key: it writes
// the sidecar to a temporary file, then, holding the store lock, checks the
// key (ifAbsent) and renames the sidecar and then the data into place, and
// syncs the directory (and its parents if newDir). The object exists once
// its data file does, so readers never see it without its sidecar; a crash
// between the renames leaves a sidecar that Stat ignores.
func (s *Store) commit(key, tmp string, sc sidecar, opts archive.PutOptions, newDir bool) (err error) {
	dir, _ := path.Split(key)
	b, err := json.Marshal(sc)
	if err != nil {
		return fmt.Errorf("encode metadata: %w", err)
	}
	metaTmp, mf, err := s.createTemp(dir, ".meta-")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = s.root.Remove(metaTmp)
		}
	}()
	_, err = mf.Write(b)
	if err == nil {
		err = mf.Sync()
	}
	if cerr := mf.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write metadata: %w", err)
	}

	unlock, err := s.lock()
	if err != nil {
		return err
	}
	defer unlock()
	if _, err := s.root.Lstat(tmp); err != nil {
		// Removed as stale, or after another upload completed the key.
		return fmt.Errorf("%w: %w", archive.ErrUploadGone, err)
	}
	if fi, err := s.root.Lstat(key); err == nil {
		if fi.IsDir() {
			return fmt.Errorf("key is a directory holding other keys")
		}
		if opts.IfAbsent {
			return archive.ErrExists
		}
		if opts.IfMatch != "" && s.info(key, fi, true).ETag != opts.IfMatch {
			return archive.ErrConflict
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	} else if opts.IfMatch != "" {
		return archive.ErrConflict
	}
	if err := s.root.Rename(metaTmp, metaPath(key)); err != nil {
		return fmt.Errorf("rename metadata: %w", err)
	}
	if err := s.root.Rename(tmp, key); err != nil {
		return fmt.Errorf("rename: %w", err)
	}
	return s.syncDirs(dir, newDir)
}

// syncDirs syncs dir, and with parents every directory above it up to the
// root, so that renames and new directories survive a crash.
func (s *Store) syncDirs(dir string, parents bool) error {
	for {
		d := strings.TrimSuffix(dir, "/")
		f, err := s.root.Open(cmp.Or(d, "."))
		if err != nil {
			return fmt.Errorf("sync directory: %w", err)
		}
		err = f.Sync()
		f.Close()
		if err != nil {
			return fmt.Errorf("sync directory: %w", err)
		}
		if !parents || d == "" {
			return nil
		}
		dir, _ = path.Split(d)
	}
}

// Stat returns the object's info, or [archive.ErrNotFound]. ETag is the hex
// SHA-256 of the content. An object without a valid sidecar (a file put
// there by hand) gets DefaultContentType, no metadata and an ETag from its
// size and modification time.
func (s *Store) Stat(ctx context.Context, key string) (archive.ObjectInfo, error) {
	if err := validateKey(key); err != nil {
		return archive.ObjectInfo{}, fmt.Errorf("filestore: stat object %s: %w", key, err)
	}
	fi, err := s.statFile(key)
	if err != nil {
		return archive.ObjectInfo{}, fmt.Errorf("filestore: stat object %s: %w", key, err)
	}
	return s.info(key, fi, true), nil
}

// statFile stats the object file; a missing or non-regular file is
// archive.ErrNotFound.
func (s *Store) statFile(key string) (fs.FileInfo, error) {
	fi, err := s.root.Stat(key)
	switch {
	case errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR):
		return nil, archive.ErrNotFound
	case err != nil:
		return nil, err
	case !fi.Mode().IsRegular():
		return nil, archive.ErrNotFound
	}
	return fi, nil
}

// info builds the object's info from fi and its sidecar; without full only
// Key, Size and ETag (as List returns them).
func (s *Store) info(key string, fi fs.FileInfo, full bool) archive.ObjectInfo {
	info := archive.ObjectInfo{
		Key:  key,
		Size: fi.Size(),
		ETag: fmt.Sprintf("%x-%x", fi.ModTime().UnixNano(), fi.Size()),
	}
	if full {
		info.ContentType = DefaultContentType
		info.Metadata = map[string]string{}
	}
	b, err := s.root.ReadFile(metaPath(key))
	if err != nil {
		return info
	}
	var sc sidecar
	if json.Unmarshal(b, &sc) != nil || sc.Inode != inode(fi) || sc.Size != fi.Size() {
		return info
	}
	if !full {
		info.ETag = sc.SHA256
		return info
	}
	return sc.info(key)
}

// List returns the objects whose keys start with prefix (a string prefix,
// as in S3: "runs/1" matches "runs/1/a" and "runs/10/b"), in key order.
// Only Key, Size and ETag are set, as by the S3 store; use Stat for the
// rest.
func (s *Store) List(ctx context.Context, prefix string) ([]archive.ObjectInfo, error) {
	start, _ := path.Split(prefix) // the deepest directory all matches are in
	start = strings.TrimSuffix(start, "/")
	if start != "" && validateKey(start) != nil {
		return nil, nil // no valid key lives under it
	}
	var infos []archive.ObjectInfo
	err := fs.WalkDir(s.root.FS(), cmp.Or(start, "."), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == cmp.Or(start, ".") && (errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR)) {
				return fs.SkipAll
			}
			return err
		}
		if strings.HasPrefix(d.Name(), ".") && p != "." {
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			if p != "." && !strings.HasPrefix(p+"/", prefix) && !strings.HasPrefix(prefix, p+"/") {
				return fs.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() || !strings.HasPrefix(p, prefix) {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		fi, err := d.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil // replaced or removed meanwhile
		}
		if err != nil {
			return err
		}
		infos = append(infos, s.info(p, fi, false))
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("filestore: list objects %s: %w", prefix, err)
	}
	slices.SortFunc(infos, func(a, b archive.ObjectInfo) int { return strings.Compare(a.Key, b.Key) })
	return infos, nil
}

// Open opens the object for reading, or returns [archive.ErrNotFound].
func (s *Store) Open(ctx context.Context, key string) (io.ReadCloser, error) {
	if err := validateKey(key); err != nil {
		return nil, fmt.Errorf("filestore: open object %s: %w", key, err)
	}
	f, err := s.root.Open(key)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
			err = archive.ErrNotFound
		}
		return nil, fmt.Errorf("filestore: open object %s: %w", key, err)
	}
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("filestore: open object %s: %w", key, archive.ErrNotFound)
	}
	return f, nil
}
