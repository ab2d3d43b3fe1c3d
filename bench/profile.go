package main

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// profile is a CPU profile's summary in the report.
type profile struct {
	title, file, top string
}

// profileDuring captures a CPU profile of srv while run runs (run should last at least d)
// and adds its top functions to the report as bench/out/<name>.pprof.
func (s *suite) profileDuring(srv *server, name, title string, d time.Duration, run func() error) error {
	file := filepath.Join(s.out, name+".pprof")
	wait := srv.profile(d, file)
	err := run()
	if perr := wait(); perr != nil {
		s.rep.errorf("profile %s: %v", name, perr)
		return err
	}
	top, terr := pprofTop(s.coredns, file, 14)
	if terr != nil {
		s.rep.errorf("profile %s: %v", name, terr)
		return err
	}
	s.rep.profs = append(s.rep.profs, profile{title: title, file: filepath.Base(file), top: top})
	return err
}

// pprofTop returns `go tool pprof -top -cum` for the profile: the n heaviest functions by
// cumulative time, leaving out the Go runtime's and the syscall package's own frames so that
// the plugins' and the server's code paths show.
func pprofTop(bin, file string, n int) (string, error) {
	out, err := exec.Command("go", "tool", "pprof", "-top", "-cum", "-nodecount=80", bin, file).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go tool pprof: %v: %s", err, out)
	}
	var keep []string
	rows := 0
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		switch {
		case strings.HasPrefix(l, "File:"), strings.HasPrefix(l, "Build ID:"), strings.HasPrefix(l, "Type:"),
			strings.HasPrefix(l, "Time:"), strings.HasPrefix(l, "Showing"):
			continue
		case strings.HasPrefix(l, "Duration:"), strings.Contains(l, "flat%"):
			keep = append(keep, l)
			continue
		}
		f := strings.Fields(l)
		if len(f) == 0 {
			continue
		}
		fn := f[len(f)-1]
		if strings.HasPrefix(fn, "runtime.") || strings.HasPrefix(fn, "internal/runtime") || strings.HasPrefix(fn, "syscall.") {
			continue
		}
		if rows++; rows <= n {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\n"), nil
}
