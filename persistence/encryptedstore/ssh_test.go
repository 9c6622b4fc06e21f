package encryptedstore

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/dittoconn/dittoconn/persistence"
	"github.com/dittoconn/dittoconn/persistence/document"
)

// TestSSHTunnelSecretsEncryptedAtRest: with encryption on and the default
// pointers (Ditto's json-pointers include /sshTunnel/credentials/password
// and /sshTunnel/credentials/privateKey), the stored snapshot and journal
// event of a tunnelled connection hold neither the SSH password nor the
// private key in clear; both decrypt independently, and reads give the
// plaintext back.
func TestSSHTunnelSecretsEncryptedAtRest(t *testing.T) {
	const sshPassword, privateKey = "ssh-pa55word", "-----BEGIN PRIVATE KEY-----\\nMC4CAQAwBQYDK2VwBCIEIKey\\n-----END PRIVATE KEY-----"
	conn := func(cred string) string {
		return `{"__lifecycle":"ACTIVE","id":"ssh1","connectionType":"mqtt","connectionStatus":"open",` +
			`"uri":"tcp://broker.example.com:1883","sshTunnel":{"enabled":true,"uri":"ssh://ssh.example.com:22",` +
			`"credentials":` + cred + `,"validateHost":false,"knownHosts":[]},"_revision":1}`
	}
	engine := openBolt(t)
	s := wrap(t, engine, settings(true, keyA, ""))
	for i, tc := range []struct{ cred, field, secret string }{
		{`{"type":"password","username":"u","password":"` + sshPassword + `"}`, "password", sshPassword},
		{`{"type":"public-key","username":"u","publicKey":"ssh-ed25519 AAAA","privateKey":"` + privateKey + `"}`, "privateKey",
			strings.ReplaceAll(privateKey, `\n`, "\n")},
	} {
		pid := "connection:ssh" + string(rune('a'+i))
		c := conn(tc.cred)
		ev := `{"type":"connectivity.events:connectionCreated","revision":1,"connectionId":"ssh1","connection":` + c + `,"__hh":{}}`
		if err := s.Append(ctxT(t), persistence.Event{PID: pid, Seq: 1, Manifest: "connectivity.events:connectionCreated", Payload: json.RawMessage(ev)}); err != nil {
			t.Fatal(err)
		}
		if err := s.SaveSnapshot(ctxT(t), persistence.Snapshot{PID: pid, Seq: 1, Timestamp: 1, Payload: json.RawMessage(c)}); err != nil {
			t.Fatal(err)
		}
		snap, err := s.LatestSnapshot(ctxT(t), pid)
		if err != nil || string(snap.Payload) != c {
			t.Errorf("%s: LatestSnapshot = %s, %v", tc.field, snap.Payload, err)
		}
	}
	for _, coll := range []string{document.JournalCollection, document.SnapshotCollection} {
		docs := raws(t, engine, coll)
		if len(docs) != 2 {
			t.Fatalf("%s: %d documents, want 2", coll, len(docs))
		}
		seen := map[string]bool{}
		for _, d := range docs {
			if strings.Contains(string(d), sshPassword) || strings.Contains(string(d), "MC4CAQAwBQYDK2VwBCIEIKey") {
				t.Errorf("%s holds an SSH secret in clear", coll)
			}
			conn := d.Lookup("s2")
			if coll == document.JournalCollection {
				conn = d.Lookup("events").Array().Index(0).Document().Lookup("p", "connection")
			}
			cred := conn.Document().Lookup("sshTunnel", "credentials").Document()
			for field, want := range map[string]string{"password": sshPassword, "privateKey": strings.ReplaceAll(privateKey, `\n`, "\n")} {
				v, ok := cred.Lookup(field).StringValueOK()
				if !ok {
					continue
				}
				seen[field] = true
				if got := independentDecrypt(t, keyA, v); got != want {
					t.Errorf("%s sshTunnel/credentials/%s decrypts to %q", coll, field, got)
				}
			}
			if u := conn.Document().Lookup("sshTunnel", "uri").StringValue(); u != "ssh://ssh.example.com:22" {
				t.Errorf("%s: sshTunnel/uri changed to %q", coll, u)
			}
		}
		if !seen["password"] || !seen["privateKey"] {
			t.Errorf("%s: SSH secrets found %v", coll, seen)
		}
	}
}
