package httpapi

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"html/template"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strconv"
	"sync"
	"time"

	"github.com/gorilla/mux"
)

// web holds the dashboard: one html/template page and the static files it
// loads. Everything is in the binary; the page loads nothing from elsewhere.
//
//go:embed web
var web embed.FS

// contentSecurityPolicy allows the page only its own script, style, icon and
// event stream: no inline script or style, no other origin, no framing.
// Whatever a service id or node name contains can then never run as code,
// even if some escaping were missed.
// The page's own policy also lets it connect to the cluster's other nodes
// (pageCSP), and its search form submit to itself.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// maxStreams bounds the event streams one node serves at once: each is a
// goroutine polling the state, and a page left open is one stream.
const maxStreams = 128

// maxStreamsPerClient bounds the streams of one client address, so that
// one client cannot take every slot and lock every dashboard out. (Clients
// behind one proxy share its address, and so its share.)
const maxStreamsPerClient = 16

// dashboardNode is what the status page and its stream read of the node.
type dashboardNode interface {
	Topology
	Progress
	// Now is the cluster's time, which the page counts ages from.
	Now() time.Time
}

// dashboard serves the status page, its assets and its event stream. It
// reads only this node's replica, so every node serves it, leader or not.
type dashboard struct {
	node  dashboardNode
	state State
	page  *template.Template
	files map[string]asset
	// streams is a semaphore of the streams open now.
	streams chan struct{}
	mu      sync.Mutex
	closing map[*http.Server]chan struct{} // closed when that server shuts down
	// perClient counts the streams open now by client address.
	perClient map[string]int
	// pollEvery and keepAliveEvery pace the event stream; fixed in
	// production, shorter in tests.
	pollEvery, keepAliveEvery time.Duration
}

// asset is one embedded file, served with an ETag so that a reload costs a
// 304 while the binary is the same, and never serves a stale copy after an
// upgrade.
type asset struct {
	body  []byte
	etag  string
	ctype string
}

func newDashboard(node dashboardNode, state State) *dashboard {
	d := &dashboard{
		node: node, state: state,
		page:      template.Must(template.ParseFS(web, "web/index.html")),
		files:     map[string]asset{},
		streams:   make(chan struct{}, maxStreams),
		closing:   map[*http.Server]chan struct{}{},
		perClient: map[string]int{},

		pollEvery: 500 * time.Millisecond, keepAliveEvery: 15 * time.Second,
	}
	static, err := fs.Sub(web, "web/static")
	if err != nil {
		panic(err) // the directory is embedded: only a broken build lacks it
	}
	err = fs.WalkDir(static, ".", func(name string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		body, err := fs.ReadFile(static, name)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(body)
		d.files[name] = asset{body: body, etag: `"` + hex.EncodeToString(sum[:8]) + `"`,
			ctype: mime.TypeByExtension(path.Ext(name))}
		return nil
	})
	if err != nil {
		panic(err)
	}
	return d
}

// dashboardRoutes adds the status page, its assets and its event stream.
// All are reads of this node's replica: no forwarding, no leader needed.
func (s *Server) dashboardRoutes(r *mux.Router) {
	d := newDashboard(s.node, s.state)
	r.HandleFunc("/", d.handlePage).Methods(http.MethodGet)
	r.HandleFunc("/static/{name}", d.handleStatic).Methods(http.MethodGet)
	r.HandleFunc("/v1/stream", d.handleStream).Methods(http.MethodGet)
}

// pageHeaders are sent with the page and its assets.
func pageHeaders(h http.Header) {
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
}

func (d *dashboard) handlePage(w http.ResponseWriter, r *http.Request) {
	page, _ := strconv.Atoi(r.URL.Query().Get("page"))
	data := d.pageData(time.Now(), r.URL.Query().Get("q"), page)
	// Rendered whole before anything is sent, so that a template error is a
	// clean 500 rather than half a page.
	var buf bytes.Buffer
	if err := d.page.Execute(&buf, data); err != nil {
		writeError(w, http.StatusInternalServerError, "render dashboard: "+err.Error())
		return
	}
	pageHeaders(w.Header())
	w.Header().Set("Content-Security-Policy", pageCSP(d.node, r))
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	// The page is a snapshot of live state: never reuse one.
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(buf.Bytes())
}

func (d *dashboard) handleStatic(w http.ResponseWriter, r *http.Request) {
	a, ok := d.files[mux.Vars(r)["name"]]
	if !ok {
		writeError(w, http.StatusNotFound, "no such file: "+r.URL.Path)
		return
	}
	pageHeaders(w.Header())
	w.Header().Set("Content-Type", a.ctype)
	w.Header().Set("ETag", a.etag)
	// Revalidated on every load: the names carry no version, and a page
	// from a new binary must not run an old script.
	w.Header().Set("Cache-Control", "no-cache")
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(a.body))
}
