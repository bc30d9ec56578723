package wal_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairn-dev/cairn/wal"
)

// BenchmarkAppend measures durable appends of a typical 100-event batch
// record (~20 KB) and of a single-event record (~200 B), with 1 to 64
// concurrent appenders: every append waits for its fsync, so throughput grows
// with concurrency only through group commit. "records/fsync" is the mean
// group size.
func BenchmarkAppend(b *testing.B) {
	for _, size := range []int{200, 20 << 10} {
		for _, conc := range []int{1, 8, 64} {
			b.Run(fmt.Sprintf("size=%d/appenders=%d", size, conc), func(b *testing.B) {
				var mu sync.Mutex
				syncs, records := 0, 0
				w, err := wal.Open(b.TempDir(), wal.Options{OnSync: func(_ time.Duration, n, _ int) {
					mu.Lock()
					syncs++
					records += n
					mu.Unlock()
				}})
				if err != nil {
					b.Fatal(err)
				}
				defer mustClose(b, w)
				data := make([]byte, size)
				for i := range data {
					data[i] = byte(i)
				}
				ctx := context.Background()
				b.SetBytes(int64(size))
				var left atomic.Int64
				left.Store(int64(b.N))
				var wg sync.WaitGroup
				b.ResetTimer()
				for range conc {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for left.Add(-1) >= 0 {
							if _, err := w.Append(ctx, data); err != nil {
								b.Error(err)
								return
							}
						}
					}()
				}
				wg.Wait()
				b.StopTimer()
				mu.Lock()
				if syncs > 0 {
					b.ReportMetric(float64(records)/float64(syncs), "records/fsync")
				}
				mu.Unlock()
			})
		}
	}
}
