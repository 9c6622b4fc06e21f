package ojson

// Object is an ordered JSON object: keys in insertion order, setting a key
// that exists replaces its value in place (so parsing a duplicated key keeps
// the first position and the last value, as Ditto's parser does). Values
// are *Object, []any or json.RawMessage.
type Object struct {
	keys []string
	vals map[string]any
}

// NewObject returns an empty object.
func NewObject() *Object { return &Object{vals: map[string]any{}} }

// NewObjectSize returns an empty object with room for n keys, for a writer
// that knows how many fields it sets.
func NewObjectSize(n int) *Object {
	return &Object{keys: make([]string, 0, n), vals: make(map[string]any, n)}
}

// Get returns the value of k.
func (o *Object) Get(k string) (any, bool) {
	v, ok := o.vals[k]
	return v, ok
}

// Value returns the value of k, nil when k is not set.
func (o *Object) Value(k string) any { return o.vals[k] }

// Has reports whether k is set.
func (o *Object) Has(k string) bool { _, ok := o.vals[k]; return ok }

// Set replaces the value of k in place or appends k.
func (o *Object) Set(k string, v any) {
	if _, ok := o.vals[k]; !ok {
		o.keys = append(o.keys, k)
	}
	o.vals[k] = v
}

// Remove deletes k.
func (o *Object) Remove(k string) {
	if _, ok := o.vals[k]; !ok {
		return
	}
	delete(o.vals, k)
	for i, key := range o.keys {
		if key == k {
			o.keys = append(o.keys[:i:i], o.keys[i+1:]...)
			break
		}
	}
}

// Len is the number of keys.
func (o *Object) Len() int { return len(o.keys) }

// Keys returns the keys in order; the caller must not change the slice.
func (o *Object) Keys() []string { return o.keys }

// Clone returns a copy of o sharing its values.
func (o *Object) Clone() *Object {
	c := &Object{keys: append([]string(nil), o.keys...), vals: make(map[string]any, len(o.vals))}
	for k, v := range o.vals {
		c.vals[k] = v
	}
	return c
}

// SetPointer sets v at a JSON pointer given as keys, creating or replacing
// intermediate objects as Ditto's JsonObject.set(pointer) does.
func (o *Object) SetPointer(keys []string, v any) {
	if len(keys) == 0 {
		return
	}
	cur := o
	for _, k := range keys[:len(keys)-1] {
		next, ok := cur.vals[k].(*Object)
		if !ok {
			next = NewObject()
			cur.Set(k, next)
		}
		cur = next
	}
	cur.Set(keys[len(keys)-1], v)
}

// GetPointer returns the value at keys (objects only, no array indexes).
func (o *Object) GetPointer(keys []string) (any, bool) {
	var cur any = o
	for _, k := range keys {
		obj, ok := cur.(*Object)
		if !ok {
			return nil, false
		}
		if cur, ok = obj.vals[k]; !ok {
			return nil, false
		}
	}
	return cur, true
}
