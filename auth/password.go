package auth

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"strings"

	"golang.org/x/crypto/scrypt"
	"golang.org/x/text/unicode/norm"
)

// scrypt parameters, exactly as Better Auth uses them, so that hashes copied
// from a Better Auth database verify.
const (
	scryptN      = 16384
	scryptR      = 16
	scryptP      = 1
	scryptKeyLen = 64
	saltLen      = 16
)

// Password length limits, as Better Auth's defaults.
const (
	MinPasswordLength = 8
	MaxPasswordLength = 128
)

// dummyHash is verified against when the email is unknown, so that a
// sign-in takes as long whether or not the account exists.
const dummyHash = "00000000000000000000000000000000:" +
	"00000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"

// Hasher hashes and verifies passwords with scrypt in Better Auth's format
// ("saltHex:keyHex"; the hex text of the salt is the scrypt salt input; the
// password is NFKC-normalised). Each hash takes 16 MiB of memory, so at most
// a few run at once.
type Hasher struct {
	sem chan struct{}
}

// NewHasher returns a Hasher that runs at most concurrency hashes at once
// (at least 1).
func NewHasher(concurrency int) *Hasher {
	return &Hasher{sem: make(chan struct{}, max(1, concurrency))}
}

// Hash returns the Better Auth hash of password.
func (h *Hasher) Hash(ctx context.Context, password string) (string, error) {
	salt := make([]byte, saltLen)
	rand.Read(salt)
	saltHex := hex.EncodeToString(salt)
	key, err := h.key(ctx, password, saltHex)
	if err != nil {
		return "", err
	}
	return saltHex + ":" + hex.EncodeToString(key), nil
}

// Verify reports whether password matches hash, comparing in constant time.
// A malformed hash never matches (but is still hashed against, to keep the
// timing uniform).
func (h *Hasher) Verify(ctx context.Context, hash, password string) (bool, error) {
	saltHex, keyHex, ok := strings.Cut(hash, ":")
	want, err := hex.DecodeString(keyHex)
	if !ok || err != nil || len(want) != scryptKeyLen {
		saltHex, want, ok = "00000000000000000000000000000000", make([]byte, scryptKeyLen), false
	}
	got, err := h.key(ctx, password, saltHex)
	if err != nil {
		return false, err
	}
	return subtle.ConstantTimeCompare(got, want) == 1 && ok, nil
}

// VerifyDummy spends the time of one verification; sign-in calls it for
// unknown emails.
func (h *Hasher) VerifyDummy(ctx context.Context, password string) error {
	_, err := h.Verify(ctx, dummyHash, password)
	return err
}

func (h *Hasher) key(ctx context.Context, password, saltHex string) ([]byte, error) {
	select {
	case h.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("wait to hash password: %w", ctx.Err())
	}
	defer func() { <-h.sem }()
	key, err := scrypt.Key([]byte(norm.NFKC.String(password)), []byte(saltHex), scryptN, scryptR, scryptP, scryptKeyLen)
	if err != nil {
		return nil, fmt.Errorf("scrypt: %w", err)
	}
	return key, nil
}
