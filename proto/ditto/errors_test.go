package ditto

import (
	"strings"
	"testing"
)

func TestMaskUserInfo(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"tcp://user:s3cr3t@host:1883", "tcp://***@host:1883"},
		{"tcp://user:p@ss@host", "tcp://***@host"},
		{"amqp://host:5672", "amqp://host:5672"},
		{"user:s3cr3t@host", "***@host"},
		{"", ""},
	} {
		if got := MaskUserInfo(tc.in); got != tc.want {
			t.Errorf("MaskUserInfo(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	if e := URIInvalid("tcp://u:s3cr3t@h"); strings.Contains(e.Message, "s3cr3t") {
		t.Errorf("the password reached the answer: %s", e.Message)
	}
}
