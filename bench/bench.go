// Package bench is Cairn's benchmark suite (`cairn bench`). In one run on the
// current machine it measures Cairn end to end together with the ceilings
// needed to read the numbers, because absolute figures move between noisy
// machines while ratios hold:
//
//  1. store ceiling: InsertEvents of pre-built 500-event batches straight
//     into the embedded store with Cairn's durability (the store opened as
//     serve opens it, synced every second like the pipeline does);
//  2. HTTP ceiling: a no-op server (`cairn bench --noop-server`, a separate
//     process like Cairn) that reads and discards the same bodies, driven by
//     the same load generator and connection counts;
//  3. Cairn end to end, as a separate `cairn serve` process, next to a
//     second no-op server that decodes the events as POST /events does
//     (issue 14's HTTP+JSON ceiling): single events at a fixed 5,000 req/s
//     (open model) on the fresh store and batched ingest (100
//     events/request) for SustainDuration, each run a b b a against the
//     decoding no-op; single-event ingest at the maximum; a batched burst
//     and at once the fixed rate again (AfterBurstDuration); journey reads
//     (limit 100) on a store pre-filled with ≥ 1M events over 100k users
//     while ingest runs at half its measured maximum, the stored rate
//     sampled against events stored while it fills (Report.Series); one
//     user's 100k-event journey paged end to end; then paired batched runs
//     for two ratios: POST /v1/batch with 100-message Segment batches over
//     POST /events with the same events (Report.SegmentVsEvents), and POST
//     /events with 10 live subscribers on GET /api/live over without
//     (Report.LiveVsQuiet); and the start-up time of a restart on the
//     filled store. The server's RSS (VmRSS from /proc) is sampled in
//     every phase;
//  4. the drain rate of a 1M-event spool backlog replayed after a crash.
//  5. insights (insights.go), in-process: ingest with vs without the
//     insight aggregates, trends and unique users over 90 days of 10M
//     events, a 3-step funnel over 30 days of 1M events under ingest
//     (`cairn bench --only insights` runs just these).
//
// --quick shrinks every phase (300k-event store, 200k backlog, 3 s runs) to a
// smoke run of a few minutes. Results are printed as Markdown tables, the
// issue 6 targets and issue 14's (T1–T5) each with pass/miss, and written
// as JSON; BENCHMARKS.md keeps the latest.
//
// The package knows no concrete store, spool or pipeline: cmd/cairn, the
// only wiring point, hands it openers (Options.OpenStore, OpenIngester)
// built from the same code `cairn serve` uses.
package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/cairn-dev/cairn"
)

// Options configure a suite run.
type Options struct {
	// Exe is the cairn binary, started as `Exe serve` and `Exe bench --noop-server`.
	Exe string
	// OpenStore opens an empty event store in dir exactly as `cairn serve`
	// opens its embedded store (the store ceiling writes into it). If the
	// store implements cairn.DeferredSyncer it is synced every second, as
	// the pipeline does. Required; cmd/cairn provides it.
	OpenStore func(dir string) (cairn.EventStore, error)
	// OpenIngester opens the spool under dataDir and an ingest-only pipeline
	// on it (no store, batcher not started) accepting up to maxBacklog
	// events, as `cairn serve` builds them; closeFn closes the spool without
	// flushing (the state a crash leaves). Required; cmd/cairn provides it.
	OpenIngester func(dataDir string, maxBacklog int64) (ing cairn.Ingester, closeFn func() error, err error)
	// Dir holds data directories and server logs (a temporary directory if empty).
	Dir string
	// Quick runs the smaller smoke version.
	Quick bool
	// Duration of each throughput phase (default 10s, quick 3s).
	Duration time.Duration
	// Concurrency is the connection count of batched runs (default 16);
	// SingleConcurrency that of single-event runs (default 64).
	Concurrency       int
	SingleConcurrency int
	// FixedRate is the request rate of the open-model single-event run
	// (default 5000).
	FixedRate float64
	// PrefillEvents and PrefillUsers size the store for journey reads
	// (default 1,000,000 over 100,000; quick 100,000 over 10,000).
	PrefillEvents int64
	PrefillUsers  int
	// ReplayEvents is the spool backlog replayed after a crash (default
	// 1,000,000; quick 200,000).
	ReplayEvents int
	// SustainDuration is the length of the first batched Cairn phase, the
	// one issue 14's target 1 is read from (default 60s; quick: Duration).
	SustainDuration time.Duration
	// BurstDuration and AfterBurstDuration are the batched burst and the
	// fixed-rate single-event run right after it (defaults 20s and 30s;
	// quick 5s and 6s).
	BurstDuration, AfterBurstDuration time.Duration
	// BigJourneyEvents is the size of the one-user journey read page by
	// page end to end (default 100,000, also with quick).
	BigJourneyEvents int64
	// Soak, if positive, adds a soak phase of this length: ingest at half
	// the batched maximum while the server's RSS and goroutines are sampled.
	Soak time.Duration
	// Progress receives one line per phase (nil = none).
	Progress io.Writer
	// OpenStoreWithoutInsights opens a store like OpenStore but without
	// the insight aggregates, for the ingest-cost ratio (insights.go);
	// nil skips the insight phases.
	OpenStoreWithoutInsights func(dir string) (cairn.EventStore, error)
	// InsightEvents sizes the 90-day store of the trends and unique-user
	// queries; FunnelEvents and FunnelUsers the 30-day store of the
	// funnel (defaults in insights.go).
	InsightEvents, FunnelEvents int64
	FunnelUsers                 int
	// MongoURI, when set, adds the MongoDB phase (mongo.go, issue 14's
	// target 5) against that server, on scratch databases it drops
	// afterwards; OpenMongo opens Cairn's MongoDB store on database db of
	// it (required with MongoURI; cmd/cairn provides it).
	MongoURI  string
	OpenMongo func(ctx context.Context, db string) (MongoTarget, error)
}

func (o *Options) setDefaults() {
	if o.Duration <= 0 {
		o.Duration = 10 * time.Second
		if o.Quick {
			o.Duration = 3 * time.Second
		}
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 16
	}
	if o.SingleConcurrency <= 0 {
		o.SingleConcurrency = 64
	}
	if o.FixedRate <= 0 {
		o.FixedRate = 5000
	}
	if o.PrefillEvents <= 0 {
		o.PrefillEvents = 1_000_000
		if o.Quick {
			o.PrefillEvents = 300_000
		}
	}
	if o.SustainDuration <= 0 {
		o.SustainDuration = 60 * time.Second
		if o.Quick {
			o.SustainDuration = o.Duration
		}
	}
	if o.BurstDuration <= 0 {
		o.BurstDuration = 20 * time.Second
		if o.Quick {
			o.BurstDuration = 5 * time.Second
		}
	}
	if o.AfterBurstDuration <= 0 {
		o.AfterBurstDuration = 30 * time.Second
		if o.Quick {
			o.AfterBurstDuration = 6 * time.Second
		}
	}
	if o.BigJourneyEvents <= 0 {
		o.BigJourneyEvents = 100_000
	}
	if o.PrefillUsers <= 0 {
		o.PrefillUsers = 100_000
		if o.Quick {
			o.PrefillUsers = 10_000
		}
	}
	if o.ReplayEvents <= 0 {
		o.ReplayEvents = 1_000_000
		if o.Quick {
			o.ReplayEvents = 200_000
		}
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
}

// Row is one measured line of the table.
type Row struct {
	// Name identifies the measurement ("store ceiling", ...).
	Name string `json:"name"`
	// Setup describes how it was driven.
	Setup        string  `json:"setup"`
	EventsPerSec float64 `json:"eventsPerSec,omitempty"`
	// StoredPerSec is the sustained rate of an ingest phase: acknowledged
	// events divided by the run plus the time the backlog took to drain
	// into the store afterwards.
	StoredPerSec   float64 `json:"storedPerSec,omitempty"`
	RequestsPerSec float64 `json:"requestsPerSec,omitempty"`
	P50Ms          float64 `json:"p50Ms,omitempty"`
	P99Ms          float64 `json:"p99Ms,omitempty"`
	P999Ms         float64 `json:"p999Ms,omitempty"`
	MaxMs          float64 `json:"maxMs,omitempty"`
	// RSSMB is the server's peak resident set size during the phase.
	RSSMB float64 `json:"rssMiB,omitempty"`
	// Non2xx and Errors count failed requests.
	Non2xx int64 `json:"non2xx"`
	Errors int64 `json:"errors"`
	// Note adds context (e.g. mean events per journey page).
	Note string `json:"note,omitempty"`
}

// Failed returns the phase's failed requests (Non2xx + Errors).
func (r *Row) Failed() int64 { return r.Non2xx + r.Errors }

// SoakSample is one observation of the server during the soak phase.
type SoakSample struct {
	ElapsedSec float64 `json:"elapsedSec"`
	RSSMB      float64 `json:"rssMiB"`
	Goroutines int     `json:"goroutines"`
	Stored     int64   `json:"stored"`
}

// SeriesPoint is one observation of the store filling up: the stored
// rate over the interval that ended with Stored events in the store.
type SeriesPoint struct {
	Stored       int64   `json:"stored"`
	EventsPerSec float64 `json:"eventsPerSec"`
}

// Target is one goal (of issue 6 or issue 14) checked against the measurements.
type Target struct {
	Name   string  `json:"name"`
	Value  float64 `json:"value"`
	Unit   string  `json:"unit"`
	Goal   string  `json:"goal"`
	Met    bool    `json:"met"`
	Detail string  `json:"detail,omitempty"`
}

// Machine describes where the suite ran.
type Machine struct {
	CPUs      int    `json:"cpus"`
	CPUModel  string `json:"cpuModel"`
	MemoryMB  int64  `json:"memoryMiB"`
	Kernel    string `json:"kernel"`
	GoVersion string `json:"goVersion"`
}

// Report is the outcome of a suite run.
type Report struct {
	StartedAt   time.Time `json:"startedAt"`
	DurationSec float64   `json:"durationSec"`
	Quick       bool      `json:"quick"`
	Machine     Machine   `json:"machine"`
	Rows        []Row     `json:"rows"`
	// Soak holds the soak phase's samples, if it ran.
	Soak []SoakSample `json:"soak,omitempty"`
	// Series is the stored rate against events stored while the store is
	// pre-filled (issue 14, target 4: cost per event flat as it grows).
	Series  []SeriesPoint `json:"series,omitempty"`
	Targets []Target      `json:"targets"`
	// SegmentVsEvents is the sustained throughput of POST /v1/batch
	// (100-message Segment batches) over that of POST /events with the same
	// events as 100-event arrays, same connections and duration (issue 10).
	SegmentVsEvents float64 `json:"segmentVsEvents,omitempty"`
	// LiveVsQuiet is the sustained batched POST /events throughput with
	// LiveSubscribers GET /api/live streams open over that without (issue
	// 11; target ≥ 0.95).
	LiveVsQuiet float64 `json:"liveVsQuiet,omitempty"`
	// Errors lists phases that could not run.
	Errors []string `json:"errors,omitempty"`
}

// Markdown renders the report as Markdown tables.
func (r *Report) Markdown() string {
	var b strings.Builder
	m := r.Machine
	fmt.Fprintf(&b, "Machine: %d CPUs (%s), %d MiB RAM, Linux %s, %s; load generator on the same machine. Run %s, %.0f s%s.\n\n",
		m.CPUs, m.CPUModel, m.MemoryMB, m.Kernel, m.GoVersion, r.StartedAt.UTC().Format("2006-01-02 15:04 UTC"), r.DurationSec,
		map[bool]string{true: ", --quick", false: ""}[r.Quick])
	b.WriteString("| Benchmark | Setup | events/s | req/s | p50 ms | p99 ms | p99.9 ms | max ms | peak RSS MiB | failed req | Note |\n")
	b.WriteString("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|\n")
	num := func(v float64, prec int) string {
		if v == 0 {
			return "–"
		}
		return fmt.Sprintf("%.*f", prec, v)
	}
	for _, row := range r.Rows {
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %d | %s |\n", row.Name, row.Setup,
			num(row.EventsPerSec, 0), num(row.RequestsPerSec, 0), num(row.P50Ms, 2), num(row.P99Ms, 2),
			num(row.P999Ms, 2), num(row.MaxMs, 1), num(row.RSSMB, 0), row.Failed(), row.Note)
	}
	if len(r.Targets) > 0 {
		b.WriteString("\n| Target | Measured | Goal | Met |\n|---|---:|---|---|\n")
		for _, t := range r.Targets {
			met := "yes"
			if !t.Met {
				met = "**no**"
			}
			v := fmt.Sprintf("%.1f %s", t.Value, t.Unit)
			if t.Unit == "×" {
				v = fmt.Sprintf("%.2f×", t.Value)
			}
			if t.Detail != "" {
				v += " (" + t.Detail + ")"
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", t.Name, v, t.Goal, met)
		}
	}
	b.WriteString(seriesMarkdown(r.Series))
	for _, e := range r.Errors {
		fmt.Fprintf(&b, "\nError: %s\n", e)
	}
	return b.String()
}

func machine() Machine {
	m := Machine{CPUs: runtime.NumCPU(), GoVersion: runtime.Version()}
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	if data, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb int64
		if _, err := fmt.Sscanf(string(data), "MemTotal: %d kB", &kb); err == nil {
			m.MemoryMB = kb / 1024
		}
	}
	if data, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(data))
	}
	return m
}
