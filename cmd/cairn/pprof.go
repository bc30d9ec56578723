package main

import (
	"context"
	"log/slog"
)

// startPprof serves net/http/pprof on addr ("" = off). (Stub.)
func startPprof(ctx context.Context, addr string, logger *slog.Logger) error { return nil }
