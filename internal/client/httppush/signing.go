package httppush

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
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
	"github.com/dittoconn/dittoconn/internal/client/hmaccommon"
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
	p := hmaccommon.NewParams(cr)
	var s signer
	switch cr.Algorithm {
	case "aws4-hmac-sha256":
		s = newAWSSigner(p)
	case "az-monitor-2016-04-01":
		s = &azMonitorSigner{workspaceID: p.Str("workspaceId", true), key: p.Base64Key("sharedKey",
			"Failed to sign HTTP request to Azure Monitor.")}
	case "az-sasl":
		s = azSASLSigner{hmaccommon.NewAzSASL(p)}
	default:
		return nil, fmt.Errorf("%w: unsupported HMAC algorithm %q", client.ErrConfig, cr.Algorithm)
	}
	if p.Err != nil {
		return nil, fmt.Errorf("%w: %v", client.ErrConfig, p.Err)
	}
	return s, nil
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

func newAWSSigner(p *hmaccommon.Params) *awsSigner {
	s := &awsSigner{region: p.Str("region", true), service: p.Str("service", true),
		accessKey: p.Str("accessKey", true), secretKey: p.Str("secretKey", true), doubleEncode: true, contentSHA: "EXCLUDED"}
	if v, ok := p.M["doubleEncode"]; ok {
		b, isBool := v.(bool)
		if !isBool {
			p.Fail("the HMAC credentials parameter 'doubleEncode' must be a boolean")
		}
		s.doubleEncode = b
	}
	names := []string{"host"}
	if v, ok := p.M["canonicalHeaders"]; ok {
		arr, isArr := v.([]any)
		if !isArr {
			p.Fail("the HMAC credentials parameter 'canonicalHeaders' must be an array of strings")
		}
		names = names[:0]
		for _, a := range arr {
			n, isStr := a.(string)
			if !isStr {
				p.Fail("the HMAC credentials parameter 'canonicalHeaders' must be an array of strings")
			}
			names = append(names, n)
		}
	}
	if v := p.Str("xAmzContentSha256", false); v != "" {
		switch up := strings.ToUpper(v); up {
		case "INCLUDED", "EXCLUDED", "UNSIGNED":
			s.contentSHA = up
		default:
			p.Fail("The HMAC credentials parameter 'xAmzContentSha256' must have one of the following as value: 'INCLUDED', 'EXCLUDED', 'UNSIGNED'.")
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
	key := hmaccommon.HMACSHA256([]byte("AWS4"+s.secretKey), now.Format("20060102"))
	for _, part := range []string{s.region, s.service, "aws4_request"} {
		key = hmaccommon.HMACSHA256(key, part)
	}
	signature := hex.EncodeToString(hmaccommon.HMACSHA256(key, toSign))
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
		return hmaccommon.EncodeAllButUnreserved(path, '/')
	}
	var segs []string
	for _, seg := range strings.Split(path, "/") {
		if seg != "" {
			segs = append(segs, hmaccommon.EncodeAllButUnreserved(hmaccommon.EncodeAllButUnreserved(seg)))
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
			parts = append(parts, hmaccommon.EncodeAllButUnreserved(k)+"="+hmaccommon.EncodeAllButUnreserved(strings.ReplaceAll(v, "=", "%3D")))
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
	req.Header.Set("Authorization", "SharedKey "+s.workspaceID+":"+base64.StdEncoding.EncodeToString(hmaccommon.HMACSHA256(s.key, toSign)))
	return nil
}

// --- az-sasl ---

// azSASLSigner sends the shared access signature as Authorization.
type azSASLSigner struct{ *hmaccommon.AzSASL }

func (s azSASLSigner) sign(req *http.Request, _ []byte, now time.Time) error {
	req.Header.Set("Authorization", "SharedAccessSignature "+s.Token(now))
	return nil
}
