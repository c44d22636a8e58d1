package chaos

// The network the chaos nodes live on: one network namespace per node, a
// bridge in a namespace of its own, and a veth from this (the root)
// namespace to the bridge so that the test's clients reach every node.
//
//	root ns  wdc<pid>h 10.199.X.1 ──┐
//	ns wdc<pid>-br    bridge br0 ───┼── wdc<pid>b1 ── eth0 10.199.X.11  ns wdc<pid>-n1
//	                                ├── wdc<pid>b2 ── eth0 10.199.X.12  ns wdc<pid>-n2
//	                                └── wdc<pid>b3 ── eth0 10.199.X.13  ns wdc<pid>-n3
//
// X is picked so that 10.199.X.0/24 is used by nothing else here; the nodes
// only ever hear of these addresses, so no traffic leaves the lab. Faults are
// iptables rules in the nodes' namespaces, in two chains of our own
// (WDC-IN, WDC-OUT, jumped to from INPUT and OUTPUT; WDC-DUP in the mangle
// table, jumped to from POSTROUTING, for duplicated packets) that heal()
// flushes.
// Deleting the namespaces at the end removes every interface and rule.

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

type labNode struct {
	ns string
	ip string
}

type netLab struct {
	tag    string // wdc<pid>: every name we create starts with it
	hostIP string
	brNS   string
	nodes  []labNode
	made   []string // namespaces created, for cleanup
}

// labPrefix starts the name of every namespace and interface of a lab; the
// pid after it tells a leftover of a crashed run (its pid gone) from a lab
// in use by another run.
const labPrefix = "wdc"

func sh(args ...string) error {
	cmd := exec.Command(args[0], args[1:]...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(out.Bytes()))
	}
	return nil
}

func shOut(args ...string) (string, error) {
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("%s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return string(out), nil
}

func nsRun(ns string, args ...string) error {
	return sh(append([]string{"ip", "netns", "exec", ns}, args...)...)
}

// labPrerequisites says why this machine cannot run the lab, or nil.
func labPrerequisites() error {
	if runtime.GOOS != "linux" {
		return fmt.Errorf("network namespaces need Linux, this is %s", runtime.GOOS)
	}
	if os.Geteuid() != 0 {
		return errors.New("network namespaces and iptables need root")
	}
	for _, tool := range []string{"ip", "iptables", "sh", "date"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%s not found: %w", tool, err)
		}
	}
	// Can we make one at all (a container without CAP_SYS_ADMIN cannot)?
	probe := fmt.Sprintf("%s%d-probe", labPrefix, os.Getpid())
	if err := sh("ip", "netns", "add", probe); err != nil {
		return err
	}
	return sh("ip", "netns", "del", probe)
}

// removeStaleLabs deletes the namespaces of earlier runs that died without
// cleaning up (their pid is gone), after killing the nodes left in them.
func removeStaleLabs(t *testing.T) {
	out, err := shOut("ip", "netns", "list")
	if err != nil {
		return
	}
	for line := range strings.Lines(out) {
		name, _, _ := strings.Cut(strings.TrimSpace(line), " ")
		rest, ok := strings.CutPrefix(name, labPrefix)
		if !ok {
			continue
		}
		pidStr, _, ok := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidStr)
		if !ok || err != nil || pid == os.Getpid() || syscall.Kill(pid, 0) == nil {
			continue // not ours, or its run is alive
		}
		if pids, err := shOut("ip", "netns", "pids", name); err == nil {
			for _, f := range strings.Fields(pids) {
				if p, err := strconv.Atoi(f); err == nil {
					_ = syscall.Kill(p, syscall.SIGKILL)
				}
			}
		}
		t.Logf("removing namespace %s left by a run that died (pid %d)", name, pid)
		_ = sh("ip", "netns", "del", name)
	}
}

// freeSubnet picks X such that nothing here uses 10.199.X.0/24.
func freeSubnet() (int, error) {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return 0, err
	}
	routes, _ := shOut("ip", "-4", "route", "show")
	start := os.Getpid()%250 + 1
	for i := range 250 {
		x := (start+i)%250 + 1
		_, subnet, _ := net.ParseCIDR(fmt.Sprintf("10.199.%d.0/24", x))
		used := strings.Contains(routes, fmt.Sprintf("10.199.%d.", x))
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && (subnet.Contains(ipn.IP) || ipn.Contains(subnet.IP)) {
				used = true
			}
		}
		if !used {
			return x, nil
		}
	}
	return 0, errors.New("no free 10.199.X.0/24 subnet")
}

// newLab makes the namespaces, bridge and links for n nodes; t.Cleanup
// removes them whatever happens.
func newLab(t *testing.T, n int) *netLab {
	removeStaleLabs(t)
	x, err := freeSubnet()
	if err != nil {
		t.Fatal(err)
	}
	l := &netLab{tag: fmt.Sprintf("%s%d", labPrefix, os.Getpid()), hostIP: fmt.Sprintf("10.199.%d.1", x)}
	l.brNS = l.tag + "-br"
	t.Cleanup(l.destroy)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("setting up the network: %v", err)
		}
	}
	addNS := func(name string) {
		must(sh("ip", "netns", "add", name))
		l.made = append(l.made, name)
		must(nsRun(name, "ip", "link", "set", "lo", "up"))
	}
	addNS(l.brNS)
	must(nsRun(l.brNS, "ip", "link", "add", "br0", "type", "bridge"))
	must(nsRun(l.brNS, "ip", "link", "set", "br0", "up"))

	// The host's leg: created here, its peer moved into the bridge's namespace.
	host := l.tag + "h"
	must(sh("ip", "link", "add", host, "type", "veth", "peer", "name", host+"b", "netns", l.brNS))
	must(nsRun(l.brNS, "ip", "link", "set", host+"b", "master", "br0", "up"))
	must(sh("ip", "addr", "add", l.hostIP+"/24", "dev", host))
	must(sh("ip", "link", "set", host, "up"))

	for i := 1; i <= n; i++ {
		node := labNode{ns: fmt.Sprintf("%s-n%d", l.tag, i), ip: fmt.Sprintf("10.199.%d.%d", x, 10+i)}
		addNS(node.ns)
		br := fmt.Sprintf("%sb%d", l.tag, i)
		must(sh("ip", "link", "add", "eth0", "netns", node.ns, "type", "veth", "peer", "name", br, "netns", l.brNS))
		must(nsRun(l.brNS, "ip", "link", "set", br, "master", "br0", "up"))
		must(nsRun(node.ns, "ip", "addr", "add", node.ip+"/24", "dev", "eth0"))
		must(nsRun(node.ns, "ip", "link", "set", "eth0", "up"))
		for _, c := range [][]string{
			{"-N", "WDC-IN"}, {"-N", "WDC-OUT"},
			{"-A", "INPUT", "-j", "WDC-IN"}, {"-A", "OUTPUT", "-j", "WDC-OUT"},
			{"-t", "mangle", "-N", "WDC-DUP"}, {"-t", "mangle", "-A", "POSTROUTING", "-j", "WDC-DUP"},
		} {
			must(l.iptables(node.ns, c...))
		}
		l.nodes = append(l.nodes, node)
	}
	must(l.waitReachable(10 * time.Second))
	return l
}

func (l *netLab) iptables(ns string, args ...string) error {
	return nsRun(ns, append([]string{"iptables", "-w", "5"}, args...)...)
}

// waitReachable waits until the host reaches every node's address (the
// bridge ports take a moment to forward), by a TCP connect that is refused.
func (l *netLab) waitReachable(within time.Duration) error {
	deadline := time.Now().Add(within)
	for _, n := range l.nodes {
		for {
			c, err := net.DialTimeout("tcp4", net.JoinHostPort(n.ip, "9"), 200*time.Millisecond)
			if c != nil {
				c.Close()
			}
			if err == nil || errors.Is(err, syscall.ECONNREFUSED) {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%s (%s) unreachable from the host: %w", n.ns, n.ip, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	return nil
}

func (l *netLab) destroy() {
	for i := len(l.made) - 1; i >= 0; i-- {
		_ = sh("ip", "netns", "del", l.made[i])
	}
	// Deleting the bridge's namespace deleted the host veth's peer, and so
	// the host veth; this is for a setup that failed half-way.
	_ = exec.Command("ip", "link", "del", l.tag+"h").Run()
}

// isolate cuts node i off from every other node, both ways; the host still
// reaches it (clients keep talking to it, as a load balancer would).
func (l *netLab) isolate(i int) error {
	for j, peer := range l.nodes {
		if j == i {
			continue
		}
		if err := l.iptables(l.nodes[i].ns, "-A", "WDC-IN", "-s", peer.ip, "-j", "DROP"); err != nil {
			return err
		}
		if err := l.iptables(l.nodes[i].ns, "-A", "WDC-OUT", "-d", peer.ip, "-j", "DROP"); err != nil {
			return err
		}
	}
	return nil
}

// lossy drops each packet from another node with probability p, on arrival
// at every node: each direction of each link loses p of its packets. The
// host's traffic (the clients) is spared.
func (l *netLab) lossy(p float64) error {
	for i, n := range l.nodes {
		for j, peer := range l.nodes {
			if i == j {
				continue
			}
			if err := l.iptables(n.ns, "-A", "WDC-IN", "-s", peer.ip, "-m", "statistic", "--mode", "random",
				"--probability", strconv.FormatFloat(p, 'f', 4, 64), "-j", "DROP"); err != nil {
				return err
			}
		}
	}
	return nil
}

// heal removes every fault rule.
func (l *netLab) heal() error {
	var errs []error
	for _, n := range l.nodes {
		errs = append(errs, l.iptables(n.ns, "-F", "WDC-IN"), l.iptables(n.ns, "-F", "WDC-OUT"),
			l.iptables(n.ns, "-t", "mangle", "-F", "WDC-DUP"))
	}
	return errors.Join(errs...)
}

// redirect makes node from's connections to (to's ip, port) go to
// (to's ip, via) instead: the delay proxy listens there, in to's namespace,
// so every fault rule on the link between them still applies to it.
func (l *netLab) redirect(from, to int, port, via int) error {
	return l.iptables(l.nodes[from].ns, "-t", "nat", "-A", "OUTPUT", "-p", "tcp", "-d", l.nodes[to].ip,
		"--dport", strconv.Itoa(port), "-j", "DNAT", "--to-destination", net.JoinHostPort(l.nodes[to].ip, strconv.Itoa(via)))
}

// sysSetns is setns(2)'s number: package syscall does not name it, and
// golang.org/x/sys is not worth a dependency for one call.
var sysSetns = map[string]uintptr{"amd64": 308, "arm64": 268, "386": 346, "arm": 375, "riscv64": 268, "ppc64le": 350, "s390x": 339}[runtime.GOARCH]

// listenIn listens on addr inside the namespace ns. The socket is made by a
// thread that entered ns and is never given back to the Go scheduler: it
// ends with its goroutine. The listener, like every socket, stays in the
// namespace it was made in, whichever thread uses it later.
func listenIn(ns, addr string) (net.Listener, error) {
	type result struct {
		ln  net.Listener
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread() // and never unlocked: see above
		f, err := os.Open("/var/run/netns/" + ns)
		if err != nil {
			ch <- result{nil, err}
			return
		}
		defer f.Close()
		if sysSetns == 0 {
			ch <- result{nil, fmt.Errorf("setns: unknown system call number on %s", runtime.GOARCH)}
			return
		}
		if _, _, errno := syscall.RawSyscall(sysSetns, f.Fd(), syscall.CLONE_NEWNET, 0); errno != 0 {
			ch <- result{nil, fmt.Errorf("setns %s: %w", ns, errno)}
			return
		}
		ln, err := net.Listen("tcp4", addr)
		ch <- result{ln, err}
	}()
	r := <-ch
	return r.ln, r.err
}
