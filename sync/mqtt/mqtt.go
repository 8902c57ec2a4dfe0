// Package mqtt is anprd's connection to the broker, and the only package
// that uses the paho client. It connects (plain TCP, TLS with a CA, mutual
// TLS, username and password), reconnects with jittered exponential
// backoff for as long as it takes, subscribes again on every connection,
// and hands received messages to each subscriber's own goroutine through a
// bounded queue, so that a slow subscriber (a snapshot being loaded) never
// stalls the client's reading, its keepalive or its acknowledgements.
//
// Publish returns a Delivery whose Err is nil only when the broker's
// PUBACK arrived on a connection that stayed up: paho completes a token
// when a connection drops or a message id is reused, and that is not a
// delivery. Each connection is a fresh paho client with its own epoch;
// a delivery counts only if the epoch it was published in is still the
// current one when it completes.
//
// This package knows nothing of passages, permits or the topic tree; it
// must not decide anything. The daemon runs without a broker for as long
// as the broker is away.
package mqtt

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/rs/zerolog"
)

// Options configure a Client.
type Options struct {
	Broker   string // tcp://, mqtt://, ssl://, tls://, mqtts://, ws://, wss:// with host:port
	ClientID string
	Username string
	Password string
	// TLS for ssl/tls/mqtts/wss brokers; nil uses the system's roots.
	TLS       *tls.Config
	Keepalive time.Duration // default 30 s
	// ConnectTimeout bounds one connection attempt; default 10 s.
	ConnectTimeout time.Duration
	// Will is published by the broker when the connection drops.
	Will *Message
	// Session asks the broker to keep this client's subscriptions, and
	// the QoS 1 messages for them, while it is away (a central-side
	// subscriber that must not miss passages). anprd itself uses clean
	// sessions: its outbox, not the broker, keeps what is not delivered.
	Session bool
	// MinBackoff and MaxBackoff bound the wait between attempts; default
	// 1 s and 60 s. Each wait is drawn from the upper half of the current
	// step, so boxes of a site that lost the broker together do not all
	// come back in the same second.
	MinBackoff, MaxBackoff time.Duration
	Log                    zerolog.Logger
	Metrics                *Metrics
	// Rand returns a number in [0, 1) for the jitter; default math/rand.
	Rand func() float64
	// Now stamps the connection's start for Status; default time.Now.
	Now func() time.Time
}

// Message is a message to publish or a will.
type Message struct {
	Topic   string
	QoS     byte
	Retain  bool
	Payload []byte
}

// ErrNotConnected is the Err of a Delivery published without a connection.
var ErrNotConnected = errors.New("mqtt: not connected")

// ErrConnectionLost is the Err of a Delivery whose connection dropped
// before (or while) it completed: it may or may not have arrived.
var ErrConnectionLost = errors.New("mqtt: connection lost before the acknowledgement")

// Client is the broker connection. Register subscriptions and connect
// hooks before Run.
type Client struct {
	o    Options
	log  zerolog.Logger
	m    *Metrics
	subs []*subscription
	hook []func()

	mu       sync.Mutex
	cur      paho.Client // nil while disconnected
	epoch    atomic.Uint64
	lost     chan struct{} // closed when cur's connection drops
	since    time.Time
	lastErr  string
	connects uint64
}

// New checks the options; it does not connect.
func New(o Options) (*Client, error) {
	u, err := url.Parse(o.Broker)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("mqtt: broker %q is not a URL with host:port", o.Broker)
	}
	if o.ClientID == "" {
		return nil, errors.New("mqtt: client id is required")
	}
	if o.Keepalive <= 0 {
		o.Keepalive = 30 * time.Second
	}
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = 10 * time.Second
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = time.Second
	}
	if o.MaxBackoff < o.MinBackoff {
		o.MaxBackoff = max(60*time.Second, o.MinBackoff)
	}
	if o.Rand == nil {
		o.Rand = rand.Float64
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	m := o.Metrics
	if m == nil {
		m = NewMetrics(nil)
	}
	return &Client{o: o, log: o.Log, m: m}, nil
}

// TLSConfig builds the TLS settings from PEM files: the CA that signed
// the broker's certificate ("" for the system's roots) and, for mutual
// TLS, the client's certificate and key (both or neither).
func TLSConfig(caFile, certFile, keyFile string) (*tls.Config, error) {
	c := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("mqtt: CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("mqtt: CA %s holds no PEM certificate", caFile)
		}
		c.RootCAs = pool
	}
	if certFile != "" || keyFile != "" {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("mqtt: client certificate: %w", err)
		}
		c.Certificates = []tls.Certificate{cert}
	}
	return c, nil
}

// ReadPassword reads a password file, without its trailing newline.
func ReadPassword(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("mqtt: password: %w", err)
	}
	return strings.TrimRight(string(b), "\r\n"), nil
}

// OnConnect registers fn to run, in its own goroutine, after each
// connection is made and every subscription is in place.
func (c *Client) OnConnect(fn func()) { c.hook = append(c.hook, fn) }

// Backoff is the wait before attempt n (0 for the first retry): the step
// MinBackoff*2^n up to MaxBackoff, drawn from its upper half.
func (c *Client) Backoff(n int) time.Duration {
	step := float64(c.o.MinBackoff) * math.Pow(2, float64(min(n, 30)))
	step = min(step, float64(c.o.MaxBackoff))
	return time.Duration(step * (0.5 + 0.5*c.o.Rand()))
}

// Run connects and stays connected until ctx ends, then disconnects.
// before, if not nil, runs while still connected at the end (to publish
// an offline status). Run returns nil when ctx ends.
func (c *Client) Run(ctx context.Context, before func(context.Context)) error {
	var wg sync.WaitGroup
	for _, s := range c.subs {
		wg.Add(1)
		go func() { defer wg.Done(); s.run(ctx) }()
	}
	defer wg.Wait()
	fails := 0
	for {
		lost, err := c.connect(ctx)
		if err != nil {
			c.m.failures.Inc()
			c.setErr(err)
			wait := c.Backoff(fails)
			fails++
			c.log.Warn().Err(err).Dur("retry_in", wait).Int("attempt", fails).Msg("broker connection failed")
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(wait):
				continue
			}
		}
		fails = 0
		select {
		case <-ctx.Done():
			if before != nil {
				bctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				before(bctx)
				cancel()
			}
			c.disconnect()
			return nil
		case <-lost:
			c.m.losses.Inc()
			c.log.Warn().Str("error", c.LastError()).Msg("broker connection lost; reconnecting")
		}
	}
}

// connect makes one connection with its subscriptions and returns the
// channel closed when it drops.
func (c *Client) connect(ctx context.Context) (<-chan struct{}, error) {
	lost := make(chan struct{})
	var once sync.Once
	opts := paho.NewClientOptions().
		AddBroker(c.o.Broker).
		SetClientID(c.o.ClientID).
		SetCleanSession(!c.o.Session).
		SetAutoReconnect(false).
		SetConnectRetry(false).
		SetOrderMatters(true).
		SetKeepAlive(c.o.Keepalive).
		SetPingTimeout(min(10*time.Second, c.o.Keepalive)).
		SetConnectTimeout(c.o.ConnectTimeout).
		SetWriteTimeout(10 * time.Second).
		SetConnectionLostHandler(func(_ paho.Client, err error) {
			// Bump the epoch first: from here on no delivery of this
			// connection counts.
			c.epoch.Add(1)
			c.setErr(err)
			c.m.connected.Set(0)
			once.Do(func() { close(lost) })
		})
	if c.o.Username != "" {
		opts.SetUsername(c.o.Username).SetPassword(c.o.Password)
	}
	if c.o.TLS != nil {
		opts.SetTLSConfig(c.o.TLS.Clone())
	}
	if w := c.o.Will; w != nil {
		opts.SetBinaryWill(w.Topic, w.Payload, w.QoS, w.Retain)
	}
	pc := paho.NewClient(opts)
	if err := wait(ctx, pc.Connect(), c.o.ConnectTimeout+time.Second); err != nil {
		pc.Disconnect(0)
		return nil, err
	}
	for _, s := range c.subs {
		for _, f := range s.filters {
			if err := wait(ctx, pc.Subscribe(f, s.qos, s.receive), c.o.ConnectTimeout); err != nil {
				pc.Disconnect(0)
				return nil, fmt.Errorf("subscribe %s: %w", f, err)
			}
		}
	}
	c.mu.Lock()
	c.cur = pc
	c.lost = lost
	c.epoch.Add(1)
	c.connects++
	c.since = c.o.Now()
	c.lastErr = ""
	c.mu.Unlock()
	c.m.connected.Set(1)
	c.m.connects.Inc()
	c.log.Info().Str("broker", c.o.Broker).Msg("connected to the broker")
	for _, fn := range c.hook {
		go fn()
	}
	return lost, nil
}

func wait(ctx context.Context, t paho.Token, d time.Duration) error {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-t.Done():
		return t.Error()
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		return errors.New("timed out")
	}
}

func (c *Client) disconnect() {
	c.mu.Lock()
	pc := c.cur
	c.cur = nil
	c.epoch.Add(1)
	c.mu.Unlock()
	c.m.connected.Set(0)
	if pc != nil {
		pc.Disconnect(250)
	}
}

func (c *Client) setErr(err error) {
	if err == nil {
		return
	}
	c.mu.Lock()
	c.lastErr = err.Error()
	if c.cur != nil && !c.cur.IsConnectionOpen() {
		c.cur = nil
	}
	c.mu.Unlock()
}

// Connected reports whether a connection is up.
func (c *Client) Connected() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cur != nil && c.cur.IsConnectionOpen()
}

// Epoch changes whenever a connection is made or lost.
func (c *Client) Epoch() uint64 { return c.epoch.Load() }

// Status is the connection's state for the status page.
type Status struct {
	Connected bool
	Since     time.Time // when the current connection was made
	Connects  uint64
	LastError string
}

// Status reports the connection's state.
func (c *Client) Status() Status {
	c.mu.Lock()
	defer c.mu.Unlock()
	return Status{Connected: c.cur != nil && c.cur.IsConnectionOpen(), Since: c.since, Connects: c.connects, LastError: c.lastErr}
}

// LastError is the last connection error, or "".
func (c *Client) LastError() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lastErr
}

// Delivery is one publish in flight.
type Delivery struct {
	c     *Client
	tok   paho.Token
	epoch uint64
	err   error // set when it never went out
	done  chan struct{}
}

var closed = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// Publish sends m and returns at once. It never blocks for long: without
// a connection the Delivery fails with ErrNotConnected.
func (c *Client) Publish(m Message) *Delivery {
	c.mu.Lock()
	pc := c.cur
	epoch := c.epoch.Load()
	c.mu.Unlock()
	if pc == nil {
		return &Delivery{err: ErrNotConnected, done: closed}
	}
	tok := pc.Publish(m.Topic, m.QoS, m.Retain, m.Payload)
	return &Delivery{c: c, tok: tok, epoch: epoch}
}

// Done is closed when the delivery has completed, well or not.
func (d *Delivery) Done() <-chan struct{} {
	if d.tok == nil {
		return d.done
	}
	return d.tok.Done()
}

// Err is nil when the broker acknowledged the message on a connection
// that is still the current one. Call it after Done.
func (d *Delivery) Err() error {
	if d.tok == nil {
		return d.err
	}
	if err := d.tok.Error(); err != nil {
		return err
	}
	if d.c.epoch.Load() != d.epoch {
		return ErrConnectionLost
	}
	return nil
}

// Wait waits for the delivery or ctx.
func (d *Delivery) Wait(ctx context.Context) error {
	select {
	case <-d.Done():
		return d.Err()
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Send publishes m without following its delivery: for messages whose
// loss is tolerable or made good otherwise (status, heartbeat, replies,
// sync requests). It fails only without a connection.
func (c *Client) Send(topic string, qos byte, retain bool, payload []byte) error {
	d := c.Publish(Message{Topic: topic, QoS: qos, Retain: retain, Payload: payload})
	if d.tok == nil {
		return d.err
	}
	return nil
}

// Track publishes m and returns its Done channel and Err: the form the
// uplink takes.
func (c *Client) Track(topic string, qos byte, retain bool, payload []byte) (<-chan struct{}, func() error) {
	d := c.Publish(Message{Topic: topic, QoS: qos, Retain: retain, Payload: payload})
	return d.Done(), d.Err
}
