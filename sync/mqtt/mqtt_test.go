package mqtt_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"anprd/sync/mqtt"
	"anprd/sync/mqtt/mqtttest"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// run starts c until the test ends.
func run(t *testing.T, c *mqtt.Client) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { c.Run(ctx, nil); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
}

func waitConnected(t *testing.T, c *mqtt.Client, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !c.Connected() {
		if time.Now().After(deadline) {
			t.Fatalf("not connected within %v: %s", within, c.LastError())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

type inbox struct {
	mu  sync.Mutex
	got []mqtt.Received
	ch  chan struct{}
}

func newInbox() *inbox { return &inbox{ch: make(chan struct{}, 1)} }

func (in *inbox) handle(r mqtt.Received) {
	in.mu.Lock()
	in.got = append(in.got, r)
	in.mu.Unlock()
	select {
	case in.ch <- struct{}{}:
	default:
	}
}

func (in *inbox) wait(t *testing.T, n int, within time.Duration) []mqtt.Received {
	t.Helper()
	deadline := time.After(within)
	for {
		in.mu.Lock()
		if len(in.got) >= n {
			out := append([]mqtt.Received(nil), in.got...)
			in.mu.Unlock()
			return out
		}
		in.mu.Unlock()
		select {
		case <-in.ch:
		case <-deadline:
			in.mu.Lock()
			defer in.mu.Unlock()
			t.Fatalf("received %d messages within %v, want %d", len(in.got), within, n)
		}
	}
}

// metric is the value of the first series of name in reg.
func metric(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			m := mf.Metric[0]
			if m.Counter != nil {
				return m.Counter.GetValue()
			}
			return m.Gauge.GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

func opts(b *mqtttest.Broker, id string) mqtt.Options {
	return mqtt.Options{Broker: b.URL, ClientID: id, Log: zerolog.Nop(), MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond,
		ConnectTimeout: 2 * time.Second}
}

func TestPublishSubscribe(t *testing.T) {
	b := mqtttest.Start(t, mqtttest.Options{})
	sub, err := mqtt.New(opts(b, "sub"))
	if err != nil {
		t.Fatal(err)
	}
	in := newInbox()
	sub.Subscribe("test", 1, 1<<20, in.handle, "t/+/x")
	run(t, sub)
	waitConnected(t, sub, 5*time.Second)

	pub, _ := mqtt.New(opts(b, "pub"))
	hooked := make(chan struct{}, 1)
	pub.OnConnect(func() { hooked <- struct{}{} })
	run(t, pub)
	waitConnected(t, pub, 5*time.Second)
	<-hooked
	var ds []*mqtt.Delivery
	for i := range 100 {
		ds = append(ds, pub.Publish(mqtt.Message{Topic: fmt.Sprintf("t/%d/x", i%3), QoS: 1, Payload: []byte(fmt.Sprint(i))}))
	}
	for i, d := range ds {
		if err := d.Wait(context.Background()); err != nil {
			t.Fatalf("delivery %d: %v", i, err)
		}
	}
	got := in.wait(t, 100, 5*time.Second)
	for i, r := range got {
		if string(r.Payload) != fmt.Sprint(i) || r.Topic != fmt.Sprintf("t/%d/x", i%3) {
			t.Fatalf("message %d: %s %q (out of order?)", i, r.Topic, r.Payload)
		}
	}
}

func TestNotConnected(t *testing.T) {
	c, err := mqtt.New(mqtt.Options{Broker: "tcp://127.0.0.1:1", ClientID: "x"})
	if err != nil {
		t.Fatal(err)
	}
	d := c.Publish(mqtt.Message{Topic: "a", QoS: 1})
	<-d.Done()
	if !errors.Is(d.Err(), mqtt.ErrNotConnected) {
		t.Errorf("Err = %v", d.Err())
	}
	for _, bad := range []mqtt.Options{{Broker: "127.0.0.1:1883", ClientID: "x"}, {Broker: "tcp://127.0.0.1:1883"}} {
		if _, err := mqtt.New(bad); err == nil {
			t.Errorf("New(%+v) accepted", bad)
		}
	}
}

func TestBackoff(t *testing.T) {
	for _, tt := range []struct {
		r    float64
		n    int
		want time.Duration
	}{
		{0, 0, 500 * time.Millisecond},
		{0.999999, 0, time.Second},
		{0, 1, time.Second},
		{0.5, 3, 6 * time.Second},
		{0, 10, 30 * time.Second}, // capped at the maximum
		{0, 1000, 30 * time.Second},
	} {
		c, _ := mqtt.New(mqtt.Options{Broker: "tcp://127.0.0.1:1", ClientID: "x", Rand: func() float64 { return tt.r }})
		if got := c.Backoff(tt.n); got.Round(time.Millisecond) != tt.want {
			t.Errorf("Backoff(%d) with rand %v = %v, want %v", tt.n, tt.r, got, tt.want)
		}
	}
}

// TestReconnect: a killed broker fails the deliveries in flight (never a
// false success), the client reconnects with backoff once the broker is
// back, subscribes again and runs its connect hooks again.
func TestReconnect(t *testing.T) {
	b := mqtttest.Start(t, mqtttest.Options{})
	reg := prometheus.NewRegistry()
	m := mqtt.NewMetrics(reg)
	o := opts(b, "edge")
	o.Metrics = m
	c, _ := mqtt.New(o)
	in := newInbox()
	c.Subscribe("echo", 1, 1<<20, in.handle, "echo")
	var hooks atomic.Int32
	c.OnConnect(func() { hooks.Add(1) })
	run(t, c)
	waitConnected(t, c, 5*time.Second)
	e0 := c.Epoch()

	// Flood, kill the broker in the middle, and look at every delivery.
	var ds []*mqtt.Delivery
	for i := range 3000 {
		ds = append(ds, c.Publish(mqtt.Message{Topic: "load", QoS: 1, Payload: make([]byte, 512)}))
		if i == 1500 {
			b.Kill()
		}
	}
	failed := 0
	for _, d := range ds {
		select {
		case <-d.Done():
		case <-time.After(15 * time.Second):
			t.Fatal("a delivery never completed after the broker died")
		}
		if d.Err() != nil {
			failed++
		}
	}
	if failed < 1499 {
		t.Errorf("only %d of 3000 deliveries failed though the broker died after 1501 publishes", failed)
	}
	if c.Connected() || c.Epoch() == e0 {
		t.Errorf("connected %v, epoch %d (was %d) after the broker died", c.Connected(), c.Epoch(), e0)
	}
	b.Restart()
	waitConnected(t, c, 10*time.Second)
	if d := c.Publish(mqtt.Message{Topic: "echo", QoS: 1, Payload: []byte("back")}); d.Wait(context.Background()) != nil {
		t.Errorf("publish after reconnect: %v", d.Err())
	}
	if got := in.wait(t, 1, 5*time.Second); string(got[0].Payload) != "back" {
		t.Errorf("resubscribed and got %q", got[0].Payload)
	}
	if hooks.Load() != 2 {
		t.Errorf("connect hooks ran %d times, want 2", hooks.Load())
	}
	if n := metric(t, reg, "anprd_mqtt_connects_total"); n != 2 {
		t.Errorf("connects_total %v", n)
	}
}

func TestSubscriberQueueBound(t *testing.T) {
	b := mqtttest.Start(t, mqtttest.Options{})
	reg := prometheus.NewRegistry()
	m := mqtt.NewMetrics(reg)
	o := opts(b, "slow")
	o.Metrics = m
	c, _ := mqtt.New(o)
	release := make(chan struct{})
	var handled atomic.Int32
	c.Subscribe("slow", 1, 10_000, func(mqtt.Received) { <-release; handled.Add(1) }, "slow")
	run(t, c)
	waitConnected(t, c, 5*time.Second)
	pub, _ := mqtt.New(opts(b, "pub"))
	run(t, pub)
	waitConnected(t, pub, 5*time.Second)
	for range 30 {
		pub.Publish(mqtt.Message{Topic: "slow", QoS: 1, Payload: make([]byte, 1000)}).Wait(context.Background())
	}
	// One is in the handler, up to ten wait; the rest were dropped, and
	// the client kept reading (the publishes above were acknowledged).
	deadline := time.Now().Add(5 * time.Second)
	for metric(t, reg, "anprd_mqtt_messages_dropped_total") < 19 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	close(release)
	if d := metric(t, reg, "anprd_mqtt_messages_dropped_total"); d != 19 && d != 20 {
		t.Errorf("dropped %v of 30 with room for 10", d)
	}
}

func TestTLS(t *testing.T) {
	tests := []struct {
		name     string
		broker   mqtttest.Options
		client   func(b *mqtttest.Broker) (ca, cert, key, user, pass string)
		wantFail string
	}{
		{"tls", mqtttest.Options{TLS: true}, func(b *mqtttest.Broker) (string, string, string, string, string) {
			return b.CAFile, "", "", "", ""
		}, ""},
		{"tls wrong ca", mqtttest.Options{TLS: true}, func(b *mqtttest.Broker) (string, string, string, string, string) {
			return filepath.Join(filepath.Dir(b.CAFile), "other-ca.pem"), "", "", "", ""
		}, "certificate"},
		{"mutual tls", mqtttest.Options{ClientCert: true}, func(b *mqtttest.Broker) (string, string, string, string, string) {
			return b.CAFile, b.CertFile, b.KeyFile, "", ""
		}, ""},
		{"mutual tls without a certificate", mqtttest.Options{ClientCert: true}, func(b *mqtttest.Broker) (string, string, string, string, string) {
			return b.CAFile, "", "", "", ""
		}, "network Error"},
		{"mutual tls untrusted certificate", mqtttest.Options{ClientCert: true}, func(b *mqtttest.Broker) (string, string, string, string, string) {
			d := filepath.Dir(b.CAFile)
			return b.CAFile, filepath.Join(d, "untrusted-client.pem"), filepath.Join(d, "untrusted-client.key"), "", ""
		}, ""},
		{"password", mqtttest.Options{Username: "box-1", Password: "s3cret"}, func(*mqtttest.Broker) (string, string, string, string, string) {
			return "", "", "", "box-1", "s3cret"
		}, ""},
		{"wrong password", mqtttest.Options{Username: "box-1", Password: "s3cret"}, func(*mqtttest.Broker) (string, string, string, string, string) {
			return "", "", "", "box-1", "guess"
		}, "not Authorized"},
		{"tls and password", mqtttest.Options{TLS: true, Username: "box-1", Password: "s3cret"}, func(b *mqtttest.Broker) (string, string, string, string, string) {
			return b.CAFile, "", "", "box-1", "s3cret"
		}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := mqtttest.Start(t, tt.broker)
			ca, cert, key, user, pass := tt.client(b)
			o := opts(b, "tls-client")
			o.MinBackoff, o.MaxBackoff = time.Hour, time.Hour // one attempt
			if ca != "" {
				cfg, err := mqtt.TLSConfig(ca, cert, key)
				if err != nil {
					t.Fatal(err)
				}
				o.TLS = cfg
			}
			if user != "" {
				pf := filepath.Join(t.TempDir(), "pw")
				os.WriteFile(pf, []byte(pass+"\n"), 0o600)
				p, err := mqtt.ReadPassword(pf)
				if err != nil || p != pass {
					t.Fatalf("ReadPassword = %q, %v", p, err)
				}
				o.Username, o.Password = user, p
			}
			c, _ := mqtt.New(o)
			run(t, c)
			deadline := time.Now().Add(5 * time.Second)
			for !c.Connected() && c.LastError() == "" && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			untrusted := strings.Contains(tt.name, "untrusted")
			switch {
			case tt.wantFail == "" && !untrusted:
				if !c.Connected() {
					t.Fatalf("not connected: %s", c.LastError())
				}
				if d := c.Publish(mqtt.Message{Topic: "x", QoS: 1}); d.Wait(context.Background()) != nil {
					t.Errorf("publish: %v", d.Err())
				}
			case untrusted:
				// The broker closes the connection during or right after
				// the handshake; either way it never stays up.
				time.Sleep(300 * time.Millisecond)
				if c.Connected() && c.Publish(mqtt.Message{Topic: "x", QoS: 1}).Wait(context.Background()) == nil {
					t.Error("a certificate from another CA was accepted")
				}
			default:
				if c.Connected() || !strings.Contains(c.LastError(), tt.wantFail) {
					t.Errorf("connected %v, error %q; want a failure with %q", c.Connected(), c.LastError(), tt.wantFail)
				}
			}
		})
	}
	if _, err := mqtt.TLSConfig("/nonexistent/ca.pem", "", ""); err == nil {
		t.Error("TLSConfig with a missing CA succeeded")
	}
}
