package cairn_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/cairn-dev/cairn"
)

// benchEvent is a typical page_view as clients send it.
var benchEvent = []byte(`{"eventId":"lg1a2b3c4d-k3-0","userId":"user-4711","sessionId":"user-4711-s2","type":"page_view",` +
	`"occurredAt":1764000000000,"payload":{"url":"/products/laptop-pro-14","referrer":"https://www.google.com/","loadTimeMs":412}}`)

func BenchmarkDecodeEvent(b *testing.B) {
	rules := cairn.NewEventRules(nil, 24*time.Hour)
	now := time.Now()
	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"PageView", benchEvent},
		{"ISOTimeNoID", []byte(`{"userId":"user-1","sessionId":"s-1","type":"search","occurredAt":"2025-12-15T10:30:00.123Z","payload":{"query":"wireless headphones","results":42}}`)},
		{"Invalid", []byte(`{"userId":"","sessionId":3,"type":"nope","occurredAt":"yesterday"}`)},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.SetBytes(int64(len(tc.data)))
			b.ReportAllocs()
			for b.Loop() {
				cairn.DecodeEvent(tc.data, 0, now, rules)
			}
		})
	}
}

func batch100(b *testing.B) []cairn.Event {
	rules := cairn.NewEventRules(nil, 24*time.Hour)
	ev, errs := cairn.DecodeEvent(benchEvent, 0, time.Now(), rules)
	if errs != nil {
		b.Fatal(errs)
	}
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
