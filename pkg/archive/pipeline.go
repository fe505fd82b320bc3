package archive

import (
	"bytes"
	"context"
	"encoding"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// partBuffers is how many part buffers one multipart transfer holds: while
// one part uploads from its buffer, the next is read from the download into
// another. Memory per transfer is partBuffers × the part size.
const partBuffers = 2

// filledPart is a part read whole from the download, waiting for (or in)
// its upload.
type filledPart struct {
	n   int   // part number, from 1
	off int64 // offset of its first byte in the artifact
	buf []byte
}

// partFailures counts the failed part attempts of one artifact, downloads
// and uploads together, against [Config.MaxResumes].
type partFailures struct {
	n   atomic.Int32
	max int
}

// spend counts one failure and reports how many there were, and whether the
// budget still allows another attempt.
func (f *partFailures) spend() (int, bool) {
	n := int(f.n.Add(1))
	return n, n <= f.max
}

// pipeParts copies the download into up as parts of partSize: a reader
// (its own goroutine) fills part buffers from the download, hashing each
// byte into h once and in order, while the calling goroutine uploads the
// previous part from its buffer. At most partBuffers buffers exist.
//
// A download that breaks is resumed at the start of the part being read,
// with a fresh redirect URL and a Range request (h is rewound to that
// boundary); parts already read are in their buffers and are not fetched
// again. A part whose upload fails is written again from its buffer. Both
// kinds of failure count against MaxResumes. *dlp is the open download on
// return, for the caller to close.
//
// It returns the first failure: the upload's, which wraps ErrUploadGone
// when someone aborted it, or the download's; ctx's error when ctx ended.
func (a *Archiver) pipeParts(ctx context.Context, j *job, r RemoteArtifact, up Upload, dlp **Download, h hash.Hash, partSize int64, log *slog.Logger) error {
	nbuf := int(min(partBuffers, ((*dlp).Length+partSize-1)/partSize))
	bufs, release, err := allocPartBuffers(nbuf, partSize)
	if err != nil {
		return err
	}
	// Runs after wg.Wait below: no part is being read or uploaded then.
	defer release()
	free := make(chan []byte, nbuf) // buffers not holding a part
	full := make(chan filledPart, nbuf)
	for _, b := range bufs {
		free <- b
	}
	fails := &partFailures{max: a.cfg.MaxResumes}
	pctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := a.fillParts(pctx, j, r, dlp, h, partSize, free, full, fails, log); err != nil {
			cancel(err)
		}
	})
	if err := a.uploadParts(pctx, r, up, full, free, fails, log); err != nil {
		cancel(err)
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return err
	}
	if pctx.Err() != nil {
		return context.Cause(pctx)
	}
	return nil
}

// fillParts reads the download into part buffers taken from free and sends
// them, in order, on full; it closes full when it returns.
func (a *Archiver) fillParts(ctx context.Context, j *job, r RemoteArtifact, dlp **Download, h hash.Hash, partSize int64, free <-chan []byte, full chan<- filledPart, fails *partFailures, log *slog.Logger) error {
	defer close(full)
	dl := *dlp
	length := dl.Length
	// Closing the body unblocks a read when the upload side fails or ctx
	// ends; the body of a download opened before the pipeline does not
	// watch ctx by itself.
	unblock := func(body io.Closer) func() bool { return context.AfterFunc(ctx, func() { body.Close() }) }
	stop := unblock(dl.Body)
	defer func() { stop() }()
	var off int64
	for n := 1; off < length; n++ {
		size := min(partSize, length-off)
		var buf []byte
		select {
		case buf = <-free:
		case <-ctx.Done():
			return context.Cause(ctx)
		}
		buf = buf[:size]
		for {
			state, err := h.(encoding.BinaryMarshaler).MarshalBinary()
			if err != nil {
				return fmt.Errorf("archive: save hash state: %w", err)
			}
			_, rerr := io.ReadFull(io.TeeReader(dl.Body, h), buf)
			if rerr == nil {
				break
			}
			if ctx.Err() != nil {
				return context.Cause(ctx)
			}
			if errors.Is(rerr, io.EOF) {
				rerr = fmt.Errorf("body ended before byte %d of %d: %w", off, length, io.ErrUnexpectedEOF)
			}
			tries, ok := fails.spend()
			if !ok {
				return fmt.Errorf("archive: artifact %d part %d after %d resumes: %w", r.ID, n, tries-1, rerr)
			}
			if err := h.(encoding.BinaryUnmarshaler).UnmarshalBinary(state); err != nil {
				return fmt.Errorf("archive: restore hash state: %w", err)
			}
			stop()
			dl.Body.Close()
			backoff := min(time.Duration(tries)*time.Second, maxResumeBackoff)
			log.Warn("part download failed, resuming download at part boundary", "part", n, "offset", off, "retry_in", backoff, "err", rerr)
			a.m.resumes.Inc()
			a.m.failures.WithLabelValues(failureReason(rerr)).Inc()
			if err := Sleep(ctx, backoff); err != nil {
				return err
			}
			if dl, err = a.reopen(ctx, j, r, off, length); err != nil {
				return err
			}
			*dlp = dl
			stop = unblock(dl.Body)
		}
		full <- filledPart{n: n, off: off, buf: buf}
		off += size
	}
	return nil
}

// uploadParts writes each part received on full from its buffer, again
// after a failure, and gives the buffer back on free.
func (a *Archiver) uploadParts(ctx context.Context, r RemoteArtifact, up Upload, full <-chan filledPart, free chan<- []byte, fails *partFailures, log *slog.Logger) error {
	for p := range full {
		for {
			err := up.WritePart(ctx, p.n, bytes.NewReader(p.buf), int64(len(p.buf)))
			if err == nil {
				break
			}
			if ctx.Err() != nil {
				return context.Cause(ctx)
			}
			if errors.Is(err, ErrUploadGone) {
				return err
			}
			tries, ok := fails.spend()
			if !ok {
				return fmt.Errorf("archive: artifact %d part %d after %d resumes: %w", r.ID, p.n, tries-1, err)
			}
			backoff := min(time.Duration(tries)*time.Second, maxResumeBackoff)
			log.Warn("part upload failed, writing it again from its buffer", "part", p.n, "offset", p.off, "retry_in", backoff, "err", err)
			a.m.failures.WithLabelValues(failureReason(err)).Inc()
			if err := Sleep(ctx, backoff); err != nil {
				return err
			}
		}
		free <- p.buf
	}
	return nil
}
