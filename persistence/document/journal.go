package document

import (
	"fmt"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"

	"github.com/dittoconn/dittoconn/persistence"
)

// CheckPID rejects persistence ids that cannot be keys: empty, or holding a
// NUL byte (the bolt engine separates pid and sequence number with NUL).
func CheckPID(pid string) error {
	if pid == "" || strings.IndexByte(pid, 0) >= 0 {
		return fmt.Errorf("%w: persistence id %q", ErrMalformed, pid)
	}
	return nil
}

// Journal builds the journal document of ev with the given _id, in Ditto's
// key order: _id, pid, from, to, events[{v, pid, sn, _t, p, _tg?, manifest,
// _w}], v, _tg?. Ditto writes one event per document, so from == to == sn.
func Journal(id bson.ObjectID, ev persistence.Event) (bson.Raw, error) {
	return AppendJournal(make([]byte, 0, 512+len(ev.Payload)*5/4), id, ev)
}

// AppendJournal is Journal appending to dst.
func AppendJournal(dst []byte, id bson.ObjectID, ev persistence.Event) ([]byte, error) {
	if err := CheckPID(ev.PID); err != nil {
		return dst, err
	}
	if ev.Seq < 1 {
		return dst, fmt.Errorf("%w: %s: sequence number %d < 1", ErrMalformed, ev.PID, ev.Seq)
	}
	tags := uniqueTags(ev.Tags)

	start, dst := bsoncore.AppendDocumentStart(dst)
	dst = bsoncore.AppendObjectIDElement(dst, FieldID, id)
	dst = bsoncore.AppendStringElement(dst, FieldPID, ev.PID)
	dst = bsoncore.AppendInt64Element(dst, FieldFrom, ev.Seq)
	dst = bsoncore.AppendInt64Element(dst, FieldTo, ev.Seq)

	events, dst := bsoncore.AppendArrayElementStart(dst, FieldEvents)
	event, dst := bsoncore.AppendDocumentElementStart(dst, "0")
	dst = bsoncore.AppendInt32Element(dst, FieldVersion, FormatVersion)
	dst = bsoncore.AppendStringElement(dst, FieldPID, ev.PID)
	dst = bsoncore.AppendInt64Element(dst, FieldSeq, ev.Seq)
	dst = bsoncore.AppendStringElement(dst, FieldHint, HintBSON)
	dst = bsoncore.AppendHeader(dst, bsoncore.TypeEmbeddedDocument, FieldPayload)
	var err error
	if dst, err = AppendJSON(dst, ev.Payload); err != nil {
		return dst, fmt.Errorf("%s/%d: %w", ev.PID, ev.Seq, err)
	}
	if len(tags) > 0 {
		dst = appendTags(dst, tags)
	}
	dst = bsoncore.AppendStringElement(dst, FieldManifest, ev.Manifest)
	dst = bsoncore.AppendStringElement(dst, FieldWriter, ev.Writer)
	if dst, err = bsoncore.AppendDocumentEnd(dst, event); err != nil {
		return dst, err
	}
	if dst, err = bsoncore.AppendArrayEnd(dst, events); err != nil {
		return dst, err
	}

	dst = bsoncore.AppendInt32Element(dst, FieldVersion, FormatVersion)
	if len(tags) > 0 { // the union of the events' tags: here, one event's
		dst = appendTags(dst, tags)
	}
	return bsoncore.AppendDocumentEnd(dst, start)
}

// uniqueTags drops repeated tags (the plugin keeps tags in a set), keeping
// the first occurrence's order.
func uniqueTags(tags []string) []string {
	for i := 1; i < len(tags); i++ {
		for j := 0; j < i; j++ {
			if tags[i] == tags[j] {
				out := make([]string, 0, len(tags))
				for _, t := range tags {
					if !containsString(out, t) {
						out = append(out, t)
					}
				}
				return out
			}
		}
	}
	return tags
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func appendTags(dst []byte, tags []string) []byte {
	idx, dst := bsoncore.AppendArrayElementStart(dst, FieldTags)
	var key [20]byte
	for i, t := range tags {
		dst = bsoncore.AppendStringElement(dst, string(appendIndex(key[:0], i)), t)
	}
	dst, _ = bsoncore.AppendArrayEnd(dst, idx)
	return dst
}

func appendIndex(dst []byte, i int) []byte {
	if i < 10 {
		return append(dst, byte('0'+i))
	}
	return fmt.Appendf(dst, "%d", i)
}

// DecodeJournal returns the events of a journal document (Ditto writes one;
// older writers could batch several), with payloads as JSON.
func DecodeJournal(doc bson.Raw) ([]persistence.Event, error) {
	return decodeJournal(doc, true)
}

// DecodeJournalHead returns the newest event of a journal document without
// converting its payload (Payload is nil): what id listings need.
func DecodeJournalHead(doc bson.Raw) (persistence.Event, error) {
	evs, err := decodeJournal(doc, false)
	if err != nil {
		return persistence.Event{}, err
	}
	if len(evs) == 0 {
		return persistence.Event{}, fmt.Errorf("%w: journal document without events", ErrMalformed)
	}
	head := evs[0]
	for _, ev := range evs[1:] {
		if ev.Seq > head.Seq {
			head = ev
		}
	}
	return head, nil
}

func decodeJournal(doc bson.Raw, payload bool) ([]persistence.Event, error) {
	pid, _ := doc.Lookup(FieldPID).StringValueOK()
	arr, ok := doc.Lookup(FieldEvents).ArrayOK()
	if !ok {
		return nil, fmt.Errorf("%w: journal document of %q has no events array (legacy format?)", ErrMalformed, pid)
	}
	vals, err := arr.Values()
	if err != nil {
		return nil, fmt.Errorf("%w: journal %q: %v", ErrMalformed, pid, err)
	}
	out := make([]persistence.Event, 0, len(vals))
	for _, v := range vals {
		d, ok := v.DocumentOK()
		if !ok {
			return nil, fmt.Errorf("%w: journal %q: event is %s, not a document", ErrMalformed, pid, v.Type)
		}
		ev, err := decodeEvent(d, payload)
		if err != nil {
			return nil, fmt.Errorf("journal %q: %w", pid, err)
		}
		if ev.PID == "" {
			ev.PID = pid
		}
		out = append(out, ev)
	}
	return out, nil
}

func decodeEvent(d bson.Raw, payload bool) (persistence.Event, error) {
	var ev persistence.Event
	ev.PID, _ = d.Lookup(FieldPID).StringValueOK()
	seq, ok := d.Lookup(FieldSeq).AsInt64OK()
	if !ok {
		return ev, fmt.Errorf("%w: event without sn", ErrMalformed)
	}
	ev.Seq = seq
	ev.Manifest, _ = d.Lookup(FieldManifest).StringValueOK()
	ev.Writer, _ = d.Lookup(FieldWriter).StringValueOK()
	if tg, ok := d.Lookup(FieldTags).ArrayOK(); ok {
		vals, err := tg.Values()
		if err != nil {
			return ev, fmt.Errorf("%w: sn %d: tags: %v", ErrMalformed, seq, err)
		}
		ev.Tags = make([]string, 0, len(vals))
		for _, v := range vals {
			if s, ok := v.StringValueOK(); ok {
				ev.Tags = append(ev.Tags, s)
			}
		}
	}
	if !payload {
		return ev, nil
	}
	if hint, _ := d.Lookup(FieldHint).StringValueOK(); hint != HintBSON {
		return ev, fmt.Errorf("%w: sn %d: payload hint %q is not supported", ErrMalformed, seq, hint)
	}
	p, ok := d.Lookup(FieldPayload).DocumentOK()
	if !ok {
		return ev, fmt.Errorf("%w: sn %d: payload is not a document", ErrMalformed, seq)
	}
	js, err := ToJSON(p)
	if err != nil {
		return ev, fmt.Errorf("sn %d: %w", seq, err)
	}
	ev.Payload = js
	return ev, nil
}

// Metadata builds the plugin's max-sequence document {pid, max_sn}, which
// the plugin writes when it deletes events (dittoconn never does; readers
// fall back to it).
func Metadata(pid string, maxSeq int64) bson.Raw {
	start, dst := bsoncore.AppendDocumentStart(nil)
	dst = bsoncore.AppendStringElement(dst, FieldPID, pid)
	dst = bsoncore.AppendInt64Element(dst, FieldMaxSeq, maxSeq)
	dst, _ = bsoncore.AppendDocumentEnd(dst, start)
	return dst
}

// DecodeMetadata returns max_sn of a metadata document.
func DecodeMetadata(doc bson.Raw) (int64, error) {
	n, ok := doc.Lookup(FieldMaxSeq).AsInt64OK()
	if !ok {
		return 0, fmt.Errorf("%w: metadata document without max_sn", ErrMalformed)
	}
	return n, nil
}
