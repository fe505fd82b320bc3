package webhook

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"
	"unicode"
	"unicode/utf8"
)

// maxJSONDepth matches encoding/json's nesting limit, so that the scanner
// accepts exactly the documents json.Unmarshal accepts.
const maxJSONDepth = 10000

// errUnexpectedEnd is returned for truncated input.
var errUnexpectedEnd = errors.New("unexpected end of JSON input")

// jsonScanner is a validating JSON reader for the few fields the webhook
// needs; it allocates only the decoded values. It walks the document once:
// values of interest are decoded into Go values, every other value is
// skipped but still fully validated, so a document is accepted exactly when
// encoding/json would accept it (the differential fuzz test holds it to
// that). Skipping a 20 KB workflow_run payload costs a fraction of
// json.Unmarshal's two passes (see BenchmarkParseWorkflowRun).
type jsonScanner struct {
	data   []byte
	pos    int
	depth  int
	keyArr [64]byte // see foldSlow
}

func (s *jsonScanner) syntaxError(what string) error {
	if s.pos >= len(s.data) {
		return errUnexpectedEnd
	}
	return fmt.Errorf("invalid character %q %s at offset %d", s.data[s.pos], what, s.pos)
}

// typeError reports a value of the wrong JSON type for field, naming the
// type only: no part of the body goes into errors (they reach the logs).
func typeError(field string, raw []byte) error {
	kind := "a value"
	if len(raw) > 0 {
		switch raw[0] {
		case '"':
			kind = "a string"
		case '{':
			kind = "an object"
		case '[':
			kind = "an array"
		case 't', 'f':
			kind = "a boolean"
		case 'n':
			kind = "null"
		default:
			kind = "a number"
		}
	}
	return fmt.Errorf("%s is %s of the wrong type or range", field, kind)
}

// ws skips insignificant whitespace.
func (s *jsonScanner) ws() {
	for s.pos < len(s.data) {
		switch s.data[s.pos] {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return
		}
	}
}

// peek returns the next significant byte, or 0 at the end of the input.
func (s *jsonScanner) peek() byte {
	s.ws()
	if s.pos >= len(s.data) {
		return 0
	}
	return s.data[s.pos]
}

// end checks that only whitespace follows the top-level value.
func (s *jsonScanner) end() error {
	s.ws()
	if s.pos != len(s.data) {
		return s.syntaxError("after top-level value")
	}
	return nil
}

const (
	lsb = 0x0101010101010101
	msb = 0x8080808080808080
)

// scanStr scans the body of a string that starts at d[i] (just past the
// opening quote) and returns the index just past the closing quote. It
// checks the string as encoding/json does (escapes, no control
// characters). plain reports that the body has no escapes and only ASCII,
// so it can be used verbatim. The closing quote is found with
// bytes.IndexByte (vectorised); the span before it is then checked eight
// bytes at a time.
func (s *jsonScanner) scanStr(i int) (end int, plain bool, err error) {
	d := s.data
	plain = true
	for {
		q := bytes.IndexByte(d[i:], '"')
		if q < 0 {
			s.pos = len(d)
			return 0, false, errUnexpectedEnd
		}
		q += i
		// Look for '\\', a control character or (for plain) non-ASCII in
		// d[i:q]. See "Determine if a word has a byte less than n" in Bit
		// Twiddling Hacks: each test is exact about whether a word holds
		// such a byte.
		for i+8 <= q {
			w := binary.LittleEndian.Uint64(d[i:])
			bs := w ^ (lsb * '\\')
			m := (bs-lsb)&^bs | (w-lsb*0x20)&^w
			if plain {
				m |= w
			}
			if m&msb != 0 {
				break
			}
			i += 8
		}
		for ; i < q; i++ {
			c := d[i]
			if c == '\\' {
				break
			}
			if c < 0x20 {
				s.pos = i
				return 0, false, s.syntaxError("in string literal")
			}
			if c >= 0x80 {
				plain = false
			}
		}
		if i == q {
			return q + 1, plain, nil
		}
		// An escape: check it and go on after it (it may be \").
		plain = false
		s.pos = i
		if err := s.escape(); err != nil {
			return 0, false, err
		}
		i = s.pos
	}
}

// escape checks the escape sequence at s.pos (which holds '\\') and moves
// past it.
func (s *jsonScanner) escape() error {
	d := s.data
	i := s.pos + 1
	if i >= len(d) {
		s.pos = i
		return errUnexpectedEnd
	}
	switch d[i] {
	case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		s.pos = i + 1
		return nil
	case 'u':
		i++
		for range 4 {
			if i >= len(d) {
				s.pos = i
				return errUnexpectedEnd
			}
			if !isHex(d[i]) {
				s.pos = i
				return s.syntaxError("in \\u escape")
			}
			i++
		}
		s.pos = i
		return nil
	default:
		s.pos = i
		return s.syntaxError("in string escape code")
	}
}

// str consumes a string at s.pos (which holds '"'). It returns the bytes
// between the quotes and whether they can be used verbatim (no escapes and
// ASCII only; otherwise decode them with encoding/json).
func (s *jsonScanner) str() (raw []byte, plain bool, err error) {
	start := s.pos + 1
	end, plain, err := s.scanStr(start)
	if err != nil {
		return nil, false, err
	}
	s.pos = end
	return s.data[start : end-1], plain, nil
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// number consumes a number at s.pos, checking RFC 8259's grammar.
func (s *jsonScanner) number() ([]byte, error) {
	d := s.data
	start, i := s.pos, s.pos
	if i < len(d) && d[i] == '-' {
		i++
	}
	digits := func(what string) error {
		if i >= len(d) {
			s.pos = i
			return errUnexpectedEnd
		}
		if !isDigit(d[i]) {
			s.pos = i
			return s.syntaxError(what)
		}
		for i < len(d) && isDigit(d[i]) {
			i++
		}
		return nil
	}
	switch {
	case i >= len(d):
		s.pos = i
		return nil, errUnexpectedEnd
	case d[i] == '0':
		i++
	default:
		if err := digits("in numeric literal"); err != nil {
			return nil, err
		}
	}
	if i < len(d) && d[i] == '.' {
		i++
		if err := digits("after decimal point in numeric literal"); err != nil {
			return nil, err
		}
	}
	if i < len(d) && (d[i] == 'e' || d[i] == 'E') {
		i++
		if i < len(d) && (d[i] == '+' || d[i] == '-') {
			i++
		}
		if err := digits("in exponent of numeric literal"); err != nil {
			return nil, err
		}
	}
	s.pos = i
	return d[start:i], nil
}

// literal consumes true, false or null at s.pos.
func (s *jsonScanner) literal() ([]byte, error) {
	var lit string
	switch s.data[s.pos] {
	case 't':
		lit = "true"
	case 'f':
		lit = "false"
	default:
		lit = "null"
	}
	start := s.pos
	for i := range len(lit) {
		if s.pos >= len(s.data) {
			return nil, errUnexpectedEnd
		}
		if s.data[s.pos] != lit[i] {
			return nil, s.syntaxError("in literal " + lit)
		}
		s.pos++
	}
	return s.data[start:s.pos], nil
}

// push enters a container, enforcing encoding/json's depth limit.
func (s *jsonScanner) push() error {
	s.depth++
	if s.depth > maxJSONDepth {
		return fmt.Errorf("exceeded max depth at offset %d", s.pos)
	}
	return nil
}

// skip consumes and validates one value of any kind. It is one loop with
// an explicit stack (no recursion, no call per token but for strings and
// numbers): most of a payload is skipped here.
func (s *jsonScanner) skip() error {
	d := s.data
	i := s.pos
	var buf [64]byte
	stack := buf[:0] // the open containers, '{' or '['
	var err error
value: // a value starts at i, after optional whitespace
	for i < len(d) && isSpace(d[i]) {
		i++
	}
	if i >= len(d) {
		return s.eof()
	}
	switch c := d[i]; {
	case c == '"':
		if i, _, err = s.scanStr(i + 1); err != nil {
			return err
		}
	case c == '{' || c == '[':
		s.depth++
		if s.depth > maxJSONDepth {
			s.pos = i
			return fmt.Errorf("exceeded max depth at offset %d", i)
		}
		i++
		for i < len(d) && isSpace(d[i]) {
			i++
		}
		if i < len(d) && d[i] == c+2 { // '}' is '{'+2, ']' is '['+2
			i++
			s.depth--
			break
		}
		stack = append(stack, c)
		if c == '{' {
			goto key
		}
		goto value
	case c == '-' || isDigit(c):
		s.pos = i
		if _, err = s.number(); err != nil {
			return err
		}
		i = s.pos
	case c == 't' || c == 'f' || c == 'n':
		s.pos = i
		if _, err = s.literal(); err != nil {
			return err
		}
		i = s.pos
	default:
		s.pos = i
		return s.syntaxError("looking for beginning of value")
	}
next: // a value ended just before i
	if len(stack) == 0 {
		s.pos = i
		return nil
	}
	for i < len(d) && isSpace(d[i]) {
		i++
	}
	if i >= len(d) {
		return s.eof()
	}
	switch top := stack[len(stack)-1]; d[i] {
	case ',':
		i++
		if top == '{' {
			goto key
		}
		goto value
	case top + 2:
		i++
		s.depth--
		stack = stack[:len(stack)-1]
		goto next
	default:
		s.pos = i
		if top == '{' {
			return s.syntaxError("after object key:value pair")
		}
		return s.syntaxError("after array element")
	}
key: // an object key starts at i, after optional whitespace
	for i < len(d) && isSpace(d[i]) {
		i++
	}
	if i >= len(d) {
		return s.eof()
	}
	if d[i] != '"' {
		s.pos = i
		return s.syntaxError("looking for beginning of object key string")
	}
	if i, _, err = s.scanStr(i + 1); err != nil {
		return err
	}
	for i < len(d) && isSpace(d[i]) {
		i++
	}
	if i >= len(d) {
		return s.eof()
	}
	if d[i] != ':' {
		s.pos = i
		return s.syntaxError("after object key")
	}
	i++
	goto value
}

func isSpace(c byte) bool { return c == ' ' || c == '\n' || c == '\t' || c == '\r' }

func (s *jsonScanner) eof() error {
	s.pos = len(s.data)
	return errUnexpectedEnd
}

// key consumes an object key and the colon after it, returning the key.
// Keys with escapes or non-ASCII bytes are decoded as encoding/json does.
func (s *jsonScanner) key() ([]byte, error) {
	switch s.peek() {
	case '"':
	case 0:
		return nil, errUnexpectedEnd
	default:
		return nil, s.syntaxError("looking for beginning of object key string")
	}
	start := s.pos
	raw, plain, err := s.str()
	if err != nil {
		return nil, err
	}
	if !plain {
		var k string
		if err := json.Unmarshal(s.data[start:s.pos], &k); err != nil {
			return nil, fmt.Errorf("object key at offset %d: %w", start, err)
		}
		raw = []byte(k)
	}
	switch s.peek() {
	case ':':
		s.pos++
		return raw, nil
	case 0:
		return nil, errUnexpectedEnd
	default:
		return nil, s.syntaxError("after object key")
	}
}

// object decodes an object at s.pos, calling member for each key; member
// must consume the value (decode it or call skip). A null leaves the
// destination to reset, reported by the false result.
func (s *jsonScanner) object(field string, member func(key []byte) error) (present bool, err error) {
	switch c := s.peek(); c {
	case '{':
	case 'n':
		_, err := s.literal()
		return false, err
	case 0:
		return false, errUnexpectedEnd
	default:
		start := s.pos
		if err := s.skip(); err != nil {
			return false, err
		}
		return false, typeError(field, s.data[start:s.pos])
	}
	s.pos++
	if err := s.push(); err != nil {
		return false, err
	}
	if s.peek() == '}' {
		s.pos++
		s.depth--
		return true, nil
	}
	for {
		k, err := s.key()
		if err != nil {
			return false, err
		}
		if err := member(k); err != nil {
			return false, err
		}
		switch s.peek() {
		case ',':
			s.pos++
		case '}':
			s.pos++
			s.depth--
			return true, nil
		case 0:
			return false, errUnexpectedEnd
		default:
			return false, s.syntaxError("after object key:value pair")
		}
	}
}

// value returns the raw bytes of the next value, validated.
func (s *jsonScanner) value() ([]byte, error) {
	if s.peek() == 0 {
		return nil, errUnexpectedEnd
	}
	start := s.pos
	if err := s.skip(); err != nil {
		return nil, err
	}
	return s.data[start:s.pos], nil
}

// string decodes a string or null (which leaves dst unchanged).
func (s *jsonScanner) string(field string, dst *string) error {
	switch s.peek() {
	case '"':
		start := s.pos
		raw, plain, err := s.str()
		if err != nil {
			return err
		}
		if plain {
			*dst = string(raw)
			return nil
		}
		if err := json.Unmarshal(s.data[start:s.pos], dst); err != nil {
			return fmt.Errorf("%s: undecodable string", field) // cannot happen: str checked it
		}
		return nil
	case 'n':
		_, err := s.literal()
		return err
	default:
		raw, err := s.value()
		if err != nil {
			return err
		}
		return typeError(field, raw)
	}
}

// int decodes an integer of bitSize bits or null (dst unchanged).
func (s *jsonScanner) int(field string, dst *int64, bitSize int) error {
	switch c := s.peek(); {
	case c == '-' || isDigit(c):
		raw, err := s.number()
		if err != nil {
			return err
		}
		n, err := strconv.ParseInt(string(raw), 10, bitSize)
		if err != nil {
			return typeError(field, raw)
		}
		*dst = n
		return nil
	case c == 'n':
		_, err := s.literal()
		return err
	default:
		raw, err := s.value()
		if err != nil {
			return err
		}
		return typeError(field, raw)
	}
}

// bool decodes true, false or null (dst unchanged).
func (s *jsonScanner) bool(field string, dst *bool) error {
	switch c := s.peek(); c {
	case 't', 'f', 'n':
		if _, err := s.literal(); err != nil {
			return err
		}
		if c != 'n' {
			*dst = c == 't'
		}
		return nil
	default:
		raw, err := s.value()
		if err != nil {
			return err
		}
		return typeError(field, raw)
	}
}

// time decodes a value with time.Time's JSON rules (RFC 3339 string; null
// leaves dst unchanged).
func (s *jsonScanner) time(field string, dst *time.Time) error {
	raw, err := s.value()
	if err != nil {
		return err
	}
	if err := dst.UnmarshalJSON(raw); err != nil {
		// time's error quotes the value; keep the body out of errors.
		return fmt.Errorf("%s is not an RFC 3339 time", field)
	}
	return nil
}

// fold returns key in the form that identifies a field: ASCII lowercase. It
// matches keys the way encoding/json does, exactly or else under Unicode
// case folding (bytes.EqualFold): a non-ASCII rune whose folding orbit holds
// an ASCII letter (U+212A KELVIN SIGN for 'k', U+017F LONG S for 's')
// becomes that letter, any other makes the key match no field. Use the
// result only in comparisons and switches (it may alias s.keyBuf).
func (s *jsonScanner) fold(key []byte) []byte {
	for _, c := range key {
		if 'A' <= c && c <= 'Z' || c >= utf8.RuneSelf {
			return s.foldSlow(key)
		}
	}
	return key // already lowercase ASCII, the usual case
}

func (s *jsonScanner) foldSlow(key []byte) []byte {
	b := s.keyArr[:0]
	for i := 0; i < len(key); {
		c := key[i]
		if c < utf8.RuneSelf {
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			b = append(b, c)
			i++
			continue
		}
		r, size := utf8.DecodeRune(key[i:])
		i += size
		ascii := rune(-1)
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			if f < utf8.RuneSelf {
				ascii = unicode.ToLower(f)
				break
			}
		}
		if ascii < 0 {
			return nil // no ASCII field name folds to this key
		}
		b = append(b, byte(ascii))
	}
	return b
}
