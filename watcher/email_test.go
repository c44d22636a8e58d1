package watcher

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"math/big"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/watchdog-ha/watchdog/fsm"
)

// delivered is one message a smtpServer accepted.
type delivered struct {
	from    string
	to      []string
	data    []byte
	overTLS bool
	user    string
}

// smtpServer is a real SMTP server (go-smtp) on loopback that keeps what
// it receives. With a user it offers AUTH PLAIN (only after STARTTLS, as
// real servers do) and refuses mail from anyone not authenticated.
type smtpServer struct {
	addr       string
	user, pass string
	// echo makes every refusal quote what the client sent, as a
	// careless or hostile server might.
	echo bool
	mu   sync.Mutex
	msgs []delivered
}

func newSMTPServer(t *testing.T, tlsConfig *tls.Config, user, pass string) *smtpServer {
	t.Helper()
	s := &smtpServer{user: user, pass: pass}
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &smtpSession{srv: s, conn: c}, nil
	}))
	srv.Domain = "localhost"
	srv.TLSConfig = tlsConfig
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.addr = ln.Addr().String()
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return s
}

func (s *smtpServer) received() []delivered {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]delivered(nil), s.msgs...)
}

type smtpSession struct {
	srv  *smtpServer
	conn *smtp.Conn
	cur  delivered
}

func (x *smtpSession) AuthMechanisms() []string {
	if x.srv.user == "" {
		return nil
	}
	return []string{sasl.Plain}
}

func (x *smtpSession) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, pass string) error {
		if user != x.srv.user || pass != x.srv.pass {
			if x.srv.echo {
				return &smtp.SMTPError{Code: 535, EnhancedCode: smtp.EnhancedCode{5, 7, 8},
					Message: "Authentication failed for " + user + " with password " + pass}
			}
			return smtp.ErrAuthFailed
		}
		x.cur.user = user
		return nil
	}), nil
}

func (x *smtpSession) Mail(from string, _ *smtp.MailOptions) error {
	if x.srv.user != "" && x.cur.user == "" {
		return smtp.ErrAuthRequired
	}
	x.cur.from = from
	return nil
}

func (x *smtpSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	x.cur.to = append(x.cur.to, to)
	return nil
}

func (x *smtpSession) Data(r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	_, overTLS := x.conn.TLSConnectionState()
	d := x.cur
	d.data, d.overTLS = data, overTLS
	x.srv.mu.Lock()
	x.srv.msgs = append(x.srv.msgs, d)
	x.srv.mu.Unlock()
	return nil
}

func (x *smtpSession) Reset()        { x.cur = delivered{user: x.cur.user} }
func (x *smtpSession) Logout() error { return nil }

// selfSigned returns a server certificate for 127.0.0.1 and a client
// configuration that trusts it (and nothing else).
func selfSigned(t *testing.T) (server, client *tls.Config) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "watchdog test smtp"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	server = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
	return server, &tls.Config{RootCAs: pool}
}

// readMail parses a received message and decodes its body.
func readMail(t *testing.T, data []byte) (*mail.Message, string) {
	t.Helper()
	m, err := mail.ReadMessage(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("received message does not parse: %v\n%s", err, data)
	}
	var body io.Reader = m.Body
	if strings.EqualFold(m.Header.Get("Content-Transfer-Encoding"), "quoted-printable") {
		body = quotedprintable.NewReader(m.Body)
	}
	b, err := io.ReadAll(body)
	if err != nil {
		t.Fatal(err)
	}
	return m, string(b)
}

func TestEmailOverSTARTTLSWithAuth(t *testing.T) {
	serverTLS, clientTLS := selfSigned(t)
	srv := newSMTPServer(t, serverTLS, "watchdog", "pa55word")
	ev := testEvent()
	e := Email{Server: srv.addr, From: "watchdog@example.com", To: []string{"oncall@example.com", "ops@example.org"},
		Username: "watchdog", Password: "pa55word", StartTLS: true, TLS: clientTLS,
		Now: func() time.Time { return ev.LastSeen.Add(35 * time.Second) }}
	if err := e.Run(context.Background(), ev); err != nil {
		t.Fatalf("Run: %v", err)
	}
	got := srv.received()
	if len(got) != 1 {
		t.Fatalf("server received %d messages, want 1", len(got))
	}
	d := got[0]
	if !d.overTLS || d.user != "watchdog" || d.from != "watchdog@example.com" ||
		strings.Join(d.to, ",") != "oncall@example.com,ops@example.org" {
		t.Errorf("envelope = tls %v, user %q, from %q, to %q", d.overTLS, d.user, d.from, d.to)
	}
	m, body := readMail(t, d.data)
	for k, want := range map[string]string{
		"From":                "<watchdog@example.com>",
		"To":                  "<oncall@example.com>, <ops@example.org>",
		"Subject":             "[watchdog] worker-1 is DOWN",
		"Message-Id":          "<watchdog.12-0.down." + emailServiceHash("worker-1") + "@example.com>",
		"X-Watchdog-Incident": "12-0",
		"X-Watchdog-Event":    "down",
		"X-Watchdog-Service":  "worker-1",
		"Auto-Submitted":      "auto-generated",
	} {
		if v := m.Header.Get(k); v != want {
			t.Errorf("header %s = %q, want %q", k, v, want)
		}
	}
	if ct := m.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("Content-Type = %q, want plain text", ct)
	}
	for _, line := range []string{
		"worker-1 is DOWN: no heartbeat since 2026-11-25T10:00:00Z (35s ago); its timeout is 30s.",
		"Service:        worker-1",
		"Event:          down",
		"Incident:       12-0",
		"Last heartbeat: 2026-11-25T10:00:00Z",
		"Timeout:        30s",
		"Event time:     2026-11-25T10:00:30Z",
		"Leader:         n2",
	} {
		if !strings.Contains(body, line+"\r\n") && !strings.Contains(body, line+"\n") {
			t.Errorf("body lacks the line %q:\n%s", line, body)
		}
	}
}

func emailServiceHash(id string) string {
	id = emailMessageID(Event{Service: id, Incident: "i", Kind: "k"}, "a@b")
	return strings.TrimSuffix(strings.TrimPrefix(id, "watchdog.i.k."), "@b")
}

func TestEmailRecoveredSubject(t *testing.T) {
	srv := newSMTPServer(t, nil, "", "")
	ev := testEvent()
	ev.Kind = fsm.EventRecovered
	ev.Time = ev.LastSeen.Add(90 * time.Second)
	e := Email{Server: srv.addr, From: "Watchdog <watchdog@example.com>", To: []string{"oncall@example.com"}}
	if err := e.Run(context.Background(), ev); err != nil {
		t.Fatalf("Run: %v", err)
	}
	got := srv.received()
	if len(got) != 1 || got[0].overTLS {
		t.Fatalf("received %+v, want one message in plain SMTP", got)
	}
	m, body := readMail(t, got[0].data)
	if s := m.Header.Get("Subject"); s != "[watchdog] worker-1 recovered" {
		t.Errorf("Subject = %q", s)
	}
	if id := m.Header.Get("Message-Id"); !strings.HasPrefix(id, "<watchdog.12-0.recovered.") || !strings.HasSuffix(id, "@example.com>") {
		t.Errorf("Message-Id = %q", id)
	}
	if !strings.Contains(body, "worker-1 is up again: a heartbeat arrived after 1m30s of silence.") {
		t.Errorf("body = %q", body)
	}
}

func TestEmailFailures(t *testing.T) {
	serverTLS, clientTLS := selfSigned(t)
	secure := newSMTPServer(t, serverTLS, "watchdog", "pa55word")
	plain := newSMTPServer(t, nil, "", "")
	base := Email{From: "watchdog@example.com", To: []string{"oncall@example.com"}}
	cases := []struct {
		name      string
		edit      func(*Email)
		permanent bool
		inError   string
	}{
		{"wrong password", func(e *Email) {
			e.Server, e.StartTLS, e.TLS, e.Username, e.Password = secure.addr, true, clientTLS, "watchdog", "wrong"
		}, true, "535"},
		{"untrusted certificate", func(e *Email) {
			e.Server, e.StartTLS, e.Username, e.Password = secure.addr, true, "watchdog", "pa55word"
		}, true, "certificate"},
		{"no STARTTLS offered", func(e *Email) {
			e.Server, e.StartTLS = plain.addr, true
		}, false, "STARTTLS"},
		{"not authenticated", func(e *Email) {
			e.Server, e.StartTLS, e.TLS = secure.addr, true, clientTLS
		}, true, "MAIL FROM command: 502"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := base
			tc.edit(&e)
			err := e.Run(context.Background(), testEvent())
			if err == nil {
				t.Fatal("Run succeeded")
			}
			if IsPermanent(err) != tc.permanent || !strings.Contains(err.Error(), tc.inError) {
				t.Errorf("Run = %v (permanent %v), want permanent %v and %q", err, IsPermanent(err), tc.permanent, tc.inError)
			}
			if strings.Contains(err.Error(), "pa55word") {
				t.Errorf("error %q reveals the password", err)
			}
		})
	}
	if n := len(secure.received()) + len(plain.received()); n != 0 {
		t.Errorf("servers accepted %d messages, want none", n)
	}
}

func TestEmailStopsWhenCancelled(t *testing.T) {
	// A server that greets, reads EHLO and then stalls: only closing the
	// connection ends the session before go-mail's own 30s timeout.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	held := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		held <- c // kept open: the server stalls, it does not hang up
		io.WriteString(c, "220 localhost ESMTP\r\n")
		bufio.NewReader(c).ReadString('\n') // the client is mid-session now
		cancel()                            // and leadership is lost
	}()
	start := time.Now()
	err = Email{Server: ln.Addr().String(), From: "a@example.com", To: []string{"b@example.com"}}.Run(ctx, testEvent())
	if err == nil || IsPermanent(err) {
		t.Fatalf("Run = %v, want a retryable error", err)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("Run took %v: it must stop when its context ends", took)
	}
	(<-held).Close()
}
