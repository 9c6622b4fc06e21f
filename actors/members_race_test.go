package actors

import (
	"context"
	"testing"

	"github.com/rs/zerolog"

	"github.com/dittoconn/dittoconn/persistence/bolt"
)

// TestTwoSystemsInOneProcess starts two actor systems in one process, as
// test/kit does with several services: under -race, the second member's
// start (protoactor's remote.Start sets grpc's global logger) must be
// ordered after the first member's gRPC server read that logger (see
// startMu). Run with -race -count=N to reproduce the race without it.
func TestTwoSystemsInOneProcess(t *testing.T) {
	var systems []*System
	for i := range 2 {
		store, err := bolt.Open(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = store.Close(context.Background()) })
		cfg := DefaultConfig()
		cfg.Store, cfg.Instance = store, "race-"+string(rune('a'+i))
		cfg.Logger = zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)
		sys, err := Start(cfg)
		if err != nil {
			t.Fatalf("start system %d: %v", i, err)
		}
		systems = append(systems, sys)
	}
	for _, sys := range systems {
		sys.Stop()
	}
}
