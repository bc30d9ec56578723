package main

import (
	"context"
	"log/slog"

	"github.com/cairn-dev/cairn"
)

// newAuthenticator builds the account service on the chosen store. (Stub
// until the auth package is wired: reads are unprotected.)
func newAuthenticator(ctx context.Context, cfg Config, store cairn.EventStore, logger *slog.Logger) (cairn.Authenticator, error) {
	return nil, nil
}
