package s3store

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// maxSegment is the longest path segment MinIO and versitygw accept.
const maxSegment = 255

var errInvalidKey = errors.New("invalid key")

// validateKey accepts slash-separated keys of non-empty segments, none of
// them "." or ".." (MinIO rejects them, versitygw rewrites them) nor longer
// than 255 bytes, in valid UTF-8.
func validateKey(key string) error {
	if key == "" {
		return fmt.Errorf("%w: empty", errInvalidKey)
	}
	if !utf8.ValidString(key) {
		return fmt.Errorf("%w %q: not UTF-8", errInvalidKey, key)
	}
	for seg := range strings.SplitSeq(key, "/") {
		switch {
		case seg == "":
			return fmt.Errorf("%w %q: empty segment (leading, trailing or double slash)", errInvalidKey, key)
		case seg == "." || seg == "..":
			return fmt.Errorf("%w %q: %q segment", errInvalidKey, key, seg)
		case len(seg) > maxSegment:
			return fmt.Errorf("%w %q: segment longer than %d bytes", errInvalidKey, key, maxSegment)
		}
	}
	return nil
}
