package filestore

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// maxSegment leaves room in a 255-byte file name for the sidecar's
// "." and ".meta.json".
const maxSegment = 255 - len(".") - len(metaSuffix)

var errInvalidKey = errors.New("invalid key")

// validateKey accepts slash-separated keys of non-empty segments in valid
// UTF-8 that do not start with "." (which also rules out "." and "..", and
// keeps the store's hidden sidecar and temporary files apart from objects),
// hold no NUL or backslash, and are at most 244 bytes long. A valid key
// never leaves the root directory.
func validateKey(key string) error {
	if key == "" {
		return fmt.Errorf("%w: empty", errInvalidKey)
	}
	if !utf8.ValidString(key) {
		return fmt.Errorf("%w %q: not UTF-8", errInvalidKey, key)
	}
	if strings.ContainsAny(key, "\x00\\") {
		return fmt.Errorf("%w %q: NUL or backslash", errInvalidKey, key)
	}
	for seg := range strings.SplitSeq(key, "/") {
		switch {
		case seg == "":
			return fmt.Errorf("%w %q: empty segment (leading, trailing or double slash)", errInvalidKey, key)
		case strings.HasPrefix(seg, "."):
			return fmt.Errorf("%w %q: segment %q starts with a dot", errInvalidKey, key, seg)
		case len(seg) > maxSegment:
			return fmt.Errorf("%w %q: segment longer than %d bytes", errInvalidKey, key, maxSegment)
		}
	}
	return nil
}
