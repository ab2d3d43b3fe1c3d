package warmcache

import (
	"reflect"
	"sync"

	"github.com/coredns/coredns/plugin/metrics"
	"github.com/coredns/coredns/plugin/pkg/dnstest"

	"github.com/miekg/dns"
)

// recordRcode tells the recorders that wrap w what a raw hit wrote. The log and prometheus
// plugins read Rcode and Msg from a *dnstest.Recorder (prometheus through *metrics.Recorder)
// after the chain returns, but Recorder.Write records only the length. The chain between
// them and us also holds writers we can't name (plugin.NextOrFailure's unexported
// pluginWriter, dns64, rewrite, ...): those are walked through their embedded
// dns.ResponseWriter field, found once per type with reflection.
func recordRcode(w dns.ResponseWriter, e *entry) {
	for range maxWrappers {
		switch x := w.(type) {
		case *metrics.Recorder:
			x.Rcode, x.Msg = e.rcode, e.view
			w = x.ResponseWriter
		case *dnstest.Recorder:
			x.Rcode, x.Msg = e.rcode, e.view
			w = x.ResponseWriter
		default:
			if w = unwrap(w); w == nil {
				return
			}
		}
	}
}

// maxWrappers bounds the walk down the writer chain.
const maxWrappers = 32

var (
	rwType   = reflect.TypeFor[dns.ResponseWriter]()
	wrappers sync.Map // reflect.Type -> int: index of the embedded dns.ResponseWriter, or -1
)

// unwrap returns the dns.ResponseWriter embedded in w, or nil.
func unwrap(w dns.ResponseWriter) dns.ResponseWriter {
	if w == nil {
		return nil
	}
	t := reflect.TypeOf(w)
	i, ok := wrappers.Load(t)
	if !ok {
		i = embeddedWriter(t)
		wrappers.Store(t, i)
	}
	idx := i.(int)
	if idx < 0 {
		return nil
	}
	v := reflect.ValueOf(w).Elem().Field(idx)
	if v.IsNil() {
		return nil
	}
	inner, _ := v.Interface().(dns.ResponseWriter)
	return inner
}

// embeddedWriter returns the index of the exported, embedded dns.ResponseWriter field of
// the struct *t points to, or -1.
func embeddedWriter(t reflect.Type) int {
	if t.Kind() != reflect.Pointer || t.Elem().Kind() != reflect.Struct {
		return -1
	}
	st := t.Elem()
	for i := range st.NumField() {
		f := st.Field(i)
		if f.Anonymous && f.IsExported() && f.Type == rwType {
			return i
		}
	}
	return -1
}
