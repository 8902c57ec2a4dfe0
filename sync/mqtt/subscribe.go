package mqtt

import (
	"context"
	"sync"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// Received is one message from the broker.
type Received struct {
	Topic   string
	Payload []byte
	Retain  bool
}

// subscription is a topic filter, its handler and the queue between the
// client's reading and the handler.
type subscription struct {
	c        *Client
	filters  []string
	qos      byte
	name     string
	maxBytes int
	handle   func(Received)

	mu    sync.Mutex
	queue []Received
	bytes int
	wake  chan struct{}
}

// Subscribe registers filters: every message on them is passed to
// handle, in the order received, on one goroutine of its own. Up to maxBytes of
// payload wait for handle; a message that does not fit is dropped,
// counted (anprd_mqtt_messages_dropped_total) and logged, and the
// protocol's sequence numbers make the loss visible to the subscriber.
// name labels the metrics. Call before Run.
func (c *Client) Subscribe(name string, qos byte, maxBytes int, handle func(Received), filters ...string) {
	c.m.received.WithLabelValues(name)
	c.m.dropped.WithLabelValues(name)
	c.subs = append(c.subs, &subscription{c: c, filters: filters, qos: qos, name: name, maxBytes: maxBytes,
		handle: handle, wake: make(chan struct{}, 1)})
}

// receive runs on paho's goroutine and must not block.
func (s *subscription) receive(_ paho.Client, m paho.Message) {
	p := m.Payload()
	s.c.m.received.WithLabelValues(s.name).Inc()
	s.mu.Lock()
	if s.bytes+len(p) > s.maxBytes && len(s.queue) > 0 || len(p) > s.maxBytes {
		s.mu.Unlock()
		s.c.m.dropped.WithLabelValues(s.name).Inc()
		s.c.log.Warn().Str("topic", m.Topic()).Int("bytes", len(p)).Str("subscription", s.name).
			Msg("received message dropped: the subscriber's queue is full")
		return
	}
	s.queue = append(s.queue, Received{Topic: m.Topic(), Payload: p, Retain: m.Retained()})
	s.bytes += len(p)
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *subscription) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.wake:
		}
		for {
			s.mu.Lock()
			if len(s.queue) == 0 {
				s.mu.Unlock()
				break
			}
			r := s.queue[0]
			s.queue[0] = Received{}
			s.queue = s.queue[1:]
			s.bytes -= len(r.Payload)
			s.mu.Unlock()
			s.handle(r)
			if ctx.Err() != nil {
				return
			}
		}
	}
}
