//go:build linux

package lossy

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"
)

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("network namespaces and TUN devices need root (make test runs as root)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Fatalf("ip(8) missing (iproute2, scripts/deps.sh): %v", err)
	}
}

func start(t *testing.T, cfg Config) *Link {
	t.Helper()
	l, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		names := []string{l.Near.Name, l.Far.Name}
		if err := l.Close(); err != nil {
			t.Error(err)
		}
		for _, n := range names {
			if _, err := os.Stat(filepath.Join(netnsDir, n)); err == nil {
				t.Errorf("namespace %s left after Close", n)
			}
		}
	})
	return l
}

// udpEcho runs a UDP echo server in the far namespace.
func udpEcho(t *testing.T, l *Link) string {
	t.Helper()
	pc, err := l.Far.ListenPacket("udp", FarIP+":0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { pc.Close(); wg.Wait() })
	wg.Go(func() {
		buf := make([]byte, 2048)
		for {
			n, a, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			pc.WriteTo(buf[:n], a)
		}
	})
	return pc.LocalAddr().String()
}

// echoRun sends n numbered datagrams from the near namespace to the far echo server and
// returns how many came back and the shortest round trip.
func echoRun(t *testing.T, l *Link, n int) (got int, minRTT time.Duration) {
	t.Helper()
	c, err := l.Near.Dial("udp", udpEcho(t, l))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sent := make([]time.Time, n)
	seen := make([]bool, n)
	minRTT = time.Hour
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 64)
		for {
			c.SetReadDeadline(time.Now().Add(2 * time.Second))
			k, err := c.Read(buf)
			if err != nil {
				return
			}
			if k < 4 {
				continue
			}
			i := int(binary.BigEndian.Uint32(buf))
			if i < n && !seen[i] {
				seen[i] = true
				got++
				minRTT = min(minRTT, time.Since(sent[i]))
			}
		}
	}()
	msg := make([]byte, 32)
	for i := range n {
		binary.BigEndian.PutUint32(msg, uint32(i))
		sent[i] = time.Now()
		if _, err := c.Write(msg); err != nil {
			t.Fatal(err)
		}
		time.Sleep(500 * time.Microsecond)
	}
	<-done // 2 s without a datagram: the rest is lost
	return got, minRTT
}

// TestUDPLossAndDelay: of 1000 datagrams across a link that drops 10 % each way, some are
// lost and most come back, the link counts drops in both directions near the set rate, and
// no reply comes faster than the two one-way delays allow.
func TestUDPLossAndDelay(t *testing.T) {
	needRoot(t)
	t.Parallel()
	const n = 1000
	cfg := Config{Loss: 0.1, Delay: 5 * time.Millisecond, Jitter: 2 * time.Millisecond, Seed: 7}
	l := start(t, cfg)
	got, minRTT := echoRun(t, l, n)
	toFar, toNear := l.Stats()
	t.Logf("%d of %d echoed, min RTT %v; to far %+v; to near %+v", got, n, minRTT, toFar, toNear)
	// Both ways at 10 %: 81 % expected.
	if got == n || got < n/2 {
		t.Errorf("%d of %d datagrams echoed; want some lost and most back", got, n)
	}
	for _, s := range []Stats{toFar, toNear} {
		if s.UDP < int64(n*7/10) {
			t.Errorf("only %d UDP packets crossed: %+v", s.UDP, s)
		}
		if rate := float64(s.UDPDropped) / float64(s.UDP); rate < 0.05 || rate > 0.15 {
			t.Errorf("UDP drop rate %.3f, want about 0.10: %+v", rate, s)
		}
		if s.Overflow != 0 {
			t.Errorf("queue overflow: %+v", s)
		}
	}
	if want := 2 * (cfg.Delay - cfg.Jitter); minRTT < want {
		t.Errorf("min RTT %v below the link's two one-way delays (%v at least)", minRTT, want)
	}
	// The echoes that came back are exactly those the link let through both ways.
	if int64(got) != toNear.UDP-toNear.UDPDropped {
		t.Errorf("%d echoes received, but the link delivered %d to near", got, toNear.UDP-toNear.UDPDropped)
	}
}

// TestNoLoss: without loss every datagram comes back; the link drops nothing.
func TestNoLoss(t *testing.T) {
	needRoot(t)
	t.Parallel()
	l := start(t, Config{Delay: time.Millisecond})
	if got, _ := echoRun(t, l, 300); got != 300 {
		t.Errorf("%d of 300 echoed without loss", got)
	}
	toFar, toNear := l.Stats()
	if toFar.Dropped+toNear.Dropped != 0 {
		t.Errorf("drops without loss: %+v %+v", toFar, toNear)
	}
}

// TestTCPAcrossLoss: a 2 MB transfer over TCP crosses a link that drops 5 % each way intact;
// the link dropped TCP segments in both directions, so TCP retransmitted.
func TestTCPAcrossLoss(t *testing.T) {
	needRoot(t)
	t.Parallel()
	l := start(t, Config{Loss: 0.05, Delay: 2 * time.Millisecond, Jitter: time.Millisecond, Seed: 3})
	ln, err := l.Far.Listen("tcp", FarIP+":0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	sums := make(chan [32]byte, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			sums <- [32]byte{}
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(2 * time.Minute))
		h := sha256.New()
		io.Copy(h, c)
		var s [32]byte
		copy(s[:], h.Sum(nil))
		sums <- s
	}()
	data := make([]byte, 2<<20)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	c, err := l.Near.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(2 * time.Minute)) // a hang guard, not a timing threshold
	if _, err := io.Copy(c, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	c.Close()
	if got, want := <-sums, sha256.Sum256(data); got != want {
		t.Fatal("the transfer arrived damaged or cut")
	}
	toFar, toNear := l.Stats()
	t.Logf("to far %+v; to near %+v", toFar, toNear)
	if toFar.TCPDropped == 0 || toNear.TCPDropped == 0 {
		t.Errorf("no TCP segment dropped in some direction: %+v %+v", toFar, toNear)
	}
	// 2 MB is about 1450 full segments: with drops, more had to be sent.
	if toFar.TCP <= int64(len(data)/1500) {
		t.Errorf("%d TCP packets to far for %d bytes: no retransmission?", toFar.TCP, len(data))
	}
}

// TestPing: iputils ping, run in the near namespace, loses some of 500 echoes and gets most
// back, its shortest round trip no shorter than the link's two delays.
func TestPing(t *testing.T) {
	needRoot(t)
	if _, err := exec.LookPath("ping"); err != nil {
		t.Fatalf("ping missing (iputils-ping, scripts/deps.sh): %v", err)
	}
	t.Parallel()
	cfg := Config{Loss: 0.1, Delay: 4 * time.Millisecond, Jitter: time.Millisecond, Seed: 11}
	l := start(t, cfg)
	out, err := l.Near.Command("ping", "-n", "-q", "-c", "500", "-i", "0.002", "-W", "1", FarIP).CombinedOutput()
	t.Logf("%s", out)
	// ping exits 1 when some replies are missing.
	if ee, ok := err.(*exec.ExitError); err != nil && (!ok || ee.ExitCode() > 1) {
		t.Fatalf("ping: %v", err)
	}
	m := regexp.MustCompile(`(\d+) packets transmitted, (\d+) received`).FindSubmatch(out)
	if m == nil {
		t.Fatal("no summary in ping's output")
	}
	sent, _ := strconv.Atoi(string(m[1]))
	got, _ := strconv.Atoi(string(m[2]))
	if sent != 500 || got == sent || got < sent/2 {
		t.Errorf("%d of %d echoed; want some lost and most back", got, sent)
	}
	rtt := regexp.MustCompile(`= ([0-9.]+)/`).FindSubmatch(out)
	if rtt == nil {
		t.Fatal("no rtt line in ping's output")
	}
	ms, _ := strconv.ParseFloat(string(rtt[1]), 64)
	if want := 2 * (cfg.Delay - cfg.Jitter); time.Duration(ms*float64(time.Millisecond)) < want {
		t.Errorf("min RTT %vms below the link's two one-way delays (%v)", ms, want)
	}
	toFar, toNear := l.Stats()
	if toFar.ICMPDropped == 0 || toNear.ICMPDropped == 0 {
		t.Errorf("no ICMP dropped in some direction: %+v %+v", toFar, toNear)
	}
}

// TestBadConfig: loss outside [0, 1] and negative delays are refused before anything is made.
func TestBadConfig(t *testing.T) {
	for _, c := range []Config{{Loss: -0.1}, {Loss: 1.5}, {Delay: -time.Millisecond}, {Jitter: -1}} {
		if _, err := Start(c); err == nil {
			t.Errorf("Start(%+v) accepted", c)
		}
	}
}
