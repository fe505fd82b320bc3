package service_test

import (
	"bytes"
	"errors"
	"io/fs"
	"log/slog"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/artifact-archiver/artifact-archiver/pkg/service"
)

func envFrom(kv map[string]string) func(string) string {
	return func(k string) string { return kv[k] }
}

// settings is a configuration with a field of every kind.
type settings struct {
	S      string
	C      string
	B      bool
	I      int
	I64    int64
	Size   int64
	D      time.Duration
	L      []string
	Level  slog.Level
	Secret []byte
}

func (s *settings) env(files map[string]string) *service.Env {
	e := &service.Env{ReadFile: func(name string) ([]byte, error) {
		if b, ok := files[name]; ok {
			return []byte(b), nil
		}
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}}
	e.String(&s.S, "T_STRING", "def", "a string")
	e.Choice(&s.C, "T_CHOICE", "json", []string{"json", "text"}, "a choice")
	e.Bool(&s.B, "T_BOOL", true, "a bool")
	e.Int(&s.I, "T_INT", 4, "an int")
	e.Int64(&s.I64, "T_INT64", 0, "an int64").DefaultText("")
	e.Bytes(&s.Size, "T_BYTES", 16<<20, "a size")
	e.Duration(&s.D, "T_DURATION", 2*time.Minute, "a duration")
	e.List(&s.L, "T_LIST", "a list").DefaultText("all")
	e.Level(&s.Level, "T_LEVEL", slog.LevelWarn, "a level")
	e.Secret(&s.Secret, "T_SECRET", "a secret")
	e.Doc("AWS_REGION, AWS_PROFILE, ...", "SDK chain", "read by a library")
	return e
}

func TestEnvDefaults(t *testing.T) {
	t.Parallel()
	var s settings
	if err := s.env(nil).Parse(envFrom(nil)); err != nil {
		t.Fatal(err)
	}
	want := settings{S: "def", C: "json", B: true, I: 4, Size: 16 << 20, D: 2 * time.Minute, Level: slog.LevelWarn}
	if !reflect.DeepEqual(s, want) {
		t.Fatalf("defaults\n got %+v\nwant %+v", s, want)
	}
}

func TestEnvParse(t *testing.T) {
	t.Parallel()
	var s settings
	err := s.env(map[string]string{"/key": "from-file"}).Parse(envFrom(map[string]string{
		"T_STRING": "x", "T_CHOICE": "Text", "T_BOOL": "false", "T_INT": "-3", "T_INT64": "1099511627776",
		"T_BYTES": "5242880", "T_DURATION": "90s", "T_LIST": " a, b ,,c ", "T_LEVEL": "DEBUG", "T_SECRET_FILE": "/key",
		"AWS_REGION": "ignored",
	}))
	if err != nil {
		t.Fatal(err)
	}
	want := settings{S: "x", C: "text", B: false, I: -3, I64: 1 << 40, Size: 5 << 20, D: 90 * time.Second,
		L: []string{"a", "b", "c"}, Level: slog.LevelDebug, Secret: []byte("from-file")}
	if !reflect.DeepEqual(s, want) {
		t.Fatalf("parsed\n got %+v\nwant %+v", s, want)
	}
}

func TestEnvSecretInlineWins(t *testing.T) {
	t.Parallel()
	var s settings
	// The file is not read: an unreadable one is no error.
	if err := s.env(nil).Parse(envFrom(map[string]string{"T_SECRET": "inline", "T_SECRET_FILE": "/absent"})); err != nil {
		t.Fatal(err)
	}
	if string(s.Secret) != "inline" {
		t.Fatalf("secret %q, want the inline value", s.Secret)
	}
}

// TestEnvParseErrors: every value that does not parse is reported, naming
// its variable and, unless it is a secret, the value.
func TestEnvParseErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, value, want string
	}{
		{"T_CHOICE", "yaml", `T_CHOICE="yaml": want json or text`},
		{"T_BOOL", "yes please", `T_BOOL="yes please": want true or false`},
		{"T_INT", "many", `T_INT="many": not an integer`},
		{"T_INT64", "1.5", `T_INT64="1.5": not an integer`},
		{"T_BYTES", "16MiB", `T_BYTES="16MiB": not an integer`},
		{"T_DURATION", "soon", `T_DURATION="soon": not a duration`},
		{"T_LEVEL", "loud", `T_LEVEL="loud": want debug, info, warn or error`},
		{"T_SECRET_FILE", "/absent", `T_SECRET_FILE="/absent": open /absent`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var s settings
			err := s.env(nil).Parse(envFrom(map[string]string{tt.name: tt.value}))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
	t.Run("all at once", func(t *testing.T) {
		t.Parallel()
		var s settings
		err := s.env(nil).Parse(envFrom(map[string]string{"T_INT": "x", "T_DURATION": "y"}))
		if err == nil || !strings.Contains(err.Error(), "T_INT") || !strings.Contains(err.Error(), "T_DURATION") {
			t.Fatalf("err = %v, want both variables", err)
		}
	})
	t.Run("a missing file is a path error", func(t *testing.T) {
		t.Parallel()
		var s settings
		err := s.env(nil).Parse(envFrom(map[string]string{"T_SECRET_FILE": "/absent"}))
		if _, ok := errors.AsType[*fs.PathError](err); !ok {
			t.Fatalf("err = %v, want an *fs.PathError", err)
		}
	})
}

func TestEnvNames(t *testing.T) {
	t.Parallel()
	got := new(settings).env(nil).Names()
	want := []string{"T_STRING", "T_CHOICE", "T_BOOL", "T_INT", "T_INT64", "T_BYTES", "T_DURATION", "T_LIST", "T_LEVEL",
		"T_SECRET", "T_SECRET_FILE", "AWS_REGION", "AWS_PROFILE"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Names\n got %q\nwant %q", got, want)
	}
}

func TestWriteUsage(t *testing.T) {
	t.Parallel()
	var e service.Env
	var s string
	var d time.Duration
	var l []string
	e.String(&s, "T_REQUIRED", "", "required, `code` in the README").Required()
	e.Duration(&d, "T_DURATION", 72*time.Hour, "a duration")
	e.List(&l, "T_LIST", "a list").DefaultText("all")
	titled := &service.Env{Title: "Group"}
	titled.String(&s, "T_NONE", "", "no default")
	var buf bytes.Buffer
	service.WriteUsage(&buf, &e, titled)
	want := `Environment:
  T_REQUIRED (required)
      required, code in the README
  T_DURATION (default 72h)
      a duration
  T_LIST (default: all)
      a list
  Group:
    T_NONE
        no default
`
	if buf.String() != want {
		t.Fatalf("usage\n%s\nwant\n%s", buf.String(), want)
	}
}

func TestMarkdown(t *testing.T) {
	t.Parallel()
	var e service.Env
	var s string
	var n int64
	e.String(&s, "T_REQUIRED", "", "`s3://bucket` or a file").Required()
	e.Bytes(&n, "T_BYTES", 1<<30, "a size")
	e.String(&s, "T_NONE", "", "no default")
	e.Doc("AWS_REGION, AWS_PROFILE, ...", "SDK chain", "the SDK's")
	want := "| variable | default | meaning |\n|---|---|---|\n" +
		"| `T_REQUIRED` | — (required) | `s3://bucket` or a file |\n" +
		"| `T_BYTES` | `1073741824` (1 GiB) | a size |\n" +
		"| `T_NONE` | — | no default |\n" +
		"| `AWS_REGION`, `AWS_PROFILE`, … | SDK chain | the SDK's |\n"
	if got := service.Markdown(e.Vars()); got != want {
		t.Fatalf("markdown\n%s\nwant\n%s", got, want)
	}
}

func TestFormatDuration(t *testing.T) {
	t.Parallel()
	for d, want := range map[time.Duration]string{
		0: "0s", 500 * time.Millisecond: "500ms", 10 * time.Second: "10s", 2 * time.Minute: "2m",
		90 * time.Second: "1m30s", 72 * time.Hour: "72h", 90 * time.Minute: "1h30m", time.Hour + time.Second: "1h0m1s",
	} {
		if got := service.FormatDuration(d); got != want {
			t.Errorf("FormatDuration(%s) = %q, want %q", d, got, want)
		}
	}
}
