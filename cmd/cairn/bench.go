package main

import (
	"context"
	"errors"
	"io"
)

// runBench runs the benchmark suite. (Stub until the bench suite is wired.)
func runBench(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	return errors.New("not implemented yet")
}
