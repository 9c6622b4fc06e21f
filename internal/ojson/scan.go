package ojson

import (
	"encoding/json"
	"unicode/utf8"
)

// Scanner reads JSON's lexical elements from Data at I: whitespace,
// numbers, string literals and keywords. Parse's byte scanner is built on
// it, and so is any builder of another tree that wants to skip
// encoding/json's token API (which allocates per token), such as the
// JavaScript mapper's JSON.parse. Each method leaves I after what it read;
// ok false means Data is not well-formed JSON at I, and I is then
// unspecified.
type Scanner struct {
	Data []byte
	I    int
}

// SkipSpace skips JSON whitespace.
func (s *Scanner) SkipSpace() {
	for s.I < len(s.Data) {
		switch s.Data[s.I] {
		case ' ', '\t', '\n', '\r':
			s.I++
		default:
			return
		}
	}
}

// Next is the byte at I; ok false at the end of Data.
func (s *Scanner) Next() (byte, bool) {
	if s.I >= len(s.Data) {
		return 0, false
	}
	return s.Data[s.I], true
}

// Keyword reads the literal w (true, false or null).
func (s *Scanner) Keyword(w string) ([]byte, bool) {
	end := s.I + len(w)
	if end > len(s.Data) || string(s.Data[s.I:end]) != w {
		return nil, false
	}
	lit := s.Data[s.I:end:end]
	s.I = end
	return lit, true
}

func (s *Scanner) digits() int {
	start := s.I
	for s.I < len(s.Data) && s.Data[s.I] >= '0' && s.Data[s.I] <= '9' {
		s.I++
	}
	return s.I - start
}

// Number reads a number; its literal is returned as written.
func (s *Scanner) Number() ([]byte, bool) {
	start := s.I
	if s.I < len(s.Data) && s.Data[s.I] == '-' {
		s.I++
	}
	if s.I < len(s.Data) && s.Data[s.I] == '0' {
		s.I++
	} else if s.digits() == 0 {
		return nil, false
	}
	if s.I < len(s.Data) && s.Data[s.I] == '.' {
		s.I++
		if s.digits() == 0 {
			return nil, false
		}
	}
	if s.I < len(s.Data) && (s.Data[s.I] == 'e' || s.Data[s.I] == 'E') {
		s.I++
		if s.I < len(s.Data) && (s.Data[s.I] == '+' || s.Data[s.I] == '-') {
			s.I++
		}
		if s.digits() == 0 {
			return nil, false
		}
	}
	return s.Data[start:s.I:s.I], true
}

// String reads a string literal, quotes included. plain: it is exactly
// what e's Quote writes for its decoded text (no escapes, valid UTF-8,
// and with GoJSON no U+2028/U+2029), so its inside is its text.
func (s *Scanner) String(e Escaping) (lit []byte, plain, ok bool) {
	start := s.I
	s.I++
	plain = true
	for s.I < len(s.Data) {
		c := s.Data[s.I]
		switch {
		case c == '"':
			s.I++
			return s.Data[start:s.I:s.I], plain, true
		case c == '\\':
			plain = false
			s.I += 2
		case c < 0x20:
			return nil, false, false // not JSON
		case c < utf8.RuneSelf:
			s.I++
		default:
			r, size := utf8.DecodeRune(s.Data[s.I:])
			if (r == utf8.RuneError && size == 1) || (e == GoJSON && (r == '\u2028' || r == '\u2029')) {
				plain = false
			}
			s.I += size
		}
	}
	return nil, false, false
}

// Text is the text of a literal String read, decoded as encoding/json
// decodes it (invalid UTF-8 and lone surrogates become U+FFFD).
func Text(lit []byte, plain bool) (string, bool) {
	if plain {
		return string(lit[1 : len(lit)-1]), true
	}
	var t string
	if json.Unmarshal(lit, &t) != nil {
		return "", false
	}
	return t, true
}

// Object reads an object, calling member with each key when I is at its
// value, which member must read; ok false: member failed or the object is
// not well-formed.
func (s *Scanner) Object(e Escaping, member func(key string) bool) bool {
	s.I++ // {
	s.SkipSpace()
	if c, _ := s.Next(); c == '}' {
		s.I++
		return true
	}
	for {
		s.SkipSpace()
		if c, _ := s.Next(); c != '"' {
			return false
		}
		lit, plain, ok := s.String(e)
		if !ok {
			return false
		}
		k, ok := Text(lit, plain)
		if !ok {
			return false
		}
		s.SkipSpace()
		if c, _ := s.Next(); c != ':' {
			return false
		}
		s.I++
		s.SkipSpace()
		if !member(k) {
			return false
		}
		s.SkipSpace()
		switch c, _ := s.Next(); c {
		case ',':
			s.I++
		case '}':
			s.I++
			return true
		default:
			return false
		}
	}
}

// Array reads an array, calling element when I is at each element, which
// element must read; ok false: element failed or the array is not
// well-formed.
func (s *Scanner) Array(element func() bool) bool {
	s.I++ // [
	s.SkipSpace()
	if c, _ := s.Next(); c == ']' {
		s.I++
		return true
	}
	for {
		s.SkipSpace()
		if !element() {
			return false
		}
		s.SkipSpace()
		switch c, _ := s.Next(); c {
		case ',':
			s.I++
		case ']':
			s.I++
			return true
		default:
			return false
		}
	}
}
