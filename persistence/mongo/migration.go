package mongo

import (
	"context"
	"errors"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"
	driver "go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/dittoconn/dittoconn/persistence"
	"github.com/dittoconn/dittoconn/persistence/document"
)

var _ persistence.Migration = (*Store)(nil)

// ScanAfterID queries {$and: [{_id: {$gt: after}}, {$or: [{path: {$exists:
// true}}, …]}]} sorted by _id, as Ditto's migration does; an afterID that
// is not an ObjectId's hex is compared as a string, as Ditto does.
func (s *Store) ScanAfterID(ctx context.Context, collection, afterID string, paths []string, limit int, fn func([]byte) error) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	var and bson.A
	if afterID != "" {
		var after any = afterID
		if id, err := bson.ObjectIDFromHex(afterID); err == nil {
			after = id
		}
		and = append(and, bson.D{{Key: document.FieldID, Value: bson.D{{Key: "$gt", Value: after}}}})
	}
	or := make(bson.A, 0, len(paths))
	for _, p := range paths {
		or = append(or, bson.D{{Key: p, Value: bson.D{{Key: "$exists", Value: true}}}})
	}
	if len(or) > 0 {
		and = append(and, bson.D{{Key: "$or", Value: or}})
	}
	filter := bson.D{}
	if len(and) > 0 {
		filter = bson.D{{Key: "$and", Value: and}}
	}
	opts := options.Find().SetSort(bson.D{{Key: document.FieldID, Value: 1}})
	if limit > 0 {
		opts.SetLimit(int64(limit)).SetBatchSize(int32(min(limit, 1000)))
	}
	cur, err := s.db.Collection(collection).Find(ctx, filter, opts)
	if err != nil {
		return fmt.Errorf("mongo: scan %s: %w", collection, err)
	}
	defer cur.Close(context.WithoutCancel(ctx))
	for cur.Next(ctx) {
		if err := fn(append([]byte(nil), cur.Current...)); err != nil {
			return err
		}
	}
	if err := cur.Err(); err != nil {
		return fmt.Errorf("mongo: scan %s: %w", collection, err)
	}
	return nil
}

// ReplaceByID runs one unordered bulk write of replaceOne({_id}, doc).
func (s *Store) ReplaceByID(ctx context.Context, collection string, docs [][]byte) (int, error) {
	if len(docs) == 0 {
		return 0, nil
	}
	models := make([]driver.WriteModel, 0, len(docs))
	for _, d := range docs {
		raw := bson.Raw(d)
		if err := raw.Validate(); err != nil {
			return 0, fmt.Errorf("mongo: replace in %s: %w: %v", collection, document.ErrMalformed, err)
		}
		id, err := raw.LookupErr(document.FieldID)
		if err != nil {
			return 0, fmt.Errorf("mongo: replace in %s: %w: no _id", collection, document.ErrMalformed)
		}
		models = append(models, driver.NewReplaceOneModel().SetFilter(bson.D{{Key: document.FieldID, Value: id}}).SetReplacement(raw))
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	res, err := s.db.Collection(collection).BulkWrite(ctx, models, options.BulkWrite().SetOrdered(false))
	if err != nil {
		return 0, fmt.Errorf("mongo: replace in %s: %w", collection, err)
	}
	return int(res.MatchedCount), nil
}

func (s *Store) migration() *driver.Collection {
	return s.db.Collection(document.EncryptionMigrationCollection)
}

func (s *Store) findMigration(ctx context.Context, op, id string) (bson.Raw, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	raw, err := s.migration().FindOne(ctx, bson.D{{Key: document.FieldID, Value: id}}).Raw()
	if errors.Is(err, driver.ErrNoDocuments) {
		return nil, fmt.Errorf("mongo: %s: %w", op, persistence.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("mongo: %s: %w", op, err)
	}
	return raw, nil
}

// LoadProgress reads {_id: "current"}.
func (s *Store) LoadProgress(ctx context.Context) (persistence.MigrationProgress, error) {
	raw, err := s.findMigration(ctx, "load progress", document.ProgressID)
	if err != nil {
		return persistence.MigrationProgress{}, err
	}
	return document.DecodeProgress(raw)
}

// SaveProgress upserts {_id: "current"} with replaceOne, as Ditto does.
func (s *Store) SaveProgress(ctx context.Context, p persistence.MigrationProgress) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	_, err := s.migration().ReplaceOne(ctx, bson.D{{Key: document.FieldID, Value: document.ProgressID}},
		document.Progress(p), options.Replace().SetUpsert(true))
	if err != nil {
		return fmt.Errorf("mongo: save progress: %w", err)
	}
	return nil
}

// DeleteProgress deletes {_id: "current"}.
func (s *Store) DeleteProgress(ctx context.Context) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	if _, err := s.migration().DeleteOne(ctx, bson.D{{Key: document.FieldID, Value: document.ProgressID}}); err != nil {
		return fmt.Errorf("mongo: delete progress: %w", err)
	}
	return nil
}

// InsertLease inserts {_id: "lease"}; the unique _id decides.
func (s *Store) InsertLease(ctx context.Context, l persistence.Lease) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	if _, err := s.migration().InsertOne(ctx, document.Lease(l)); err != nil {
		if driver.IsDuplicateKeyError(err) {
			return fmt.Errorf("mongo: insert lease: %w", persistence.ErrConflict)
		}
		return fmt.Errorf("mongo: insert lease: %w", err)
	}
	return nil
}

// LoadLease reads {_id: "lease"}.
func (s *Store) LoadLease(ctx context.Context) (persistence.Lease, error) {
	raw, err := s.findMigration(ctx, "load lease", document.LeaseID)
	if err != nil {
		return persistence.Lease{}, err
	}
	return document.DecodeLease(raw)
}

func leaseFilter(owner string) bson.D {
	return bson.D{{Key: document.FieldID, Value: document.LeaseID}, {Key: "owner", Value: owner}}
}

// RenewLease sets expiresAt on owner's lease.
func (s *Store) RenewLease(ctx context.Context, owner string, expiresAt int64) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	res, err := s.migration().UpdateOne(ctx, leaseFilter(owner),
		bson.D{{Key: "$set", Value: bson.D{{Key: "expiresAt", Value: expiresAt}}}})
	if err != nil {
		return fmt.Errorf("mongo: renew lease: %w", err)
	}
	if res.MatchedCount == 0 {
		return fmt.Errorf("mongo: renew lease: %w", persistence.ErrNotFound)
	}
	return nil
}

// DeleteLease deletes owner's lease.
func (s *Store) DeleteLease(ctx context.Context, owner string) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	if _, err := s.migration().DeleteOne(ctx, leaseFilter(owner)); err != nil {
		return fmt.Errorf("mongo: delete lease: %w", err)
	}
	return nil
}
