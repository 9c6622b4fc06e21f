package ditto

import (
	"testing"
	"time"
)

func TestFormatInstant(t *testing.T) {
	base := time.Date(2026, 5, 2, 9, 15, 0, 0, time.UTC)
	for _, tc := range []struct {
		ns   int
		want string
	}{
		{0, "2026-05-02T09:15:00Z"},
		{1_000_000, "2026-05-02T09:15:00.001Z"},
		{120_000_000, "2026-05-02T09:15:00.120Z"},
		{1_500, "2026-05-02T09:15:00.000001500Z"},
		{2_000, "2026-05-02T09:15:00.000002Z"},
	} {
		got := FormatInstant(base.Add(time.Duration(tc.ns)))
		if got != tc.want {
			t.Errorf("FormatInstant(+%dns) = %s, want %s", tc.ns, got, tc.want)
		}
		back, err := ParseInstant(got)
		if err != nil || !back.Equal(base.Add(time.Duration(tc.ns))) {
			t.Errorf("ParseInstant(%s) = %v, %v", got, back, err)
		}
	}
}

func TestResponseType(t *testing.T) {
	for in, want := range map[string]string{
		RetrieveConnection:         "connectivity.responses:retrieveConnection",
		SudoRetrieveConnectionTags: "connectivity.sudo.responses:sudoRetrieveConnectionTags",
		"other:type":               "other:type",
	} {
		if got := ResponseType(in); got != want {
			t.Errorf("ResponseType(%s) = %s, want %s", in, got, want)
		}
	}
}
