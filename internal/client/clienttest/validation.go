package clienttest

import (
	"strings"
	"testing"

	"github.com/dittoconn/dittoconn/internal/client"
	"github.com/dittoconn/dittoconn/internal/model"
	"github.com/dittoconn/dittoconn/proto/ditto"
)

// ValidationCase is one connection (the JSON of a createConnection) and
// the answer Ditto's validation gives it.
type ValidationCase struct {
	Name string
	JSON string
	// Config: nil is model.DefaultValidationConfig().
	Config *model.ValidationConfig
	// Status and Code of the error; Code "" means the connection is valid.
	Status int
	Code   string
	// Parts must each appear in the error's message or description.
	Parts []string
}

// AC is an authorization context, for sources and targets of Conn.
const AC = `"authorizationContext":["a:b"]`

// Conn is the JSON of connection c1 of type typ at uri with the given
// sources and targets (JSON array elements) and extra top-level fields
// (starting with a comma).
func Conn(typ, uri, sources, targets, extra string) string {
	return `{"id":"c1","connectionType":"` + typ + `","connectionStatus":"open","uri":"` + uri + `","sources":[` +
		sources + `],"targets":[` + targets + `]` + extra + `}`
}

// RunValidation validates each case with spec as the only known type, so
// that a case passes only through the rules spec registers.
func RunValidation(t *testing.T, spec client.Spec, cases []ValidationCase) {
	t.Helper()
	protocols := client.NewSpecs(spec)
	for _, tc := range cases {
		t.Run(tc.Name, func(t *testing.T) {
			c, err := model.ParseCommand([]byte(tc.JSON))
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			cfg := model.DefaultValidationConfig()
			if tc.Config != nil {
				cfg = *tc.Config
			}
			err = model.Validate(c, cfg, protocols)
			if tc.Code == "" {
				if err != nil {
					t.Fatalf("want valid, got %v", err)
				}
				return
			}
			de, ok := ditto.As(err)
			if !ok {
				t.Fatalf("want *ditto.Error %s, got %v", tc.Code, err)
			}
			if de.Status != tc.Status || de.Code != tc.Code {
				t.Fatalf("want %d %s, got %d %s (%s)", tc.Status, tc.Code, de.Status, de.Code, de.Message)
			}
			for _, p := range tc.Parts {
				if !strings.Contains(de.Message+" | "+de.Description, p) {
					t.Fatalf("message %q / description %q lacks %q", de.Message, de.Description, p)
				}
			}
		})
	}
}
