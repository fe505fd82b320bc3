package events

import (
	"fmt"
	"math"
	"testing"

	"github.com/artifact-archiver/artifact-archiver/pkg/runevent"
)

func TestSubjectsRoundTrip(t *testing.T) {
	t.Parallel()
	tests := []struct {
		prefix      string
		inst, repo  int64
		wantSubject string
	}{
		{"", 42, 1296269, "archiver.runs.42.1296269"},
		{"", 0, 7, "archiver.runs.0.7"}, // repository hook: no installation
		{"acme.prod", 1, 2, "acme.prod.runs.1.2"},
		{"", math.MaxInt64, math.MaxInt64, fmt.Sprintf("archiver.runs.%d.%d", int64(math.MaxInt64), int64(math.MaxInt64))},
	}
	for _, tt := range tests {
		t.Run(tt.wantSubject, func(t *testing.T) {
			t.Parallel()
			s := Subjects{Prefix: tt.prefix}
			e := testEvent(1, 1)
			e.InstallationID, e.Repository.ID = tt.inst, tt.repo
			subj := s.Run(e)
			if subj != tt.wantSubject {
				t.Fatalf("Run = %q, want %q", subj, tt.wantSubject)
			}
			inst, repo, err := s.ParseRun(subj)
			if err != nil || inst != tt.inst || repo != tt.repo {
				t.Fatalf("ParseRun(%q) = %d, %d, %v", subj, inst, repo, err)
			}
			// Names with dots never reach the subject.
			if e.Repository.Owner != "octo.org" {
				t.Fatal("test event changed")
			}
		})
	}
}

func TestSubjectsParseRunErrors(t *testing.T) {
	t.Parallel()
	s := Subjects{}
	for _, subj := range []string{
		"",
		"archiver.runs",
		"archiver.runs.1",
		"archiver.runs.1.2.3",
		"archiver.dlq.1.2",
		"other.runs.1.2",
		"archiver.runs.x.2",
		"archiver.runs.1.y",
		"archiver.runs.1.99999999999999999999",
	} {
		if _, _, err := s.ParseRun(subj); err == nil {
			t.Errorf("ParseRun(%q): no error", subj)
		}
	}
}

func TestSubjectsWildcards(t *testing.T) {
	t.Parallel()
	s := Subjects{Prefix: "p"}
	e := testEvent(1, 1)
	if got := s.Runs(); got != "p.runs.>" {
		t.Errorf("Runs = %q", got)
	}
	if got := s.DeadLetters(); got != "p.dlq.>" {
		t.Errorf("DeadLetters = %q", got)
	}
	if got := s.DeadLetter(e); got != "p.dlq.42.1296269" {
		t.Errorf("DeadLetter = %q", got)
	}
	if got := s.DeadLetterRaw(); got != "p.dlq.undecodable" {
		t.Errorf("DeadLetterRaw = %q", got)
	}
}

func ExampleSubjects() {
	s := Subjects{} // default prefix "archiver"
	e := &runevent.RunCompleted{InstallationID: 42, Repository: runevent.Repository{ID: 1296269, Owner: "octo.org", Name: "hello.world"}}
	fmt.Println(s.Run(e))
	inst, repo, _ := s.ParseRun(s.Run(e))
	fmt.Println(inst, repo)
	fmt.Println(runevent.MsgID(30433642, 2))
	// Output:
	// archiver.runs.42.1296269
	// 42 1296269
	// wr:30433642:2
}
