package main

import (
	"fmt"
	"os"
	"runtime/debug"
	"strings"
	"time"
)

// versionText describes the binary from its build information (bi from
// debug.ReadBuildInfo, ok false when there is none) and its executable's
// modification time as the build date (zero when unknown): version,
// commit, commit time, build date and Go version.
func versionText(bi *debug.BuildInfo, ok bool, built time.Time) string {
	version, commit, commitTime, goVersion := "unknown", "unknown", "unknown", "unknown"
	if ok && bi != nil {
		goVersion = bi.GoVersion
		if v := bi.Main.Version; v != "" {
			version = v
		}
		modified := false
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				commit = s.Value
			case "vcs.time":
				commitTime = s.Value
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
		if modified && commit != "unknown" {
			commit += " (modified)"
		}
	}
	date := "unknown"
	if !built.IsZero() {
		date = built.UTC().Format(time.RFC3339)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "cairn %s\n", version)
	fmt.Fprintf(&b, "commit:      %s\n", commit)
	fmt.Fprintf(&b, "commit time: %s\n", commitTime)
	fmt.Fprintf(&b, "built:       %s\n", date)
	fmt.Fprintf(&b, "go:          %s\n", goVersion)
	return b.String()
}

// buildTime returns the running executable's modification time: when `go
// build` wrote it (zero if unknown).
func buildTime() time.Time {
	exe, err := os.Executable()
	if err != nil {
		return time.Time{}
	}
	fi, err := os.Stat(exe)
	if err != nil {
		return time.Time{}
	}
	return fi.ModTime()
}
