package main

import (
	"github.com/cairn-dev/cairn"
	"github.com/cairn-dev/cairn/insights"
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
