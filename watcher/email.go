package watcher

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/textproto"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/wneessen/go-mail"

	"github.com/watchdog-ha/watchdog/fsm"
)

// Email sends one plain-text message per event through an SMTP server.
type Email struct {
	Server   string // host:port
	From     string
	To       []string
	Username string // empty: no SMTP AUTH
	Password Secret
	// StartTLS requires STARTTLS before anything else is said: without it
	// the session (and any password) crosses the network in the clear.
	StartTLS bool
	// TLS is the base of the STARTTLS configuration; nil trusts the
	// system's roots. ServerName defaults to Server's host.
	TLS    *tls.Config
	Policy RetryPolicy
	Now    func() time.Time // for "35s ago"; nil means time.Now
}

// defaultSMTPTimeout bounds an SMTP session when the attempt has no deadline.
const defaultSMTPTimeout = 30 * time.Second

// RetryPolicy implements the watcher's retry hook.
func (e Email) RetryPolicy() RetryPolicy { return e.Policy }

// Run implements Action: one attempt, one message.
func (e Email) Run(ctx context.Context, ev Event) error {
	now := time.Now
	if e.Now != nil {
		now = e.Now
	}
	msg, err := e.message(ev, now())
	if err != nil {
		return Permanent(err)
	}
	conns := &connCloser{}
	client, err := e.client(ctx, conns)
	if err != nil {
		return Permanent(fmt.Errorf("smtp %s: %w", e.Server, err))
	}
	// go-mail bounds a session by its own timeout, not by ctx: closing
	// the connection is what stops it when leadership is lost.
	stop := context.AfterFunc(ctx, conns.closeAll)
	defer stop()
	if err := client.DialAndSendWithContext(ctx, msg); err != nil {
		return withoutReplies(classifySMTP(fmt.Errorf("smtp %s: %w", e.Server, err)))
	}
	return nil
}

// withoutReplies rewrites err so that it keeps each reply's code (and
// enhanced code) but not its text: a server's reply may quote what it was
// sent, the password included, and the error is committed and shown by
// every read route. Whether err is permanent is kept too.
func withoutReplies(err error) error {
	msg := err.Error()
	replies := 0
	for _, te := range textprotoErrors(err) {
		replies++
		short := fmt.Sprintf("%03d", te.Code)
		if f := strings.Fields(strings.Trim(te.Msg, `"`)); len(f) > 0 && isEnhancedCode(f[0]) {
			short += " " + f[0]
		}
		msg = strings.ReplaceAll(msg, te.Error(), short)
		if te.Msg != "" {
			msg = strings.ReplaceAll(msg, te.Msg, "")
		}
	}
	// go-mail's SendError quotes the replies it holds but does not
	// unwrap to them: it is told by its stage and codes alone.
	var se *mail.SendError
	if errors.As(err, &se) {
		replies++
		short := se.Reason.String()
		if se.ErrorCode() != 0 {
			short += fmt.Sprintf(": %03d %s", se.ErrorCode(), se.EnhancedStatusCode())
		}
		msg = strings.ReplaceAll(msg, se.Error(), strings.TrimSpace(short))
	}
	if replies == 0 {
		return err
	}
	msg += " (the server's reply text is not recorded)"
	if IsPermanent(err) {
		return Permanent(errors.New(msg))
	}
	return errors.New(msg)
}

// textprotoErrors finds every SMTP reply in err's tree.
func textprotoErrors(err error) []*textproto.Error {
	var out []*textproto.Error
	var walk func(error)
	walk = func(e error) {
		if te, ok := e.(*textproto.Error); ok {
			out = append(out, te)
		}
		switch u := e.(type) {
		case interface{ Unwrap() error }:
			if next := u.Unwrap(); next != nil {
				walk(next)
			}
		case interface{ Unwrap() []error }:
			for _, next := range u.Unwrap() {
				walk(next)
			}
		}
	}
	walk(err)
	return out
}

// isEnhancedCode reports whether s is an RFC 3463 status code, "5.7.8".
func isEnhancedCode(s string) bool {
	parts := strings.Split(s, ".")
	if len(parts) != 3 {
		return false
	}
	for _, p := range parts {
		if p == "" || len(p) > 3 || strings.Trim(p, "0123456789") != "" {
			return false
		}
	}
	return true
}

func (e Email) client(ctx context.Context, conns *connCloser) (*mail.Client, error) {
	host, portStr, err := net.SplitHostPort(e.Server)
	if err != nil {
		return nil, err
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("port %q: %w", portStr, err)
	}
	timeout := defaultSMTPTimeout
	if d, ok := ctx.Deadline(); ok {
		timeout = max(time.Until(d), time.Millisecond)
	}
	opts := []mail.Option{
		mail.WithPort(port),
		mail.WithTimeout(timeout),
		mail.WithDialContextFunc(conns.dial),
		mail.WithTLSPolicy(mail.NoTLS),
	}
	if e.StartTLS {
		tc := &tls.Config{MinVersion: tls.VersionTLS12}
		if e.TLS != nil {
			tc = e.TLS.Clone()
		}
		if tc.ServerName == "" {
			tc.ServerName = host
		}
		opts = append(opts, mail.WithTLSPolicy(mail.TLSMandatory), mail.WithTLSConfig(tc))
	}
	if e.Username != "" {
		opts = append(opts, mail.WithSMTPAuth(mail.SMTPAuthAutoDiscover),
			mail.WithUsername(e.Username), mail.WithPassword(string(e.Password)))
	}
	return mail.NewClient(host, opts...)
}

// classifySMTP marks the server's permanent refusals (5xx replies, no
// usable AUTH mechanism) as such; connection problems and 4xx replies are
// retried.
func classifySMTP(err error) error {
	var se *mail.SendError
	var te *textproto.Error
	switch {
	case errors.As(err, &se) && se.ErrorCode() >= 500,
		errors.As(err, &te) && te.Code >= 500,
		errors.Is(err, mail.ErrNoSupportedAuthDiscovered):
		return Permanent(err)
	}
	return err
}

// message builds the mail for ev. Its Message-ID is the same on every
// delivery of the event, so a mailbox can show a repeated delivery as one.
func (e Email) message(ev Event, now time.Time) (*mail.Msg, error) {
	m := mail.NewMsg()
	if err := m.From(e.From); err != nil {
		return nil, fmt.Errorf("from: %w", err)
	}
	if err := m.To(e.To...); err != nil {
		return nil, fmt.Errorf("to: %w", err)
	}
	m.Subject(emailSubject(ev))
	m.SetMessageIDWithValue(emailMessageID(ev, e.From))
	m.SetDate()
	m.SetUserAgent(userAgent)
	m.SetGenHeader("X-Watchdog-Incident", ev.Incident)
	m.SetGenHeader("X-Watchdog-Event", string(ev.Kind))
	m.SetGenHeader("X-Watchdog-Service", ev.Service)
	// RFC 3834: no vacation replies to an alert.
	m.SetGenHeader("Auto-Submitted", "auto-generated")
	m.SetBodyString(mail.TypeTextPlain, emailBody(ev, now))
	return m, nil
}

func emailSubject(ev Event) string {
	switch ev.Kind {
	case fsm.EventRecovered:
		return fmt.Sprintf("[watchdog] %s recovered", ev.Service)
	case fsm.EventRepeat:
		return fmt.Sprintf("[watchdog] %s is still DOWN", ev.Service)
	case fsm.EventFlapping:
		return fmt.Sprintf("[watchdog] %s is FLAPPING", ev.Service)
	}
	return fmt.Sprintf("[watchdog] %s is DOWN", ev.Service)
}

// emailMessageID is unique per incident and event. The hash of the service
// keeps the left part a valid dot-atom whatever the id holds; the From
// domain ties it to this sender.
func emailMessageID(ev Event, from string) string {
	sum := sha256.Sum256([]byte(ev.Service))
	domain := from[strings.LastIndexByte(from, '@')+1:]
	domain = strings.TrimSuffix(domain, ">")
	return fmt.Sprintf("watchdog.%s.%s.%s@%s", ev.Incident, eventTag(ev), hex.EncodeToString(sum[:6]), domain)
}

func emailBody(ev Event, now time.Time) string {
	var b strings.Builder
	switch {
	case ev.Kind == fsm.EventRecovered:
		fmt.Fprintf(&b, "%s is up again: a heartbeat arrived after %s of silence.\n\n",
			ev.Service, since(ev.Time, ev.LastSeen))
	case ev.Reason == fsm.ReasonFail || ev.Reason == fsm.ReasonExitStatus:
		fmt.Fprintf(&b, "%s is DOWN: %s (%s ago).\n\n", ev.Service, why(ev), since(now, ev.LastSeen))
	default:
		fmt.Fprintf(&b, "%s is DOWN: no heartbeat since %s (%s ago); its %s.\n\n",
			ev.Service, stamp(ev.LastSeen), since(now, ev.LastSeen), strings.Replace(limit(ev), " ", " is ", 1))
	}
	if ev.Kind == fsm.EventFlapping {
		b.WriteString("It has gone down too often lately: it is flapping. Further notifications are held\n" +
			"until it has kept one state for its flap window; you will then hear how it settled.\n\n")
	}
	for _, f := range emailFields(ev) {
		fmt.Fprintf(&b, "%-15s %s\n", f[0]+":", f[1])
	}
	b.WriteString("\n-- \nSent by watchdog. A repeated delivery of this event has the same Message-ID.\n")
	return b.String()
}

// emailFields are the event's details, one a line; those not known are
// left out.
func emailFields(ev Event) [][2]string {
	fields := [][2]string{
		{"Service", ev.Service},
		{"Event", string(ev.Kind)},
		{"Incident", ev.Incident},
	}
	if r := reasonLabel(ev); r != "" {
		fields = append(fields, [2]string{"Reason", r})
	}
	if ev.Note != "" {
		fields = append(fields, [2]string{"Note", ev.Note})
	}
	fields = append(fields, [][2]string{
		{"Last heartbeat", stamp(ev.LastSeen)},
		{"Timeout", ev.Timeout.String()},
	}...)
	if !ev.DownSince.IsZero() {
		fields = append(fields, [2]string{"Down since", stamp(ev.DownSince)})
		if ev.Kind == fsm.EventRecovered {
			fields = append(fields, [2]string{"Downtime", ev.DownFor().Round(time.Second).String()})
		} else {
			fields = append(fields, [2]string{"Down for", ev.DownFor().Round(time.Second).String()})
		}
	}
	if ev.Kind == fsm.EventRecovered {
		fields = append(fields, [2]string{"Recovered at", stamp(ev.Time)})
		if ev.RecoveryNote != "" {
			fields = append(fields, [2]string{"Recovery note", ev.RecoveryNote})
		}
	}
	return append(fields, [][2]string{
		{"Event time", stamp(ev.Time)},
		{"Leader", ev.Node},
	}...)
}

// connCloser remembers the connections a session dialled, so they can be
// closed from outside when the attempt's context ends.
type connCloser struct {
	mu     sync.Mutex
	conns  []net.Conn
	closed bool
}

func (c *connCloser) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		conn.Close()
		return nil, net.ErrClosed
	}
	c.conns = append(c.conns, conn)
	return conn, nil
}

func (c *connCloser) closeAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	for _, conn := range c.conns {
		conn.Close()
	}
}
