package main

import (
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/artifact-archiver/artifact-archiver/internal/benchkit"
)

// cpuMeter measures CPU time of a process, the S3 server and this process.
type cpuMeter struct {
	b                         *bench
	pid                       int
	tool, server, self, total time.Duration
}

// startCPU starts measuring; pid 0 measures no tool process.
func (b *bench) startCPU(pid int) *cpuMeter {
	m := &cpuMeter{b: b, pid: pid}
	if pid != 0 {
		m.tool = benchkit.ProcCPU(pid)
	}
	m.server = benchkit.ProcCPU(b.server.Pid())
	m.self = benchkit.SelfCPU()
	m.total = machineBusy()
	return m
}

// stop returns the CPU time spent since startCPU by the tool, the S3 server, this
// process, and every other process (the rest of the machine's busy time;
// a tool measured with pid 0 is counted there).
func (m *cpuMeter) stop() (tool, server, self, others time.Duration) {
	if m.pid != 0 {
		tool = benchkit.ProcCPU(m.pid) - m.tool
	}
	server, self = benchkit.ProcCPU(m.b.server.Pid())-m.server, benchkit.SelfCPU()-m.self
	busy := machineBusy()
	others = max(busy-m.total-tool-server-self, 0)
	return tool, server, self, others
}

// machineBusy returns the non-idle CPU time of the whole machine since boot
// (/proc/stat: everything but idle and iowait).
func machineBusy() time.Duration {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(data), "\n")
	f := strings.Fields(line) // cpu user nice system idle iowait irq softirq steal ...
	var busy int64
	for i, v := range f[1:] {
		n, _ := strconv.ParseInt(v, 10, 64)
		if i == 3 || i == 4 || i >= 8 { // idle, iowait; guest time is already in user
			continue
		}
		busy += n
	}
	return time.Duration(busy) * time.Second / 100
}
