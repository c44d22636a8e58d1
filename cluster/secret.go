package cluster

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// The cluster secret authenticates the nodes to each other on the internal
// HTTP routes (/v1/internal/*: forwarded heartbeats, status polls, leave
// requests), which the HTTP port exposes to every client of the API. Whoever
// holds it is a node; clients never need it.
//
// Where it comes from, first that applies:
//
//  1. Config.ClusterSecret (the operator's -cluster-secret-file): the same on
//     every node, never sent anywhere.
//  2. Derived from Config.GossipKey, which every node already shares: never
//     sent anywhere either.
//  3. Otherwise the node generates one on its first start, keeps it in its
//     data dir (SecretFile, mode 0600) and shares it over gossip's push/pull
//     exchange (memberlist's TCP state sync) with the nodes it meets. Every
//     node settles on the same one: a node gives its own up for the secret of
//     a member that belongs to a cluster when it does not, then for an older
//     one, then for the lower fingerprint. Gossip is then unencrypted, so
//     anyone who can reach the gossip port can learn it, but such a one can
//     join the cluster outright anyway: without a gossip key the gossip and
//     Raft ports must be private (docs/operations.md), while the HTTP port is the
//     one clients reach, and the secret keeps them off the internal routes.
//
// Each internal request carries PeerAuthHeader: the sender's node id and an
// HMAC of it under the secret.

// PeerAuthHeader carries a node's credentials on the internal routes:
// "<node id> <hex HMAC-SHA256(secret, id)>".
const PeerAuthHeader = "X-Watchdog-Peer"

// SecretFile is the file in the data dir that holds a generated cluster
// secret (mode 0600). APITokenFile is where the agent writes the API token
// derived from it.
const (
	SecretFile   = "cluster-secret"
	APITokenFile = "api-token"
)

// Purposes of the keys derived from the cluster secret: one never reveals
// another.
const (
	purposePeer     = "watchdog peer v1"
	purposeAPIToken = "watchdog api token v1"
	purposeFP       = "watchdog fingerprint v1"
	purposeFromKey  = "watchdog cluster secret from gossip key v1"
)

// secretKind says where a node's cluster secret came from.
type secretKind int

const (
	secretConfigured secretKind = iota // Config.ClusterSecret
	secretFromGossipKey
	secretGenerated // shared over gossip
)

// secret is the node's cluster secret. A generated one may be replaced by a
// peer's (adopt); the others never change.
type secret struct {
	kind secretKind
	path string // of the generated one's file

	mu      sync.RWMutex
	key     []byte
	created int64 // unix nanos; orders generated secrets (older wins)
	// peerSigs remembers the peer signature (hex) of ids that proved
	// themselves: this node's own, and those of requests that matched. An
	// HMAC per internal request on each end was a few percent of a node's
	// CPU under load. gen counts key changes, which empty it.
	peerSigs map[string]string
	gen      uint64
}

// maxPeerSigs bounds peerSigs: a cluster has a handful of nodes.
const maxPeerSigs = 64

// peerSig is the signature of id on the internal routes, and the key
// generation it was made with (for rememberPeerSig).
func (s *secret) peerSig(id string) (sig string, gen uint64, known bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if sig, ok := s.peerSigs[id]; ok {
		return sig, s.gen, true
	}
	return hex.EncodeToString(mac(s.key, purposePeer, id)), s.gen, false
}

func (s *secret) rememberPeerSig(id, sig string, gen uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if gen != s.gen || len(s.peerSigs) >= maxPeerSigs {
		return
	}
	if s.peerSigs == nil {
		s.peerSigs = make(map[string]string)
	}
	s.peerSigs[id] = sig
}

// setKeyLocked replaces the key; s.mu is held.
func (s *secret) setKeyLocked(key []byte, created int64) {
	s.key, s.created = key, created
	s.gen++
	s.peerSigs = nil
}

// storedSecret is SecretFile's content, and what push/pull carries.
type storedSecret struct {
	Key     string `json:"key"` // base64
	Created int64  `json:"created"`
	// HasState is the sender's: set only in push/pull.
	HasState bool `json:"state,omitempty"`
}

func mac(key []byte, purpose, msg string) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(purpose))
	h.Write([]byte{0})
	h.Write([]byte(msg))
	return h.Sum(nil)
}

// openSecret finds the node's secret as the package comment says.
func openSecret(cfg Config) (*secret, error) {
	switch {
	case len(cfg.ClusterSecret) > 0:
		return &secret{kind: secretConfigured, key: cfg.ClusterSecret}, nil
	case len(cfg.GossipKey) > 0:
		return &secret{kind: secretFromGossipKey, key: mac(cfg.GossipKey, purposeFromKey, "")}, nil
	}
	s := &secret{kind: secretGenerated, path: filepath.Join(cfg.DataDir, SecretFile)}
	b, err := os.ReadFile(s.path)
	switch {
	case err == nil:
		st, err := decodeSecret(b)
		if err != nil {
			return nil, fmt.Errorf("cluster: %s: %w (delete it to generate another)", s.path, err)
		}
		s.key, s.created = st.key, st.Created
		return s, nil
	case !errors.Is(err, os.ErrNotExist):
		return nil, fmt.Errorf("cluster: read the cluster secret: %w", err)
	}
	s.key = make([]byte, 32)
	if _, err := rand.Read(s.key); err != nil {
		return nil, fmt.Errorf("cluster: generate the cluster secret: %w", err)
	}
	s.created = time.Now().UnixNano()
	if err := s.save(); err != nil {
		return nil, err
	}
	return s, nil
}

type decodedSecret struct {
	storedSecret
	key []byte
}

func decodeSecret(b []byte) (decodedSecret, error) {
	var st storedSecret
	if err := json.Unmarshal(b, &st); err != nil {
		return decodedSecret{}, fmt.Errorf("not a cluster secret: %w", err)
	}
	key, err := base64.StdEncoding.DecodeString(st.Key)
	if err != nil || len(key) < 16 {
		return decodedSecret{}, errors.New("not a cluster secret: want a base64 key of at least 16 bytes")
	}
	return decodedSecret{storedSecret: st, key: key}, nil
}

// save writes the generated secret to its file, whole or not at all.
func (s *secret) save() error {
	s.mu.RLock()
	b, _ := json.Marshal(storedSecret{Key: base64.StdEncoding.EncodeToString(s.key), Created: s.created})
	s.mu.RUnlock()
	if err := WriteFileAtomic(s.path, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("cluster: save the cluster secret: %w", err)
	}
	return nil
}

// WriteFileAtomic writes data to path through a temporary file in the same
// directory, synced and renamed, so a reader never sees half of it.
func WriteFileAtomic(path string, data []byte, perm os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if err := f.Chmod(perm); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

func (s *secret) derive(purpose, msg string) []byte {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return mac(s.key, purpose, msg)
}

// offer is a generated secret as it ranks against another.
type offer struct {
	hasState bool
	created  int64
	fp       string
}

// losesTo reports whether a node holding a should take b instead: a secret
// held by a member of a cluster beats one that is not, then the older, then
// the lower fingerprint. A total order, so every node settles on the same.
func (a offer) losesTo(b offer) bool {
	switch {
	case a.fp == b.fp:
		return false
	case a.hasState != b.hasState:
		return b.hasState
	case a.created != b.created:
		return b.created < a.created
	}
	return b.fp < a.fp
}

func (s *secret) fingerprint() string {
	return hex.EncodeToString(s.derive(purposeFP, "")[:8])
}

func (s *secret) offer(hasState bool) offer {
	s.mu.RLock()
	created := s.created
	s.mu.RUnlock()
	return offer{hasState: hasState, created: created, fp: s.fingerprint()}
}

// GeneratedAPIToken is the API token this node's cluster secret yields: the
// same on every node of the cluster. The agent guards the management routes
// with it when no api_token is configured.
func (n *Node) GeneratedAPIToken() string {
	return hex.EncodeToString(n.secret.derive(purposeAPIToken, ""))
}

// AuthorizePeer signs req as coming from this node, for another node's
// internal routes.
func (n *Node) AuthorizePeer(req *http.Request) {
	sig, gen, known := n.secret.peerSig(n.cfg.NodeID)
	if !known {
		n.secret.rememberPeerSig(n.cfg.NodeID, sig, gen)
	}
	req.Header.Set(PeerAuthHeader, n.cfg.NodeID+" "+sig)
}

// Peer returns the node that signed r (AuthorizePeer) with this cluster's
// secret; ok is false for a request without valid credentials.
func (n *Node) Peer(r *http.Request) (id string, ok bool) {
	id, got, found := strings.Cut(r.Header.Get(PeerAuthHeader), " ")
	if !found || id == "" {
		return "", false
	}
	want, gen, known := n.secret.peerSig(id)
	// Hex is compared as written: a signature in capitals, which the
	// sender never makes, fails like any other wrong one.
	if subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 {
		return "", false
	}
	if !known {
		n.secret.rememberPeerSig(id, want, gen)
	}
	return id, true
}
