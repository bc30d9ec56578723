package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/cairn-dev/cairn"
)

// ingestCollector turns one IngestStats snapshot per scrape into metrics.
type ingestCollector struct {
	stats func() cairn.IngestStats
}

func desc(name, help string) *prometheus.Desc { return prometheus.NewDesc(name, help, nil, nil) }

var (
	descAccepted       = desc("cairn_events_accepted_total", "Events acknowledged (202) after being synced to the spool.")
	descStored         = desc("cairn_events_stored_total", "Events newly written to the store.")
	descDuplicates     = desc("cairn_events_duplicate_total", "Events the store already had (idempotent retries), not written again.")
	descDeadLettered   = desc("cairn_events_dead_lettered_total", "Events the store refused permanently and set aside.")
	descFlushes        = desc("cairn_flushes_total", "Successful store writes by the batcher.")
	descBacklog        = desc("cairn_backlog_events", "Events accepted but not yet in the store.")
	descBacklogBytes   = desc("cairn_backlog_bytes", "Spool bytes held by the backlog.")
	descMaxBacklog     = desc("cairn_backlog_max_events", "Backlog above which ingest is refused with 503.")
	descFlushing       = desc("cairn_flush_in_progress", "1 while the batcher is writing to the store.")
	descLastFlush      = desc("cairn_last_flush_timestamp_seconds", "Unix time the last successful flush finished (0 = never).")
	descSpoolBytes     = desc("cairn_spool_bytes", "Bytes the spool takes on disk.")
	descSpoolSegments  = desc("cairn_spool_segments", "Segment files in the spool.")
	descSpoolFailed    = desc("cairn_spool_failed", "1 when the spool has a write failure and ingest is refused.")
	descCorruptRecords = desc("cairn_spool_corrupt_records_total",
		"Spool records lost to damage (bad checksum, length or header) that the batcher stepped over; a lower bound when a damaged region may have held several.")
	descCheckpointResets = desc("cairn_spool_checkpoint_resets_total",
		"Invalid spool checkpoints found at start-up and discarded (the spool was replayed from its oldest record).")
)

// Describe implements prometheus.Collector.
func (c *ingestCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descAccepted, descStored, descDuplicates, descDeadLettered,
		descFlushes, descBacklog, descBacklogBytes, descMaxBacklog, descFlushing, descLastFlush,
		descSpoolBytes, descSpoolSegments, descSpoolFailed, descCheckpointResets, descCorruptRecords} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *ingestCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.stats()
	counter := func(d *prometheus.Desc, v int64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v))
	}
	gauge := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v)
	}
	counter(descAccepted, s.Accepted)
	counter(descStored, s.Stored)
	counter(descDuplicates, s.Duplicates)
	counter(descDeadLettered, s.DeadLettered)
	counter(descFlushes, s.Flushes)
	gauge(descBacklog, float64(s.Backlog))
	gauge(descBacklogBytes, float64(s.BacklogBytes))
	gauge(descMaxBacklog, float64(s.MaxBacklog))
	gauge(descFlushing, b2f(s.Flushing))
	last := 0.0
	if !s.LastFlushAt.IsZero() {
		last = float64(s.LastFlushAt.UnixNano()) / 1e9
	}
	gauge(descLastFlush, last)
	gauge(descSpoolBytes, float64(s.SpoolBytes))
	gauge(descSpoolSegments, float64(s.SpoolSegments))
	gauge(descSpoolFailed, b2f(s.SpoolError != ""))
	counter(descCheckpointResets, s.CheckpointResets)
	counter(descCorruptRecords, s.SpoolCorruptRecords)
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
