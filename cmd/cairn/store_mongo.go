package main

import (
	"context"
	"errors"
	"log/slog"

	"github.com/cairn-dev/cairn"
)

// openMongoStore opens the MongoDB event store described by cfg. (Stub until
// the mongo package lands.)
func openMongoStore(ctx context.Context, cfg Config, logger *slog.Logger) (cairn.EventStore, error) {
	return nil, errors.New("MongoDB support is not built in yet")
}
