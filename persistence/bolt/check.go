package bolt

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
)

// checkFile walks the page tree of a bbolt file from its newest valid meta
// page and reports the first page that bbolt would refuse with a panic: an
// id that differs from its position, a type that is neither branch nor
// leaf, an element or child outside the file. bbolt checks these with
// assertions in goroutines of its own (the freelist rebuild on open runs
// in one), where no recover can reach, so the walk runs before bbolt sees
// the file. The format facts are bbolt's on-disk layout (pages with a
// 16-byte header, 16-byte elements, bucket values holding a root page id or
// an inline page).
func checkFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || st.Size() == 0 {
		return err
	}
	unlock, err := lockShared(f)
	if err != nil {
		return nil // held by a writer: bbolt's own lock wait reports it
	}
	defer unlock()
	m, err := newestMeta(f)
	if err != nil {
		return err
	}
	w := walker{f: f, size: st.Size(), ps: int64(m.pageSize), hw: m.highWater, seen: map[uint64]bool{}}
	return w.page(m.root, 0)
}

type meta struct {
	pageSize  uint32
	root      uint64
	highWater uint64
	txid      uint64
}

const (
	pageHeaderSize = 16
	elementSize    = 16
	branchPage     = 0x01
	leafPage       = 0x02
	bucketLeaf     = 0x01
	bucketHeader   = 16
	maxTreeDepth   = 64
)

// newestMeta reads both meta pages (at 0 and at one page size, which meta 0
// names or else the OS page size) and returns the valid one with the
// highest transaction id.
func newestMeta(f *os.File) (meta, error) {
	var best meta
	found := false
	at := []int64{0}
	for i := 0; i < 2; i++ {
		buf := make([]byte, pageHeaderSize+64)
		if _, err := f.ReadAt(buf, at[i]); err != nil && !errors.Is(err, io.EOF) {
			return best, err
		}
		m, ok := parseMeta(buf[pageHeaderSize:])
		if i == 0 {
			next := int64(os.Getpagesize())
			if ok {
				next = int64(m.pageSize)
			}
			at = append(at, next)
		}
		if ok && (!found || m.txid > best.txid) {
			best, found = m, true
		}
	}
	if !found {
		return best, errors.New("no valid meta page")
	}
	return best, nil
}

func parseMeta(b []byte) (meta, bool) {
	le := binary.LittleEndian
	h := fnv.New64a()
	_, _ = h.Write(b[:56])
	if le.Uint32(b[0:]) != 0xED0CDAED || h.Sum64() != le.Uint64(b[56:]) {
		return meta{}, false
	}
	m := meta{pageSize: le.Uint32(b[8:]), root: le.Uint64(b[16:]), highWater: le.Uint64(b[40:]), txid: le.Uint64(b[48:])}
	return m, m.pageSize >= 512 && m.pageSize&(m.pageSize-1) == 0
}

type walker struct {
	f    *os.File
	size int64
	ps   int64
	hw   uint64
	seen map[uint64]bool
}

// page checks page id and everything below it.
func (w *walker) page(id uint64, depth int) error {
	if depth > maxTreeDepth {
		return fmt.Errorf("page %d: tree deeper than %d", id, maxTreeDepth)
	}
	if id < 2 || id >= w.hw || int64(id) > w.size/w.ps {
		return fmt.Errorf("page id %d outside the file (high water %d)", id, w.hw)
	}
	if w.seen[id] {
		return fmt.Errorf("page %d reached twice", id)
	}
	w.seen[id] = true
	hdr := make([]byte, pageHeaderSize)
	if _, err := w.f.ReadAt(hdr, int64(id)*w.ps); err != nil {
		return fmt.Errorf("page %d: %w", id, err)
	}
	le := binary.LittleEndian
	if got := le.Uint64(hdr); got != id {
		return fmt.Errorf("page %d identifies itself as %d", id, got)
	}
	n := (int64(le.Uint32(hdr[12:])) + 1) * w.ps
	if int64(id)*w.ps+n > w.size {
		return fmt.Errorf("page %d: overflow pages outside the file", id)
	}
	buf := make([]byte, n)
	if _, err := w.f.ReadAt(buf, int64(id)*w.ps); err != nil {
		return fmt.Errorf("page %d: %w", id, err)
	}
	return w.elements(buf, id, depth)
}

// elements checks the elements of one page (buf starts at its header; an
// inline bucket's page has id 0 and is not in the file's page space).
func (w *walker) elements(buf []byte, id uint64, depth int) error {
	le := binary.LittleEndian
	flags, count := le.Uint16(buf[8:]), int(le.Uint16(buf[10:]))
	if flags != branchPage && flags != leafPage {
		return fmt.Errorf("page %d: type %#x is neither branch nor leaf", id, flags)
	}
	if pageHeaderSize+count*elementSize > len(buf) {
		return fmt.Errorf("page %d: %d elements do not fit", id, count)
	}
	for i := 0; i < count; i++ {
		el := pageHeaderSize + i*elementSize
		if flags == branchPage {
			pos, ksize := int(le.Uint32(buf[el:])), int(le.Uint32(buf[el+4:]))
			if el+pos+ksize > len(buf) {
				return fmt.Errorf("page %d: key %d outside the page", id, i)
			}
			if err := w.page(le.Uint64(buf[el+8:]), depth+1); err != nil {
				return err
			}
			continue
		}
		eflags, pos := le.Uint32(buf[el:]), int(le.Uint32(buf[el+4:]))
		ksize, vsize := int(le.Uint32(buf[el+8:])), int(le.Uint32(buf[el+12:]))
		if el+pos+ksize+vsize > len(buf) || pos < 0 {
			return fmt.Errorf("page %d: element %d outside the page", id, i)
		}
		if eflags&bucketLeaf == 0 {
			continue
		}
		v := buf[el+pos+ksize : el+pos+ksize+vsize]
		if len(v) < bucketHeader {
			return fmt.Errorf("page %d: bucket %d header too short", id, i)
		}
		if root := le.Uint64(v); root != 0 {
			if err := w.page(root, depth+1); err != nil {
				return err
			}
			continue
		}
		if len(v) < bucketHeader+pageHeaderSize {
			return fmt.Errorf("page %d: inline bucket %d too short", id, i)
		}
		if err := w.elements(v[bucketHeader:], id, depth+1); err != nil {
			return err
		}
	}
	return nil
}
