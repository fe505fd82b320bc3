package s3store

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/artifact-archiver/artifact-archiver/pkg/archive"
)

// ErrNotArchived is returned by [Store.Restore] for an object that is not in
// an archive storage class or tier: there is nothing to restore, it can be
// read as it is.
var ErrNotArchived = errors.New("not in an archive storage class")

// ObjectState is what HeadObject says about an object's storage: its class,
// whether it must be restored before GetObject can read it, the state of a
// restore, and its Object Lock retention and legal hold.
type ObjectState struct {
	// Info is the object's size, ETag, version, content type and user
	// metadata, as [Store.Stat] returns them.
	Info archive.ObjectInfo
	// StorageClass is the object's class; STANDARD when S3 omits the
	// header (as it does for STANDARD objects).
	StorageClass types.StorageClass
	// ArchiveStatus is the S3 Intelligent-Tiering archive tier the object
	// is in (ARCHIVE_ACCESS, DEEP_ARCHIVE_ACCESS), "" otherwise.
	ArchiveStatus types.ArchiveStatus
	// Archived: the object is in GLACIER or DEEP_ARCHIVE, or in an
	// Intelligent-Tiering archive tier, so GetObject answers 403
	// InvalidObjectState unless a restored copy exists. GLACIER_IR
	// (Instant Retrieval) is not archived: it reads like STANDARD.
	Archived bool
	// RestoreRequested: x-amz-restore is present (a restore is ongoing or
	// a restored copy exists).
	RestoreRequested bool
	// RestoreOngoing: a restore was requested and has not finished.
	RestoreOngoing bool
	// RestoreExpiry is when the restored copy is deleted again (zero while
	// ongoing, or when S3 gives no date, as for Intelligent-Tiering).
	RestoreExpiry time.Time
	// Retention is the Object Lock mode (GOVERNANCE, COMPLIANCE), "" if
	// none; RetainUntil is its date.
	Retention   types.ObjectLockMode
	RetainUntil time.Time
	// LegalHold: an Object Lock legal hold is ON.
	LegalHold bool
}

// Readable reports whether GetObject can read the object now: it is not
// archived, or a restore has finished and its copy has not expired.
func (o ObjectState) Readable() bool {
	return !o.Archived || o.Restored()
}

// Restored reports whether a restored copy of an archived object is
// available.
func (o ObjectState) Restored() bool {
	return o.RestoreRequested && !o.RestoreOngoing
}

// ObjectState reads the object's storage state with one HeadObject, which
// works on archived objects too. It returns [archive.ErrNotFound] for a
// missing object.
func (s *Store) ObjectState(ctx context.Context, key string) (ObjectState, error) {
	if err := validateKey(key); err != nil {
		return ObjectState{}, fmt.Errorf("s3store: head object %s: %w", key, err)
	}
	full := s.ObjectKey(key)
	out, err := s.headObject(ctx, full)
	if err != nil {
		return ObjectState{}, fmt.Errorf("s3store: head object %s: %w", full, err)
	}
	st, err := objectState(out)
	if err != nil {
		return ObjectState{}, fmt.Errorf("s3store: head object %s: %w", full, err)
	}
	st.Info.Key = key
	return st, nil
}

// objectState interprets a HeadObject answer.
func objectState(out *s3.HeadObjectOutput) (ObjectState, error) {
	st := ObjectState{
		Info:          objectInfo(out),
		StorageClass:  out.StorageClass,
		ArchiveStatus: out.ArchiveStatus,
		Retention:     out.ObjectLockMode,
		LegalHold:     out.ObjectLockLegalHoldStatus == types.ObjectLockLegalHoldStatusOn,
	}
	if st.StorageClass == "" {
		st.StorageClass = types.StorageClassStandard
	}
	if out.ObjectLockRetainUntilDate != nil {
		st.RetainUntil = *out.ObjectLockRetainUntilDate
	}
	switch {
	case st.StorageClass == types.StorageClassGlacier, st.StorageClass == types.StorageClassDeepArchive:
		st.Archived = true
	case st.ArchiveStatus != "":
		st.Archived = true
	}
	if h := aws.ToString(out.Restore); h != "" {
		ongoing, expiry, err := ParseRestoreHeader(h)
		if err != nil {
			return ObjectState{}, err
		}
		st.RestoreRequested, st.RestoreOngoing, st.RestoreExpiry = true, ongoing, expiry
	}
	return st, nil
}

// ParseRestoreHeader reads an x-amz-restore value: `ongoing-request="true"`
// while a restore runs, `ongoing-request="false", expiry-date="Fri, 21 Dec
// 2012 00:00:00 GMT"` once the copy is available (the date may be absent).
func ParseRestoreHeader(h string) (ongoing bool, expiry time.Time, err error) {
	fields, err := parseQuotedPairs(h)
	if err != nil {
		return false, time.Time{}, fmt.Errorf("x-amz-restore %q: %w", h, err)
	}
	switch fields["ongoing-request"] {
	case "true":
		ongoing = true
	case "false":
	default:
		return false, time.Time{}, fmt.Errorf("x-amz-restore %q: want ongoing-request=\"true\" or \"false\"", h)
	}
	if d, ok := fields["expiry-date"]; ok {
		if expiry, err = http.ParseTime(d); err != nil {
			return false, time.Time{}, fmt.Errorf("x-amz-restore %q: expiry-date: %w", h, err)
		}
	}
	return ongoing, expiry, nil
}

// parseQuotedPairs reads `a="x", b="y, z"`: comma-separated key="value"
// pairs whose values may hold commas.
func parseQuotedPairs(s string) (map[string]string, error) {
	out := map[string]string{}
	for {
		s = strings.TrimLeft(s, " ,")
		if s == "" {
			return out, nil
		}
		k, rest, ok := strings.Cut(s, "=")
		if !ok || !strings.HasPrefix(rest, `"`) {
			return nil, fmt.Errorf("want key=\"value\" at %q", s)
		}
		v, after, ok := strings.Cut(rest[1:], `"`)
		if !ok {
			return nil, fmt.Errorf("unterminated value at %q", s)
		}
		out[strings.TrimSpace(k)] = v
		s = after
	}
}

// Restore asks S3 to restore an archived object for days days at tier
// (RestoreObject). It returns already=false when S3 accepted a new restore
// (202), and already=true when a restored copy exists (200: its expiry is
// moved to days from now) or a restore is in progress (409
// RestoreAlreadyInProgress, not an error). days <= 0 sends no Days, which
// S3 Intelligent-Tiering archive tiers require (their restored object
// moves to the Frequent Access tier rather than expiring); a tier of ""
// lets S3 pick (Standard). An object that is not archived returns
// [ErrNotArchived]; a missing one [archive.ErrNotFound].
//
// It needs s3:RestoreObject. Restores cost money and take hours (Deep
// Archive: up to 12 h at Standard, 48 h at Bulk; Expedited is refused for
// Deep Archive).
func (s *Store) Restore(ctx context.Context, key string, days int, tier types.Tier) (already bool, err error) {
	if err := validateKey(key); err != nil {
		return false, fmt.Errorf("s3store: restore object %s: %w", key, err)
	}
	full := s.ObjectKey(key)
	req := &types.RestoreRequest{}
	if days > 0 {
		req.Days = aws.Int32(int32(min(days, 1<<30)))
	}
	if tier != "" {
		req.GlacierJobParameters = &types.GlacierJobParameters{Tier: tier}
	}
	out, err := s.client.RestoreObject(ctx, &s3.RestoreObjectInput{Bucket: &s.bucket, Key: &full, RestoreRequest: req})
	if err != nil {
		switch status := httpStatus(err); {
		case status == http.StatusConflict:
			return true, nil // RestoreAlreadyInProgress
		case status == http.StatusNotFound:
			err = archive.ErrNotFound
		case status == http.StatusForbidden && isNotArchivedCode(err):
			err = fmt.Errorf("%w (%v)", ErrNotArchived, err)
		}
		return false, fmt.Errorf("s3store: restore object %s: %w", full, err)
	}
	if raw, ok := awsmiddleware.GetRawResponse(out.ResultMetadata).(*smithyhttp.Response); ok {
		return raw.StatusCode == http.StatusOK, nil
	}
	return false, nil
}

// isNotArchivedCode tells a 403 that means "this object is not archived"
// (AWS answers InvalidObjectState or ObjectAlreadyInActiveTierError) from
// a 403 AccessDenied: the status alone cannot.
func isNotArchivedCode(err error) bool {
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		return false
	}
	switch ae.ErrorCode() {
	case "InvalidObjectState", "ObjectAlreadyInActiveTierError":
		return true
	}
	return false
}

// NeedsRestore reports whether err is GetObject's 403 InvalidObjectState:
// the object is archived and has no restored copy.
func NeedsRestore(err error) bool {
	var ios *types.InvalidObjectState
	return errors.As(err, &ios)
}
