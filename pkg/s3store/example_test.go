package s3store_test

import (
	"fmt"

	"github.com/artifact-archiver/artifact-archiver/pkg/s3store"
)

func ExampleParseDestination() {
	bucket, prefix, err := s3store.ParseDestination("s3://ci-artifacts/archive/v1")
	fmt.Println(bucket, prefix, err)
	// Output: ci-artifacts archive/v1 <nil>
}
