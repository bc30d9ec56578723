package main

import (
	"context"
	"log/slog"

	"github.com/cairn-dev/cairn"
	"github.com/cairn-dev/cairn/mongo"
)

// openMongoStore opens the MongoDB event store described by cfg. It does not
// fail because the server is unreachable (Cairn starts anyway and the spool
// absorbs events); it fails only for an invalid URI or setting.
func openMongoStore(ctx context.Context, cfg Config, logger *slog.Logger) (cairn.EventStore, error) {
	st, err := mongo.Open(ctx, mongo.Config{
		URI:          cfg.MongoURI,
		WriteConcern: cfg.MongoWriteConcern,
		Retention:    cfg.Retention,
	}, logger)
	if err != nil {
		return nil, err
	}
	return st, nil
}
