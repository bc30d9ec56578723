package main

import (
	"context"
	"errors"
	"io"
)

// runLoadgen generates load. (Stub until the loadgen package is wired.)
func runLoadgen(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	return errors.New("not implemented yet")
}
