package jetstream

import (
	"fmt"
	"sync"

	"github.com/cairn-dev/cairn"
	"github.com/nats-io/nats.go"
)

// Live follows the events the stream stores (from any ingest node), as the
// stream republishes them on the live subject, and hands them to publish in
// small batches: the live tail of every node shows what every node accepted.
// Delivery is at most once (a core subscription): a node that falls behind
// or reconnects misses events, as a slow live subscriber does on one node.
// The returned function stops it.
func (c *Conn) Live(publish func([]cairn.Event)) (func(), error) {
	ch := make(chan *nats.Msg, 8192)
	sub, err := c.nc.ChanSubscribe(c.cfg.LiveSubject(), ch)
	if err != nil {
		return nil, fmt.Errorf("jetstream: subscribe to %s: %w", c.cfg.LiveSubject(), err)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		batch := make([]cairn.Event, 0, 256)
		for {
			select {
			case <-stop:
				return
			case m := <-ch:
				batch = c.appendLive(batch[:0], m)
			}
		more:
			for len(batch) < cap(batch) {
				select {
				case m := <-ch:
					batch = c.appendLive(batch, m)
				default:
					break more
				}
			}
			if len(batch) > 0 {
				publish(batch)
				batch = make([]cairn.Event, 0, 256) // publish keeps the events
			}
		}
	})
	var once sync.Once
	return func() {
		once.Do(func() {
			if err := sub.Unsubscribe(); err != nil {
				c.log.Debug("live unsubscribe", "err", err)
			}
			close(stop)
			wg.Wait()
		})
	}, nil
}

func (c *Conn) appendLive(batch []cairn.Event, m *nats.Msg) []cairn.Event {
	var e cairn.Event
	if _, err := e.DecodeBinary(m.Data); err != nil {
		c.log.Warn("undecodable live message", "err", err)
		return batch
	}
	return append(batch, e)
}
