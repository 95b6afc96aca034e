package main

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"

	"go.uber.org/zap"
)

// Under a container's memory limit, Go's collector does not know the
// limit: by default it lets the heap grow to twice what is live, and a
// burst of webhooks waiting for the model can take the process past the
// limit, where the kernel kills it. serve gives the collector 90% of the
// limit (GOMEMLIMIT's job) unless GOMEMLIMIT is set: near the limit it
// then collects harder instead. See docs/operations.md, "Memory".

// memoryShare is the part of the container's limit the collector aims at;
// the rest is for what is not Go heap (stacks count, but the binary,
// buffers of the kernel's and the collector's own do not).
const memoryShare = 0.9

// setMemoryLimit applies the container's limit found under root ("/" in
// production) unless getenv has GOMEMLIMIT, and logs what it did.
func setMemoryLimit(root string, getenv func(string) string, log *zap.Logger) {
	if getenv("GOMEMLIMIT") != "" {
		return // the operator's, already applied by the runtime
	}
	limit, file := cgroupMemoryLimit(root)
	if limit <= 0 {
		return
	}
	soft := int64(float64(limit) * memoryShare)
	debug.SetMemoryLimit(soft)
	log.Info("memory limit from the container; the collector aims under it (set GOMEMLIMIT to choose another)",
		zap.String("cgroup_file", file), zap.Int64("container_limit_bytes", limit), zap.Int64("gomemlimit_bytes", soft))
}

// cgroupMemoryLimit is the memory limit of the cgroup this process is in,
// from the cgroup files under root, and the file it came from; 0 when
// there is none (no cgroup, or no limit).
func cgroupMemoryLimit(root string) (int64, string) {
	self, err := os.ReadFile(filepath.Join(root, "proc/self/cgroup"))
	if err != nil {
		return 0, ""
	}
	var candidates []string
	sc := bufio.NewScanner(bytes.NewReader(self))
	for sc.Scan() {
		// hierarchy-ID:controllers:path; cgroup v2 is "0::path".
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 {
			continue
		}
		switch {
		case parts[0] == "0" && parts[1] == "":
			candidates = append(candidates,
				filepath.Join(root, "sys/fs/cgroup", parts[2], "memory.max"),
				filepath.Join(root, "sys/fs/cgroup/memory.max")) // a namespaced mount
		case hasController(parts[1], "memory"):
			candidates = append(candidates,
				filepath.Join(root, "sys/fs/cgroup/memory", parts[2], "memory.limit_in_bytes"),
				filepath.Join(root, "sys/fs/cgroup/memory/memory.limit_in_bytes"))
		}
	}
	for _, f := range candidates {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		v := strings.TrimSpace(string(b))
		if v == "max" {
			return 0, f
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 || n >= 1<<62 { // cgroup v1 writes "no limit" as a huge number
			return 0, f
		}
		return n, f
	}
	return 0, ""
}

func hasController(list, name string) bool {
	for c := range strings.SplitSeq(list, ",") {
		if c == name {
			return true
		}
	}
	return false
}
