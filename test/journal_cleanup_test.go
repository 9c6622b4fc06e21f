package test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/dittoconn/dittoconn/persistence"
	"github.com/dittoconn/dittoconn/persistence/cleanup"
	"github.com/dittoconn/dittoconn/test/blackbox"
	"github.com/dittoconn/dittoconn/test/kit"
	"github.com/dittoconn/dittoconn/test/poll"
)

// TestJournalCleanupThroughTheGrain: a connection modified through the API
// while the node runs Ditto's journal cleanup (retention none, quick
// pacing) keeps a journal of at most a snapshot interval of events, answers
// its last modification, and after a restart recovers it exactly and is
// still listed. The default run makes 300 modifications (one fsync'ed
// commit each); DITTOCONN_CLEANUP_MODS=10000 makes the 10,000
// (minutes). The SIGKILL during a cleanup is in persistence/cleanup.
func TestJournalCleanupThroughTheGrain(t *testing.T) {
	mods := 300
	if v := os.Getenv("DITTOCONN_CLEANUP_MODS"); v != "" {
		var err error
		if mods, err = strconv.Atoi(v); err != nil || mods < 20 {
			t.Fatalf("DITTOCONN_CLEANUP_MODS=%q: want a number of at least 20", v)
		}
	}
	for _, eng := range blackbox.Engines() {
		t.Run(eng.Name, func(t *testing.T) {
			open := eng.Open(t)
			cfg := cleanup.Defaults()
			cfg.HistoryRetention, cfg.QuietPeriod, cfg.Interval, cfg.CreditsPerBatch = 0, 20*time.Millisecond, 5*time.Millisecond, 10
			n := kit.Start(t, open(), kit.Options{Cleanup: &cfg})
			const id = "cleaned-conn"
			path := "/api/2/connections/" + id
			conn := apiPushConn(id, "http://127.0.0.1:9")
			if code, body := n.Do(t, http.MethodPut, path, conn, true); code != http.StatusCreated {
				t.Fatalf("create: %d %s", code, body)
			}
			for i := 1; i <= mods; i++ {
				conn["name"] = fmt.Sprintf("modification %d", i)
				if code, body := n.Do(t, http.MethodPut, path, conn, true); code != http.StatusNoContent {
					t.Fatalf("modification %d: %d %s", i, code, body)
				}
			}
			pid := "connection:" + id
			events := func() (count int, low int64) {
				_ = n.Store.Replay(t.Context(), pid, 1, func(ev persistence.Event) error {
					if count == 0 {
						low = ev.Seq
					}
					count++
					return nil
				})
				return count, low
			}
			// the grain snapshots every 10 events: at most the events from the
			// newest snapshot on stay
			poll.Until(t, 30*time.Second, "the journal cleaned below the newest snapshot", func() bool {
				c, _ := events()
				return c <= 11
			})
			if c, low := events(); low < int64(mods)-10 {
				t.Errorf("%d events from %d left of %d", c, low, mods+1)
			}
			want := fmt.Sprintf("modification %d", mods)
			retrieve := func(n *kit.Node) {
				t.Helper()
				code, body := n.Do(t, http.MethodGet, path, nil, true)
				var got map[string]any
				if code != http.StatusOK || json.Unmarshal(body, &got) != nil || got["name"] != want {
					t.Fatalf("retrieve: %d %s, want name %q", code, body, want)
				}
			}
			retrieve(n)
			n.Stop()

			n = kit.Start(t, open(), kit.Options{})
			retrieve(n)
			if code, body := n.Do(t, http.MethodGet, "/api/2/connections?ids-only=true", nil, true); code != http.StatusOK || !json.Valid(body) || !containsID(body, id) {
				t.Errorf("ids after the restart: %d %s", code, body)
			}
		})
	}
}

func containsID(body []byte, id string) bool {
	var ids []string
	if json.Unmarshal(body, &ids) != nil {
		return false
	}
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}
