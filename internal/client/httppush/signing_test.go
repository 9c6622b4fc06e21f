package httppush

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/dittoconn/dittoconn/internal/client"
	"github.com/dittoconn/dittoconn/internal/client/hmaccommon"
	"github.com/dittoconn/dittoconn/internal/model"
)

// TestAWSSigV4TestSuiteVectors: the signatures of AWS's Signature Version
// 4 test suite (aws-sig-v4-test-suite, published with AWS's general
// reference: cases get-vanilla and get-vanilla-query-order-key-case, their
// .authz files; credentials AKIDEXAMPLE, region us-east-1, service
// "service", 20150830T123600Z, headers host and x-amz-date signed).
func TestAWSSigV4TestSuiteVectors(t *testing.T) {
	p := &hmaccommon.Params{Alg: "aws4-hmac-sha256", M: map[string]any{"region": "us-east-1", "service": "service",
		"accessKey": "AKIDEXAMPLE", "secretKey": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
		"canonicalHeaders": []any{"host", "x-amz-date"}}}
	s := newAWSSigner(p)
	if p.Err != nil {
		t.Fatal(p.Err)
	}
	at := time.Date(2015, 8, 30, 12, 36, 0, 0, time.UTC)
	for uri, sig := range map[string]string{
		"https://example.amazonaws.com/":                             "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
		"https://example.amazonaws.com/?Param2=value2&Param1=value1": "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500",
	} {
		req, _ := http.NewRequest(http.MethodGet, uri, nil)
		if err := s.sign(req, nil, at); err != nil {
			t.Fatal(err)
		}
		want := "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=" + sig
		if got := req.Header.Get("Authorization"); got != want {
			t.Errorf("%s:\n got %s\nwant %s", uri, got, want)
		}
	}
}

// signedEndpoint is an HTTP endpoint that checks every request's signature
// with verify and answers 403 when it does not hold; the failures are sent
// to the returned channel.
func signedEndpoint(t *testing.T, verify func(r *http.Request, body []byte) error) (*httptest.Server, <-chan error) {
	t.Helper()
	results := make(chan error, 16)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		err := verify(r, body)
		results <- err
		if err != nil {
			http.Error(w, err.Error(), http.StatusForbidden)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	return srv, results
}

// hmacConnection is an HTTP push connection to uri signing with algorithm.
func hmacConnection(uri, algorithm string, params map[string]any) *model.Connection {
	raw, _ := json.Marshal(params)
	return &model.Connection{ID: "push-hmac", ConnectionType: model.TypeHTTPPush, ConnectionStatus: "open",
		URI: uri, ClientCount: 1, Targets: []model.Target{{Address: "POST:/x"}},
		Credentials: &model.Credentials{Type: "hmac", Algorithm: algorithm, Parameters: raw}}
}

func pushSigned(t *testing.T, c *model.Connection, results <-chan error, msgs ...client.Message) {
	t.Helper()
	cl, err := NewFactory(Options{})(client.Env{Connection: c})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := cl.Connect(ctx); err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer func() { _ = cl.Close(context.Background()) }()
	for _, m := range msgs {
		if err := cl.Publish(ctx, m); err != nil {
			t.Errorf("publish %s: %v", m.Address, err)
		}
		select {
		case err := <-results:
			if err != nil {
				t.Errorf("%s: the endpoint refused the signature: %v", m.Address, err)
			}
		case <-ctx.Done():
			t.Fatal("the endpoint received no request")
		}
	}
}

// awsVerifier checks a request's AWS signature by signing the request as
// received again with aws-sdk-go-v2's v4 signer (which signs host,
// x-amz-date and every header it is given: the verifier gives it exactly
// the other headers the request says it signed).
func awsVerifier(region, service, access, secret string, doubleEncode bool) func(r *http.Request, body []byte) error {
	return func(r *http.Request, body []byte) error {
		auth := r.Header.Get("Authorization")
		_, signedList, ok1 := strings.Cut(auth, "SignedHeaders=")
		signedList, _, _ = strings.Cut(signedList, ",")
		_, gotSig, ok2 := strings.Cut(auth, "Signature=")
		if !ok1 || !ok2 {
			return fmt.Errorf("no AWS authorization: %q", auth)
		}
		at, err := time.Parse("20060102T150405Z", r.Header.Get("X-Amz-Date"))
		if err != nil {
			return fmt.Errorf("x-amz-date: %v", err)
		}
		vreq, _ := http.NewRequest(r.Method, "http://"+r.Host+r.URL.RequestURI(), nil)
		vreq.Host = r.Host
		for _, h := range strings.Split(signedList, ";") {
			if h != "host" && h != "x-amz-date" {
				vreq.Header[http.CanonicalHeaderKey(h)] = r.Header.Values(h)
			}
		}
		hash := r.Header.Get("X-Amz-Content-Sha256")
		if hash == "" {
			sum := sha256.Sum256(body)
			hash = hex.EncodeToString(sum[:])
		}
		err = v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: access, SecretAccessKey: secret},
			vreq, hash, service, region, at, func(o *v4.SignerOptions) { o.DisableURIPathEscaping = !doubleEncode })
		if err != nil {
			return err
		}
		_, wantSig, _ := strings.Cut(vreq.Header.Get("Authorization"), "Signature=")
		if gotSig != wantSig {
			return fmt.Errorf("signature %s, the SDK computes %s (%s)", gotSig, wantSig, vreq.Header.Get("Authorization"))
		}
		return nil
	}
}

// TestHTTPPushAWSSignatureVerified: requests signed with aws4-hmac-sha256
// (Ditto's parameters: double encoding for most services, none and the
// payload hash header for S3) are accepted by an endpoint verifying them
// with AWS's SDK signer.
func TestHTTPPushAWSSignatureVerified(t *testing.T) {
	for _, tc := range []struct {
		name   string
		params map[string]any
		double bool
	}{
		{"sns", map[string]any{"canonicalHeaders": []any{"Host", "x-amz-date", "content-type", "x-custom"}}, true},
		{"s3", map[string]any{"doubleEncode": false, "canonicalHeaders": []any{"host", "x-amz-date"}, "xAmzContentSha256": "INCLUDED"}, false},
		{"unsigned payload", map[string]any{"canonicalHeaders": []any{"host", "x-amz-date"}, "xAmzContentSha256": "unsigned"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, results := signedEndpoint(t, awsVerifier("eu-central-1", tc.name, "AKID", "s3cr3t", tc.double))
			params := map[string]any{"region": "eu-central-1", "service": tc.name, "accessKey": "AKID", "secretKey": "s3cr3t"}
			for k, v := range tc.params {
				params[k] = v
			}
			pushSigned(t, hmacConnection(srv.URL+"/base", "aws4-hmac-sha256", params), results,
				client.Message{Address: "POST:/x", Payload: []byte(`{"a":1}`),
					Headers: map[string]string{"Content-Type": "application/json", "X-Custom": "  a   b ", "http.query": "b=2&a=1&a=0&c=x%20y"}},
				client.Message{Address: "PUT:/things/t%20x/", Payload: []byte("é")},
				client.Message{Address: "GET:", Headers: map[string]string{"http.path": "/"}})
		})
	}
}

// TestHTTPPushAWSDefaultsSignHostOnly: without canonicalHeaders only host
// is signed, as in Ditto; x-amz-date is sent.
func TestHTTPPushAWSDefaultsSignHostOnly(t *testing.T) {
	srv, results := signedEndpoint(t, func(r *http.Request, _ []byte) error {
		if a := r.Header.Get("Authorization"); !strings.Contains(a, ", SignedHeaders=host, Signature=") ||
			!strings.HasPrefix(a, "AWS4-HMAC-SHA256 Credential=AKID/") || !strings.Contains(a, "/us-east-1/sns/aws4_request,") {
			return fmt.Errorf("authorization %q", a)
		}
		if r.Header.Get("X-Amz-Date") == "" || r.Header.Get("X-Amz-Content-Sha256") != "" {
			return fmt.Errorf("headers %v", r.Header)
		}
		return nil
	})
	pushSigned(t, hmacConnection(srv.URL, "aws4-hmac-sha256",
		map[string]any{"region": "us-east-1", "service": "sns", "accessKey": "AKID", "secretKey": "k"}), results,
		client.Message{Address: "POST:/x", Payload: []byte("{}")})
}

// TestHTTPPushAzureMonitorSignatureVerified: az-monitor-2016-04-01 as
// Azure Monitor's data collector API checks it: HMAC-SHA256 with the
// base64-decoded shared key over "VERB\nlength\ncontent-type\nx-ms-date:
// date\nresource", sent as "SharedKey <workspace>:<base64 signature>".
func TestHTTPPushAzureMonitorSignatureVerified(t *testing.T) {
	key := []byte("the workspace key")
	srv, results := signedEndpoint(t, func(r *http.Request, body []byte) error {
		date := r.Header.Get("X-Ms-Date")
		if _, err := time.Parse(http.TimeFormat, date); err != nil {
			return fmt.Errorf("x-ms-date %q: %v", date, err)
		}
		toSign := r.Method + "\n" + strconv.Itoa(len(body)) + "\n" + r.Header.Get("Content-Type") + "\nx-ms-date:" + date + "\n" + r.URL.EscapedPath()
		m := hmac.New(sha256.New, key)
		m.Write([]byte(toSign))
		if want := "SharedKey ws-1:" + base64.StdEncoding.EncodeToString(m.Sum(nil)); r.Header.Get("Authorization") != want {
			return fmt.Errorf("authorization %q, want %q", r.Header.Get("Authorization"), want)
		}
		return nil
	})
	pushSigned(t, hmacConnection(srv.URL, "az-monitor-2016-04-01",
		map[string]any{"workspaceId": "ws-1", "sharedKey": base64.StdEncoding.EncodeToString(key)}), results,
		client.Message{Address: "POST:/api/logs?api-version=2016-04-01", Payload: []byte(`[{"a":1}]`),
			Headers: map[string]string{"Content-Type": "application/json", "Log-Type": "TwinEvent"}},
		client.Message{Address: "POST:/api/logs", Payload: []byte("raw")})
}

// azSASVerifier checks an Azure shared access signature as IoT Hub and
// Service Bus do: sig is HMAC-SHA256 (base64-decoded key) over
// "<url-encoded resource>\n<expiry>", the key name and resource match and
// the expiry lies ahead.
func azSASVerifier(key []byte, keyName, resource string, within time.Duration) func(token string) error {
	return func(token string) error {
		q, err := url.ParseQuery(token)
		if err != nil {
			return err
		}
		if q.Get("skn") != keyName || q.Get("sr") != resource {
			return fmt.Errorf("skn %q sr %q", q.Get("skn"), q.Get("sr"))
		}
		se, err := strconv.ParseInt(q.Get("se"), 10, 64)
		if err != nil || time.Until(time.Unix(se, 0)) <= 0 || time.Until(time.Unix(se, 0)) > within {
			return fmt.Errorf("expiry %q", q.Get("se"))
		}
		m := hmac.New(sha256.New, key)
		m.Write([]byte(url.QueryEscape(resource) + "\n" + q.Get("se")))
		if q.Get("sig") != base64.StdEncoding.EncodeToString(m.Sum(nil)) {
			return errors.New("signature does not match")
		}
		return nil
	}
}

// TestHTTPPushAzureSASLSignatureVerified: az-sasl sends
// "SharedAccessSignature sr=…&sig=…&se=…&skn=…", valid for ttl.
func TestHTTPPushAzureSASLSignatureVerified(t *testing.T) {
	key := []byte("the policy key")
	verify := azSASVerifier(key, "iothubowner", "my-hub.azure-devices.net", 10*time.Minute)
	srv, results := signedEndpoint(t, func(r *http.Request, _ []byte) error {
		token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "SharedAccessSignature ")
		if !ok {
			return fmt.Errorf("authorization %q", r.Header.Get("Authorization"))
		}
		return verify(token)
	})
	pushSigned(t, hmacConnection(srv.URL, "az-sasl", map[string]any{"sharedKeyName": "iothubowner",
		"sharedKey": base64.StdEncoding.EncodeToString(key), "endpoint": "my-hub.azure-devices.net", "ttl": "10m"}), results,
		client.Message{Address: "POST:/twins/t/methods?api-version=2018-06-30", Payload: []byte("{}")})
}

// TestHTTPPushHMACParametersRefused: a missing parameter or a key that is
// not base64 leaves the client misconfigured, naming the problem.
func TestHTTPPushHMACParametersRefused(t *testing.T) {
	for alg, tc := range map[string]struct {
		params map[string]any
		want   string
	}{
		"aws4-hmac-sha256":      {map[string]any{"region": "r", "service": "s", "accessKey": "a"}, "lack the parameter 'secretKey'"},
		"az-monitor-2016-04-01": {map[string]any{"workspaceId": "w", "sharedKey": "not base64!"}, "The shared key is not in Base64 scheme."},
		"az-sasl":               {map[string]any{"sharedKeyName": "n", "sharedKey": "a2V5", "endpoint": "e", "ttl": "ten minutes"}, "'ttl' is not a duration"},
	} {
		_, err := NewFactory(Options{})(client.Env{Connection: hmacConnection("https://h.test:443", alg, tc.params)})
		if !errors.Is(err, client.ErrConfig) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want a configuration error with %q", alg, err, tc.want)
		}
	}
	p := &hmaccommon.Params{Alg: "aws4-hmac-sha256", M: map[string]any{"region": "r", "service": "s", "accessKey": "a", "secretKey": "k", "xAmzContentSha256": "SOMETIMES"}}
	newAWSSigner(p)
	if p.Err == nil || !strings.Contains(p.Err.Error(), "'INCLUDED', 'EXCLUDED', 'UNSIGNED'") {
		t.Errorf("xAmzContentSha256 SOMETIMES: %v", p.Err)
	}
}

// FuzzAWSCanonicalForm: any request URI gives a canonical URI and query of
// unreserved characters, escapes and separators only.
func FuzzAWSCanonicalForm(f *testing.F) {
	f.Add("/a%20b/c/?x=1&y=%3D&x=0")
	f.Add("//?=&&a")
	s := &awsSigner{doubleEncode: true}
	f.Fuzz(func(t *testing.T, raw string) {
		u, err := url.ParseRequestURI(raw)
		if err != nil {
			return
		}
		for _, double := range []bool{true, false} {
			s.doubleEncode = double
			out := s.canonicalURI(u) + canonicalQuery(u.RawQuery)
			if strings.Trim(out, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~%/=&") != "" {
				t.Fatalf("%q: canonical form %q", raw, out)
			}
		}
	})
}
