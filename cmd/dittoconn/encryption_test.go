package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// TestEncryptionStartupChecks: configurations Ditto would accept and fail on
// later stop the service at start, with a message naming the variable and
// never the key.
func TestEncryptionStartupChecks(t *testing.T) {
	const (
		keyA = "vJFSTPE9PO2BtZlcMAwNjs8jdFvQCk0Ya9MVdYjRJUU="
		keyB = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
	)
	tests := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"enabled without key", map[string]string{"CONNECTIVITY_CONNECTION_ENCRYPTION_ENABLED": "true"}, "no key is set"},
		{"short key", map[string]string{"CONNECTIVITY_CONNECTION_ENCRYPTION_ENABLED": "true", "CONNECTIVITY_CONNECTION_ENCRYPTION_KEY": "c2hvcnQta2V5"}, "CONNECTIVITY_CONNECTION_ENCRYPTION_KEY) must be 32 bytes"},
		{"bad old key", map[string]string{"CONNECTIVITY_CONNECTION_OLD_ENCRYPTION_KEY": "not+base64/url"}, "CONNECTIVITY_CONNECTION_OLD_ENCRYPTION_KEY) must be 32 bytes"},
		{"equal keys", map[string]string{"CONNECTIVITY_CONNECTION_ENCRYPTION_ENABLED": "true", "CONNECTIVITY_CONNECTION_ENCRYPTION_KEY": keyA, "CONNECTIVITY_CONNECTION_OLD_ENCRYPTION_KEY": keyA}, "must differ"},
		{"batch size", map[string]string{"CONNECTIVITY_ENCRYPTION_MIGRATION_BATCH_SIZE": "0"}, "batch size"},
		{"throttle", map[string]string{"CONNECTIVITY_ENCRYPTION_MIGRATION_MAX_DOCS_PER_MINUTE": "-5"}, "per minute"},
		{"not a number", map[string]string{"CONNECTIVITY_ENCRYPTION_MIGRATION_BATCH_SIZE": "ten"}, "not an integer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.env["DITTOCONN_DATA_DIR"] = t.TempDir()
			var logs bytes.Buffer
			err := run(context.Background(), nil, func(k string) string { return tt.env[k] }, &logs)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("run = %v, want an error with %q", err, tt.want)
			}
			for _, k := range []string{keyA, keyB, "c2hvcnQta2V5", "not+base64/url"} {
				if strings.Contains(err.Error(), k) || strings.Contains(logs.String(), k) {
					t.Errorf("a key reached the error or the log: %v", err)
				}
			}
		})
	}
	cfg, err := parseConfig(nil, func(k string) string {
		return map[string]string{
			"CONNECTIVITY_CONNECTION_ENCRYPTION_ENABLED":            "true",
			"CONNECTIVITY_CONNECTION_ENCRYPTION_KEY":                keyB,
			"CONNECTIVITY_CONNECTION_OLD_ENCRYPTION_KEY":            keyA,
			"CONNECTIVITY_CONNECTION_ENCRYPTION_POINTERS":           "/uri,/credentials/password",
			"CONNECTIVITY_ENCRYPTION_MIGRATION_BATCH_SIZE":          "50",
			"CONNECTIVITY_ENCRYPTION_MIGRATION_MAX_DOCS_PER_MINUTE": "0",
		}[k]
	})
	e := cfg.Encryption
	if err != nil || !e.Enabled || e.Key != keyB || e.OldKey != keyA || len(e.Pointers) != 2 || e.BatchSize != 50 || e.MaxDocsPerMinute != 0 {
		t.Errorf("parseConfig = %+v, %v", e, err)
	}
	cfg, _ = parseConfig(nil, func(string) string { return "" })
	if cfg.Encryption.BatchSize != 10 || cfg.Encryption.MaxDocsPerMinute != 200 || cfg.Encryption.Pointers != nil {
		t.Errorf("defaults = %+v", cfg.Encryption)
	}
}
