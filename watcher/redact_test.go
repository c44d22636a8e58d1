package watcher

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"testing"
)

// secretActions are actions configured with one secret of each kind.
func secretActions() map[string]Action {
	return map[string]Action{
		"hook": Webhook{URL: "https://hooks.example.com/hook/PATHSECRETabc?key=QUERY+SECRET%2Fx&n=1",
			Header: map[string]Secret{"Authorization": "Bearer HEADERTOKEN123", "X-Api-Key": "APIKEYVALUE"}},
		"chat": Slack{URL: "https://hooks.slack.com/services/T0001/B0001/SLACKSECRETxyz"},
		"page": PagerDuty{RoutingKey: "ROUTINGKEY0123"},
		"mail": Email{Password: "SMTP-PASS-w0rd"},
		"run":  Exec{Argv: []string{"/bin/true"}},
	}
}

func TestRedactorRemovesEveryKindOfSecret(t *testing.T) {
	r := NewRedactor(ActionSecrets(secretActions()))
	for _, text := range []string{
		`Cannot POST /hook/PATHSECRETabc?key=QUERY+SECRET%2Fx&n=1`,
		`unknown token PATHSECRETabc`,
		`query {"key":"QUERY SECRET/x"}`,
		`header Authorization: Bearer HEADERTOKEN123, token HEADERTOKEN123`,
		`X-Api-Key: APIKEYVALUE`,
		`Post "https://hooks.slack.com/services/T0001/B0001/SLACKSECRETxyz": dial tcp: i/o timeout`,
		`no_team for SLACKSECRETxyz`,
		`{"routing_key":"ROUTINGKEY0123"}`,
		`535 5.7.8 password SMTP-PASS-w0rd refused (` + url.QueryEscape("SMTP-PASS-w0rd") + `)`,
	} {
		got := r.String(text)
		for _, secret := range []string{"PATHSECRET", "QUERY", "HEADERTOKEN", "APIKEYVALUE", "SLACKSECRET",
			"ROUTINGKEY", "SMTP-PASS"} {
			if strings.Contains(got, secret) {
				t.Errorf("%q redacted to %q, which still holds %s", text, got, secret)
			}
		}
		if !strings.Contains(got, Redacted) {
			t.Errorf("%q redacted to %q: nothing marked", text, got)
		}
	}
	// What names a receiver without its secret stays readable.
	for _, text := range []string{"POST https://hooks.slack.com: 404 Not Found", "smtp mail.example.com:587: 535 5.7.8"} {
		if got := r.String(text); got != text {
			t.Errorf("%q redacted to %q: it holds no secret", text, got)
		}
	}
	if got := NewRedactor(nil).String("anything"); got != "anything" {
		t.Errorf("a redactor without secrets changed the text to %q", got)
	}
}

func TestRedactingHandlerCleansEveryAttribute(t *testing.T) {
	r := NewRedactor(ActionSecrets(secretActions()))
	var buf bytes.Buffer
	log := slog.New(r.Handler(slog.NewTextHandler(&buf, nil))).With("at", "ROUTINGKEY0123")
	log.WithGroup("g").Error("refused with ROUTINGKEY0123",
		"err", fmt.Errorf("POST: %w", errors.New("echo SLACKSECRETxyz")),
		"output", "SMTP-PASS-w0rd",
		"argv", []string{"/bin/x", "APIKEYVALUE"},
		slog.Group("inner", "v", "HEADERTOKEN123"),
		"n", 3)
	out := buf.String()
	for _, secret := range []string{"ROUTINGKEY", "SLACKSECRET", "SMTP-PASS", "APIKEYVALUE", "HEADERTOKEN"} {
		if strings.Contains(out, secret) {
			t.Errorf("log line holds %s: %s", secret, out)
		}
	}
	if !strings.Contains(out, "g.n=3") || !strings.Contains(out, "g.inner.v="+Redacted) {
		t.Errorf("log line lost its structure: %s", out)
	}
}

// A refusal is reported by its status alone: neither the receiver's body
// nor its reason phrase (both may quote the request) is kept.
func TestRefusalsQuoteNothingTheReceiverSaid(t *testing.T) {
	r := newReceiver(t, reply{status: 404, body: "Cannot POST /hook/PATHSECRETabc?key=QUERYSECRET"})
	err := Webhook{URL: r.URL + "/hook/PATHSECRETabc?key=QUERYSECRET"}.Run(context.Background(), testEvent())
	if err == nil || !strings.Contains(err.Error(), "404 Not Found") || strings.Contains(err.Error(), "Cannot") {
		t.Errorf("Run = %v, want the status and nothing of the answer", err)
	}

	// Slack's own reasons are named; anything else is not.
	for body, want := range map[string]string{"channel_not_found": "404 Not Found: channel_not_found",
		"channel_not_found SLACKSECRET": "404 Not Found"} {
		r := newReceiver(t, reply{status: 404, body: body})
		err := Slack{URL: Secret(r.URL + "/services/T/B/SLACKSECRET")}.Run(context.Background(), testEvent())
		if err == nil || !strings.HasSuffix(err.Error(), want) {
			t.Errorf("answer %q: Run = %v, want it to end with %q", body, err, want)
		}
	}

	ln, lerr := net.Listen("tcp", "127.0.0.1:0")
	if lerr != nil {
		t.Fatal(lerr)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		br := bufio.NewReader(c)
		for {
			line, err := br.ReadString('\n')
			if err != nil || line == "\r\n" {
				break
			}
		}
		fmt.Fprint(c, "HTTP/1.1 400 ROUTINGKEY0123 is not valid\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
	}()
	err = PagerDuty{RoutingKey: "ROUTINGKEY0123", URL: "http://" + ln.Addr().String()}.Run(context.Background(), testEvent())
	if err == nil || !strings.Contains(err.Error(), "400 Bad Request") || strings.Contains(err.Error(), "ROUTINGKEY") {
		t.Errorf("Run = %v, want the standard text of 400 and not the receiver's reason phrase", err)
	}
}

// An SMTP server's reply text can quote the password: only its codes are kept.
func TestSMTPRefusalKeepsCodesNotText(t *testing.T) {
	serverTLS, clientTLS := selfSigned(t)
	srv := newSMTPServer(t, serverTLS, "watchdog", "right")
	srv.echo = true
	e := Email{Server: srv.addr, From: "watchdog@example.com", To: []string{"oncall@example.com"},
		Username: "watchdog", Password: "SMTP-PASS-w0rd", StartTLS: true, TLS: clientTLS}
	err := e.Run(context.Background(), testEvent())
	if err == nil || !IsPermanent(err) {
		t.Fatalf("Run = %v, want a permanent failure", err)
	}
	msg := err.Error()
	if strings.Contains(msg, "SMTP-PASS") || strings.Contains(msg, "Authentication failed for") {
		t.Errorf("error %q quotes the server's reply", msg)
	}
	if !strings.Contains(msg, "535 5.7.8") {
		t.Errorf("error %q lost the reply's codes", msg)
	}
}
