package blackbox

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"testing"

	"github.com/FerretDB/FerretDB/ferretdb"

	"github.com/dittoconn/dittoconn/test/kit"
)

// MongoURI is the MongoDB-wire server the mongo-engine tests use: a real
// MongoDB from DITTOCONN_TEST_MONGO_URI, else an embedded FerretDB (SQLite
// backend) that Main starts. Set before the tests run, read-only after.
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

func runMain(m *testing.M) int {
	if uri := os.Getenv("DITTOCONN_TEST_MONGO_URI"); uri != "" {
		MongoURI = uri
		return m.Run()
	}
	dir, err := os.MkdirTemp("", "dittoconn-ferret-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "temp dir:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	f, err := ferretdb.New(&ferretdb.Config{
		Handler:   "sqlite",
		SQLiteURL: "file:" + dir + "/",
		Logger:    slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError + 4})),
		Listener:  ferretdb.ListenerConfig{TCP: "127.0.0.1:0"},
	})
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

// Engines are the store engines every integration test runs on.
func Engines() []kit.Engine {
	return []kit.Engine{kit.Bolt(), kit.Mongo(MongoURI)}
}
