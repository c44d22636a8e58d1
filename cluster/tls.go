package cluster

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"time"

	"github.com/hashicorp/raft"
)

// TLS is a node's identity and the authority it trusts. With it, every
// connection between nodes (Raft, and the HTTP calls nodes make to each
// other) is mutual TLS: each side proves it holds a certificate signed by
// the cluster's CA, so a machine that is not part of the cluster can neither
// join it nor read it.
type TLS struct {
	// Certificate is presented both as a server and as a client, so it
	// needs both the serverAuth and clientAuth extended key usages (or
	// none) and a SAN for every address the node advertises.
	Certificate tls.Certificate
	// CAs verify peers, in both directions.
	CAs *x509.CertPool
	// VerifyIncoming makes the HTTP API require a client certificate
	// signed by CAs from every client, not only from other nodes.
	VerifyIncoming bool
}

// LoadTLS reads a PEM certificate and key and a PEM CA bundle. Errors say
// which of the three files is at fault.
func LoadTLS(certFile, keyFile, caFile string) (*TLS, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("certificate %s with key %s: %w", certFile, keyFile, err)
	}
	cas, err := LoadCA(caFile)
	if err != nil {
		return nil, err
	}
	return &TLS{Certificate: cert, CAs: cas}, nil
}

// LoadCA reads a PEM bundle of CA certificates.
func LoadCA(caFile string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("CA file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("CA file %s: no PEM certificate in it", caFile)
	}
	return pool, nil
}

// minTLSVersion: TLS 1.2 is still needed by some HTTP clients; Go
// negotiates 1.3 whenever both ends have it.
const minTLSVersion = tls.VersionTLS12

// PeerConfig is the configuration of the Raft listener: a peer without a
// certificate from the CA gets no further than the handshake.
func (t *TLS) PeerConfig() *tls.Config {
	return &tls.Config{
		Certificates: []tls.Certificate{t.Certificate},
		ClientCAs:    t.CAs,
		ClientAuth:   tls.RequireAndVerifyClientCert,
		MinVersion:   minTLSVersion,
	}
}

// HTTPServerConfig is the configuration of the HTTP API. Other nodes always
// present their certificate; a client certificate that is presented is
// always verified; VerifyIncoming requires one from everyone.
func (t *TLS) HTTPServerConfig() *tls.Config {
	c := t.PeerConfig()
	if !t.VerifyIncoming {
		c.ClientAuth = tls.VerifyClientCertIfGiven
	}
	return c
}

// ClientConfig is for connections this node opens: it trusts only the
// CA and presents the node's certificate.
func (t *TLS) ClientConfig() *tls.Config {
	return &tls.Config{
		Certificates: []tls.Certificate{t.Certificate},
		RootCAs:      t.CAs,
		MinVersion:   minTLSVersion,
	}
}

// Scheme is the URL scheme of the nodes' HTTP APIs.
func (t *TLS) Scheme() string {
	if t == nil {
		return "http"
	}
	return "https"
}

// tlsStreamLayer carries Raft over mutual TLS. Raft only needs a listener
// and a dialer; both insist on a certificate from the cluster's CA.
type tlsStreamLayer struct {
	net.Listener // a TCP listener; Accept wraps each connection
	advertise    net.Addr
	server       *tls.Config
	client       *tls.Config
}

// handshakeTimeout bounds a TLS handshake, so that a connection that never
// completes one holds nothing for long.
const handshakeTimeout = 10 * time.Second

func newTLSStreamLayer(bind string, advertise net.Addr, t *TLS) (*tlsStreamLayer, error) {
	ln, err := net.Listen("tcp", bind)
	if err != nil {
		return nil, err
	}
	if advertise == nil {
		advertise = ln.Addr()
	}
	if tcp, ok := advertise.(*net.TCPAddr); !ok || tcp.IP.IsUnspecified() {
		ln.Close()
		return nil, fmt.Errorf("raft address %s is not advertisable", advertise)
	}
	server := t.PeerConfig()
	server.VerifyConnection = nodeCertificateOnly
	return &tlsStreamLayer{Listener: ln, advertise: advertise, server: server, client: t.ClientConfig()}, nil
}

// nodeCertificateOnly refuses Raft to a certificate made only for clients
// (an operator's, for an API with verify_incoming), though the same CA
// signed it: a node's certificate also serves, so it has serverAuth.
func nodeCertificateOnly(cs tls.ConnectionState) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("raft: the peer presented no certificate")
	}
	leaf := cs.PeerCertificates[0]
	if len(leaf.ExtKeyUsage) == 0 || slices.ContainsFunc(leaf.ExtKeyUsage, func(u x509.ExtKeyUsage) bool {
		return u == x509.ExtKeyUsageServerAuth || u == x509.ExtKeyUsageAny
	}) {
		return nil
	}
	return fmt.Errorf("raft: the certificate of %q is not a node's: it lacks the serverAuth usage", leaf.Subject.CommonName)
}

// Accept returns the next connection as TLS. The handshake happens on the
// connection's first read, in Raft's goroutine for that connection, so a
// slow or hostile client does not hold up the accept loop.
func (l *tlsStreamLayer) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &handshakeConn{Conn: tls.Server(c, l.server)}, nil
}

// Addr is the address advertised to the other nodes.
func (l *tlsStreamLayer) Addr() net.Addr { return l.advertise }

// Dial opens a verified TLS connection to a peer: the peer's certificate
// must come from the CA and name the host dialled.
func (l *tlsStreamLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: timeout}, Config: l.client}
	return d.Dial("tcp", string(address))
}

// handshakeConn completes the server side of the TLS handshake, within
// handshakeTimeout, before the first byte is read or written.
type handshakeConn struct {
	*tls.Conn
	done bool
}

func (c *handshakeConn) handshake() error {
	if c.done {
		return nil
	}
	if err := c.Conn.SetDeadline(time.Now().Add(handshakeTimeout)); err != nil {
		return err
	}
	if err := c.Conn.Handshake(); err != nil {
		return fmt.Errorf("raft TLS handshake with %s: %w", c.RemoteAddr(), err)
	}
	c.done = true
	return c.Conn.SetDeadline(time.Time{})
}

func (c *handshakeConn) Read(b []byte) (int, error) {
	if err := c.handshake(); err != nil {
		return 0, err
	}
	return c.Conn.Read(b)
}

func (c *handshakeConn) Write(b []byte) (int, error) {
	if err := c.handshake(); err != nil {
		return 0, err
	}
	return c.Conn.Write(b)
}
