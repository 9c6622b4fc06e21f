package mapping

// jsByteBuffer is dittoconn's own implementation of the part of the
// bytebuffer.js API (dcodeIO.ByteBuffer, the ArrayBuffer build of version
// 5.0.1 as Ditto bundles it) that mapping scripts use, installed when a
// JavaScript mapping has loadBytebufferJS. Like jsLong it is written
// against the library's documented API, not copied from it; the argument
// checks and their messages follow the library so that a script's catch
// blocks see the same errors. 64-bit reads and writes need dcodeIO.Long
// (loadLongJS), as in the library. docs/COMPATIBILITY.md lists what is
// covered.
const jsByteBuffer = `
(function (g) {
  var EMPTY = new ArrayBuffer(0);
  var Long = (g.dcodeIO && g.dcodeIO.Long) || null;
  function ByteBuffer(capacity, littleEndian, noAssert) {
    if (typeof capacity === 'undefined') { capacity = ByteBuffer.DEFAULT_CAPACITY; }
    if (typeof littleEndian === 'undefined') { littleEndian = ByteBuffer.DEFAULT_ENDIAN; }
    if (typeof noAssert === 'undefined') { noAssert = ByteBuffer.DEFAULT_NOASSERT; }
    if (!noAssert) {
      capacity = capacity | 0;
      if (capacity < 0) { throw RangeError('Illegal capacity'); }
    }
    this.buffer = capacity === 0 ? EMPTY : new ArrayBuffer(capacity);
    this.view = capacity === 0 ? null : new Uint8Array(this.buffer);
    this.offset = 0;
    this.markedOffset = -1;
    this.limit = capacity;
    this.littleEndian = !!littleEndian;
    this.noAssert = !!noAssert;
  }
  ByteBuffer.LITTLE_ENDIAN = true;
  ByteBuffer.BIG_ENDIAN = false;
  ByteBuffer.DEFAULT_CAPACITY = 16;
  ByteBuffer.DEFAULT_ENDIAN = false;
  ByteBuffer.DEFAULT_NOASSERT = false;
  ByteBuffer.METRICS_CHARS = 'c';
  ByteBuffer.METRICS_BYTES = 'b';
  ByteBuffer.MAX_VARINT32_BYTES = 5;
  ByteBuffer.MAX_VARINT64_BYTES = 10;
  ByteBuffer.Long = Long;
  Object.defineProperty(ByteBuffer.prototype, '__isByteBuffer__', { value: true, enumerable: false, configurable: false });
  var P = ByteBuffer.prototype;

  function isInt(n) { return typeof n === 'number' && n % 1 === 0; }
  // at checks that n bytes at offset lie within the buffer and returns
  // the offset as an unsigned integer.
  function at(bb, offset, n) {
    if (bb.noAssert) { return offset; }
    if (!isInt(offset)) { throw TypeError('Illegal offset: ' + offset + ' (not an integer)'); }
    offset >>>= 0;
    if (offset < 0 || offset + n > bb.buffer.byteLength) {
      throw RangeError('Illegal offset: 0 <= ' + offset + ' (+' + n + ') <= ' + bb.buffer.byteLength);
    }
    return offset;
  }
  function range(bb, begin, end) {
    if (typeof begin === 'undefined') { begin = bb.offset; }
    if (typeof end === 'undefined') { end = bb.limit; }
    if (!bb.noAssert) {
      if (!isInt(begin)) { throw TypeError('Illegal begin: Not an integer'); }
      if (!isInt(end)) { throw TypeError('Illegal end: Not an integer'); }
      begin >>>= 0; end >>>= 0;
      if (begin < 0 || begin > end || end > bb.buffer.byteLength) {
        throw RangeError('Illegal range: 0 <= ' + begin + ' <= ' + end + ' <= ' + bb.buffer.byteLength);
      }
    }
    return [begin, end];
  }
  // grow makes room for n bytes at offset, doubling as the library does.
  function grow(bb, offset, n) {
    var need = offset + n, cap = bb.buffer.byteLength;
    if (need > cap) { bb.resize(cap * 2 > need ? cap * 2 : need); }
  }
  function dv(bb) { return new DataView(bb.buffer); }

  // Fixed-width numbers: [name, bytes, DataView getter/setter suffix, kind]
  // kind: 'int' (value must be an integer), 'float' (any number).
  var fixed = [
    ['Int8', 1, 'Int8', 'int'], ['Uint8', 1, 'Uint8', 'int'],
    ['Int16', 2, 'Int16', 'int'], ['Uint16', 2, 'Uint16', 'int'],
    ['Int32', 4, 'Int32', 'int'], ['Uint32', 4, 'Uint32', 'int'],
    ['Float32', 4, 'Float32', 'float'], ['Float64', 8, 'Float64', 'float']
  ];
  fixed.forEach(function (f) {
    var name = f[0], n = f[1], get = 'get' + f[2], set = 'set' + f[2], isFloat = f[3] === 'float';
    P['read' + name] = function (offset) {
      var relative = typeof offset === 'undefined';
      if (relative) { offset = this.offset; }
      offset = at(this, offset, n);
      var v = dv(this)[get](offset, this.littleEndian);
      if (relative) { this.offset += n; }
      return v;
    };
    P['write' + name] = function (value, offset) {
      var relative = typeof offset === 'undefined';
      if (relative) { offset = this.offset; }
      if (!this.noAssert) {
        if (isFloat && typeof value !== 'number') { throw TypeError('Illegal value: ' + value + ' (not a number)'); }
        if (!isFloat && !isInt(value)) { throw TypeError('Illegal value: ' + value + ' (not an integer)'); }
      }
      offset = at(this, offset, 0);
      grow(this, offset, n);
      dv(this)[set](offset, value, this.littleEndian);
      if (relative) { this.offset += n; }
      return this;
    };
  });

  function toLong(value) {
    if (typeof value === 'number') { return Long.fromNumber(value); }
    if (typeof value === 'string') { return Long.fromString(value); }
    if (Long.isLong(value)) { return value; }
    throw TypeError('Illegal value: ' + value + ' (not an integer or Long)');
  }
  if (Long) {
    [['Int64', false], ['Uint64', true]].forEach(function (f) {
      var name = f[0], unsigned = f[1];
      P['read' + name] = function (offset) {
        var relative = typeof offset === 'undefined';
        if (relative) { offset = this.offset; }
        offset = at(this, offset, 8);
        var d = dv(this), le = this.littleEndian;
        var lo = d.getInt32(offset + (le ? 0 : 4), le), hi = d.getInt32(offset + (le ? 4 : 0), le);
        if (relative) { this.offset += 8; }
        return Long.fromBits(lo, hi, unsigned);
      };
      P['write' + name] = function (value, offset) {
        var relative = typeof offset === 'undefined';
        if (relative) { offset = this.offset; }
        value = toLong(value);
        offset = at(this, offset, 0);
        grow(this, offset, 8);
        var d = dv(this), le = this.littleEndian;
        d.setInt32(offset + (le ? 0 : 4), value.low, le);
        d.setInt32(offset + (le ? 4 : 0), value.high, le);
        if (relative) { this.offset += 8; }
        return this;
      };
    });
  }
  var aliases = { Byte: 'Int8', UInt8: 'Uint8', Short: 'Int16', UInt16: 'Uint16', Int: 'Int32', UInt32: 'Uint32',
    Float: 'Float32', Double: 'Float64' };
  if (Long) { aliases.Long = 'Int64'; aliases.UInt64 = 'Uint64'; }
  for (var a in aliases) { P['read' + a] = P['read' + aliases[a]]; P['write' + a] = P['write' + aliases[a]]; }

  // Varints (protobuf's base-128 encoding).
  P.readVarint32 = function (offset) {
    var relative = typeof offset === 'undefined';
    if (relative) { offset = this.offset; }
    offset = at(this, offset, 1);
    var start = offset, value = 0, c = 0, b;
    var view = this.view || new Uint8Array(0);
    do {
      if (!this.noAssert && offset > this.limit) { var e = Error('Truncated'); e.truncated = true; throw e; }
      b = view[offset++];
      if (c < 5) { value |= (b & 0x7f) << (7 * c); }
      c++;
    } while ((b & 0x80) !== 0);
    value |= 0;
    if (relative) { this.offset = offset; return value; }
    return { value: value, length: offset - start };
  };
  P.readVarint32ZigZag = function (offset) {
    var r = this.readVarint32(offset);
    if (typeof r === 'object') { r.value = zigZagDecode32(r.value); return r; }
    return zigZagDecode32(r);
  };
  P.writeVarint32 = function (value, offset) {
    var relative = typeof offset === 'undefined';
    if (relative) { offset = this.offset; }
    if (!this.noAssert && !isInt(value)) { throw TypeError('Illegal value: ' + value + ' (not an integer)'); }
    value |= 0;
    offset = at(this, offset, 0);
    var n = calculateVarint32(value), start = offset;
    grow(this, offset, n);
    var v = value >>> 0;
    while (v >= 0x80) { this.view[offset++] = (v & 0x7f) | 0x80; v >>>= 7; }
    this.view[offset++] = v;
    if (relative) { this.offset = offset; return this; }
    return offset - start;
  };
  P.writeVarint32ZigZag = function (value, offset) { return this.writeVarint32(zigZagEncode32(value), offset); };
  function calculateVarint32(value) {
    var v = value >>> 0, n = 1;
    while (v >= 0x80) { v >>>= 7; n++; }
    return n;
  }
  function zigZagEncode32(n) { return (((n |= 0) << 1) ^ (n >> 31)) >>> 0; }
  function zigZagDecode32(n) { return ((n >>> 1) ^ -(n & 1)) | 0; }
  ByteBuffer.calculateVarint32 = calculateVarint32;
  ByteBuffer.zigZagEncode32 = zigZagEncode32;
  ByteBuffer.zigZagDecode32 = zigZagDecode32;
  if (Long) {
    P.readVarint64 = function (offset) {
      var relative = typeof offset === 'undefined';
      if (relative) { offset = this.offset; }
      offset = at(this, offset, 1);
      var start = offset, acc = 0n, shift = 0n, b, c = 0;
      var view = this.view || new Uint8Array(0);
      do {
        if (!this.noAssert && offset > this.limit) { var e = Error('Truncated'); e.truncated = true; throw e; }
        if (c === 10) { throw Error('Buffer overrun'); }
        b = view[offset++];
        acc |= BigInt(b & 0x7f) << shift;
        shift += 7n; c++;
      } while ((b & 0x80) !== 0);
      var v = Long.__fromBig(acc, false);
      if (relative) { this.offset = offset; return v; }
      return { value: v, length: offset - start };
    };
    P.writeVarint64 = function (value, offset) {
      var relative = typeof offset === 'undefined';
      if (relative) { offset = this.offset; }
      value = toLong(value);
      offset = at(this, offset, 0);
      var v = Long.__bits(value), bytes = [];
      while (v >= 0x80n) { bytes.push(Number(v & 0x7fn) | 0x80); v >>= 7n; }
      bytes.push(Number(v));
      grow(this, offset, bytes.length);
      this.view.set(bytes, offset);
      if (relative) { this.offset = offset + bytes.length; return this; }
      return bytes.length;
    };
    P.readVarint64ZigZag = function (offset) {
      var r = this.readVarint64(offset);
      if (Long.isLong(r)) { return zigZagDecode64(r); }
      r.value = zigZagDecode64(r.value);
      return r;
    };
    P.writeVarint64ZigZag = function (value, offset) { return this.writeVarint64(zigZagEncode64(value), offset); };
    var zigZagEncode64 = function (v) {
      v = toLong(v);
      return v.toSigned().shiftLeft(1).xor(v.toSigned().shiftRight(63)).toUnsigned();
    };
    var zigZagDecode64 = function (v) {
      v = toLong(v);
      return v.toUnsigned().shiftRightUnsigned(1).xor(v.and(Long.ONE).toSigned().negate()).toSigned();
    };
    ByteBuffer.zigZagEncode64 = zigZagEncode64;
    ByteBuffer.zigZagDecode64 = zigZagDecode64;
  }

  // UTF-8. decodeUTF8 reads code points from bytes[i..end) until max of
  // them (Infinity: all) and returns [string, next index, code points].
  // lenient: a sequence cut off at end ends the string instead of failing
  // (toUTF8 does so).
  function decodeUTF8(bytes, i, end, max, lenient) {
    var out = [], n = 0;
    while (i < end && n < max) {
      var b = bytes[i], cp, len;
      if (b < 0x80) { cp = b; len = 1; }
      else if ((b & 0xe0) === 0xc0) { cp = b & 0x1f; len = 2; }
      else if ((b & 0xf0) === 0xe0) { cp = b & 0x0f; len = 3; }
      else if ((b & 0xf8) === 0xf0) { cp = b & 0x07; len = 4; }
      else { throw RangeError('Illegal starting byte: ' + b); }
      if (i + len > end) {
        if (lenient) { break; }
        throw RangeError('Illegal range: Truncated data, ' + i + ' != ' + end);
      }
      for (var k = 1; k < len; k++) { cp = (cp << 6) | (bytes[i + k] & 0x3f); }
      out.push(String.fromCodePoint(cp));
      i += len; n++;
    }
    return [out.join(''), i, n];
  }
  function encodeUTF8(str) {
    var out = [];
    for (var i = 0; i < str.length; i++) {
      var cp = str.codePointAt(i);
      if (cp > 0xffff) { i++; }
      if (cp < 0x80) { out.push(cp); }
      else if (cp < 0x800) { out.push(0xc0 | cp >> 6, 0x80 | cp & 0x3f); }
      else if (cp < 0x10000) { out.push(0xe0 | cp >> 12, 0x80 | cp >> 6 & 0x3f, 0x80 | cp & 0x3f); }
      else { out.push(0xf0 | cp >> 18, 0x80 | cp >> 12 & 0x3f, 0x80 | cp >> 6 & 0x3f, 0x80 | cp & 0x3f); }
    }
    return out;
  }
  function fromBytes(bytes, littleEndian, noAssert) {
    var bb = new ByteBuffer(bytes.length, littleEndian, noAssert);
    if (bytes.length > 0) { bb.view.set(bytes); }
    return bb;
  }
  ByteBuffer.calculateUTF8Bytes = function (str) { return encodeUTF8(str).length; };
  P.readUTF8String = function (length, metrics, offset) {
    if (typeof metrics === 'number') { offset = metrics; metrics = undefined; }
    var relative = typeof offset === 'undefined';
    if (relative) { offset = this.offset; }
    if (typeof metrics === 'undefined') { metrics = ByteBuffer.METRICS_CHARS; }
    if (!this.noAssert && !isInt(length)) { throw TypeError('Illegal length: ' + length + ' (not an integer)'); }
    var r;
    if (metrics === ByteBuffer.METRICS_CHARS) {
      offset = at(this, offset, 0);
      r = decodeUTF8(this.view || [], offset, this.limit, length);
      if (r[2] !== length) { throw RangeError('Illegal range: Truncated data, ' + r[2] + ' == ' + length); }
    } else if (metrics === ByteBuffer.METRICS_BYTES) {
      offset = at(this, offset, length);
      r = decodeUTF8(this.view || [], offset, offset + length, Infinity);
    } else {
      throw TypeError('Unsupported metrics: ' + metrics);
    }
    if (relative) { this.offset = r[1]; return r[0]; }
    return { string: r[0], length: r[1] - offset };
  };
  P.readString = P.readUTF8String;
  P.writeUTF8String = function (str, offset) {
    var relative = typeof offset === 'undefined';
    if (relative) { offset = this.offset; }
    offset = at(this, offset, 0);
    var bytes = encodeUTF8(String(str));
    grow(this, offset, bytes.length);
    if (bytes.length > 0) { this.view.set(bytes, offset); }
    if (relative) { this.offset = offset + bytes.length; return this; }
    return bytes.length;
  };
  P.writeString = P.writeUTF8String;
  P.readCString = function (offset) {
    var relative = typeof offset === 'undefined';
    if (relative) { offset = this.offset; }
    offset = at(this, offset, 1);
    var end = offset;
    while (true) {
      if (end >= this.limit) { throw RangeError('Illegal range: Truncated data, ' + end + ' < ' + this.limit); }
      if (this.view[end] === 0) { break; }
      end++;
    }
    var s = decodeUTF8(this.view, offset, end, Infinity)[0];
    if (relative) { this.offset = end + 1; return s; }
    return { string: s, length: end + 1 - offset };
  };
  P.writeCString = function (str, offset) {
    var relative = typeof offset === 'undefined';
    if (relative) { offset = this.offset; }
    if (!this.noAssert) {
      if (typeof str !== 'string') { throw TypeError('Illegal str: Not a string'); }
      if (str.indexOf('\u0000') >= 0) { throw RangeError('Illegal str: Contains NULL-characters'); }
    }
    offset = at(this, offset, 0);
    var bytes = encodeUTF8(str);
    bytes.push(0);
    grow(this, offset, bytes.length);
    this.view.set(bytes, offset);
    if (relative) { this.offset = offset + bytes.length; return this; }
    return bytes.length - 1;
  };
  P.readBytes = function (length, offset) {
    var relative = typeof offset === 'undefined';
    if (relative) { offset = this.offset; }
    offset = at(this, offset, length);
    var s = this.slice(offset, offset + length);
    if (relative) { this.offset += length; }
    return s;
  };
  P.writeBytes = function (source, encoding, offset) { return this.append(source, encoding, offset); };

  // Navigation.
  P.capacity = function () { return this.buffer.byteLength; };
  P.remaining = function () { return this.limit - this.offset; };
  P.clear = function () { this.offset = 0; this.limit = this.buffer.byteLength; this.markedOffset = -1; return this; };
  P.flip = function () { this.limit = this.offset; this.offset = 0; return this; };
  P.mark = function (offset) {
    offset = typeof offset === 'undefined' ? this.offset : offset;
    this.markedOffset = at(this, offset, 0);
    return this;
  };
  P.reset = function () {
    if (this.markedOffset >= 0) { this.offset = this.markedOffset; this.markedOffset = -1; } else { this.offset = 0; }
    return this;
  };
  P.skip = function (length) {
    if (!this.noAssert) {
      if (!isInt(length)) { throw TypeError('Illegal length: ' + length + ' (not an integer)'); }
      length |= 0;
    }
    var offset = this.offset + length;
    if (!this.noAssert && (offset < 0 || offset > this.buffer.byteLength)) {
      throw RangeError('Illegal length: 0 <= ' + this.offset + ' + ' + length + ' <= ' + this.buffer.byteLength);
    }
    this.offset = offset;
    return this;
  };
  P.order = function (littleEndian) {
    if (!this.noAssert && typeof littleEndian !== 'boolean') { throw TypeError('Illegal littleEndian: Not a boolean'); }
    this.littleEndian = !!littleEndian;
    return this;
  };
  P.LE = function (le) { this.littleEndian = typeof le !== 'undefined' ? !!le : true; return this; };
  P.BE = function (be) { this.littleEndian = typeof be !== 'undefined' ? !be : false; return this; };
  P.resize = function (capacity) {
    if (!this.noAssert) {
      if (!isInt(capacity)) { throw TypeError('Illegal capacity: ' + capacity + ' (not an integer)'); }
      capacity |= 0;
      if (capacity < 0) { throw RangeError('Illegal capacity: 0 <= ' + capacity); }
    }
    if (this.buffer.byteLength < capacity) {
      var view = new Uint8Array(new ArrayBuffer(capacity));
      if (this.view) { view.set(this.view); }
      this.buffer = view.buffer;
      this.view = view;
    }
    return this;
  };
  P.ensureCapacity = function (capacity) {
    var cur = this.buffer.byteLength;
    return cur < capacity ? this.resize(cur * 2 > capacity ? cur * 2 : capacity) : this;
  };
  P.clone = function (copy) {
    var bb = new ByteBuffer(0, this.littleEndian, this.noAssert);
    if (copy) {
      bb.buffer = this.buffer.slice(0);
      bb.view = bb.buffer.byteLength > 0 ? new Uint8Array(bb.buffer) : null;
    } else {
      bb.buffer = this.buffer;
      bb.view = this.view;
    }
    bb.offset = this.offset;
    bb.markedOffset = this.markedOffset;
    bb.limit = this.limit;
    return bb;
  };
  P.slice = function (begin, end) {
    var r = range(this, begin, end), bb = this.clone();
    bb.offset = r[0];
    bb.limit = r[1];
    return bb;
  };
  P.copy = function (begin, end) {
    var r = range(this, begin, end);
    var bb = new ByteBuffer(r[1] - r[0], this.littleEndian, this.noAssert);
    if (r[1] > r[0]) { bb.view.set(this.view.subarray(r[0], r[1])); }
    return bb;
  };
  P.compact = function (begin, end) {
    var r = range(this, begin, end);
    if (r[0] === 0 && r[1] === this.buffer.byteLength) { return this; }
    var len = r[1] - r[0];
    if (this.markedOffset >= 0) { this.markedOffset -= r[0]; }
    if (len === 0) { this.buffer = EMPTY; this.view = null; }
    else { this.buffer = this.buffer.slice(r[0], r[1]); this.view = new Uint8Array(this.buffer); }
    this.offset = 0;
    this.limit = len;
    return this;
  };
  P.append = function (source, encoding, offset) {
    if (typeof encoding !== 'string') { offset = encoding; encoding = undefined; }
    var relative = typeof offset === 'undefined';
    if (relative) { offset = this.offset; }
    offset = at(this, offset, 0);
    if (!isByteBuffer(source)) { source = ByteBuffer.wrap(source, encoding); }
    var length = source.limit - source.offset;
    if (length <= 0) { return this; }
    grow(this, offset, length);
    this.view.set(source.view.subarray(source.offset, source.limit), offset);
    source.offset += length;
    if (relative) { this.offset += length; }
    return this;
  };
  P.toBuffer = function (forceCopy) {
    var r = range(this, this.offset, this.limit);
    if (!forceCopy && r[0] === 0 && r[1] === this.buffer.byteLength) { return this.buffer; }
    return this.buffer.slice(r[0], r[1]);
  };
  P.toArrayBuffer = P.toBuffer;

  // Encodings.
  var B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
  P.toBase64 = function (begin, end) {
    var r = range(this, begin, end), v = this.view, out = [];
    for (var i = r[0]; i < r[1]; i += 3) {
      var n = r[1] - i, b0 = v[i], b1 = n > 1 ? v[i + 1] : 0, b2 = n > 2 ? v[i + 2] : 0;
      out.push(B64.charAt(b0 >> 2), B64.charAt((b0 & 3) << 4 | b1 >> 4),
        n > 1 ? B64.charAt((b1 & 15) << 2 | b2 >> 6) : '=', n > 2 ? B64.charAt(b2 & 63) : '=');
    }
    return out.join('');
  };
  ByteBuffer.fromBase64 = function (str, littleEndian) {
    if (typeof str !== 'string') { throw TypeError('str'); }
    var out = [], acc = 0, n = 0;
    for (var i = 0; i < str.length; i++) {
      var c = str.charCodeAt(i);
      if (c === 61 && n >= 2) { break; } // '=' ends the data
      var d = B64.indexOf(str.charAt(i));
      if (d < 0) { throw Error('Illegal character code: ' + c); }
      acc = (acc << 6 | d) & 0xffffff;
      n++;
      if (n === 2) { out.push(acc >> 4 & 0xff); }
      else if (n === 3) { out.push(acc >> 2 & 0xff); }
      else if (n === 4) { out.push(acc & 0xff); n = 0; acc = 0; }
    }
    // Sized as the library sizes it: three bytes per four characters.
    var bb = new ByteBuffer((str.length / 4 * 3) | 0, littleEndian);
    if (out.length > 0) { bb.view.set(out); }
    bb.limit = out.length;
    return bb;
  };
  P.toHex = function (begin, end) {
    var r = range(this, begin, end), out = [];
    for (var i = r[0]; i < r[1]; i++) { var b = this.view[i]; out.push(b < 16 ? '0' + b.toString(16) : b.toString(16)); }
    return out.join('');
  };
  ByteBuffer.fromHex = function (str, littleEndian, noAssert) {
    if (!noAssert) {
      if (typeof str !== 'string') { throw TypeError('Illegal str: Not a string'); }
      if (str.length % 2 !== 0) { throw TypeError('Illegal str: Length not a multiple of 2'); }
    }
    var out = [];
    for (var i = 0; i + 1 < str.length; i += 2) {
      var b = parseInt(str.substring(i, i + 2), 16);
      if (!noAssert && !(b >= 0 && b <= 255)) { throw TypeError('Illegal str: Contains non-hex characters'); }
      out.push(b);
    }
    return fromBytes(out, littleEndian, noAssert);
  };
  P.toBinary = function (begin, end) {
    if (typeof begin === 'undefined') { begin = this.offset; }
    if (typeof end === 'undefined') { end = this.limit; }
    begin |= 0; end |= 0;
    if (begin < 0 || end > this.capacity() || begin > end) { throw RangeError('begin, end'); }
    var out = [];
    for (var i = begin; i < end; i++) { out.push(String.fromCharCode(this.view[i])); }
    return out.join('');
  };
  ByteBuffer.fromBinary = function (str, littleEndian) {
    if (typeof str !== 'string') { throw TypeError('str'); }
    var out = [];
    for (var i = 0; i < str.length; i++) {
      var c = str.charCodeAt(i);
      if (c > 0xff) { throw RangeError('illegal char code: ' + c); }
      out.push(c);
    }
    return fromBytes(out, littleEndian);
  };
  P.toUTF8 = function (begin, end) {
    var r = range(this, begin, end);
    return decodeUTF8(this.view || [], r[0], r[1], Infinity, true)[0];
  };
  ByteBuffer.fromUTF8 = function (str, littleEndian, noAssert) {
    if (!noAssert && typeof str !== 'string') { throw TypeError('Illegal str: Not a string'); }
    return fromBytes(encodeUTF8(str), littleEndian, noAssert);
  };
  P.toString = function (encoding, begin, end) {
    if (typeof encoding === 'undefined') {
      return 'ByteBufferAB(offset=' + this.offset + ',markedOffset=' + this.markedOffset + ',limit=' + this.limit +
        ',capacity=' + this.capacity() + ')';
    }
    if (typeof encoding === 'number') { end = begin; begin = encoding; encoding = 'utf8'; }
    switch (encoding) {
      case 'utf8': return this.toUTF8(begin, end);
      case 'base64': return this.toBase64(begin, end);
      case 'hex': return this.toHex(begin, end);
      case 'binary': return this.toBinary(begin, end);
      default: throw Error('Unsupported encoding: ' + encoding);
    }
  };

  // Construction.
  function isByteBuffer(bb) { return (bb && bb.__isByteBuffer__) === true; }
  ByteBuffer.isByteBuffer = isByteBuffer;
  ByteBuffer.allocate = function (capacity, littleEndian, noAssert) { return new ByteBuffer(capacity, littleEndian, noAssert); };
  ByteBuffer.wrap = function (buffer, encoding, littleEndian, noAssert) {
    if (typeof encoding !== 'string') { noAssert = littleEndian; littleEndian = encoding; encoding = undefined; }
    if (typeof buffer === 'string') {
      switch (encoding || 'utf8') {
        case 'base64': return ByteBuffer.fromBase64(buffer, littleEndian);
        case 'hex': return ByteBuffer.fromHex(buffer, littleEndian);
        case 'binary': return ByteBuffer.fromBinary(buffer, littleEndian);
        case 'utf8': return ByteBuffer.fromUTF8(buffer, littleEndian);
        default: throw Error('Unsupported encoding: ' + encoding);
      }
    }
    if (buffer === null || typeof buffer !== 'object') { throw TypeError('Illegal buffer'); }
    var bb;
    if (isByteBuffer(buffer)) {
      bb = buffer.clone();
      bb.markedOffset = -1;
      return bb;
    }
    bb = new ByteBuffer(0, littleEndian, noAssert);
    if (buffer instanceof Uint8Array) {
      if (buffer.length > 0) {
        bb.buffer = buffer.buffer;
        bb.offset = buffer.byteOffset;
        bb.limit = buffer.byteOffset + buffer.byteLength;
        bb.view = new Uint8Array(buffer.buffer);
      }
    } else if (buffer instanceof ArrayBuffer) {
      if (buffer.byteLength > 0) {
        bb.buffer = buffer;
        bb.limit = buffer.byteLength;
        bb.view = new Uint8Array(buffer);
      }
    } else if (Array.isArray(buffer)) {
      bb = fromBytes(buffer, littleEndian, noAssert);
    } else {
      throw TypeError('Illegal buffer');
    }
    return bb;
  };
  ByteBuffer.concat = function (buffers, encoding, littleEndian, noAssert) {
    if (typeof encoding !== 'string') { noAssert = littleEndian; littleEndian = encoding; encoding = undefined; }
    var all = [], total = 0;
    for (var i = 0; i < buffers.length; i++) {
      var b = isByteBuffer(buffers[i]) ? buffers[i] : ByteBuffer.wrap(buffers[i], encoding);
      var n = b.limit - b.offset;
      if (n > 0) { all.push(b); total += n; }
    }
    var bb = new ByteBuffer(total, littleEndian, noAssert), pos = 0;
    all.forEach(function (b) { var n = b.limit - b.offset; bb.view.set(b.view.subarray(b.offset, b.limit), pos); pos += n; });
    return bb;
  };
  (g.dcodeIO = g.dcodeIO || {}).ByteBuffer = ByteBuffer;
})(this);
`
