package live

import (
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/dittoconn/dittoconn/proto/ditto"
	"github.com/dittoconn/dittoconn/test/blackbox"
	"github.com/dittoconn/dittoconn/test/kit"
)

// TestIntegrationMQTTTLS: ssl:// with the connection's ca, without it
// (validateCertificates on and off) and with a client certificate the broker
// requires, for MQTT 3.1.1 and MQTT 5.
func TestIntegrationMQTTTLS(t *testing.T) {
	pki := blackbox.NewPKI(t)
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	extra := "cafile " + write("ca.pem", pki.CAPEM) + "\ncertfile " + write("server.pem", pki.ServerCert) +
		"\nkeyfile " + write("server.key", pki.ServerKey) + "\nrequire_certificate true\n"
	b := blackbox.StartMosquitto(t, nil, extra)
	n := kit.Start(t, kit.Bolt().Open(t)(), kit.Options{})
	clientCert := map[string]any{"type": "client-cert", "cert": pki.ClientCert, "key": pki.ClientKey}

	for _, typ := range []string{"mqtt", "mqtt-5"} {
		t.Run(typ, func(t *testing.T) {
			conn := func(id string, ca bool, validate bool, cert bool) map[string]any {
				c := mqttLive(typ, id, "closed", "ssl://"+b.Addr())
				if ca {
					c["ca"] = pki.CAPEM
				}
				c["validateCertificates"] = validate
				if cert {
					c["credentials"] = clientCert
				}
				return c
			}
			cases := []struct {
				name               string
				ca, validate, cert bool
				want               int
			}{
				{"ca and client cert", true, true, true, http.StatusOK},
				{"no client cert", true, true, false, http.StatusGatewayTimeout},
				{"unknown CA", false, true, true, http.StatusGatewayTimeout},
				{"unknown CA, validation off", false, false, true, http.StatusOK},
			}
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					r := n.Send(t, blackbox.Shard, nil, blackbox.Cmd(ditto.TestConnection, "connection", conn(typ+"-tls", tc.ca, tc.validate, tc.cert)))
					if r == nil || int(r.Status) != tc.want {
						t.Fatalf("test: %v", r)
					}
					if tc.want != http.StatusOK {
						blackbox.WantField(t, blackbox.Decode(t, r.Payload), ditto.CodeConnectionFailed, "error")
					}
				})
			}
			// open over TLS: status open
			id := typ + "-tls-open"
			if r := n.Send(t, blackbox.Shard, nil, blackbox.Cmd(ditto.CreateConnection, "connection", conn(id, true, true, true))); r.Status != http.StatusCreated {
				t.Fatalf("create: %d %s", r.Status, r.Payload)
			}
			if r := n.Send(t, blackbox.Shard, nil, blackbox.Cmd(ditto.OpenConnection, "connectionId", id)); r.Status != http.StatusOK {
				t.Fatalf("open: %d %s", r.Status, r.Payload)
			}
			blackbox.WantField(t, status(t, n, id), "open", "liveStatus")
			if r := n.Send(t, blackbox.Shard, nil, blackbox.Cmd(ditto.DeleteConnection, "connectionId", id)); r.Status != http.StatusNoContent {
				t.Fatalf("delete: %d %s", r.Status, r.Payload)
			}
		})
	}
}
