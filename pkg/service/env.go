package service

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Env is a table of environment variables, one [Var] a row. A row is
// bound to the field it sets, as a flag.FlagSet binds flags: adding the
// row sets the field to its default, and [Env.Parse] overwrites the field
// with the variable's value when that is not empty. The same rows write
// -h ([WriteUsage]) and the README's tables ([Markdown]).
//
// The zero value is an empty table, ready to use.
type Env struct {
	// Title names the table in -h when a binary lists several.
	Title string
	// ReadFile reads the files named by the _FILE variables of
	// [Env.Secret] (default os.ReadFile).
	ReadFile func(name string) ([]byte, error)

	vars []*Var
}

// Var is one row of an [Env].
type Var struct {
	// Name is the variable's name. A row of [Env.Doc] may name several,
	// comma-separated.
	Name string
	// Default is the default as -h and the README show it, "" if there
	// is none. `Backquoted` words are code in the README and plain in -h.
	Default string
	// Help says what the variable does, with `backquoted` code as in
	// Default.
	Help string
	// Parse stores a non-empty value in the bound field, or says why it
	// cannot. It is nil for a row that only documents variables a library
	// reads (see [Env.Doc]).
	Parse func(value string) error

	required bool
	secret   bool // the value never appears in an error
}

// Required marks the variable as required in -h and the README. The
// configuration's Validate enforces it, with the rules that involve
// other fields.
func (v *Var) Required() *Var {
	v.required = true
	return v
}

// DefaultText replaces the shown default with a description, such as
// "all" or "the listen address"; "" shows none.
func (v *Var) DefaultText(s string) *Var {
	v.Default = s
	return v
}

// Vars returns the rows in the order they were added.
func (e *Env) Vars() []*Var { return slices.Clip(e.vars) }

// envName matches a variable name in the Name of a row.
var envName = regexp.MustCompile(`\b[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+\b|\b[A-Z]{2,}\b`)

// Names returns the names of the variables of every row.
func (e *Env) Names() []string {
	var names []string
	for _, v := range e.vars {
		names = append(names, envName.FindAllString(v.Name, -1)...)
	}
	return names
}

// Parse reads every row's variable through getenv and parses the
// non-empty ones into their fields. It returns every value that does not
// parse, each error naming its variable.
func (e *Env) Parse(getenv func(string) string) error {
	var errs []error
	for _, v := range e.vars {
		if v.Parse == nil {
			continue
		}
		s := getenv(v.Name)
		if s == "" {
			continue
		}
		if err := v.Parse(s); err != nil {
			if v.secret {
				errs = append(errs, fmt.Errorf("%s: %w", v.Name, err))
			} else {
				errs = append(errs, fmt.Errorf("%s=%q: %w", v.Name, s, err))
			}
		}
	}
	return errors.Join(errs...)
}

func (e *Env) add(name, def, help string, parse func(string) error) *Var {
	v := &Var{Name: name, Default: def, Help: help, Parse: parse}
	e.vars = append(e.vars, v)
	return v
}

// code formats a default value as code, or "" for none.
func code(s string) string {
	if s == "" {
		return ""
	}
	return "`" + s + "`"
}

// Doc adds a row that only documents variables a library reads (the AWS
// SDK's chain, say): Parse ignores it.
func (e *Env) Doc(names, def, help string) *Var {
	return e.add(names, def, help, nil)
}

// bind adds a row that sets *p to def, and to the value parse makes of a
// non-empty variable; a value parse refuses is reported as why.
func bind[T any](e *Env, p *T, name string, def T, shown, help string, parse func(string) (T, error), why string) *Var {
	*p = def
	return e.add(name, shown, help, func(s string) error {
		v, err := parse(s)
		if err != nil {
			return errors.New(why)
		}
		*p = v
		return nil
	})
}

// String binds a string.
func (e *Env) String(p *string, name, def, help string) *Var {
	return bind(e, p, name, def, code(def), help, func(s string) (string, error) { return s, nil }, "")
}

// Choice binds one of choices, compared without regard to case and stored
// in lower case.
func (e *Env) Choice(p *string, name, def string, choices []string, help string) *Var {
	return bind(e, p, name, def, code(def), help, func(s string) (string, error) {
		s = strings.ToLower(s)
		if !slices.Contains(choices, s) {
			return "", errors.New("not a choice")
		}
		return s, nil
	}, "want "+orList(choices))
}

// Bool binds a strconv.ParseBool value.
func (e *Env) Bool(p *bool, name string, def bool, help string) *Var {
	return bind(e, p, name, def, code(strconv.FormatBool(def)), help, strconv.ParseBool, "want true or false")
}

// Int binds a decimal integer.
func (e *Env) Int(p *int, name string, def int, help string) *Var {
	return bind(e, p, name, def, code(strconv.Itoa(def)), help, strconv.Atoi, "not an integer")
}

// Int64 binds a decimal 64-bit integer.
func (e *Env) Int64(p *int64, name string, def int64, help string) *Var {
	return bind(e, p, name, def, code(strconv.FormatInt(def, 10)), help, func(s string) (int64, error) {
		return strconv.ParseInt(s, 10, 64)
	}, "not an integer")
}

// Bytes binds a size in bytes, a decimal integer; its default is shown
// in KiB, MiB or GiB too.
func (e *Env) Bytes(p *int64, name string, def int64, help string) *Var {
	v := e.Int64(p, name, def, help)
	if h := binarySize(def); h != "" {
		v.Default += " (" + h + ")"
	}
	return v
}

// Duration binds a time.ParseDuration value.
func (e *Env) Duration(p *time.Duration, name string, def time.Duration, help string) *Var {
	return bind(e, p, name, def, code(FormatDuration(def)), help, time.ParseDuration, "not a duration")
}

// List binds a comma-separated list; blanks around and between the
// commas are dropped. The default is an empty list.
func (e *Env) List(p *[]string, name, help string) *Var {
	return bind(e, p, name, nil, "", help, func(s string) ([]string, error) {
		var l []string
		for f := range strings.SplitSeq(s, ",") {
			if f = strings.TrimSpace(f); f != "" {
				l = append(l, f)
			}
		}
		return l, nil
	}, "")
}

// Level binds a log level: debug, info, warn or error.
func (e *Env) Level(p *slog.Level, name string, def slog.Level, help string) *Var {
	return bind(e, p, name, def, code(strings.ToLower(def.String())), help, func(s string) (slog.Level, error) {
		var l slog.Level
		err := l.UnmarshalText([]byte(s))
		return l, err
	}, "want debug, info, warn or error")
}

// Secret binds a secret given inline in name, or in a file named by
// name_FILE (read with ReadFile); the inline value wins. Neither the value
// nor the file's content appears in an error.
func (e *Env) Secret(p *[]byte, name, help string) {
	*p = nil
	e.add(name, "", help, func(s string) error {
		*p = []byte(s)
		return nil
	}).secret = true
	e.add(name+"_FILE", "", "a file holding `"+name+"`, read if that is unset", func(path string) error {
		if len(*p) > 0 {
			return nil
		}
		readFile := e.ReadFile
		if readFile == nil {
			readFile = os.ReadFile
		}
		b, err := readFile(path)
		if err != nil {
			return err
		}
		*p = b
		return nil
	})
}

// FormatDuration is d as time.Duration.String writes it, without the
// zero units at its end: "2m" rather than "2m0s", "72h" rather than
// "72h0m0s".
func FormatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// binarySize is n in the largest binary unit that divides it, or "".
func binarySize(n int64) string {
	for _, u := range []struct {
		size int64
		name string
	}{{1 << 30, "GiB"}, {1 << 20, "MiB"}, {1 << 10, "KiB"}} {
		if n >= u.size && n%u.size == 0 {
			return strconv.FormatInt(n/u.size, 10) + " " + u.name
		}
	}
	return ""
}

// orList is "a", "a or b", "a, b or c".
func orList(s []string) string {
	if len(s) <= 1 {
		return strings.Join(s, "")
	}
	return strings.Join(s[:len(s)-1], ", ") + " or " + s[len(s)-1]
}

// WriteUsage writes the "Environment:" part of -h: every row of envs,
// under the env's title if it has one.
func WriteUsage(w io.Writer, envs ...*Env) {
	fmt.Fprintf(w, "Environment:\n")
	for _, e := range envs {
		indent := "  "
		if e.Title != "" {
			fmt.Fprintf(w, "  %s:\n", e.Title)
			indent = "    "
		}
		for _, v := range e.vars {
			name := v.Name
			switch {
			case v.required:
				name += " (required)"
			case strings.HasPrefix(v.Default, "`"): // a value
				name += " (default " + plain(v.Default) + ")"
			case v.Default != "": // a description
				name += " (default: " + plain(v.Default) + ")"
			}
			fmt.Fprintf(w, "%s%s\n%s    %s\n", indent, name, indent, plain(v.Help))
		}
	}
}

// plain drops the backquotes of code.
func plain(s string) string { return strings.ReplaceAll(s, "`", "") }

// Markdown returns vars as a README table with the columns variable,
// default and meaning.
func Markdown(vars []*Var) string {
	var b strings.Builder
	b.WriteString("| variable | default | meaning |\n|---|---|---|\n")
	for _, v := range vars {
		def := v.Default
		switch {
		case v.required && def == "":
			def = "— (required)"
		case def == "":
			def = "—"
		}
		fmt.Fprintf(&b, "| %s | %s | %s |\n", markdownNames(v.Name), def, v.Help)
	}
	return b.String()
}

// markdownNames writes each name of a row as code, and "..." as "…".
func markdownNames(name string) string {
	name = strings.ReplaceAll(name, "...", "…")
	return envName.ReplaceAllStringFunc(name, func(n string) string { return "`" + n + "`" })
}
