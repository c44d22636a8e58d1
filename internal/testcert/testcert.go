// Package testcert makes real X.509 certificates for tests: an ephemeral
// CA and certificates it signs, written as PEM files the way an operator's
// would be. It is shared by the tests of every package that needs TLS.
package testcert

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// CA is a certificate authority that exists for one test.
type CA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	der  []byte
}

// NewCA makes a self-signed CA named name.
func NewCA(t testing.TB, name string) *CA {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber:          serial(t),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatalf("testcert: CA: %v", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("testcert: CA: %v", err)
	}
	return &CA{cert: cert, key: key, der: der}
}

// Pool is a pool holding only this CA.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}

// Files are the PEM files of one certificate, its key and its CA.
type Files struct{ Cert, Key, CA string }

// Issue makes a certificate for name, valid for both server and client
// authentication (a node is both), with 127.0.0.1 and ::1 as IP SANs and
// localhost as DNS SAN, and writes it, its key and the CA into a new
// temporary directory.
func (ca *CA) Issue(t testing.TB, name string) Files {
	t.Helper()
	return ca.IssueFor(t, name, x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth)
}

// IssueFor is Issue with only the given extended key usages: for example a
// client-only certificate, such as an operator's.
func (ca *CA) IssueFor(t testing.TB, name string, usages ...x509.ExtKeyUsage) Files {
	t.Helper()
	cert, key := ca.issue(t, name, usages)
	dir := t.TempDir()
	f := Files{Cert: filepath.Join(dir, name+".crt"), Key: filepath.Join(dir, name+".key"), CA: filepath.Join(dir, "ca.crt")}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatalf("testcert: key: %v", err)
	}
	write(t, f.Cert, "CERTIFICATE", cert)
	write(t, f.Key, "PRIVATE KEY", keyDER)
	write(t, f.CA, "CERTIFICATE", ca.der)
	return f
}

// Certificate is Issue's certificate as a tls.Certificate, for clients.
func (ca *CA) Certificate(t testing.TB, name string) tls.Certificate {
	t.Helper()
	cert, key := ca.issue(t, name, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth})
	return tls.Certificate{Certificate: [][]byte{cert}, PrivateKey: key}
}

func (ca *CA) issue(t testing.TB, name string, usages []x509.ExtKeyUsage) ([]byte, *ecdsa.PrivateKey) {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber: serial(t),
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  usages,
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		DNSNames:     []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatalf("testcert: certificate %s: %v", name, err)
	}
	return der, key
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("testcert: key: %v", err)
	}
	return key
}

func serial(t testing.TB) *big.Int {
	t.Helper()
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		t.Fatalf("testcert: serial: %v", err)
	}
	return n
}

func write(t testing.TB, path, kind string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der}), 0o600); err != nil {
		t.Fatalf("testcert: %v", err)
	}
}
