package bolt

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"go.etcd.io/bbolt"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"

	"github.com/dittoconn/dittoconn/persistence"
	"github.com/dittoconn/dittoconn/persistence/document"
)

var _ persistence.Migration = (*Store)(nil)

// ScanAfterID walks the collection's _id index from afterID on and passes
// the documents that have one of paths, at most pageSize per read
// transaction so fn runs outside any transaction.
func (s *Store) ScanAfterID(ctx context.Context, collection, afterID string, paths []string, limit int, fn func([]byte) error) error {
	if !hasIDIndex(collection) {
		return fmt.Errorf("bolt: scan %q by _id: no _id index", collection)
	}
	var last []byte // the last index key looked at
	if afterID != "" {
		id, err := bson.ObjectIDFromHex(afterID)
		if err != nil {
			return fmt.Errorf("bolt: scan %s after %q: not an ObjectId", collection, afterID)
		}
		last = id[:]
	}
	passed := 0
	for {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("bolt: scan %s: %w", collection, err)
		}
		want := pageSize
		if limit > 0 {
			want = min(want, limit-passed)
		}
		var page [][]byte
		exhausted := false
		err := s.view(func(tx *bbolt.Tx) error {
			c := tx.Bucket(idBucket(collection)).Cursor()
			docs := tx.Bucket([]byte(collection))
			var k, v []byte
			if last == nil {
				k, v = c.First()
			} else if k, v = c.Seek(last); k != nil && bytes.Equal(k, last) {
				k, v = c.Next()
			}
			for looked := 0; k != nil && len(page) < want && looked < 4*pageSize; k, v = c.Next() {
				looked++
				last = bytes.Clone(k)
				doc := docs.Get(v)
				if doc == nil || !hasAny(doc, paths) {
					continue
				}
				page = append(page, bytes.Clone(doc))
			}
			exhausted = k == nil
			return nil
		})
		if err != nil {
			return fmt.Errorf("bolt: scan %s: %w", collection, err)
		}
		for _, d := range page {
			if err := fn(d); err != nil {
				return err
			}
		}
		passed += len(page)
		if exhausted || (limit > 0 && passed >= limit) {
			return nil
		}
	}
}

func hasAny(doc []byte, paths []string) bool {
	for _, p := range paths {
		if document.HasPath(doc, p) {
			return true
		}
	}
	return false
}

// ReplaceByID replaces the documents in one transaction. A replacement must
// keep the primary key (pid, sequence number, timestamp) of the document it
// replaces, as the migration's do.
func (s *Store) ReplaceByID(ctx context.Context, collection string, docs [][]byte) (int, error) {
	return s.replaceByID(ctx, collection, docs, nil)
}

// ReplaceByIDWithProgress replaces the documents and saves the migration
// progress in one transaction: one fsync per batch instead of two, and the
// progress can never run ahead of or behind the documents it describes.
func (s *Store) ReplaceByIDWithProgress(ctx context.Context, collection string, docs [][]byte, p persistence.MigrationProgress) (int, error) {
	progress := document.Progress(p)
	return s.replaceByID(ctx, collection, docs, func(tx *bbolt.Tx) error {
		return tx.Bucket(migrationBucket).Put(progressKey, progress)
	})
}

func (s *Store) replaceByID(ctx context.Context, collection string, docs [][]byte, also func(*bbolt.Tx) error) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("bolt: replace in %s: %w", collection, err)
	}
	if !hasIDIndex(collection) {
		return 0, fmt.Errorf("bolt: replace in %q: no _id index", collection)
	}
	type item struct {
		id       bson.ObjectID
		key, doc []byte
	}
	items := make([]item, 0, len(docs))
	for _, d := range docs {
		if err := bson.Raw(d).Validate(); err != nil {
			return 0, fmt.Errorf("bolt: replace in %s: %w: %v", collection, document.ErrMalformed, err)
		}
		id, ok := bson.Raw(d).Lookup(document.FieldID).ObjectIDOK()
		if !ok {
			return 0, fmt.Errorf("bolt: replace in %s: %w: _id is not an ObjectId", collection, document.ErrMalformed)
		}
		key, err := primaryKey(collection, d)
		if err != nil {
			return 0, fmt.Errorf("bolt: replace in %s: %w", collection, err)
		}
		items = append(items, item{id, key, d})
	}
	replaced := 0
	err := s.update(func(tx *bbolt.Tx) error {
		replaced = 0
		b, ids := tx.Bucket([]byte(collection)), tx.Bucket(idBucket(collection))
		for _, it := range items {
			owner := ids.Get(it.id[:])
			if owner == nil || b.Get(owner) == nil {
				continue
			}
			if !bytes.Equal(owner, it.key) {
				return fmt.Errorf("%w: replacement of %s changes its pid, sn or ts", document.ErrMalformed, it.id.Hex())
			}
			if err := b.Put(it.key, it.doc); err != nil {
				return err
			}
			replaced++
		}
		if also != nil {
			return also(tx)
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("bolt: replace in %s: %w", collection, err)
	}
	return replaced, nil
}

func migrationKey(id string) []byte {
	start, d := bsoncore.AppendDocumentStart(nil)
	d = bsoncore.AppendStringElement(d, document.FieldID, id)
	d, _ = bsoncore.AppendDocumentEnd(d, start)
	k, _ := primaryKey(document.EncryptionMigrationCollection, d)
	return k
}

var (
	progressKey = migrationKey(document.ProgressID)
	leaseKey    = migrationKey(document.LeaseID)
)

func (s *Store) getMigration(ctx context.Context, op string, key []byte) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("bolt: %s: %w", op, err)
	}
	var doc []byte
	if err := s.view(func(tx *bbolt.Tx) error {
		doc = bytes.Clone(tx.Bucket(migrationBucket).Get(key))
		return nil
	}); err != nil {
		return nil, fmt.Errorf("bolt: %s: %w", op, err)
	}
	if doc == nil {
		return nil, fmt.Errorf("bolt: %s: %w", op, persistence.ErrNotFound)
	}
	return doc, nil
}

func (s *Store) updateMigration(ctx context.Context, op string, fn func(b *bbolt.Bucket) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("bolt: %s: %w", op, err)
	}
	if err := s.update(func(tx *bbolt.Tx) error { return fn(tx.Bucket(migrationBucket)) }); err != nil {
		return fmt.Errorf("bolt: %s: %w", op, err)
	}
	return nil
}

// LoadProgress reads the progress document.
func (s *Store) LoadProgress(ctx context.Context) (persistence.MigrationProgress, error) {
	doc, err := s.getMigration(ctx, "load progress", progressKey)
	if err != nil {
		return persistence.MigrationProgress{}, err
	}
	return document.DecodeProgress(doc)
}

// SaveProgress replaces the progress document.
func (s *Store) SaveProgress(ctx context.Context, p persistence.MigrationProgress) error {
	doc := document.Progress(p)
	return s.updateMigration(ctx, "save progress", func(b *bbolt.Bucket) error { return b.Put(progressKey, doc) })
}

// DeleteProgress removes the progress document.
func (s *Store) DeleteProgress(ctx context.Context) error {
	return s.updateMigration(ctx, "delete progress", func(b *bbolt.Bucket) error { return b.Delete(progressKey) })
}

// InsertLease stores l unless a lease exists (one write transaction decides).
func (s *Store) InsertLease(ctx context.Context, l persistence.Lease) error {
	doc := document.Lease(l)
	return s.updateMigration(ctx, "insert lease", func(b *bbolt.Bucket) error {
		if b.Get(leaseKey) != nil {
			return persistence.ErrConflict
		}
		return b.Put(leaseKey, doc)
	})
}

// LoadLease reads the lease.
func (s *Store) LoadLease(ctx context.Context) (persistence.Lease, error) {
	doc, err := s.getMigration(ctx, "load lease", leaseKey)
	if err != nil {
		return persistence.Lease{}, err
	}
	return document.DecodeLease(doc)
}

// RenewLease moves the expiry of owner's lease.
func (s *Store) RenewLease(ctx context.Context, owner string, expiresAt int64) error {
	return s.updateMigration(ctx, "renew lease", func(b *bbolt.Bucket) error {
		l, err := leaseIn(b)
		if err != nil {
			return err
		}
		if l.Owner != owner {
			return persistence.ErrNotFound
		}
		return b.Put(leaseKey, document.Lease(persistence.Lease{Owner: owner, ExpiresAt: expiresAt}))
	})
}

// DeleteLease removes owner's lease.
func (s *Store) DeleteLease(ctx context.Context, owner string) error {
	return s.updateMigration(ctx, "delete lease", func(b *bbolt.Bucket) error {
		l, err := leaseIn(b)
		if errors.Is(err, persistence.ErrNotFound) || (err == nil && l.Owner != owner) {
			return nil
		}
		if err != nil {
			return err
		}
		return b.Delete(leaseKey)
	})
}

func leaseIn(b *bbolt.Bucket) (persistence.Lease, error) {
	doc := b.Get(leaseKey)
	if doc == nil {
		return persistence.Lease{}, persistence.ErrNotFound
	}
	return document.DecodeLease(doc)
}
