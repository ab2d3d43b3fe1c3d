package lab

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
)

// ParseSpec applies a textual upstream description to cfg: comma-separated items
//
//	fixed:5ms                  fixed latency
//	lognormal:8ms:0.5          lognormal latency, median and sigma
//	stall:0.03:300ms           stall probability and duration
//	fault:garbage[:0.1[:10s]]  fault kind, probability (default 1), IdleClose's After
//	ttl:300                    TTL of synthetic answers
//	idle:10s                   idle timeout (and edns-tcp-keepalive value)
//	seed:42                    RNG seed
//	name:lab.test              DoT certificate name
//	udp:ADDR tcp:ADDR tls:ADDR listen addresses ("5353" means 127.0.0.1:5353, "-" none)
//	unix:PATH                  Unix socket
//	doh:ADDR doq:ADDR          DNS-over-HTTPS (HTTP/2) and DNS-over-QUIC, off unless given
//	dohpath:/dns-query         the DoH path
//
// Example: "tls:8853,lognormal:8ms:0.5,stall:0.03:300ms,fault:servfail:0.01".
func ParseSpec(spec string, cfg *Config) error {
	for item := range strings.SplitSeq(spec, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		key, val, _ := strings.Cut(item, ":")
		args := strings.Split(val, ":")
		if err := applyItem(cfg, strings.ToLower(key), val, args); err != nil {
			return fmt.Errorf("lab spec %q: %w", item, err)
		}
	}
	return nil
}

func applyItem(cfg *Config, key, val string, args []string) error {
	var err error
	switch key {
	case "fixed":
		cfg.Latency.Dist = Fixed
		cfg.Latency.Median, err = duration(val)
	case "lognormal":
		if len(args) != 2 {
			return fmt.Errorf("want lognormal:MEDIAN:SIGMA")
		}
		cfg.Latency.Dist = LogNormal
		if cfg.Latency.Median, err = duration(args[0]); err != nil {
			return err
		}
		cfg.Latency.Sigma, err = prob(args[1], 10)
	case "stall":
		if len(args) != 2 {
			return fmt.Errorf("want stall:PROB:DURATION")
		}
		if cfg.Latency.StallProb, err = prob(args[0], 1); err != nil {
			return err
		}
		cfg.Latency.Stall, err = duration(args[1])
	case "fault":
		if len(args) > 3 {
			return fmt.Errorf("want fault:KIND[:PROB[:AFTER]]")
		}
		f := Fault{}
		if f.Kind, err = ParseFaultKind(args[0]); err != nil {
			return err
		}
		if len(args) > 1 {
			if f.Prob, err = prob(args[1], 1); err != nil {
				return err
			}
		}
		if len(args) > 2 {
			if f.After, err = duration(args[2]); err != nil {
				return err
			}
		}
		cfg.Fault = f
	case "ttl":
		var n uint64
		n, err = strconv.ParseUint(val, 10, 32)
		cfg.TTL = uint32(n)
	case "idle":
		cfg.IdleTimeout, err = duration(val)
	case "seed":
		cfg.Seed, err = strconv.ParseUint(val, 10, 64)
	case "name":
		cfg.ServerName = val
	case "udp":
		cfg.UDP, err = listenAddr(val)
	case "tcp":
		cfg.TCP, err = listenAddr(val)
	case "tls":
		cfg.TLS, err = listenAddr(val)
	case "unix":
		cfg.Unix = val
	case "doh":
		cfg.DoH, err = listenAddr(val)
	case "doq":
		cfg.DoQ, err = listenAddr(val)
	case "dohpath":
		cfg.DoHPath = val
	default:
		return fmt.Errorf("unknown item %q", key)
	}
	return err
}

func duration(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err == nil && d < 0 {
		err = fmt.Errorf("negative duration %s", s)
	}
	return d, err
}

func prob(s string, maxv float64) (float64, error) {
	p, err := strconv.ParseFloat(s, 64)
	if err == nil && (p < 0 || p > maxv) {
		err = fmt.Errorf("%s out of range [0, %g]", s, maxv)
	}
	return p, err
}

// listenAddr accepts "-", a port, or host:port.
func listenAddr(s string) (string, error) {
	if s == "-" {
		return s, nil
	}
	if _, err := strconv.ParseUint(s, 10, 16); err == nil {
		return net.JoinHostPort("127.0.0.1", s), nil
	}
	if _, _, err := net.SplitHostPort(s); err != nil {
		return "", err
	}
	return s, nil
}

// String formats l in ParseSpec's syntax.
func (l Latency) String() string {
	var s string
	if l.Dist == LogNormal {
		s = fmt.Sprintf("lognormal:%v:%g", l.Median, l.Sigma)
	} else {
		s = fmt.Sprintf("fixed:%v", l.Median)
	}
	if l.StallProb > 0 {
		s += fmt.Sprintf(",stall:%g:%v", l.StallProb, l.Stall)
	}
	return s
}

// String formats f in ParseSpec's syntax.
func (f Fault) String() string {
	p := f.Prob
	if p <= 0 {
		p = 1
	}
	s := fmt.Sprintf("fault:%s:%g", f.Kind, p)
	if f.Kind == IdleClose {
		s += fmt.Sprintf(":%v", f.After)
	}
	return s
}
