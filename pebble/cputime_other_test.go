//go:build !unix

package pebble_test

import (
	"testing"
	"time"
)

// cpuTime is zero where getrusage is missing: cpu-ns/event then reads 0.
func cpuTime(*testing.B) time.Duration { return 0 }
