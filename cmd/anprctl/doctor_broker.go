package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"anprd/internal/config"
	"anprd/sync/mqtt"

	"github.com/eclipse/paho.mqtt.golang/packets"
)

// brokerProbe is the broker connection, in the steps that fail for
// different reasons: the name, the TCP connection, then MQTT's CONNECT
// (through sync/mqtt, as anprd connects).
type brokerProbe interface {
	LookupHost(ctx context.Context, host string) ([]string, error)
	Dial(ctx context.Context, addr string) (net.Conn, error)
	// Connect makes one MQTT connection with o and closes it.
	Connect(ctx context.Context, o mqtt.Options) error
}

var tlsSchemes = map[string]bool{"ssl": true, "tls": true, "mqtts": true, "wss": true}

// doctorClientSuffix keeps doctor's connection from taking over anprd's:
// a broker drops the older of two connections with one client id.
const doctorClientSuffix = "-doctor"

func (d *doctor) checkBroker(ctx context.Context, m config.MQTT) finding {
	const c = "broker"
	u, err := url.Parse(m.Broker)
	if err != nil {
		return bad(c, levelFail, err.Error(), "set mqtt.broker to scheme://host:port")
	}
	scheme := strings.ToLower(u.Scheme)
	host, port := u.Hostname(), u.Port()
	if port == "" {
		port = map[string]string{"tcp": "1883", "mqtt": "1883", "ws": "80", "wss": "443"}[scheme]
		if port == "" {
			port = "8883"
		}
	}
	addr := net.JoinHostPort(host, port)
	ctx, cancel := context.WithTimeout(ctx, d.brokerTimeout)
	defer cancel()
	where := "(mqtt.broker is " + m.Broker + ")"
	if net.ParseIP(host) == nil {
		if _, err := d.broker.LookupHost(ctx, host); err != nil {
			what, fix := netTrouble(err, addr)
			return bad(c, levelFail, "DNS: "+what, fix+" "+where)
		}
	}
	conn, err := d.broker.Dial(ctx, addr)
	if err != nil {
		what, fix := netTrouble(err, addr)
		return bad(c, levelFail, what, fix+" "+where)
	}
	var tc *tls.Config
	tlsText := ""
	if tlsSchemes[scheme] {
		if tc, err = mqtt.TLSConfig(m.CAFile, m.CertFile, m.KeyFile); err != nil {
			conn.Close()
			return bad(c, levelFail, err.Error(), "mqtt.ca_file is the CA's certificate (PEM); mqtt.cert_file and key_file the box's own certificate and its key")
		}
		hc := tc.Clone()
		hc.ServerName = host
		if tlsText, err = handshake(ctx, conn, hc, m.CertFile != ""); err != nil {
			conn.Close()
			what, fix := tlsTrouble(err, host, m)
			return bad(c, levelFail, what, fix)
		}
	}
	conn.Close()

	o := mqtt.Options{Broker: m.Broker, ClientID: m.ClientID + doctorClientSuffix, Username: m.Username, TLS: tc,
		Keepalive: time.Duration(m.Keepalive), ConnectTimeout: d.brokerTimeout}
	if m.PasswordFile != "" {
		if o.Password, err = mqtt.ReadPassword(m.PasswordFile); err != nil {
			return bad(c, levelFail, err.Error(), "mqtt.password_file holds the broker password on one line")
		}
	}
	if err := d.broker.Connect(ctx, o); err != nil {
		what, fix := mqttTrouble(err, m)
		return bad(c, levelFail, what, fix)
	}
	login := "anonymous"
	switch {
	case m.Username != "":
		login = "user " + m.Username
	case m.CertFile != "":
		login = "the client certificate"
	}
	if tlsText != "" {
		tlsText = ", " + tlsText
	}
	return okf(c, "%s%s: MQTT login as %s accepted (client id %s)", m.Broker, tlsText, login, o.ClientID)
}

// handshake runs the TLS handshake on conn and describes the broker's
// certificate. In TLS 1.3 a broker refuses a client certificate only after
// the client's side of the handshake is done, so with a client
// certificate it also waits a moment for that refusal.
func handshake(ctx context.Context, conn net.Conn, tc *tls.Config, clientCert bool) (string, error) {
	t := tls.Client(conn, tc)
	if err := t.HandshakeContext(ctx); err != nil {
		return "", err
	}
	st := t.ConnectionState()
	if st.Version == tls.VersionTLS13 {
		// The broker sends nothing before CONNECT: a read that times out
		// means it kept the connection.
		t.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		var b [1]byte
		_, err := t.Read(b[:])
		var ne net.Error
		if err != nil && !(errors.As(err, &ne) && ne.Timeout()) {
			return "", err
		}
	}
	text := "TLS " + strings.TrimPrefix(tls.VersionName(st.Version), "TLS ")
	if len(st.PeerCertificates) > 0 {
		leaf := st.PeerCertificates[0]
		text += fmt.Sprintf(", broker certificate %q valid until %s", leaf.Subject.CommonName, leaf.NotAfter.Format(time.DateOnly))
	}
	if clientCert {
		text += ", client certificate accepted"
	}
	return text, nil
}

// tlsTrouble says what a failed TLS handshake means.
func tlsTrouble(err error, host string, m config.MQTT) (what, fix string) {
	var unknown x509.UnknownAuthorityError
	var invalid x509.CertificateInvalidError
	var name x509.HostnameError
	ca := "mqtt.ca_file (" + m.CAFile + ")"
	if m.CAFile == "" {
		ca = "the system's CAs (mqtt.ca_file is not set)"
	}
	switch {
	case errors.As(err, &unknown):
		return "TLS: the broker's certificate is not signed by " + ca + ": " + err.Error(),
			"set mqtt.ca_file to the CA that signed the broker's certificate"
	case errors.As(err, &invalid) && invalid.Reason == x509.Expired:
		return "TLS: " + err.Error(),
			"check the box's clock first (see the clock check; timedatectl), then the certificate's dates (openssl x509 -noout -dates)"
	case errors.As(err, &name):
		return "TLS: " + err.Error(),
			"put the name the certificate is for in mqtt.broker, or have the broker's certificate issued for " + host
	case refusedHandshake(err):
		if m.CertFile == "" {
			return "TLS: the broker refused the handshake (" + err.Error() + "): it wants a client certificate",
				"make the box a certificate signed by the broker's CA and set mqtt.cert_file and mqtt.key_file"
		}
		return "TLS: the broker refused this box's client certificate (" + err.Error() + ")",
			"the certificate in mqtt.cert_file must be signed by the CA the broker trusts (its cafile), be valid now, and be for client use"
	}
	return "TLS: " + err.Error(), "check that the port speaks TLS (ssl:// for 8883, tcp:// for 1883) and the files in mqtt.ca_file, cert_file, key_file"
}

// refusedHandshake: the broker sent a TLS alert, or closed the
// connection, as brokers do on a client certificate they refuse.
func refusedHandshake(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "remote error: tls:") || strings.HasSuffix(msg, "EOF") || strings.Contains(msg, "connection reset")
}

// mqttTrouble says what a refused MQTT CONNECT means.
func mqttTrouble(err error, m config.MQTT) (what, fix string) {
	msg := err.Error()
	has := func(e error) bool { return errors.Is(err, e) || strings.Contains(msg, e.Error()) }
	switch {
	case has(packets.ErrorRefusedBadUsernameOrPassword):
		return "MQTT: the broker refused the login: bad user name or password",
			"check mqtt.username and the password in mqtt.password_file against the broker's password file (mosquitto_passwd)"
	case has(packets.ErrorRefusedNotAuthorised):
		return "MQTT: the broker refused the connection: not authorised",
			"check mqtt.username and the password in mqtt.password_file against the broker's password file (Mosquitto answers a wrong password so), then the broker's allow_anonymous; with use_identity_as_username the client certificate's CN is the user"
	case has(packets.ErrorRefusedIDRejected):
		return "MQTT: the broker rejected the client id " + m.ClientID + doctorClientSuffix,
			"use a client_id the broker accepts (some limit it to 23 characters)"
	case has(packets.ErrorRefusedServerUnavailable):
		return "MQTT: the broker says it is unavailable", "check the broker's own log"
	case strings.Contains(msg, "timed out") || errors.Is(err, context.DeadlineExceeded):
		return "MQTT: no CONNACK in time: " + msg,
			"the port answers but not as an MQTT broker of this scheme: check the scheme and port in mqtt.broker (tcp:// 1883, ssl:// 8883, ws:// or wss:// with the broker's websocket listener)"
	}
	return "MQTT: " + msg, "check the broker's log for this client id"
}
