// Package migration is the encryption-migration singleton at
// /user/connectivityRoot/encryptionMigration: a cluster grain kind with one
// fixed identity that rewrites the encrypted connection fields of every
// stored snapshot and journal event for a new configuration (initial
// encryption, key rotation, disable), in batches, throttled, resumable,
// with Ditto's commands, responses and progress document. A lease document
// in the store keeps the work from running twice.
package migration

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/cluster"
	"github.com/rs/zerolog"

	"github.com/dittoconn/dittoconn/persistence"
	"github.com/dittoconn/dittoconn/persistence/document"
	"github.com/dittoconn/dittoconn/persistence/fieldcrypto"
	pb "github.com/dittoconn/dittoconn/proto"
	"github.com/dittoconn/dittoconn/proto/ditto"
)

// Kind is the cluster kind; Identity its one identity.
const (
	Kind     = "encryptionMigration"
	Identity = "encryptionMigration"
)

// Response types.
const (
	responseMigrate = "connectivity.responses:migrateEncryption"
	responseStatus  = "connectivity.responses:migrateEncryptionStatus"
	responseAbort   = "connectivity.responses:migrateEncryptionAbort"
)

// Phases (Ditto's MigrationPhase) and the response-only values.
const (
	PhaseSnapshots        = "snapshots"
	PhaseJournal          = "journal"
	PhaseCompleted        = "completed"
	PhaseStarted          = "started"
	PhaseAlreadyCompleted = "already_completed"
	prefixInProgress      = "in_progress:"
	prefixAborted         = "aborted:"
)

// Ditto's failure messages (answered as 503 ask.error).
const (
	msgAlreadyRunning = "Migration already in progress. Use migrateEncryptionStatus to check progress or migrateEncryptionAbort to cancel."
	msgNotRunning     = "No migration is currently running."
	msgNoKeys         = "Encryption is not enabled and no old key configured. Cannot migrate without encryption keys."
)

// Config configures the singleton.
type Config struct {
	// Store is the engine itself (not the encrypting decorator): the
	// migration reads and writes documents as stored.
	Store    persistence.Migration
	Settings fieldcrypto.Settings
	// LeaseTTL is how long a lease outlives its last renewal (default 30 s);
	// after a crash a new run waits at most this long.
	LeaseTTL time.Duration
	// StoreTimeout bounds each store call (default 10 s).
	StoreTimeout time.Duration
	Logger       zerolog.Logger
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// DefaultLeaseTTL is the default lifetime of a migration's lease.
const DefaultLeaseTTL = 30 * time.Second

func (c *Config) defaults() {
	if c.LeaseTTL <= 0 {
		c.LeaseTTL = DefaultLeaseTTL
	}
	if c.StoreTimeout <= 0 {
		c.StoreTimeout = 10 * time.Second
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Settings.BatchSize <= 0 {
		c.Settings.BatchSize = fieldcrypto.DefaultSettings().BatchSize
	}
}

// NewKind returns the cluster kind. Every activation of it in this process
// shares one Service, so even a brief double activation sees one state.
func NewKind(cfg Config) *cluster.Kind {
	svc := NewService(cfg)
	props := actor.PropsFromProducer(func() actor.Actor { return &grain{svc: svc} })
	return cluster.NewKind(Kind, props)
}

type grain struct{ svc *Service }

func (g *grain) Receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *pb.Command:
		ctx.Respond(msg.Answer(g.svc.Handle(msg)))
	case *cluster.ClusterInit:
		go g.svc.PickUpHandoff()
	case *actor.Stopping:
		// The singleton stops with the member or moves: the run stops
		// after its current batch and saves its progress, as an abort
		// does, and is handed off to the next activation (handoff.go).
		if g.svc.Stop(5 * time.Second) {
			g.svc.markHandoff()
		}
	}
}

// Service holds the migration's state: the current (or last) run.
type Service struct {
	cfg Config
	log zerolog.Logger

	mu      sync.Mutex
	running bool
	dryRun  bool
	mem     *persistence.MigrationProgress // in-memory progress of the current or last run
	abort   chan struct{}                  // closed to abort the running run
	done    chan struct{}                  // closed when the running run ended
	// totals of the current or last run, once counted; counting starts
	// with the first status request of a run, so that a run nobody watches
	// pays nothing for it
	totalSnapshots, totalJournal *int64
	counting                     bool
	plan                         *plan
}

// NewService returns a Service (NewKind uses one; tests may drive it directly).
func NewService(cfg Config) *Service {
	cfg.defaults()
	return &Service{cfg: cfg, log: cfg.Logger}
}

// Handle answers one command.
func (s *Service) Handle(cmd *pb.Command) *pb.Reply {
	ctx, cancel := s.callCtx(cmd)
	defer cancel()
	switch cmd.Type {
	case ditto.MigrateEncryption:
		var body struct {
			DryRun bool `json:"dryRun"`
			Resume bool `json:"resume"`
		}
		if len(cmd.Payload) > 0 {
			if err := json.Unmarshal(cmd.Payload, &body); err != nil {
				de := ditto.New(http.StatusBadRequest, ditto.CodeJSONFormatInvalid, err.Error(), "")
				return &pb.Reply{Kind: pb.Reply_PARSE_ERROR, Status: int32(de.Status), Payload: de.JSON()}
			}
		}
		return s.migrate(ctx, body.DryRun, body.Resume)
	case ditto.MigrateEncryptionStatus:
		return s.status(ctx)
	case ditto.MigrateEncryptionAbort:
		return s.abortRun()
	default:
		// Ditto's actor leaves other messages unhandled: nobody answers.
		return &pb.Reply{Kind: pb.Reply_NO_ANSWER}
	}
}

// callCtx bounds the store calls of one command by the caller's deadline.
func (s *Service) callCtx(cmd *pb.Command) (context.Context, context.CancelFunc) {
	return cmd.Context(s.cfg.StoreTimeout)
}

// failure is Ditto's answer to a failed ask: 503 ask.error with the message.
func failure(msg string) *pb.Reply {
	de := ditto.AskFailed(msg)
	return &pb.Reply{Kind: pb.Reply_PARSE_ERROR, Status: int32(de.Status), Payload: de.JSON()}
}

func respond(status int, v any) *pb.Reply {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
	return &pb.Reply{Kind: pb.Reply_RESPONSE, Status: int32(status), Payload: bytes.TrimSpace(b.Bytes())}
}

type migrateResponse struct {
	Type      string `json:"type"`
	Status    int    `json:"status"`
	Phase     string `json:"phase"`
	DryRun    bool   `json:"dryRun"`
	Resumed   bool   `json:"resumed"`
	StartedAt string `json:"startedAt"`
}

type counters struct {
	Processed int64 `json:"processed"`
	Skipped   int64 `json:"skipped"`
	Failed    int64 `json:"failed"`
	// Total (not in Ditto) is how many documents the run has to look at,
	// counted in the background, so that a client can show an estimate.
	Total *int64 `json:"total,omitempty"`
}

type progressIDs struct {
	LastSnapshotID  string `json:"lastProcessedSnapshotId,omitempty"`
	LastSnapshotPID string `json:"lastProcessedSnapshotPid,omitempty"`
	LastJournalID   string `json:"lastProcessedJournalId,omitempty"`
	LastJournalPID  string `json:"lastProcessedJournalPid,omitempty"`
}

type timing struct {
	StartedAt string `json:"startedAt"`
	UpdatedAt string `json:"updatedAt"`
}

type statusResponse struct {
	Type            string       `json:"type"`
	Status          int          `json:"status"`
	Phase           string       `json:"phase"`
	Snapshots       counters     `json:"snapshots"`
	JournalEvents   counters     `json:"journalEvents"`
	Progress        *progressIDs `json:"progress,omitempty"`
	Timing          timing       `json:"timing"`
	DryRun          bool         `json:"dryRun"`
	MigrationActive bool         `json:"migrationActive"`
}

type abortResponse struct {
	Type          string   `json:"type"`
	Status        int      `json:"status"`
	Phase         string   `json:"phase"`
	Snapshots     counters `json:"snapshots"`
	JournalEvents counters `json:"journalEvents"`
	AbortedAt     string   `json:"abortedAt"`
}

func (s *Service) now() string { return ditto.FormatInstant(s.cfg.Now()) }

func (s *Service) migrate(ctx context.Context, dryRun, resume bool) *pb.Reply {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.running {
		return failure(msgAlreadyRunning)
	}
	plan, err := newPlan(s.cfg.Settings)
	if err != nil {
		return failure(msgNoKeys)
	}
	now := s.now()
	var p persistence.MigrationProgress
	if resume {
		stored, err := s.cfg.Store.LoadProgress(ctx)
		switch {
		case errors.Is(err, persistence.ErrNotFound) || (err == nil && normalPhase(stored.Phase) == PhaseCompleted):
			return respond(http.StatusOK, migrateResponse{Type: responseMigrate, Status: http.StatusOK,
				Phase: PhaseAlreadyCompleted, DryRun: false, Resumed: true, StartedAt: now})
		case err != nil:
			s.log.Error().Err(err).Msg("loading the migration progress failed")
			return failure("Loading the migration progress failed.")
		}
		p = stored
		p.Phase = normalPhase(p.Phase)
	} else {
		// Unlike Ditto, a dry run keeps the progress of an aborted run.
		if !dryRun {
			if err := s.cfg.Store.DeleteProgress(ctx); err != nil {
				s.log.Error().Err(err).Msg("deleting the migration progress failed")
				return failure("Deleting the previous migration progress failed.")
			}
		}
		p = persistence.MigrationProgress{Phase: PhaseSnapshots, StartedAt: now, UpdatedAt: now}
	}
	s.running, s.dryRun = true, dryRun
	mem := p
	s.mem = &mem
	s.abort, s.done = make(chan struct{}), make(chan struct{})
	r := &run{svc: s, plan: plan, p: p, dryRun: dryRun, abort: s.abort, log: s.log.With().Str("mode", string(plan.mode)).Bool("dry_run", dryRun).Logger()}
	s.totalSnapshots, s.totalJournal, s.counting, s.plan = nil, nil, false, plan
	go r.execute(s.done)
	s.log.Info().Str("mode", string(plan.mode)).Bool("dry_run", dryRun).Bool("resumed", resume).Str("phase", p.Phase).Msg("encryption migration started")
	return respond(http.StatusAccepted, migrateResponse{Type: responseMigrate, Status: http.StatusAccepted,
		Phase: PhaseStarted, DryRun: dryRun, Resumed: resume, StartedAt: now})
}

// normalPhase maps a stored phase to one of Ditto's: unknown ones load as
// completed, as in Ditto.
func normalPhase(p string) string {
	switch p {
	case PhaseSnapshots, PhaseJournal, PhaseCompleted:
		return p
	}
	return PhaseCompleted
}

func (s *Service) status(ctx context.Context) *pb.Reply {
	s.mu.Lock()
	var p persistence.MigrationProgress
	phase, dry, active := "", false, false
	if s.mem != nil {
		p, dry, active = *s.mem, s.dryRun, s.running
		phase = p.Phase
		if active {
			phase = prefixInProgress + p.Phase
		}
	}
	s.mu.Unlock()
	if phase == "" {
		stored, err := s.cfg.Store.LoadProgress(ctx)
		switch {
		case err == nil:
			p = stored
			p.Phase = normalPhase(p.Phase)
		case errors.Is(err, persistence.ErrNotFound):
			p = persistence.MigrationProgress{Phase: PhaseSnapshots, StartedAt: s.now()}
		default:
			s.log.Error().Err(err).Msg("loading the migration progress failed")
			return failure("Loading the migration progress failed.")
		}
		phase = p.Phase
	}
	resp := statusResponse{Type: responseStatus, Status: http.StatusOK, Phase: phase,
		Snapshots:     counters{Processed: p.SnapshotsProcessed, Skipped: p.SnapshotsSkipped, Failed: p.SnapshotsFailed},
		JournalEvents: counters{Processed: p.JournalProcessed, Skipped: p.JournalSkipped, Failed: p.JournalFailed},
		Timing:        timing{StartedAt: p.StartedAt, UpdatedAt: s.now()},
		DryRun:        dry, MigrationActive: active}
	s.mu.Lock()
	if s.mem != nil && s.totalSnapshots != nil && s.totalJournal != nil {
		resp.Snapshots.Total, resp.JournalEvents.Total = s.totalSnapshots, s.totalJournal
	}
	if s.running && !s.counting && s.plan != nil {
		s.counting = true
		go s.countTotals(s.plan, s.done)
	}
	s.mu.Unlock()
	ids := progressIDs{p.LastSnapshotID, p.LastSnapshotPID, p.LastJournalID, p.LastJournalPID}
	if ids != (progressIDs{}) {
		resp.Progress = &ids
	}
	return respond(http.StatusOK, resp)
}

// countTotals counts the documents the run started with done has to look
// at (those with a secret at one of the pointers) and records them for the
// status, unless another run started meanwhile.
func (s *Service) countTotals(plan *plan, done chan struct{}) {
	count := func(coll string, paths []string) (*int64, bool) {
		var n int64
		after := ""
		for {
			ctx, cancel := context.WithTimeout(context.Background(), s.cfg.StoreTimeout)
			var last []byte
			page := 0
			err := s.cfg.Store.ScanAfterID(ctx, coll, after, paths, 500, func(doc []byte) error {
				page++
				last = doc
				return nil
			})
			cancel()
			if err != nil {
				s.log.Warn().Err(err).Str("collection", coll).Msg("counting documents for the migration status failed")
				return nil, false
			}
			n += int64(page)
			if page < 500 {
				return &n, true
			}
			after, _ = document.IDString(last)
		}
	}
	snaps, ok := count(document.SnapshotCollection, plan.snapPaths)
	if !ok {
		return
	}
	journal, ok := count(document.JournalCollection, plan.journalPaths)
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done == done {
		s.totalSnapshots, s.totalJournal = snaps, journal
	}
}

func (s *Service) abortRun() *pb.Reply {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.running {
		return failure(msgNotRunning)
	}
	select {
	case <-s.abort:
	default:
		close(s.abort)
	}
	p := *s.mem
	s.log.Info().Str("phase", p.Phase).Msg("encryption migration abort requested")
	return respond(http.StatusOK, abortResponse{Type: responseAbort, Status: http.StatusOK, Phase: prefixAborted + p.Phase,
		Snapshots:     counters{Processed: p.SnapshotsProcessed, Skipped: p.SnapshotsSkipped, Failed: p.SnapshotsFailed},
		JournalEvents: counters{Processed: p.JournalProcessed, Skipped: p.JournalSkipped, Failed: p.JournalFailed},
		AbortedAt:     s.now()})
}

// Stop aborts a running run and waits up to wait for it to save its
// progress and end. It reports whether a run that nobody aborted (and
// not a dry run) stopped unfinished, so that it can be handed off.
func (s *Service) Stop(wait time.Duration) (handoff bool) {
	s.mu.Lock()
	if !s.running {
		s.mu.Unlock()
		return false
	}
	select {
	case <-s.abort:
	default:
		close(s.abort)
		handoff = !s.dryRun
	}
	done := s.done
	s.mu.Unlock()
	select {
	case <-done:
	case <-time.After(wait):
		s.log.Warn().Msg("encryption migration did not stop in time")
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return handoff && s.mem != nil && s.mem.Phase != PhaseCompleted
}

// Running reports whether a run is active (for tests).
func (s *Service) Running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.running
}

// update publishes the run's progress.
func (s *Service) update(p persistence.MigrationProgress) {
	s.mu.Lock()
	s.mem = &p
	s.mu.Unlock()
}

// finish marks the run ended with its final progress.
func (s *Service) finish(p persistence.MigrationProgress) {
	s.mu.Lock()
	s.mem = &p
	s.running = false
	s.mu.Unlock()
}
