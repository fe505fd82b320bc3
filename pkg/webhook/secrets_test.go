package webhook

import (
	"errors"
	"testing"

	"github.com/artifact-archiver/artifact-archiver/internal/testkit/ghsim"
)

// GitHub's published test vector ("Validating webhook deliveries").
const (
	vectorSecret    = "It's a Secret to Everybody"
	vectorPayload   = "Hello, World!"
	vectorSignature = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
)

func TestSecretsVerify(t *testing.T) {
	t.Parallel()
	body := []byte(vectorPayload)
	tests := []struct {
		name    string
		secrets Secrets
		header  string
		body    []byte
		want    error
	}{
		{"GitHub test vector", NewSecrets(vectorSecret), vectorSignature, body, nil},
		{"uppercase hex", NewSecrets(vectorSecret), "sha256=757107EA0EB2509FC211221CCE984B8A37570B6D7586C22C46F4379C8B043E17", body, nil},
		{"rotation: old secret", NewSecrets(vectorSecret, "new"), vectorSignature, body, nil},
		{"rotation: new secret", NewSecrets("old", vectorSecret), vectorSignature, body, nil},
		{"wrong secret", NewSecrets("It's a secret to everybody"), vectorSignature, body, ErrSignatureMismatch},
		{"tampered body", NewSecrets(vectorSecret), vectorSignature, []byte("Hello, World?"), ErrSignatureMismatch},
		{"empty body", NewSecrets(vectorSecret), vectorSignature, nil, ErrSignatureMismatch},
		{"missing header", NewSecrets(vectorSecret), "", body, ErrSignatureMissing},
		{"sha1 value in the sha256 header", NewSecrets(vectorSecret), "sha1=01a04e6e9d7d32d6e2a78c0e37a6bc8fbd7a5a10", body, ErrSignatureMalformed},
		{"no prefix", NewSecrets(vectorSecret), vectorSignature[len("sha256="):], body, ErrSignatureMalformed},
		{"truncated", NewSecrets(vectorSecret), vectorSignature[:len(vectorSignature)-2], body, ErrSignatureMalformed},
		{"not hex", NewSecrets(vectorSecret), "sha256=" + string(make([]byte, 64)), body, ErrSignatureMalformed},
		{"no secrets", Secrets{}, vectorSignature, body, ErrSignatureMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if err := tt.secrets.Verify(tt.header, tt.body); !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Fatalf("Verify = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestSignMatchesVector(t *testing.T) {
	t.Parallel()
	// The test helper that signs deliveries agrees with GitHub.
	if got := ghsim.Sign(vectorSecret, []byte(vectorPayload)); got != vectorSignature {
		t.Fatalf("ghsim.Sign = %s, want %s", got, vectorSignature)
	}
}

func TestParseSecrets(t *testing.T) {
	t.Parallel()
	s := ParseSecrets([]byte("\n  old-secret  \r\n\n\t\nIt's a Secret to Everybody\r\n   \n"))
	if s.Len() != 2 {
		t.Fatalf("parsed %d secrets, want 2 (blank lines ignored)", s.Len())
	}
	if err := s.Verify(vectorSignature, []byte(vectorPayload)); err != nil {
		t.Fatalf("second line (CRLF) not usable: %v", err)
	}
	old := ghsim.Sign("old-secret", []byte(vectorPayload))
	if err := s.Verify(old, []byte(vectorPayload)); err != nil {
		t.Fatalf("first line (padded) not usable: %v", err)
	}
	if ParseSecrets([]byte("\n \r\n")).Len() != 0 {
		t.Fatal("blank file yields secrets")
	}
}

func TestConfigLoadSecrets(t *testing.T) {
	t.Parallel()
	files := map[string]string{"/run/secrets/hook": "rotated-out\nIt's a Secret to Everybody\n", "/blank": "\n\n"}
	read := func(name string) ([]byte, error) {
		if s, ok := files[name]; ok {
			return []byte(s), nil
		}
		return nil, errors.New("no such file")
	}
	s, err := Config{Secret: "env-secret", SecretFile: "/run/secrets/hook"}.LoadSecrets(read)
	if err != nil {
		t.Fatal(err)
	}
	if s.Len() != 3 {
		t.Fatalf("%d secrets, want env + 2 from file", s.Len())
	}
	if err := s.Verify(vectorSignature, []byte(vectorPayload)); err != nil {
		t.Fatal(err)
	}
	if _, err := (Config{SecretFile: "/missing"}).LoadSecrets(read); err == nil {
		t.Fatal("missing secret file: no error")
	}
	if _, err := (Config{SecretFile: "/blank"}).LoadSecrets(read); err == nil {
		t.Fatal("blank secret file: no error")
	}
}

func BenchmarkVerify(b *testing.B) {
	body := runPayload(b, ghsimRun(1))
	sig := ghsim.Sign(testSecret, body)
	s := NewSecrets(testSecret)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if err := s.Verify(sig, body); err != nil {
			b.Fatal(err)
		}
	}
}

func ghsimRun(id int64) ghsim.RunPayload { return ghsim.RunPayload{RunID: id} }
