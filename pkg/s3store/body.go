package s3store

import "github.com/artifact-archiver/artifact-archiver/pkg/archive"

// ChecksumError reports that the bytes written do not have the SHA-256 the
// caller announced in archive.PutOptions.SHA256; nothing is left at the key.
// errors.Is(err, archive.ErrChecksumMismatch) detects it.
type ChecksumError = archive.ChecksumError
