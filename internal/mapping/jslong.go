package mapping

// jsLong is dittoconn's own implementation of the part of the long.js API
// (dcodeIO.Long, version 3.2.0 as Ditto bundles it) that mapping scripts
// use, installed when a JavaScript mapping has loadLongJS. Ditto ships the
// third-party library itself; dittoconn does not copy it: this is written
// against the library's documented API, 64-bit arithmetic done on BigInt.
// docs/COMPATIBILITY.md lists what is covered.
//
// A Long is {low, high, unsigned}: two signed 32-bit halves and a flag,
// as in long.js, so scripts that read .low/.high see the same numbers.
const jsLong = `
(function (g) {
  var TWO32 = 4294967296;
  function Long(low, high, unsigned) {
    this.low = low | 0;
    this.high = high | 0;
    this.unsigned = !!unsigned;
  }
  Object.defineProperty(Long.prototype, '__isLong__', { value: true, enumerable: false, configurable: false });
  function isLong(o) { return (o && o.__isLong__) === true; }
  // bits: the 64-bit pattern as a BigInt in [0, 2^64).
  function bits(l) { return (BigInt(l.high >>> 0) << 32n) | BigInt(l.low >>> 0); }
  // value: the number the Long stands for, under its own signedness.
  function value(l) { return l.unsigned ? bits(l) : BigInt.asIntN(64, bits(l)); }
  function fromBig(b, unsigned) {
    b = BigInt.asUintN(64, b);
    return new Long(Number(b & 0xffffffffn), Number(b >> 32n), unsigned);
  }
  function fromBits(low, high, unsigned) { return new Long(low, high, unsigned); }
  function fromInt(v, unsigned) {
    if (unsigned) { v = v >>> 0; return new Long(v, (v | 0) < 0 ? -1 : 0, true); }
    v = v | 0;
    return new Long(v, v < 0 ? -1 : 0, false);
  }
  function fromNumber(v, unsigned) {
    if (typeof v !== 'number' || !isFinite(v)) { return unsigned ? UZERO : ZERO; }
    v = Math.trunc(v);
    if (unsigned) {
      if (v < 0) { return UZERO; }
      if (v >= 18446744073709551616) { return MAX_UNSIGNED_VALUE; }
    } else {
      if (v <= -9223372036854775808) { return MIN_VALUE; }
      if (v + 1 >= 9223372036854775808) { return MAX_VALUE; }
    }
    return fromBig(BigInt(v), unsigned);
  }
  var DIGITS = '0123456789abcdefghijklmnopqrstuvwxyz';
  function fromString(str, unsigned, radix) {
    if (typeof str !== 'string' || str.length === 0) { throw Error('empty string'); }
    if (str === 'NaN' || str === 'Infinity' || str === '+Infinity' || str === '-Infinity') { return ZERO; }
    if (typeof unsigned === 'number') { radix = unsigned; unsigned = false; } else { unsigned = !!unsigned; }
    radix = radix || 10;
    if (radix < 2 || radix > 36) { throw RangeError('radix'); }
    var neg = false, i = 0;
    if (str.charAt(0) === '-') {
      if (str.length === 1) { throw Error('empty string'); }
      neg = true; i = 1;
    }
    if (str.indexOf('-', i) >= 0) { throw Error('interior hyphen'); }
    var r = BigInt(radix), acc = 0n;
    for (; i < str.length; i++) {
      var d = DIGITS.indexOf(str.charAt(i).toLowerCase());
      if (d < 0 || d >= radix) { break; } // as parseInt: stop at the first non-digit
      acc = BigInt.asUintN(64, acc * r + BigInt(d));
    }
    return fromBig(neg ? -acc : acc, unsigned);
  }
  function fromValue(v) {
    if (isLong(v)) { return v; }
    if (typeof v === 'number') { return fromNumber(v); }
    if (typeof v === 'string') { return fromString(v); }
    return new Long(v.low, v.high, v.unsigned);
  }
  var ZERO = fromInt(0), UZERO = fromInt(0, true), ONE = fromInt(1), UONE = fromInt(1, true), NEG_ONE = fromInt(-1);
  var MAX_VALUE = new Long(-1, 0x7fffffff, false), MAX_UNSIGNED_VALUE = new Long(-1, -1, true), MIN_VALUE = new Long(0, -2147483648, false);

  var P = Long.prototype;
  function arg(o) { return isLong(o) ? o : fromValue(o); }
  function shiftBits(n) { return (isLong(n) ? n.toInt() : n) & 63; }
  P.toInt = function () { return this.unsigned ? this.low >>> 0 : this.low; };
  P.toNumber = function () { return this.unsigned ? (this.high >>> 0) * TWO32 + (this.low >>> 0) : this.high * TWO32 + (this.low >>> 0); };
  P.toString = function (radix) {
    radix = radix || 10;
    if (radix < 2 || radix > 36) { throw RangeError('radix'); }
    return value(this).toString(radix);
  };
  P.getHighBits = function () { return this.high; };
  P.getHighBitsUnsigned = function () { return this.high >>> 0; };
  P.getLowBits = function () { return this.low; };
  P.getLowBitsUnsigned = function () { return this.low >>> 0; };
  P.getNumBitsAbs = function () {
    if (this.isNegative()) { return this.eq(MIN_VALUE) ? 64 : this.neg().getNumBitsAbs(); }
    var n = bits(this).toString(2).length;
    return n < 1 ? 1 : n;
  };
  P.isZero = function () { return this.high === 0 && this.low === 0; };
  P.isNegative = function () { return !this.unsigned && this.high < 0; };
  P.isPositive = function () { return this.unsigned || this.high >= 0; };
  P.isOdd = function () { return (this.low & 1) === 1; };
  P.isEven = function () { return (this.low & 1) === 0; };
  P.equals = function (o) {
    o = arg(o);
    // Two patterns with the top bit set differ when one is read unsigned.
    if (this.unsigned !== o.unsigned && (this.high >>> 31) === 1 && (o.high >>> 31) === 1) { return false; }
    return this.high === o.high && this.low === o.low;
  };
  P.notEquals = function (o) { return !this.equals(o); };
  P.compare = function (o) {
    o = arg(o);
    if (this.equals(o)) { return 0; }
    var tn = this.isNegative(), on = o.isNegative();
    if (tn && !on) { return -1; }
    if (!tn && on) { return 1; }
    if (!this.unsigned) { return BigInt.asIntN(64, bits(this) - bits(o)) < 0n ? -1 : 1; }
    return bits(o) > bits(this) ? -1 : 1;
  };
  P.lessThan = function (o) { return this.compare(o) < 0; };
  P.lessThanOrEqual = function (o) { return this.compare(o) <= 0; };
  P.greaterThan = function (o) { return this.compare(o) > 0; };
  P.greaterThanOrEqual = function (o) { return this.compare(o) >= 0; };
  P.negate = function () { return fromBig(-bits(this), this.unsigned); };
  P.add = function (o) { return fromBig(bits(this) + bits(arg(o)), this.unsigned); };
  P.subtract = function (o) { return fromBig(bits(this) - bits(arg(o)), this.unsigned); };
  P.multiply = function (o) { return fromBig(bits(this) * bits(arg(o)), this.unsigned); };
  // divide and modulo read the divisor with the dividend's signedness.
  function divisor(t, o) {
    o = arg(o);
    if (o.isZero()) { throw Error('division by zero'); }
    return t.unsigned ? bits(o) : BigInt.asIntN(64, bits(o));
  }
  P.divide = function (o) { var d = divisor(this, o); return fromBig(value(this) / d, this.unsigned); };
  P.modulo = function (o) { var d = divisor(this, o); return fromBig(value(this) % d, this.unsigned); };
  P.not = function () { return new Long(~this.low, ~this.high, this.unsigned); };
  P.and = function (o) { o = arg(o); return new Long(this.low & o.low, this.high & o.high, this.unsigned); };
  P.or = function (o) { o = arg(o); return new Long(this.low | o.low, this.high | o.high, this.unsigned); };
  P.xor = function (o) { o = arg(o); return new Long(this.low ^ o.low, this.high ^ o.high, this.unsigned); };
  P.shiftLeft = function (n) { return fromBig(bits(this) << BigInt(shiftBits(n)), this.unsigned); };
  // shiftRight is arithmetic on the bit pattern whatever the signedness.
  P.shiftRight = function (n) { return fromBig(BigInt.asIntN(64, bits(this)) >> BigInt(shiftBits(n)), this.unsigned); };
  P.shiftRightUnsigned = function (n) { return fromBig(bits(this) >> BigInt(shiftBits(n)), this.unsigned); };
  P.toSigned = function () { return this.unsigned ? new Long(this.low, this.high, false) : this; };
  P.toUnsigned = function () { return this.unsigned ? this : new Long(this.low, this.high, true); };
  P.toBytesLE = function () {
    var lo = this.low, hi = this.high;
    return [lo & 0xff, lo >>> 8 & 0xff, lo >>> 16 & 0xff, lo >>> 24 & 0xff, hi & 0xff, hi >>> 8 & 0xff, hi >>> 16 & 0xff, hi >>> 24 & 0xff];
  };
  P.toBytesBE = function () { return this.toBytesLE().reverse(); };
  P.toBytes = function (le) { return le ? this.toBytesLE() : this.toBytesBE(); };
  var aliases = { eq: 'equals', neq: 'notEquals', lt: 'lessThan', lte: 'lessThanOrEqual', gt: 'greaterThan',
    gte: 'greaterThanOrEqual', comp: 'compare', neg: 'negate', sub: 'subtract', mul: 'multiply', div: 'divide',
    mod: 'modulo', shl: 'shiftLeft', shr: 'shiftRight', shru: 'shiftRightUnsigned' };
  for (var a in aliases) { P[a] = P[aliases[a]]; }

  Long.isLong = isLong;
  Long.fromInt = fromInt;
  Long.fromNumber = fromNumber;
  Long.fromBits = fromBits;
  Long.fromString = fromString;
  Long.fromValue = fromValue;
  Long.ZERO = ZERO; Long.UZERO = UZERO; Long.ONE = ONE; Long.UONE = UONE; Long.NEG_ONE = NEG_ONE;
  Long.MAX_VALUE = MAX_VALUE; Long.MAX_UNSIGNED_VALUE = MAX_UNSIGNED_VALUE; Long.MIN_VALUE = MIN_VALUE;
  // internal: the 64-bit pattern, for ByteBuffer's 64-bit reads and writes.
  Object.defineProperty(Long, '__bits', { value: bits, enumerable: false });
  Object.defineProperty(Long, '__fromBig', { value: fromBig, enumerable: false });
  (g.dcodeIO = g.dcodeIO || {}).Long = Long;
})(this);
`
