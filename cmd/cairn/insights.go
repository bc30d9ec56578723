package main

import (
	"fmt"
	"io"
	"log/slog"

	"github.com/cairn-dev/cairn"
	"github.com/cairn-dev/cairn/insights"
	"github.com/cairn-dev/cairn/pebble"
)

// insightsOf returns the insights over the store, or nil when the store
// answers none.
func insightsOf(store cairn.EventStore) cairn.Insights {
	is, ok := store.(cairn.InsightStore)
	if !ok {
		return nil
	}
	return insights.New(is)
}

// benchStoreWithoutInsights returns the bench's opener of an embedded store
// like serve's but without the insight aggregates (pebble's
// NoInsightAggregates), for the ingest-cost ratio.
func benchStoreWithoutInsights() (func(string) (cairn.EventStore, error), error) {
	cfg, err := loadConfig("bench", nil, func(string) string { return "" }, "", io.Discard, nil)
	if err != nil {
		return nil, fmt.Errorf("default configuration: %w", err)
	}
	return func(dir string) (cairn.EventStore, error) {
		st, err := pebble.Open(dir, pebble.Options{Logger: slog.New(slog.DiscardHandler), DeferSync: true, CacheSize: cfg.StoreCache,
			NoInsightAggregates: true})
		if err != nil {
			return nil, err // not a typed nil in the interface
		}
		return st, nil
	}, nil
}
