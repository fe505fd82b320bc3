package archive

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"
)

// Defaults for leases (see [Config]).
const (
	DefaultLeaseTTL     = 2 * time.Minute
	DefaultMaxLeaseWait = 2 * time.Hour
)

// LeasePrefix holds the per-artifact transfer leases, relative to the
// destination. No archive key starts with "_" (owners are GitHub logins).
const LeasePrefix = "_leases/"

// ErrLeaseLost: this worker's lease on an artifact was taken over (it could
// not renew it in time), so it stopped its transfer and defers to the new
// holder.
var ErrLeaseLost = errors.New("artifact lease lost")

// LeaseKey is the lease object of one artifact. Artifact ids are unique
// across GitHub, so attempts and runs that list the same artifact share it.
func LeaseKey(artifactID int64) string {
	return LeasePrefix + "artifacts/" + strconv.FormatInt(artifactID, 10) + ".json"
}

// leaseRecord is the JSON body of a lease object.
type leaseRecord struct {
	Holder     string    `json:"holder"`
	Token      string    `json:"token"`
	ArtifactID int64     `json:"artifact_id"`
	Acquired   time.Time `json:"acquired"`
	Expires    time.Time `json:"expires"`
	Released   bool      `json:"released,omitempty"`
}

// free reports whether another worker may take the lease at now.
func (r *leaseRecord) free(now time.Time) bool { return r.Released || !now.Before(r.Expires) }

// leases takes and keeps per-artifact leases as small objects in the
// store. Every write is conditional: If-None-Match to create, If-Match on
// the ETag that was read to take over an expired or released lease, to
// renew and to release. So at most one live worker holds an artifact's
// lease; another one waits for it instead of transferring the same bytes.
type leases struct {
	store  Store
	ttl    time.Duration
	holder string
	now    func() time.Time
}

// lease is one held lease.
type lease struct {
	ls   *leases
	key  string
	rec  leaseRecord
	etag string
}

// defaultHolder names this process in leases: host, pid and a random part.
func defaultHolder() string {
	host, _ := os.Hostname()
	return fmt.Sprintf("%s/%d/%s", host, os.Getpid(), rand.Text()[:8])
}

// acquire takes the artifact's lease, or returns the live record of the
// worker that holds it (and a nil lease).
func (ls *leases) acquire(ctx context.Context, artifactID int64) (*lease, *leaseRecord, error) {
	key := LeaseKey(artifactID)
	for try := 0; try < 5; try++ {
		cur, etag, err := ls.read(ctx, key)
		if err != nil && !errors.Is(err, ErrNotFound) {
			return nil, nil, err
		}
		now := ls.now()
		if cur != nil && !cur.free(now) {
			return nil, cur, nil
		}
		rec := leaseRecord{Holder: ls.holder, Token: rand.Text(), ArtifactID: artifactID, Acquired: now.UTC(), Expires: now.Add(ls.ttl).UTC()}
		opts := PutOptions{Kind: KindTransient, ContentType: "application/json"}
		if cur == nil {
			opts.IfAbsent = true
		} else {
			opts.IfMatch = etag
		}
		newTag, err := ls.write(ctx, key, rec, opts)
		switch {
		case err == nil:
			return &lease{ls: ls, key: key, rec: rec, etag: newTag}, nil, nil
		case errors.Is(err, ErrExists), errors.Is(err, ErrConflict):
			continue // another worker got there first: read again
		default:
			return nil, nil, err
		}
	}
	return nil, nil, fmt.Errorf("archive: acquire lease %s: too much contention", key)
}

// read returns the lease at key and the ETag to replace it with. The ETag
// is taken before the body, so a concurrent change makes the next
// conditional write fail rather than overwrite what it did not see. An
// unreadable lease counts as free.
func (ls *leases) read(ctx context.Context, key string) (*leaseRecord, string, error) {
	b, etag, err := readVersioned(ctx, ls.store, key, 64<<10)
	if err != nil {
		return nil, "", err
	}
	var rec leaseRecord
	if json.Unmarshal(b, &rec) != nil {
		rec = leaseRecord{Released: true}
	}
	return &rec, etag, nil
}

func (ls *leases) write(ctx context.Context, key string, rec leaseRecord, opts PutOptions) (string, error) {
	b, err := json.Marshal(rec)
	if err != nil {
		return "", fmt.Errorf("archive: encode lease: %w", err)
	}
	info, err := ls.store.Put(ctx, key, bytesReader(b), int64(len(b)), opts)
	if err != nil {
		return "", err
	}
	return info.ETag, nil
}

// renew extends the lease by the TTL. ErrLeaseLost means another worker
// took it over.
func (l *lease) renew(ctx context.Context) error {
	rec := l.rec
	rec.Expires = l.ls.now().Add(l.ls.ttl).UTC()
	etag, err := l.ls.write(ctx, l.key, rec, PutOptions{Kind: KindTransient, ContentType: "application/json", IfMatch: l.etag})
	if errors.Is(err, ErrConflict) {
		return fmt.Errorf("archive: renew lease %s: %w", l.key, ErrLeaseLost)
	}
	if err != nil {
		return fmt.Errorf("archive: renew lease %s: %w", l.key, err)
	}
	l.rec, l.etag = rec, etag
	return nil
}

// release marks the lease free, if this worker still holds it. It runs
// even when ctx is done.
func (l *lease) release(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	rec := l.rec
	rec.Released = true
	_, err := l.ls.write(ctx, l.key, rec, PutOptions{Kind: KindTransient, ContentType: "application/json", IfMatch: l.etag})
	if err != nil && !errors.Is(err, ErrConflict) {
		return fmt.Errorf("archive: release lease %s: %w", l.key, err)
	}
	return nil
}

// keep renews the lease every TTL/3 until ctx ends. When the lease is
// taken over, or cannot be renewed before it expires, it calls lost: the
// caller must stop writing, because another worker may own the artifact.
func (l *lease) keep(ctx context.Context, lost func(error)) {
	every := max(l.ls.ttl/3, time.Second)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		err := l.renew(ctx)
		if err == nil {
			continue
		}
		if ctx.Err() != nil {
			return
		}
		// A store hiccup: keep trying while the lease still has a safe
		// margin (one renewal period) left, then give up.
		if errors.Is(err, ErrLeaseLost) || !l.ls.now().Add(every).Before(l.rec.Expires) {
			lost(err)
			return
		}
	}
}
