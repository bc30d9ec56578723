// Command cairn is Cairn's single binary: the event ingestion server and its
// companion tools.
//
//	cairn serve      run the server (embedded store, or MongoDB with MONGODB_URI; NATS JetStream ingest with CAIRN_NATS_URL)
//	cairn writer     multi-node: store events from the NATS stream into MongoDB
//	cairn export     print stored events as JSON lines (server stopped; online: GET /api/export)
//	cairn backup     fetch an online backup from a running server into a directory
//	cairn restore    put a backup in place as a stopped server's data
//	cairn users      manage accounts
//	cairn sources    manage sources (write keys) for the tracking API
//	cairn loadgen    generate load against a Cairn server
//	cairn bench      run the benchmark suite
//	cairn version    print version, commit, build date and Go version (also --version)
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
)

// command is one subcommand.
type command struct {
	name, summary string
	run           func(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error
}

func commands() []command {
	return []command{
		{"serve", "run the Cairn server", runServe},
		{"writer", "multi-node: store events from the NATS stream into MongoDB (CAIRN_NATS_URL, MONGODB_URI)", runWriter},
		{"export", "print stored events as JSON lines (--user U for one user)", runExport},
		{"backup", "fetch an online backup of a running server (backup --url URL --out DIR)", runBackup},
		{"restore", "restore a backup into a stopped server's data dir (restore --from DIR)", runRestore},
		{"users", "manage accounts (users create --email … --name … [--admin])", runUsers},
		{"sources", "manage sources and write keys (sources create --name …, list, disable ID)", runSources},
		{"erase", "erase a tracked user's events and derived data (erase --user ID)", runErase},
		{"loadgen", "generate load against a Cairn server", runLoadgen},
		{"bench", "run the benchmark suite", runBench},
		{"version", "print version, commit, build date and Go version", runVersion},
		{"healthcheck", "probe a running server's /health (exit 0 when healthy)", runHealthcheck},
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run dispatches to a subcommand and returns the process exit code.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(stderr)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	if args[0] == "--version" || args[0] == "-version" {
		args = append([]string{"version"}, args[1:]...)
	}
	for _, c := range commands() {
		if c.name != args[0] {
			continue
		}
		err := c.run(ctx, args[1:], stdin, stdout, stderr)
		var ce *configError
		switch {
		case err == nil:
			return 0
		case errors.Is(err, flag.ErrHelp):
			return 0
		case errors.As(err, &ce):
			fmt.Fprintf(stderr, "cairn %s: %s\n", c.name, ce.msg)
			return 2
		default:
			fmt.Fprintf(stderr, "cairn %s: %v\n", c.name, err)
			return 1
		}
	}
	fmt.Fprintf(stderr, "cairn: unknown command %q\n", args[0])
	usage(stderr)
	return 2
}

// runVersion is `cairn version` (and `cairn --version`).
func runVersion(_ context.Context, args []string, _ io.Reader, stdout, _ io.Writer) error {
	if len(args) > 0 {
		return &configError{fmt.Sprintf("unexpected argument %q", args[0])}
	}
	bi, ok := debug.ReadBuildInfo()
	_, err := io.WriteString(stdout, versionText(bi, ok, buildTime()))
	return err
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "Usage: cairn <command> [flags]\n\nCommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'cairn <command> -h' for a command's flags.")
}
