package events

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/artifact-archiver/artifact-archiver/pkg/runevent"
)

// DefaultSubjectPrefix is the root of every subject the archiver publishes.
const DefaultSubjectPrefix = "archiver"

// Subjects builds and parses the subject layout
//
//	<prefix>.runs.<installation_id>.<repository_id>
//
// Only numeric ids appear as tokens: repository and owner names may contain
// '.', which NATS treats as a token separator, so names never go into a
// subject. A repository hook delivery without an installation uses
// installation id 0. Consumers can filter per installation
// ("archiver.runs.42.>") or per repository ("archiver.runs.*.1296269").
type Subjects struct {
	Prefix string
}

// Run returns the subject for an event.
func (s Subjects) Run(e *runevent.RunCompleted) string {
	return s.prefix() + ".runs." + strconv.FormatInt(e.InstallationID, 10) + "." + strconv.FormatInt(e.Repository.ID, 10)
}

// Runs returns the wildcard that matches every run subject.
func (s Subjects) Runs() string { return s.prefix() + ".runs.>" }

// DeadLetter returns the subject of a dead-lettered run event.
func (s Subjects) DeadLetter(e *runevent.RunCompleted) string {
	return s.prefix() + ".dlq." + strconv.FormatInt(e.InstallationID, 10) + "." + strconv.FormatInt(e.Repository.ID, 10)
}

// DeadLetterRaw returns the dead-letter subject for a message that could not
// be decoded into an event.
func (s Subjects) DeadLetterRaw() string { return s.prefix() + ".dlq.undecodable" }

// DeadLetters returns the wildcard matching every dead-letter subject.
func (s Subjects) DeadLetters() string { return s.prefix() + ".dlq.>" }

// ParseRun returns the installation and repository ids of a run subject.
func (s Subjects) ParseRun(subject string) (installationID, repositoryID int64, err error) {
	rest, ok := strings.CutPrefix(subject, s.prefix()+".runs.")
	if !ok {
		return 0, 0, fmt.Errorf("events: subject %q is not a run subject", subject)
	}
	inst, repo, ok := strings.Cut(rest, ".")
	if !ok || strings.Contains(repo, ".") {
		return 0, 0, fmt.Errorf("events: subject %q: want <prefix>.runs.<installation>.<repository>", subject)
	}
	if installationID, err = strconv.ParseInt(inst, 10, 64); err != nil {
		return 0, 0, fmt.Errorf("events: subject %q installation: %w", subject, err)
	}
	if repositoryID, err = strconv.ParseInt(repo, 10, 64); err != nil {
		return 0, 0, fmt.Errorf("events: subject %q repository: %w", subject, err)
	}
	return installationID, repositoryID, nil
}

func (s Subjects) prefix() string {
	if s.Prefix == "" {
		return DefaultSubjectPrefix
	}
	return s.Prefix
}
