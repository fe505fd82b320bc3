package s3store

import (
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

func TestParseRestoreHeader(t *testing.T) {
	t.Parallel()
	dec21 := time.Date(2012, 12, 21, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		in      string
		ongoing bool
		expiry  time.Time
		bad     bool
	}{
		{in: `ongoing-request="true"`, ongoing: true},
		{in: `ongoing-request="false", expiry-date="Fri, 21 Dec 2012 00:00:00 GMT"`, expiry: dec21},
		{in: `expiry-date="Fri, 21 Dec 2012 00:00:00 GMT", ongoing-request="false"`, expiry: dec21},
		{in: `ongoing-request="false"`}, // Intelligent-Tiering: no expiry
		{in: `ongoing-request="maybe"`, bad: true},
		{in: `expiry-date="Fri, 21 Dec 2012 00:00:00 GMT"`, bad: true},
		{in: `ongoing-request="false", expiry-date="tomorrow"`, bad: true},
		{in: `ongoing-request="true`, bad: true},
		{in: `ongoing-request=true`, bad: true},
	} {
		ongoing, expiry, err := ParseRestoreHeader(tc.in)
		switch {
		case tc.bad && err == nil:
			t.Errorf("ParseRestoreHeader(%s) = %v, %v; want an error", tc.in, ongoing, expiry)
		case !tc.bad && err != nil:
			t.Errorf("ParseRestoreHeader(%s): %v", tc.in, err)
		case !tc.bad && (ongoing != tc.ongoing || !expiry.Equal(tc.expiry)):
			t.Errorf("ParseRestoreHeader(%s) = %v, %v; want %v, %v", tc.in, ongoing, expiry, tc.ongoing, tc.expiry)
		}
	}
}

// TestObjectStateClasses covers the storage classes and tiers that the
// test servers cannot produce (Intelligent-Tiering, Instant Retrieval).
func TestObjectStateClasses(t *testing.T) {
	t.Parallel()
	until := time.Date(2031, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		name                   string
		out                    s3.HeadObjectOutput
		class                  types.StorageClass
		archived, readable     bool
		ongoing, restored      bool
		retention              types.ObjectLockMode
		legalHold, retainUntil bool
	}{
		{name: "standard (no header)", class: "STANDARD", readable: true},
		{name: "instant retrieval", out: s3.HeadObjectOutput{StorageClass: types.StorageClassGlacierIr}, class: "GLACIER_IR", readable: true},
		{name: "standard-ia", out: s3.HeadObjectOutput{StorageClass: types.StorageClassStandardIa}, class: "STANDARD_IA", readable: true},
		{name: "deep archive", out: s3.HeadObjectOutput{StorageClass: types.StorageClassDeepArchive}, class: "DEEP_ARCHIVE", archived: true},
		{name: "glacier restoring", out: s3.HeadObjectOutput{StorageClass: types.StorageClassGlacier, Restore: aws.String(`ongoing-request="true"`)},
			class: "GLACIER", archived: true, ongoing: true},
		{name: "deep archive restored", out: s3.HeadObjectOutput{StorageClass: types.StorageClassDeepArchive, Restore: aws.String(`ongoing-request="false", expiry-date="Fri, 21 Dec 2012 00:00:00 GMT"`)},
			class: "DEEP_ARCHIVE", archived: true, restored: true, readable: true},
		{name: "intelligent-tiering frequent", out: s3.HeadObjectOutput{StorageClass: types.StorageClassIntelligentTiering}, class: "INTELLIGENT_TIERING", readable: true},
		{name: "intelligent-tiering deep archive tier", out: s3.HeadObjectOutput{StorageClass: types.StorageClassIntelligentTiering, ArchiveStatus: types.ArchiveStatusDeepArchiveAccess},
			class: "INTELLIGENT_TIERING", archived: true},
		{name: "locked", out: s3.HeadObjectOutput{ObjectLockMode: types.ObjectLockModeGovernance, ObjectLockRetainUntilDate: &until, ObjectLockLegalHoldStatus: types.ObjectLockLegalHoldStatusOn},
			class: "STANDARD", readable: true, retention: "GOVERNANCE", retainUntil: true, legalHold: true},
		{name: "legal hold off", out: s3.HeadObjectOutput{ObjectLockLegalHoldStatus: types.ObjectLockLegalHoldStatusOff}, class: "STANDARD", readable: true},
	} {
		st, err := objectState(&tc.out)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if st.StorageClass != tc.class || st.Archived != tc.archived || st.Readable() != tc.readable ||
			st.RestoreOngoing != tc.ongoing || st.Restored() != tc.restored || st.Retention != tc.retention ||
			st.LegalHold != tc.legalHold || st.RetainUntil.Equal(until) != tc.retainUntil {
			t.Errorf("%s: %+v (readable %v, restored %v)", tc.name, st, st.Readable(), st.Restored())
		}
	}
	if _, err := objectState(&s3.HeadObjectOutput{Restore: aws.String("garbage")}); err == nil {
		t.Errorf("a malformed x-amz-restore was accepted")
	}
}
