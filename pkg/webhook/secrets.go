package webhook

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
)

// Signature errors. Each is a 401 with no detail for the caller; the reason
// only goes to the log and the signature-failure metric.
var (
	// ErrSignatureMissing: no X-Hub-Signature-256 header. A delivery
	// signed only with SHA-1 (X-Hub-Signature) is treated as unsigned.
	ErrSignatureMissing = errors.New("signature missing")
	// ErrSignatureMalformed: the header is not "sha256=" and 64 hex digits.
	ErrSignatureMalformed = errors.New("signature malformed")
	// ErrSignatureMismatch: no configured secret produces the signature.
	ErrSignatureMismatch = errors.New("signature mismatch")
)

// SignatureHeader carries "sha256=" + the hex HMAC-SHA256 of the raw body.
const SignatureHeader = "X-Hub-Signature-256"

// Secrets are the webhook secrets a delivery may be signed with. Holding
// more than one allows rotation: configure the new secret next to the old
// one, change it at GitHub, then drop the old one.
type Secrets struct {
	keys [][]byte
}

// NewSecrets returns the non-empty secrets among ss.
func NewSecrets(ss ...string) Secrets {
	var s Secrets
	for _, k := range ss {
		if k != "" {
			s.keys = append(s.keys, []byte(k))
		}
	}
	return s
}

// ParseSecrets reads secrets one per line (the format of
// GITHUB_WEBHOOK_SECRET_FILE). Surrounding whitespace and CR are trimmed,
// and blank lines are ignored.
func ParseSecrets(data []byte) Secrets {
	var ss []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, len(data)+1)
	for sc.Scan() {
		ss = append(ss, strings.TrimSpace(sc.Text()))
	}
	return NewSecrets(ss...)
}

// Merge returns the secrets of s and o.
func (s Secrets) Merge(o Secrets) Secrets {
	return Secrets{keys: append(append([][]byte(nil), s.keys...), o.keys...)}
}

// Len returns the number of secrets.
func (s Secrets) Len() int { return len(s.keys) }

// Verify checks header (the X-Hub-Signature-256 value) against body with
// every secret. The comparison is constant-time (hmac.Equal). It returns
// nil, [ErrSignatureMissing], [ErrSignatureMalformed] or
// [ErrSignatureMismatch].
func (s Secrets) Verify(header string, body []byte) error {
	if header == "" {
		return ErrSignatureMissing
	}
	hexSum, ok := strings.CutPrefix(header, "sha256=")
	if !ok || len(hexSum) != 2*sha256.Size {
		return ErrSignatureMalformed
	}
	var want [sha256.Size]byte
	if _, err := hex.Decode(want[:], []byte(hexSum)); err != nil {
		return ErrSignatureMalformed
	}
	var got [sha256.Size]byte
	for _, k := range s.keys {
		m := hmac.New(sha256.New, k)
		m.Write(body)
		if hmac.Equal(m.Sum(got[:0]), want[:]) {
			return nil
		}
	}
	return ErrSignatureMismatch
}
