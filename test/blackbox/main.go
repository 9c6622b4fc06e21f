package blackbox

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/FerretDB/FerretDB/ferretdb"

	"github.com/dittoconn/dittoconn/test/kit"
)

// MongoURI is the MongoDB-wire server the mongo-engine tests use: a real
// MongoDB from DITTOCONN_TEST_MONGO_URI, else an embedded FerretDB that Main
// starts. Set before the tests run, read-only after.
var MongoURI string

// Main is the TestMain of every black-box test package: it runs the tests
// with MongoURI set, then stops the embedded FerretDB and removes the binary
// BuildBinary built. It returns the exit code for os.Exit.
func Main(m *testing.M) int {
	code := runMain(m)
	if binDir != "" {
		_ = os.RemoveAll(binDir)
	}
	return code
}

// runMain serves MongoURI with FerretDB on a PostgreSQL database of this
// test binary's own when the machine's PostgreSQL answers (CI starts it),
// else on SQLite files in a temp dir. PostgreSQL first: FerretDB pushes the
// engine's filters on pid down to PostgreSQL there, while its SQLite handler
// reads and decodes every document of a collection for each query, which
// made a hundred connections on the mongo engine take minutes (ten times
// the bolt engine) and time out under load.
func runMain(m *testing.M) int {
	if uri := os.Getenv("DITTOCONN_TEST_MONGO_URI"); uri != "" {
		MongoURI = uri
		return m.Run()
	}
	cfg := &ferretdb.Config{
		Logger:   slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError + 4})),
		Listener: ferretdb.ListenerConfig{TCP: "127.0.0.1:0"},
	}
	if url, drop := postgresDatabase(); url != "" {
		defer drop()
		cfg.Handler, cfg.PostgreSQLURL = "postgresql", url
	} else {
		dir, err := os.MkdirTemp("", "dittoconn-ferret-")
		if err != nil {
			fmt.Fprintln(os.Stderr, "temp dir:", err)
			return 1
		}
		defer os.RemoveAll(dir)
		cfg.Handler, cfg.SQLiteURL = "sqlite", "file:"+dir+"/"
	}
	f, err := ferretdb.New(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "ferretdb:", err)
		return 1
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = f.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	MongoURI = f.MongoDBURI()
	return m.Run()
}

// postgresDatabase creates a database of its own on the PostgreSQL at
// 127.0.0.1:5432 (user postgres, as the cluster tests use it) with the
// PostgreSQL client programs, and returns its URL and how to drop it; an
// empty URL when PostgreSQL or the programs are missing (then SQLite serves).
func postgresDatabase() (url string, drop func()) {
	c, err := net.DialTimeout("tcp", "127.0.0.1:5432", 2*time.Second)
	if err != nil {
		return "", nil
	}
	_ = c.Close()
	createdb, err1 := exec.LookPath("createdb")
	dropdb, err2 := exec.LookPath("dropdb")
	if err1 != nil || err2 != nil {
		fmt.Fprintln(os.Stderr, "PostgreSQL answers but createdb/dropdb are missing: the mongo engine runs on FerretDB's slower SQLite handler")
		return "", nil
	}
	name := fmt.Sprintf("dittoconn_test_%d_%d", os.Getpid(), time.Now().UnixNano()%1e9)
	run := func(bin string, args ...string) error {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, bin, append([]string{"-h", "127.0.0.1", "-U", "postgres"}, args...)...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("%s: %w: %s", filepath.Base(bin), err, out)
		}
		return nil
	}
	if err := run(createdb, name); err != nil {
		fmt.Fprintln(os.Stderr, err, "(the mongo engine runs on FerretDB's slower SQLite handler)")
		return "", nil
	}
	return "postgres://postgres@127.0.0.1:5432/" + name, func() {
		if err := run(dropdb, "--if-exists", name); err != nil {
			fmt.Fprintln(os.Stderr, err)
		}
	}
}

// Engines are the store engines every integration test runs on.
func Engines() []kit.Engine {
	return []kit.Engine{kit.Bolt(), kit.Mongo(MongoURI)}
}
