package cairn_test

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/cairn-dev/cairn"
)

// batch100 returns 100 typical page_view events (as the HTTP decoder yields
// them from loadgen's requests) with distinct ids.
func batch100(b *testing.B) []cairn.Event {
	b.Helper()
	now := time.Now().UTC().Truncate(time.Millisecond)
	ev := cairn.Event{UserID: "user-4711", SessionID: "user-4711-s2", Type: "page_view",
		Payload:    json.RawMessage(`{"url":"/products/laptop-pro-14","referrer":"https://www.google.com/","loadTimeMs":412}`),
		OccurredAt: time.UnixMilli(1764000000000).UTC(), ReceivedAt: now}
	events := make([]cairn.Event, 100)
	for i := range events {
		events[i] = ev
		events[i].EventID = fmt.Sprintf("ev-%d", i)
	}
	return events
}

// BenchmarkEncodeBatch measures the binary encoding of a 100-event batch, as
// written to the spool for one batched request.
func BenchmarkEncodeBatch(b *testing.B) {
	events := batch100(b)
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		buf = cairn.AppendBatch(buf[:0], events)
	}
	b.SetBytes(int64(len(buf)))
}

// BenchmarkDecodeBatch measures decoding a 100-event spool record, as the
// batcher and replay do.
func BenchmarkDecodeBatch(b *testing.B) {
	buf := cairn.AppendBatch(nil, batch100(b))
	dst := make([]cairn.Event, 0, 100)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if dst, err = cairn.DecodeBatch(dst[:0], buf); err != nil {
			b.Fatal(err)
		}
	}
}
