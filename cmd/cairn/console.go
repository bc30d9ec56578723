package main

import (
	"log/slog"

	"github.com/cairn-dev/cairn"
	"github.com/cairn-dev/cairn/console"
	"github.com/cairn-dev/cairn/live"
)

// newConsole builds the live feed (fed by the HTTP server's OnAccepted and
// OnRejected) and the web console reading it.
func newConsole(cfg Config, ing cairn.Ingester, store cairn.EventStore, acc *accounts, logger *slog.Logger) (*live.Hub, *console.Console, error) {
	hub := live.NewHub(live.DefaultBuffer)
	con, err := console.New(console.Config{
		Ingester:     ing,
		Store:        store,
		Feed:         hub,
		Accounts:     acc.service,
		TrackedUsers: trackedUsersOf(store),
		Sources:      sourcesOf(store),
		Insights:     insightsOf(store),
		EventTypes:   cfg.EventTypes,
		SessionGap:   cfg.SessionGap,
		Logger:       logger,
	})
	if err != nil {
		return nil, nil, err
	}
	return hub, con, nil
}

// trackedUsersOf returns the store's tracked-users index, or nil when the
// store keeps none.
func trackedUsersOf(store cairn.EventStore) cairn.TrackedUserStore {
	ts, _ := store.(cairn.TrackedUserStore)
	return ts
}

// sourcesOf returns the store's sources, or nil when the store keeps none.
func sourcesOf(store cairn.EventStore) cairn.SourceStore {
	ss, _ := store.(cairn.SourceStore)
	return ss
}
