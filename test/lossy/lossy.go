//go:build linux

// Package lossy is a lossy, delaying IP link between two network namespaces, for tests and
// benchmarks on a kernel without netem: two TUN devices, one in each namespace, and this
// package's goroutines between them, forwarding every IP packet both ways, dropping a
// configurable fraction and delaying the rest (with jitter). TCP, UDP (and so QUIC) and ICMP
// cross it alike, so DoT and DoQ can be compared across the same link.
//
//	l, err := lossy.Start(lossy.Config{Loss: 0.02, Delay: 10 * time.Millisecond, Jitter: 2 * time.Millisecond})
//	defer l.Close()
//	// l.Near and l.Far are namespaces; l.NearIP (10.203.0.1) reaches l.FarIP (10.203.0.2) across the link.
//	exec.Command("ip", "netns", "exec", l.Far.Name, "bin/coredns", ...)  // or l.Far.Command(...)
//	c, err := l.Near.Dial("udp", l.FarIP+":53")                          // a socket inside Near
//
// The namespaces are created with `ip netns add` under names of this process
// (dnsc-lossy-PID-N-near, -far) and deleted by Close; namespaces left by a process of this
// package that is gone are deleted by the next Start. It needs root, /dev/net/tun and ip(8).
package lossy

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// Addresses of the two ends; each namespace is private to one Link, so every Link uses them.
const (
	NearIP = "10.203.0.1"
	FarIP  = "10.203.0.2"
	// Dev is the name of the TUN device in each namespace.
	Dev = "lossy0"
)

const (
	prefix   = "dnsc-lossy-"
	netnsDir = "/run/netns"
	queueCap = 8192 // packets waiting for their delay per direction; more are dropped (Overflow)
	mtu      = 1500
)

// Config is the link's behaviour, the same in both directions.
type Config struct {
	// Loss is the probability that a packet is dropped, per packet and direction (0.02: 2 %).
	Loss float64
	// Delay is the one-way delay; Jitter spreads it uniformly over Delay ± Jitter (at least
	// 0). Packets keep their order: one never overtakes another in the same direction, so a
	// packet that drew a short delay behind one that drew a long one waits for it.
	Delay, Jitter time.Duration
	// Seed makes the drop and jitter draws reproducible; 0 seeds at random.
	Seed uint64
}

// Netns is a network namespace created by this package.
type Netns struct {
	Name string
}

// Stats counts one direction's packets.
type Stats struct {
	Packets  int64 // read from the sending side's TUN
	Dropped  int64 // dropped by the loss draw
	Overflow int64 // dropped because queueCap packets were waiting
	Sent     int64 // written to the receiving side's TUN
	// By protocol (IPv4 protocol or IPv6 next header): packets read and dropped.
	TCP, TCPDropped, UDP, UDPDropped, ICMP, ICMPDropped int64
}

// Link is a running lossy link.
type Link struct {
	Near, Far *Netns
	NearIP    string
	FarIP     string

	cfg     atomic.Pointer[Config]
	nearTun *os.File
	farTun  *os.File
	toFar   *pipe
	toNear  *pipe
	wg      sync.WaitGroup
	closed  sync.Once
}

var seq atomic.Int64

// Start creates the two namespaces, a TUN device in each, and forwards between them.
func Start(cfg Config) (*Link, error) {
	if err := validate(cfg); err != nil {
		return nil, err
	}
	removeStale()
	n := seq.Add(1)
	base := fmt.Sprintf("%s%d-%d-", prefix, os.Getpid(), n)
	l := &Link{Near: &Netns{Name: base + "near"}, Far: &Netns{Name: base + "far"}, NearIP: NearIP, FarIP: FarIP}
	l.cfg.Store(&cfg)
	fail := func(err error) (*Link, error) {
		l.Close()
		return nil, err
	}
	for _, ns := range []*Netns{l.Near, l.Far} {
		if err := ip("netns", "add", ns.Name); err != nil {
			return fail(err)
		}
	}
	var err error
	if l.nearTun, err = l.Near.tun(NearIP, FarIP); err != nil {
		return fail(fmt.Errorf("near: %w", err))
	}
	if l.farTun, err = l.Far.tun(FarIP, NearIP); err != nil {
		return fail(fmt.Errorf("far: %w", err))
	}
	seed := cfg.Seed
	if seed == 0 {
		seed = rand.Uint64()
	}
	l.toFar = &pipe{l: l, from: l.nearTun, to: l.farTun, rnd: rand.New(rand.NewPCG(seed, 1)), q: make(chan packet, queueCap)}
	l.toNear = &pipe{l: l, from: l.farTun, to: l.nearTun, rnd: rand.New(rand.NewPCG(seed, 2)), q: make(chan packet, queueCap)}
	for _, p := range []*pipe{l.toFar, l.toNear} {
		l.wg.Add(2)
		go p.read()
		go p.write()
	}
	return l, nil
}

func validate(cfg Config) error {
	if cfg.Loss < 0 || cfg.Loss > 1 {
		return fmt.Errorf("lossy: loss %v outside [0, 1]", cfg.Loss)
	}
	if cfg.Delay < 0 || cfg.Jitter < 0 {
		return errors.New("lossy: negative delay or jitter")
	}
	return nil
}

// Set changes the loss and delay for packets read from now on.
func (l *Link) Set(cfg Config) error {
	if err := validate(cfg); err != nil {
		return err
	}
	l.cfg.Store(&cfg)
	return nil
}

// Stats returns the counters of each direction.
func (l *Link) Stats() (toFar, toNear Stats) {
	return l.toFar.stats(), l.toNear.stats()
}

// Close stops forwarding and deletes the namespaces. Processes started in them must be
// stopped first (a namespace lives on while a process is in it).
func (l *Link) Close() error {
	var err error
	l.closed.Do(func() {
		for _, f := range []*os.File{l.nearTun, l.farTun} {
			if f != nil {
				f.Close() // ends the readers; a non-persistent TUN device goes with its fd
			}
		}
		l.wg.Wait()
		for _, ns := range []*Netns{l.Near, l.Far} {
			if _, serr := os.Stat(filepath.Join(netnsDir, ns.Name)); serr == nil {
				if derr := ip("netns", "del", ns.Name); derr != nil && err == nil {
					err = derr
				}
			}
		}
	})
	return err
}

// removeStale deletes namespaces this package created in processes that no longer run.
func removeStale() {
	ents, _ := os.ReadDir(netnsDir)
	for _, e := range ents {
		rest, ok := strings.CutPrefix(e.Name(), prefix)
		if !ok {
			continue
		}
		pid, err := strconv.Atoi(strings.SplitN(rest, "-", 2)[0])
		if err != nil || pid == os.Getpid() {
			continue
		}
		if unix.Kill(pid, 0) == unix.ESRCH {
			ip("netns", "del", e.Name())
		}
	}
}

func ip(args ...string) error {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

// Do runs f on an OS thread inside the namespace. Sockets f creates stay in the namespace
// after Do returns; goroutines f starts run outside it. The thread is discarded afterwards.
func (n *Netns) Do(f func() error) error {
	errc := make(chan error, 1)
	go func() {
		// Never unlocked: the goroutine ends locked, so the runtime ends the thread, whose
		// namespace was changed, instead of reusing it.
		runtime.LockOSThread()
		fd, err := unix.Open(filepath.Join(netnsDir, n.Name), unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			errc <- fmt.Errorf("netns %s: %w", n.Name, err)
			return
		}
		err = unix.Setns(fd, unix.CLONE_NEWNET)
		unix.Close(fd)
		if err != nil {
			errc <- fmt.Errorf("setns %s: %w", n.Name, err)
			return
		}
		errc <- f()
	}()
	return <-errc
}

// Dial opens a connection from inside the namespace (net.Dial's networks and addresses).
func (n *Netns) Dial(network, addr string) (c net.Conn, err error) {
	err = n.Do(func() error {
		c, err = net.DialTimeout(network, addr, 5*time.Second)
		return err
	})
	return c, err
}

// Listen opens a stream listener inside the namespace.
func (n *Netns) Listen(network, addr string) (ln net.Listener, err error) {
	err = n.Do(func() error {
		ln, err = net.Listen(network, addr)
		return err
	})
	return ln, err
}

// ListenPacket opens a packet socket inside the namespace.
func (n *Netns) ListenPacket(network, addr string) (pc net.PacketConn, err error) {
	err = n.Do(func() error {
		pc, err = net.ListenPacket(network, addr)
		return err
	})
	return pc, err
}

// Command returns a command that runs argv inside the namespace (`ip netns exec`, which
// execs argv: the command's PID is argv's).
func (n *Netns) Command(argv ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", n.Name}, argv...)...)
}

// Wrap is the prefix that runs a program inside the namespace, for kit.CoreDNS.Wrap.
func (n *Netns) Wrap() []string { return []string{"ip", "netns", "exec", n.Name} }

// tun creates the namespace's TUN device with local address self and peer, brings it and lo
// up, and returns its file (non-blocking, on the runtime's poller).
func (n *Netns) tun(self, peer string) (*os.File, error) {
	var f *os.File
	err := n.Do(func() error {
		fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
		if err != nil {
			return fmt.Errorf("/dev/net/tun: %w", err)
		}
		ifr, err := unix.NewIfreq(Dev)
		if err != nil {
			unix.Close(fd)
			return err
		}
		ifr.SetUint16(unix.IFF_TUN | unix.IFF_NO_PI)
		if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
			unix.Close(fd)
			return fmt.Errorf("TUNSETIFF: %w", err)
		}
		f = os.NewFile(uintptr(fd), "tun:"+n.Name)
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, args := range [][]string{
		{"-n", n.Name, "link", "set", "lo", "up"},
		{"-n", n.Name, "link", "set", Dev, "mtu", strconv.Itoa(mtu), "up"},
		{"-n", n.Name, "addr", "add", self, "peer", peer + "/32", "dev", Dev},
	} {
		if err := ip(args...); err != nil {
			f.Close()
			return nil, err
		}
	}
	return f, nil
}

// packet is one IP packet waiting for its time.
type packet struct {
	b   []byte
	due time.Time
}

// pipe is one direction of the link: a reader that draws loss and delay, and a writer that
// writes each packet once it is due.
type pipe struct {
	l        *Link
	from, to *os.File
	rnd      *rand.Rand // the reader's only
	q        chan packet
	last     time.Time // the reader's: the latest due time so far (order is kept)

	packets, dropped, overflow, sent           atomic.Int64
	tcp, tcpDrop, udp, udpDrop, icmp, icmpDrop atomic.Int64
}

func (p *pipe) stats() Stats {
	return Stats{
		Packets: p.packets.Load(), Dropped: p.dropped.Load(), Overflow: p.overflow.Load(), Sent: p.sent.Load(),
		TCP: p.tcp.Load(), TCPDropped: p.tcpDrop.Load(), UDP: p.udp.Load(), UDPDropped: p.udpDrop.Load(),
		ICMP: p.icmp.Load(), ICMPDropped: p.icmpDrop.Load(),
	}
}

// proto returns the counters of the packet's protocol, or nil.
func (p *pipe) proto(b []byte) (n, dropped *atomic.Int64) {
	var pr byte
	switch {
	case len(b) >= 20 && b[0]>>4 == 4:
		pr = b[9]
	case len(b) >= 40 && b[0]>>4 == 6:
		pr = b[6]
	default:
		return nil, nil
	}
	switch pr {
	case unix.IPPROTO_TCP:
		return &p.tcp, &p.tcpDrop
	case unix.IPPROTO_UDP:
		return &p.udp, &p.udpDrop
	case unix.IPPROTO_ICMP, unix.IPPROTO_ICMPV6:
		return &p.icmp, &p.icmpDrop
	}
	return nil, nil
}

func (p *pipe) read() {
	defer p.l.wg.Done()
	defer close(p.q)
	buf := make([]byte, 65536)
	for {
		n, err := p.from.Read(buf)
		if err != nil {
			if errors.Is(err, os.ErrClosed) || errors.Is(err, unix.EBADFD) || errors.Is(err, unix.EIO) {
				return
			}
			if errors.Is(err, unix.EINTR) || errors.Is(err, unix.EAGAIN) {
				continue
			}
			return
		}
		b := buf[:n]
		p.packets.Add(1)
		cnt, drop := p.proto(b)
		if cnt != nil {
			cnt.Add(1)
		}
		cfg := p.l.cfg.Load()
		if cfg.Loss > 0 && p.rnd.Float64() < cfg.Loss {
			p.dropped.Add(1)
			if drop != nil {
				drop.Add(1)
			}
			continue
		}
		d := cfg.Delay
		if cfg.Jitter > 0 {
			d += time.Duration((p.rnd.Float64()*2 - 1) * float64(cfg.Jitter))
		}
		due := time.Now().Add(max(d, 0))
		if due.Before(p.last) {
			due = p.last
		}
		p.last = due
		select {
		case p.q <- packet{b: bytes.Clone(b), due: due}:
		default:
			p.overflow.Add(1)
		}
	}
}

func (p *pipe) write() {
	defer p.l.wg.Done()
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for pk := range p.q {
		if d := time.Until(pk.due); d > 0 {
			t.Reset(d)
			<-t.C
		}
		if _, err := p.to.Write(pk.b); err == nil {
			p.sent.Add(1)
		}
	}
}
