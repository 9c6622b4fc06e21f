package encryption

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

// InitialEncryption encrypts plaintext with Current. A document with any
// encrypted field (value or URI password with Prefix) is left as it is, so
// partly encrypted documents are never encrypted twice.
func (f *Fields) InitialEncryption(doc []byte, prefix string) ([]byte, bool, error) {
	if f.Current == nil {
		return nil, false, ErrNoKey
	}
	if _, err := f.locate(doc, prefix); err != nil {
		return nil, false, err
	}
	if f.IsEncrypted(doc, prefix) {
		return doc, false, nil
	}
	return f.rewrite(doc, prefix, func(_, v string) (string, error) {
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
	// rewrite stops at the first failing value, so one value the old key
	// cannot read decides for the whole document, as in Ditto.
	out, changed, err := f.rewrite(doc, prefix, func(_, v string) (string, error) {
		plain, err := decryptValue(v, []*Cipher{f.Old})
		if err != nil {
			return "", err
		}
		return encryptValue(plain, f.Current)
	})
	if err == nil || !errors.Is(err, ErrDecrypt) {
		return out, changed, err
	}
	if _, _, errNew := f.rewrite(doc, prefix, decrypter(f.Current)); errNew != nil {
		return nil, false, errNew
	}
	return doc, false, nil
}

// DisableEncryption decrypts with Old only and writes plaintext. A value
// that Old cannot decrypt means the document is taken as plaintext already
// and left as it is (skipped), as Ditto does.
func (f *Fields) DisableEncryption(doc []byte, prefix string) ([]byte, bool, error) {
	if f.Old == nil {
		return nil, false, fmt.Errorf("%w: disabling needs the old key", ErrNoKey)
	}
	out, changed, err := f.rewrite(doc, prefix, decrypter(f.Old))
	if err != nil {
		if errors.Is(err, ErrDecrypt) {
			return doc, false, nil
		}
		return nil, false, err
	}
	return out, changed, nil
}
