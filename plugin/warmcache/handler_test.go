package warmcache

import (
	"context"
	"errors"

	"github.com/miekg/dns"
)

// handlerFunc is a next plugin that answers with a function.
type handlerFunc func(w dns.ResponseWriter, r *dns.Msg)

func (f handlerFunc) ServeDNS(_ context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
	f(w, r)
	return dns.RcodeSuccess, nil
}

func (f handlerFunc) Name() string { return "handler" }

// failHandler is a next plugin that fails without writing, as forward does on a timeout.
type failHandler func()

func (f failHandler) ServeDNS(context.Context, dns.ResponseWriter, *dns.Msg) (int, error) {
	f()
	return dns.RcodeServerFailure, errors.New("upstream timed out")
}

func (f failHandler) Name() string { return "fail" }
