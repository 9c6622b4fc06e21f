package httppush

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dittoconn/dittoconn/internal/client"
	"github.com/dittoconn/dittoconn/internal/model"
)

// HMAC request signing (credentials type "hmac"), with Ditto's algorithms
// and parameters: aws4-hmac-sha256 (AWS Signature Version 4),
// az-monitor-2016-04-01 (Azure Monitor's data collector SharedKey) and
// az-sasl (an Azure shared access signature). The algorithm was checked
// against the service's list when the connection was stored; its
// parameters are read when the client is built, as Ditto reads them when
// its client starts, so a missing one makes the client misconfigured.

// signer adds the authentication of one request just before it is sent;
// body is exactly what the request carries. It must be safe for
// concurrent use.
type signer interface {
	sign(req *http.Request, body []byte, now time.Time) error
}

// newSigner is the signer of cr's algorithm (cr.Type "hmac").
func newSigner(cr *model.Credentials) (signer, error) {
	params := map[string]any{}
	if len(cr.Parameters) > 0 {
		if err := json.Unmarshal(cr.Parameters, &params); err != nil {
			return nil, fmt.Errorf("%w: hmac parameters are not a JSON object", client.ErrConfig)
		}
	}
	p := hmacParams{alg: cr.Algorithm, m: params}
	var s signer
	switch cr.Algorithm {
	case "aws4-hmac-sha256":
		s = newAWSSigner(&p)
	case "az-monitor-2016-04-01":
		s = &azMonitorSigner{workspaceID: p.str("workspaceId", true), key: p.base64Key("sharedKey",
			"Failed to sign HTTP request to Azure Monitor.")}
	case "az-sasl":
		s = newAzSASL(&p)
	default:
		return nil, fmt.Errorf("%w: unsupported HMAC algorithm %q", client.ErrConfig, cr.Algorithm)
	}
	if p.err != nil {
		return nil, fmt.Errorf("%w: %v", client.ErrConfig, p.err)
	}
	return s, nil
}

// hmacParams reads the parameters of one algorithm, keeping the first
// problem.
type hmacParams struct {
	alg string
	m   map[string]any
	err error
}

func (p *hmacParams) fail(format string, args ...any) {
	if p.err == nil {
		p.err = fmt.Errorf(format, args...)
	}
}

func (p *hmacParams) str(name string, required bool) string {
	v, ok := p.m[name]
	if !ok || v == nil {
		if required {
			p.fail("the HMAC credentials of algorithm %s lack the parameter '%s'", p.alg, name)
		}
		return ""
	}
	s, ok := v.(string)
	if !ok {
		p.fail("the HMAC credentials parameter '%s' must be a string", name)
	}
	return s
}

func (p *hmacParams) base64Key(name, what string) []byte {
	s := p.str(name, true)
	key, err := base64.StdEncoding.DecodeString(s)
	if err != nil && p.err == nil {
		p.fail("%s The shared key is not in Base64 scheme.", what)
	}
	return key
}

func hmacSHA256(key []byte, data string) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(data))
	return h.Sum(nil)
}

// encodeAllButUnreserved percent-encodes every byte of s's UTF-8 but the
// unreserved characters of RFC 3986 (upper-case hex), as Ditto's
// UriEncoding.encodeAllButUnreserved does; keep lists more bytes to leave.
func encodeAllButUnreserved(s string, keep ...byte) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~' ||
			slices.Contains(keep, c) {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, "%%%02X", c)
	}
	return b.String()
}

// signedHost is the host the server sees: the Host header without the
// scheme's default port.
func signedHost(req *http.Request) string {
	host := req.Host
	if host == "" {
		host = req.URL.Host
	}
	if h, port, err := net.SplitHostPort(host); err == nil &&
		(port == "443" && req.URL.Scheme == "https" || port == "80" && req.URL.Scheme == "http") {
		host = h
		if strings.Contains(h, ":") {
			host = "[" + h + "]"
		}
	}
	return host
}

// --- aws4-hmac-sha256 ---

type awsSigner struct {
	region, service, accessKey, secretKey string
	doubleEncode                          bool
	headers                               []string // lower case, sorted, unique
	contentSHA                            string   // EXCLUDED, INCLUDED or UNSIGNED
}

func newAWSSigner(p *hmacParams) *awsSigner {
	s := &awsSigner{region: p.str("region", true), service: p.str("service", true),
		accessKey: p.str("accessKey", true), secretKey: p.str("secretKey", true), doubleEncode: true, contentSHA: "EXCLUDED"}
	if v, ok := p.m["doubleEncode"]; ok {
		b, isBool := v.(bool)
		if !isBool {
			p.fail("the HMAC credentials parameter 'doubleEncode' must be a boolean")
		}
		s.doubleEncode = b
	}
	names := []string{"host"}
	if v, ok := p.m["canonicalHeaders"]; ok {
		arr, isArr := v.([]any)
		if !isArr {
			p.fail("the HMAC credentials parameter 'canonicalHeaders' must be an array of strings")
		}
		names = names[:0]
		for _, a := range arr {
			n, isStr := a.(string)
			if !isStr {
				p.fail("the HMAC credentials parameter 'canonicalHeaders' must be an array of strings")
			}
			names = append(names, n)
		}
	}
	if v := p.str("xAmzContentSha256", false); v != "" {
		switch up := strings.ToUpper(v); up {
		case "INCLUDED", "EXCLUDED", "UNSIGNED":
			s.contentSHA = up
		default:
			p.fail("The HMAC credentials parameter 'xAmzContentSha256' must have one of the following as value: 'INCLUDED', 'EXCLUDED', 'UNSIGNED'.")
		}
	}
	if s.contentSHA != "EXCLUDED" {
		names = append(names, "x-amz-content-sha256")
	}
	for _, n := range names {
		if n = strings.ToLower(strings.TrimSpace(n)); n != "" {
			s.headers = append(s.headers, n)
		}
	}
	slices.Sort(s.headers)
	s.headers = slices.Compact(s.headers)
	return s
}

const awsDateFormat = "20060102T150405Z"

func (s *awsSigner) sign(req *http.Request, body []byte, now time.Time) error {
	now = now.UTC()
	date := now.Format(awsDateFormat)
	payloadHash := "UNSIGNED-PAYLOAD"
	if s.contentSHA != "UNSIGNED" {
		sum := sha256.Sum256(body)
		payloadHash = hex.EncodeToString(sum[:])
	}
	scope := strings.Join([]string{now.Format("20060102"), s.region, s.service, "aws4_request"}, "/")
	signed := strings.Join(s.headers, ";")
	canonical := strings.Join([]string{req.Method, s.canonicalURI(req.URL), canonicalQuery(req.URL.RawQuery),
		s.canonicalHeaders(req, date, payloadHash), signed, payloadHash}, "\n")
	sum := sha256.Sum256([]byte(canonical))
	toSign := strings.Join([]string{"AWS4-HMAC-SHA256", date, scope, hex.EncodeToString(sum[:])}, "\n")
	key := hmacSHA256([]byte("AWS4"+s.secretKey), now.Format("20060102"))
	for _, part := range []string{s.region, s.service, "aws4_request"} {
		key = hmacSHA256(key, part)
	}
	signature := hex.EncodeToString(hmacSHA256(key, toSign))
	req.Header.Set("X-Amz-Date", date)
	if s.contentSHA != "EXCLUDED" {
		req.Header.Set("X-Amz-Content-Sha256", payloadHash)
	}
	// unquoted parameters: AWS does not accept quoted ones
	req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential="+s.accessKey+"/"+scope+
		", SignedHeaders="+signed+", Signature="+signature)
	return nil
}

// canonicalURI: with doubleEncode (all services but S3) the non-empty
// decoded path segments encoded twice, else the decoded path encoded once.
func (s *awsSigner) canonicalURI(u *url.URL) string {
	path := u.Path
	if !s.doubleEncode {
		if path == "" {
			return "/"
		}
		return encodeAllButUnreserved(path, '/')
	}
	var segs []string
	for _, seg := range strings.Split(path, "/") {
		if seg != "" {
			segs = append(segs, encodeAllButUnreserved(encodeAllButUnreserved(seg)))
		}
	}
	if len(segs) == 0 {
		return "/"
	}
	out := "/" + strings.Join(segs, "/")
	if strings.HasSuffix(path, "/") {
		out += "/"
	}
	return out
}

// canonicalQuery: parameters sorted by name, values by code point, '=' in
// values encoded twice, everything else but unreserved characters once.
func canonicalQuery(raw string) string {
	q, _ := url.ParseQuery(raw) // what cannot be parsed is left out, as the URI parser would
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var parts []string
	for _, k := range keys {
		vals := slices.Clone(q[k])
		slices.Sort(vals)
		for _, v := range vals {
			parts = append(parts, encodeAllButUnreserved(k)+"="+encodeAllButUnreserved(strings.ReplaceAll(v, "=", "%3D")))
		}
	}
	return strings.Join(parts, "&")
}

var spaces = regexp.MustCompile(`\s+`)

func (s *awsSigner) canonicalHeaders(req *http.Request, date, payloadHash string) string {
	var b strings.Builder
	for _, name := range s.headers {
		b.WriteString(name)
		b.WriteByte(':')
		switch name {
		case "host":
			b.WriteString(signedHost(req))
		case "x-amz-date":
			b.WriteString(date)
		case "x-amz-content-sha256":
			b.WriteString(payloadHash)
		default:
			vals := req.Header.Values(name)
			for i, v := range vals {
				if i > 0 {
					b.WriteByte(',')
				}
				b.WriteString(spaces.ReplaceAllString(strings.TrimSpace(v), " "))
			}
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// --- az-monitor-2016-04-01 ---

type azMonitorSigner struct {
	workspaceID string
	key         []byte
}

func (s *azMonitorSigner) sign(req *http.Request, body []byte, now time.Time) error {
	date := now.UTC().Format(http.TimeFormat)
	contentType := req.Header.Get("Content-Type")
	if contentType == "" {
		// what the request is sent with must be what was signed
		contentType = "application/octet-stream"
		req.Header.Set("Content-Type", contentType)
	}
	path := req.URL.EscapedPath()
	if path == "" {
		path = "/"
	}
	toSign := strings.Join([]string{req.Method, strconv.Itoa(len(body)), contentType, "x-ms-date:" + date, path}, "\n")
	req.Header.Set("X-Ms-Date", date)
	req.Header.Set("Authorization", "SharedKey "+s.workspaceID+":"+base64.StdEncoding.EncodeToString(hmacSHA256(s.key, toSign)))
	return nil
}

// --- az-sasl ---

// azSASL makes Azure shared access signatures (IoT Hub, Service Bus): for
// HTTP the Authorization header, for AMQP 1.0 the SASL PLAIN username and
// password (AMQPCredentials).
type azSASL struct {
	keyName, endpoint string
	key               []byte
	ttl               time.Duration
}

// defaultSASTTL is Ditto's default lifetime of a signature.
const defaultSASTTL = 7 * 24 * time.Hour

func newAzSASL(p *hmacParams) *azSASL {
	s := &azSASL{keyName: p.str("sharedKeyName", true), endpoint: p.str("endpoint", true), ttl: defaultSASTTL}
	s.key = p.base64Key("sharedKey", "Failed to initiate Azure SASL signing algorithm.")
	if v := p.str("ttl", false); v != "" {
		d, ok := dittoDuration(v)
		if !ok {
			p.fail("the HMAC credentials parameter 'ttl' is not a duration: %s", v)
		}
		s.ttl = d
	}
	return s
}

// token is the signature valid from now for the ttl.
func (s *azSASL) token(now time.Time) string {
	expiry := now.Add(s.ttl).Unix()
	sr := encodeAllButUnreserved(s.endpoint)
	sig := encodeAllButUnreserved(base64.StdEncoding.EncodeToString(hmacSHA256(s.key, sr+"\n"+strconv.FormatInt(expiry, 10))))
	return fmt.Sprintf("sr=%s&sig=%s&se=%d&skn=%s", sr, sig, expiry, s.keyName)
}

func (s *azSASL) sign(req *http.Request, _ []byte, now time.Time) error {
	req.Header.Set("Authorization", "SharedAccessSignature "+s.token(now))
	return nil
}

// AMQPCredentials are the SASL PLAIN username and password of an az-sasl
// signature made at now, as Ditto's AMQP 1.0 client logs in to Azure:
// "<sharedKeyName>@sas.root.<endpoint without .azure-devices.net>" and
// "SharedAccessSignature <token>".
func (s *azSASL) AMQPCredentials(now time.Time) (user, pass string) {
	return s.keyName + "@sas.root." + strings.TrimSuffix(s.endpoint, ".azure-devices.net"),
		"SharedAccessSignature " + s.token(now)
}

var dittoDurationPattern = regexp.MustCompile(`^([+-]?\d+)(ms|s|m|h|d|w|mo|y)?$`)

// dittoDuration parses Ditto's duration strings (DittoDuration): an
// integer with a unit, seconds without; months and years count 30 and 365
// days.
func dittoDuration(s string) (time.Duration, bool) {
	m := dittoDurationPattern.FindStringSubmatch(strings.TrimSpace(s))
	if m == nil {
		return 0, false
	}
	n, err := strconv.ParseInt(m[1], 10, 64)
	if err != nil || n < 0 {
		return 0, false
	}
	unit := map[string]time.Duration{"": time.Second, "s": time.Second, "ms": time.Millisecond, "m": time.Minute,
		"h": time.Hour, "d": 24 * time.Hour, "w": 7 * 24 * time.Hour, "mo": 30 * 24 * time.Hour, "y": 365 * 24 * time.Hour}[m[2]]
	return time.Duration(n) * unit, true
}
