package archive

import (
	"context"
	"io"
	"time"
)

// RemoteArtifact is an artifact as GitHub lists it.
type RemoteArtifact struct {
	ID   int64
	Name string
	// SizeInBytes is what GitHub reports. For legacy (v1–v3) artifacts it is
	// the uncompressed size, so it is never used as the stream length.
	SizeInBytes int64
	// Digest is the hex SHA-256 from GitHub's "sha256:<hex>" digest, or ""
	// when GitHub has none (artifacts uploaded before early 2025).
	Digest    string
	Expired   bool
	CreatedAt time.Time
	ExpiresAt time.Time
	UpdatedAt time.Time
	// RunID is the run the artifact belongs to (workflow_run.id).
	RunID int64
}

// GitHub is what the archiver needs from GitHub's REST API, already bound
// to one installation's credentials.
type GitHub interface {
	// ListRunArtifacts returns every artifact of the run, all pages.
	ListRunArtifacts(ctx context.Context, owner, repo string, runID int64) ([]RemoteArtifact, error)
	// DownloadURL returns the short-lived (1 minute) redirect URL of the
	// artifact's content, or ErrGone.
	DownloadURL(ctx context.Context, owner, repo string, artifactID int64) (string, error)
	// DeleteArtifact deletes the artifact at GitHub; a 404 is success.
	DeleteArtifact(ctx context.Context, owner, repo string, artifactID int64) error
}

// Installations gives the [GitHub] client of an installation (0 for a
// repository hook served with a plain token).
type Installations interface {
	ForInstallation(id int64) (GitHub, error)
}

// Downloader fetches a redirect URL from the blob host, without GitHub
// credentials.
type Downloader interface {
	// Open starts reading the object at url from byte offset. When the
	// host ignores the range the returned Download starts at 0.
	Open(ctx context.Context, url string, offset int64) (*Download, error)
}

// Download is an open stream from the blob host.
type Download struct {
	Body io.ReadCloser
	// Offset is the position of Body's first byte in the object.
	Offset int64
	// Length is the whole object's length (Content-Length, or the total
	// of Content-Range on a partial response).
	Length int64
	// ContentType as served: application/zip, or application/octet-stream
	// for artifacts uploaded with archive: false.
	ContentType string
	// FileName from Content-Disposition, if any.
	FileName string
}
