package archive

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxNameBytes bounds a rendered name: S3 and file systems cap a path
// segment at 255 bytes; the rest is room for extensions.
const MaxNameBytes = 200

// Layout derives every key of the archive. Keys are relative to the
// destination's prefix:
//
//	<owner>/<repo>/runs/<run_id>/artifacts/<artifact_id>/<name>.zip
//	<owner>/<repo>/runs/<run_id>/attempt-<n>/manifest.json
//	<owner>/<repo>/runs/<run_id>/attempt-<n>/SHA256SUMS
//	<owner>/<repo>/runs/<run_id>/attestations/<artifact_id>.jsonl
//
// Artifacts are keyed by run id and artifact id, so re-run attempts and
// artifacts that share a name never overwrite each other, and a later
// attempt that lists an earlier attempt's artifacts finds them archived.
// No key is a path prefix of another.
type Layout struct {
	Owner string
	Repo  string
	RunID int64
}

// RunPrefix is "<owner>/<repo>/runs/<run_id>/".
func (l Layout) RunPrefix() string {
	return SafeName(l.Owner) + "/" + SafeName(l.Repo) + "/runs/" + strconv.FormatInt(l.RunID, 10) + "/"
}

// ArtifactPrefix is the folder that holds exactly one object: the artifact.
func (l Layout) ArtifactPrefix(artifactID int64) string {
	return l.RunPrefix() + "artifacts/" + strconv.FormatInt(artifactID, 10) + "/"
}

// AttestationsKey is the artifact's Sigstore bundles, one per line. It is
// outside the artifact's folder, which holds exactly one object (and a
// non-zip artifact may itself be named attestations.jsonl).
func (l Layout) AttestationsKey(artifactID int64) string {
	return l.RunPrefix() + "attestations/" + strconv.FormatInt(artifactID, 10) + ".jsonl"
}

// AttemptPrefix is the folder of one run attempt's manifest and checksums.
func (l Layout) AttemptPrefix(attempt int) string {
	return l.RunPrefix() + "attempt-" + strconv.Itoa(attempt) + "/"
}

// ManifestKey is the run attempt's manifest, written last.
func (l Layout) ManifestKey(attempt int) string { return l.AttemptPrefix(attempt) + "manifest.json" }

// SumsKey is the run attempt's SHA256SUMS file (sha256sum -c format, paths
// relative to the attempt folder).
func (l Layout) SumsKey(attempt int) string { return l.AttemptPrefix(attempt) + "SHA256SUMS" }

// ObjectName is the file name of an artifact's object: the sanitised
// artifact name plus ".zip" for zip archives, or the sanitised
// Content-Disposition file name for artifacts uploaded with archive: false.
func ObjectName(artifactName, contentType, fileName string) string {
	isZip := strings.HasPrefix(contentType, "application/zip") || strings.HasPrefix(contentType, "application/x-zip")
	if !isZip && fileName != "" {
		return SafeName(fileName)
	}
	name := SafeName(artifactName)
	if isZip && !strings.HasSuffix(strings.ToLower(name), ".zip") {
		name = truncate(name, MaxNameBytes-4) + ".zip"
	}
	return name
}

// SafeName renders user input (an artifact, file, owner or repository
// name) as one safe key segment: letters, digits and ". - _ + = @ , ~" are
// kept, anything else (slashes, control characters, spaces, quotes)
// becomes "_"; leading dots are replaced so "." and ".." cannot occur; the
// result never contains ".." and is at most MaxNameBytes bytes of valid UTF-8 and never empty.
func SafeName(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == utf8.RuneError:
			b.WriteByte('_')
		case unicode.IsLetter(r) || unicode.IsDigit(r):
			b.WriteRune(r)
		case strings.ContainsRune(".-_+=@,~", r):
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	out := strings.ReplaceAll(b.String(), "..", "__")
	if trimmed := strings.TrimLeft(out, "."); len(trimmed) != len(out) {
		out = strings.Repeat("_", len(out)-len(trimmed)) + trimmed
	}
	out = truncate(out, MaxNameBytes)
	if out == "" {
		return "_"
	}
	return out
}

// truncate cuts s to at most n bytes on a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
