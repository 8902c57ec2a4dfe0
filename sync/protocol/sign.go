package protocol

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
)

// Every central-to-edge message is a signed envelope:
//
//	{"v":1,"alg":"ed25519","key":"<key id>","sig":"<base64>","body":{...}}
//
// The signature is Ed25519 over SignedBytes(topic, body): the domain
// string "anpr-sig-v1", a NUL, the topic the message was published on, a
// NUL, then the body exactly as it stands in the payload (from its first
// '{' to its last '}'). Signing the topic binds a message to the site and
// box it was meant for, so a broker that is broken into cannot move a
// signed "open" from one box to another, nor a delta between sites.
// MQTT topics cannot contain NUL, so the concatenation is unambiguous.

// Envelope is the signed wrapper, as decoded.
type Envelope struct {
	V    int             `json:"v"`
	Alg  string          `json:"alg"`
	Key  string          `json:"key"` // KeyID of the signing key
	Sig  []byte          `json:"sig"` // 64 bytes, standard base64 in JSON
	Body json.RawMessage `json:"body"`
}

// AlgEd25519 is the only signature algorithm.
const AlgEd25519 = "ed25519"

const sigDomain = "anpr-sig-v1"

// SignedBytes is what the signature covers.
func SignedBytes(topic string, body []byte) []byte {
	b := make([]byte, 0, len(sigDomain)+len(topic)+len(body)+2)
	b = append(b, sigDomain...)
	b = append(b, 0)
	b = append(b, topic...)
	b = append(b, 0)
	return append(b, body...)
}

// KeyID names a public key: the first 8 bytes of its SHA-256, in hex.
// The envelope carries it so that a box can say "signed with another
// key" (a key rotation not yet configured) rather than "bad signature".
func KeyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:8])
}

// Sign wraps body (a JSON object) for topic. The payload is written by
// hand so that body stands in it byte for byte as signed.
func Sign(priv ed25519.PrivateKey, topic string, body []byte) ([]byte, error) {
	body = bytes.TrimSpace(body)
	if !json.Valid(body) || len(body) == 0 || body[0] != '{' {
		return nil, errors.New("protocol: a signed body must be one JSON object")
	}
	sig := ed25519.Sign(priv, SignedBytes(topic, body))
	pub := priv.Public().(ed25519.PublicKey)
	var b bytes.Buffer
	b.Grow(len(body) + 160)
	fmt.Fprintf(&b, `{"v":%d,"alg":%q,"key":%q,"sig":%q,"body":`, Version, AlgEd25519, KeyID(pub), base64.StdEncoding.EncodeToString(sig))
	b.Write(body)
	b.WriteByte('}')
	return b.Bytes(), nil
}

// SignJSON marshals v and signs it for topic.
func SignJSON(priv ed25519.PrivateKey, topic string, v any) ([]byte, error) {
	body, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return Sign(priv, topic, body)
}

// Verify checks that payload is an envelope signed by pub for topic and
// returns its body. Errors are *Reject: too_large, malformed, unsigned,
// unknown_key or bad_signature. A nil pub (no key configured) refuses
// everything as no_key.
func Verify(pub ed25519.PublicKey, topic string, payload []byte) ([]byte, error) {
	if len(payload) > MaxPayload {
		return nil, rejectf(RejectTooLarge, "%d bytes, more than %d", len(payload), MaxPayload)
	}
	var env Envelope
	if err := decodeStrict(payload, &env); err != nil {
		// A plain JSON object that is not an envelope is unsigned, not
		// malformed: someone sent the body without signing it.
		var probe map[string]json.RawMessage
		if json.Unmarshal(payload, &probe) == nil && (probe["sig"] == nil || probe["body"] == nil) {
			return nil, rejectf(RejectUnsigned, "not a signed envelope (no sig and body)")
		}
		return nil, &Reject{Reason: RejectMalformed, Err: err}
	}
	switch {
	case len(env.Sig) == 0 || len(env.Body) == 0:
		return nil, rejectf(RejectUnsigned, "no signature or no body")
	case env.V != Version:
		return nil, rejectf(RejectMalformed, "envelope version %d; this anprd reads %d", env.V, Version)
	case env.Body[0] != '{':
		return nil, rejectf(RejectMalformed, "body is not a JSON object")
	case env.Alg != AlgEd25519:
		return nil, rejectf(RejectBadSignature, "algorithm %q; only %s is accepted", env.Alg, AlgEd25519)
	case len(env.Sig) != ed25519.SignatureSize:
		return nil, rejectf(RejectBadSignature, "signature is %d bytes, not %d", len(env.Sig), ed25519.SignatureSize)
	case pub == nil:
		return nil, rejectf(RejectNoKey, "no central key configured (mqtt.central_key_file)")
	case env.Key != KeyID(pub):
		return nil, rejectf(RejectUnknownKey, "signed with key %q; the configured central key is %q", env.Key, KeyID(pub))
	}
	if !ed25519.Verify(pub, SignedBytes(topic, env.Body), env.Sig) {
		return nil, rejectf(RejectBadSignature, "signature does not verify for topic %s", topic)
	}
	return env.Body, nil
}

// PEM block types of the keys, as anprctl keys gen writes them.
const (
	pemPublic  = "PUBLIC KEY"
	pemPrivate = "PRIVATE KEY"
)

// ParsePublicKey reads an Ed25519 public key in PEM (PKIX "PUBLIC KEY").
func ParsePublicKey(b []byte) (ed25519.PublicKey, error) {
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != pemPublic {
		return nil, errors.New("protocol: not a PEM PUBLIC KEY")
	}
	k, err := x509.ParsePKIXPublicKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("protocol: %w", err)
	}
	pub, ok := k.(ed25519.PublicKey)
	if !ok {
		return nil, fmt.Errorf("protocol: a %T key, not Ed25519", k)
	}
	return pub, nil
}

// ParsePrivateKey reads an Ed25519 private key in PEM (PKCS #8
// "PRIVATE KEY").
func ParsePrivateKey(b []byte) (ed25519.PrivateKey, error) {
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != pemPrivate {
		return nil, errors.New("protocol: not a PEM PRIVATE KEY")
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("protocol: %w", err)
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("protocol: a %T key, not Ed25519", k)
	}
	return priv, nil
}

// MarshalPublicKey writes pub as PEM.
func MarshalPublicKey(pub ed25519.PublicKey) []byte {
	der, _ := x509.MarshalPKIXPublicKey(pub)
	return pem.EncodeToMemory(&pem.Block{Type: pemPublic, Bytes: der})
}

// MarshalPrivateKey writes priv as PEM.
func MarshalPrivateKey(priv ed25519.PrivateKey) []byte {
	der, _ := x509.MarshalPKCS8PrivateKey(priv)
	return pem.EncodeToMemory(&pem.Block{Type: pemPrivate, Bytes: der})
}
