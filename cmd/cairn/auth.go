package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/cairn-dev/cairn"
	"github.com/cairn-dev/cairn/auth"
	"github.com/cairn-dev/cairn/betterauth"
	cairnhttp "github.com/cairn-dev/cairn/http"
)

// seedPlaceholderSecret is the BETTER_AUTH_SECRET of the seed's example
// .env; it is public, so production refuses it.
const seedPlaceholderSecret = "change-this-to-a-secure-random-string-in-production"

// secretFile holds the development secret generated under the data dir.
const secretFile = "auth-secret"

// accounts is the account stack: the domain service (sessions, users) and
// the Better Auth protocol in front of it.
type accounts struct {
	service *auth.Service
	api     *betterauth.Handler
}

// newAccounts builds the account service and its Better Auth protocol
// handler on the chosen store.
func newAccounts(cfg Config, store cairn.EventStore, logger *slog.Logger) (*accounts, error) {
	as, ok := store.(cairn.AuthStore)
	if !ok {
		return nil, fmt.Errorf("the %T store cannot keep accounts", store)
	}
	secret, err := authSecret(cfg, logger)
	if err != nil {
		return nil, err
	}
	// Logs written on behalf of a request carry its request_id.
	logger = slog.New(cairnhttp.WithRequestID(logger.Handler()))
	open := cfg.Signup.Open(cfg.Production())
	svc := auth.New(as, auth.Config{SignupOpen: open, Logger: logger})
	api, err := betterauth.New(svc, betterauth.Config{
		Secret:         secret,
		BaseURL:        cfg.AuthURL,
		TrustedOrigins: cfg.TrustedOrigins,
		TrustedProxies: cfg.TrustedProxies,
		Production:     cfg.Production(),
		// A fresh development server trusts the loopback origins of its
		// own port (localhost and 127.0.0.1), so browser sign-in works.
		TrustLoopback: !cfg.Production() && cfg.AuthURL == "",
		Logger:        logger,
	})
	if err != nil {
		return nil, err
	}
	if cfg.Production() && cfg.AuthURL == "" {
		logger.Warn("BETTER_AUTH_URL is not set: session cookies use the __Secure- prefix, so Cairn must be reached over https")
	}
	logger.Info("authentication ready", "signup", map[bool]string{true: "open", false: "closed"}[open],
		"trusted_origins", len(cfg.TrustedOrigins))
	return &accounts{service: svc, api: api}, nil
}

// authSecret returns the cookie-signing secret. Production requires
// BETTER_AUTH_SECRET (and refuses the seed's placeholder); development
// generates one and keeps it under the data dir, so sessions survive
// restarts.
func authSecret(cfg Config, logger *slog.Logger) (string, error) {
	s := cfg.AuthSecret
	if cfg.Production() {
		switch {
		case s == "":
			return "", &configError{"BETTER_AUTH_SECRET is required in production (e.g. openssl rand -hex 32)"}
		case s == seedPlaceholderSecret:
			return "", &configError{"BETTER_AUTH_SECRET is the seed's public placeholder; set a random secret (e.g. openssl rand -hex 32)"}
		case len(s) < 32:
			logger.Warn("BETTER_AUTH_SECRET is shorter than 32 characters")
		}
		return s, nil
	}
	if s != "" {
		if s == seedPlaceholderSecret {
			logger.Warn("BETTER_AUTH_SECRET is the seed's public placeholder; production would refuse it")
		}
		return s, nil
	}
	path := filepath.Join(cfg.DataDir, secretFile)
	b, err := os.ReadFile(path)
	if err == nil && len(strings.TrimSpace(string(b))) >= 32 {
		logger.Warn("BETTER_AUTH_SECRET is not set: using the development secret kept in the data dir", "path", path)
		return strings.TrimSpace(string(b)), nil
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	raw := make([]byte, 32)
	rand.Read(raw)
	secret := hex.EncodeToString(raw)
	if err := writeSecret(path, secret); err != nil {
		return "", err
	}
	logger.Warn("BETTER_AUTH_SECRET is not set: generated a development secret in the data dir (set one in production)", "path", path)
	return secret, nil
}

// writeSecret writes the secret readable by the owner only, durably.
func writeSecret(path, secret string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("create data dir: %w", err)
	}
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	_, err = f.WriteString(secret + "\n")
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp) // best effort: the write error below is what matters
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
