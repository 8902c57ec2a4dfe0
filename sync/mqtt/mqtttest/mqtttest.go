// Package mqtttest runs a real Mosquitto broker for tests, on a free port
// of 127.0.0.1 with a config written for the test: plain, TLS with a CA
// made in the test, mutual TLS, or with a password file. A test can kill
// the broker (SIGKILL, as a crash) and start it again on the same port.
// Tests that need it skip, saying why, when mosquitto is not installed
// (make deps installs it).
//
// It is for tests only: nothing here is fit for a production broker.
package mqtttest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha512"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// Binary is where Debian's mosquitto package puts the broker.
var Binary = "/usr/sbin/mosquitto"

// Options choose the broker's listener.
type Options struct {
	TLS        bool   // a TLS listener with a CA and server certificate made for the test
	ClientCert bool   // mutual TLS: the broker requires a client certificate signed by the CA
	Username   string // require this user ...
	Password   string // ... with this password
	// Persist keeps sessions and their queued messages in a file saved
	// every second, so a subscriber with a session (mqtt.Options.Session)
	// finds its subscription again after the broker was killed.
	Persist bool
	// Extra lines for mosquitto.conf.
	Extra string
}

// Broker is a running mosquitto.
type Broker struct {
	t    testing.TB
	dir  string
	conf string
	Port int
	URL  string // tcp://127.0.0.1:PORT or ssl://127.0.0.1:PORT
	// Files for the client, when TLS is on.
	CAFile, CertFile, KeyFile string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	log    *syncBuffer
}

// syncBuffer is the broker's output, written by exec's goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Start starts a broker for t and stops it at t's end.
func Start(t testing.TB, o Options) *Broker {
	t.Helper()
	if _, err := os.Stat(Binary); err != nil {
		t.Skipf("mosquitto is not installed (%v); make deps installs it", err)
	}
	dir := t.TempDir()
	b := &Broker{t: t, dir: dir, Port: freePort(t), conf: filepath.Join(dir, "mosquitto.conf")}
	var conf strings.Builder
	fmt.Fprintf(&conf, "listener %d 127.0.0.1\n", b.Port)
	// Deliver at once to subscribers and queue without limit: a killed
	// broker loses only what it had not yet written out.
	conf.WriteString("max_inflight_messages 0\nmax_queued_messages 0\nlog_dest stderr\nlog_type error\nlog_type warning\n")
	if o.Persist {
		fmt.Fprintf(&conf, "persistence true\npersistence_location %s/\nautosave_interval 1\n", dir)
	} else {
		conf.WriteString("persistence false\n")
	}
	if os.Geteuid() == 0 {
		// Started as root, mosquitto would switch to the mosquitto user,
		// which cannot read the test's files.
		conf.WriteString("user root\n")
	}
	scheme := "tcp"
	if o.TLS || o.ClientCert {
		scheme = "ssl"
		certs := MakeCerts(t, dir)
		b.CAFile, b.CertFile, b.KeyFile = certs.CA, certs.ClientCert, certs.ClientKey
		fmt.Fprintf(&conf, "cafile %s\ncertfile %s\nkeyfile %s\n", certs.CA, certs.ServerCert, certs.ServerKey)
		if o.ClientCert {
			conf.WriteString("require_certificate true\n")
		}
	}
	if o.Username != "" {
		pw := filepath.Join(dir, "passwd")
		if err := os.WriteFile(pw, []byte(passwdLine(o.Username, o.Password)), 0o600); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&conf, "allow_anonymous false\npassword_file %s\n", pw)
	} else {
		conf.WriteString("allow_anonymous true\n")
	}
	conf.WriteString(o.Extra)
	if err := os.WriteFile(b.conf, []byte(conf.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	b.URL = fmt.Sprintf("%s://127.0.0.1:%d", scheme, b.Port)
	b.start()
	t.Cleanup(b.Kill)
	return b
}

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// start runs mosquitto and waits until it accepts connections. The port
// may still be held for a moment by a killed broker's socket, so it tries
// again for a while.
func (b *Broker) start() {
	b.t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	var last error
	for range 50 {
		if last = b.try(); last == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	b.t.Fatal(last)
}

func (b *Broker) try() error {
	log := new(syncBuffer)
	cmd := exec.Command(Binary, "-c", b.conf)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("mosquitto: %v", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(b.Port), 200*time.Millisecond)
		if err == nil {
			c.Close()
			b.cmd, b.exited, b.log = cmd, exited, log
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("mosquitto exited: %s", log.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	cmd.Process.Kill()
	<-exited
	return fmt.Errorf("mosquitto did not listen on %d within 5 s: %s", b.Port, log.String())
}

// Kill kills the broker with SIGKILL, as a crash would, and waits for it
// to be gone.
func (b *Broker) Kill() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cmd == nil {
		return
	}
	b.cmd.Process.Signal(syscall.SIGKILL)
	<-b.exited
	b.cmd = nil
}

// Restart starts the broker again on the same port.
func (b *Broker) Restart() {
	b.Kill()
	b.start()
}

// Log is what mosquitto wrote (errors and warnings).
func (b *Broker) Log() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.log == nil {
		return ""
	}
	return b.log.String()
}

// passwdLine is a mosquitto 2 password file line: PBKDF2-SHA512, 101
// rounds, as mosquitto_passwd writes it.
func passwdLine(user, pass string) string {
	salt := make([]byte, 12)
	rand.Read(salt)
	key, err := pbkdf2.Key(sha512.New, pass, salt, 101, 64)
	if err != nil {
		panic(err)
	}
	return fmt.Sprintf("%s:$7$101$%s$%s\n", user, base64.StdEncoding.EncodeToString(salt), base64.StdEncoding.EncodeToString(key))
}

// Certs are PEM files made for one test.
type Certs struct {
	CA, CAKey              string
	ServerCert, ServerKey  string
	ClientCert, ClientKey  string
	OtherCA                string // a CA that signed nothing here, for negative tests
	UntrustedCert, UntrKey string // a client certificate from OtherCA
}

// MakeCerts writes a CA, a server certificate for 127.0.0.1 and a client
// certificate into dir, with crypto/x509 (ECDSA P-256, valid for a day).
func MakeCerts(t testing.TB, dir string) Certs {
	t.Helper()
	now := time.Now()
	newKey := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	serial := int64(1)
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	writeKey := func(name string, k *ecdsa.PrivateKey) string {
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return write(name, "PRIVATE KEY", der)
	}
	makeCA := func(name string) (*x509.Certificate, *ecdsa.PrivateKey, string) {
		k := newKey()
		serial++
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
			KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
		if err != nil {
			t.Fatal(err)
		}
		cert, _ := x509.ParseCertificate(der)
		return cert, k, write(name+".pem", "CERTIFICATE", der)
	}
	leaf := func(name string, ca *x509.Certificate, caKey *ecdsa.PrivateKey, server bool) (string, string) {
		k := newKey()
		serial++
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), KeyUsage: x509.KeyUsageDigitalSignature}
		if server {
			tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
			tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
		} else {
			tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &k.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		return write(name+".pem", "CERTIFICATE", der), writeKey(name+".key", k)
	}
	ca, caKey, caFile := makeCA("test-ca")
	other, otherKey, otherFile := makeCA("other-ca")
	var c Certs
	c.CA, c.OtherCA = caFile, otherFile
	c.CAKey = writeKey("test-ca.key", caKey)
	c.ServerCert, c.ServerKey = leaf("server", ca, caKey, true)
	c.ClientCert, c.ClientKey = leaf("client", ca, caKey, false)
	c.UntrustedCert, c.UntrKey = leaf("untrusted-client", other, otherKey, false)
	return c
}

// Proxy forwards TCP connections to a broker, and can be told to turn new
// connections away: a test restarting the broker can then let its
// subscriber reconnect before the client under test does.
type Proxy struct {
	URL  string
	ln   net.Listener
	to   string
	held atomic.Bool

	mu    sync.Mutex
	conns []net.Conn
}

// Drop cuts every connection through the proxy without a word, as a
// pulled cable would: the broker publishes the clients' wills.
func (p *Proxy) Drop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// NewProxy listens on a free port of 127.0.0.1 and forwards to b. It
// stops at t's end.
func NewProxy(t testing.TB, b *Broker) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	scheme, _, _ := strings.Cut(b.URL, "://")
	p := &Proxy{URL: scheme + "://" + ln.Addr().String(), ln: ln, to: "127.0.0.1:" + strconv.Itoa(b.Port)}
	go p.serve()
	t.Cleanup(func() { ln.Close() })
	return p
}

// Hold turns new connections away until Release.
func (p *Proxy) Hold() { p.held.Store(true) }

// Release lets new connections through again.
func (p *Proxy) Release() { p.held.Store(false) }

func (p *Proxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		if p.held.Load() {
			c.Close()
			continue
		}
		up, err := net.Dial("tcp", p.to)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, up)
		p.mu.Unlock()
		go pipe(c, up)
		go pipe(up, c)
	}
}

// pipe copies until either side ends, then closes both, so the client
// sees the broker's death as its own connection dropping.
func pipe(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				break
			}
		}
		if err != nil {
			break
		}
	}
	dst.Close()
	src.Close()
}

// Stop stops the broker with SIGTERM, as systemctl stop would: it closes
// its connections and, with Persist, saves its sessions first.
func (b *Broker) Stop() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cmd == nil {
		return
	}
	b.cmd.Process.Signal(syscall.SIGTERM)
	<-b.exited
	b.cmd = nil
}

// Start starts a stopped or killed broker again on the same port.
func (b *Broker) Start() { b.start() }

// Freeze stops the broker's process (SIGSTOP) without closing anything:
// it neither reads nor acknowledges until Thaw or Kill.
func (b *Broker) Freeze() { b.signal(syscall.SIGSTOP) }

// Thaw lets a frozen broker run again (SIGCONT).
func (b *Broker) Thaw() { b.signal(syscall.SIGCONT) }

func (b *Broker) signal(s syscall.Signal) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cmd != nil {
		b.cmd.Process.Signal(s)
	}
}
