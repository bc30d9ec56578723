package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// StreamStats is a snapshot of the multi-node (NATS JetStream) ingest path
// on one process, read at scrape time. An ingest node fills AcksPending and
// PublishRetries, a writer ConsumerPending and Redeliveries.
type StreamStats struct {
	// AcksPending is the number of published messages waiting for the
	// stream's acknowledgement.
	AcksPending int64
	// PublishRetries counts publishes retried (same msg id) since start.
	PublishRetries int64
	// ConsumerPending is the writers' consumer lag: messages in the stream
	// not yet acknowledged by a writer (waiting or delivered).
	ConsumerPending int64
	// Redeliveries counts messages this writer received that the stream had
	// delivered before.
	Redeliveries int64
}

var (
	descAcksPending     = desc("cairn_stream_acks_pending", "Events published to the stream and waiting for its acknowledgement (ingest node).")
	descPublishRetries  = desc("cairn_stream_publish_retries_total", "Event publishes retried with the same msg id after a failure or no answer (ingest node).")
	descConsumerPending = desc("cairn_stream_consumer_pending", "Stream lag: events in the stream not yet acknowledged by a writer (writer; polled every 2 s).")
	descRedeliveries    = desc("cairn_stream_redeliveries_total", "Events this writer received that the stream had delivered before (a writer died, or a nak).")
)

// streamCollector turns one StreamStats snapshot per scrape into metrics.
type streamCollector struct {
	stats func() StreamStats
}

// Describe implements prometheus.Collector.
func (c *streamCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descAcksPending, descPublishRetries, descConsumerPending, descRedeliveries} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *streamCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.stats()
	ch <- prometheus.MustNewConstMetric(descAcksPending, prometheus.GaugeValue, float64(s.AcksPending))
	ch <- prometheus.MustNewConstMetric(descPublishRetries, prometheus.CounterValue, float64(s.PublishRetries))
	ch <- prometheus.MustNewConstMetric(descConsumerPending, prometheus.GaugeValue, float64(s.ConsumerPending))
	ch <- prometheus.MustNewConstMetric(descRedeliveries, prometheus.CounterValue, float64(s.Redeliveries))
}

// RegisterStreamStats registers the stream collectors (reading stats at
// scrape time) and the publish latency histogram that ObservePublish feeds.
// Call it at most once, only in multi-node mode.
func (m *Metrics) RegisterStreamStats(stats func() StreamStats) error {
	if m == nil {
		return nil
	}
	m.publishDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "cairn_stream_publish_duration_seconds",
		Help:    "Time from publishing a request's events to the stream until every one was acknowledged, by result (ok, error).",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
	}, []string{"result"})
	if err := m.reg.Register(m.publishDuration); err != nil {
		return err
	}
	return m.reg.Register(&streamCollector{stats: stats})
}

// ObservePublish records one Ingest of events events published to the
// stream in d; err is nil when every event was acknowledged. It does
// nothing before RegisterStreamStats.
func (m *Metrics) ObservePublish(events int, d time.Duration, err error) {
	if m == nil || m.publishDuration == nil {
		return
	}
	result := "ok"
	if err != nil {
		result = "error"
	}
	m.publishDuration.WithLabelValues(result).Observe(d.Seconds())
}
