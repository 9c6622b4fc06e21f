package ojson

import (
	"bytes"
	"encoding/json"
)

// Find returns the span of the value at keys in doc, which must be valid
// JSON (json.Valid), without building a tree: the in-place rewrites of
// stored documents edit that span and keep every other byte. Only objects
// are descended (like Ditto's pointers, no array indexes); with duplicate
// keys the last one counts, as in Ditto's JsonObject. No keys: the whole
// value.
func Find(doc []byte, keys []string) (start, end int, ok bool) {
	i := skipWS(doc, 0)
	if len(keys) == 0 {
		return i, skipValue(doc, i), true
	}
	return lookup(doc, i, keys)
}

// KindOfText is the kind of the JSON text doc (valid JSON) by its first
// byte.
func KindOfText(doc []byte) Kind {
	i := skipWS(doc, 0)
	if i >= len(doc) {
		return KindNull
	}
	switch doc[i] {
	case '{':
		return KindObject
	case '[':
		return KindArray
	}
	return KindOf(json.RawMessage(doc[i:]))
}

// Members calls each with every member of the object doc (valid JSON,
// json.Valid, an object once whitespace is skipped) in document order: the
// key's literal, quotes included (see Unquote), and the value's span.
// Nothing is built: Ditto Protocol's decoder picks its few members with it
// instead of unmarshalling every frame into a map.
func Members(doc []byte, each func(key, value []byte)) {
	i := skipWS(doc, 0)
	if i >= len(doc) || doc[i] != '{' {
		return
	}
	i = skipWS(doc, i+1)
	for i < len(doc) && doc[i] == '"' {
		ks := i
		ke := skipString(doc, ks)
		i = skipWS(doc, ke)
		i = skipWS(doc, i+1) // ':'
		if i >= len(doc) {
			return
		}
		e := skipValue(doc, i)
		each(doc[ks:ke], doc[i:e])
		i = skipWS(doc, e)
		if i < len(doc) && doc[i] == ',' {
			i = skipWS(doc, i+1)
		}
	}
}

func lookup(doc []byte, i int, keys []string) (start, end int, ok bool) {
	for _, key := range keys {
		if doc[i] != '{' {
			return 0, 0, false
		}
		vs, ve, found := member(doc, i, key)
		if !found {
			return 0, 0, false
		}
		i = vs
		start, end = vs, ve
	}
	return start, end, true
}

// member finds key in the object starting at i (doc is valid JSON).
func member(doc []byte, i int, key string) (vs, ve int, found bool) {
	i = skipWS(doc, i+1)
	for doc[i] != '}' {
		ks := i
		ke := skipString(doc, ks)
		i = skipWS(doc, ke)
		i = skipWS(doc, i+1) // ':'
		s := i
		e := skipValue(doc, s)
		if keyEquals(doc[ks:ke], key) {
			vs, ve, found = s, e, true
		}
		i = skipWS(doc, e)
		if doc[i] == ',' {
			i = skipWS(doc, i+1)
		}
	}
	return vs, ve, found
}

func keyEquals(raw []byte, key string) bool {
	inner := raw[1 : len(raw)-1]
	if bytes.IndexByte(inner, '\\') < 0 {
		return string(inner) == key
	}
	var k string
	return json.Unmarshal(raw, &k) == nil && k == key
}

func skipWS(doc []byte, i int) int {
	for i < len(doc) {
		switch doc[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// skipString returns the offset after the string starting at i.
func skipString(doc []byte, i int) int {
	for i++; i < len(doc); i++ {
		switch doc[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return i
}

// skipValue returns the offset after the value starting at i.
func skipValue(doc []byte, i int) int {
	switch doc[i] {
	case '"':
		return skipString(doc, i)
	case '{', '[':
		depth := 0
		for i < len(doc) {
			switch doc[i] {
			case '"':
				i = skipString(doc, i)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return i
	default: // number, true, false, null
		for i < len(doc) {
			switch doc[i] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				return i
			}
			i++
		}
		return i
	}
}
