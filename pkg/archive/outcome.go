package archive

import (
	"errors"
	"fmt"
	"time"
)

// failures returns nil when the committed manifest has no failed artifact,
// else an ErrIncomplete error with this delivery's failures: permanent when
// one of them is (the run is dead-lettered at once), rate limited until the
// latest retry time, else retryable.
func failures(m *Manifest, records []ArtifactRecord) error {
	still := map[int64]bool{}
	for _, r := range m.Artifacts {
		if r.Status == StatusFailed {
			still[r.ID] = true
		}
	}
	if len(still) == 0 {
		return nil
	}
	var errs []error
	var retryAt time.Time
	permanent := false
	for _, r := range records {
		if !still[r.ID] || r.err == nil {
			continue
		}
		errs = append(errs, fmt.Errorf("artifact %d: %w", r.ID, r.err))
		switch o, at := Classify(r.err); o {
		case OutcomePermanent:
			permanent = true
		case OutcomeRetryAfter:
			if at.After(retryAt) {
				retryAt = at
			}
		}
	}
	if len(errs) == 0 {
		// Failed records from other deliveries that this one did not retry.
		errs = append(errs, errors.New("failed in an earlier delivery"))
	}
	err := fmt.Errorf("%w: %d of %d artifacts failed (recorded in the manifest): %w", ErrIncomplete, len(still), len(m.Artifacts), errors.Join(errs...))
	switch {
	case permanent:
		return Permanent(err)
	case !retryAt.IsZero():
		return &RetryAfterError{At: retryAt, Err: err}
	}
	return err
}
