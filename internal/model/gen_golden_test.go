package model

import (
	"flag"
	"os"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files")

// TestUpdateGolden regenerates testdata/*.golden.json when run with -update;
// the goldens were checked by hand against Ditto's serialisation rules.
func TestUpdateGolden(t *testing.T) {
	if !*update {
		t.Skip("use -update")
	}
	for _, n := range examples {
		b, _ := os.ReadFile("testdata/" + n + ".input.json")
		c, err := ParseCommand(b)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile("testdata/"+n+".golden.json", append(c.JSON(false), '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
