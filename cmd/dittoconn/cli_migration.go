package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strings"
	"time"
)

const migrationUsage = `usage: dittoconn migration COMMAND [flags]

commands:
  start [--dry-run] [--resume]       start (or resume) the encryption migration
  status [--watch] [--interval D]    show its progress; --watch follows it with a progress bar
  abort                              stop the running migration (it can be resumed)

common flags: --url (DITTOCONN_URL), --password (DEVOPS_PASSWORD), --user, -o text|json, --timeout`

// The migration singleton is reached through the devops piggyback endpoint.
const (
	migrationTarget  = "/user/connectivityRoot/encryptionMigration"
	piggybackPath    = "/devops/piggyback/connectivity"
	maxServerTimeout = 60 * time.Second // the server's bound for ?timeout=
	// watchGrace is how long --watch waits for a migration to show up as
	// active before it reports that none is running.
	watchGrace = 10 * time.Second
)

func (c *cli) migration(args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprintln(c.errOut, migrationUsage)
		if len(args) == 0 {
			return usagef("a command is required")
		}
		return nil
	}
	cmd, args := args[0], args[1:]
	fs := c.flags("migration " + cmd)
	switch cmd {
	case "start":
		dryRun := fs.Bool("dry-run", false, "count what would change, write nothing")
		resume := fs.Bool("resume", false, "continue from the saved progress")
		if _, err := c.parse(fs, args, 0, 0, "migration start takes no arguments"); err != nil {
			return err
		}
		return c.migrationStart(*dryRun, *resume)
	case "status":
		watch := fs.Bool("watch", false, "follow the migration until it completes or is aborted")
		interval := fs.Duration("interval", time.Second, "time between two status requests with --watch")
		if _, err := c.parse(fs, args, 0, 0, "migration status takes no arguments"); err != nil {
			return err
		}
		if *interval < 100*time.Millisecond {
			return usagef("--interval must be at least 100ms")
		}
		if *watch {
			return c.migrationWatch(*interval)
		}
		st, raw, err := c.migrationStatus()
		if err != nil {
			return err
		}
		if c.output == "json" {
			c.printJSON(raw)
			return nil
		}
		c.printMigrationStatus(st)
		return nil
	case "abort":
		if _, err := c.parse(fs, args, 0, 0, "migration abort takes no arguments"); err != nil {
			return err
		}
		return c.migrationAbort()
	default:
		fmt.Fprintln(c.errOut, migrationUsage)
		return usagef("unknown command %q", cmd)
	}
}

// piggyback sends one command to the migration singleton and returns the
// response JSON, or the error the server or the singleton answered.
func (c *cli) piggyback(command map[string]any) ([]byte, error) {
	envelope, _ := json.Marshal(map[string]any{
		"targetActorSelection": migrationTarget,
		"headers":              map[string]any{"aggregate": false},
		"piggybackCommand":     command,
	})
	timeout := min(c.timeout, maxServerTimeout)
	q := url.Values{"timeout": {fmt.Sprintf("%dms", timeout.Milliseconds())}}
	r, err := c.do(http.MethodPost, piggybackPath, q, envelope, "application/json", nil)
	if err != nil {
		return nil, err
	}
	if r.status == http.StatusRequestTimeout && strings.TrimSpace(string(r.body)) == "null" {
		return nil, &serverError{status: r.status, body: []byte(
			"the encryption migration did not answer; it runs only when connection encryption is configured")}
	}
	if err := expect(r, http.StatusOK); err != nil {
		return nil, err
	}
	var head struct {
		Type    string          `json:"type"`
		Status  int             `json:"status"`
		Error   string          `json:"error"`
		Payload json.RawMessage `json:"payload"`
	}
	if err := json.Unmarshal(r.body, &head); err != nil {
		return nil, &transportError{fmt.Errorf("the server's answer is not JSON: %v", err)}
	}
	switch {
	case head.Type == "devops.responses:errorResponse":
		return nil, newServerError(head.Status, head.Payload)
	case head.Error != "" || head.Status >= 400:
		return nil, newServerError(head.Status, r.body)
	}
	return r.body, nil
}

func (c *cli) migrationStart(dryRun, resume bool) error {
	raw, err := c.piggyback(map[string]any{
		"type": "connectivity.commands:migrateEncryption", "dryRun": dryRun, "resume": resume,
	})
	if err != nil {
		return err
	}
	if c.output == "json" {
		c.printJSON(raw)
		return nil
	}
	var r struct {
		Phase     string `json:"phase"`
		DryRun    bool   `json:"dryRun"`
		Resumed   bool   `json:"resumed"`
		StartedAt string `json:"startedAt"`
	}
	_ = json.Unmarshal(raw, &r)
	switch {
	case r.Phase == "already_completed":
		fmt.Fprintln(c.out, "nothing to resume: the last migration completed")
	default:
		what := "started"
		if r.Resumed {
			what = "resumed"
		}
		mode := ""
		if r.DryRun {
			mode = " (dry run: nothing is written)"
		}
		fmt.Fprintf(c.out, "migration %s%s at %s; follow it with: dittoconn migration status --watch\n",
			what, mode, sanitize(r.StartedAt))
	}
	return nil
}

func (c *cli) migrationAbort() error {
	raw, err := c.piggyback(map[string]any{"type": "connectivity.commands:migrateEncryptionAbort"})
	if err != nil {
		return err
	}
	if c.output == "json" {
		c.printJSON(raw)
		return nil
	}
	var r struct {
		Phase         string      `json:"phase"`
		Snapshots     migCounters `json:"snapshots"`
		JournalEvents migCounters `json:"journalEvents"`
		AbortedAt     string      `json:"abortedAt"`
	}
	_ = json.Unmarshal(raw, &r)
	fmt.Fprintf(c.out, "migration aborted at %s (%s); resume it with: dittoconn migration start --resume\n",
		sanitize(r.AbortedAt), sanitize(r.Phase))
	fmt.Fprintf(c.out, "snapshots       %s\njournal events  %s\n", r.Snapshots, r.JournalEvents)
	return nil
}

// migCounters are the counters of one phase. Total is not in Ditto's answer;
// a server that knows it may send it, and the bar then shows a real fraction.
type migCounters struct {
	Processed int64  `json:"processed"`
	Skipped   int64  `json:"skipped"`
	Failed    int64  `json:"failed"`
	Total     *int64 `json:"total,omitempty"`
}

func (m migCounters) done() int64 { return m.Processed + m.Skipped + m.Failed }

func (m migCounters) String() string {
	return fmt.Sprintf("processed %d  skipped %d  failed %d", m.Processed, m.Skipped, m.Failed)
}

// migStatus is connectivity.responses:migrateEncryptionStatus.
type migStatus struct {
	Phase         string      `json:"phase"`
	Snapshots     migCounters `json:"snapshots"`
	JournalEvents migCounters `json:"journalEvents"`
	Timing        struct {
		StartedAt string `json:"startedAt"`
		UpdatedAt string `json:"updatedAt"`
	} `json:"timing"`
	DryRun bool `json:"dryRun"`
	Active bool `json:"migrationActive"`
}

func (s migStatus) done() int64 { return s.Snapshots.done() + s.JournalEvents.done() }

// finished: the migration ended (completed or aborted) and will not move.
func (s migStatus) finished() bool {
	return s.Phase == "completed" || strings.HasPrefix(s.Phase, "aborted")
}

func (c *cli) migrationStatus() (migStatus, []byte, error) {
	raw, err := c.piggyback(map[string]any{"type": "connectivity.commands:migrateEncryptionStatus"})
	if err != nil {
		return migStatus{}, nil, err
	}
	var st migStatus
	if err := json.Unmarshal(raw, &st); err != nil {
		return migStatus{}, nil, &transportError{fmt.Errorf("the migration status is not JSON: %v", err)}
	}
	return st, raw, nil
}

func (c *cli) printMigrationStatus(st migStatus) {
	state := "not running"
	if st.Active {
		state = "running"
	}
	if st.DryRun {
		state += ", dry run"
	}
	fmt.Fprintf(c.out, "phase           %s (%s)\n", sanitize(st.Phase), state)
	fmt.Fprintf(c.out, "snapshots       %s\n", st.Snapshots)
	fmt.Fprintf(c.out, "journal events  %s\n", st.JournalEvents)
	fmt.Fprintf(c.out, "started         %s\n", sanitize(st.Timing.StartedAt))
	fmt.Fprintf(c.out, "updated         %s\n", sanitize(st.Timing.UpdatedAt))
}

// migrationWatch polls the status and draws a progress line until the
// migration completes or is aborted (or stops running after it ran).
func (c *cli) migrationWatch(interval time.Duration) error {
	var (
		bar        progress
		seenActive bool
		last       string
		startWait  = time.Now()
	)
	for {
		st, raw, err := c.migrationStatus()
		if err != nil {
			c.endLine(&bar)
			return err
		}
		now := time.Now()
		bar.observe(now, st)
		if c.output == "json" {
			if compact := string(bytes.TrimSpace(raw)); compact != last {
				c.printJSON(raw)
				last = compact
			}
		} else {
			line := bar.line(st)
			switch {
			case c.isTTY:
				fmt.Fprintf(c.out, "\r%s\x1b[K", line)
			case line != last:
				fmt.Fprintln(c.out, line)
			}
			last = line
		}
		seenActive = seenActive || st.Active
		switch {
		case st.finished(), seenActive && !st.Active:
			c.endLine(&bar)
			if c.output == "text" {
				fmt.Fprintf(c.out, "migration %s after %s: snapshots %s; journal events %s\n",
					verdict(st), bar.elapsed(now).Round(time.Second), st.Snapshots, st.JournalEvents)
			}
			return nil
		case !seenActive && now.Sub(startWait) > watchGrace:
			c.endLine(&bar)
			if c.output == "text" {
				fmt.Fprintf(c.out, "no migration is running (phase %s)\n", sanitize(st.Phase))
			}
			return nil
		}
		select {
		case <-c.ctx.Done():
			c.endLine(&bar)
			return nil // interrupted by the operator; the migration goes on
		case <-time.After(interval):
		}
	}
}

// endLine finishes a redrawn progress line.
func (c *cli) endLine(*progress) {
	if c.isTTY && c.output == "text" {
		fmt.Fprintln(c.out)
	}
}

func verdict(st migStatus) string {
	switch {
	case st.Phase == "completed":
		return "completed"
	case strings.HasPrefix(st.Phase, "aborted"):
		return "aborted (" + sanitize(st.Phase) + ")"
	default:
		return "stopped in phase " + sanitize(st.Phase)
	}
}

// progress keeps what the bar needs across polls: a smoothed rate.
type progress struct {
	first     time.Time
	prevAt    time.Time
	prevDone  int64
	rate      float64 // documents per second, smoothed
	haveRate  bool
	startedAt time.Time
}

// observe feeds one status into the rate estimate.
func (p *progress) observe(now time.Time, st migStatus) {
	if p.first.IsZero() {
		p.first = now
		if t, err := time.Parse(time.RFC3339Nano, st.Timing.StartedAt); err == nil {
			p.startedAt = t
			// the migration's own average until now seeds the rate
			if secs := now.Sub(t).Seconds(); secs > 1 && st.done() > 0 && st.Active {
				p.rate, p.haveRate = float64(st.done())/secs, true
			}
		}
	} else if dt := now.Sub(p.prevAt).Seconds(); dt > 0 && st.done() >= p.prevDone {
		r := float64(st.done()-p.prevDone) / dt
		if p.haveRate {
			p.rate = 0.7*p.rate + 0.3*r // smooth out batch-sized jumps
		} else {
			p.rate, p.haveRate = r, true
		}
	}
	p.prevAt, p.prevDone = now, st.done()
}

func (p *progress) elapsed(now time.Time) time.Duration {
	if !p.startedAt.IsZero() {
		return now.Sub(p.startedAt)
	}
	return now.Sub(p.first)
}

// barWidth is the number of cells of the bar.
const barWidth = 24

// fraction is how far the migration is: from the totals when the server
// sends them; otherwise by phase (snapshots are the first half, the journal
// the second), which is all Ditto's status tells.
func fraction(st migStatus) (float64, bool) {
	if st.Phase == "completed" {
		return 1, true
	}
	if st.Snapshots.Total != nil && st.JournalEvents.Total != nil {
		total := *st.Snapshots.Total + *st.JournalEvents.Total
		if total > 0 {
			return math.Min(1, float64(st.done())/float64(total)), true
		}
	}
	if strings.HasSuffix(st.Phase, "journal") {
		return 0.5, false
	}
	return 0, false
}

// line renders the progress line: bar, phase, counters, rate, time left.
func (p *progress) line(st migStatus) string {
	frac, exact := fraction(st)
	filled := int(frac * barWidth)
	bar := strings.Repeat("█", filled) + strings.Repeat("░", barWidth-filled)
	pct := fmt.Sprintf("%3.0f%%", frac*100)
	if !exact {
		pct = "  ?%"
	}
	rate := "- docs/s"
	if p.haveRate {
		rate = fmt.Sprintf("%.1f docs/s", p.rate)
	}
	eta := "ETA unknown"
	switch {
	case st.finished():
		eta = "done"
	case exact && p.haveRate && p.rate > 0:
		total := *st.Snapshots.Total + *st.JournalEvents.Total
		left := time.Duration(float64(total-st.done()) / p.rate * float64(time.Second))
		eta = "ETA " + left.Round(time.Second).String()
	}
	dry := ""
	if st.DryRun {
		dry = " [dry run]"
	}
	return fmt.Sprintf("[%s] %s %s%s | snapshots %d/%d/%d | journal %d/%d/%d (processed/skipped/failed) | %s | %s",
		bar, pct, sanitize(st.Phase), dry,
		st.Snapshots.Processed, st.Snapshots.Skipped, st.Snapshots.Failed,
		st.JournalEvents.Processed, st.JournalEvents.Skipped, st.JournalEvents.Failed, rate, eta)
}
