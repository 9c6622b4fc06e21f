package protocol

import "strings"

// internalHeaders are the headers Ditto never writes into an external
// message: the entries of DittoHeaderDefinition and MessageHeaderDefinition
// whose writeToExternalHeaders is false. Ditto's HeaderTranslator drops them
// when a signal becomes a Ditto Protocol message, so a header a source's
// header mapping set for Ditto itself (divert-response-to-connection, say)
// does not travel on to the brokers of other connections.
var internalHeaders = map[string]struct{}{
	"ditto-auth-context": {}, "ditto-dry-run": {}, "ditto-read-subjects": {}, "ditto-read-revoked-subjects": {},
	"accept": {}, "authorization": {}, "live-channel-timeout-strategy": {}, "ditto-origin": {},
	"if-match": {}, "if-none-match": {}, "if-equal": {}, "ditto-reply-target": {},
	"divert-response-to-connection": {}, "divert-expected-response-types": {},
	"ditto-expected-response-types": {}, "ditto-inbound-payload-mapper": {}, "declared-acks": {},
	"ditto-entity-id": {}, "put-metadata": {}, "get-metadata": {}, "delete-metadata": {},
	"allow-policy-lockout": {}, "ditto-event-journal-tags": {}, "ditto-sudo": {}, "ditto-retrieve-deleted": {},
	"ditto-ackgregator-address": {}, "condition": {}, "live-channel-condition": {},
	"at-historical-revision": {}, "at-historical-timestamp": {},
	"ditto-pre-defined-extra-fields": {}, "ditto-pre-defined-extra-fields-read-grant": {},
	"ditto-partial-access-paths": {}, "ditto-pre-defined-extra-fields-object": {},
	"merge-thing-patch-conditions": {}, "policy-view": {}, "ditto-policy-view-fields-selector": {},
}

// IsInternalHeader reports whether Ditto keeps the header key (any case)
// out of external messages.
func IsInternalHeader(key string) bool {
	if _, ok := internalHeaders[key]; ok {
		return true
	}
	_, ok := internalHeaders[strings.ToLower(key)]
	return ok
}

// ExternalHeaders is h without Ditto's internal headers. It returns h itself
// when there is nothing to drop (the common case costs no copy); callers
// must not modify the result.
func ExternalHeaders(h map[string]string) map[string]string {
	n := 0
	for k := range h {
		if IsInternalHeader(k) {
			n++
		}
	}
	if n == 0 {
		return h
	}
	out := make(map[string]string, len(h)-n)
	for k, v := range h {
		if !IsInternalHeader(k) {
			out[k] = v
		}
	}
	return out
}
