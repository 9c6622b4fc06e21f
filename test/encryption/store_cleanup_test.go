package encryption

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dittoconn/dittoconn/persistence/document"
	"github.com/dittoconn/dittoconn/proto/ditto"
	"github.com/dittoconn/dittoconn/test/blackbox"
	"github.com/dittoconn/dittoconn/test/kit"
	"github.com/dittoconn/dittoconn/test/poll"
)

// TestBinaryDeleteLeavesNoSecretAtRest: after a connection is deleted its
// URI password is in no byte of the embedded store file (documents and
// freed pages alike), also after a SIGKILL and a restart, and the id can be
// created again.
func TestBinaryDeleteLeavesNoSecretAtRest(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	const secret = "at-rest-pw-4b7d"
	bin := blackbox.BuildBinary(t)
	dataDir := t.TempDir()
	path := filepath.Join(dataDir, "dittoconn.db")
	env := []string{"DITTOCONN_DATA_DIR=" + dataDir, "INSTANCE_INDEX=bin-forget", "MONGO_DB_URI="}
	fileHasSecret := func() bool {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return bytes.Contains(b, []byte(secret))
	}
	p := blackbox.StartBinary(t, bin, env...)
	send := func(p *blackbox.Proc, command map[string]any) (int, map[string]any) {
		return p.Piggyback(t, map[string]any{"targetActorSelection": blackbox.Shard,
			"headers": map[string]any{"aggregate": false}, "piggybackCommand": command})
	}
	conn := blackbox.MQTTConnection("forget-1", "closed")
	conn["uri"] = "tcp://user:" + secret + "@127.0.0.1:1883"
	for i, typ := range []string{ditto.CreateConnection, ditto.ModifyConnection, ditto.ModifyConnection, ditto.ModifyConnection} {
		conn["name"] = strings.Repeat("n", i+1)
		if st, m := send(p, blackbox.Cmd(typ, "connection", conn)); st != 200 {
			t.Fatalf("%s: %d %v", typ, st, m)
		}
	}
	if !fileHasSecret() {
		t.Fatal("the password is not in the store file before the delete: the test proves nothing")
	}
	st, m := send(p, blackbox.Cmd(ditto.DeleteConnection, "connectionId", "forget-1"))
	if st != 200 {
		t.Fatalf("delete: %d %v", st, m)
	}
	blackbox.WantField(t, m, 204, "status")
	poll.Until(t, 10*time.Second, "the password leaves the store file", func() bool { return !fileHasSecret() })

	// No SIGTERM: nothing may depend on a clean shutdown.
	_ = p.Cmd.Process.Kill()
	<-p.Done
	if fileHasSecret() {
		t.Fatal("the password is back in the store file after the kill")
	}
	p = blackbox.StartBinary(t, bin, env...)
	if st, m := send(p, blackbox.Cmd(ditto.RetrieveConnection, "connectionId", "forget-1")); st != 200 || blackbox.Field(m, "status") != float64(404) {
		t.Fatalf("retrieve after delete and restart: %d %v", st, m)
	}
	conn["name"] = "again"
	if st, m := send(p, blackbox.Cmd(ditto.CreateConnection, "connection", conn)); st != 200 || blackbox.Field(m, "status") != float64(201) {
		t.Fatalf("re-create: %d %v", st, m)
	}
	st, m = send(p, blackbox.Cmd(ditto.RetrieveConnection, "connectionId", "forget-1"))
	if st != 200 {
		t.Fatalf("retrieve: %d", st)
	}
	blackbox.WantField(t, m, "again", "connection", "name")
	blackbox.WantField(t, m, "tcp://user:"+secret+"@127.0.0.1:1883", "connection", "uri")
	p.Stop(t)
}

// TestBinaryStoreFileBounded: 31 writes of a large connection (the finding:
// +139 MB) leave a file that a restart shrinks to about what it holds, and
// a delete gives its space back at once.
func TestBinaryStoreFileBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := blackbox.BuildBinary(t)
	dataDir := t.TempDir()
	path := filepath.Join(dataDir, "dittoconn.db")
	env := []string{"DITTOCONN_DATA_DIR=" + dataDir, "INSTANCE_INDEX=bin-bounded", "MONGO_DB_URI="}
	size := func() int64 {
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		return st.Size()
	}
	send := func(p *blackbox.Proc, command map[string]any) (int, map[string]any) {
		return p.Piggyback(t, map[string]any{"targetActorSelection": blackbox.Shard,
			"headers": map[string]any{"aggregate": false}, "piggybackCommand": command})
	}
	p := blackbox.StartBinary(t, bin, env...)
	base := size()
	conn := blackbox.MQTTConnection("big-1", "closed")
	for i := 0; i < 31; i++ {
		typ := ditto.ModifyConnection
		if i == 0 {
			typ = ditto.CreateConnection
		}
		conn["name"] = strings.Repeat(string(rune('a'+i%26)), 780_000)
		if st, m := send(p, blackbox.Cmd(typ, "connection", conn)); st != 200 {
			t.Fatalf("%s %d: %d %v", typ, i, st, m)
		}
	}
	p.Stop(t)
	written := size()
	p = blackbox.StartBinary(t, bin, env...)
	restarted := size()
	t.Logf("store file: %d bytes empty, %d after 31 writes of 780 kB, %d after a restart", base, written, restarted)
	// The journal keeps every version until the journal cleanup exists
	// (24 MB here); the file may hold them, not a multiple of them.
	if live := int64(31 * 780_000); restarted > 2*live {
		t.Errorf("store file %d bytes after a restart, more than twice the %d bytes written", restarted, live)
	}
	st, m := send(p, blackbox.Cmd(ditto.RetrieveConnection, "connectionId", "big-1"))
	if st != 200 {
		t.Fatalf("retrieve: %d", st)
	}
	blackbox.WantField(t, m, strings.Repeat(string(rune('a'+30%26)), 780_000), "connection", "name")
	if st, m := send(p, blackbox.Cmd(ditto.DeleteConnection, "connectionId", "big-1")); st != 200 || blackbox.Field(m, "status") != float64(204) {
		t.Fatalf("delete: %d %v", st, m)
	}
	poll.Until(t, 10*time.Second, "the deleted connection's space is given back", func() bool { return size() < 4<<20 })
	p.Stop(t)
}

// TestDeleteRemovesSecretsAtRest: on both engines, with and without field
// encryption, a deleted connection leaves no document holding its URI (in
// clear or encrypted); only the deleted-state snapshot remains, and a
// re-created connection continues after the delete's revision.
func TestDeleteRemovesSecretsAtRest(t *testing.T) {
	for _, e := range blackbox.Engines() {
		for _, encrypted := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/encrypted=%v", e.Name, encrypted), func(t *testing.T) {
				engine := e.Open(t)()
				opts := kit.Options{SnapshotThreshold: 2}
				if encrypted {
					s := encSettings(true, blackbox.EncKeyA, "")
					opts.Encryption = &s
				}
				n := kit.Start(t, engine, opts)
				id := "forget-" + e.Name
				pid := "connection:" + id
				c := blackbox.SecuredConnection(id)
				for _, typ := range []string{ditto.CreateConnection, ditto.ModifyConnection, ditto.ModifyConnection} {
					if st, m := piggy(t, n, blackbox.Shard, blackbox.Cmd(typ, "connection", c)); st != 200 || m["status"] == float64(400) {
						t.Fatalf("%s: %d %v", typ, st, m)
					}
				}
				uris := func() []string {
					var out []string
					for _, coll := range []string{document.SnapshotCollection, document.JournalCollection} {
						for _, d := range blackbox.RawDocs(t, engine, coll) {
							if d.Lookup("pid").StringValue() == pid && bytes.Contains(d, []byte("127.0.0.1:1883")) {
								out = append(out, coll)
							}
						}
					}
					return out
				}
				if len(uris()) == 0 {
					t.Fatal("no stored document holds the URI before the delete: the test proves nothing")
				}
				if _, m := piggy(t, n, blackbox.Shard, blackbox.Cmd(ditto.DeleteConnection, "connectionId", id)); m["status"] != float64(204) {
					t.Fatalf("delete: %v", m)
				}
				poll.Until(t, 10*time.Second, "the deleted connection's documents are removed", func() bool { return len(uris()) == 0 })
				var left []string
				for _, coll := range []string{document.SnapshotCollection, document.JournalCollection} {
					for _, d := range blackbox.RawDocs(t, engine, coll) {
						if d.Lookup("pid").StringValue() == pid {
							left = append(left, fmt.Sprintf("%s sn %d %s", coll, d.Lookup("sn").AsInt64(), d.Lookup("s2")))
						}
					}
				}
				if want := []string{`connection_snaps sn 4 {"__lifecycle": "DELETED"}`}; fmt.Sprint(left) != fmt.Sprint(want) {
					t.Errorf("documents left: %q, want %q", left, want)
				}
				if _, m := piggy(t, n, blackbox.Shard, blackbox.Cmd(ditto.CreateConnection, "connection", c)); m["status"] != float64(201) {
					t.Fatalf("re-create: %v", m)
				}
				_, m := piggy(t, n, blackbox.Shard, blackbox.Cmd(ditto.RetrieveConnection, "connectionId", id, "selectedFields", "_revision,uri"))
				blackbox.WantField(t, m, 5, "connection", "_revision")
				blackbox.WantField(t, m, c["uri"], "connection", "uri")
			})
		}
	}
}
