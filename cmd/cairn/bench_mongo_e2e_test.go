package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cairn-dev/cairn/bench"
	"github.com/cairn-dev/cairn/mongo/mongotest"
	"go.mongodb.org/mongo-driver/v2/bson"
	mongodriver "go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// TestBenchMongoPhase runs `cairn bench --only mongo` against FerretDB in
// short phases: the report has the four direct-write rows, the cairn serve
// run and target T5 with a measured ratio, and every scratch database is
// dropped afterwards.
func TestBenchMongoPhase(t *testing.T) {
	srv := mongotest.Start(t)
	out := filepath.Join(t.TempDir(), "report.json")
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, cairnBin, "bench", "--only", "mongo", "--mongodb-uri", srv.URI(),
		"--duration", "1s", "--users", "50", "--concurrency", "4", "--out", out)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.Output()
	if err != nil {
		t.Fatalf("cairn bench --only mongo: %v\n%s", err, stderr.Bytes())
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var rep bench.Report
	if err := json.Unmarshal(data, &rep); err != nil {
		t.Fatalf("report: %v\n%s", err, data)
	}
	if len(rep.Errors) > 0 {
		t.Fatalf("phase errors: %v", rep.Errors)
	}
	rows := map[string]bench.Row{}
	for _, r := range rep.Rows {
		rows[r.Name] = r
	}
	for _, name := range []string{"MongoDB insertMany ceiling (1)", "MongoDB store writer (1)", "MongoDB store writer (2)",
		"MongoDB insertMany ceiling (2)", "Cairn on MongoDB, batched at 0.8 × insertMany"} {
		if r, ok := rows[name]; !ok || r.EventsPerSec <= 0 {
			t.Errorf("row %q = %+v, %v; want a measured rate", name, r, ok)
		}
	}
	if r := rows["Cairn on MongoDB, batched at 0.8 × insertMany"]; r.Non2xx+r.Errors != 0 {
		t.Errorf("cairn serve on MongoDB failed %d requests", r.Non2xx+r.Errors)
	}
	if len(rep.Targets) != 1 || !strings.HasPrefix(rep.Targets[0].Name, "T5") || rep.Targets[0].Value <= 0 ||
		!strings.Contains(rep.Targets[0].Detail, "backlog peak") {
		t.Errorf("targets %+v, want T5 with a measured ratio and the backlog", rep.Targets)
	}
	if !strings.Contains(string(stdout), "T5 MongoDB store writer vs raw insertMany") {
		t.Errorf("Markdown report has no T5 line:\n%s", stdout)
	}

	// The scratch databases are gone.
	client, err := mongodriver.Connect(options.Client().ApplyURI(srv.URI()))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Disconnect(context.Background()) //nolint:errcheck // test cleanup
	names, err := client.ListDatabaseNames(ctx, bson.D{})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if strings.HasPrefix(n, "cairn_bench_") {
			t.Errorf("scratch database %s left behind", n)
		}
	}
}
