package fieldcrypto

import (
	"errors"
	"fmt"
)

// Mode is an encryption-migration mode, named as Ditto logs it.
type Mode string

const (
	ModeInitialEncryption Mode = "initial-encryption"
	ModeKeyRotation       Mode = "key-rotation"
	ModeDisable           Mode = "disable"
)

// Transform rewrites one document (a snapshot's s2 with prefix "", or a
// journal event's p with prefix "connection") for a migration. changed is
// false when the document is already in the target state (Ditto counts it
// as skipped) and then newDoc is doc itself. An error means the document
// failed; it names the pointer, never a value.
type Transform func(doc []byte, prefix string) (newDoc []byte, changed bool, err error)

// Migration picks the transform from the configured keys, as Ditto's
// document processor does: only Current -> initial encryption, only Old ->
// disable, both -> key rotation (also when encryption is switched off but
// both keys are still set; Ditto re-encrypts then too).
func (f *Fields) Migration() (Mode, Transform, error) {
	switch {
	case f.Current != nil && f.Old == nil:
		return ModeInitialEncryption, f.InitialEncryption, nil
	case f.Current == nil && f.Old != nil:
		return ModeDisable, f.DisableEncryption, nil
	case f.Current != nil && f.Old != nil:
		return ModeKeyRotation, f.RotateKey, nil
	}
	return "", nil, fmt.Errorf("%w: a migration needs the current or the old key", ErrNoKey)
}

// MigrationValues is Migration for callers that find the values
// themselves: the same mode, as a ValuesFunc.
func (f *Fields) MigrationValues() (Mode, ValuesFunc, error) {
	mode, _, err := f.Migration()
	if err != nil {
		return "", nil, err
	}
	switch mode {
	case ModeInitialEncryption:
		return mode, f.InitialEncryptionValues, nil
	case ModeDisable:
		return mode, f.DisableEncryptionValues, nil
	default:
		return mode, f.RotateKeyValues, nil
	}
}

// InitialEncryption encrypts plaintext with Current. A document with any
// encrypted field (value or URI password with Prefix) is left as it is, so
// partly encrypted documents are never encrypted twice.
func (f *Fields) InitialEncryption(doc []byte, prefix string) ([]byte, bool, error) {
	if f.Current == nil {
		return nil, false, ErrNoKey
	}
	return f.rewriteValues(doc, prefix, f.InitialEncryptionValues)
}

// InitialEncryptionValues is InitialEncryption on the values.
func (f *Fields) InitialEncryptionValues(vals []Value) (bool, error) {
	keep(vals)
	if f.Current == nil {
		return false, ErrNoKey
	}
	for _, v := range vals {
		if isEncryptedValue(v.In) {
			return false, nil
		}
	}
	return apply(vals, func(_, v string) (string, error) {
		return encryptValue(v, f.Current)
	})
}

// RotateKey decrypts with Old only and encrypts everything (plaintext too)
// with Current. If some value does not decrypt with Old, the document
// counts as already migrated when it decrypts with Current alone, and as
// failed otherwise (for instance a mix of both keys).
func (f *Fields) RotateKey(doc []byte, prefix string) ([]byte, bool, error) {
	if f.Current == nil || f.Old == nil {
		return nil, false, fmt.Errorf("%w: key rotation needs the current and the old key", ErrNoKey)
	}
	return f.rewriteValues(doc, prefix, f.RotateKeyValues)
}

// RotateKeyValues is RotateKey on the values.
func (f *Fields) RotateKeyValues(vals []Value) (bool, error) {
	keep(vals)
	if f.Current == nil || f.Old == nil {
		return false, fmt.Errorf("%w: key rotation needs the current and the old key", ErrNoKey)
	}
	// apply stops at the first failing value, so one value the old key
	// cannot read decides for the whole document, as in Ditto.
	changed, err := apply(vals, func(_, v string) (string, error) {
		plain, err := decryptValue(v, []*Cipher{f.Old})
		if err != nil {
			return "", err
		}
		return encryptValue(plain, f.Current)
	})
	if err == nil || !errors.Is(err, ErrDecrypt) {
		return changed, err
	}
	_, errNew := apply(vals, decrypter(f.Current))
	keep(vals)
	return false, errNew
}

// DisableEncryption decrypts with Old only and writes plaintext. A value
// that Old cannot decrypt means the document is taken as plaintext already
// and left as it is (skipped), as Ditto does.
func (f *Fields) DisableEncryption(doc []byte, prefix string) ([]byte, bool, error) {
	if f.Old == nil {
		return nil, false, fmt.Errorf("%w: disabling needs the old key", ErrNoKey)
	}
	return f.rewriteValues(doc, prefix, f.DisableEncryptionValues)
}

// DisableEncryptionValues is DisableEncryption on the values.
func (f *Fields) DisableEncryptionValues(vals []Value) (bool, error) {
	keep(vals)
	if f.Old == nil {
		return false, fmt.Errorf("%w: disabling needs the old key", ErrNoKey)
	}
	changed, err := apply(vals, decrypter(f.Old))
	if errors.Is(err, ErrDecrypt) {
		return false, nil
	}
	return changed, err
}

// DecryptValues is Decrypt on the values: Current is tried first, then Old;
// anything not encrypted passes through.
func (f *Fields) DecryptValues(vals []Value) (bool, error) {
	keep(vals)
	return apply(vals, decrypter(f.Current, f.Old))
}
