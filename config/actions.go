package config

import (
	"log/slog"
	"maps"
	"net"
	"net/mail"
	"net/textproto"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/watchdog-ha/watchdog/watcher"
)

// Limits and defaults of actions.
const (
	// defaultNotifyTimeout bounds one delivery attempt of a notification:
	// a receiver slower than this is better retried than waited for.
	defaultNotifyTimeout = 10 * time.Second
	defaultRetries       = 3
	maxRetries           = 20
)

// ActionConfig is one named action: exactly one of its kinds is set.
// Timeout bounds an exec run, or each attempt of a notification; Retries
// (attempts after the first) applies to notifications only: an exec action
// runs once per event.
type ActionConfig struct {
	Exec      []string         `yaml:"exec"`
	Log       *struct{}        `yaml:"log"`
	Webhook   *WebhookConfig   `yaml:"webhook"`
	Slack     *SlackConfig     `yaml:"slack"`
	Email     *EmailConfig     `yaml:"email"`
	PagerDuty *PagerDutyConfig `yaml:"pagerduty"`
	Timeout   Duration         `yaml:"timeout"`
	Retries   int              `yaml:"retries"`
}

// WebhookConfig POSTs the event as JSON to URL. Header values may be
// credentials and are never logged.
type WebhookConfig struct {
	URL     string                    `yaml:"url"`
	Headers map[string]watcher.Secret `yaml:"headers"`
}

// SlackConfig posts to a Slack (or Mattermost) incoming webhook, whose URL
// is its credential: give it inline or in a file.
type SlackConfig struct {
	URL     watcher.Secret `yaml:"url"`
	URLFile string         `yaml:"url_file"`
}

// EmailConfig sends mail through an SMTP server. After parsing, Password
// holds the password whether it came inline or from PasswordFile, and
// StartTLS is true unless the file says false.
type EmailConfig struct {
	Server       string         `yaml:"server"`
	From         string         `yaml:"from"`
	To           []string       `yaml:"to"`
	Username     string         `yaml:"username"`
	Password     watcher.Secret `yaml:"password"`
	PasswordFile string         `yaml:"password_file"`
	StartTLS     bool           `yaml:"starttls"`
}

// PagerDutyConfig sends Events API v2 events. After parsing, RoutingKey
// holds the key whether it came inline or from RoutingKeyFile, and URL is
// set.
type PagerDutyConfig struct {
	RoutingKey     watcher.Secret `yaml:"routing_key"`
	RoutingKeyFile string         `yaml:"routing_key_file"`
	URL            string         `yaml:"url"`
}

// kinds names the kinds the action sets; exactly one is valid.
func (a *ActionConfig) kinds() []string {
	var out []string
	for _, k := range []struct {
		name string
		set  bool
	}{
		{"exec", a.Exec != nil}, {"log", a.Log != nil}, {"webhook", a.Webhook != nil},
		{"slack", a.Slack != nil}, {"email", a.Email != nil}, {"pagerduty", a.PagerDuty != nil},
	} {
		if k.set {
			out = append(out, k.name)
		}
	}
	return out
}

func (p *parser) checkActions(cfg *FileConfig) {
	for _, name := range slices.Sorted(maps.Keys(cfg.Actions)) {
		a := cfg.Actions[name]
		path := "actions." + name
		switch {
		case name == builtinLogAction:
			p.addf(p.keyLine("actions", name), path, "%q is a built-in action and cannot be redefined", name)
		case !validID(name):
			p.addf(p.keyLine("actions", name), "actions", "invalid action name %q: %s", name, idRule)
		}
		kinds := a.kinds()
		switch {
		case len(kinds) > 1:
			p.addf(p.keyLine("actions", name), path,
				"set exactly one of exec, log, webhook, slack, email or pagerduty; this action sets %s",
				strings.Join(kinds, " and "))
		case len(kinds) == 0:
			p.addf(p.keyLine("actions", name), path,
				"set exactly one of exec (a command to run), log: {}, webhook, slack, email or pagerduty")
		default:
			p.checkActionKind(&a, kinds[0], name)
		}
		cfg.Actions[name] = a
	}
	p.checkRefs(cfg, cfg.Defaults.Actions, "defaults", "actions")
	p.checkRefs(cfg, cfg.Defaults.OnRecovered, "defaults", "on_recovered")
}

func (p *parser) checkActionKind(a *ActionConfig, kind, name string) {
	timeout := defaultNotifyTimeout
	switch kind {
	case "exec", "log":
		timeout = defaultActionTimeout
		if _, _, set := p.find("actions", name, "retries"); set {
			p.addf(p.keyLine("actions", name, "retries"), "actions."+name+".retries",
				"only notifications (webhook, slack, email, pagerduty) are retried; an %s action runs once per event", kind)
		}
	default:
		p.retries(a, name)
	}
	p.duration(&a.Timeout, timeout, 0, maxActionTimeout, "actions", name, "timeout")
	switch kind {
	case "exec":
		p.checkExec(a.Exec, "actions", name, "exec")
	case "webhook":
		p.checkWebhook(a.Webhook, "actions", name, "webhook")
	case "slack":
		a.Slack.URL = secret(p, a.Slack.URL, a.Slack.URLFile, true, "actions", name, "slack", "url")
		if a.Slack.URL != "" {
			p.checkURL(string(a.Slack.URL), "actions", name, "slack", cmpKey(a.Slack.URLFile, "url"))
		}
	case "email":
		p.checkEmail(a.Email, "actions", name, "email")
	case "pagerduty":
		p.checkPagerDuty(a.PagerDuty, "actions", name, "pagerduty")
	}
}

func (p *parser) retries(a *ActionConfig, name string) {
	if _, val, set := p.find("actions", name, "retries"); !set || isNull(unalias(val)) {
		a.Retries = defaultRetries
		return
	}
	path, line := "actions."+name+".retries", p.line("actions", name, "retries")
	switch {
	case a.Retries < 0:
		p.addf(line, path, "must be 0 or more (attempts after the first), got %d", a.Retries)
	case a.Retries > maxRetries:
		p.addf(line, path, "%d is too many: must be at most %d", a.Retries, maxRetries)
	}
}

// cmpKey names the key a value came from: the file's when one was given.
func cmpKey(file, key string) string {
	if file != "" {
		return key + "_file"
	}
	return key
}

func (p *parser) checkExec(argv []string, keys ...string) {
	path := strings.Join(keys, ".")
	if len(argv) == 0 {
		p.addf(p.line(keys...), path, "must not be empty: give the program's absolute path, then its arguments")
		return
	}
	if !filepath.IsAbs(argv[0]) {
		p.addf(p.line(slices.Concat(keys, []string{"0"})...), path,
			"%q is not an absolute path: commands run directly, never through a shell or a $PATH search", argv[0])
	}
}

// checkURL insists on an absolute http(s) URL. It never quotes the URL,
// which may be a credential (a Slack hook, a token in a query).
func (p *parser) checkURL(raw string, keys ...string) {
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		p.addf(p.line(keys...), strings.Join(keys, "."), "not a valid URL")
	case u.Scheme != "http" && u.Scheme != "https" || u.Host == "" || u.Opaque != "":
		p.addf(p.line(keys...), strings.Join(keys, "."), "must be an absolute http:// or https:// URL")
	}
}

func (p *parser) checkWebhook(w *WebhookConfig, keys ...string) {
	at := func(k ...string) []string { return slices.Concat(keys, k) }
	// Set by watchdog on every delivery; receivers rely on them.
	reserved := []string{"Content-Type", "Content-Length", "Host", "Idempotency-Key",
		"Transfer-Encoding", "Connection", "User-Agent"}
	if w.URL == "" {
		p.addf(p.keyLine(keys...), strings.Join(keys, "."), "url is required")
	} else {
		p.checkURL(w.URL, at("url")...)
	}
	seen := make(map[string]string)
	for _, name := range slices.Sorted(maps.Keys(w.Headers)) {
		line, path := p.keyLine(at("headers", name)...), strings.Join(at("headers"), ".")
		canon := textproto.CanonicalMIMEHeaderKey(name)
		switch {
		case !validHeaderName(name):
			p.addf(line, path, "invalid header name %q", name)
		case slices.Contains(reserved, canon):
			p.addf(line, path, "%s is set by watchdog on every delivery and cannot be configured", canon)
		case seen[canon] != "":
			p.addf(line, path, "header %q is given twice (also as %q)", name, seen[canon])
		case strings.ContainsAny(string(w.Headers[name]), "\r\n\x00"):
			p.addf(p.line(at("headers", name)...), path+"."+name, "a header value cannot contain line breaks")
		}
		seen[canon] = name
	}
}

// validHeaderName accepts an RFC 9110 token.
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range []byte(s) {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
		if !ok {
			return false
		}
	}
	return true
}

func (p *parser) checkEmail(e *EmailConfig, keys ...string) {
	at := func(k ...string) []string { return slices.Concat(keys, k) }
	path := strings.Join(keys, ".")
	if _, val, set := p.find(at("starttls")...); !set || isNull(unalias(val)) {
		e.StartTLS = true // the safe default: plain SMTP only when asked for
	}
	if e.Server == "" {
		p.addf(p.keyLine(keys...), path, "server is required (host:port, such as smtp.example.com:587)")
	} else if host, port, err := net.SplitHostPort(e.Server); err != nil || host == "" || !validPort(port) {
		p.addf(p.line(at("server")...), path+".server", "invalid server %q: want host:port, such as smtp.example.com:587", e.Server)
	}
	if e.From == "" {
		p.addf(p.keyLine(keys...), path, "from is required")
	} else if _, err := mail.ParseAddress(e.From); err != nil {
		p.addf(p.line(at("from")...), path+".from", "invalid address %q: %v", e.From, err)
	}
	if len(e.To) == 0 {
		p.addf(p.keyLine(keys...), path, "to is required: a list of at least one address")
	}
	for i, to := range e.To {
		if _, err := mail.ParseAddress(to); err != nil {
			p.addf(p.line(at("to", strconv.Itoa(i))...), path+".to", "invalid address %q: %v", to, err)
		}
	}
	e.Password = secret(p, e.Password, e.PasswordFile, e.Username != "", at("password")...)
	switch {
	case e.Username == "" && e.Password != "":
		p.addf(p.keyLine(keys...), path, "a password is given but no username")
	case e.Username != "" && !e.StartTLS:
		p.addf(p.line(at("starttls")...), path+".starttls",
			"SMTP AUTH needs starttls: true: the password must never cross the network in the clear")
	}
}

func validPort(s string) bool {
	n, err := strconv.Atoi(s)
	return err == nil && n >= 1 && n <= 65535
}

func (p *parser) checkPagerDuty(pd *PagerDutyConfig, keys ...string) {
	pd.RoutingKey = secret(p, pd.RoutingKey, pd.RoutingKeyFile, true, slices.Concat(keys, []string{"routing_key"})...)
	if pd.URL == "" {
		pd.URL = watcher.DefaultPagerDutyURL
	} else {
		p.checkURL(pd.URL, slices.Concat(keys, []string{"url"})...)
	}
}

// BuildActions turns the configured actions into runnable ones. The action
// "log" is built in. Notifications are retried by their policy; exec and
// log run once per event.
func (f *FileConfig) BuildActions(log *slog.Logger) map[string]watcher.Action {
	alog := log.With("sys", "action")
	out := map[string]watcher.Action{"log": watcher.Log{Log: alog}}
	for name, ac := range f.Actions {
		policy := watcher.RetryPolicy{Retries: ac.Retries, Timeout: time.Duration(ac.Timeout)}
		switch {
		case len(ac.Exec) > 0:
			out[name] = watcher.Exec{Argv: ac.Exec, Timeout: time.Duration(ac.Timeout), Log: alog.With("action", name)}
		case ac.Log != nil:
			out[name] = watcher.Log{Log: alog.With("action", name)}
		case ac.Webhook != nil:
			out[name] = watcher.Webhook{URL: ac.Webhook.URL, Header: ac.Webhook.Headers, Policy: policy}
		case ac.Slack != nil:
			out[name] = watcher.Slack{URL: ac.Slack.URL, Policy: policy}
		case ac.Email != nil:
			e := ac.Email
			out[name] = watcher.Email{Server: e.Server, From: e.From, To: e.To, Username: e.Username,
				Password: e.Password, StartTLS: e.StartTLS, Policy: policy}
		case ac.PagerDuty != nil:
			out[name] = watcher.PagerDuty{RoutingKey: ac.PagerDuty.RoutingKey, URL: ac.PagerDuty.URL, Policy: policy}
		}
	}
	return out
}
