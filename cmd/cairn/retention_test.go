package main

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/cairn-dev/cairn"
	"github.com/cairn-dev/cairn/pebble"
)

// TestRetentionOnEmbeddedStore: CAIRN_RETENTION without MONGODB_URI is
// honoured by the embedded store: serve opens it with the retention (its
// purge loop says so) and events received longer ago than that are deleted.
// CAIRN_RETENTION is at least 1h, so the deletion is driven by
// PurgeExpired with the loop's cutoff rather than by waiting an interval.
func TestRetentionOnEmbeddedStore(t *testing.T) {
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	cfg := Config{DataDir: t.TempDir(), Retention: time.Hour}
	st, _, _, err := openServerStore(t.Context(), cfg, log)
	if err != nil {
		t.Fatalf("embedded store with retention refused: %v", err)
	}
	ps := st.(*pebble.Store)
	defer func() {
		if err := ps.Close(); err != nil {
			t.Error(err)
		}
	}()
	if !strings.Contains(logs.String(), "retention by periodic scan") || !strings.Contains(logs.String(), "retention=1h0m0s") {
		t.Fatalf("purge loop not started: %s", logs.String())
	}
	now := time.Now()
	if _, err := ps.InsertEvents(t.Context(), []cairn.Event{
		{EventID: "old", UserID: "u", Type: "t", Payload: json.RawMessage(`{}`), OccurredAt: now, ReceivedAt: now.Add(-2 * time.Hour)},
		{EventID: "new", UserID: "u", Type: "t", Payload: json.RawMessage(`{}`), OccurredAt: now, ReceivedAt: now},
	}); err != nil {
		t.Fatal(err)
	}
	if n, err := ps.PurgeExpired(t.Context(), now.Add(-cfg.Retention)); err != nil || n != 1 {
		t.Fatalf("PurgeExpired = %d, %v", n, err)
	}
	p, err := ps.Journey(t.Context(), cairn.JourneyQuery{UserID: "u", Limit: 10})
	if err != nil || len(p.Events) != 1 || p.Events[0].EventID != "new" {
		t.Fatalf("journey %+v, %v", p, err)
	}
}
