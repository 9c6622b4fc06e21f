package encryption

import (
	"os"
	"testing"

	"github.com/dittoconn/dittoconn/test/blackbox"
)

func TestMain(m *testing.M) { os.Exit(blackbox.Main(m)) }
