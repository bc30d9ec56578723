package main

import (
	"context"
	"errors"
	"io"
)

// runUsers manages accounts. (Stub until the auth package is wired.)
func runUsers(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	return errors.New("not implemented yet")
}
