package httpapi

import (
	"net"
	"net/http"
	"net/url"
	"strings"
)

// A dashboard outlives the node that served it: when that node dies, the
// page follows the stream of another node it knows from the cluster view.
// The page's Content-Security-Policy lets it connect to the cluster's
// nodes (and nowhere else), and the routes the page reads (the stream and
// a service's history) let those nodes' pages read them (CORS), and only
// those: another site open in the same browser cannot.

// peerAddrs are the HTTP addresses of the cluster's nodes as this node
// knows them, each a plain host:port fit to write into a header.
func peerAddrs(node Topology) []string {
	var out []string
	for _, m := range node.Members() {
		if plainHostPort(m.HTTPAddr) {
			out = append(out, m.HTTPAddr)
		}
	}
	return out
}

// plainHostPort reports whether addr is host:port in characters that
// cannot break out of a header or a CSP source list.
func plainHostPort(addr string) bool {
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return false
	}
	return !strings.ContainsFunc(addr, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune(".-:[]", r))
	})
}

// schemeOf is the scheme r came in by: the cluster's nodes all serve the
// same one.
func schemeOf(r *http.Request) string {
	if r.TLS != nil {
		return "https"
	}
	return "http"
}

// allowPeerOrigin lets a page served by another node of the cluster read
// this answer.
func allowPeerOrigin(node Topology, h http.Header, r *http.Request) {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return
	}
	h.Add("Vary", "Origin")
	u, err := url.Parse(origin)
	if err != nil || u.Scheme != schemeOf(r) || u.Path != "" {
		return
	}
	for _, addr := range peerAddrs(node) {
		if u.Host == addr {
			h.Set("Access-Control-Allow-Origin", origin)
			return
		}
	}
}

// pageCSP is contentSecurityPolicy with the cluster's nodes allowed as
// event-stream and history sources.
func pageCSP(node Topology, r *http.Request) string {
	sources := []string{"'self'"}
	for _, addr := range peerAddrs(node) {
		sources = append(sources, schemeOf(r)+"://"+addr)
	}
	return strings.Replace(contentSecurityPolicy, "connect-src 'self'", "connect-src "+strings.Join(sources, " "), 1)
}
