package fieldcrypto

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestSettingsValidate(t *testing.T) {
	const other = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
	short := "AAECAwQFBgcICQoLDA0ODxAREhMUFRYX" // 24 bytes
	std := "vJFSTPE9PO2BtZlcMAwNjs8jdFvQCk0Ya9MVdYjRJUU+"
	with := func(f func(*Settings)) Settings {
		s := DefaultSettings()
		f(&s)
		return s
	}
	tests := []struct {
		name    string
		s       Settings
		wantErr string // substring; "" = valid
	}{
		{"defaults", DefaultSettings(), ""},
		{"enabled with key", with(func(s *Settings) { s.Enabled, s.Key = true, testKey }), ""},
		{"rotation", with(func(s *Settings) { s.Enabled, s.Key, s.OldKey = true, other, testKey }), ""},
		{"disable", with(func(s *Settings) { s.OldKey = testKey }), ""},
		{"unpadded key", with(func(s *Settings) { s.Enabled, s.Key = true, strings.TrimRight(testKey, "=") }), ""},
		{"enabled without key", with(func(s *Settings) { s.Enabled = true }), "no key is set"},
		{"short key", with(func(s *Settings) { s.Enabled, s.Key = true, short }), "must be 32 bytes"},
		{"standard alphabet key", with(func(s *Settings) { s.Enabled, s.Key = true, std }), "must be 32 bytes"},
		{"bad old key", with(func(s *Settings) { s.OldKey = "nope" }), "old key"},
		{"equal keys", with(func(s *Settings) { s.Enabled, s.Key, s.OldKey = true, testKey, testKey }), "must differ"},
		{"equal keys, one unpadded", with(func(s *Settings) { s.Enabled, s.Key, s.OldKey = true, testKey, strings.TrimRight(testKey, "=") }), "must differ"},
		{"batch size 0", with(func(s *Settings) { s.BatchSize = 0 }), "batch size"},
		{"negative throttle", with(func(s *Settings) { s.MaxDocsPerMinute = -1 }), "per minute"},
		{"unthrottled", with(func(s *Settings) { s.MaxDocsPerMinute = 0 }), ""},
		{"bad pointer", with(func(s *Settings) { s.Pointers = []string{"/a//b"} }), "json-pointer"},
		{"empty pointer list", with(func(s *Settings) { s.Pointers = []string{} }), "empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.s.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate = %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, ErrSettings) {
				t.Fatalf("Validate = %v, want %q", err, tt.wantErr)
			}
			for _, k := range []string{tt.s.Key, tt.s.OldKey} {
				if k != "" && strings.Contains(err.Error(), k) {
					t.Errorf("the error quotes a key: %v", err)
				}
			}
		})
	}
}

func TestParsePointers(t *testing.T) {
	for in, want := range map[string][]string{
		"/uri, /credentials/key":      {"/uri", "/credentials/key"},
		`["/uri","/credentials/key"]`: {"/uri", "/credentials/key"},
		" /uri ,,":                    {"/uri"},
	} {
		got, err := ParsePointers(in)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("ParsePointers(%q) = %v, %v", in, got, err)
		}
	}
	if _, err := ParsePointers(`[1]`); err == nil {
		t.Error("a list of numbers was accepted")
	}
}

func TestSettingsCiphers(t *testing.T) {
	s := DefaultSettings()
	s.OldKey = testKey
	cur, old, err := s.Ciphers()
	if err != nil || cur != nil || old == nil {
		t.Fatalf("Ciphers = %v, %v, %v", cur, old, err)
	}
	if !s.MigrationAvailable() || DefaultSettings().MigrationAvailable() {
		t.Error("MigrationAvailable")
	}
}
