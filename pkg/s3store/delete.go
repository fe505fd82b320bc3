package s3store

import (
	"context"
	"fmt"
	"net/http"

	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// Delete removes the object at key (DeleteObject without a version: on a
// versioned bucket it adds a delete marker, and locked versions stay).
// Deleting a missing key succeeds.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := validateKey(key); err != nil {
		return fmt.Errorf("s3store: delete object %s: %w", key, err)
	}
	full := s.ObjectKey(key)
	if _, err := s.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &s.bucket, Key: &full}); err != nil {
		if httpStatus(err) == http.StatusNotFound {
			return nil
		}
		return fmt.Errorf("s3store: delete object %s: %w", full, err)
	}
	return nil
}
