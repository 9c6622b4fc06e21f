package test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/dittoconn/dittoconn/proto/ditto"
	"github.com/dittoconn/dittoconn/test/kit"
)

// testPKI is a CA with a server certificate for 127.0.0.1 and a client
// certificate, all PEM.
type testPKI struct {
	caPEM, serverCert, serverKey, clientCert, clientKey string
}

func newTestPKI(t *testing.T) testPKI {
	t.Helper()
	key := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	keyPEM := func(k *ecdsa.PrivateKey) string {
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	}
	certPEM := func(der []byte) string {
		return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	}
	now := time.Now()
	caKey := key()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "dittoconn test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	issue := func(serial int64, cn string, usage x509.ExtKeyUsage, ips []net.IP) (string, string) {
		k := key()
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), IPAddresses: ips,
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage}}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &k.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		return certPEM(der), keyPEM(k)
	}
	p := testPKI{caPEM: certPEM(caDER)}
	p.serverCert, p.serverKey = issue(2, "127.0.0.1", x509.ExtKeyUsageServerAuth, []net.IP{net.ParseIP("127.0.0.1")})
	p.clientCert, p.clientKey = issue(3, "dittoconn", x509.ExtKeyUsageClientAuth, nil)
	return p
}

// TestIntegrationMQTTTLS: ssl:// with the connection's ca, without it
// (validateCertificates on and off) and with a client certificate the broker
// requires, for MQTT 3.1.1 and MQTT 5.
func TestIntegrationMQTTTLS(t *testing.T) {
	pki := newTestPKI(t)
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	extra := "cafile " + write("ca.pem", pki.caPEM) + "\ncertfile " + write("server.pem", pki.serverCert) +
		"\nkeyfile " + write("server.key", pki.serverKey) + "\nrequire_certificate true\n"
	b := startMosquitto(t, nil, extra)
	n := kit.Start(t, kit.Bolt().Open(t)(), kit.Options{})
	clientCert := map[string]any{"type": "client-cert", "cert": pki.clientCert, "key": pki.clientKey}

	for _, typ := range []string{"mqtt", "mqtt-5"} {
		t.Run(typ, func(t *testing.T) {
			conn := func(id string, ca bool, validate bool, cert bool) map[string]any {
				c := mqttLive(typ, id, "closed", "ssl://"+b.Addr())
				if ca {
					c["ca"] = pki.caPEM
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
					r := n.Send(t, shard, nil, cmd(ditto.TestConnection, "connection", conn(typ+"-tls", tc.ca, tc.validate, tc.cert)))
					if r == nil || int(r.Status) != tc.want {
						t.Fatalf("test: %v", r)
					}
					if tc.want != http.StatusOK {
						wantField(t, decode(t, r.Payload), ditto.CodeConnectionFailed, "error")
					}
				})
			}
			// open over TLS: status open
			id := typ + "-tls-open"
			if r := n.Send(t, shard, nil, cmd(ditto.CreateConnection, "connection", conn(id, true, true, true))); r.Status != http.StatusCreated {
				t.Fatalf("create: %d %s", r.Status, r.Payload)
			}
			if r := n.Send(t, shard, nil, cmd(ditto.OpenConnection, "connectionId", id)); r.Status != http.StatusOK {
				t.Fatalf("open: %d %s", r.Status, r.Payload)
			}
			wantField(t, status(t, n, id), "open", "liveStatus")
			if r := n.Send(t, shard, nil, cmd(ditto.DeleteConnection, "connectionId", id)); r.Status != http.StatusNoContent {
				t.Fatalf("delete: %d %s", r.Status, r.Payload)
			}
		})
	}
}
