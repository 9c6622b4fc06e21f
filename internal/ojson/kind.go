package ojson

import "encoding/json"

// Kind is the JSON type of a value.
type Kind uint8

const (
	KindNull Kind = iota
	KindBool
	KindNumber
	KindString
	KindArray
	KindObject
)

// KindOf returns the JSON type of a value of this package; nil and anything
// foreign count as null, as AppendValue writes them.
func KindOf(v any) Kind {
	switch t := v.(type) {
	case *Object:
		return KindObject
	case []any:
		return KindArray
	case json.RawMessage:
		if len(t) == 0 {
			return KindNull
		}
		switch t[0] {
		case '"':
			return KindString
		case 't', 'f':
			return KindBool
		case 'n':
			return KindNull
		}
		return KindNumber
	}
	return KindNull
}
