package segment_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/cairn-dev/cairn/segment"
)

// BenchmarkDecodeBatch100 decodes a 100-message batch shaped as
// analytics-node sends it.
func BenchmarkDecodeBatch100(b *testing.B) {
	var items []string
	for i := range 100 {
		items = append(items, fmt.Sprintf(`{"timestamp":"2026-11-25T20:04:14.122Z","integrations":{},"type":"track","event":"Order Completed",`+
			`"properties":{"orderId":"o-%d","revenue":42.5,"currency":"EUR"},"context":{"library":{"name":"@segment/analytics-node","version":"3.1.0"}},`+
			`"userId":"user-%d","messageId":"node-next-1795637054122-%08d-9d04-44fa-b4e0-095bfb4839e2","_metadata":{"nodeVersion":"v20.20.2","jsRuntime":"node"}}`, i, i%7, i))
	}
	body := []byte(`{"batch":[` + strings.Join(items, ",") + `],"writeKey":"wk_test_123","sentAt":"2026-11-25T20:04:14.127Z"}`)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		req, err := segment.Decode(body, "batch", recv, segment.Options{})
		if err != nil || len(req.Messages) != 100 {
			b.Fatal(err, len(req.Rejected))
		}
	}
}

// BenchmarkDecodeLargeBatch decodes a batch at the limits: 2,500 small
// messages in about 500 KiB.
func BenchmarkDecodeLargeBatch(b *testing.B) {
	item := `{"type":"track","userId":"u","event":"E","properties":{"p":"` + strings.Repeat("x", 120) + `"}}`
	body := []byte(`{"batch":[` + strings.TrimSuffix(strings.Repeat(item+",", 2500), ",") + `]}`)
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, err := segment.Decode(body, "batch", recv, segment.Options{}); err != nil {
			b.Fatal(err)
		}
	}
}
