package httpapi

import (
	"fmt"
	"html"
	"net/http"
	"slices"
	"strings"

	"github.com/gorilla/mux"

	"github.com/watchdog-ha/watchdog/fsm"
)

// Status badges, for a README or a wiki page:
//
//	GET /v1/badges/{tag}.svg    an SVG badge: "<tag> | up" (or down, paused)
//	GET /v1/badges/{tag}.json   the same for shields.io's endpoint badge
//
// over every service tagged {tag}, or every service for "all". They tell
// only the tag's aggregate status, so they need no token; they may be
// cached for a few seconds, which is how stale they may be.

// badgeMaxAge is how long a badge may be cached (Cache-Control).
const badgeMaxAge = 10

// allTag names every service in a badge's URL.
const allTag = "all"

func (s *Server) badgeRoutes(r *mux.Router) {
	r.HandleFunc("/v1/badges/{tag}.svg", s.handleBadge(writeSVGBadge)).Methods(http.MethodGet, http.MethodHead)
	r.HandleFunc("/v1/badges/{tag}.json", s.handleBadge(writeJSONBadge)).Methods(http.MethodGet, http.MethodHead)
}

// badge is what a badge says.
type badge struct {
	label, message, color string
}

// badgeColor is a status's colour: shields.io's name for it, and its hex
// value for the SVG.
func badgeColor(st fsm.Status) (name, hex string) {
	switch st {
	case fsm.StatusDown:
		return "red", "#e05d44"
	case fsm.StatusPaused:
		return "lightgrey", "#9f9f9f"
	}
	return "brightgreen", "#4c1"
}

// badgeOf is the aggregate status of the services tagged tag: down if any
// is down, else up if any is up (or new), else paused. found is false when
// no service has the tag.
func (s *Server) badgeOf(tag string) (b badge, status fsm.Status, found bool) {
	var up, down, paused int
	for _, svc := range s.state.Services() {
		if tag != allTag && !slices.Contains(svc.Def.Tags, tag) {
			continue
		}
		switch svc.Status {
		case fsm.StatusDown:
			down++
		case fsm.StatusPaused:
			paused++
		default:
			up++
		}
	}
	switch {
	case down > 0:
		status = fsm.StatusDown
	case up > 0:
		status = fsm.StatusUp
	case paused > 0:
		status = fsm.StatusPaused
	default:
		return badge{}, "", false
	}
	name, _ := badgeColor(status)
	return badge{label: tag, message: string(status), color: name}, status, true
}

func (s *Server) handleBadge(write func(http.ResponseWriter, badge, fsm.Status)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		tag := mux.Vars(r)["tag"]
		if !fsm.ValidID(tag) {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("invalid tag %s: want 1-128 of A-Za-z0-9._- (not . or ..), or all", quoteInput(tag)))
			return
		}
		b, status, found := s.badgeOf(tag)
		if !found {
			writeError(w, http.StatusNotFound, fmt.Sprintf("no service has tag %q", tag))
			return
		}
		h := w.Header()
		h.Set("Cache-Control", fmt.Sprintf("public, max-age=%d", badgeMaxAge))
		h.Set("X-Content-Type-Options", "nosniff")
		// shields.io and README renderers fetch it from anywhere.
		h.Set("Access-Control-Allow-Origin", "*")
		write(w, b, status)
	}
}

// writeJSONBadge writes shields.io's endpoint format.
func writeJSONBadge(w http.ResponseWriter, b badge, _ fsm.Status) {
	writeJSON(w, http.StatusOK, map[string]any{"schemaVersion": 1, "label": b.label, "message": b.message, "color": b.color})
}

// writeSVGBadge draws a flat two-part badge as shields.io does, sized by
// an estimate of the text's width (Verdana 11px: about 7 px a character).
func writeSVGBadge(w http.ResponseWriter, b badge, status fsm.Status) {
	lw, mw := 10+7*len(b.label), 10+7*len(b.message)
	label, message := html.EscapeString(b.label), html.EscapeString(b.message)
	_, hex := badgeColor(status)
	var svg strings.Builder
	fmt.Fprintf(&svg, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="20" role="img" aria-label="%s: %s">`, lw+mw, label, message)
	fmt.Fprintf(&svg, `<title>%s: %s</title>`, label, message)
	svg.WriteString(`<linearGradient id="s" x2="0" y2="100%"><stop offset="0" stop-color="#bbb" stop-opacity=".1"/><stop offset="1" stop-opacity=".1"/></linearGradient>`)
	fmt.Fprintf(&svg, `<clipPath id="r"><rect width="%d" height="20" rx="3" fill="#fff"/></clipPath>`, lw+mw)
	fmt.Fprintf(&svg, `<g clip-path="url(#r)"><rect width="%d" height="20" fill="#555"/><rect x="%d" width="%d" height="20" fill="%s"/><rect width="%d" height="20" fill="url(#s)"/></g>`,
		lw, lw, mw, hex, lw+mw)
	svg.WriteString(`<g fill="#fff" text-anchor="middle" font-family="Verdana,Geneva,DejaVu Sans,sans-serif" font-size="11">`)
	fmt.Fprintf(&svg, `<text x="%d" y="14">%s</text><text x="%d" y="14">%s</text></g></svg>`, lw/2, label, lw+mw/2, message)
	w.Header().Set("Content-Type", "image/svg+xml")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write([]byte(svg.String() + "\n"))
}
