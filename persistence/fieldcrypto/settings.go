package fieldcrypto

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// Settings is Ditto's ditto.connectivity.connection.encryption configuration
// (environment names in brackets).
type Settings struct {
	// Enabled: encrypt on write (CONNECTIVITY_CONNECTION_ENCRYPTION_ENABLED).
	Enabled bool
	// Key is the current key, URL-safe base64 of 32 bytes
	// (CONNECTIVITY_CONNECTION_ENCRYPTION_KEY).
	Key string
	// OldKey is the previous key, the decryption fallback during a rotation
	// and the key a disable migration decrypts with
	// (CONNECTIVITY_CONNECTION_OLD_ENCRYPTION_KEY).
	OldKey string
	// Pointers are the json-pointers of the encrypted fields; nil means
	// DefaultPointers (CONNECTIVITY_CONNECTION_ENCRYPTION_POINTERS).
	Pointers []string
	// BatchSize is the migration's documents per batch
	// (CONNECTIVITY_ENCRYPTION_MIGRATION_BATCH_SIZE).
	BatchSize int
	// MaxDocsPerMinute throttles the migration; 0 turns the throttle off
	// (CONNECTIVITY_ENCRYPTION_MIGRATION_MAX_DOCS_PER_MINUTE).
	MaxDocsPerMinute int
}

// DefaultSettings are the defaults of Ditto's connectivity.conf: encryption
// off, batches of 10, at most 200 documents a minute.
func DefaultSettings() Settings {
	return Settings{BatchSize: 10, MaxDocsPerMinute: 200}
}

// ErrSettings marks a configuration the service must not start with.
var ErrSettings = errors.New("encryption: invalid configuration")

// Validate makes the start-up checks (Ditto checks the key length only at
// the first write; we refuse to start instead). Messages name the setting,
// never its value.
func (s Settings) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrSettings}, args...)...))
	}
	if s.Enabled && s.Key == "" {
		bad("encryption is enabled (CONNECTIVITY_CONNECTION_ENCRYPTION_ENABLED) but no key is set (CONNECTIVITY_CONNECTION_ENCRYPTION_KEY)")
	}
	cur, errCur := parseOptional(s.Key)
	if errCur != nil {
		bad("the key (CONNECTIVITY_CONNECTION_ENCRYPTION_KEY) must be 32 bytes of URL-safe base64 (A-Z a-z 0-9 - _, optional = padding): %v", errCur)
	}
	old, errOld := parseOptional(s.OldKey)
	if errOld != nil {
		bad("the old key (CONNECTIVITY_CONNECTION_OLD_ENCRYPTION_KEY) must be 32 bytes of URL-safe base64 (A-Z a-z 0-9 - _, optional = padding): %v", errOld)
	}
	if cur != nil && old != nil && bytes.Equal(cur, old) {
		bad("the key and the old key (CONNECTIVITY_CONNECTION_ENCRYPTION_KEY, CONNECTIVITY_CONNECTION_OLD_ENCRYPTION_KEY) must differ")
	}
	if s.BatchSize <= 0 {
		bad("the migration batch size (CONNECTIVITY_ENCRYPTION_MIGRATION_BATCH_SIZE) must be greater than 0, is %d", s.BatchSize)
	}
	if s.MaxDocsPerMinute < 0 {
		bad("the migration's documents per minute (CONNECTIVITY_ENCRYPTION_MIGRATION_MAX_DOCS_PER_MINUTE) must be 0 (no limit) or more, is %d", s.MaxDocsPerMinute)
	}
	if s.Pointers != nil && len(s.Pointers) == 0 {
		bad("the list of json-pointers (CONNECTIVITY_CONNECTION_ENCRYPTION_POINTERS) is empty")
	}
	for _, p := range s.Pointers {
		if _, err := splitPointer(p); err != nil || strings.Trim(p, "/") == "" {
			bad("json-pointer <%s> (CONNECTIVITY_CONNECTION_ENCRYPTION_POINTERS) is not valid", p)
		}
	}
	return errors.Join(errs...)
}

// parseOptional parses a key that may be unset; the error never quotes it.
func parseOptional(k string) ([]byte, error) {
	if k == "" {
		return nil, nil
	}
	b, err := ParseKey(k)
	if err != nil {
		// ParseKey's reasons are generic; drop anything but the sentinel.
		return nil, ErrInvalidKey
	}
	return b, nil
}

// Ciphers returns the ciphers of the configured keys (nil when unset).
func (s Settings) Ciphers() (cur, old *Cipher, err error) {
	if s.Key != "" {
		if cur, err = cipherOf(s.Key); err != nil {
			return nil, nil, fmt.Errorf("%w: the key (CONNECTIVITY_CONNECTION_ENCRYPTION_KEY): %w", ErrSettings, err)
		}
	}
	if s.OldKey != "" {
		if old, err = cipherOf(s.OldKey); err != nil {
			return nil, nil, fmt.Errorf("%w: the old key (CONNECTIVITY_CONNECTION_OLD_ENCRYPTION_KEY): %w", ErrSettings, err)
		}
	}
	return cur, old, nil
}

func cipherOf(k string) (*Cipher, error) {
	b, err := parseOptional(k)
	if err != nil {
		return nil, err
	}
	return NewCipher(b)
}

// MigrationAvailable says whether the encryption-migration singleton runs:
// when encryption is on or an old key is set, as in Ditto.
func (s Settings) MigrationAvailable() bool { return s.Enabled || s.OldKey != "" }

// ParsePointers reads the environment form of json-pointers: a JSON array
// of strings (HOCON list syntax) or a comma-separated list; spaces around
// entries are dropped.
func ParsePointers(v string) ([]string, error) {
	out := []string{}
	if t := strings.TrimSpace(v); strings.HasPrefix(t, "[") {
		if err := json.Unmarshal([]byte(t), &out); err != nil {
			return nil, fmt.Errorf("%w: json-pointers (CONNECTIVITY_CONNECTION_ENCRYPTION_POINTERS) is not a list of strings", ErrSettings)
		}
		return out, nil
	}
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out, nil
}
