package main

import "time"

// Legs of a measurement.
const (
	legWorker = "worker"
	legRclone = "rclone"
	legBare   = "bare"
)

// result is one measured transfer.
type result struct {
	backend  string // the S3 server (backendMinIO, backendVersityGW)
	round    int
	size     int64
	tool     string // legWorker, legRclone or legBare
	variant  string // worker: the label of a prebuilt binary ("" for the repository's)
	partSize int64  // worker: ARCHIVER_PART_SIZE (0: default)
	wall     time.Duration
	peakRSS  int64 // bytes: worker VmHWM before stop, others' max RSS
	// worker only
	sampledRSS int64         // highest VmRSS sample
	idleRSS    int64         // VmRSS just before the publish
	transfer   time.Duration // the worker's own "artifact archived" duration
	warnings   int           // WARN/ERROR lines in the worker log
	blobBytes  int64         // bytes the blob host served for this leg
	// CPU time spent during the timed part by the tool, by the S3 server,
	// and by this process (the simulator's blob host, NATS, polling).
	cpuTool, cpuServer, cpuBench time.Duration
	// cpuOthers is the CPU time every other process on the machine used
	// meanwhile (from /proc/stat): the noise of a shared machine.
	cpuOthers time.Duration
	// watch describes the machine during the timed part.
	watch    watch
	verified bool
	note     string
}

func (r result) mibps() float64 { return float64(r.size) / mib / r.wall.Seconds() }

// leg names the leg: "worker", "worker old", "rclone" or "bare".
func (r result) leg() string {
	if r.variant != "" {
		return r.tool + " " + r.variant
	}
	return r.tool
}

// verdict is the checks' outcome of r for the progress log.
func verdict(r result) string {
	if r.verified {
		return "sha256 ok"
	}
	return "NOT VERIFIED: " + r.note
}

// partName renders a worker's part size ("-" for the other legs).
func partName(r result) string {
	switch {
	case r.tool != legWorker:
		return "-"
	case r.partSize > 0:
		return fmtSize(r.partSize)
	default:
		return "default"
	}
}
