package fieldcrypto

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Ditto decides how to treat a value by handing it to new java.net.URI(v):
//
//   - parse error, or no scheme          -> the whole value is (de)crypted
//   - scheme, raw user-info "user:pw..." -> only the part after the first ':'
//   - scheme, no user-info or no ':'     -> the value is left alone
//
// To make the same decision for every input, this file re-implements the
// parts of the JDK's RFC 2396 (+ RFC 2732) parser that can change the
// outcome: where it fails, whether there is a scheme, and when an authority
// is server-based (has user-info) rather than registry-based (has none).
// Positions are byte offsets into the UTF-8 string; every delimiter the
// grammar looks for is ASCII, so they line up with Java's char offsets.

type valueKind int

const (
	kindWhole    valueKind = iota // not a URI with a scheme: the whole value
	kindKeep                      // URI without "user:password": untouched
	kindPassword                  // URI with "user:password": the password only
)

// classify returns how Ditto treats v and, for kindPassword, the raw
// user-info and its offset in v.
func classify(v string) (kind valueKind, userInfo string, at int) {
	if strings.IndexByte(v, ':') < 0 {
		// No scheme without a ':' (encrypted values never have one), so
		// the parse cannot change the answer.
		return kindWhole, "", -1
	}
	u, ok := parseJavaURI(v)
	if !ok || !u.hasScheme {
		return kindWhole, "", -1
	}
	if !u.hasUserInfo || strings.IndexByte(u.userInfo, ':') < 0 {
		return kindKeep, "", -1
	}
	return kindPassword, u.userInfo, u.userInfoAt
}

// uriPassword is the part of the raw user-info after its first ':'.
func uriPassword(userInfo string) string {
	return userInfo[strings.IndexByte(userInfo, ':')+1:]
}

// replacePassword rebuilds v with newPassword the way Ditto does, which is
// text surgery rather than URI rebuilding: everything before the first
// occurrence of the user-info text, then "user:", the new password, and
// everything from the first '@'. For ordinary URIs that is the obvious
// result; for odd ones (user-info "cp:" in "tcp://cp:@h") the first
// occurrence is inside the scheme and parts of the value are lost — Ditto
// writes that, so we do too.
func replacePassword(v, userInfo, newPassword string) string {
	start := strings.Index(v, userInfo)
	user := userInfo[:strings.IndexByte(userInfo, ':')+1]
	return v[:start] + user + newPassword + v[strings.IndexByte(v, '@'):]
}

// javaURI holds what the decision needs from a parse.
type javaURI struct {
	hasScheme   bool
	hasUserInfo bool
	userInfo    string // raw (still percent-encoded)
	userInfoAt  int
}

// uriSyntaxError aborts a parse; it never leaves parseJavaURI.
type uriSyntaxError struct{}

// parseJavaURI reports whether new java.net.URI(s) succeeds, and its parts.
func parseJavaURI(s string) (u javaURI, ok bool) {
	p := uriParser{s: s}
	defer func() {
		if r := recover(); r != nil {
			if _, is := r.(uriSyntaxError); !is {
				panic(r)
			}
			u, ok = javaURI{}, false
		}
	}()
	p.parse()
	return p.u, true
}

// charClass is a set of ASCII bytes; escaped additionally admits %XX
// triplets and visible non-ASCII characters, as the JDK's classes do.
type charClass struct {
	set     [2]uint64
	escaped bool
}

func chars(s string) charClass {
	var c charClass
	for i := 0; i < len(s); i++ {
		c.set[s[i]>>6] |= 1 << (s[i] & 63)
	}
	return c
}

func (c charClass) or(o charClass) charClass {
	return charClass{set: [2]uint64{c.set[0] | o.set[0], c.set[1] | o.set[1]}, escaped: c.escaped || o.escaped}
}

func (c charClass) with(escaped bool) charClass { c.escaped = escaped; return c }

func (c charClass) has(b byte) bool {
	// NUL is never part of any class.
	return b != 0 && b < 128 && c.set[b>>6]&(1<<(b&63)) != 0
}

// The RFC 2396 classes (with RFC 2732's brackets in "reserved") that the
// JDK parser uses.
var (
	clDigit      = chars("0123456789")
	clAlpha      = chars("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
	clAlphanum   = clAlpha.or(clDigit)
	clHex        = clDigit.or(chars("ABCDEFabcdef"))
	clUnreserved = clAlphanum.or(chars("-_.!~*'()"))
	clReserved   = chars(";/?:@&=+$,[]")
	clURIC       = clReserved.or(clUnreserved).with(true)
	clPchar      = clUnreserved.or(chars(":@&=+$,")).with(true)
	clPath       = clPchar.or(chars(";/"))
	clUserInfo   = clUnreserved.or(chars(";:&=+$,")).with(true)
	clRegName    = clUnreserved.or(chars("$,;:@&=+")).with(true)
	clServer     = clUserInfo.or(clAlphanum).or(chars("-.:@[]"))
	// With an IPv6 literal present, '%' introduces a scope id, not an escape.
	clServerPct = clServer.or(chars("%"))
	clScheme    = clAlpha.or(clDigit).or(chars("+-."))
	clScopeID   = clAlphanum.or(chars("_."))
	clDigitDot  = clDigit.or(chars("."))
	clHostLabel = clAlphanum.or(chars("-"))
)

// visibleNonASCII is the JDK's "other" category: beyond ASCII, not a space
// separator (Zs, Zl, Zp) and not an ISO control (U+0080..U+009F).
func visibleNonASCII(r rune) bool {
	if r <= 0x9f {
		return false
	}
	return !unicode.In(r, unicode.Zs, unicode.Zl, unicode.Zp)
}

type uriParser struct {
	s         string
	u         javaURI
	ipv6Bytes int
}

func (p *uriParser) fail() { panic(uriSyntaxError{}) }

func (p *uriParser) at(i, end int, c byte) bool { return i < end && p.s[i] == c }

func (p *uriParser) atStr(i, end int, t string) bool {
	return end-i >= len(t) && p.s[i:i+len(t)] == t
}

// scanUntil returns the offset of the first byte of stop in [i, end), or
// end; -1 if a byte of bad comes first.
func (p *uriParser) scanUntil(i, end int, bad, stop string) int {
	// bad and stop are a few bytes: plain loops beat IndexByte calls.
	for ; i < end; i++ {
		c := p.s[i]
		for j := 0; j < len(bad); j++ {
			if bad[j] == c {
				return -1
			}
		}
		for j := 0; j < len(stop); j++ {
			if stop[j] == c {
				return i
			}
		}
	}
	return i
}

func (p *uriParser) scanTo(i, end int, stop string) int { return p.scanUntil(i, end, "", stop) }

func (p *uriParser) scanByteIf(i, end int, c byte) int {
	if p.at(i, end, c) {
		return i + 1
	}
	return i
}

// scanClass returns the end of the run of class members starting at i. A
// '%' not followed by two hex digits in an escaping class is a syntax error.
func (p *uriParser) scanClass(i, end int, c charClass) int {
	for i < end {
		b := p.s[i]
		if c.has(b) {
			i++
			continue
		}
		if !c.escaped {
			break
		}
		if b == '%' {
			if i+3 <= end && clHex.has(p.s[i+1]) && clHex.has(p.s[i+2]) {
				i += 3
				continue
			}
			p.fail()
		}
		if b >= utf8.RuneSelf {
			r, size := utf8.DecodeRuneInString(p.s[i:end])
			if visibleNonASCII(r) {
				i += size
				continue
			}
		}
		break
	}
	return i
}

func (p *uriParser) check(i, end int, c charClass) {
	if p.scanClass(i, end, c) < end {
		p.fail()
	}
}

// parse: [scheme:]scheme-specific-part[#fragment]
func (p *uriParser) parse() {
	n := len(p.s)
	i := p.scanUntil(0, n, "/?#", ":")
	if i >= 0 && p.at(i, n, ':') {
		if i == 0 {
			p.fail()
		}
		p.check(0, 1, clAlpha)
		p.check(1, i, clScheme)
		p.u.hasScheme = true
		i++
		if p.at(i, n, '/') {
			i = p.hierarchical(i, n)
		} else {
			// Opaque (mailto:x, abc:def): no user-info by definition.
			q := p.scanTo(i, n, "#")
			if q <= i {
				p.fail()
			}
			p.check(i, q, clURIC)
			i = q
		}
	} else {
		i = p.hierarchical(0, n)
	}
	if p.at(i, n, '#') {
		p.check(i+1, n, clURIC)
		i = n
	}
	if i < n {
		p.fail()
	}
}

// hierarchical: [//authority]path[?query]. An empty authority is accepted
// when something follows it (file:///x), an empty path always.
func (p *uriParser) hierarchical(i, n int) int {
	if p.at(i, n, '/') && p.at(i+1, n, '/') {
		i += 2
		q := p.scanTo(i, n, "/?#")
		if q > i {
			i = p.authority(i, q)
		} else if q >= n {
			p.fail()
		}
	}
	q := p.scanTo(i, n, "?#")
	p.check(i, q, clPath)
	i = q
	if p.at(i, n, '?') {
		i++
		q = p.scanTo(i, n, "#")
		p.check(i, q, clURIC)
		i = q
	}
	return i
}

// authority: server-based if the whole of it parses as
// [user-info@]host[:port]; otherwise registry-based (no user-info) if its
// characters allow that; otherwise a syntax error.
func (p *uriParser) authority(start, n int) int {
	server := clServer
	if p.scanTo(start, n, "]") > start {
		server = clServerPct
	}
	serverChars := p.scanClass(start, n, server) == n
	regChars := p.scanClass(start, n, clRegName) == n
	if serverChars && p.tryServer(start, n) {
		return n
	}
	if regChars {
		p.u.hasUserInfo, p.u.userInfo, p.u.userInfoAt = false, "", 0
		return n
	}
	p.fail()
	return n
}

// tryServer reports whether [start, n) is exactly [user-info@]host[:port].
func (p *uriParser) tryServer(start, n int) (ok bool) {
	defer func() {
		if r := recover(); r != nil {
			if _, is := r.(uriSyntaxError); !is {
				panic(r)
			}
			ok = false
		}
	}()
	i := start
	// User-info ends at the first '@'; a later '@' makes the host invalid.
	if q := p.scanTo(i, n, "@"); p.at(q, n, '@') {
		p.check(i, q, clUserInfo)
		p.u.hasUserInfo, p.u.userInfo, p.u.userInfoAt = true, p.s[i:q], i
		i = q + 1
	}
	if p.at(i, n, '[') {
		i++
		q := p.scanUntil(i, n, "/?#", "]")
		if q <= i || !p.at(q, n, ']') {
			p.fail()
		}
		if r := p.scanTo(i, q, "%"); r > i {
			p.ipv6(i, r)
			if r+1 == q {
				p.fail() // scope id expected
			}
			p.check(r+1, q, clScopeID)
		} else {
			p.ipv6(i, q)
		}
		i = q + 1
	} else {
		q := p.ipv4Prefix(i, n)
		if q <= i {
			q = p.hostname(i, n)
		}
		i = q
	}
	if p.at(i, n, ':') {
		i++
		if q := p.scanTo(i, n, "/"); q > i {
			p.check(i, q, clDigit)
			// The port must fit a Java int.
			if _, err := strconv.ParseInt(p.s[i:q], 10, 32); err != nil {
				p.fail()
			}
			i = q
		}
	}
	if i < n {
		p.fail()
	}
	return true
}

// scanOctet scans a decimal number 0..255 (leading zeros allowed); it
// returns i when the digits there do not form one.
func (p *uriParser) scanOctet(i, n int) int {
	q := p.scanClass(i, n, clDigit)
	if q <= i {
		return q
	}
	z := i
	for z < q && p.s[z] == '0' {
		z++
	}
	switch sig := q - z; {
	case sig < 3:
		return q
	case sig > 3:
		return i
	}
	if v, _ := strconv.Atoi(p.s[z:q]); v > 255 {
		return i
	}
	return q
}

// scanIPv4 matches a dotted quad covering the whole digit-and-dot run at i
// (and, when strict, the whole of [i, n)). Without strict it returns -1
// when there is none; with strict that is a syntax error.
func (p *uriParser) scanIPv4(i, n int, strict bool) int {
	m := p.scanClass(i, n, clDigitDot)
	if m <= i || (strict && m != n) {
		return -1
	}
	for part := 0; ; part++ {
		q := p.scanOctet(i, m)
		if q <= i {
			break
		}
		i = q
		if part == 3 {
			if q < m {
				break
			}
			return q
		}
		if q = p.scanByteIf(i, m, '.'); q <= i {
			break
		}
		i = q
	}
	if strict {
		p.fail()
	}
	return -1
}

// ipv4Prefix: an IPv4 host, possibly followed by ":port"; -1 if none.
func (p *uriParser) ipv4Prefix(i, n int) int {
	q := p.scanIPv4(i, n, false)
	if q == -1 {
		return -1
	}
	if q > i && q < n && p.s[q] != ':' {
		return -1
	}
	return q
}

func (p *uriParser) takeIPv4(i, n int) int {
	q := p.scanIPv4(i, n, true)
	if q <= i {
		p.fail()
	}
	return q
}

// hostname: dot-separated labels of letters, digits and inner dashes, the
// last one starting with a letter when there are several; it must end at
// the end of the authority or at ':'.
func (p *uriParser) hostname(start, n int) int {
	i, last := start, -1
	for {
		q := p.scanClass(i, n, clAlphanum)
		if q <= i {
			break
		}
		last, i = i, q
		if q = p.scanClass(i, n, clHostLabel); q > i {
			if p.s[q-1] == '-' {
				p.fail()
			}
			i = q
		}
		if q = p.scanByteIf(i, n, '.'); q <= i {
			break
		}
		i = q
		if i >= n {
			break
		}
	}
	if i < n && !p.at(i, n, ':') {
		p.fail()
	}
	if last < 0 {
		p.fail()
	}
	if last > start && !clAlpha.has(p.s[last]) {
		p.fail()
	}
	return i
}

// ipv6 checks an RFC 2373 address (as revised for "::a.b.c.d") filling
// exactly [start, n): 16 bytes without "::", fewer with it.
func (p *uriParser) ipv6(start, n int) {
	i, compressed := start, false
	if q := p.hexSeq(i, n); q > i {
		i = q
		if p.atStr(i, n, "::") {
			compressed = true
			i = p.hexPost(i+2, n)
		} else if p.at(i, n, ':') {
			i = p.takeIPv4(i+1, n)
			p.ipv6Bytes += 4
		}
	} else if p.atStr(i, n, "::") {
		compressed = true
		i = p.hexPost(i+2, n)
	}
	if i < n || p.ipv6Bytes > 16 ||
		(!compressed && p.ipv6Bytes < 16) || (compressed && p.ipv6Bytes == 16) {
		p.fail()
	}
}

func (p *uriParser) hexPost(i, n int) int {
	if i == n {
		return i
	}
	if q := p.hexSeq(i, n); q > i {
		i = q
		if p.at(i, n, ':') {
			i = p.takeIPv4(i+1, n)
			p.ipv6Bytes += 4
		}
		return i
	}
	i = p.takeIPv4(i, n)
	p.ipv6Bytes += 4
	return i
}

// hexSeq scans hex4 *(":" hex4), stopping before "::" or an embedded IPv4
// address; -1 if there is none.
func (p *uriParser) hexSeq(i, n int) int {
	q := p.scanClass(i, n, clHex)
	if q <= i || p.at(q, n, '.') {
		return -1
	}
	if q > i+4 {
		p.fail()
	}
	p.ipv6Bytes += 2
	i = q
	for i < n && p.at(i, n, ':') && !p.at(i+1, n, ':') {
		i++
		q = p.scanClass(i, n, clHex)
		if q <= i {
			p.fail()
		}
		if p.at(q, n, '.') {
			i--
			break
		}
		if q > i+4 {
			p.fail()
		}
		p.ipv6Bytes += 2
		i = q
	}
	return i
}
