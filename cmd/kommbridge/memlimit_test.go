package main

import (
	"os"
	"path/filepath"
	"runtime/debug"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// fakeRoot writes files (path relative to the root: content) under a new
// directory, as a container's /proc and /sys would show them.
func fakeRoot(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for name, content := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func TestCgroupMemoryLimit(t *testing.T) {
	for _, tt := range []struct {
		name  string
		files map[string]string
		want  int64
	}{
		{"cgroup v2, namespaced (Docker, Kubernetes)", map[string]string{
			"proc/self/cgroup":         "0::/\n",
			"sys/fs/cgroup/memory.max": "1073741824\n"}, 1 << 30},
		{"cgroup v2, the process's own path", map[string]string{
			"proc/self/cgroup":                          "0::/kubepods/pod1/c1\n",
			"sys/fs/cgroup/kubepods/pod1/c1/memory.max": "536870912\n",
			"sys/fs/cgroup/memory.max":                  "max\n"}, 512 << 20},
		{"cgroup v2, no limit", map[string]string{
			"proc/self/cgroup":         "0::/\n",
			"sys/fs/cgroup/memory.max": "max\n"}, 0},
		{"cgroup v1, the memory controller among others", map[string]string{
			"proc/self/cgroup": "5:devices:/docker/abc\n4:cpuacct,memory:/docker/abc\n0::/\n",
			"sys/fs/cgroup/memory/docker/abc/memory.limit_in_bytes": "268435456\n"}, 256 << 20},
		{"cgroup v1, mounted at the controller's root", map[string]string{
			"proc/self/cgroup":                           "4:memory:/docker/abc\n",
			"sys/fs/cgroup/memory/memory.limit_in_bytes": "268435456\n"}, 256 << 20},
		{"cgroup v1, no limit", map[string]string{
			"proc/self/cgroup":                           "4:memory:/\n",
			"sys/fs/cgroup/memory/memory.limit_in_bytes": "9223372036854771712\n"}, 0},
		{"no cgroup files", map[string]string{}, 0},
		{"a limit that does not parse", map[string]string{
			"proc/self/cgroup":         "0::/\n",
			"sys/fs/cgroup/memory.max": "lots\n"}, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got, file := cgroupMemoryLimit(fakeRoot(t, tt.files)); got != tt.want {
				t.Errorf("limit %d from %q, want %d", got, file, tt.want)
			}
		})
	}
}

// Under a container's limit the collector aims at 90% of it, and says so;
// GOMEMLIMIT, when set, is the operator's and stays.
func TestMemoryLimitApplied(t *testing.T) {
	before := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(before) })
	root := fakeRoot(t, map[string]string{"proc/self/cgroup": "0::/\n", "sys/fs/cgroup/memory.max": "1000000000\n"})

	core, logs := observer.New(zap.InfoLevel)
	setMemoryLimit(root, func(string) string { return "" }, zap.New(core))
	if got := debug.SetMemoryLimit(-1); got != 900_000_000 {
		t.Errorf("memory limit %d, want 900000000", got)
	}
	if l := logs.FilterMessageSnippet("memory limit from the container").All(); len(l) != 1 || l[0].ContextMap()["container_limit_bytes"] != int64(1_000_000_000) {
		t.Errorf("logs %+v", logs.All())
	}

	debug.SetMemoryLimit(before)
	setMemoryLimit(root, func(k string) string {
		if k == "GOMEMLIMIT" {
			return "2GiB"
		}
		return ""
	}, zap.NewNop())
	if got := debug.SetMemoryLimit(-1); got != before {
		t.Errorf("with GOMEMLIMIT set, the limit became %d", got)
	}
}
