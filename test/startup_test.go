package test

import (
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/dittoconn/dittoconn/proto/ditto"
	"github.com/dittoconn/dittoconn/test/blackbox"
)

// TestBinaryStartsWithFailingOpenConnections: connections whose opening
// fails at every attempt (a refused port, a port that accepts and never
// answers) never keep the restarted service from answering, and an operator
// can close and delete each of them at once.
func TestBinaryStartsWithFailingOpenConnections(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	go func() { // accept and hold, never answer a CONNECT
		var held []net.Conn
		defer func() {
			for _, c := range held {
				_ = c.Close()
			}
		}()
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			held = append(held, c)
		}
	}()

	bin := blackbox.BuildBinary(t)
	env := []string{"DITTOCONN_DATA_DIR=" + t.TempDir(), "INSTANCE_INDEX=start-1", "MONGO_DB_URI="}
	p := blackbox.StartBinary(t, bin, env...)
	envelope := func(command map[string]any) map[string]any {
		return map[string]any{"targetActorSelection": blackbox.Shard, "headers": map[string]any{"aggregate": false},
			"piggybackCommand": command}
	}
	var ids []string
	for i := 0; i < 40; i++ {
		id := fmt.Sprintf("failing-%d", i)
		c := blackbox.MQTTConnection(id, "open")
		c["uri"] = "tcp://127.0.0.1:1" // refused
		if i%2 == 1 {
			c["uri"] = "tcp://" + silent.Addr().String()
		}
		if st, m := p.Piggyback(t, envelope(blackbox.Cmd(ditto.CreateConnection, "connection", c))); st != 200 || m["status"] != float64(201) {
			t.Fatalf("create %s: %d %v", id, st, m)
		}
		ids = append(ids, id)
	}
	p.Stop(t)

	start := time.Now()
	p = blackbox.StartBinary(t, bin, env...)
	st, m := p.Piggyback(t, map[string]any{"targetActorSelection": "/user/connectivityRoot/connectionIdsRetrieval",
		"headers": map[string]any{"aggregate": false}, "piggybackCommand": blackbox.Cmd(ditto.RetrieveAllConnectionIDs)})
	if listed, _ := m["connectionIds"].([]any); st != 200 || len(listed) != 40 {
		t.Fatalf("ids after the restart: %d %v", st, m)
	}
	for i, id := range ids {
		command, want := ditto.CloseConnection, float64(200)
		if i%2 == 1 {
			command, want = ditto.DeleteConnection, float64(204)
		}
		if st, m := p.Piggyback(t, envelope(blackbox.Cmd(command, "connectionId", id))); st != 200 || m["status"] != want {
			t.Fatalf("%s %s after the restart: %d %v", command, id, st, m)
		}
	}
	t.Logf("restarted, listed, closed or deleted 40 failing connections in %v", time.Since(start))
	p.Stop(t)
}
