package cluster

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dittoconn/dittoconn/test/blackbox"
)

// clusterPKI writes a CA and one member certificate (server and client
// use, for 127.0.0.1) and returns the three file paths.
func clusterPKI(t *testing.T, name string) (cert, key, ca string) {
	t.Helper()
	dir := t.TempDir()
	write := func(file, typ string, der []byte) string {
		p := filepath.Join(dir, file)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name + " CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "dittoconn member"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &k.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalPKCS8PrivateKey(k)
	return write("member.pem", "CERTIFICATE", der), write("member-key.pem", "PRIVATE KEY", keyDER), write("ca.pem", "CERTIFICATE", caDER)
}

// TestClusterMutualTLS: members with certificates of the cluster's CA talk
// over mutual TLS; a member with another CA's certificate is seen in etcd
// but cannot exchange a message with them.
func TestClusterMutualTLS(t *testing.T) {
	cert, key, ca := clusterPKI(t, "cluster")
	c := startCluster(t, 2, "DITTOCONN_CLUSTER_TLS_CERT="+cert, "DITTOCONN_CLUSTER_TLS_KEY="+key, "DITTOCONN_CLUSTER_TLS_CA="+ca)
	status, m := c.nodes[1].command(t, blackbox.Cmd("connectivity.commands:createConnection", "connection", blackbox.MQTTConnection("tls-1", "closed")))
	if status != 200 || m["status"] != float64(201) {
		t.Fatalf("create over TLS: %d %v", status, m)
	}
	for _, id := range []string{"tls-1"} {
		for _, n := range c.nodes {
			if status, m := n.command(t, blackbox.Cmd("connectivity.commands:retrieveConnection", "connectionId", id)); status != 200 || m["status"] != float64(200) {
				t.Fatalf("retrieve via %s: %d %v", n.instance, status, m)
			}
		}
	}

	// An intruder with its own CA joins etcd but gets no answer from the
	// members, nor they from it.
	otherCert, otherKey, otherCA := clusterPKI(t, "intruder")
	intruder := c.startNode("intruder", "DITTOCONN_CLUSTER_TLS_CERT="+otherCert, "DITTOCONN_CLUSTER_TLS_KEY="+otherKey,
		"DITTOCONN_CLUSTER_TLS_CA="+otherCA)
	if !strings.Contains(intruder.Logs.String(), `"members":3`) {
		t.Fatalf("the intruder did not find the members in etcd:\n%s", intruder.Logs.String())
	}
	got := c.nodes[0].instances(t)
	slices.Sort(got)
	if !slices.Equal(got, []string{"node-1", "node-2"}) {
		t.Fatalf("the members heard from %v", got)
	}
	if got := intruder.instances(t); slices.Contains(got, "node-1") || slices.Contains(got, "node-2") {
		t.Fatalf("the intruder heard from %v", got)
	}
}
