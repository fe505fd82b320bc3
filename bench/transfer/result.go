package main

import "time"

// result is one measured transfer.
type result struct {
	round    int
	size     int64
	tool     string // "worker" or "rclone"
	partSize int64  // worker: ARCHIVER_PART_SIZE (0: default)
	wall     time.Duration
	peakRSS  int64 // bytes: worker VmHWM before stop, rclone max RSS
	// worker only
	sampledRSS int64         // highest VmRSS sample
	idleRSS    int64         // VmRSS just before the publish
	transfer   time.Duration // the worker's own "artifact archived" duration
	warnings   int           // WARN/ERROR lines in the worker log
	blobBytes  int64         // bytes the blob host served for this leg
	// CPU time spent during the timed part by the tool, by MinIO, and by
	// this process (the simulator's blob host, NATS, polling).
	cpuTool, cpuMinIO, cpuBench time.Duration
	// cpuOthers is the CPU time every other process on the machine used
	// meanwhile (from /proc/stat): the noise of a shared machine.
	cpuOthers time.Duration
	// watch describes the machine during the timed part.
	watch    watch
	verified bool
	note     string
}

func (r result) mibps() float64 { return float64(r.size) / mib / r.wall.Seconds() }

// verdict is the checks' outcome of r for the progress log.
func verdict(r result) string {
	if r.verified {
		return "sha256 ok"
	}
	return "NOT VERIFIED: " + r.note
}

// partName renders a worker's part size ("-" for rclone).
func partName(r result) string {
	switch {
	case r.tool != "worker":
		return "-"
	case r.partSize > 0:
		return fmtSize(r.partSize)
	default:
		return "default"
	}
}
