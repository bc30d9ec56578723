//go:build unix

package pebble_test

import (
	"syscall"
	"testing"
	"time"
)

// cpuTime returns the process's user + system CPU time so far: with the
// store's flushes and compactions in background goroutines, CPU per event
// is what Cairn's 2 cores pay, which wall time per batch does not show.
func cpuTime(b *testing.B) time.Duration {
	b.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
