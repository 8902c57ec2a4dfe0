package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"time"

	"anprd/internal/permit"
	"anprd/sync/central"
	"anprd/sync/mqtt"
	"anprd/sync/protocol"

	"github.com/rs/zerolog"
)

// The central side's commands: for tests, demos, and operators without
// their own tooling. They speak docs/protocol.md to a broker.

// brokerFlags are the connection flags the central commands share.
type brokerFlags struct {
	broker, username, passwordFile, ca, cert, key, prefix, site, clientID string
}

func (b *brokerFlags) register(fs *flag.FlagSet, clientID string) {
	fs.StringVar(&b.broker, "broker", "tcp://127.0.0.1:1883", "the broker, scheme://host:port")
	fs.StringVar(&b.username, "username", "", "broker user name")
	fs.StringVar(&b.passwordFile, "password-file", "", "file holding the broker password")
	fs.StringVar(&b.ca, "ca-file", "", "CA of the broker's certificate (TLS brokers)")
	fs.StringVar(&b.cert, "cert-file", "", "client certificate (mutual TLS)")
	fs.StringVar(&b.key, "key-file", "", "client key (mutual TLS)")
	fs.StringVar(&b.prefix, "prefix", "anpr/v1", "topic prefix (mqtt.topic_prefix of the boxes)")
	fs.StringVar(&b.site, "site", "", "the site (site.id of the boxes); required")
	fs.StringVar(&b.clientID, "client-id", clientID, "MQTT client id")
}

// connect starts a client and waits for its connection.
func (b *brokerFlags) connect(ctx context.Context, session bool, setup func(*mqtt.Client)) (*mqtt.Client, func(), error) {
	o := mqtt.Options{Broker: b.broker, ClientID: b.clientID, Username: b.username, Session: session, Log: zerolog.Nop(),
		MinBackoff: 200 * time.Millisecond, MaxBackoff: 5 * time.Second}
	if b.passwordFile != "" {
		p, err := mqtt.ReadPassword(b.passwordFile)
		if err != nil {
			return nil, nil, err
		}
		o.Password = p
	}
	if b.ca != "" || b.cert != "" {
		t, err := mqtt.TLSConfig(b.ca, b.cert, b.key)
		if err != nil {
			return nil, nil, err
		}
		o.TLS = t
	}
	c, err := mqtt.New(o)
	if err != nil {
		return nil, nil, err
	}
	if setup != nil {
		setup(c)
	}
	rctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { c.Run(rctx, nil); close(done) }()
	stop := func() { cancel(); <-done }
	for !c.Connected() {
		select {
		case <-ctx.Done():
			stop()
			return nil, nil, fmt.Errorf("no connection to %s: %s", b.broker, c.LastError())
		case <-time.After(20 * time.Millisecond):
		}
	}
	return c, stop, nil
}

func runKeys(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("anprctl keys gen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", "central", "write OUT.key (private, mode 0600) and OUT.pub (public: mqtt.central_key_file on the boxes)")
	if len(args) == 0 || args[0] != "gen" {
		fmt.Fprintln(stderr, "usage: anprctl keys gen [-out PREFIX]")
		return 2
	}
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		fmt.Fprintf(stderr, "anprctl: %v\n", err)
		return 1
	}
	if _, err := os.Stat(*out + ".key"); err == nil {
		fmt.Fprintf(stderr, "anprctl: %s.key exists; not overwriting a private key\n", *out)
		return 1
	}
	if err := os.WriteFile(*out+".key", protocol.MarshalPrivateKey(priv), 0o600); err != nil {
		fmt.Fprintf(stderr, "anprctl: %v\n", err)
		return 1
	}
	if err := os.WriteFile(*out+".pub", protocol.MarshalPublicKey(pub), 0o644); err != nil {
		fmt.Fprintf(stderr, "anprctl: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "key %s: private %s.key, public %s.pub\n", protocol.KeyID(pub), *out, *out)
	return 0
}

func runPermits(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("anprctl permits push", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var b brokerFlags
	b.register(fs, "anprctl-push")
	device := fs.String("device", "", "the box (site.device); required for a snapshot, empty for a delta to every box of the site")
	keyFile := fs.String("key", "central.key", "the central system's private key (anprctl keys gen)")
	mode := fs.String("mode", "snapshot", "snapshot (the whole data set, replacing the box's) or delta (changes after seq-1)")
	seq := fs.Uint64("seq", 0, "the sequence number the data stands at; required (a delta must follow the box's last by one)")
	chunk := fs.Int("chunk", 5000, "records per snapshot chunk")
	id := fs.String("id", "", "snapshot id (default push-SEQ)")
	timeout := fs.Duration("timeout", 5*time.Minute, "give up after this long")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: anprctl permits push [flags] FILE\n\n"+
			"Publishes FILE's permit data (JSON changes, a JSON object of record lists, or CSV with a kind column;\n"+
			"see sync/central.ReadRecords) signed with the central key, as a snapshot paced by the box's\n"+
			"progress or as one delta, and waits until the box reports it applied (snapshot, or a delta to one box).")
		fs.PrintDefaults()
	}
	if len(args) == 0 || args[0] != "push" {
		fs.Usage()
		return 2
	}
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	if fs.NArg() != 1 || b.site == "" || *seq == 0 || (*mode == "snapshot" && *device == "") || (*mode != "snapshot" && *mode != "delta") {
		fs.Usage()
		return 2
	}
	fail := func(err error) int { fmt.Fprintf(stderr, "anprctl permits push: %v\n", err); return 1 }
	data, err := os.ReadFile(fs.Arg(0))
	if err != nil {
		return fail(err)
	}
	cs, err := central.ReadRecords(data)
	if err != nil {
		return fail(fmt.Errorf("%s: %w", fs.Arg(0), err))
	}
	kb, err := os.ReadFile(*keyFile)
	if err != nil {
		return fail(err)
	}
	priv, err := protocol.ParsePrivateKey(kb)
	if err != nil {
		return fail(fmt.Errorf("%s: %w", *keyFile, err))
	}
	signer := &central.Signer{Key: priv, Prefix: b.prefix, Site: b.site}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()

	states := make(chan protocol.SyncState, 1024)
	topics := protocol.Topics{Prefix: b.prefix, Site: b.site, Device: *device}
	c, stop, err := b.connect(ctx, false, func(c *mqtt.Client) {
		if *device == "" {
			return
		}
		c.Subscribe("state", 1, 1<<20, func(r mqtt.Received) {
			var st protocol.SyncState
			if json.Unmarshal(r.Payload, &st) == nil {
				select {
				case states <- st:
				default:
				}
			}
		}, topics.SyncState())
	})
	if err != nil {
		return fail(err)
	}
	defer stop()
	send := func(m central.Message) error {
		done, result := c.Track(m.Topic, protocol.QoSAtLeastOnce, false, m.Payload)
		select {
		case <-done:
			return result()
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	start := time.Now()
	if *mode == "delta" {
		m, err := signer.Delta(*device, &permit.Batch{Seq: *seq, Changes: cs})
		if err != nil {
			return fail(err)
		}
		if err := send(m); err != nil {
			return fail(err)
		}
		if *device != "" {
			if err := waitSeq(ctx, states, *seq); err != nil {
				return fail(err)
			}
		}
		fmt.Fprintf(stdout, "delta %d: %d changes published to %s in %v\n", *seq, len(cs), m.Topic, time.Since(start).Round(time.Millisecond))
		return 0
	}
	for i := range cs {
		if cs[i].Op != permit.Put {
			return fail(errors.New("a snapshot holds puts only; push deletes as a delta"))
		}
	}
	if *id == "" {
		*id = fmt.Sprintf("push-%d", *seq)
	}
	ms, err := signer.Snapshot(*device, *id, *seq, cs, *chunk)
	if err != nil {
		return fail(err)
	}
	if err := central.SendPaced(ctx, send, states, ms, *seq, 4); err != nil {
		return fail(err)
	}
	fmt.Fprintf(stdout, "snapshot %s: %d records in %d chunks applied by %s at seq %d in %v\n", *id, len(cs), len(ms), *device, *seq,
		time.Since(start).Round(time.Millisecond))
	return 0
}

func waitSeq(ctx context.Context, states <-chan protocol.SyncState, seq uint64) error {
	for {
		select {
		case st := <-states:
			if st.Seq >= seq {
				return nil
			}
			if st.Waiting != "" {
				return fmt.Errorf("the box is at seq %d and asks for a resync (%s)", st.Seq, st.Waiting)
			}
		case <-ctx.Done():
			return fmt.Errorf("the box did not report seq %d: %w", seq, ctx.Err())
		}
	}
}

func runPassages(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("anprctl passages tail", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var b brokerFlags
	b.register(fs, "anprctl-tail")
	device := fs.String("device", "+", "the box, or + for every box of the site")
	n := fs.Int("n", 0, "stop after this many unique passages (0: until interrupted)")
	asJSON := fs.Bool("json", false, "print each passage's JSON as received")
	quiet := fs.Bool("quiet", false, "print only the counts at the end")
	session := fs.Bool("session", true, "ask the broker to keep this client's messages while it is away (same -client-id)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: anprctl passages tail [flags]\n\n"+
			"Subscribes to the site's passages, prints each, and counts unique ids and duplicates,\n"+
			"as the central system deduplicates them. Ctrl-C (or -n) stops it and prints the counts.")
		fs.PrintDefaults()
	}
	if len(args) == 0 || args[0] != "tail" {
		fs.Usage()
		return 2
	}
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	if b.site == "" {
		fs.Usage()
		return 2
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt)
	defer cancel()
	counter := central.NewCounter()
	lines := make(chan string, 4096)
	filter := b.prefix + "/" + b.site + "/" + *device + "/passage"
	_, stop, err := b.connect(ctx, *session, func(c *mqtt.Client) {
		c.Subscribe("passages", 1, 256<<20, func(r mqtt.Received) {
			p, dup, err := counter.Add(r.Payload)
			switch {
			case *quiet:
			case err != nil:
				lines <- fmt.Sprintf("%s: undecodable passage: %v", r.Topic, err)
			case *asJSON:
				lines <- string(r.Payload)
			default:
				plate, class := "-", "-"
				if p.Read != nil && p.Read.Plate != "" {
					plate = p.Read.Plate
				}
				if p.Decision != nil {
					class = string(p.Decision.Class) + "/" + string(p.Decision.Action)
				}
				d := ""
				if dup {
					d = " (duplicate)"
				}
				lines <- fmt.Sprintf("%s %s %s %-6s %-9s %-10s %-24s %s%s", p.Time.Local().Format(time.DateTime), p.Device, p.Lane, p.Direction, p.Kind, plate, class, p.ID, d)
			}
		}, filter)
	})
	if err != nil {
		fmt.Fprintf(stderr, "anprctl passages tail: %v\n", err)
		return 1
	}
	defer stop()
	for {
		select {
		case l := <-lines:
			fmt.Fprintln(stdout, l)
		case <-ctx.Done():
			fmt.Fprintln(stdout, counter)
			return 0
		case <-time.After(100 * time.Millisecond):
		}
		if u, _, _ := counter.Counts(); *n > 0 && u >= *n {
			for len(lines) > 0 {
				fmt.Fprintln(stdout, <-lines)
			}
			fmt.Fprintln(stdout, counter)
			return 0
		}
	}
}
