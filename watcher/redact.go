package watcher

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strings"
)

// Redacted is what a configured secret is replaced with wherever it would
// be recorded: an error committed to the log, a line of the node's log.
const Redacted = "[redacted]"

// Secrets shorter than these are not redacted: they would match ordinary
// words everywhere. A whole configured value (a header value, a routing key,
// a password) is redacted from minSecret bytes; a fragment of one (a
// segment of a URL's path, a query value, the token after "Bearer") from
// minFragment.
const (
	minSecret   = 4
	minFragment = 8
)

// SecretHolder is an action configured with credentials: it names them so
// that they can be redacted from whatever is recorded about it.
type SecretHolder interface {
	Secrets() []string
}

// Secrets implements SecretHolder: the path and query of the URL (often the
// credential itself) and every header value.
func (w Webhook) Secrets() []string {
	out := urlSecrets(w.URL)
	for _, v := range w.Header {
		out = append(out, valueSecrets(string(v))...)
	}
	return out
}

// Secrets implements SecretHolder: the URL is the credential.
func (s Slack) Secrets() []string {
	return append(urlSecrets(string(s.URL)), valueSecrets(string(s.URL))...)
}

// Secrets implements SecretHolder: the routing key, and the path and query
// of a URL other than PagerDuty's own.
func (p PagerDuty) Secrets() []string {
	out := valueSecrets(string(p.RoutingKey))
	if p.URL != "" && p.URL != DefaultPagerDutyURL {
		out = append(out, urlSecrets(p.URL)...)
	}
	return out
}

// Secrets implements SecretHolder: the SMTP password.
func (e Email) Secrets() []string { return valueSecrets(string(e.Password)) }

// ActionSecrets collects the secrets of every action that holds any.
func ActionSecrets(actions map[string]Action) []string {
	var out []string
	for _, a := range actions {
		if h, ok := a.(SecretHolder); ok {
			out = append(out, h.Secrets()...)
		}
	}
	return out
}

// valueSecrets is a configured secret value, as written and with its
// escapes, and each long word of it ("Bearer TOKEN" gives TOKEN too).
func valueSecrets(v string) []string {
	if len(v) < minSecret {
		return nil
	}
	out := []string{v, url.QueryEscape(v), url.PathEscape(v)}
	if words := strings.Fields(v); len(words) > 1 {
		for _, w := range words {
			if len(w) >= minFragment {
				out = append(out, w)
			}
		}
	}
	return out
}

// urlSecrets are the parts of a URL that may authorise it: its user
// information, its path and each long segment of it, its query and each
// value in it, both escaped and not. The scheme and host are not secret
// (errors name receivers by them).
func urlSecrets(raw string) []string {
	u, err := url.Parse(raw)
	if err != nil {
		// Unparseable: all of it, since which part is the secret is unknown.
		return valueSecrets(raw)
	}
	var out []string
	fragment := func(s string) {
		if len(s) >= minFragment {
			out = append(out, s)
			if un, err := url.PathUnescape(s); err == nil && un != s {
				out = append(out, un)
			}
		}
	}
	if u.User != nil {
		out = append(out, valueSecrets(u.User.String())...)
		if pass, ok := u.User.Password(); ok {
			out = append(out, valueSecrets(pass)...)
		}
	}
	if p := u.EscapedPath(); p != "" && p != "/" {
		out = append(out, p, u.Path)
		for _, seg := range strings.Split(p, "/") {
			fragment(seg)
		}
	}
	if u.RawQuery != "" {
		out = append(out, valueSecrets(u.RawQuery)...)
		for _, vs := range u.Query() {
			for _, v := range vs {
				fragment(v)
				fragment(url.QueryEscape(v))
			}
		}
	}
	return out
}

// Redactor replaces configured secrets in text. The zero Redactor and one
// without secrets leave text as it is.
type Redactor struct{ r *strings.Replacer }

// NewRedactor redacts the given secrets. Longer secrets are matched first,
// so a path is redacted whole rather than segment by segment.
func NewRedactor(secrets []string) *Redactor {
	kept := slices.DeleteFunc(slices.Clone(secrets), func(s string) bool { return len(s) < minSecret })
	slices.SortFunc(kept, func(a, b string) int { return cmp.Or(cmp.Compare(len(b), len(a)), strings.Compare(a, b)) })
	kept = slices.Compact(kept)
	if len(kept) == 0 {
		return &Redactor{}
	}
	pairs := make([]string, 0, 2*len(kept))
	for _, s := range kept {
		pairs = append(pairs, s, Redacted)
	}
	return &Redactor{r: strings.NewReplacer(pairs...)}
}

// String returns s with every secret replaced.
func (r *Redactor) String(s string) string {
	if r == nil || r.r == nil {
		return s
	}
	return r.r.Replace(s)
}

// Handler returns a log handler that redacts the secrets from every
// message and attribute before h sees them, or h itself when there is
// nothing to redact.
func (r *Redactor) Handler(h slog.Handler) slog.Handler {
	if r == nil || r.r == nil {
		return h
	}
	return redactHandler{h: h, r: r}
}

// redactHandler is a slog.Handler that redacts before it hands on.
type redactHandler struct {
	h slog.Handler
	r *Redactor
}

func (h redactHandler) Enabled(ctx context.Context, l slog.Level) bool { return h.h.Enabled(ctx, l) }

func (h redactHandler) Handle(ctx context.Context, rec slog.Record) error {
	out := slog.NewRecord(rec.Time, rec.Level, h.r.String(rec.Message), rec.PC)
	rec.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(h.attr(a))
		return true
	})
	return h.h.Handle(ctx, out)
}

func (h redactHandler) WithAttrs(as []slog.Attr) slog.Handler {
	red := make([]slog.Attr, len(as))
	for i, a := range as {
		red[i] = h.attr(a)
	}
	return redactHandler{h: h.h.WithAttrs(red), r: h.r}
}

func (h redactHandler) WithGroup(name string) slog.Handler {
	return redactHandler{h: h.h.WithGroup(name), r: h.r}
}

// attr redacts one attribute. A value that is not text (an error, a list)
// is formatted first and replaced by its redacted text only if that differs.
func (h redactHandler) attr(a slog.Attr) slog.Attr {
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindString:
		return slog.String(a.Key, h.r.String(v.String()))
	case slog.KindGroup:
		group := v.Group()
		red := make([]any, len(group))
		for i, g := range group {
			red[i] = h.attr(g)
		}
		return slog.Group(a.Key, red...)
	case slog.KindAny:
		text := fmt.Sprint(v.Any())
		if red := h.r.String(text); red != text {
			return slog.String(a.Key, red)
		}
	}
	return slog.Attr{Key: a.Key, Value: v}
}
