package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"text/tabwriter"
	"time"
)

// table is one block of figures.
type table struct {
	Title string
	Note  string
	Head  []string
	Rows  [][]string
}

func (t *table) add(cells ...string) { t.Rows = append(t.Rows, cells) }

// target is one of the goals, measured.
type target struct {
	Name     string // what is compared
	Goal     string // e.g. "≥ 0.97× floor"
	Measured string // e.g. "0.95× (41k vs 43k qps)"
	Status   string // "met", "NOT met", "n/a (...)"
}

// report collects a run's figures.
type report struct {
	machine [][2]string
	tables  []*table
	targets []target
	plots   []string
	draws   []func(dir string) error
	profs   []profile
	errs    []string
	elapsed time.Duration
	endLoad string
	quick   bool
}

func newReport(s *suite) *report {
	r := &report{quick: s.quick}
	model := "unknown"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "model name"); ok {
				model = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	version := "unknown"
	if out, err := exec.Command(s.coredns, "-version").Output(); err == nil {
		version = strings.TrimSpace(strings.SplitN(string(out), "\n", 2)[0])
	}
	dnsperf := "missing"
	if out, err := exec.Command("dnsperf", "-h").CombinedOutput(); err == nil || len(out) > 0 {
		for _, l := range strings.Split(string(out), "\n") {
			if strings.HasPrefix(l, "Version") {
				dnsperf = strings.TrimSpace(strings.TrimPrefix(l, "Version"))
			}
		}
	}
	kernel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	mode := "full"
	if s.quick {
		mode = "quick (BENCH_QUICK=1)"
	}
	pin := "none"
	if s.serverCPU != "" {
		pin = fmt.Sprintf("server on CPU %s, load generators and lab upstreams on CPU %s", s.serverCPU, s.clientCPU)
	}
	r.machine = [][2]string{
		{"date", time.Now().UTC().Format("2006-01-02 15:04 UTC")},
		{"machine", fmt.Sprintf("%d cores (nproc --all), %s, Linux %s", cores(), model, strings.TrimSpace(string(kernel)))},
		{"coredns", version + " (" + s.coredns + ")"},
		{"tools", runtime.Version() + ", dnsperf " + dnsperf},
		{"pinning", pin},
		{"mode", mode},
		{"load average at start", loadavg()},
	}
	return r
}

// loadavg returns /proc/loadavg's 1-, 5- and 15-minute figures: how busy the machine was
// with other work, which the figures should be read against.
func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// cores counts the machine's online CPUs; runtime.NumCPU counts only this process's affinity.
func cores() int {
	out, err := exec.Command("nproc", "--all").Output()
	if err != nil {
		return runtime.NumCPU()
	}
	var n int
	fmt.Sscan(string(out), &n)
	return n
}

func (r *report) table(title, note string, head ...string) *table {
	t := &table{Title: title, Note: note, Head: head}
	r.tables = append(r.tables, t)
	return t
}

func (r *report) target(name, goal, measured, status string) {
	r.targets = append(r.targets, target{name, goal, measured, status})
}

// ratioTarget records a target "got/base op limit".
func (r *report) ratioTarget(name, goal string, ratio, limit float64, atMost bool, detail string) {
	met := ratio >= limit
	if atMost {
		met = ratio <= limit
	}
	status := "NOT met"
	if met {
		status = "met"
	}
	r.target(name, goal, fmt.Sprintf("%.2f× (%s)", ratio, detail), status)
}

func (r *report) errorf(format string, args ...any) {
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

const caveat = "These figures are noisy (a shared 2-core VM); only ratios taken within one run are comparable. Other work on the machine (see the load averages) can dominate a case: timeouts or latencies of seconds mean the run was disturbed and should be repeated."

func (r *report) printHeader(w io.Writer) {
	fmt.Fprintln(w, "dnscache benchmark")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, kv := range r.machine {
		fmt.Fprintf(tw, "  %s\t%s\n", kv[0], kv[1])
	}
	tw.Flush()
	fmt.Fprintln(w, "  "+caveat)
}

// printTable writes t with aligned columns.
func printTable(w io.Writer, t *table) {
	fmt.Fprintf(w, "\n-- %s\n", t.Title)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "  "+strings.Join(t.Head, "\t")+"\t")
	for _, row := range t.Rows {
		fmt.Fprintln(tw, "  "+strings.Join(row, "\t")+"\t")
	}
	tw.Flush()
	if t.Note != "" {
		fmt.Fprintf(w, "  %s\n", t.Note)
	}
}

func (r *report) printTargets(w io.Writer) {
	fmt.Fprintln(w, "\n-- targets")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  target\tgoal\tmeasured\tstatus")
	for _, t := range r.targets {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", t.Name, t.Goal, t.Measured, t.Status)
	}
	tw.Flush()
}

func (r *report) printSummary(w io.Writer) {
	fmt.Fprintf(w, "\n== summary (%v, load average at end %s)\n", r.elapsed.Round(time.Second), r.endLoad)
	for _, t := range r.tables {
		printTable(w, t)
	}
	r.printTargets(w)
	for _, p := range r.profs {
		fmt.Fprintf(w, "\n-- where the time goes: %s (%s)\n%s\n", p.title, p.file, p.top)
	}
	for _, e := range r.errs {
		fmt.Fprintln(w, "  error:", e)
	}
}

// markdown renders the report, plots referenced under imgDir; profiles adds the CPU
// profiles' summaries (report.md has them, the README's summary leaves them out).
func (r *report) markdown(imgDir string, profiles bool) string {
	var b bytes.Buffer
	fmt.Fprintln(&b, "| | |\n|---|---|")
	for _, kv := range r.machine {
		fmt.Fprintf(&b, "| %s | %s |\n", kv[0], md(kv[1]))
	}
	fmt.Fprintf(&b, "| load average at end | %s |\n", r.endLoad)
	fmt.Fprintf(&b, "| suite time | %v |\n\n", r.elapsed.Round(time.Second))
	fmt.Fprintf(&b, "_%s_\n\n", caveat)
	fmt.Fprintln(&b, "**Targets**\n\n| target | goal | measured | status |\n|---|---|---|---|")
	for _, t := range r.targets {
		status := t.Status
		if status == "met" || status == "NOT met" {
			status = "**" + status + "**"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", md(t.Name), md(t.Goal), md(t.Measured), md(status))
	}
	for _, t := range r.tables {
		fmt.Fprintf(&b, "\n**%s**\n\n", md(t.Title))
		fmt.Fprintln(&b, "| "+strings.Join(mdAll(t.Head), " | ")+" |")
		seps := make([]string, len(t.Head))
		for i := range seps {
			seps[i] = "---:"
		}
		seps[0] = "---"
		fmt.Fprintln(&b, "|"+strings.Join(seps, "|")+"|")
		for _, row := range t.Rows {
			fmt.Fprintln(&b, "| "+strings.Join(mdAll(row), " | ")+" |")
		}
		if t.Note != "" {
			fmt.Fprintf(&b, "\n%s\n", md(t.Note))
		}
	}
	if profiles && len(r.profs) > 0 {
		fmt.Fprintln(&b, "\n**Where the time goes** (CPU profiles of the server under load, `go tool pprof -top`)")
		for _, p := range r.profs {
			fmt.Fprintf(&b, "\n%s (`%s`):\n\n```\n%s\n```\n", md(p.title), p.file, p.top)
		}
	}
	if len(r.plots) > 0 {
		fmt.Fprintln(&b)
		for _, p := range r.plots {
			fmt.Fprintf(&b, "![%s](%s)\n", strings.TrimSuffix(p, ".png"), filepath.ToSlash(filepath.Join(imgDir, p)))
		}
	}
	if len(r.errs) > 0 {
		fmt.Fprintln(&b, "\n**Errors**")
		for _, e := range r.errs {
			fmt.Fprintf(&b, "\n    %s\n", strings.ReplaceAll(e, "\n", "\n    "))
		}
	}
	return b.String()
}

func md(s string) string { return strings.ReplaceAll(s, "|", "\\|") }

func mdAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = md(s)
	}
	return out
}

// write saves report.md (plots referenced beside it), summary.md (the same body with plots
// under img/, for bench/README.md) and report.txt.
func (r *report) write(dir string) error {
	for i, draw := range r.draws {
		if err := draw(dir); err != nil {
			r.errorf("plot %s: %v", r.plots[i], err)
		}
	}
	body := r.markdown(".", true)
	if err := os.WriteFile(filepath.Join(dir, "report.md"), []byte("# dnscache benchmark\n\n"+body), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "summary.md"), []byte(r.markdown("img", false)+"\nCPU profiles of the unmet targets' servers: bench/out/report.md after `make bench`.\n"), 0o644); err != nil {
		return err
	}
	var t bytes.Buffer
	r.printHeader(&t)
	r.printSummary(&t)
	return os.WriteFile(filepath.Join(dir, "report.txt"), t.Bytes(), 0o644)
}

// Formatting helpers.
func fqps(v float64) string { return fmt.Sprintf("%.0f", v) }

func fdur(d time.Duration) string {
	switch {
	case d == 0:
		return "-"
	case d < time.Millisecond:
		return fmt.Sprintf("%.0fµs", float64(d)/float64(time.Microsecond))
	case d < 100*time.Millisecond:
		return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond))
	default:
		return fmt.Sprintf("%.0fms", float64(d)/float64(time.Millisecond))
	}
}

func fratio(a, b float64) string {
	if b == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f×", a/b)
}
