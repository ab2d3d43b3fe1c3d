package kit

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Process is a child process whose output (stdout and stderr) is kept in a Buffer. It dies
// with the test process (Pdeathsig) and is stopped by its PID only.
type Process struct {
	Name string
	Cmd  *exec.Cmd
	Out  *Buffer

	done     chan struct{}
	waitErr  error
	stopOnce sync.Once
}

// StartProcess runs argv in dir (the current directory when empty).
func StartProcess(name, dir string, argv ...string) (*Process, error) {
	if len(argv) == 0 {
		return nil, errors.New("kit: StartProcess without a program")
	}
	p := &Process{Name: name, Out: &Buffer{Max: 16 << 20}, done: make(chan struct{})}
	p.Cmd = exec.Command(argv[0], argv[1:]...)
	p.Cmd.Dir = dir
	p.Cmd.Stdout, p.Cmd.Stderr = p.Out, p.Out
	p.Cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := p.Cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() {
		p.waitErr = p.Cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// debianBinary returns bin, or def when bin is empty, once the file is there; its error
// names pkg, the Debian package that installs it.
func debianBinary(bin, def, pkg string) (string, error) {
	if bin == "" {
		bin = def
	}
	if _, err := os.Stat(bin); err != nil {
		return "", fmt.Errorf("kit: %w (install Debian's %s: make deps)", err, pkg)
	}
	return bin, nil
}

// started is must (see coredns.go) for a server that a Launch function started: t.Cleanup
// closes it.
func started[T interface{ Close() error }](t testing.TB) func(v T, err error) T {
	t.Helper()
	return func(v T, err error) T {
		t.Helper()
		v = must[T](t)(v, err)
		t.Cleanup(func() { v.Close() })
		return v
	}
}

// PID returns the process id.
func (p *Process) PID() int { return p.Cmd.Process.Pid }

// Log returns everything the process printed so far.
func (p *Process) Log() string { return p.Out.String() }

// Done is closed once the process has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// Exited reports whether the process has exited and, if so, what Wait returned.
func (p *Process) Exited() (bool, error) {
	select {
	case <-p.done:
		return true, p.waitErr
	default:
		return false, nil
	}
}

// Tail returns the last n lines the process printed.
func (p *Process) Tail(n int) string {
	lines := strings.Split(strings.TrimRight(p.Log(), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Await polls ready every 50 ms until it holds. It returns an error holding the last lines
// of the process's output when the process exits first or ready does not hold within timeout.
func (p *Process) Await(timeout time.Duration, ready func() bool) error {
	for deadline := time.Now().Add(timeout); ; time.Sleep(50 * time.Millisecond) {
		if exited, err := p.Exited(); exited {
			return fmt.Errorf("%s exited (%v):\n%s", p.Name, err, p.Tail(40))
		}
		if ready() {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready after %v:\n%s", p.Name, timeout, p.Tail(40))
		}
	}
}

// Signal sends sig to the process.
func (p *Process) Signal(sig os.Signal) error { return p.Cmd.Process.Signal(sig) }

// Kill ends the process with SIGKILL, as a crash would, and waits for it.
func (p *Process) Kill() {
	p.stopOnce.Do(func() {
		p.Cmd.Process.Kill()
		<-p.done
	})
}

// Stop sends SIGTERM and waits up to grace, then SIGKILL. It returns an error when the
// process did not stop in time, printed a panic, a data race or a fatal runtime error, or
// exited non-zero. Once the process is stopped or killed, Stop returns nil.
func (p *Process) Stop(grace time.Duration) error {
	var err error
	p.stopOnce.Do(func() { err = p.stop(grace) })
	return err
}

func (p *Process) stop(grace time.Duration) error {
	p.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		p.Cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("%s did not stop within %v of SIGTERM\n%s", p.Name, grace, p.Log())
	}
	out := p.Log()
	for _, bad := range []string{"panic:", "WARNING: DATA RACE", "fatal error:"} {
		if strings.Contains(out, bad) {
			return fmt.Errorf("%s output contains %q:\n%s", p.Name, bad, out)
		}
	}
	if p.waitErr != nil {
		return fmt.Errorf("%s exit: %v\n%s", p.Name, p.waitErr, out)
	}
	return nil
}

// RSS returns the process's resident set size in bytes.
func (p *Process) RSS() (int64, error) {
	f, err := os.Open("/proc/" + strconv.Itoa(p.PID()) + "/status")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb * 1024, err
		}
	}
	return 0, fmt.Errorf("no VmRSS for %s", p.Name)
}

// CPUTime returns the process's user+system CPU time so far.
func (p *Process) CPUTime() (time.Duration, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(p.PID()) + "/stat")
	if err != nil {
		return 0, err
	}
	// Fields after the command name, which is parenthesised and may hold spaces.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond, nil // USER_HZ is 100 on Linux
}

// FDs returns the number of file descriptors the process holds.
func (p *Process) FDs() (int, error) {
	ents, err := os.ReadDir("/proc/" + strconv.Itoa(p.PID()) + "/fd")
	return len(ents), err
}
