//go:build linux

// Command lossylink runs a lossy, delaying IP link between two network namespaces it
// creates (test/lossy), until SIGINT or SIGTERM, then prints each direction's counters and
// deletes the namespaces. It needs root.
//
//	lossylink -loss 0.02 -delay 10ms -jitter 2ms
//	# prints {"near":"dnsc-lossy-PID-1-near","far":"dnsc-lossy-PID-1-far","near_ip":"10.203.0.1","far_ip":"10.203.0.2"}
//	ip netns exec dnsc-lossy-PID-1-far bin/coredns -conf Corefile   # listening on 10.203.0.2
//	ip netns exec dnsc-lossy-PID-1-near kdig @10.203.0.2 +tls example.org
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/dnscache/dnscache/test/lossy"
)

func main() {
	var cfg lossy.Config
	flag.Float64Var(&cfg.Loss, "loss", 0.02, "fraction of packets dropped, per direction")
	flag.DurationVar(&cfg.Delay, "delay", 10*time.Millisecond, "one-way delay")
	flag.DurationVar(&cfg.Jitter, "jitter", 0, "the delay is spread over delay ± jitter (order kept)")
	flag.Uint64Var(&cfg.Seed, "seed", 0, "seed of the loss and jitter draws (0: random)")
	flag.Parse()
	l, err := lossy.Start(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "lossylink:", err)
		os.Exit(1)
	}
	json.NewEncoder(os.Stdout).Encode(map[string]string{
		"near": l.Near.Name, "far": l.Far.Name, "near_ip": l.NearIP, "far_ip": l.FarIP,
	})
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	<-sig
	toFar, toNear := l.Stats()
	fmt.Printf("to far:  %+v\nto near: %+v\n", toFar, toNear)
	if err := l.Close(); err != nil {
		fmt.Fprintln(os.Stderr, "lossylink:", err)
		os.Exit(1)
	}
}
