package config

import (
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/watchdog-ha/watchdog/watcher"
)

// writeSecret puts a secret in a file, with the trailing newline editors add.
func writeSecret(t *testing.T, dir, name, value string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(value+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// notifierConfig is the example, with its secrets in files.
func notifierConfig(t *testing.T) (data string, dir string) {
	t.Helper()
	dir = t.TempDir()
	return fmt.Sprintf(`api_token_file: %s
actions:
  ops-hook:
    webhook: {url: "https://example.internal/hook", headers: {X-Team: infra, Authorization: "Bearer h00k"}}
    timeout: 5s
    retries: 5
  ops-slack:
    slack: {url: "https://hooks.slack.com/services/T0/B0/XXXX"}
  oncall-mail:
    email: {server: "smtp.example.com:587", from: "watchdog@example.com", to: ["oncall@example.com"], username: "watchdog", password_file: %s, starttls: true}
  pager:
    pagerduty: {routing_key_file: %s}
  local-mail:
    email: {server: "127.0.0.1:25", from: "Watchdog <w@example.com>", to: [a@example.com, b@example.com], starttls: false}
    retries: 0
  pager-eu:
    pagerduty: {routing_key: "inl1ne", url: "https://events.eu.pagerduty.com/v2/enqueue"}
services:
  worker-1: {actions: [ops-hook, ops-slack, oncall-mail, pager], on_recovered: [ops-hook, pager]}
`, writeSecret(t, dir, "api-token", "t0ken"), writeSecret(t, dir, "smtp-pass", "pa55"),
		writeSecret(t, dir, "pd-key", "R0UT1NG")), dir
}

func TestParseConfigNotifiers(t *testing.T) {
	data, _ := notifierConfig(t)
	cfg, err := ParseConfig([]byte(data), "watchdog.yaml")
	if err != nil {
		t.Fatalf("ParseConfig: %v", err)
	}
	if cfg.APIToken != "t0ken" {
		t.Errorf("api token = %q, want the file's content without its newline", string(cfg.APIToken))
	}
	want := map[string]ActionConfig{
		"ops-hook": {Webhook: &WebhookConfig{URL: "https://example.internal/hook",
			Headers: map[string]watcher.Secret{"X-Team": "infra", "Authorization": "Bearer h00k"}},
			Timeout: Duration(5 * time.Second), Retries: 5},
		"ops-slack": {Slack: &SlackConfig{URL: "https://hooks.slack.com/services/T0/B0/XXXX"},
			Timeout: Duration(defaultNotifyTimeout), Retries: 3},
		"oncall-mail": {Email: &EmailConfig{Server: "smtp.example.com:587", From: "watchdog@example.com",
			To: []string{"oncall@example.com"}, Username: "watchdog", Password: "pa55",
			PasswordFile: cfg.Actions["oncall-mail"].Email.PasswordFile, StartTLS: true},
			Timeout: Duration(defaultNotifyTimeout), Retries: 3},
		"pager": {PagerDuty: &PagerDutyConfig{RoutingKey: "R0UT1NG", RoutingKeyFile: cfg.Actions["pager"].PagerDuty.RoutingKeyFile,
			URL: watcher.DefaultPagerDutyURL}, Timeout: Duration(defaultNotifyTimeout), Retries: 3},
		"local-mail": {Email: &EmailConfig{Server: "127.0.0.1:25", From: "Watchdog <w@example.com>",
			To: []string{"a@example.com", "b@example.com"}}, Timeout: Duration(defaultNotifyTimeout), Retries: 0},
		"pager-eu": {PagerDuty: &PagerDutyConfig{RoutingKey: "inl1ne", URL: "https://events.eu.pagerduty.com/v2/enqueue"},
			Timeout: Duration(defaultNotifyTimeout), Retries: 3},
		"log": {Log: &struct{}{}, Timeout: Duration(defaultActionTimeout)},
	}
	if got := slices.Sorted(maps.Keys(cfg.Actions)); !slices.Equal(got, slices.Sorted(maps.Keys(want))) {
		t.Fatalf("actions = %q", got)
	}
	for name, w := range want {
		if got := cfg.Actions[name]; !reflect.DeepEqual(got, w) {
			t.Errorf("%s =\n%s\nwant\n%s", name, describeAction(got), describeAction(w))
		}
	}
}

// describeAction shows an action with its secrets, for failure messages.
func describeAction(a ActionConfig) string {
	return fmt.Sprintf("%+v webhook %+v slack %+v email %+v pagerduty %+v", a, a.Webhook, a.Slack, a.Email, a.PagerDuty)
}

func TestSecretsNeverPrint(t *testing.T) {
	data, _ := notifierConfig(t)
	cfg, err := ParseConfig([]byte(data), "watchdog.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	log := slog.New(slog.NewTextHandler(&b, nil))
	for name, a := range cfg.Actions {
		fmt.Fprintf(&b, "%v %+v %#v %+v %+v %+v %+v\n", a, a, a, a.Webhook, a.Slack, a.Email, a.PagerDuty)
		log.Info("action", "name", name, "config", a, "email", a.Email, "pd", a.PagerDuty)
	}
	for name, act := range cfg.BuildActions(slog.New(slog.DiscardHandler)) {
		fmt.Fprintf(&b, "%s %v %+v %#v\n", name, act, act, act)
		log.Info("built", "name", name, "action", act)
	}
	fmt.Fprintf(&b, "%v %+v %#v\n", cfg.APIToken, *cfg, *cfg)
	log.Info("file", "api_token", cfg.APIToken, "config", *cfg)
	for _, secret := range []string{"t0ken", "pa55", "R0UT1NG", "inl1ne", "h00k", "XXXX"} {
		if strings.Contains(b.String(), secret) {
			t.Errorf("secret %q printed:\n%s", secret, b.String())
		}
	}
}

func TestBuildActions(t *testing.T) {
	data, _ := notifierConfig(t)
	cfg, err := ParseConfig([]byte(data), "watchdog.yaml")
	if err != nil {
		t.Fatal(err)
	}
	got := cfg.BuildActions(slog.New(slog.DiscardHandler))
	want := map[string]watcher.Action{
		"ops-hook": watcher.Webhook{URL: "https://example.internal/hook",
			Header: map[string]watcher.Secret{"X-Team": "infra", "Authorization": "Bearer h00k"},
			Policy: watcher.RetryPolicy{Retries: 5, Timeout: 5 * time.Second}},
		"ops-slack": watcher.Slack{URL: "https://hooks.slack.com/services/T0/B0/XXXX",
			Policy: watcher.RetryPolicy{Retries: 3, Timeout: defaultNotifyTimeout}},
		"oncall-mail": watcher.Email{Server: "smtp.example.com:587", From: "watchdog@example.com",
			To: []string{"oncall@example.com"}, Username: "watchdog", Password: "pa55", StartTLS: true,
			Policy: watcher.RetryPolicy{Retries: 3, Timeout: defaultNotifyTimeout}},
		"pager": watcher.PagerDuty{RoutingKey: "R0UT1NG", URL: watcher.DefaultPagerDutyURL,
			Policy: watcher.RetryPolicy{Retries: 3, Timeout: defaultNotifyTimeout}},
		"local-mail": watcher.Email{Server: "127.0.0.1:25", From: "Watchdog <w@example.com>",
			To: []string{"a@example.com", "b@example.com"}, Policy: watcher.RetryPolicy{Timeout: defaultNotifyTimeout}},
		"pager-eu": watcher.PagerDuty{RoutingKey: "inl1ne", URL: "https://events.eu.pagerduty.com/v2/enqueue",
			Policy: watcher.RetryPolicy{Retries: 3, Timeout: defaultNotifyTimeout}},
	}
	for name, w := range want {
		if !reflect.DeepEqual(got[name], w) {
			t.Errorf("%s = %#v\nwant %#v", name, got[name], w)
		}
	}
	if _, ok := got["log"].(watcher.Log); !ok || len(got) != len(want)+1 {
		t.Errorf("built %d actions (log: %T), want %d and the built-in log", len(got), got["log"], len(want)+1)
	}
}

func TestSecretFileRelativeToConfig(t *testing.T) {
	dir := t.TempDir()
	writeSecret(t, dir, "pd-key", "K3Y")
	path := filepath.Join(dir, "watchdog.yaml")
	data := "actions:\n  pager:\n    pagerduty: {routing_key_file: pd-key}\n"
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := loadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	if k := cfg.Actions["pager"].PagerDuty.RoutingKey; k != "K3Y" {
		t.Errorf("routing key = %q, want the one in the file next to the config", string(k))
	}
}

func TestParseConfigNotifierErrors(t *testing.T) {
	dir := t.TempDir()
	empty := writeSecret(t, dir, "empty", "")
	twoLines := writeSecret(t, dir, "two", "a\nb")
	missing := filepath.Join(dir, "missing")
	hook := func(body string) string { return "actions:\n  h:\n    webhook: " + body + "\n" }
	mail := func(body string) string { return "actions:\n  m:\n    email: " + body + "\n" }
	const okMail = `server: "smtp.example.com:587", from: "w@example.com", to: [o@example.com]`
	checkConfigErrors(t, []configErrorCase{
		{"two notifier kinds", "actions:\n  a:\n    slack: {url: \"https://x\"}\n    webhook: {url: \"https://y\"}\n", 2, "actions.a", "this action sets webhook and slack"},
		{"webhook without url", hook("{headers: {X-A: b}}"), 3, "actions.h.webhook", "url is required"},
		{"webhook relative url", hook("{url: /hook}"), 3, "actions.h.webhook.url", "absolute http:// or https:// URL"},
		{"webhook ftp url", hook("{url: \"ftp://example.com/x\"}"), 3, "actions.h.webhook.url", "absolute http://"},
		{"webhook bad url", hook("{url: \"http://[::1\"}"), 3, "actions.h.webhook.url", "not a valid URL"},
		{"webhook unknown key", hook("{url: \"https://x\", header: {}}"), 3, "actions.h.webhook.header", "unknown field"},
		{"reserved header", "actions:\n  h:\n    webhook:\n      url: \"https://x\"\n      headers:\n        idempotency-key: x\n", 6, "actions.h.webhook.headers", "Idempotency-Key is set by watchdog"},
		{"bad header name", "actions:\n  h:\n    webhook:\n      url: \"https://x\"\n      headers:\n        \"X A\": x\n", 6, "actions.h.webhook.headers", `invalid header name "X A"`},
		{"header twice", "actions:\n  h:\n    webhook:\n      url: \"https://x\"\n      headers:\n        X-A: x\n        x-a: y\n", 7, "actions.h.webhook.headers", "given twice"},
		{"header value with newline", "actions:\n  h:\n    webhook:\n      url: \"https://x\"\n      headers:\n        X-A: \"a\\r\\nEvil: 1\"\n", 6, "actions.h.webhook.headers.X-A", "line breaks"},
		{"negative retries", "actions:\n  h:\n    webhook: {url: \"https://x\"}\n    retries: -1\n", 4, "actions.h.retries", "must be 0 or more"},
		{"too many retries", "actions:\n  h:\n    webhook: {url: \"https://x\"}\n    retries: 1000\n", 4, "actions.h.retries", "at most 20"},
		{"retries not a number", "actions:\n  h:\n    webhook: {url: \"https://x\"}\n    retries: many\n", 4, "actions.h.retries", "cannot unmarshal"},
		{"retries on exec", "actions:\n  x:\n    exec: [/bin/true]\n    retries: 2\n", 4, "actions.x.retries", "an exec action runs once per event"},
		{"notifier timeout too long", "actions:\n  h:\n    webhook: {url: \"https://x\"}\n    timeout: 2h\n", 4, "actions.h.timeout", "at most 1h"},
		{"slack without url", "actions:\n  s:\n    slack: {}\n", 3, "actions.s.slack", "url or url_file is required"},
		{"slack url and file", "actions:\n  s:\n    slack:\n      url: \"https://x\"\n      url_file: /x\n", 5, "actions.s.slack.url_file", "set url or url_file, not both"},
		{"slack url file missing", "actions:\n  s:\n    slack:\n      url_file: " + missing + "\n", 4, "actions.s.slack.url_file", "cannot read the secret"},
		{"slack url file not a url", "actions:\n  s:\n    slack:\n      url_file: " + twoLines + "\n", 4, "actions.s.slack.url_file", "more than one line"},
		{"email without server", mail(`{from: "w@example.com", to: [o@example.com]}`), 3, "actions.m.email", "server is required"},
		{"email server without port", mail(`{server: smtp.example.com, from: "w@example.com", to: [o@example.com]}`), 3, "actions.m.email.server", "want host:port"},
		{"email bad from", mail(`{server: "s:25", from: "not an address", to: [o@example.com]}`), 3, "actions.m.email.from", `invalid address "not an address"`},
		{"email no recipients", mail(`{server: "s:25", from: "w@example.com"}`), 3, "actions.m.email", "to is required"},
		{"email to as string", mail(`{server: "s:25", from: "w@example.com", to: o@example.com}`), 3, "actions.m.email.to", "expected a list"},
		{"email bad recipient", "actions:\n  m:\n    email:\n      server: \"s:25\"\n      from: w@example.com\n      to:\n        - o@example.com\n        - nobody\n", 8, "actions.m.email.to", `invalid address "nobody"`},
		{"email username without password", mail("{" + okMail + ", username: w}"), 3, "actions.m.email", "password or password_file is required"},
		{"email password without username", mail("{" + okMail + ", password: p}"), 3, "actions.m.email", "no username"},
		{"email auth without starttls", "actions:\n  m:\n    email:\n      server: \"s:25\"\n      from: w@example.com\n      to: [o@example.com]\n      username: w\n      password: p\n      starttls: false\n", 9, "actions.m.email.starttls", "never cross the network in the clear"},
		{"email password and file", mail("{" + okMail + ", username: w, password: p, password_file: /x}"), 3, "actions.m.email.password_file", "not both"},
		{"email empty password file", mail("{" + okMail + ", username: w, password_file: " + empty + "}"), 3, "actions.m.email.password_file", "is empty"},
		{"pagerduty without key", "actions:\n  p:\n    pagerduty: {url: \"https://x\"}\n", 3, "actions.p.pagerduty", "routing_key or routing_key_file is required"},
		{"pagerduty key file missing", "actions:\n  p:\n    pagerduty:\n      routing_key_file: " + missing + "\n", 4, "actions.p.pagerduty.routing_key_file", "no such file"},
		{"pagerduty bad url", "actions:\n  p:\n    pagerduty: {routing_key: k, url: \"events.pagerduty.com\"}\n", 3, "actions.p.pagerduty.url", "absolute http://"},
		{"api token and file", "api_token: a\napi_token_file: /x\n", 2, "api_token_file", "set api_token or api_token_file, not both"},
		{"api token file missing", "api_token_file: " + missing + "\n", 1, "api_token_file", "cannot read the secret"},
		{"api token with a space", "api_token: \"a b\"\n", 1, "api_token", "must not contain spaces"},
	})
}
